// The leader's lease duties, on a timer: propose a revoke for every lease past its expiry (the revoke is
// replicated, so the attached keys disappear at one revision on every member), and checkpoint remaining
// TTLs through the log now and then, so that a restart does not give every lease its full TTL back.

import type { Logger } from 'pino';
import { Lessor } from '../kv/lessor';
import type { Command, CommandResult, LeaseChanges, LeaseRecord } from '../kv/state-machine';

/** etcd checks for expired leases every 500 ms. */
const EXPIRY_CHECK_MS = 500;

export interface LeaseKeeperOptions {
  /** Proposes a command; resolves when applied here. */
  propose: (cmd: Command) => Promise<CommandResult>;
  isLeader: () => boolean;
  /** Monotonic milliseconds. */
  now: () => number;
  electionTimeoutMs: number;
  /** Remaining TTLs are checkpointed this often (etcd's default: 5 minutes). */
  checkpointIntervalMs: number;
  logger: Logger;
}

export class LeaseKeeper {
  readonly lessor: Lessor;
  private readonly timer: NodeJS.Timeout;
  private lastCheckpoint: number;
  private checkpointing = false;

  constructor(private readonly opts: LeaseKeeperOptions) {
    // A revoke that was proposed but not applied (lost with a leader change) is proposed again after this.
    this.lessor = new Lessor({ revokeRetryMs: 2 * opts.electionTimeoutMs });
    this.lastCheckpoint = opts.now();
    this.timer = setInterval(() => this.tick(), EXPIRY_CHECK_MS);
    this.timer.unref();
  }

  reset(records: LeaseRecord[]): void {
    this.lessor.reset(records, this.opts.now());
  }

  onApplied(changes: LeaseChanges): void {
    if (changes.upserted.length > 0 || changes.removed.length > 0) this.lessor.onApplied(changes, this.opts.now());
  }

  /** This member just became leader. */
  onPromote(): void {
    this.lessor.promote(this.opts.electionTimeoutMs, this.opts.now());
    this.lastCheckpoint = this.opts.now();
  }

  remainingSeconds(id: number): number | undefined {
    return this.lessor.remainingSeconds(id, this.opts.now());
  }

  close(): void {
    clearInterval(this.timer);
  }

  private tick(): void {
    if (!this.opts.isLeader()) return;
    const now = this.opts.now();
    for (const id of this.lessor.takeExpired(now)) {
      this.opts.logger.info({ lease: id.toString(16) }, 'lease expired; revoking it');
      this.opts.propose({ op: 'leaseRevoke', id }).catch((err: Error) => {
        // Proposed again after the retry delay if the lease is still there.
        this.opts.logger.warn({ lease: id.toString(16), err: err.message }, 'revoking an expired lease failed');
      });
    }
    if (!this.checkpointing && now - this.lastCheckpoint >= this.opts.checkpointIntervalMs) {
      this.lastCheckpoint = now;
      const checkpoints = this.lessor.checkpoints(now, this.opts.checkpointIntervalMs);
      if (checkpoints.length === 0) return;
      this.checkpointing = true;
      this.opts
        .propose({ op: 'leaseCheckpoint', checkpoints })
        .catch((err: Error) => this.opts.logger.warn({ err: err.message }, 'lease checkpoint failed'))
        .finally(() => {
          this.checkpointing = false;
        });
    }
  }
}
