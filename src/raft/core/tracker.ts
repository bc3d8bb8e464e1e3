// The configuration in force on one member and what the leader tracks about every member of it (etcd-raft's
// tracker/tracker.go, without joint consensus): voters and learners, a Progress per member, the votes of an
// election, and the quorum rules. Only voters count, for every quorum: commit, elections, ReadIndex and
// check-quorum. Learners get a Progress (the leader replicates to them) and nothing else. The ids removed so far
// are part of the configuration too: members ignore them (Raft.acceptsFrom).

import { normalConfState } from './confchange';
import { Progress } from './progress';
import type { ConfState, NodeId } from './types';

export type VoteResult = 'won' | 'lost' | 'pending';

export class ProgressTracker {
  private conf: Required<ConfState>;
  readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  constructor(
    cs: ConfState,
    private readonly maxInflight: number,
  ) {
    this.conf = normalConfState(cs);
  }

  get voters(): readonly NodeId[] {
    return this.conf.voters;
  }

  get learners(): readonly NodeId[] {
    return this.conf.learners;
  }

  confState(): Required<ConfState> {
    return { voters: [...this.conf.voters], learners: [...this.conf.learners], removed: [...this.conf.removed] };
  }

  /** Whether `id` was removed from the configuration (it is never a member again). */
  isRemoved(id: NodeId): boolean {
    return this.conf.removed.includes(id);
  }

  isVoter(id: NodeId): boolean {
    return this.conf.voters.includes(id);
  }

  isLearner(id: NodeId): boolean {
    return this.conf.learners.includes(id);
  }

  isMember(id: NodeId): boolean {
    return this.isVoter(id) || this.isLearner(id);
  }

  /** Voters and learners. */
  members(): NodeId[] {
    return [...this.conf.voters, ...this.conf.learners];
  }

  quorum(): number {
    return Math.floor(this.conf.voters.length / 2) + 1;
  }

  /** Fresh progress for every member (a new term): nothing known about anyone but ourselves. */
  resetProgress(selfId: NodeId, lastIndex: number): void {
    this.progress.clear();
    for (const id of this.members()) this.progress.set(id, this.newProgress(id, selfId, lastIndex));
  }

  /**
   * Switches to another configuration. Members that stay keep their progress (a promoted learner keeps its
   * match); new ones start probing at the end of our log and count as recently active, so that check-quorum
   * does not depose us before they could answer (etcd-raft's initProgress).
   */
  setConfig(cs: ConfState, selfId: NodeId, lastIndex: number): NodeId[] {
    this.conf = normalConfState(cs);
    const added: NodeId[] = [];
    const members = new Set(this.members());
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const p = this.progress.get(id);
      if (p) {
        p.isLearner = this.isLearner(id);
      } else {
        const np = this.newProgress(id, selfId, lastIndex);
        np.recentActive = true;
        this.progress.set(id, np);
        added.push(id);
      }
    }
    for (const id of [...this.votes.keys()]) if (!this.isVoter(id)) this.votes.delete(id);
    return added;
  }

  private newProgress(id: NodeId, selfId: NodeId, lastIndex: number): Progress {
    const p = new Progress(id, lastIndex + 1, this.maxInflight);
    p.isLearner = this.isLearner(id);
    if (id === selfId) p.match = lastIndex;
    return p;
  }

  /** The largest index that a quorum of voters holds (by the progress the leader tracks). */
  committed(): number {
    if (this.conf.voters.length === 0) return 0;
    const matches = this.conf.voters.map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    return matches[this.quorum() - 1];
  }

  /** Whether a quorum of voters was heard from since the last call (ourselves always); clears the marks. */
  quorumActive(selfId: NodeId): boolean {
    let active = 0;
    for (const id of this.conf.voters) {
      const p = this.progress.get(id);
      if (id === selfId || p?.recentActive) active++;
    }
    for (const [id, p] of this.progress) if (id !== selfId) p.recentActive = false;
    return active >= this.quorum();
  }

  /** Whether `ids` holds a quorum of voters. */
  hasQuorum(ids: ReadonlySet<NodeId>): boolean {
    let n = 0;
    for (const id of this.conf.voters) if (ids.has(id)) n++;
    return n >= this.quorum();
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote (the first answer of each member counts). Answers of non-voters are not recorded. */
  recordVote(id: NodeId, granted: boolean): void {
    if (this.isVoter(id) && !this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): VoteResult {
    let granted = 0;
    let rejected = 0;
    for (const id of this.conf.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    if (granted >= this.quorum()) return 'won';
    if (rejected >= this.quorum()) return 'lost';
    return 'pending';
  }

  /** The voters that granted their vote (for tests and status). */
  grantedVotes(): NodeId[] {
    return this.conf.voters.filter((id) => this.votes.get(id) === true);
  }
}
