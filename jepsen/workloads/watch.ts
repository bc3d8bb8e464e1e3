// The watch workload: writers put increasing integers to one key; watchers watch it in sessions, each on a
// random member, each starting at the revision after the last one they saw, and ending on an error or after a
// few seconds (then the next session goes to another member). Every watcher must see the same ordered,
// gap-free sequence of revisions (checker/watch.ts).
//
// A session is recorded as one operation of f "watch": invoked with {member, fromRevision}, completed ok with
// what it delivered, {member, fromRevision, events: [{revision, value}]} (plus `error` when it ended on one,
// and `compactRevision` when the server cancelled it for a compaction). Events delivered before an error were
// really delivered, so a session is always ok: a watch has no effect to be unsure about.

import type { HistoryEvent } from '../history';
import { checkWatch } from '../checker/watch';
import { KvPool, type KvConn, type WatchEvent } from '../client/kv';
import type { CheckResult, Workload, WorkloadContext } from '../types';
import { memberUrls, perform, runClients, sleep, type Client } from './process';

export const WATCH_KEY = 'w';

/** One event as a session records it. */
export interface SeenEvent {
  revision: number;
  /** the written integer, or the raw text when it is not one */
  value: number | string;
}

export interface WatchSession {
  member: string;
  fromRevision: number;
  events: SeenEvent[];
  error?: string;
  compactRevision?: number;
}

export interface WatchOptions {
  /** watcher processes (default: a third of the concurrency, at least 2; always leaves one writer) */
  watchers?: number;
  /** longest session before a watcher moves to another member */
  sessionMs?: number;
}

interface Watcher {
  process: number;
  /** the last revision delivered to this watcher (0: none yet) */
  last: number;
}

/** How long finish() lets the watchers catch up to the final revision. */
const CATCH_UP_MS = 15_000;

export class WatchWorkload implements Workload {
  readonly name = 'watch';
  private readonly opts: WatchOptions;
  private watchers: Watcher[] = [];
  private nextValue = 0;

  constructor(opts: WatchOptions = {}) {
    this.opts = opts;
  }

  async run(ctx: WorkloadContext): Promise<void> {
    if (ctx.concurrency < 2) throw new Error(`watch: needs a concurrency of at least 2 (a writer and a watcher), got ${ctx.concurrency}`);
    const nWatchers = Math.min(ctx.concurrency - 1, this.opts.watchers ?? Math.max(2, Math.floor(ctx.concurrency / 3)));
    this.watchers = Array.from({ length: nWatchers }, () => ({ process: ctx.recorder.nextProcess(), last: 0 }));
    const pool = new KvPool({ timeoutMs: ctx.opTimeoutMs });
    const sessionMs = this.opts.sessionMs ?? 3000;
    try {
      const writers = runClients(ctx, pool, ctx.concurrency - nWatchers, (client) => this.write(ctx, pool, client));
      const watchers = this.watchers.map(async (w) => {
        while (!ctx.signal.aborted) {
          const conn = pool.conn(ctx.rng.pick(memberUrls(ctx)));
          // sessions of random length, so that the watchers' restarts do not line up
          await this.session(ctx, w, conn, { untilRevision: Infinity, maxMs: sessionMs / 2 + ctx.rng.int(sessionMs) });
          if (!ctx.signal.aborted) await sleep(20, ctx.signal);
        }
      });
      await Promise.all([writers, ...watchers]);
    } finally {
      pool.close();
    }
  }

  private async write(ctx: WorkloadContext, pool: KvPool, client: Client): Promise<void> {
    const v = ++this.nextValue;
    await perform(ctx, pool, client, { f: 'write', key: WATCH_KEY, value: v, kind: 'write' }, async (conn) => {
      await conn.put(WATCH_KEY, String(v));
      return { ok: v };
    });
  }

  /**
   * One recorded session of watcher `w` on `conn`, from w.last + 1; ends on an error, after `maxMs`, when the
   * run is aborted (unless `ignoreAbort`), or once `untilRevision` was delivered.
   */
  private async session(
    ctx: WorkloadContext,
    w: Watcher,
    conn: KvConn,
    opts: { untilRevision: number; maxMs: number; ignoreAbort?: boolean },
  ): Promise<void> {
    const fromRevision = w.last + 1;
    const completion = ctx.recorder.invoke(w.process, 'watch', WATCH_KEY, { member: conn.url, fromRevision });
    const session: WatchSession = { member: conn.url, fromRevision, events: [] };
    await new Promise<void>((resolve) => {
      let cancel: (() => void) | undefined;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (!opts.ignoreAbort) ctx.signal.removeEventListener('abort', finish);
        cancel?.();
        resolve();
      };
      const timer = setTimeout(finish, opts.maxMs);
      if (!opts.ignoreAbort) ctx.signal.addEventListener('abort', finish, { once: true });
      cancel = conn.watch(
        WATCH_KEY,
        { fromRevision },
        (events: WatchEvent[]) => {
          if (done) return;
          for (const ev of events) {
            session.events.push({ revision: ev.modRevision, value: ev.type === 'delete' ? 'deleted' : decode(ev.value) });
            w.last = Math.max(w.last, ev.modRevision);
          }
          if (w.last >= opts.untilRevision) finish();
        },
        (err: Error) => {
          if (done) return;
          session.error = err.message;
          const compacted = /compacted at (\d+)/.exec(err.message);
          if (compacted) session.compactRevision = Number(compacted[1]);
          finish();
        },
      );
      if (done) cancel();
    });
    completion.ok(session);
  }

  /**
   * Every watcher catches up to the key's final revision (read linearizably), session by session on random
   * members, bounded in time: a watcher that cannot is left behind, and the checker sees where it stopped.
   */
  async finish(ctx: WorkloadContext): Promise<void> {
    const pool = new KvPool({ timeoutMs: ctx.opTimeoutMs });
    try {
      const deadline = Date.now() + CATCH_UP_MS;
      let target: number | undefined;
      for (let attempt = 0; target === undefined && attempt < 50 && Date.now() < deadline; attempt++) {
        try {
          target = (await pool.pick(memberUrls(ctx)).get(WATCH_KEY)).modRevision;
        } catch (err) {
          ctx.log(`watch: final revision read failed: ${(err as Error).message}`);
          await sleep(200);
        }
      }
      if (target === undefined) {
        ctx.log('watch: could not read the final revision; the watchers do not catch up');
        return;
      }
      const goal = target;
      await Promise.all(
        this.watchers.map(async (w) => {
          for (let round = 0; w.last < goal && round < 20 && Date.now() < deadline; round++) {
            const conn = pool.conn(ctx.rng.pick(memberUrls(ctx)));
            await this.session(ctx, w, conn, { untilRevision: goal, maxMs: Math.max(1, deadline - Date.now()), ignoreAbort: true });
            if (w.last < goal) await sleep(100); // the session ended on an error: do not spin on a dead member
          }
          if (w.last < goal) ctx.log(`watch: watcher ${w.process} reached revision ${w.last} of ${goal}`);
        }),
      );
    } finally {
      pool.close();
    }
  }

  async check(events: readonly HistoryEvent[]): Promise<CheckResult[]> {
    return [checkWatch(events)];
  }
}

function decode(s: string): number | string {
  return /^-?\d+$/.test(s) ? Number(s) : s;
}
