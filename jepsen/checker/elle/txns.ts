// The transactions of a list-append history (Elle's list-append, as recorded by workloads/append.ts): every
// operation is f "txn" whose value is a list of micro-ops, ["append", key, value] or ["r", key, null]; the ok
// completion carries the same micro-ops with every read filled in with the list it returned. Appended values are
// integers, unique per key across the whole history (that is what lets a read name its writers).

import { HistoryError, pairHistory, type HistoryEvent, type Operation } from '../../history';

export type AppendOp = ['append', string, number];
/** a read: the list it returned (ok completions), null when unknown (invocations, info and fail transactions) */
export type ReadOp = ['r', string, number[] | null];
export type MicroOp = AppendOp | ReadOp;

export interface Txn {
  /** node number in the dependency graph: position in the list of transactions */
  node: number;
  op: Operation;
  type: 'ok' | 'info' | 'fail';
  /** the completed micro-ops for ok transactions, the invoked ones otherwise */
  mops: MicroOp[];
}

/** A read whose result is not a list of integers: nothing a client appended could produce it. */
export interface UnreadableRead {
  txn: Txn;
  key: string;
  value: unknown;
}

export interface ParsedTxns {
  txns: Txn[];
  unreadable: UnreadableRead[];
}

function lineOf(op: Operation, completion: boolean): number | undefined {
  return completion ? (op.completeLine ?? op.invokeLine) : op.invokeLine;
}

function where(op: Operation, completion: boolean, source?: string): string {
  const line = lineOf(op, completion);
  if (line === undefined) return `operation ${op.index} (process ${op.process}, time ${op.invokeTime})`;
  return source ? `${source}:${line}` : `line ${line}`;
}

function parseInvoked(op: Operation, source?: string): MicroOp[] {
  const bad = (why: string): never => {
    throw new HistoryError(`${where(op, false, source)}: txn ${why}`, lineOf(op, false));
  };
  if (!Array.isArray(op.value)) return bad(`value must be a list of micro-ops, got ${JSON.stringify(op.value)}`);
  return op.value.map((m: unknown, i): MicroOp => {
    if (!Array.isArray(m) || m.length !== 3) return bad(`micro-op ${i} must be [f, key, value], got ${JSON.stringify(m)}`);
    const [f, key, v] = m as unknown[];
    if (typeof key !== 'string') return bad(`micro-op ${i}: key must be a string, got ${JSON.stringify(key)}`);
    if (f === 'append') {
      if (!Number.isSafeInteger(v)) return bad(`micro-op ${i}: an append's value must be an integer, got ${JSON.stringify(v)}`);
      return ['append', key, v as number];
    }
    if (f === 'r') return ['r', key, null];
    return bad(`micro-op ${i}: f must be "append" or "r", got ${JSON.stringify(f)}`);
  });
}

/**
 * The micro-ops of an ok completion: the invoked ones with the reads filled in. A read result that is not a list
 * of integers is kept as unknown (null) and reported as unreadable; a completion that does not match its
 * invocation is a malformed history.
 */
function parseCompleted(op: Operation, invoked: MicroOp[], unreadable: (key: string, value: unknown) => void, source?: string): MicroOp[] {
  const bad = (why: string): never => {
    throw new HistoryError(`${where(op, true, source)}: ok txn ${why}`, lineOf(op, true));
  };
  const out = op.output;
  if (!Array.isArray(out)) return bad(`must carry its micro-ops with the reads filled in, got ${JSON.stringify(out)}`);
  if (out.length !== invoked.length) return bad(`has ${out.length} micro-ops, its invocation ${invoked.length}`);
  return invoked.map((inv, i): MicroOp => {
    const m: unknown = out[i];
    if (!Array.isArray(m) || m.length !== 3 || m[0] !== inv[0] || m[1] !== inv[1]) {
      return bad(`micro-op ${i} is ${JSON.stringify(m)}, but the invocation has ${JSON.stringify(inv)}`);
    }
    if (inv[0] === 'append') {
      if (m[2] !== inv[2]) bad(`micro-op ${i} appends ${JSON.stringify(m[2])}, but the invocation appends ${inv[2]}`);
      return inv;
    }
    const v: unknown = m[2];
    if (Array.isArray(v) && v.every((x) => Number.isSafeInteger(x))) return ['r', inv[1], v as number[]];
    unreadable(inv[1], v);
    return ['r', inv[1], null];
  });
}

/** Pairs the history and parses every transaction; throws HistoryError (naming the line) on malformed ones. */
export function parseTxns(events: readonly HistoryEvent[], source?: string): ParsedTxns {
  const txns: Txn[] = [];
  const unreadable: UnreadableRead[] = [];
  for (const op of pairHistory(events, source)) {
    if (op.f !== 'txn') {
      throw new HistoryError(`${where(op, false, source)}: the append checker reads only f "txn" operations, got ${JSON.stringify(op.f)}`, lineOf(op, false));
    }
    const invoked = parseInvoked(op, source);
    const txn: Txn = { node: txns.length, op, type: op.type, mops: invoked };
    if (op.type === 'ok') txn.mops = parseCompleted(op, invoked, (key, value) => unreadable.push({ txn, key, value }), source);
    txns.push(txn);
  }
  return { txns, unreadable };
}
