// The history format shared by every workload and checker (issue 7, "History format"): JSON lines
//
//   {"process":0,"type":"invoke","f":"write","key":"k","value":3,"time":1000}
//   {"process":0,"type":"ok","f":"write","key":"k","value":3,"time":2500}
//
// one event per line, in the order they happened. `type` is invoke | ok | fail | info; `time` is a monotonic
// timestamp in nanoseconds. Every process has at most one operation in flight: an invoke is followed by that
// process's ok (it happened), fail (it certainly had no effect) or info (indeterminate: it may take effect at
// any time after its invocation, or never; the process is then retired and never invokes again). A read's
// invoke carries null and its ok the value read (null = absent); a cas carries [from, to].
//
// Events from the process "nemesis" (fault injection, shown in reports) are accepted and left out of pairing.

import { closeSync, openSync, writeSync } from 'node:fs';

export type EventType = 'invoke' | 'ok' | 'fail' | 'info';
export type Process = number | 'nemesis';

export interface HistoryEvent {
  process: Process;
  type: EventType;
  f: string;
  key?: string;
  value: unknown;
  /** nanoseconds, monotonic */
  time: number;
  /** optional free text, for example the error that made an operation fail or indeterminate */
  error?: string;
  /** 1-based line of the source file, when parsed */
  line?: number;
  /** fields we do not interpret, kept so that a parse/format round trip loses nothing */
  extra?: Record<string, unknown>;
}

/** One operation: an invocation paired with its completion. */
export interface Operation {
  /** index in the paired history (ordered by invocation) */
  index: number;
  process: number;
  f: string;
  key?: string;
  /** value of the invocation (a write's value, a cas's [from, to], null for a read) */
  value: unknown;
  /** ok: happened; fail: no effect; info: indeterminate (also an invocation never completed) */
  type: 'ok' | 'fail' | 'info';
  /** value of an ok completion (the value a read returned); undefined otherwise */
  output?: unknown;
  invokeTime: number;
  /** Infinity for an indeterminate operation */
  completeTime: number;
  invokeLine?: number;
  completeLine?: number;
  error?: string;
}

/** A malformed history: the message names the line (and the source, when one was given). */
export class HistoryError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(message);
    this.name = 'HistoryError';
  }
}

const TYPES: ReadonlySet<string> = new Set(['invoke', 'ok', 'fail', 'info']);
const KNOWN = new Set(['process', 'type', 'f', 'key', 'value', 'time', 'error']);

function where(source: string | undefined, line: number): string {
  return source ? `${source}:${line}` : `line ${line}`;
}

/**
 * Parses JSON lines. Blank lines are skipped; anything else that is not a well-formed event is refused with
 * a HistoryError naming its line.
 */
export function parseJsonLines(text: string, source?: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (raw.trim() === '') continue;
    events.push(parseEventLine(raw, i + 1, source));
  }
  return events;
}

