// The set workload: unique adds (each a put of set/<v>), then one final read of the whole prefix. The checker
// (checker/set.ts) wants every acknowledged add in the final read and nothing that was never attempted.

import type { HistoryEvent } from '../history';
import { checkSet } from '../checker/set';
import { KvPool } from '../client/kv';
import type { CheckResult, Workload, WorkloadContext } from '../types';
import { finalRead, perform, runClients } from './process';

export const SET_PREFIX = 'set/';

/** How long finish() keeps trying the final read (every failed attempt is recorded) before giving up. */

export class SetWorkload implements Workload {
  readonly name = 'set';
  private nextValue = 0;

  async run(ctx: WorkloadContext): Promise<void> {
    const pool = new KvPool({ timeoutMs: ctx.opTimeoutMs });
    try {
      await runClients(ctx, pool, ctx.concurrency, async (client) => {
        const v = this.nextValue++;
        await perform(ctx, pool, client, { f: 'add', value: v, kind: 'write' }, async (conn) => {
          await conn.put(`${SET_PREFIX}${v}`, String(v));
          return { ok: v };
        });
      });
    } finally {
      pool.close();
    }
  }

  /** The final read: a linearizable range over the prefix, retried (reads are idempotent) until one answers. */
  async finish(ctx: WorkloadContext): Promise<void> {
    await finalRead(ctx, 'set', undefined, async (conn) => {
      const r = await conn.range(SET_PREFIX);
      const values = r.kvs.map((kv) => decode(kv.key.slice(SET_PREFIX.length))).sort(compareValues);
      return { ok: values };
    });
  }

  async check(events: readonly HistoryEvent[]): Promise<CheckResult[]> {
    return [checkSet(events)];
  }
}

/** A key's suffix as the value added: the number, or the raw text when it is not one (the checker reports it). */
function decode(s: string): number | string {
  return /^\d+$/.test(s) ? Number(s) : s;
}

function compareValues(a: number | string, b: number | string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
}
