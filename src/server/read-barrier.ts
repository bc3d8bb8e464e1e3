// Linearizable reads by ReadIndex (Raft thesis §6.4): a read waits until the leader has confirmed, with a
// heartbeat round, that it was still leader when the read arrived, and until this member has applied up to
// the commit index the leader reported. Reads that arrive while a round is in flight share the next round,
// so one heartbeat round serves any number of concurrent reads (etcd's linearizableReadLoop).

import { BUGS } from '../bugs';
import { Errors } from '../kv/api';
import { NONE, type ReadState } from '../raft/core/types';
import type { RaftNode } from '../raft/node';

interface ReadRound {
  /** Every context this round was sent under: a retry adds one, and an answer to any of them serves it. */
  keys: Set<string>;
  waiters: Array<() => void>;
  sentAt: number;
}

/** A ReadIndex round unanswered for this long is sent again (etcd's readIndexRetryTime). */
export const READ_RETRY_MS = 500;

export class ReadBarrier {
  private seq = 0;
  /** The round in flight, and the reads that arrived since it was sent (they take the next one). */
  private round?: ReadRound;
  private nextWaiters: Array<() => void> = [];
  /** Reads confirmed by the leader, waiting for the local apply to reach their index. */
  private readonly appliedWaiters: Array<{ index: number; done: () => void }> = [];
  private readonly retryTimer: NodeJS.Timeout;

  constructor(
    private readonly node: RaftNode,
    private readonly memberId: string,
    private readonly timeoutMs: number,
  ) {
    // A round whose answer was lost (leader change, dropped message) is sent again.
    this.retryTimer = setInterval(() => this.retry(), READ_RETRY_MS / 2);
  }

  /** Resolves once this member has applied everything committed before the call. */
  wait(): Promise<void> {
    // The Jepsen self-test's broken build only (BUGS is all false otherwise): no round to the leader at all.
    if (BUGS.readsWithoutReadIndex) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      let finished = false;
      const timer = setTimeout(() => {
        finished = true;
        reject(this.node.raft.lead === NONE ? Errors.noLeader() : Errors.timeout());
      }, this.timeoutMs);
      this.nextWaiters.push(() => {
        if (finished) return;
        clearTimeout(timer);
        resolve();
      });
      if (!this.round) this.startRound();
    });
  }

  /** The leader changed: ask the new one at once rather than after the retry delay. */
  onLeaderChange(): void {
    this.retry(true);
  }

  onReadState(rs: ReadState): void {
    const round = this.round;
    if (!round || !round.keys.has(Buffer.from(rs.context).toString('latin1'))) return;
    this.round = undefined;
    const done = (): void => {
      for (const w of round.waiters) w();
    };
    if (this.node.applied >= rs.index) done();
    else this.appliedWaiters.push({ index: rs.index, done });
    if (this.nextWaiters.length > 0) this.startRound();
  }

  onApplied(applied: number): void {
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      if (this.appliedWaiters[i].index <= applied) {
        const [w] = this.appliedWaiters.splice(i, 1);
        w.done();
      }
    }
  }

  close(): void {
    clearInterval(this.retryTimer);
  }

  private startRound(): void {
    if (this.nextWaiters.length === 0) return;
    this.round = { keys: new Set(), waiters: this.nextWaiters, sentAt: 0 };
    this.nextWaiters = [];
    this.send(this.round);
  }

  private send(round: ReadRound): void {
    const ctx = Buffer.from(`${this.memberId}/${++this.seq}`);
    round.keys.add(ctx.toString('latin1'));
    round.sentAt = Date.now();
    this.node.readIndex(ctx);
  }

  private retry(force = false): void {
    const round = this.round;
    if (!round) {
      if (this.nextWaiters.length > 0) this.startRound();
      return;
    }
    // The request or its answer may have been lost: ask again under a new context, still accepting an
    // answer to the old ones, so a slow leader cannot starve the round.
    if (force || Date.now() - round.sentAt >= READ_RETRY_MS) this.send(round);
  }
}