/** Parses one JSON line (see parseJsonLines). */
export function parseEventLine(raw: string, line: number, source?: string): HistoryEvent {
  const at = where(source, line);
  const bad = (why: string): never => {
    throw new HistoryError(`${at}: ${why}`, line);
  };
  let obj: unknown;
  try {
    obj = JSON.parse(raw);
  } catch (e) {
    return bad(`not valid JSON (${(e as Error).message})`);
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return bad('an event must be a JSON object');
  const o = obj as Record<string, unknown>;

  const process = o.process;
  if (process === undefined) bad('missing "process"');
  if (process !== 'nemesis' && !(typeof process === 'number' && Number.isSafeInteger(process) && process >= 0)) {
    bad(`"process" must be a non-negative integer or "nemesis", got ${JSON.stringify(process)}`);
  }
  const type = o.type;
  if (type === undefined) bad('missing "type"');
  if (typeof type !== 'string' || !TYPES.has(type)) {
    bad(`"type" must be one of invoke, ok, fail, info, got ${JSON.stringify(type)}`);
  }
  const f = o.f;
  if (f === undefined) bad('missing "f"');
  if (typeof f !== 'string' || f === '') bad(`"f" must be a non-empty string, got ${JSON.stringify(f)}`);
  const key = o.key;
  if (key !== undefined && typeof key !== 'string') bad(`"key" must be a string, got ${JSON.stringify(key)}`);
  const time = o.time;
  if (time === undefined) bad('missing "time"');
  if (!(typeof time === 'number' && Number.isSafeInteger(time) && time >= 0)) {
    bad(`"time" must be a non-negative integer (nanoseconds), got ${JSON.stringify(time)}`);
  }
  if (!('value' in o)) bad('missing "value" (use null when there is none)');
  const error = o.error;
  if (error !== undefined && typeof error !== 'string') bad(`"error" must be a string, got ${JSON.stringify(error)}`);

  const ev: HistoryEvent = {
    process: process as Process,
    type: type as EventType,
    f: f as string,
    value: o.value,
    time: time as number,
    line,
  };
  if (key !== undefined) ev.key = key as string;
  if (error !== undefined) ev.error = error as string;
  for (const k of Object.keys(o)) {
    if (!KNOWN.has(k)) (ev.extra ??= {})[k] = o[k];
  }
  return ev;
}

/** One event as a JSON line (no trailing newline); field order: process, type, f, key, value, time, error, extras. */
export function formatEvent(ev: HistoryEvent): string {
  const o: Record<string, unknown> = { process: ev.process, type: ev.type, f: ev.f };
  if (ev.key !== undefined) o.key = ev.key;
  o.value = ev.value === undefined ? null : ev.value;
  o.time = ev.time;
  if (ev.error !== undefined) o.error = ev.error;
  if (ev.extra) for (const [k, v] of Object.entries(ev.extra)) if (!KNOWN.has(k)) o[k] = v;
  return JSON.stringify(o);
}

/** A whole history as JSON lines, each terminated by a newline. */
export function formatHistory(events: Iterable<HistoryEvent>): string {
  let out = '';
  for (const ev of events) out += formatEvent(ev) + '\n';
  return out;
}

/**
 * Appends events to a history file as they happen, one line each, so that a crash of the harness leaves every
 * recorded event readable. Lines are buffered up to `flushBytes` and written with a single write(2).
 */
export class HistoryWriter {
  private fd: number;
  private buf: string[] = [];
  private bytes = 0;

  constructor(
    readonly path: string,
    private readonly flushBytes = 64 * 1024,
  ) {
    this.fd = openSync(path, 'a');
  }

  write(ev: HistoryEvent): void {
    if (this.fd < 0) throw new Error(`history ${this.path} is closed`);
    const line = formatEvent(ev) + '\n';
    this.buf.push(line);
    this.bytes += line.length;
    if (this.bytes >= this.flushBytes) this.flush();
  }

  flush(): void {
    if (this.buf.length === 0 || this.fd < 0) return;
    writeSync(this.fd, this.buf.join(''));
    this.buf = [];
    this.bytes = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    this.flush();
    closeSync(this.fd);
    this.fd = -1;
  }
}

function eventAt(ev: HistoryEvent, source?: string): string {
  return ev.line !== undefined ? where(source, ev.line) : `event at time ${ev.time}`;
}

/**
 * Pairs every invocation with its process's next completion. Refuses (HistoryError naming the line) a
 * completion without an invocation in flight, a second invocation while one is in flight, an invocation by a
 * process that was retired by an info, a completion whose f or key differs from its invocation's, and a
 * completion earlier than its invocation. An invocation still in flight at the end is indeterminate (info).
 * Nemesis events are skipped. Operations come out in the order of their invocations.
 */
export function pairHistory(events: readonly HistoryEvent[], source?: string): Operation[] {
  const ops: Operation[] = [];
  const inFlight = new Map<number, { ev: HistoryEvent; op: Operation }>();
  const retired = new Map<number, HistoryEvent>();
  for (const ev of events) {
    if (ev.process === 'nemesis') continue;
    const p = ev.process;
    const at = eventAt(ev, source);
    if (ev.type === 'invoke') {
      const cur = inFlight.get(p);
      if (cur) {
        throw new HistoryError(
          `${at}: process ${p} invokes ${ev.f} while its ${cur.ev.f} from ${eventAt(cur.ev, source)} is still in flight`,
          ev.line,
        );
      }
      const gone = retired.get(p);
      if (gone) {
        throw new HistoryError(
          `${at}: process ${p} invokes again after its info at ${eventAt(gone, source)} ` +
            `(an indeterminate operation is never completed: its process must not be reused)`,
          ev.line,
        );
      }
      const op: Operation = {
        index: ops.length,
        process: p,
        f: ev.f,
        value: ev.value === undefined ? null : ev.value,
        type: 'info',
        invokeTime: ev.time,
        completeTime: Infinity,
      };
      if (ev.key !== undefined) op.key = ev.key;
      if (ev.line !== undefined) op.invokeLine = ev.line;
      ops.push(op);
      inFlight.set(p, { ev, op });
      continue;
    }
    const cur = inFlight.get(p);
    if (!cur) {
      const gone = retired.get(p);
      throw new HistoryError(
        gone
          ? `${at}: process ${p} completes (${ev.type}) after its info at ${eventAt(gone, source)}`
          : `${at}: ${ev.type} for process ${p}, which has no operation in flight`,
        ev.line,
      );
    }
    const { op } = cur;
    if (ev.f !== op.f) {
      throw new HistoryError(`${at}: process ${p} completes ${ev.f} but invoked ${op.f} at ${eventAt(cur.ev, source)}`, ev.line);
    }
    if (ev.key !== undefined && op.key !== undefined && ev.key !== op.key) {
      throw new HistoryError(
        `${at}: process ${p} completes on key ${JSON.stringify(ev.key)} but invoked on ${JSON.stringify(op.key)} at ${eventAt(cur.ev, source)}`,
        ev.line,
      );
    }
    if (ev.time < op.invokeTime) {
      throw new HistoryError(`${at}: completion at time ${ev.time} is earlier than its invocation at ${op.invokeTime}`, ev.line);
    }
    if (op.key === undefined && ev.key !== undefined) op.key = ev.key;
    op.type = ev.type;
    if (ev.line !== undefined) op.completeLine = ev.line;
    if (ev.error !== undefined) op.error = ev.error;
    inFlight.delete(p);
    if (ev.type === 'ok') {
      op.output = ev.value === undefined ? null : ev.value;
      op.completeTime = ev.time;
    } else if (ev.type === 'fail') {
      op.completeTime = ev.time;
    } else {
      op.completeTime = Infinity;
      retired.set(p, ev);
    }
  }
  return ops;
}

/** A short human-readable description of an operation, for reports. */
export function describeOperation(op: Operation): string {
  const v = (x: unknown): string => (x === undefined ? '' : JSON.stringify(x));
  const where =
    op.invokeLine !== undefined
      ? `lines ${op.invokeLine}-${op.completeLine ?? 'end'}`
      : `time ${op.invokeTime}-${op.completeTime === Infinity ? 'inf' : op.completeTime}`;
  let what: string;
  if (op.type === 'ok' && (op.f === 'read' || op.f === 'get')) what = `${op.f} -> ${v(op.output)}`;
  else what = `${op.f} ${v(op.value)}`;
  const status = op.type === 'ok' ? 'ok' : op.type === 'fail' ? 'fail' : 'info (indeterminate)';
  return `process ${op.process}: ${what}  [${status}; ${where}]`;
}
