// The Raft consensus core: a pure, deterministic state machine. Time enters only as tick(), randomness only
// from a seeded Rng, and every effect leaves through the Ready batch (see types.ts for the order in which the
// driver must handle it). Modelled on etcd-io/raft's raft.go, trimmed to what Keel needs; section numbers
// refer to the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm").

import { RaftLog } from './log';
import { Progress, ProgressState } from './progress';
import { Rng } from './rng';
import {
  EntryType,
  MessageType,
  NONE,
  StateRole,
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

  private voters: NodeId[];
  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

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
    this.voters = storage?.snapshot ? [...storage.snapshot.meta.voters] : [...cfg.peers];
    if (this.voters.length === 0) throw new Error('raft: no voters configured');
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
    return this.voters;
  }

  progressOf(id: NodeId): Progress | undefined {
    return this.progress.get(id);
  }

  isVoter(id: NodeId): boolean {
    return this.voters.includes(id);
  }

  private quorum(): number {
    return Math.floor(this.voters.length / 2) + 1;
  }

  // ---- driver entry points ----------------------------------------------------------------------------

  tick(): void {
    if (this.role === StateRole.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  /** Starts an election now (tests, and later leadership transfer). */
  campaign(): void {
    this.hup(false);
  }

  /**
   * Proposes data for the log. Returns false if it was dropped: no known leader, or this member is not a
   * voter. A proposal accepted here may still be lost if leadership changes: callers time out.
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
    if (m.term === 0) {
      // Local or forwarded requests carry no term.
      if (m.type === MessageType.Prop) this.handlePropose(m);
      else if (m.type === MessageType.ReadIndex) this.handleReadIndexRequest(m);
      return;
    }
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        // §6 / §9.6: a member that heard from a live leader within the minimum election timeout ignores
        // votes, so a partitioned member rejoining cannot depose a healthy leader.
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTick;
        if (inLease) return;
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
      } else if (m.type === MessageType.PreVote) {
        this.send(this.reply(m, MessageType.PreVoteResp, { reject: true }));
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

  /** The driver has persisted, sent and applied everything in `rd`. */
  advance(rd: Ready): void {
    if (rd.snapshot) this.log.appliedTo(rd.snapshot.meta.index);
    if (rd.committed.length > 0) this.log.appliedTo(rd.committed[rd.committed.length - 1].index);
  }

  /**
   * The driver wrote a snapshot of the state machine at `snapshot.meta.index` (<= applied). Entries below
   * `keepFrom` are dropped from memory; followers behind them will get the snapshot.
   */
  compact(snapshot: Snapshot, keepFrom: number): void {
    this.log.compact(snapshot, keepFrom);
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
    this.votes.clear();
    this.progress.clear();
    for (const id of this.voters) {
      const p = new Progress(id, this.log.lastIndex() + 1, this.maxInflight);
      if (id === this.id) p.match = this.log.lastIndex();
      this.progress.set(id, p);
    }
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
    this.votes.clear();
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
    for (const p of this.progress.values()) p.recentActive = true;
    // §8: a no-op entry of the new term, so that earlier entries get committed (Figure 8) and the leader
    // learns its commit index for reads.
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.bcastAppend();
  }

  // ---- elections --------------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      if (this.isVoter(this.id)) this.hup(this.preVote);
    }
  }

  private hup(preVote: boolean): void {
    if (this.role === StateRole.Leader) return;
    if (!this.isVoter(this.id)) return;
    if (this.log.pendingSnapshot) return; // cannot campaign before installing what the leader sent
    if (preVote) {
      this.becomePreCandidate();
      this.electionElapsed = 0;
      this.randomizedElectionTimeout = this.rng.int(this.electionTick, 2 * this.electionTick);
      this.poll(this.id, true);
      if (this.tallyVotes() === 'won') {
        this.becomeCandidate();
        this.startVote();
        return;
      }
      for (const id of this.voters) {
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
      this.startVote();
    }
  }

  private startVote(): void {
    this.poll(this.id, true);
    if (this.tallyVotes() === 'won') {
      this.becomeLeader();
      return;
    }
    for (const id of this.voters) {
      if (id === this.id) continue;
      this.send({
        type: MessageType.Vote,
        from: this.id,
        to: id,
        term: this.term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
      });
    }
  }

  private poll(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  private tallyVotes(): 'won' | 'lost' | 'pending' {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    if (granted >= this.quorum()) return 'won';
    if (rejected >= this.quorum()) return 'lost';
    return 'pending';
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
      this.send({ ...this.reply(m, respType, {}), term: m.term });
      if (!isPre) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(this.reply(m, respType, { reject: true }));
    }
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
        this.poll(m.from, !m.reject);
        const result = this.tallyVotes();
        if (result === 'won') {
          if (this.role === StateRole.PreCandidate) {
            this.becomeCandidate();
            this.startVote();
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
        this.hup(false);
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
    this.voters = [...s.meta.voters];
    return true;
  }

  // ---- leader -------------------------------------------------------------------------------------------

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTick) {
      this.electionElapsed = 0;
      if (this.checkQuorum && !this.quorumActive()) {
        // §6.2: a leader that has not heard from a majority for an election timeout steps down, so that
        // clients of a partitioned leader fail fast instead of waiting forever.
        this.becomeFollower(this.term, NONE);
        return;
      }
    }
    for (const p of this.progress.values()) {
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

  private quorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      const p = this.progress.get(id);
      if (!p) continue;
      if (id === this.id || p.recentActive) active++;
      p.recentActive = false;
    }
    return active >= this.quorum();
  }

  private handlePropose(m: Message): boolean {
    if (this.role === StateRole.Leader) {
      if (!this.progress.has(this.id)) return false; // removed from the configuration
      this.appendEntries(m.entries ?? []);
      this.needBroadcast = true;
      return true;
    }
    if (this.lead === NONE) return false;
    // Forward to the leader; the proposing member answers its client when it applies the entry.
    this.send({ ...m, from: this.id, to: this.lead, term: 0 });
    return true;
  }

  private appendEntries(entries: Entry[]): void {
    let index = this.log.lastIndex();
    const stamped = entries.map((e) => ({ term: this.term, index: ++index, type: e.type, data: e.data }));
    this.log.append(stamped);
    const self = this.progress.get(this.id);
    if (self) self.maybeUpdate(this.log.lastIndex());
    // A single-member cluster commits at once.
    this.maybeCommit();
  }

  private bcastAppend(): void {
    for (const id of this.voters) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context?: Uint8Array): void {
    for (const id of this.voters) {
      if (id === this.id) continue;
      const p = this.progress.get(id);
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
    const p = this.progress.get(to);
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
    const matches = this.voters.map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    const candidate = matches[this.quorum() - 1];
    // §5.4.2 (Figure 8): only an entry of the leader's own term is committed by counting replicas.
    if (candidate > this.log.commit && this.log.term(candidate) === this.term) {
      this.log.commitTo(candidate);
      this.releaseReadsBeforeCommit();
      return true;
    }
    return false;
  }

  private stepLeader(m: Message): void {
    const p = this.progress.get(m.from);
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
    if (this.voters.length === 1) {
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
    let acked = 0;
    for (const id of this.voters) if (req.acks.has(id)) acked++;
    if (acked < this.quorum()) return;
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
