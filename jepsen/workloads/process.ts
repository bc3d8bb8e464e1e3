// What every workload does the same way: logical client processes, each bound to one member, each with one
// operation in flight, recording every operation as invoke then ok / fail / info.
//
// An operation that ends `info` (indeterminate) retires its process number for good (history.ts); the logical
// client goes on under a fresh number from the recorder and on a re-picked member, as Jepsen's clients do.
// Nothing is retried: a retry of a write whose first attempt may have taken effect would be a second write
// the history does not show.

import { classify, errorText, KvPool, type KvConn } from '../client/kv';
import type { Completion, WorkloadContext } from '../types';

/** One logical client: its current process number and the member it talks to. */
export interface Client {
  process: number;
  conn: KvConn;
  /** which logical client this is (0-based, stable across re-picks) */
  slot: number;
}

/** What an operation's body returns: ok with the completion's value, or a definite fail with its reason. */
export type OpResult = { ok: unknown } | { fail: string };

/** The members clients may use now, by client URL. */
export function memberUrls(ctx: WorkloadContext): string[] {
  return ctx.nodes().map((n) => n.clientUrl);
}

export function newClient(ctx: WorkloadContext, pool: KvPool, slot: number): Client {
  return { process: ctx.recorder.nextProcess(), conn: pool.pick(memberUrls(ctx)), slot };
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Records one operation of `client`: invokes it, runs `body` on the client's connection and completes it. A
 * thrown error is classified (client/kv.ts classify: `kind` says whether the operation can have an effect);
 * on `info`, the client moves to a fresh process number and a re-picked member. A body that does not settle
 * within `maxMs` (default: the op timeout) plus a grace (a hung stream) is recorded `info` and its late answer ignored.
 */
export async function perform(
  ctx: WorkloadContext,
  pool: KvPool,
  client: Client,
  op: { f: string; key?: string; value: unknown; kind: 'read' | 'write'; maxMs?: number },
  body: (conn: KvConn) => Promise<OpResult>,
): Promise<'ok' | 'fail' | 'info'> {
  const c: Completion = ctx.recorder.invoke(client.process, op.f, op.key, op.value);
  let outcome: 'ok' | 'fail' | 'info';
  let errored = false; // an error (not a refused compare): the member may be down or leaderless
  let guard: NodeJS.Timeout | undefined;
  const limitMs = (op.maxMs ?? ctx.opTimeoutMs) + 2000;
  const hung = new Promise<'hung'>((resolve) => {
    guard = setTimeout(() => resolve('hung'), limitMs);
  });
  try {
    const r = await Promise.race([body(client.conn), hung]);
    if (r === 'hung') {
      errored = true;
      outcome = op.kind === 'read' ? 'fail' : 'info';
      const why = `no answer within ${limitMs} ms`;
      if (outcome === 'fail') c.fail(why);
      else c.info(why);
    } else if ('ok' in r) {
      outcome = 'ok';
      c.ok(r.ok);
    } else {
      outcome = 'fail';
      c.fail(r.fail);
      // A body that caught an error of its own first step (the append workload's reads) reports it as a
      // failure: the member may be down all the same, so move on and pause as for a thrown error.
      errored = UNAVAILABLE.test(r.fail);
    }
  } catch (err) {
    errored = true;
    outcome = classify(err, op.kind);
    if (outcome === 'fail') c.fail(errorText(err));
    else c.info(errorText(err));
  } finally {
    clearTimeout(guard);
  }
  if (outcome === 'info') {
    client.process = ctx.recorder.nextProcess();
    client.conn = pool.pick(memberUrls(ctx));
  }
  if (errored) {
    // A member that is down or without a leader fails every call at once: try another one, after a pause so
    // that the clients do not spin.
    if (outcome === 'fail') client.conn = pool.pick(memberUrls(ctx));
    await sleep(20, ctx.signal);
  }
  return outcome;
}

/**
 * Runs `count` logical clients until the run's signal aborts, each calling `step` in a loop. A step that
 * throws (a harness bug, not an operation error: those are recorded by perform) stops the run with that error.
 */
/** gRPC statuses of a failure that says the member could not serve, rather than that a compare failed. */
const UNAVAILABLE = /\b(UNAVAILABLE|DEADLINE_EXCEEDED|CANCELLED)\b/;

export async function runClients(
  ctx: WorkloadContext,
  pool: KvPool,
  count: number,
  step: (client: Client) => Promise<void>,
): Promise<void> {
  const loops = Array.from({ length: count }, async (_v, slot) => {
    const client = newClient(ctx, pool, slot);
    while (!ctx.signal.aborted) await step(client);
  });
  await Promise.all(loops);
}

/** How long a workload's final read is retried (reads are idempotent) before the run goes on without it. */
export const FINAL_READ_MS = 15_000;

/**
 * A workload's final read, recorded as f "read" and retried every 200 ms until one answers or FINAL_READ_MS
 * (at most 100 attempts) have passed; the checkers say unknown without one.
 */
export async function finalRead(ctx: WorkloadContext, name: string, key: string | undefined, body: (conn: KvConn) => Promise<OpResult>): Promise<void> {
  const pool = new KvPool({ timeoutMs: ctx.opTimeoutMs });
  try {
    const client = newClient(ctx, pool, 0);
    const deadline = Date.now() + FINAL_READ_MS;
    for (let attempt = 0; attempt < 100 && Date.now() < deadline; attempt++) {
      const outcome = await perform(ctx, pool, client, { f: 'read', ...(key === undefined ? {} : { key }), value: null, kind: 'read' }, body);
      if (outcome === 'ok') return;
      await sleep(200);
    }
    ctx.log(`${name}: no final read succeeded within ${FINAL_READ_MS} ms`);
  } finally {
    pool.close();
  }
}
