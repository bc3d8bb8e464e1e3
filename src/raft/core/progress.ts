// The leader's view of one follower (etcd-io/raft's tracker/progress.go, simplified to what Keel uses).
//
// Probe:     we do not know where the follower's log matches ours; send one append at a time and wait.
// Replicate: the follower is in sync; stream appends optimistically, bounded by `inflights`.
// Snapshot:  the follower is behind our first retained index; send the snapshot in chunks, no appends.

import type { NodeId, Snapshot } from './types';

export const enum ProgressState {
  Probe = 'probe',
  Replicate = 'replicate',
  Snapshot = 'snapshot',
}

/** A bounded FIFO of the last index of each append in flight; freed as acknowledgements arrive. */
export class Inflights {
  private readonly buf: number[] = [];

  constructor(readonly capacity: number) {}

  get full(): boolean {
    return this.buf.length >= this.capacity;
  }

  get count(): number {
    return this.buf.length;
  }

  add(lastIndex: number): void {
    this.buf.push(lastIndex);
  }

  /** Frees every append whose last index is <= index. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.buf.length && this.buf[n] <= index) n++;
    if (n > 0) this.buf.splice(0, n);
  }

  /** Frees the oldest append in flight (etcd-io/raft's FreeFirstOne). */
  freeFirstOne(): void {
    this.buf.shift();
  }

  reset(): void {
    this.buf.length = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = ProgressState.Probe;
  /** In Probe: an append was sent and we wait for its answer (or for the next heartbeat) before another. */
  probeSent = false;
  /** Set by any message from the follower; check-quorum reads and clears it once per election timeout. */
  recentActive = false;
  /** A learner gets the log like any follower but never counts for a quorum. */
  isLearner = false;
  readonly inflights: Inflights;
  /** In Snapshot: the snapshot being sent, the next byte to send, and the tick of the last chunk sent. */
  snapshot?: Snapshot;
  snapOffset = 0;
  snapIdleTicks = 0;

  constructor(
    readonly id: NodeId,
    next: number,
    maxInflight: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  becomeProbe(): void {
    // After a snapshot, the follower has at least the snapshot's index.
    if (this.state === ProgressState.Snapshot && this.snapshot) {
      const pending = this.snapshot.meta.index;
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.next = this.match + 1;
    }
    this.state = ProgressState.Probe;
    this.probeSent = false;
    this.snapshot = undefined;
    this.snapOffset = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate;
    this.next = this.match + 1;
    this.probeSent = false;
    this.snapshot = undefined;
    this.snapOffset = 0;
    this.inflights.reset();
  }

  becomeSnapshot(snapshot: Snapshot): void {
    this.state = ProgressState.Snapshot;
    this.snapshot = snapshot;
    this.snapOffset = 0;
    this.snapIdleTicks = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** An acknowledgement of everything up to `index`. Returns whether it told us something new. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * The follower refused an append at `rejected`; `hint` is where to try next (computed from the
   * follower's conflict hint). Returns false if the refusal is stale (an older append).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // In Replicate, a refusal at or below match is an old, reordered answer.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    // In Probe, only the answer to the append we sent (at next - 1) counts.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }

  /** Whether the leader must hold appends to this follower for now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full;
      case ProgressState.Snapshot:
        return true;
    }
  }
}
