// The checker of the watch workload. Writers put integers to one key (f "write", value the integer); watchers
// watch it in sessions (f "watch", ok value {member, fromRevision, events: [{revision, value}], error?,
// compactRevision?}), each session of a watcher (one process) starting where its previous one stopped, possibly
// on another member. etcd promises every watcher an ordered, gap-free stream with no duplicates, from any member.
//
// A session covers the revisions from its fromRevision to the last one it delivered: it must have delivered
// every event of the key in that range. Checked:
//   order        within a session revisions strictly increase, none below fromRevision
//   divergence   two watchers saw different values at one revision
//   gap          a watcher's session covered a revision at which another watcher saw an event, and missed it
//   unexpected   a value no write attempted (or not an integer)
//   failed-write a value whose write failed (fail: certainly no effect)
//   duplicate    one written value at two revisions (a write applied twice)
//   lost-write   an acknowledged write seen by no watcher, although real time bounds its revision inside a range
//                that one session covered
//   realtime     two writes observed in the opposite revision order of their real-time order
// The verdict names the first problem by revision.

import { HistoryError, pairHistory, type HistoryEvent, type Operation } from '../history';
import type { CheckResult } from '../types';

export type WatchViolationType = 'order' | 'divergence' | 'gap' | 'unexpected' | 'failed-write' | 'duplicate' | 'lost-write' | 'realtime';

export interface WatchViolation {
  type: WatchViolationType;
  /** the revision concerned (for sorting out the first one) */
  revision?: number;
  /** the watcher's process */
  watcher?: number;
  explain: string;
}

interface SeenEvent {
  revision: number;
  value: unknown;
}

interface Session {
  op: Operation;
  watcher: number;
  member: string;
  fromRevision: number;
  events: SeenEvent[];
  error?: string;
  compactRevision?: number;
}

export interface WatcherSummary {
  process: number;
  sessions: number;
  events: number;
  /** the revision ranges its sessions covered, merged */
  covered: [number, number][];
  lastRevision: number;
}

export interface WatchDetails {
  writes: { ok: number; info: number; fail: number };
  watchers: WatcherSummary[];
  /** distinct revisions seen by any watcher */
  revisions: number;
  maxRevision: number;
  violations: Partial<Record<WatchViolationType, number>>;
  /** the first problem by revision */
  first?: WatchViolation;
  /** a few of each type */
  examples: WatchViolation[];
  sessionsEndedByCompaction: number;
}

function where(op: Operation, completion = false): string {
  const line = completion ? (op.completeLine ?? op.invokeLine) : op.invokeLine;
  return line !== undefined ? `line ${line}` : `operation ${op.index} (process ${op.process})`;
}

function sessionName(s: Session): string {
  const lines = s.op.invokeLine !== undefined ? `, lines ${s.op.invokeLine}-${s.op.completeLine ?? 'end'}` : '';
  return `watcher ${s.watcher}'s session on ${s.member} from revision ${s.fromRevision}${lines}`;
}

function parseSession(op: Operation): Session {
  const bad = (why: string): never => {
    throw new HistoryError(`${where(op, true)}: watch session ${why}`, op.completeLine ?? op.invokeLine);
  };
  const v = op.output;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return bad(`value must be {member, fromRevision, events}, got ${JSON.stringify(v)}`);
  const o = v as Record<string, unknown>;
  if (typeof o.member !== 'string') bad(`member must be a string, got ${JSON.stringify(o.member)}`);
  if (!Number.isSafeInteger(o.fromRevision) || (o.fromRevision as number) < 0) bad(`fromRevision must be a non-negative integer, got ${JSON.stringify(o.fromRevision)}`);
  if (!Array.isArray(o.events)) return bad(`events must be a list, got ${JSON.stringify(o.events)}`);
  const events = o.events.map((e: unknown, i): SeenEvent => {
    const ev = e as Record<string, unknown> | null;
    if (ev === null || typeof ev !== 'object' || !Number.isSafeInteger(ev.revision) || (ev.revision as number) < 1 || !('value' in ev)) {
      return bad(`event ${i} must be {revision: positive integer, value}, got ${JSON.stringify(e)}`);
    }
    return { revision: ev.revision as number, value: ev.value };
  });
  const s: Session = { op, watcher: op.process, member: o.member as string, fromRevision: o.fromRevision as number, events };
  if (typeof o.error === 'string') s.error = o.error;
  if (Number.isSafeInteger(o.compactRevision)) s.compactRevision = o.compactRevision as number;
  return s;
}

