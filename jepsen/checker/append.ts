// The checker of the append workload: Elle's list-append (Kingsbury & Alvaro, VLDB 2020). It infers the version
// order of every key from the reads, builds the dependency graph of the transactions (elle/infer.ts), looks for
// cycles in it (elle/cycles.ts) and reports every anomaly with its evidence (elle/anomaly.ts). The verdict is
// invalid when any anomaly is found: by default the history must be serializable; with `realtime`, strict
// serializable (a transaction that completed before another was invoked must precede it).

import type { HistoryEvent } from '../history';
import type { CheckResult } from '../types';
import { AnomalyLog, txnRef, type Anomaly, type AnomalyType, type CycleStep } from './elle/anomaly';
import { findCycles } from './elle/cycles';
import { kindName, type DepGraph, type EdgeKind } from './elle/graph';
import { inferDependencies } from './elle/infer';
import { parseTxns, type Txn } from './elle/txns';

export interface AppendCheckOptions {
  /** also order transactions by real time (strict serializability); default false: serializability */
  realtime?: boolean;
  /** examples kept per anomaly type in the details (default 8) */
  examplesPerType?: number;
  /** work limit of the cycle searches, in edge visits (default 20 million) */
  searchSteps?: number;
  /** file name for error messages */
  source?: string;
}

export interface AppendDetails {
  txns: { total: number; ok: number; info: number; fail: number };
  keys: number;
  edges: Record<EdgeKind, number>;
  /** strongly connected components of two or more transactions */
  cyclicComponents: number;
  /** anomaly type -> how many were found */
  anomalies: Partial<Record<AnomalyType, number>>;
  /** a few of each type, with their evidence */
  examples: Anomaly[];
  excludedKeys: { key: string; reason: string }[];
  /** the cycle searches ran out of steps: a component may have more classes than reported */
  searchExhausted: boolean;
  realtime: boolean;
  elapsedMs: number;
}

/** The order in which anomaly types are named in the summary: the most severe first. */
const SEVERITY: AnomalyType[] = [
  'garbage',
  'duplicate-elements',
  'incompatible-order',
  'internal',
  'G1a',
  'G1b',
  'G0',
  'G1c',
  'lost-update',
  'G-single',
  'G2',
  'G0-realtime',
  'G1c-realtime',
  'G-single-realtime',
  'G2-realtime',
];

function cycleAnomaly(g: DepGraph, txns: readonly Txn[], type: AnomalyType, edges: readonly number[]): Anomaly {
  const steps: CycleStep[] = edges.map((e) => {
    const step: CycleStep = {
      from: txns[g.from[e]].op.index,
      to: txns[g.to[e]].op.index,
      kind: kindName(g.kind[e]),
      explain: g.why[e].explain,
    };
    if (g.why[e].key !== undefined) step.key = g.why[e].key;
    return step;
  });
  const members = edges.map((e) => txns[g.from[e]]);
  const path = [...members, members[0]].map((t) => `T${t.op.index}`).join(' -> ');
  return {
    type,
    explain: `cycle ${path} (${steps.map((s) => s.kind).join(', ')})`,
    txns: members.map(txnRef),
    cycle: steps,
  };
}

/**
 * Checks a list-append history. Throws HistoryError (naming the line) when the history is malformed: not paired,
 * an operation other than f "txn", a micro-op of the wrong shape, a completion that does not match its
 * invocation, a value appended twice to a key.
 */
export function checkAppend(events: readonly HistoryEvent[], opts: AppendCheckOptions = {}): CheckResult {
  const started = performance.now();
  const realtime = opts.realtime ?? false;
  const checker = realtime ? 'append (strict serializable)' : 'append (serializable)';
  const { txns, unreadable } = parseTxns(events, opts.source);
  const log = new AnomalyLog(opts.examplesPerType ?? 8);
  const inference = inferDependencies(txns, unreadable, log, { realtime });
  const g = inference.graph;
  const search = findCycles(g, { realtime, budgetSteps: opts.searchSteps ?? 20_000_000 });
  for (const c of search.cycles) log.add(cycleAnomaly(g, txns, c.type, c.edges));

  const count = (type: Txn['type']): number => txns.filter((t) => t.type === type).length;
  const anomalies: Partial<Record<AnomalyType, number>> = {};
  for (const type of SEVERITY) {
    const n = log.counts.get(type);
    if (n) anomalies[type] = n;
  }
  const details: AppendDetails = {
    txns: { total: txns.length, ok: count('ok'), info: count('info'), fail: count('fail') },
    keys: inference.keys,
    edges: g.countByKind(),
    cyclicComponents: search.components,
    anomalies,
    examples: log.examples,
    excludedKeys: inference.excludedKeys,
    searchExhausted: search.exhausted,
    realtime,
    elapsedMs: Math.round(performance.now() - started),
  };
  const t = details.txns;
  const size = `${t.total} txns (${t.ok} ok, ${t.info} info, ${t.fail} fail) on ${details.keys} keys`;
  if (log.total > 0) {
    const named = Object.entries(anomalies).map(([type, n]) => `${type} x${n}`).join(', ');
    return { checker, verdict: 'invalid', summary: `invalid: ${named}; ${size}`, details };
  }
  if (t.ok === 0) return { checker, verdict: 'unknown', summary: `unknown: no transaction completed ok; ${size}`, details };
  return { checker, verdict: 'valid', summary: `valid: no anomaly in ${size}`, details };
}
