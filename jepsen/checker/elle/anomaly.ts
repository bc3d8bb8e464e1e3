// What the list-append checker reports: each anomaly with the transactions involved and, for dependency
// cycles, every step of the cycle with the evidence for its edge.

import type { EdgeKind } from './graph';
import type { MicroOp, Txn } from './txns';

/**
 * Cycle anomalies (Adya's, as Elle names them): G0 write cycle (ww only), G1c circular information flow (ww and
 * wr), G-single read skew (exactly one rw), G2 anti-dependency cycle (two or more rw); with "-realtime" when the
 * cycle needs a real-time edge (only with the `realtime` option: strict serializability).
 * The others are found without a cycle: G1a aborted read, G1b intermediate read, internal (a transaction's
 * reads do not reflect its own appends), incompatible-order (two reads of a key that are not one a prefix of the
 * other), lost-update (two committed transactions read the same version of a key and both appended to it),
 * duplicate-elements (a value twice in one read), garbage (a read value nobody appended, or not a list at all).
 */
export type AnomalyType =
  | 'G0'
  | 'G1c'
  | 'G-single'
  | 'G2'
  | 'G0-realtime'
  | 'G1c-realtime'
  | 'G-single-realtime'
  | 'G2-realtime'
  | 'G1a'
  | 'G1b'
  | 'internal'
  | 'incompatible-order'
  | 'lost-update'
  | 'duplicate-elements'
  | 'garbage';

/** A transaction as reports show it. */
export interface TxnRef {
  /** the operation's index in the paired history (by invocation) */
  index: number;
  process: number;
  type: 'ok' | 'info' | 'fail';
  ops: MicroOp[];
  /** lines of the history file, when parsed from one */
  lines?: string;
}

export interface CycleStep {
  /** history indices (TxnRef.index) */
  from: number;
  to: number;
  kind: EdgeKind;
  key?: string;
  explain: string;
}

export interface Anomaly {
  type: AnomalyType;
  /** one sentence */
  explain: string;
  key?: string;
  txns: TxnRef[];
  /** for cycle anomalies: the edges, in order, back to the first transaction */
  cycle?: CycleStep[];
}

export function txnRef(t: Txn): TxnRef {
  const r: TxnRef = { index: t.op.index, process: t.op.process, type: t.type, ops: t.mops };
  if (t.op.invokeLine !== undefined) r.lines = `${t.op.invokeLine}-${t.op.completeLine ?? 'end'}`;
  return r;
}

/** "T12" for reports: transactions are named by their index in the history. */
export function tname(t: Txn): string {
  return `T${t.op.index}`;
}

/** A short rendering of a list's first `length` elements for explanations (long lists keep their head and tail). */
export function showList(xs: readonly number[], length = xs.length): string {
  if (length <= 8) return JSON.stringify(xs.slice(0, length));
  return `[${xs.slice(0, 3).join(',')},...(${length - 6} more)...,${xs.slice(length - 3, length).join(',')}]`;
}

/** Keeps every anomaly's count, and at most `limit` examples per type for the report. */
export class AnomalyLog {
  readonly counts = new Map<AnomalyType, number>();
  readonly examples: Anomaly[] = [];
  private readonly kept = new Map<AnomalyType, number>();

  constructor(private readonly limit: number) {}

  add(a: Anomaly): void {
    this.counts.set(a.type, (this.counts.get(a.type) ?? 0) + 1);
    const k = this.kept.get(a.type) ?? 0;
    if (k < this.limit) {
      this.kept.set(a.type, k + 1);
      this.examples.push(a);
    }
  }

  get total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }
}
