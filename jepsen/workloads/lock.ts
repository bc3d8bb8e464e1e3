// The lock workload: a lease-based lock (etcd's recipe) with revision fencing. A client grants a short lease
// and keeps it alive, acquires the lock by creating "lock/owner" with that lease (create_revision == 0; if it
// exists, it waits, by watching, for its deletion), then appends to "lock/data" and releases.
//
// Fencing: the ownership revision (the revision of the put that created the owner key) is the token. The
// fenced write is a Txn guarded by mod_revision("lock/owner") == token, so a client whose lease expired while
// it was paused (its key deleted, maybe re-created by the next owner) cannot write: the compare fails. The
// `unfenced` variant writes with a plain put, and so shows what a lock without fencing allows under pauses;
// its checker reports those violations as expected. The pauses that matter are the clients' own (see
// CLIENT_PAUSE_PROBABILITY): one cycle in eight stalls past its lease's TTL between acquiring and writing.
//
// Keys: "lock/owner" and "lock/data" (see lockKeys). Recorded: f "acquire" (ok value: the ownership revision),
// "fenced-write" (invoked with that revision; ok value {owner: that revision, revision: the write's commit
// revision}), "release" (value: the ownership revision), and a final f "read" of the data key (the list of
// ownership revisions whose writes landed, in the order they landed).

import type { HistoryEvent } from '../history';
import { checkLock } from '../checker/lock';
import { errorText, KvPool, type KvConn } from '../client/kv';
import type { CheckResult, Workload, WorkloadContext } from '../types';
import { finalRead, perform, runClients, sleep, type Client, type OpResult } from './process';

/** The keys of a lock workload: "lock/owner" and "lock/data" ("lock-unfenced/..." for the variant, so that
 *  the two can run one after the other on one cluster without reading each other's data). */
export function lockKeys(name: string): { owner: string; data: string } {
  return { owner: `${name}/owner`, data: `${name}/data` };
}

export interface LockOptions {
  /** true: the fenced write guards on the ownership revision; false: a plain put */
  fenced: boolean;
  /** lease TTL in seconds (short, so that a pause expires it) */
  ttlSec?: number;
  /** longest wait for the lock before an acquire is recorded as failed */
  acquireWaitMs?: number;
}

/** Share of lock cycles whose client stalls past its lease's TTL between acquiring and writing. */
const CLIENT_PAUSE_PROBABILITY = 1 / 8;
/** How far past the TTL such a stall lasts (the server expires a lease a little after its TTL). */
const CLIENT_PAUSE_EXTRA_MS = 1500;

export class LockWorkload implements Workload {
  readonly name: string;
  private readonly fenced: boolean;
  private readonly ttlSec: number;
  private readonly acquireWaitMs: number;
  private readonly owner: string;
  private readonly data: string;

  constructor(opts: LockOptions) {
    this.fenced = opts.fenced;
    this.name = opts.fenced ? 'lock' : 'lock-unfenced';
    ({ owner: this.owner, data: this.data } = lockKeys(this.name));
    this.ttlSec = opts.ttlSec ?? 2;
    this.acquireWaitMs = opts.acquireWaitMs ?? 3000;
    if (!Number.isInteger(this.ttlSec) || this.ttlSec < 1) throw new Error(`lock: ttlSec must be a positive integer, got ${this.ttlSec}`);
  }

  async run(ctx: WorkloadContext): Promise<void> {
    const pool = new KvPool({ timeoutMs: ctx.opTimeoutMs });
    try {
      await runClients(ctx, pool, ctx.concurrency, (client) => this.cycle(ctx, pool, client));
    } finally {
      pool.close();
    }
  }

  /** One lease, one acquisition, one or two writes, one release. */
  private async cycle(ctx: WorkloadContext, pool: KvPool, client: Client): Promise<void> {
    const conn = client.conn;
    let lease: string;
    try {
      lease = (await conn.leaseGrant(this.ttlSec)).id;
    } catch (err) {
      ctx.log(`lock: lease grant on ${conn.url} failed: ${errorText(err)}`);
      await sleep(100, ctx.signal);
      client.conn = pool.pick(ctx.nodes().map((n) => n.clientUrl));
      return;
    }
    const keepAlive = this.keepAlive(conn, lease, ctx.opTimeoutMs);
    try {
      let token: number | undefined;
      const acquired = await perform(ctx, pool, client, { f: 'acquire', key: this.owner, value: null, kind: 'write', maxMs: this.acquireWaitMs + 2 * ctx.opTimeoutMs }, async (c) => {
        const r = await this.acquire(c, lease, String(client.process));
        if (typeof r === 'number') {
          token = r;
          return { ok: r };
        }
        return { fail: r };
      });
      if (acquired !== 'ok' || token === undefined) return;
      const rev = token;
      // A client pause, as in a stop-the-world GC between taking a lock and using it (Kleppmann's example for
      // fencing tokens): one cycle in eight stops keeping its lease alive and stalls past the TTL before it
      // writes, so that the lock has meanwhile expired and may have passed to another client. Pausing a
      // server does not do it: a paused leader's leases do not expire meanwhile.
      if (ctx.rng.next() < CLIENT_PAUSE_PROBABILITY) {
        keepAlive.stop();
        await sleep(this.ttlSec * 1000 + CLIENT_PAUSE_EXTRA_MS, ctx.signal);
      }
      const writes = 1 + ctx.rng.int(2);
      for (let i = 0; i < writes; i++) {
        await sleep(ctx.rng.int(50), ctx.signal);
        await perform(ctx, pool, client, { f: 'fenced-write', key: this.data, value: rev, kind: 'write' }, (c) => this.write(c, rev));
      }
      await perform(ctx, pool, client, { f: 'release', key: this.owner, value: rev, kind: 'write' }, async (c) => {
        const r = await c.txn([{ key: this.owner, target: 'mod', op: '=', operand: rev }], [{ type: 'del', key: this.owner }]);
        return r.succeeded ? { ok: rev } : { fail: 'no longer the owner (the lease expired)' };
      });
    } finally {
      keepAlive.stop();
      // Unrecorded cleanup: the lease (and any owner key it still holds) goes away, or expires by itself.
      await conn.leaseRevoke(lease, { timeoutMs: Math.min(1000, ctx.opTimeoutMs) }).catch(() => undefined);
    }
  }

