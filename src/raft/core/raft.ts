// The Raft consensus core: a pure, deterministic state machine. Time enters only as tick(), randomness only
// from a seeded Rng, and every effect leaves through the Ready batch (see types.ts for the order in which the
// driver must handle it). Modelled on etcd-io/raft's raft.go, trimmed to what Keel needs; section numbers
// refer to the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm"), the
// thesis ("Consensus: Bridging Theory and Practice") where marked.
//
// Membership changes are etcd-raft's: one server at a time, taking effect on each member when it APPLIES the
// ConfChange entry (the driver calls applyConfChange). That is safe given three rules (tbg's argument in
// etcd-io/etcd#7625), all enforced here:
//   (Apply)    a leader appends a change only once every change in its log is applied (pendingConfIndex),
//              which also means once it committed an entry of its own term (Ongaro's 2015 fix of the
//              single-server-change bug, raft-dev "bug in single-server membership changes");
//   (Campaign) a member does not campaign while a committed change is not applied yet;
//   (Append)   a member that holds a change also knows every earlier change is committed: the append that
//              brings it carries a commit index covering them, and the constructor re-derives it (below).
// Restart: the configuration is the one of the newest ConfChange entry at or below the applied index, else
// the snapshot's, else `peers` (ConfChange entries carry the whole configuration they produce).
//
// Where this differs from etcd-raft, the simulation found a reason (see each place): a leader that removed
// itself hands over before it steps down (handOver); vote answers carry the voter's commit index
// (commitHint); a vote request of an older term is answered with the current term; members ignore removed
// members but hear unknown ones (acceptsFrom). As in etcd-raft, a leader counts its own vote and its own
// entries only once they are durable (advance).

import { BUGS } from '../../bugs';
import { changeConfState, decodeConfChange, encodeConfChange, sameConfState, type ConfChange, type ConfChangeData } from './confchange';
import { RaftLog } from './log';
import { Progress, ProgressState } from './progress';
import { Rng } from './rng';
import { ProgressTracker } from './tracker';
import {
  CAMPAIGN_TRANSFER,
  EntryType,
  MessageType,
  NONE,
  StateRole,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftStorageState,
  type ReadState,
  type Ready,
  type Snapshot,
  type SnapshotMeta,
  type SoftState,
} from './types';

interface ReadRequest {
  /** The commit index when the request arrived: the read may be served once applied reaches it. */
  index: number;
  context: Uint8Array;
  /** The member that asked (the leader itself, or a follower that forwarded it). */
  from: NodeId;
  acks: Set<NodeId>;
}

/** How a member campaigns: after a pre-vote, directly, or at the leader's request (leadership transfer). */
type CampaignKind = 'preVote' | 'election' | 'transfer';

/** A ConfChange entry handed to the driver to apply, waiting for its applyConfChange call. */
interface ConfToApply {
  index: number;
  data: ConfChangeData;
}

