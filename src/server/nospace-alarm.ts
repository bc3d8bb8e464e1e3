// A member's NOSPACE alarm (etcd's): raised when the backend grows past --quota-backend-bytes, or when a write
// to the WAL or the backend fails for lack of space (member.ts resets its storage then). While any member's
// NOSPACE alarm is raised, every member refuses the writes that add data (etcd's capped applier); deletes,
// compaction and lease revocation stay allowed, since they are how space is freed. An operator disarms it
// (`keel alarm disarm`) once space is back.

import type { Logger } from 'pino';
import { Errors, type AlarmMember } from '../kv/api';
import type { NodeId } from '../raft/core/types';
import { forwardChange } from './membership';

export interface NoSpaceAlarmDeps {
  /** This member's id (known once its identity is resolved at start). */
  memberId(): NodeId;
  log: Logger;
  quotaBackendBytes: number;
  /** The alarms raised, from the replicated state (undefined while the store is closed). */
  alarms(): AlarmMember[] | undefined;
  /** Whether this member can propose through its own Raft now (false while its storage is failing). */
  canPropose(): boolean;
  /** Proposes ACTIVATE NOSPACE for this member and resolves once applied. */
  proposeAlarm(): Promise<unknown>;
  /** The other members' peer URLs (a failing member asks them; the leader takes the request). */
  peerUrls(): string[];
  /** Bytes the backend takes now (undefined while the store is closed). */
  dbSize(): Promise<number> | undefined;
  closed(): boolean;
}

/** How often the backend's size is measured for the quota check. */
const MEASURE_EVERY_MS = 1000;
/** Attempts (one a second) to get the alarm raised before giving up: a minute. */
const RAISE_ATTEMPTS = 60;

export class NoSpaceAlarm {
  private dbSize = 0;
  private timer?: NodeJS.Timeout;
  private raising = false;

  constructor(private readonly deps: NoSpaceAlarmDeps) {}

  /** Starts measuring the backend once a second. */
  start(): void {
    this.measure();
    this.timer = setInterval(() => this.measure(), MEASURE_EVERY_MS);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private measure(): void {
    this.deps.dbSize()?.then(
      (n) => {
        this.dbSize = n;
      },
      () => undefined,
    );
  }

  /** Throws etcd's "database space exceeded" for a write that adds data while the alarm is (or must be) raised. */
  checkWrite(): void {
    if (this.deps.alarms()?.some((a) => a.alarm === 'NOSPACE')) throw Errors.noSpace();
    if (this.dbSize > this.deps.quotaBackendBytes) {
      this.raise(`backend ${this.dbSize} bytes is above the quota of ${this.deps.quotaBackendBytes} bytes`);
      throw Errors.noSpace();
    }
  }

  /**
   * Raises this member's alarm in the background: through its own log when it can write, else by asking the
   * other members' peer listeners until the leader takes it (a member whose disk is full cannot run Raft).
   */
  raise(why: string): void {
    const { deps } = this;
    if (this.raising || deps.alarms()?.some((a) => a.memberId === deps.memberId() && a.alarm === 'NOSPACE')) return;
    this.raising = true;
    deps.log.warn({ why }, 'raising a NOSPACE alarm');
    const viaPeers = async (): Promise<boolean> => {
      for (const url of deps.peerUrls()) {
        try {
          await forwardChange(url, 'nospace', { memberId: deps.memberId() }, 3000);
          return true;
        } catch {
          // Not the leader, or unreachable: the next one.
        }
      }
      return false;
    };
    const attempt = async (): Promise<void> => {
      for (let left = RAISE_ATTEMPTS; left > 0 && !deps.closed(); left--) {
        const done = deps.canPropose() ? await deps.proposeAlarm().then(() => true, () => false) : await viaPeers();
        if (done) {
          deps.log.warn('NOSPACE alarm raised');
          return;
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    };
    void attempt().finally(() => {
      this.raising = false;
    });
  }
}