  /** Keeps the lease alive every third of its TTL until stopped (or until the lease is gone). */
  private keepAlive(conn: KvConn, lease: string, timeoutMs: number): { stop(): void } {
    let stopped = false;
    const loop = async (): Promise<void> => {
      while (!stopped) {
        await sleep((this.ttlSec * 1000) / 3);
        if (stopped) return;
        try {
          const r = await conn.leaseKeepAliveOnce(lease, { timeoutMs: Math.min(timeoutMs, this.ttlSec * 1000) });
          if (r.ttl <= 0) return; // expired: nothing left to keep
        } catch {
          // a missed round; the next one may still save the lease
        }
      }
    };
    void loop();
    return {
      stop() {
        stopped = true;
      },
    };
  }

  /** The ownership revision, or why the lock was not acquired within the wait (nothing was written then). */
  private async acquire(conn: KvConn, lease: string, owner: string): Promise<number | string> {
    const deadline = Date.now() + this.acquireWaitMs;
    for (let attempt = 0; attempt < 100; attempt++) {
      const r = await conn.txn(
        [{ key: this.owner, target: 'create', op: '=', operand: 0 }],
        [{ type: 'put', key: this.owner, value: owner, lease }],
        [{ type: 'get', key: this.owner }],
      );
      if (r.succeeded) return r.revision;
      const held = r.responses[0];
      const kv = held?.type === 'get' ? held.kvs[0] : undefined;
      const left = deadline - Date.now();
      if (left <= 0) return `held by ${kv?.value ?? 'another client'} for ${this.acquireWaitMs} ms`;
      if (kv) await waitForDeletion(conn, this.owner, kv.modRevision + 1, left);
    }
    return 'gave up after 100 attempts';
  }

  private async write(conn: KvConn, rev: number): Promise<OpResult> {
    let current: number[];
    try {
      current = decodeRevs(this.data, (await conn.get(this.data)).value);
    } catch (err) {
      return { fail: `reading ${this.data}: ${errorText(err)}` }; // nothing was written yet
    }
    const next = JSON.stringify([...current, rev]);
    // ok carries the write's commit revision: the checker orders the writes that took effect by it
    if (!this.fenced) {
      const r = await conn.put(this.data, next);
      return { ok: { owner: rev, revision: r.revision } };
    }
    const r = await conn.txn([{ key: this.owner, target: 'mod', op: '=', operand: rev }], [{ type: 'put', key: this.data, value: next }]);
    return r.succeeded ? { ok: { owner: rev, revision: r.revision } } : { fail: 'fenced out: the lock has another owner or none' };
  }

  /** The final read of lock/data, retried until one answers (bounded). */
  async finish(ctx: WorkloadContext): Promise<void> {
    await finalRead(ctx, this.name, this.data, async (c) => {
      const v = (await c.get(this.data)).value;
      return { ok: v === null ? [] : safeDecode(v) };
    });
  }

  async check(events: readonly HistoryEvent[]): Promise<CheckResult[]> {
    return [checkLock(events, { fenced: this.fenced })];
  }
}

/** Resolves once `key` is deleted at or after `fromRevision`, on a watch error, or after `ms`. */
function waitForDeletion(conn: KvConn, key: string, fromRevision: number, ms: number): Promise<void> {
  return new Promise((resolve) => {
    let cancel: (() => void) | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cancel?.();
      resolve();
    };
    const timer = setTimeout(finish, ms);
    cancel = conn.watch(
      key,
      { fromRevision },
      (events) => {
        if (events.some((e) => e.type === 'delete')) finish();
      },
      () => finish(),
    );
    if (done) cancel();
  });
}

function decodeRevs(key: string, v: string | null): number[] {
  if (v === null) return [];
  const parsed = safeDecode(v);
  if (typeof parsed === 'string') throw new Error(`${key} holds ${JSON.stringify(v)}, not a list of revisions`);
  return parsed;
}

/** The list of revisions, or the raw text when the value is not one (the checker reports it). */
function safeDecode(v: string): number[] | string {
  try {
    const x: unknown = JSON.parse(v);
    if (Array.isArray(x) && x.every((n) => Number.isInteger(n))) return x as number[];
  } catch {
    // fall through
  }
  return v;
}
