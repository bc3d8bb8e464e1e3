// The append workload (Elle's list-append): each operation is a transaction of 2-4 micro-ops on a few keys,
// reads ["r", k, null] and appends ["append", k, v], v unique per key. A key holds its list as a JSON array.
//
// etcd transactions cannot read and then write based on what they read in one request, so an operation is an
// optimistic transaction: one Txn reads every key involved (a consistent snapshot at one revision), the client
// computes the new lists, and a second Txn writes them guarded by a mod_revision compare on every key touched.
// If the guard fails, nothing was written: the operation is `fail`. Read-only operations are the first Txn
// alone. The completion carries the micro-ops with the reads filled in, as Elle expects; a read sees the
// transaction's own earlier appends.

import type { HistoryEvent } from '../history';
import { checkAppend } from '../checker/append';
import { errorText, KvPool, type Compare, type KeyValue, type TxnOp, type TxnResult } from '../client/kv';
import type { CheckResult, Workload, WorkloadContext } from '../types';
import { perform, runClients } from './process';

export const APPEND_PREFIX = 'append/';

/** A read's list is null at invocation; a string only when the stored value is not a list (corruption). */
export type MicroOp = ['r', string, number[] | string | null] | ['append', string, number];

export interface AppendOptions {
  /** keys in use at any time */
  keys?: number;
  /** appends to a key before it is replaced by a fresh one (keeps lists, and the checker's work, small) */
  appendsPerKey?: number;
}

interface KeyState {
  name: string;
  next: number;
}

export class AppendWorkload implements Workload {
  readonly name = 'append';
  private readonly nKeys: number;
  private readonly appendsPerKey: number;

  constructor(opts: AppendOptions = {}) {
    this.nKeys = opts.keys ?? 5;
    this.appendsPerKey = opts.appendsPerKey ?? 64;
    if (!Number.isInteger(this.nKeys) || this.nKeys < 2) throw new Error(`append: keys must be an integer >= 2, got ${this.nKeys}`);
    if (!Number.isInteger(this.appendsPerKey) || this.appendsPerKey < 1) {
      throw new Error(`append: appendsPerKey must be a positive integer, got ${this.appendsPerKey}`);
    }
  }

  async run(ctx: WorkloadContext): Promise<void> {
    let generation = 0;
    const fresh = (): KeyState => ({ name: `k${generation++}`, next: 1 });
    const slots: KeyState[] = Array.from({ length: this.nKeys }, fresh);
    const pool = new KvPool({ timeoutMs: ctx.opTimeoutMs });

    const generate = (): MicroOp[] => {
      const n = 2 + ctx.rng.int(3);
      const ops: MicroOp[] = [];
      for (let i = 0; i < n; i++) {
        const s = ctx.rng.int(slots.length);
        const k = slots[s];
        if (ctx.rng.next() < 0.5) {
          ops.push(['r', k.name, null]);
        } else {
          ops.push(['append', k.name, k.next++]);
          if (k.next > this.appendsPerKey) slots[s] = fresh();
        }
      }
      return ops;
    };

    try {
      await runClients(ctx, pool, ctx.concurrency, async (client) => {
        const txn = generate();
        const writes = txn.some((m) => m[0] === 'append');
        await perform(ctx, pool, client, { f: 'txn', value: txn, kind: writes ? 'write' : 'read' }, async (conn) => {
          const keys = [...new Set(txn.map((m) => m[1]))];
          let snapshot: TxnResult;
          try {
            snapshot = await conn.txn([], keys.map((k): TxnOp => ({ type: 'get', key: APPEND_PREFIX + k })));
          } catch (err) {
            return { fail: `reading: ${errorText(err)}` }; // nothing was written yet
          }
          const current = new Map<string, { list: number[] | string; modRevision: number }>();
          keys.forEach((k, i) => {
            const r = snapshot.responses[i];
            const kv: KeyValue | undefined = r?.type === 'get' ? r.kvs[0] : undefined;
            current.set(k, { list: kv ? decodeList(kv.value) : [], modRevision: kv ? kv.modRevision : 0 });
          });
          const done = applyLocally(txn, current);
          const corrupt = keys.filter((k) => typeof current.get(k)!.list === 'string');
          // A value that is not a list is recorded as read (the checker reports it); nothing is written over it.
          if (!writes) return { ok: done };
          if (corrupt.length > 0) return { fail: `not a list of integers: ${corrupt.map((k) => `${k}=${JSON.stringify(current.get(k)!.list)}`).join(', ')}` };
          const guard: Compare[] = keys.map((k) => ({ key: APPEND_PREFIX + k, target: 'mod', op: '=', operand: current.get(k)!.modRevision }));
          const appended = [...new Set(txn.filter((m) => m[0] === 'append').map((m) => m[1]))];
          const puts: TxnOp[] = appended.map((k) => ({ type: 'put', key: APPEND_PREFIX + k, value: JSON.stringify(current.get(k)!.list) }));
          const r = await conn.txn(guard, puts);
          return r.succeeded ? { ok: done } : { fail: 'a key changed since it was read (mod_revision guard)' };
        });
      });
    } finally {
      pool.close();
    }
  }

  /** Nothing to do at the end: every read is checked as part of its transaction. */
  async finish(): Promise<void> {}

  async check(events: readonly HistoryEvent[]): Promise<CheckResult[]> {
    // Keel's and etcd's transactions are linearizable: check strict serializability (real-time edges too),
    // which also catches a transaction that read a stale state.
    return [checkAppend(events, { realtime: true })];
  }
}

/**
 * Runs the micro-ops on the lists read (mutating them into the lists to write) and returns the micro-ops with
 * every read filled in: a read sees the lists as of the snapshot plus this transaction's earlier appends.
 */
export function applyLocally(txn: readonly MicroOp[], lists: Map<string, { list: number[] | string }>): MicroOp[] {
  return txn.map((m): MicroOp => {
    const entry = lists.get(m[1]);
    if (!entry) throw new Error(`append: key ${m[1]} was not read`);
    const list = entry.list;
    if (m[0] === 'r') return ['r', m[1], typeof list === 'string' ? list : list.slice()];
    if (typeof list !== 'string') list.push(m[2]);
    return m;
  });
}

/** A stored list, or the raw text when it is not a JSON array of integers (a corrupted value). */
export function decodeList(text: string): number[] | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return text;
  }
  return Array.isArray(v) && v.every((x) => Number.isInteger(x)) ? (v as number[]) : text;
}
