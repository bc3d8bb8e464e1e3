// The checker of the set workload: unique adds (f "add", value an integer), then a final read (f "read", ok value
// the list of elements). Valid iff the final read holds every acknowledged add and nothing that was not attempted:
//   lost        an ok add that completed before the final read was invoked, missing from it
//   unexpected  an element no add ever attempted (or not an integer at all)
//   failed add present  an element whose add failed: fail means it certainly had no effect
//   duplicated  an element listed twice
// An info add may be present (recovered) or not. An ok add still in flight when the final read was invoked may be
// missing (it is counted as concurrent). Without a final ok read the verdict is unknown.

import { HistoryError, pairHistory, type HistoryEvent, type Operation } from '../history';
import type { CheckResult } from '../types';

export interface SetDetails {
  adds: { ok: number; info: number; fail: number };
  /** elements in the final read */
  read: number;
  lost: number[];
  unexpected: unknown[];
  failedPresent: number[];
  duplicated: unknown[];
  /** info adds found in the final read */
  recovered: number;
  /** ok adds concurrent with the final read and missing from it (allowed) */
  concurrentMissing: number;
  /** 1-based lines (or time) of the final read, for the report */
  finalRead?: { lines?: string; time: number };
}

function where(op: Operation): string {
  return op.invokeLine !== undefined ? `line ${op.invokeLine}` : `operation ${op.index} (process ${op.process})`;
}

/** Throws HistoryError (naming the line) on an add whose value is not an integer, a value added twice, or another f. */
export function checkSet(events: readonly HistoryEvent[], opts: { source?: string } = {}): CheckResult {
  const checker = 'set';
  const adds = new Map<number, Operation>();
  let finalRead: Operation | undefined;
  for (const op of pairHistory(events, opts.source)) {
    if (op.f === 'add') {
      if (!Number.isSafeInteger(op.value)) throw new HistoryError(`${where(op)}: an add's value must be an integer, got ${JSON.stringify(op.value)}`, op.invokeLine);
      const v = op.value as number;
      const other = adds.get(v);
      if (other) throw new HistoryError(`${where(op)}: ${v} is added again (first at ${where(other)}): the set checker needs unique adds`, op.invokeLine);
      adds.set(v, op);
    } else if (op.f === 'read') {
      // the last read that answered is the final one
      if (op.type === 'ok' && (!finalRead || op.completeTime >= finalRead.completeTime)) finalRead = op;
    } else {
      throw new HistoryError(`${where(op)}: the set checker reads only f "add" and "read" operations, got ${JSON.stringify(op.f)}`, op.invokeLine);
    }
  }

  const count = (type: Operation['type']): number => [...adds.values()].filter((o) => o.type === type).length;
  const details: SetDetails = {
    adds: { ok: count('ok'), info: count('info'), fail: count('fail') },
    read: 0,
    lost: [],
    unexpected: [],
    failedPresent: [],
    duplicated: [],
    recovered: 0,
    concurrentMissing: 0,
  };
  const size = `${adds.size} adds (${details.adds.ok} ok, ${details.adds.info} info, ${details.adds.fail} fail)`;
  if (!finalRead) return { checker, verdict: 'unknown', summary: `unknown: no final read succeeded; ${size}`, details };
  const read = finalRead;
  details.finalRead = { time: read.invokeTime };
  if (read.invokeLine !== undefined) details.finalRead.lines = `${read.invokeLine}-${read.completeLine ?? 'end'}`;
  if (!Array.isArray(read.output)) {
    throw new HistoryError(`${where(read)}: the final read's value must be a list, got ${JSON.stringify(read.output)}`, read.completeLine);
  }

  const present = new Set<number>();
  const seen = new Set<unknown>();
  for (const x of read.output as unknown[]) {
    if (seen.has(x)) details.duplicated.push(x);
    seen.add(x);
    const add = typeof x === 'number' ? adds.get(x) : undefined;
    if (!add) {
      details.unexpected.push(x);
      continue;
    }
    present.add(x as number);
    if (add.type === 'fail') details.failedPresent.push(x as number);
    else if (add.type === 'info') details.recovered++;
  }
  details.read = seen.size;
  for (const [v, add] of adds) {
    if (add.type !== 'ok' || present.has(v)) continue;
    if (add.completeTime < read.invokeTime) details.lost.push(v);
    else details.concurrentMissing++;
  }
  details.lost.sort((x, y) => x - y);
  details.failedPresent.sort((x, y) => x - y);

  const problems: string[] = [];
  const some = (xs: unknown[]): string => JSON.stringify(xs.slice(0, 10)) + (xs.length > 10 ? ` and ${xs.length - 10} more` : '');
  if (details.lost.length > 0) problems.push(`${details.lost.length} acknowledged adds lost ${some(details.lost)}`);
  if (details.unexpected.length > 0) problems.push(`${details.unexpected.length} unexpected elements ${some(details.unexpected)}`);
  if (details.failedPresent.length > 0) problems.push(`${details.failedPresent.length} failed adds present ${some(details.failedPresent)}`);
  if (details.duplicated.length > 0) problems.push(`${details.duplicated.length} elements listed twice ${some(details.duplicated)}`);
  const read1 = `final read of ${details.read} elements`;
  if (problems.length > 0) return { checker, verdict: 'invalid', summary: `invalid: ${problems.join('; ')}; ${size}, ${read1}`, details };
  return { checker, verdict: 'valid', summary: `valid: every acknowledged add present (${details.recovered} of ${details.adds.info} info adds recovered); ${size}, ${read1}`, details };
}
