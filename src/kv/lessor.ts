// The member-local half of leases: when each lease expires, by this member's clock. The replicated half
// (which leases exist, their TTL, the remaining TTL as of the last keep-alive or checkpoint, the keys
// attached) is in the state machine. Only the leader acts on expiry, by proposing a revoke; every member
// keeps estimates so that a new leader can take over:
//
// - A member learns of a grant or keep-alive when it applies it, which is after the leader did (the leader
//   applies once a quorum has the entry), so its estimate `apply time + TTL` is never earlier than the
//   leader's. A new leader extends every estimate by one election timeout on top (etcd's Promote), so a
//   leader change never expires a lease whose holder keeps it alive.
// - After a restart, a member knows only the replicated remaining TTL: expiry = start + remaining.
//
// Time enters only through `now` arguments (milliseconds, monotonic), so the logic is tested without a clock.

import type { LeaseChanges, LeaseRecord } from './state-machine';

interface LeaseClock {
  /** Granted TTL, seconds. */
  ttl: number;
  /** When this member expects the lease to expire, ms on the caller's monotonic clock. */
  expiresAt: number;
  /** A revoke for it was proposed at this time (leader only); not proposed again before the retry delay. */
  revokeProposedAt?: number;
}

export interface LessorOptions {
  /** How long a proposed revoke may stay unapplied before it is proposed again. */
  revokeRetryMs: number;
}

export class Lessor {
  private readonly leases = new Map<number, LeaseClock>();

  constructor(private readonly opts: LessorOptions) {}

  /** Replaces every estimate with the replicated records (start, snapshot install). */
  reset(records: LeaseRecord[], now: number): void {
    this.leases.clear();
    for (const r of records) this.leases.set(r.id, { ttl: r.ttl, expiresAt: now + r.remainingTtl * 1000 });
  }

  /** Applied grants, keep-alives, checkpoints and revokes. */
  onApplied(changes: LeaseChanges, now: number): void {
    for (const r of changes.upserted) {
      // A checkpoint records a remaining TTL measured earlier on the leader; never move an estimate earlier
      // because of one (a keep-alive sets remaining = ttl, so it moves it forward as it should).
      const prev = this.leases.get(r.id);
      const expiresAt = now + r.remainingTtl * 1000;
      this.leases.set(r.id, {
        ttl: r.ttl,
        expiresAt: prev === undefined ? expiresAt : Math.max(prev.expiresAt, expiresAt),
      });
    }
    for (const id of changes.removed) this.leases.delete(id);
  }

  /** This member became leader: give every lease one more election timeout (etcd's lessor.Promote). */
  promote(extendMs: number, now: number): void {
    for (const l of this.leases.values()) {
      l.expiresAt = Math.max(l.expiresAt, now) + extendMs;
      l.revokeProposedAt = undefined;
    }
  }

  /** Leases past their expiry whose revoke is not already pending (leader only). Marks them pending. */
  takeExpired(now: number): number[] {
    const out: number[] = [];
    for (const [id, l] of this.leases) {
      if (l.expiresAt > now) continue;
      if (l.revokeProposedAt !== undefined && now - l.revokeProposedAt < this.opts.revokeRetryMs) continue;
      l.revokeProposedAt = now;
      out.push(id);
    }
    return out;
  }

  /** Seconds left by this member's estimate (rounded up, never negative); undefined: unknown lease. */
  remainingSeconds(id: number, now: number): number | undefined {
    const l = this.leases.get(id);
    if (l === undefined) return undefined;
    return Math.max(0, Math.ceil((l.expiresAt - now) / 1000));
  }

  /** Remaining TTLs to checkpoint through the log (leader only): leases that will not expire before the
   *  next checkpoint would be taken, in seconds (at least 1). */
  checkpoints(now: number, minRemainingMs: number): { id: number; remainingTtl: number }[] {
    const out: { id: number; remainingTtl: number }[] = [];
    for (const [id, l] of this.leases) {
      const left = l.expiresAt - now;
      if (left < minRemainingMs) continue;
      // Never checkpoint more than the TTL: an estimate extended by promote() can exceed it.
      out.push({ id, remainingTtl: Math.max(1, Math.min(l.ttl, Math.ceil(left / 1000))) });
    }
    return out;
  }

  has(id: number): boolean {
    return this.leases.has(id);
  }

  get size(): number {
    return this.leases.size;
  }
}
