// What the report (and the run's results.json) reads out of a history: each operation's outcome and latency,
// counts by function and outcome, and the nemesis's fault intervals.
//
// This pairing is deliberately more forgiving than history.ts's pairHistory: a report is written for every
// run, also one whose history a checker refused, and it should show what happened rather than fail with it.

import type { HistoryEvent } from '../history';

export type Outcome = 'ok' | 'fail' | 'info';

/** One client operation as the report plots it. */
export interface TimedOp {
  process: number;
  f: string;
  key?: string;
  outcome: Outcome;
  /** invocation time, ns (the history's clock) */
  invokeNs: number;
  /** completion time, ns; undefined for an invocation that never completed */
  completeNs?: number;
}

/** Every client operation of the history, in invocation order; unmatched completions are skipped. */
export function timedOps(events: readonly HistoryEvent[]): TimedOp[] {
  const out: TimedOp[] = [];
  const open = new Map<number, TimedOp>();
  for (const ev of events) {
    if (ev.process === 'nemesis') continue;
    if (ev.type === 'invoke') {
      const op: TimedOp = { process: ev.process, f: ev.f, outcome: 'info', invokeNs: ev.time };
      if (ev.key !== undefined) op.key = ev.key;
      out.push(op);
      open.set(ev.process, op);
      continue;
    }
    const op = open.get(ev.process);
    if (!op) continue;
    open.delete(ev.process);
    op.outcome = ev.type;
    op.completeNs = ev.time;
  }
  return out;
}

export type OpCounts = Record<string, Record<Outcome, number>>;

/** Operations per function and outcome (an invocation never completed counts as info), plus a "total" row. */
export function countOps(ops: readonly TimedOp[]): OpCounts {
  const counts: OpCounts = {};
  const row = (f: string): Record<Outcome, number> => (counts[f] ??= { ok: 0, fail: 0, info: 0 });
  for (const op of ops) {
    row(op.f)[op.outcome]++;
    row('total')[op.outcome]++;
  }
  return counts;
}

/** One fault, from its start-<kind> event to its stop-<kind> event. */
export interface NemesisInterval {
  kind: string;
  startNs: number;
  /** undefined when the history ends before the fault was stopped */
  stopNs?: number;
  /** what the start did (nodes, links, ...) */
  start: unknown;
  stop?: unknown;
  /** errors of either phase */
  errors: string[];
}

/**
 * Pairs every `start-<kind>` nemesis event with the next `stop-<kind>`. A stop without a start (a heal at
 * the end, say) is kept as a zero-length interval so that nothing the nemesis did is hidden.
 */
export function nemesisIntervals(events: readonly HistoryEvent[]): NemesisInterval[] {
  const out: NemesisInterval[] = [];
  const open = new Map<string, NemesisInterval>();
  for (const ev of events) {
    if (ev.process !== 'nemesis') continue;
    const m = /^(start|stop)-(.+)$/.exec(ev.f);
    if (!m) {
      out.push({ kind: ev.f, startNs: ev.time, stopNs: ev.time, start: ev.value, errors: ev.error ? [ev.error] : [] });
      continue;
    }
    const [, phase, kind] = m as unknown as [string, 'start' | 'stop', string];
    if (phase === 'start') {
      const iv: NemesisInterval = { kind, startNs: ev.time, start: ev.value, errors: ev.error ? [ev.error] : [] };
      out.push(iv);
      open.set(kind, iv);
    } else {
      const iv = open.get(kind);
      if (iv) {
        open.delete(kind);
        iv.stopNs = ev.time;
        iv.stop = ev.value;
        if (ev.error) iv.errors.push(ev.error);
      } else {
        out.push({ kind, startNs: ev.time, stopNs: ev.time, start: null, stop: ev.value, errors: ev.error ? [ev.error] : [] });
      }
    }
  }
  return out;
}

/** The history's time span, ns: [first event, last event] ([0, 0] when empty). */
export function timeSpan(events: readonly HistoryEvent[]): [number, number] {
  if (events.length === 0) return [0, 0];
  let lo = Infinity;
  let hi = -Infinity;
  for (const ev of events) {
    if (ev.time < lo) lo = ev.time;
    if (ev.time > hi) hi = ev.time;
  }
  return [lo, hi];
}