/** Merges [from, to] ranges (inclusive) that overlap or touch. */
function merge(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const out: [number, number][] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

/** The index of the first element of sorted `xs` that is >= x. */
function lowerBound(xs: readonly number[], x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Throws HistoryError (naming the line) on a malformed history: another f, a write of a non-integer, a bad session. */
export function checkWatch(events: readonly HistoryEvent[], opts: { source?: string } = {}): CheckResult {
  const checker = 'watch';
  const writes = new Map<number, Operation>(); // value -> write
  const sessions: Session[] = [];
  for (const op of pairHistory(events, opts.source)) {
    if (op.f === 'write') {
      if (!Number.isSafeInteger(op.value)) throw new HistoryError(`${where(op)}: a write's value must be an integer, got ${JSON.stringify(op.value)}`, op.invokeLine);
      const v = op.value as number;
      if (writes.has(v)) throw new HistoryError(`${where(op)}: ${v} is written again (first at ${where(writes.get(v)!)}): the watch checker needs unique values`, op.invokeLine);
      writes.set(v, op);
    } else if (op.f === 'watch') {
      if (op.type === 'ok') sessions.push(parseSession(op));
      // a session without an answer delivered nothing the history knows of: nothing to check
    } else {
      throw new HistoryError(`${where(op)}: the watch checker reads only f "write" and "watch" operations, got ${JSON.stringify(op.f)}`, op.invokeLine);
    }
  }

  const counts: Partial<Record<WatchViolationType, number>> = {};
  const examples: WatchViolation[] = [];
  const kept = new Map<WatchViolationType, number>();
  let first: WatchViolation | undefined;
  const report = (v: WatchViolation): void => {
    counts[v.type] = (counts[v.type] ?? 0) + 1;
    if ((kept.get(v.type) ?? 0) < 10) {
      kept.set(v.type, (kept.get(v.type) ?? 0) + 1);
      examples.push(v);
    }
    const rank = (x: WatchViolation): number => x.revision ?? Number.POSITIVE_INFINITY;
    if (!first || rank(v) < rank(first)) first = v;
  };

  // every revision seen, with its value and the first session that saw it
  const seen = new Map<number, { value: unknown; session: Session }>();
  const byWatcher = new Map<number, Session[]>();
  for (const s of sessions) {
    const list = byWatcher.get(s.watcher) ?? [];
    list.push(s);
    byWatcher.set(s.watcher, list);
    let prev = s.fromRevision - 1;
    for (const ev of s.events) {
      if (ev.revision <= prev) {
        report({
          type: 'order',
          revision: ev.revision,
          watcher: s.watcher,
          explain:
            ev.revision < s.fromRevision
              ? `${sessionName(s)} delivered revision ${ev.revision}, below its start`
              : `${sessionName(s)} delivered revision ${ev.revision} after revision ${prev}`,
        });
      }
      prev = Math.max(prev, ev.revision);
      const other = seen.get(ev.revision);
      if (!other) seen.set(ev.revision, { value: ev.value, session: s });
      else if (JSON.stringify(other.value) !== JSON.stringify(ev.value)) {
        report({
          type: 'divergence',
          revision: ev.revision,
          watcher: s.watcher,
          explain: `at revision ${ev.revision} ${sessionName(s)} saw ${JSON.stringify(ev.value)}, but ${sessionName(other.session)} saw ${JSON.stringify(other.value)}`,
        });
      }
    }
  }
  const revisions = [...seen.keys()].sort((x, y) => x - y);

  // values: each a write that may have happened, each at one revision
  const revisionOf = new Map<number, number>(); // written value -> revision
  for (const rev of revisions) {
    const { value, session } = seen.get(rev)!;
    const w = typeof value === 'number' ? writes.get(value) : undefined;
    const at = `revision ${rev} (first seen by ${sessionName(session)})`;
    if (!w) {
      report({ type: 'unexpected', revision: rev, explain: `${at} holds ${JSON.stringify(value)}, which no write attempted` });
      continue;
    }
    const v = value as number;
    if (w.type === 'fail') report({ type: 'failed-write', revision: rev, explain: `${at} holds ${v}, whose write failed (${where(w)})` });
    const earlier = revisionOf.get(v);
    if (earlier !== undefined) report({ type: 'duplicate', revision: rev, explain: `${at} holds ${v}, already written at revision ${earlier}` });
    else revisionOf.set(v, rev);
  }

  // gaps: what a session covered, it must have delivered
  const watchers: WatcherSummary[] = [];
  const coverage: { watcher: number; from: number; to: number }[] = [];
  for (const [watcher, list] of byWatcher) {
    const ranges: [number, number][] = [];
    let delivered = 0;
    let lastRevision = 0;
    for (const s of list) {
      delivered += s.events.length;
      if (s.events.length === 0) continue;
      const to = Math.max(...s.events.map((e) => e.revision));
      lastRevision = Math.max(lastRevision, to);
      ranges.push([s.fromRevision, to]);
      coverage.push({ watcher, from: s.fromRevision, to });
      const got = new Set(s.events.map((e) => e.revision));
      for (let i = lowerBound(revisions, s.fromRevision); i < revisions.length && revisions[i] <= to; i++) {
        const rev = revisions[i];
        if (got.has(rev)) continue;
        const other = seen.get(rev)!;
        report({
          type: 'gap',
          revision: rev,
          watcher,
          explain: `${sessionName(s)} delivered up to revision ${to} but not revision ${rev} (${JSON.stringify(other.value)}), which ${sessionName(other.session)} saw`,
        });
      }
    }
    watchers.push({ process: watcher, sessions: list.length, events: delivered, covered: merge(ranges), lastRevision });
  }

  // writes in real time against the revisions they were seen at
  const observed = [...revisionOf.entries()].map(([v, rev]) => ({ op: writes.get(v)!, rev })).sort((x, y) => x.rev - y.rev);
  let latest: { op: Operation; rev: number } | undefined; // the write invoked last among lower revisions
  for (const o of observed) {
    if (latest && o.op.completeTime < latest.op.invokeTime) {
      report({
        type: 'realtime',
        revision: o.rev,
        explain:
          `the write of ${o.op.value as number} (${where(o.op)}) completed before the write of ${latest.op.value as number} (${where(latest.op)}) ` +
          `was invoked, yet was seen at revision ${o.rev}, after ${latest.rev}`,
      });
    }
    if (!latest || o.op.invokeTime > latest.op.invokeTime) latest = o;
  }

  // acknowledged writes nobody saw, whose revision real time places inside a range some session covered
  const byComplete = [...observed].sort((x, y) => x.op.completeTime - y.op.completeTime);
  const maxRevBefore: number[] = []; // prefix max of revisions, in completion order
  byComplete.forEach((o, i) => maxRevBefore.push(Math.max(o.rev, i > 0 ? maxRevBefore[i - 1] : 0)));
  const byInvoke = [...observed].sort((x, y) => x.op.invokeTime - y.op.invokeTime);
  const minRevAfter: number[] = new Array<number>(byInvoke.length); // suffix min of revisions, in invocation order
  for (let i = byInvoke.length - 1; i >= 0; i--) minRevAfter[i] = Math.min(byInvoke[i].rev, i + 1 < byInvoke.length ? minRevAfter[i + 1] : Infinity);
  const completeTimes = byComplete.map((o) => o.op.completeTime);
  const invokeTimes = byInvoke.map((o) => o.op.invokeTime);
  for (const [v, w] of writes) {
    if (w.type !== 'ok' || revisionOf.has(v)) continue;
    const nBefore = lowerBound(completeTimes, w.invokeTime); // observed writes completed strictly before w's invocation
    const lo = nBefore > 0 ? maxRevBefore[nBefore - 1] : 0;
    let firstAfter = lowerBound(invokeTimes, w.completeTime);
    while (firstAfter < invokeTimes.length && invokeTimes[firstAfter] === w.completeTime) firstAfter++;
    if (firstAfter >= byInvoke.length) continue; // nothing seen after it: its revision is not bounded above
    const hi = minRevAfter[firstAfter];
    // w's revision lies in (lo, hi); a session that covered all of it must have delivered w
    const cover = coverage.find((c) => c.from <= lo + 1 && c.to >= hi - 1);
    if (!cover) continue;
    report({
      type: 'lost-write',
      revision: lo + 1,
      watcher: cover.watcher,
      explain:
        `the acknowledged write of ${v} (${where(w)}) was seen by no watcher, although real time puts its revision between ${lo} and ${hi} ` +
        `and watcher ${cover.watcher} covered revisions ${cover.from}..${cover.to}`,
    });
  }

  const wcount = (type: Operation['type']): number => [...writes.values()].filter((o) => o.type === type).length;
  const details: WatchDetails = {
    writes: { ok: wcount('ok'), info: wcount('info'), fail: wcount('fail') },
    watchers: watchers.sort((x, y) => x.process - y.process),
    revisions: revisions.length,
    maxRevision: revisions.length > 0 ? revisions[revisions.length - 1] : 0,
    violations: counts,
    examples,
    sessionsEndedByCompaction: sessions.filter((s) => s.compactRevision !== undefined).length,
  };
  if (first) details.first = first;
  const size = `${details.watchers.length} watchers, ${sessions.length} sessions, ${revisions.length} revisions seen; ${writes.size} writes (${details.writes.ok} ok)`;
  if (first) {
    const named = Object.entries(counts).map(([type, n]) => `${type} x${n}`).join(', ');
    return { checker, verdict: 'invalid', summary: `invalid: ${named}; first: ${first.explain}; ${size}`, details };
  }
  if (revisions.length === 0) return { checker, verdict: 'unknown', summary: `unknown: no watcher saw any event; ${size}`, details };
  return { checker, verdict: 'valid', summary: `valid: every watcher saw the same ordered, gap-free sequence; ${size}`, details };
}
