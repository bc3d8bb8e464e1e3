// The register workload: read / write / compare-and-set on independent keys, checked for linearizability key
// by key (checker/linearizable.ts). Values are small integers, unique per key, stored as their decimal text.
//
// The WGL search is exponential in the concurrency of a key's history, and indeterminate writes stay open to
// the end of it: a key that lives the whole run becomes too costly to check. So, as Jepsen's independent keys
// do, each key takes a bounded number of operations and is then replaced by a fresh one.

import { pairHistory, type HistoryEvent } from '../history';
import { checkLinearizable, formatResult } from '../checker/linearizable';
import { KvPool } from '../client/kv';
import type { CheckResult, Workload, WorkloadContext } from '../types';
import { perform, runClients, type Client } from './process';

export interface RegisterOptions {
  /** keys in use at any time */
  keys?: number;
  /** operations on a key before it is replaced by a fresh one */
  opsPerKey?: number;
  /** key prefix */
  prefix?: string;
}

interface KeyState {
  name: string;
  ops: number;
  /** the last value written or proposed for this key (cas targets come from here) */
  last: number;
}

export class RegisterWorkload implements Workload {
  readonly name = 'register';
  private readonly nKeys: number;
  private readonly opsPerKey: number;
  private readonly prefix: string;

  constructor(opts: RegisterOptions = {}) {
    this.nKeys = opts.keys ?? 10;
    this.opsPerKey = opts.opsPerKey ?? 200;
    this.prefix = opts.prefix ?? 'reg/';
    if (!Number.isInteger(this.nKeys) || this.nKeys < 1) throw new Error(`register: keys must be a positive integer, got ${this.nKeys}`);
    if (!Number.isInteger(this.opsPerKey) || this.opsPerKey < 1) {
      throw new Error(`register: opsPerKey must be a positive integer, got ${this.opsPerKey}`);
    }
  }

  async run(ctx: WorkloadContext): Promise<void> {
    let generation = 0;
    const fresh = (): KeyState => ({ name: `${this.prefix}k${generation++}`, ops: 0, last: 0 });
    const slots: KeyState[] = Array.from({ length: this.nKeys }, fresh);
    const pool = new KvPool({ timeoutMs: ctx.opTimeoutMs });
    try {
      await runClients(ctx, pool, ctx.concurrency, async (client) => {
        const i = ctx.rng.int(slots.length);
        const k = slots[i];
        if (++k.ops >= this.opsPerKey) slots[i] = fresh();
        await this.step(ctx, pool, client, k);
      });
    } finally {
      pool.close();
    }
  }

  private async step(ctx: WorkloadContext, pool: KvPool, client: Client, k: KeyState): Promise<void> {
    const roll = ctx.rng.next();
    if (roll < 0.5) {
      await perform(ctx, pool, client, { f: 'read', key: k.name, value: null, kind: 'read' }, async (conn) => {
        const r = await conn.get(k.name);
        return { ok: parseValue(r.value) };
      });
    } else if (roll < 0.75) {
      const v = ++k.last;
      await perform(ctx, pool, client, { f: 'write', key: k.name, value: v, kind: 'write' }, async (conn) => {
        await conn.put(k.name, String(v));
        return { ok: v };
      });
    } else {
      // from: one of the recent values (the current one often enough for some cas to succeed)
      const from = Math.max(0, k.last - ctx.rng.int(3));
      const to = ++k.last;
      await perform(ctx, pool, client, { f: 'cas', key: k.name, value: [from, to], kind: 'write' }, async (conn) => {
        const r = await conn.txn([{ key: k.name, target: 'value', op: '=', operand: String(from) }], [
          { type: 'put', key: k.name, value: String(to) },
        ]);
        return r.succeeded ? { ok: [from, to] } : { fail: 'compare failed' };
      });
    }
  }

  /** Nothing to do at the end: every read is checked as it happened. */
  async finish(): Promise<void> {}

  async check(events: readonly HistoryEvent[], opts: { budgetMs: number; workers: number }): Promise<CheckResult[]> {
    const ops = pairHistory(events);
    const r = await checkLinearizable(ops, { model: 'register', budgetMs: opts.budgetMs, workers: opts.workers });
    const summary = formatResult(r, { maxOps: 0 }).split('\n')[0];
    return [{ checker: 'linearizable', verdict: r.verdict, summary, details: r }];
  }
}

/** A stored value as the history holds it: the number it encodes, or the raw text when it is not one. */
function parseValue(v: string | null): number | string | null {
  if (v === null) return null;
  return /^-?\d+$/.test(v) ? Number(v) : v;
}