/** A chunk being received of a snapshot that the leader sends. */
interface IncomingSnapshot {
  meta: SnapshotMeta;
  term: number;
  chunks: Uint8Array[];
  received: number;
}

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: StateRole = StateRole.Follower;
  readonly log: RaftLog;

  /** Why the last proposeConfChange, transferLeadership or propose call returned false (undefined after
   *  one that succeeded). */
  lastRejection?: string;

  private readonly trk: ProgressTracker;
  /** The index of the ConfChange entry (or snapshot, or 0 for `peers`) whose configuration is in force. */
  private confIndex = 0;
  /** The configuration `peers` gave, in force until a snapshot or a ConfChange entry replaces it. */
  private readonly initialConf: ConfState;
  /** ConfChange entries handed out in Ready.committed whose applyConfChange has not come yet, in order. */
  private confToApply: ConfToApply[] = [];
  /** Leader: the index of the newest change it may have in its log; no other until it is applied. */
  private pendingConfIndex = 0;
  /** Leader: the member leadership is being handed to (NONE: no transfer). Proposals are refused meanwhile. */
  private leadTransferee: NodeId = NONE;

  private readonly electionTick: number;
  private readonly heartbeatTick: number;
  private readonly preVote: boolean;
  private readonly checkQuorum: boolean;
  private readonly maxSizePerMsg: number;
  private readonly maxInflight: number;
  private readonly chunkSize: number;
  private readonly rng: Rng;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  private msgs: Message[] = [];
  private readStates: ReadState[] = [];
  /** Reads waiting for the leader's heartbeat round (in arrival order). */
  private readQueue: ReadRequest[] = [];
  /** Reads that arrived before the leader committed an entry of its term (§8: it cannot know commit yet). */
  private readsBeforeCommit: ReadRequest[] = [];
  /** Proposals appended since the last Ready; broadcast once, so a burst becomes one append per follower. */
  private needBroadcast = false;
  private incomingSnapshot?: IncomingSnapshot;

  private prevHardState: HardState;
  private prevSoftState: SoftState;

  constructor(cfg: RaftConfig, storage?: RaftStorageState, applied = 0) {
    this.id = cfg.id;
    this.electionTick = cfg.electionTick ?? 10;
    this.heartbeatTick = cfg.heartbeatTick ?? 1;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024;
    this.maxInflight = cfg.maxInflightMsgs ?? 256;
    this.chunkSize = cfg.snapshotChunkSize ?? 1024 * 1024;
    this.rng = new Rng(cfg.seed);
    if (this.heartbeatTick >= this.electionTick) {
      throw new Error('raft: the election tick must be greater than the heartbeat tick');
    }

    this.log = new RaftLog(storage?.snapshot, storage?.entries ?? [], applied);
    this.initialConf = { voters: [...cfg.peers], learners: [], removed: [] };
    const snap = storage?.snapshot;
    this.trk = new ProgressTracker(snap ? snapshotConf(snap) : this.initialConf, this.maxInflight);
    this.confIndex = snap ? snap.meta.index : 0;
    const hs = storage?.hardState;
    if (hs) {
      this.term = hs.term;
      this.vote = hs.vote;
      // The commit mark is persisted without fsync, so it may lag what was applied; both are committed.
      const commit = Math.max(hs.commit, this.log.applied);
      if (commit > this.log.lastIndex()) {
        throw new Error(
          `raft: commit/applied index ${commit} is beyond the last log index ${this.log.lastIndex()} (log lost?)`,
        );
      }
      this.log.commitTo(commit);
    }
    this.recoverConf();
    this.prevHardState = this.hardState();
    this.prevSoftState = { leader: NONE, role: StateRole.Follower };
    this.becomeFollower(this.term, NONE);
  }

  // ---- inspection -------------------------------------------------------------------------------------

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.commit };
  }

  softState(): SoftState {
    return { leader: this.lead, role: this.role };
  }

  votersList(): readonly NodeId[] {
    return this.trk.voters;
  }

  learnersList(): readonly NodeId[] {
    return this.trk.learners;
  }

  /** The configuration in force: the one of the newest ConfChange entry applied (or snapshot installed). */
  confState(): ConfState {
    return this.trk.confState();
  }

  /**
   * The leader's view of a member's replication (match, next, probe/replicate/snapshot, learner); undefined
   * on a non-leader or for a non-member. Read-only: for status, promotion checks and tests.
   */
  progressOf(id: NodeId): Readonly<Progress> | undefined {
    if (this.role !== StateRole.Leader) return undefined;
    return this.trk.progress.get(id);
  }

  /**
   * Leader only: whether learner `id` is caught up enough to be promoted, etcd's isLearnerReady: its match
   * is at least 90% of the leader's (readyPercentThreshold). False for a non-leader or a non-learner.
   */
  isLearnerReady(id: NodeId): boolean {
    const p = this.progressOf(id);
    const self = this.progressOf(this.id);
    if (!p || !self || !p.isLearner) return false;
    return p.match >= self.match * LEARNER_READY_FRACTION;
  }

  isVoter(id: NodeId): boolean {
    return this.trk.isVoter(id);
  }

  isLearner(id: NodeId): boolean {
    return this.trk.isLearner(id);
  }

  /** The member a leadership transfer in progress hands over to, NONE if there is none. */
  get transferee(): NodeId {
    return this.leadTransferee;
  }

  /** Whether this member may campaign: a voter in its own configuration (etcd-raft's promotable). */
  private promotable(): boolean {
    return this.trk.isVoter(this.id);
  }

  // ---- driver entry points ----------------------------------------------------------------------------

  tick(): void {
    if (this.role === StateRole.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  /** Starts an election now, without pre-vote (tests). */
  campaign(): void {
    this.hup('election');
  }

  /**
   * Proposes data for the log. Returns false (reason in lastRejection) if it was dropped: no known leader, a
   * leader removed from the configuration, or a leadership transfer in progress (etcd's ErrProposalDropped).
   * A proposal accepted here may still be lost if leadership changes: callers time out.
   */
  propose(data: Uint8Array): boolean {
    return this.handlePropose({
      type: MessageType.Prop,
      from: this.id,
      to: this.id,
      term: 0,
      index: 0,
      logTerm: 0,
      entries: [{ term: 0, index: 0, type: EntryType.Normal, data }],
    });
  }

  /**
   * Asks for a linearizable read point. A ReadState with this context comes out of a later Ready once the
   * leader has confirmed it still leads; returns false if it cannot be served now (no leader known).
   */
  readIndex(context: Uint8Array): boolean {
    if (this.role === StateRole.Leader) {
      this.leaderReadIndex({ index: 0, context, from: this.id, acks: new Set() });
      return true;
    }
    if (this.lead === NONE) return false;
    this.send({
      type: MessageType.ReadIndex,
      from: this.id,
      to: this.lead,
      term: 0,
      index: 0,
      logTerm: 0,
      context,
    });
    return true;
  }

  step(m: Message): void {
    if (!this.acceptsFrom(m)) return;
    if (m.term === 0) {
      // Local or forwarded requests carry no term.
      if (m.type === MessageType.Prop) this.handlePropose(m);
      else if (m.type === MessageType.ReadIndex) this.handleReadIndexRequest(m);
      return;
    }
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        // §6 / §9.6: a member that heard from a live leader within the minimum election timeout ignores
        // votes, so a partitioned member rejoining cannot depose a healthy leader. A candidate campaigning
        // at the leader's request (thesis §3.10) is granted anyway: the leader itself wants the election.
        const force = m.type === MessageType.Vote && isCampaignTransfer(m.context);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTick;
        if (inLease && !force) return;
      }
      if (m.type === MessageType.PreVote) {
        // A pre-vote never changes our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // The term in a granted pre-vote answer is the one we will campaign at; nothing to adopt yet.
      } else if (
        m.type === MessageType.App ||
        m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snap
      ) {
        this.becomeFollower(m.term, m.from);
      } else if (m.type === MessageType.Vote) {
        // Adopt the term, but keep the election timer running: only granting the vote restarts it (Figure 2;
        // handleVoteRequest). Otherwise candidates with stale logs, each refused, keep restarting the timers
        // of the members that could win, and an election may take arbitrarily long without pre-vote.
        const elapsed = this.electionElapsed;
        const timeout = this.randomizedElectionTimeout;
        this.becomeFollower(m.term, NONE);
        this.electionElapsed = elapsed;
        this.randomizedElectionTimeout = timeout;
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.App || m.type === MessageType.Heartbeat)) {
        // A stale leader (cut off, or restarted) learns our term, steps down, and stops pestering us.
        this.send(this.reply(m, MessageType.AppResp, {}));
      } else if (m.type === MessageType.PreVote || m.type === MessageType.Vote) {
        // Figure 2: "Reply false if term < currentTerm", with our term, which the candidate adopts. etcd-raft
        // ignores a stale Vote; then a candidate whose only possible voter always runs ahead in term never
        // catches up (simulation, seed 10151 at the time: that voter, far behind in the log and in the
        // configuration, campaigned in vain in a configuration the candidate was not in).
        const resp = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
        this.send(this.reply(m, resp, { reject: true, ...this.commitHint() }));
      }
      return;
    }

    switch (m.type) {
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
    }

    switch (this.role) {
      case StateRole.Leader:
        this.stepLeader(m);
        break;
      case StateRole.Candidate:
      case StateRole.PreCandidate:
        this.stepCandidate(m);
        break;
      case StateRole.Follower:
        this.stepFollower(m);
        break;
    }
  }

  hasReady(): boolean {
    if (this.needBroadcast) return true;
    if (this.msgs.length > 0 || this.readStates.length > 0) return true;
    if (this.log.pendingSnapshot) return true;
    if (this.log.hasUnstable() || this.log.hasCommittedToHand()) return true;
    const hs = this.hardState();
    if (!sameHardState(hs, this.prevHardState)) return true;
    const ss = this.softState();
    return ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role;
  }

  ready(): Ready {
    if (this.needBroadcast) {
      this.needBroadcast = false;
      this.bcastAppend();
    }
    // Messages stamped with an older term are dropped (as the network may drop them): a term change since
    // they were queued may have replaced the entries they acknowledge before those ever reached the disk.
    const term = this.term;
    const rd: Ready = {
      entries: this.log.takeUnstable(),
      committed: [],
      messages: this.msgs.filter((m) => m.term === 0 || m.term >= term),
      readStates: this.readStates,
      mustSync: false,
    };
    this.msgs = [];
    this.readStates = [];
    if (this.log.pendingSnapshot) {
      rd.snapshot = this.log.pendingSnapshot;
      this.log.pendingSnapshot = undefined;
    }
    rd.committed = this.log.takeCommitted();
    for (const e of rd.committed) {
      if (e.type !== EntryType.ConfChange) continue;
      let data: ConfChangeData;
      try {
        data = decodeConfChange(e.data);
      } catch (err) {
        // Committed on every member alike: no member can go on without knowing the configuration.
        throw new Error(`raft: committed ConfChange entry ${e.index} (term ${e.term}) is corrupt: ${(err as Error).message}`);
      }
      this.confToApply.push({ index: e.index, data });
    }
    const hs = this.hardState();
    if (!sameHardState(hs, this.prevHardState)) {
      rd.mustSync = hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
      rd.hardState = hs;
      this.prevHardState = hs;
    }
    if (rd.entries.length > 0 || rd.snapshot) rd.mustSync = true;
    const ss = this.softState();
    if (ss.leader !== this.prevSoftState.leader || ss.role !== this.prevSoftState.role) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    return rd;
  }

  /** The driver has persisted, sent and applied everything in `rd` (and called applyConfChange for each
   *  ConfChange entry in it). */
  advance(rd: Ready): void {
    const last = rd.committed.length > 0 ? rd.committed[rd.committed.length - 1].index : 0;
    if (this.confToApply.length > 0 && this.confToApply[0].index <= last) {
      throw new Error(
        `raft: advance() past ConfChange entry ${this.confToApply[0].index} before applyConfChange was called for it`,
      );
    }
    if (rd.snapshot) this.log.appliedTo(rd.snapshot.meta.index);
    if (last > 0) this.log.appliedTo(last);
    if (this.role === StateRole.Leader && rd.entries.length > 0) this.selfAck(rd.entries[rd.entries.length - 1]);
    const hs = rd.hardState;
    if (this.role === StateRole.Candidate && hs && hs.term === this.term && hs.vote === this.id) {
      // Our vote for ourselves is durable now (see startVote).
      this.trk.recordVote(this.id, true);
      if (this.trk.tallyVotes() === 'won') this.becomeLeader();
    }
  }

  /**
   * The leader's entries up to `e` are on its disk: its own vote for them counts now (etcd-raft steps a
   * self-addressed MsgAppResp after the storage append). Counting them earlier would let a leader that is
   * the only voter commit, and tell its learners so in appends that leave before its own write (the driver
   * sends those early), entries a crash then loses.
   */
  private selfAck(e: Entry): void {
    const self = this.trk.progress.get(this.id);
    // An entry replaced since the Ready was taken (before this member led) acknowledges nothing.
    if (!self || this.log.term(e.index) !== e.term) return;
    if (self.maybeUpdate(e.index) && this.maybeCommit()) this.bcastAppend();
  }

  /**
   * The driver applied a committed ConfChange entry (`cc` is decodeConfChange(entry.data)): its
   * configuration takes effect now. Call it for every ConfChange entry of Ready.committed, in log order,
   * after applying the entry and before advance(). Returns the configuration in force.
   *
   * On a leader, a new quorum may commit more at once, and a leader that removed itself steps down (first
   * telling its most up-to-date voter to campaign, so the cluster need not wait out an election timeout).
   * An entry older than the configuration in force (a snapshot from the leader was received meanwhile)
   * changes nothing.
   */
  applyConfChange(cc: ConfChange): ConfState {
    const next = this.confToApply[0];
    if (!next) throw new Error('raft: applyConfChange called, but no ConfChange entry was handed out to apply');
    if (next.data.type !== cc.type || next.data.nodeId !== cc.nodeId) {
      throw new Error(
        `raft: applyConfChange(${cc.type} ${cc.nodeId}) out of order: the next ConfChange entry to apply is ${next.index}, ${next.data.type} ${next.data.nodeId}`,
      );
    }
    this.confToApply.shift();
    if (next.index > this.confIndex) this.switchToConfig(next.data.confState, next.index);
    return this.trk.confState();
  }

  /**
   * The driver wrote a snapshot of the state machine at `snapshot.meta.index` (<= applied). Entries below
   * `keepFrom` are dropped from memory; followers behind them will get the snapshot, so its configuration
   * must be the one in force at its index (confState() when the state machine was dumped).
   */
  compact(snapshot: Snapshot, keepFrom: number): void {
    const at = this.confStateAt(snapshot.meta.index);
    if (at && !sameConfState(snapshotConf(snapshot), at)) {
      throw new Error(
        `raft: snapshot at index ${snapshot.meta.index} records voters [${snapshot.meta.voters.join(', ')}] and learners [${(snapshot.meta.learners ?? []).join(', ')}], ` +
          `but the configuration at that index is voters [${at.voters.join(', ')}] and learners [${at.learners.join(', ')}]`,
      );
    }
    this.log.compact(snapshot, keepFrom);
  }

  /**
   * The configuration in force at `index` (applied at or before it), or undefined if the log no longer
   * tells (below the newest snapshot).
   */
  confStateAt(index: number): ConfState | undefined {
    const snapIndex = this.log.snapshot?.meta.index ?? 0;
    if (index < snapIndex) return undefined;
    if (index >= this.confIndex && index <= this.log.applied) return this.trk.confState();
    const cc = this.log.findConfChange(snapIndex + 1, index, true);
    if (cc > 0) return this.confChangeAt(cc).confState;
    return this.log.snapshot ? snapshotConf(this.log.snapshot) : { ...this.initialConf };
  }

  // ---- roles ------------------------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.rng.int(this.electionTick, 2 * this.electionTick);
    this.trk.resetVotes();
    this.trk.resetProgress(this.id, this.log.lastIndex());
    this.leadTransferee = NONE;
    this.pendingConfIndex = 0;
    this.incomingSnapshot = undefined;
    this.needBroadcast = false;
    this.dropPendingReads();
  }

  private dropPendingReads(): void {
    // Reads waiting on a leadership we no longer hold are dropped; their callers time out and retry.
    this.readQueue = [];
    this.readsBeforeCommit = [];
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.role = StateRole.Follower;
    this.lead = lead;
  }

  private becomePreCandidate(): void {
    // A pre-candidate keeps its term and vote: §9.6, a pre-vote that fails must leave no trace.
    this.role = StateRole.PreCandidate;
    this.lead = NONE;
    this.trk.resetVotes();
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = StateRole.Candidate;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = StateRole.Leader;
    this.lead = this.id;
    for (const p of this.trk.progress.values()) p.recentActive = true;
    // (Apply): the log may hold a change not applied yet; refuse new ones until everything in it is
    // applied, which also means until the no-op below is committed (etcd-raft's conservative choice).
    this.pendingConfIndex = this.log.lastIndex();
    // §8: a no-op entry of the new term, so that earlier entries get committed (Figure 8) and the leader
    // learns its commit index for reads.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.bcastAppend();
  }

  // ---- elections --------------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    // A member that may not campaign lets the timer run on, so that its leader lease expires: it then
    // votes for a member that campaigns (etcd-raft's tickElection).
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.hup(this.preVote ? 'preVote' : 'election');
    }
  }

  private hup(kind: CampaignKind): void {
    if (this.role === StateRole.Leader) return;
    // Learners, removed members and members that do not know their configuration yet never campaign.
    if (!this.promotable()) return;
    if (this.log.pendingSnapshot) return; // cannot campaign before installing what the leader sent
    // (Campaign): votes are counted in the configuration in force, which must not lag a committed change.
    if (this.hasUnappliedConfChanges()) return;
    if (kind === 'preVote') {
      this.becomePreCandidate();
      this.electionElapsed = 0;
      this.randomizedElectionTimeout = this.rng.int(this.electionTick, 2 * this.electionTick);
      this.trk.recordVote(this.id, true);
      if (this.trk.tallyVotes() === 'won') {
        this.becomeCandidate();
        this.startVote(false);
        return;
      }
      for (const id of this.trk.voters) {
        if (id === this.id) continue;
        this.send({
          type: MessageType.PreVote,
          from: this.id,
          to: id,
          term: this.term + 1,
          index: this.log.lastIndex(),
          logTerm: this.log.lastTerm(),
        });
      }
    } else {
      this.becomeCandidate();
      this.startVote(kind === 'transfer');
    }
  }

  /** etcd-raft's hasUnappliedConfChanges: a committed ConfChange entry not applied yet. */
  private hasUnappliedConfChanges(): boolean {
    return this.log.commit > this.log.applied && this.log.findConfChange(this.log.applied + 1, this.log.commit) > 0;
  }

  /**
   * Asks the other voters. Our own vote counts once it is durable (advance() sees it persisted), as in
   * etcd-raft: a sole voter would otherwise lead a term its disk does not know, and after a crash lead that
   * term again with other entries at the same indexes, which its learners may already hold.
   */
  private startVote(transfer: boolean): void {
    for (const id of this.trk.voters) {
      if (id === this.id) continue;
      const m: Message = {
        type: MessageType.Vote,
        from: this.id,
        to: id,
        term: this.term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
      };
      if (transfer) m.context = CAMPAIGN_TRANSFER.slice();
      this.send(m);
    }
  }

  private handleVoteRequest(m: Message): void {
    const isPre = m.type === MessageType.PreVote;
    const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
    // §5.2, §5.4.1: one vote per term, and only for a candidate whose log is at least as up to date.
    // A pre-vote for a future term may be granted whatever we voted in this term.
    const canVote =
      this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (isPre && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // Grants carry the candidate's term; for a pre-vote that is a term we have not adopted.
      this.send({ ...this.reply(m, respType, this.commitHint()), term: m.term });
      if (!isPre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(this.reply(m, respType, { reject: true, ...this.commitHint() }));
    }
  }

  /**
   * Vote answers tell the candidate our commit index and the term of that entry. A candidate holding the
   * same entry knows everything up to it is committed (Log Matching), and applies it before it campaigns
   * again. With configurations taking effect when applied this matters: a voter may hold the change that
   * makes it electable, committed, without knowing it is, and the leader that knew is gone. In the
   * simulation (seed 485 at the time) the leader of a two-voter configuration removed itself, applied the
   * removal and crashed before the other voter learned the commit index; that voter kept asking the removed
   * member for its vote, the removed member's longer log made it refuse, and no leader was ever elected.
   */
  private commitHint(): Partial<Message> {
    return { commit: this.log.commit, logTerm: this.log.term(this.log.commit) ?? 0 };
  }

  /** A vote answer's commit hint (see commitHint). */
  private learnCommit(m: Message): void {
    const c = m.commit ?? 0;
    if (c > this.log.commit && this.log.matchTerm(c, m.logTerm)) this.log.commitTo(c);
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === StateRole.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        return; // no leader: dropped
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshotChunk(m);
        return;
      case myResp: {
        this.learnCommit(m);
        if (this.hasUnappliedConfChanges()) {
          // (Campaign): the votes would be counted in a configuration a committed change replaces. Give up
          // this election; the next, once the change is applied, counts in the right one.
          this.becomeFollower(this.term, NONE);
          return;
        }
        this.trk.recordVote(m.from, !m.reject);
        const result = this.trk.tallyVotes();
        if (result === 'won') {
          if (this.role === StateRole.PreCandidate) {
            this.becomeCandidate();
            this.startVote(false);
          } else {
            this.becomeLeader();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      default:
        return;
    }
  }

  // ---- follower -----------------------------------------------------------------------------------------

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshotChunk(m);
        return;
      case MessageType.ReadIndexResp:
        if (m.context) this.readStates.push({ index: m.index, context: m.context });
        return;
      case MessageType.TimeoutNow:
        // Thesis §3.10: the leader hands over; campaign at once, without pre-vote (no partition to guard
        // against: the leader itself asks), marking the vote requests so voters in its lease grant them.
        this.hup('transfer');
        return;
      default:
        return;
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.commit) {
      // Already committed here: tell the leader where we are.
      this.send(this.reply(m, MessageType.AppResp, { index: this.log.commit }));
      return;
    }
    const entries = m.entries ?? [];
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit ?? 0, entries);
    if (lastNew !== undefined) {
      this.send(this.reply(m, MessageType.AppResp, { index: lastNew }));
      return;
    }
    // The consistency check failed. Hint at the last index that may match, skipping whole terms that the
    // leader's log cannot share with ours (etcd-io/raft's findConflictByTerm).
    const hint = this.log.findConflictByTerm(m.index, m.logTerm);
    this.send(
      this.reply(m, MessageType.AppResp, {
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        hintTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit ?? 0, this.log.lastIndex()));
    this.send(this.reply(m, MessageType.HeartbeatResp, { context: m.context }));
  }

  private handleSnapshotChunk(m: Message): void {
    const meta = m.snapshot;
    if (!meta || m.offset === undefined || !m.chunk) return;
    if (m.offset === 0) this.incomingSnapshot = { meta, term: m.term, chunks: [], received: 0 };
    const inc = this.incomingSnapshot;
    if (!inc || inc.meta.index !== meta.index || inc.meta.term !== meta.term || m.offset > inc.received) {
      // A chunk of a transfer we do not hold (we restarted, it was superseded, or a chunk went missing):
      // tell the leader where to resume.
      const offset = inc && inc.meta.index === meta.index && inc.meta.term === meta.term ? inc.received : 0;
      this.send(this.reply(m, MessageType.SnapResp, { index: meta.index, offset, reject: true }));
      return;
    }
    if (m.offset < inc.received) {
      // A duplicate of a chunk we hold: acknowledge where we are.
      this.send(this.reply(m, MessageType.SnapResp, { index: meta.index, offset: inc.received }));
      return;
    }
    inc.chunks.push(m.chunk);
    inc.received += m.chunk.length;
    if (!m.done) {
      this.send(this.reply(m, MessageType.SnapResp, { index: meta.index, offset: inc.received }));
      return;
    }
    this.incomingSnapshot = undefined;
    const snapshot: Snapshot = { meta: inc.meta, data: concat(inc.chunks, inc.received) };
    const installed = this.restore(snapshot);
    this.send(this.reply(m, MessageType.AppResp, { index: installed ? this.log.lastIndex() : this.log.commit }));
  }

  /** Installs a snapshot from the leader (§7). Returns false if it told us nothing new. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.commit) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // Our log already holds the snapshot's last entry: keep the log, just advance commit (§7: "If
      // existing log entry has same index and term as snapshot's last included entry, retain log entries").
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    // The snapshot's configuration is in force from now on, as if its entries had been applied. It may not
    // list this member (it was added after the leader's newest snapshot, unlike in etcd-raft, which refuses
    // such a snapshot): the ConfChange entries after it, replicated next, add it.
    this.trk.setConfig(snapshotConf(s), this.id, this.log.lastIndex());
    this.confIndex = s.meta.index;
    return true;
  }

  // ---- leader -------------------------------------------------------------------------------------------

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.trk.quorumActive(this.id)) {
        // §6.2: a leader that has not heard from a majority for an election timeout steps down, so that
        // clients of a partitioned leader fail fast instead of waiting forever.
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (!this.trk.isVoter(this.id)) {
        // A removed leader's hand-over (handOver) is over: its successor did not take over in time.
        this.becomeFollower(this.term, NONE);
        return;
      }
      // Thesis §3.10: a transfer that did not complete within an election timeout is abandoned, and the
      // leader takes proposals again.
      this.leadTransferee = NONE;
    }
    for (const p of this.trk.progress.values()) {
      if (p.state === ProgressState.Snapshot && p.id !== this.id) {
        p.snapIdleTicks++;
        if (p.snapIdleTicks >= 3) this.sendSnapshotChunk(p); // a chunk or its answer was lost
      }
    }
    if (this.heartbeatElapsed >= this.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readQueue.length > 0 ? this.readQueue[this.readQueue.length - 1].context : undefined);
    }
  }

  private handlePropose(m: Message): boolean {
    const entries = m.entries ?? [];
    if (entries.some((e) => e.type !== EntryType.Normal)) {
      // Membership changes go through proposeConfChange, on the leader, which checks them.
      return this.refuse('a proposal may only carry normal entries');
    }
    if (this.role === StateRole.Leader) {
      if (!this.trk.progress.has(this.id)) return this.refuse('this leader was removed from the configuration');
      if (this.leadTransferee !== NONE) {
        return this.refuse(`leadership transfer to ${this.leadTransferee} is in progress; dropping proposal`);
      }
      this.appendEntries(entries);
      this.needBroadcast = true;
      this.lastRejection = undefined;
      return true;
    }
    if (this.lead === NONE) return this.refuse('no leader; dropping proposal');
    // Forward to the leader; the proposing member answers its client when it applies the entry.
    this.send({ ...m, from: this.id, to: this.lead, term: 0 });
    this.lastRejection = undefined;
    return true;
  }

  private refuse(why: string): false {
    this.lastRejection = why;
    return false;
  }

  private appendEntries(entries: Entry[]): void {
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ term: this.term, index: ++index, type: e.type, data: e.data }));
    this.log.append(stamped);
    // The leader's own copy counts for a quorum once it is durable: advance() acknowledges it.
  }

  /** Appends to every other member, learners included. */
  private bcastAppend(): void {
    for (const id of this.trk.progress.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context?: Uint8Array): void {
    for (const id of this.trk.progress.keys()) {
      if (id === this.id) continue;
      const p = this.trk.progress.get(id);
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(p ? p.match : 0, this.log.commit);
      this.send({
        type: MessageType.Heartbeat,
        from: this.id,
        to: id,
        term: this.term,
        index: 0,
        logTerm: 0,
        commit,
        context,
      });
    }
  }

  /** Sends the follower what it lacks, if its progress allows. Returns whether a message went out. */
  private sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const p = this.trk.progress.get(to);
    if (!p || p.isPaused()) return false;
    const prevIndex = p.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || p.next < this.log.firstIndex()) {
      // The follower needs entries we compacted away: send the snapshot instead.
      const snap = this.log.snapshot;
      if (!snap) return false;
      p.becomeSnapshot(snap);
      this.sendSnapshotChunk(p);
      return true;
    }
    const entries = this.log.slice(p.next, this.log.lastIndex(), this.maxSizePerMsg);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({
      type: MessageType.App,
      from: this.id,
      to,
      term: this.term,
      index: prevIndex,
      logTerm: prevTerm,
      entries,
      commit: this.log.commit,
    });
    if (entries.length > 0) {
      const last = entries[entries.length - 1].index;
      if (p.state === ProgressState.Replicate) {
        p.next = last + 1;
        p.inflights.add(last);
      } else if (p.state === ProgressState.Probe) {
        p.probeSent = true;
      }
    } else if (p.state === ProgressState.Probe) {
      p.probeSent = true;
    }
    return true;
  }

  private sendSnapshotChunk(p: Progress): void {
    const snap = p.snapshot;
    if (!snap) return;
    const end = Math.min(snap.data.length, p.snapOffset + this.chunkSize);
    p.snapIdleTicks = 0;
    this.send({
      type: MessageType.Snap,
      from: this.id,
      to: p.id,
      term: this.term,
      index: snap.meta.index,
      logTerm: snap.meta.term,
      snapshot: snap.meta,
      offset: p.snapOffset,
      chunk: snap.data.subarray(p.snapOffset, end),
      done: end === snap.data.length,
    });
  }

  private maybeCommit(): boolean {
    const candidate = this.trk.committed();
    // §5.4.2 (Figure 8): only an entry of the leader's own term is committed by counting replicas.
    // (BUGS is all false in every real build; the Jepsen self-test's broken copy turns this check off.)
    if (candidate > this.log.commit && (BUGS.commitByCounting || this.log.term(candidate) === this.term)) {
      this.log.commitTo(candidate);
      this.releaseReadsBeforeCommit();
      return true;
    }
    return false;
  }

  private stepLeader(m: Message): void {
    const p = this.trk.progress.get(m.from);
    switch (m.type) {
      case MessageType.AppResp:
        if (!p) return;
        p.recentActive = true;
        this.handleAppendResponse(m, p);
        return;
      case MessageType.HeartbeatResp:
        if (!p) return;
        p.recentActive = true;
        p.probeSent = false;
        // A full window whose appends (or their answers) were all lost would hold this follower back for
        // good: free one slot so that an append goes out. If entries are missing, the follower refuses it
        // and the leader probes back (etcd-io/raft frees one inflight on a heartbeat answer too).
        if (p.state === ProgressState.Replicate && p.inflights.full) p.inflights.freeFirstOne();
        if (p.match < this.log.lastIndex()) this.sendAppend(m.from);
        // A transfer goes on: tell the transferee again, in case a TimeoutNow was lost (or came while it
        // could not campaign yet, with a change to apply).
        if (m.from === this.leadTransferee && p.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
        if (m.context) this.ackRead(m.from, m.context);
        return;
      case MessageType.SnapResp:
        if (!p) return;
        p.recentActive = true;
        if (p.state !== ProgressState.Snapshot || !p.snapshot || m.index !== p.snapshot.meta.index) return;
        p.snapOffset = m.offset ?? 0;
        this.sendSnapshotChunk(p);
        return;
      default:
        return;
    }
  }

  private handleAppendResponse(m: Message, p: Progress): void {
    if (m.reject) {
      // Use the follower's hint to jump back past the diverged entries: the largest index in our log, at or
      // below the hint, whose term is <= the follower's term there.
      let next = m.rejectHint ?? m.index - 1;
      if ((m.hintTerm ?? 0) > 0) next = this.log.findConflictByTerm(next, m.hintTerm ?? 0).index;
      if (p.maybeDecrTo(m.index, next)) {
        if (p.state === ProgressState.Replicate) p.becomeProbe();
        this.sendAppend(m.from);
      }
      return;
    }
    const wasPaused = p.isPaused();
    if (!p.maybeUpdate(m.index)) {
      if (wasPaused && !p.isPaused()) this.sendAppend(m.from, false);
      return;
    }
    switch (p.state) {
      case ProgressState.Probe:
        p.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        if (p.snapshot && p.match >= p.snapshot.meta.index) p.becomeProbe();
        break;
      case ProgressState.Replicate:
        p.inflights.freeLE(m.index);
        break;
    }
    if (this.maybeCommit()) {
      this.bcastAppend();
    } else {
      // Keep streaming while there is more, and catch a probing follower up.
      while (this.sendAppend(m.from, false) && p.state === ProgressState.Replicate) {
        if (p.next > this.log.lastIndex()) break;
      }
    }
    // Thesis §3.10: the transferee has our whole log; it can win an election now.
    if (m.from === this.leadTransferee && p.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
  }

  // ---- membership (thesis ch. 4, one server at a time, as etcd-raft) ------------------------------------

  /**
   * Proposes a membership change. Returns false, with the reason in lastRejection, when this member is not
   * the leader, the leader has not committed an entry of its term yet, another change is not applied yet,
   * a leadership transfer is in progress, or the change is invalid for the configuration in force (adding
   * a member twice, removing or promoting an unknown one, removing the last voter). An accepted change takes
   * effect on each member when it applies the entry (applyConfChange); like any proposal it may still be
   * lost if leadership changes before it commits.
   */
  proposeConfChange(cc: ConfChange): boolean {
    if (this.role !== StateRole.Leader) return this.refuse('not the leader');
    if (!this.trk.isVoter(this.id)) return this.refuse('this leader was removed from the configuration');
    if (this.leadTransferee !== NONE) {
      return this.refuse(`leadership transfer to ${this.leadTransferee} is in progress; dropping proposal`);
    }
    if (this.log.term(this.log.commit) !== this.term) {
      // Ongaro, raft-dev 2015: a change appended before the new leader commits in its term can be lost
      // while a conflicting change of an older term survives.
      return this.refuse(`the leader has not yet committed an entry of its term ${this.term}`);
    }
    if (this.pendingConfIndex > this.log.applied) {
      return this.refuse(
        `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.log.applied})`,
      );
    }
    if (cc.context !== undefined && !(cc.context instanceof Uint8Array)) {
      return this.refuse('the conf change context must be bytes');
    }
    const next = changeConfState(this.trk.confState(), cc);
    if ('refused' in next) return this.refuse(next.refused);
    const data: ConfChangeData = { type: cc.type, nodeId: cc.nodeId, confState: next };
    if (cc.context !== undefined) data.context = cc.context;
    this.appendEntries([{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(data) }]);
    this.pendingConfIndex = this.log.lastIndex();
    this.needBroadcast = true;
    this.lastRejection = undefined;
    return true;
  }

  /**
   * Leader: hands leadership to voter `target` (thesis §3.10, etcd's MoveLeader): proposals are refused
   * meanwhile; the target is brought up to date, then told to campaign at once (TimeoutNow); the transfer is
   * abandoned after an election timeout. Returns false (reason in lastRejection) on a non-leader (the member
   * forwards the request to the leader itself) and for a target that is this member, not a member, or a
   * learner. A transfer to another target in progress is abandoned for this one; one to the same target
   * goes on.
   */
  transferLeadership(target: NodeId): boolean {
    if (this.role !== StateRole.Leader) return this.refuse('not the leader');
    if (target === this.id) return this.refuse(`${target} is already the leader`);
    if (!this.trk.isMember(target)) return this.refuse(`member ${target} is not a member`);
    if (this.trk.isLearner(target)) return this.refuse(`member ${target} is a learner, it cannot lead`);
    this.lastRejection = undefined;
    if (this.leadTransferee === target) return true;
    this.leadTransferee = target;
    // The transfer must complete within one election timeout: count it from now.
    this.electionElapsed = 0;
    const p = this.trk.progress.get(target);
    if (p && p.match === this.log.lastIndex()) this.sendTimeoutNow(target);
    else this.sendAppend(target);
    return true;
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: MessageType.TimeoutNow, from: this.id, to, term: this.term, index: 0, logTerm: 0 });
  }

  private switchToConfig(cs: ConfState, index: number): void {
    const added = this.trk.setConfig(cs, this.id, this.log.lastIndex());
    this.confIndex = index;
    if (this.role !== StateRole.Leader) return;
    if (this.leadTransferee !== NONE && !this.trk.isVoter(this.leadTransferee)) this.leadTransferee = NONE;
    if (this.maybeCommit()) {
      // Another quorum may commit more now.
      this.bcastAppend();
    } else {
      // Probe new members now rather than at the next proposal or heartbeat.
      for (const id of added) if (id !== this.id) this.sendAppend(id);
    }
    if (!this.trk.isVoter(this.id)) this.handOver();
  }

  /**
   * This leader applied its own removal. Stepping down at once (etcd-raft's StepDownOnRemoval) can strand
   * the new configuration: its voters may not know yet that the change is committed, so they still count
   * votes in the old configuration, which includes this member. (Seen in the simulation, seed 485 at the
   * time: in a two-voter configuration the other voter never learned the commit index and waited for a vote
   * the removed member's longer log refused.) So the leader hands over, as in a leadership transfer: it
   * takes no proposal and counts itself in no quorum (as etcd-raft's leader does when it stays on), keeps
   * replicating, so the new configuration learns the commit index, tells its most up-to-date voter to
   * campaign once that one holds its whole log, and steps down when that one wins or after an election
   * timeout (tickHeartbeat).
   */
  private handOver(): void {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.trk.voters) {
      const p = this.trk.progress.get(id);
      if (p && p.match > bestMatch) {
        best = id;
        bestMatch = p.match;
      }
    }
    this.leadTransferee = best;
    this.electionElapsed = 0;
    this.bcastHeartbeat();
    if (best === NONE) return;
    if (bestMatch === this.log.lastIndex()) this.sendTimeoutNow(best);
    else this.sendAppend(best);
  }

  /**
   * Whether a message's sender may be heard. A member ignores the members removed from its configuration,
   * so that a removed one cannot disturb the cluster: its (pre-)votes, at whatever term, and its answers are
   * dropped, as etcd drops the messages of removed members. Exceptions: appends, heartbeats and snapshots,
   * which only a leader sends (one of a stale term is answered with our term, so it steps down); and a
   * TimeoutNow from our own leader at our term (a leader that removed itself hands over).
   *
   * A member that has not applied a removal yet does not know to ignore the removed member; the leader
   * lease of check-quorum (thesis §4.2.3) is what keeps that one from deposing the leader through it.
   *
   * A sender that is merely unknown is heard: it is a member added by a change this member has not applied
   * yet. Ignoring it too (the literal "ignore non-members") deadlocks: in the simulation (seed 115 at the
   * time) a voter far behind, that had applied none of the changes that added the other voter of a
   * two-voter configuration, ignored the only candidate that could win, and no leader was ever elected.
   */
  private acceptsFrom(m: Message): boolean {
    if (m.from === this.id || !this.trk.isRemoved(m.from)) return true;
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        return true;
      case MessageType.TimeoutNow:
        return m.from === this.lead && m.term === this.term;
      default:
        return false;
    }
  }

  /**
   * At start: the configuration at the applied index, from the newest ConfChange entry at or below it
   * (entries after the snapshot are all still held). And (Append): a ConfChange entry followed by another
   * one in the log is committed, since the leader that appended the later one had applied the earlier; the
   * append that brought them said so, but a crash may have kept the entries and lost the hard state that
   * was written after them.
   */
  private recoverConf(): void {
    const from = (this.log.snapshot?.meta.index ?? 0) + 1;
    const newest = this.log.findConfChange(from, this.log.lastIndex(), true);
    if (newest > 0) {
      const before = this.log.findConfChange(from, newest - 1, true);
      if (before > this.log.commit) this.log.commitTo(before);
    }
    const applied = this.log.findConfChange(from, this.log.applied, true);
    if (applied > 0) {
      this.trk.setConfig(this.confChangeAt(applied).confState, this.id, this.log.lastIndex());
      this.confIndex = applied;
    }
  }

  private confChangeAt(index: number): ConfChangeData {
    const e = this.log.entry(index);
    if (!e || e.type !== EntryType.ConfChange) throw new Error(`raft: no ConfChange entry at index ${index}`);
    try {
      return decodeConfChange(e.data);
    } catch (err) {
      throw new Error(`raft: ConfChange entry ${index} (term ${e.term}) is corrupt: ${(err as Error).message}`);
    }
  }

  // ---- linearizable reads (§6.4, ReadIndex) ---------------------------------------------------------------

  private handleReadIndexRequest(m: Message): void {
    // A member that is no longer the leader drops it; the asking member retries with the new leader.
    if (this.role !== StateRole.Leader) return;
    this.leaderReadIndex({ index: 0, context: m.context ?? new Uint8Array(0), from: m.from, acks: new Set() });
  }

  private leaderReadIndex(req: ReadRequest): void {
    if (this.log.term(this.log.commit) !== this.term) {
      // Until an entry of our term is committed we do not know the real commit index (§6.4 step 1).
      this.readsBeforeCommit.push(req);
      return;
    }
    this.startRead(req);
  }

  private releaseReadsBeforeCommit(): void {
    const waiting = this.readsBeforeCommit;
    this.readsBeforeCommit = [];
    for (const r of waiting) this.startRead(r);
  }

  private startRead(req: ReadRequest): void {
    req.index = this.log.commit;
    if (this.trk.voters.length === 1 && this.trk.isVoter(this.id)) {
      this.answerRead(req);
      return;
    }
    req.acks.add(this.id);
    this.readQueue.push(req);
    // One heartbeat round confirms that we still lead; its context identifies the newest read, and a
    // confirmation of it confirms every read queued before it.
    this.bcastHeartbeat(req.context);
  }

  private ackRead(from: NodeId, context: Uint8Array): void {
    const pos = this.readQueue.findIndex((r) => bytesEqual(r.context, context));
    if (pos < 0) return;
    const req = this.readQueue[pos];
    req.acks.add(from);
    if (!this.trk.hasQuorum(req.acks)) return;
    const done = this.readQueue.splice(0, pos + 1);
    for (const r of done) this.answerRead(r);
  }

  private answerRead(req: ReadRequest): void {
    if (req.from === this.id) {
      this.readStates.push({ index: req.index, context: req.context });
    } else {
      this.send({
        type: MessageType.ReadIndexResp,
        from: this.id,
        to: req.from,
        term: this.term,
        index: req.index,
        logTerm: 0,
        context: req.context,
      });
    }
  }

  // ---- messages -----------------------------------------------------------------------------------------

  private send(m: Message): void {
    if (m.to === this.id) return;
    this.msgs.push(m);
  }

  private reply(m: Message, type: MessageType, fields: Partial<Message>): Message {
    return { type, from: this.id, to: m.from, term: this.term, index: 0, logTerm: 0, ...fields };
  }
}

/** etcd's readyPercentThreshold: a learner may be promoted once its match is 90% of the leader's. */
const LEARNER_READY_FRACTION = 0.9;

/** The configuration a snapshot records (learners absent: a snapshot written before learners existed). */
function snapshotConf(s: Snapshot): ConfState {
  return { voters: [...s.meta.voters], learners: [...(s.meta.learners ?? [])], removed: [...(s.meta.removed ?? [])] };
}

function isCampaignTransfer(ctx: Uint8Array | undefined): boolean {
  return ctx !== undefined && bytesEqual(ctx, CAMPAIGN_TRANSFER);
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const c of chunks) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}
