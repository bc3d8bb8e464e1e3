// Readers for the two foreign history formats of the linearizability fixtures (test/fixtures/linearizability,
// see its README), turned into the same events as our JSON lines. Neither carries timestamps: the 1-based
// line number stands for the time, which keeps the real-time order of the file.
//
// jepsen-log: Jepsen's log of a single compare-and-set register, fields after the process tab- or space-separated
//   INFO  jepsen.util - 3	:invoke	:cas	[1 2]
//   INFO  jepsen.util - 3	:fail	:read	:timed-out
// kv-edn: a multi-key string store (get / put / append), one EDN map per line
//   {:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}

import { HistoryError, parseJsonLines, type EventType, type HistoryEvent } from './history';

export type HistoryFormat = 'jsonl' | 'jepsen-log' | 'kv-edn';
export const FORMATS: readonly HistoryFormat[] = ['jsonl', 'jepsen-log', 'kv-edn'];

/** The key under which a jepsen-log's single register is checked. */
export const JEPSEN_LOG_KEY = 'register';

const TYPES: ReadonlySet<string> = new Set(['invoke', 'ok', 'fail', 'info']);
const LOG_LINE = /^\S+\s+jepsen\.util\s+-\s+(:?[\w-]+)\s+:(\S+)\s+:(\S+)(?:\s+(.*?))?\s*$/;

function where(source: string | undefined, line: number): string {
  return source ? `${source}:${line}` : `line ${line}`;
}

function lines(text: string): string[] {
  return text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Parses a Jepsen register log (see above). Every non-blank line must be an operation line. */
export function parseJepsenLog(text: string, source?: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const raw = ls[i];
    if (raw.trim() === '') continue;
    const line = i + 1;
    const bad = (why: string): never => {
      throw new HistoryError(`${where(source, line)}: ${why}: ${JSON.stringify(raw.slice(0, 120))}`, line);
    };
    const m = LOG_LINE.exec(raw);
    if (!m) bad('not a Jepsen operation line ("INFO  jepsen.util - <process> :<type> :<f> <value>")');
    const [, proc, type, f, rest] = m!;
    if (!TYPES.has(type)) bad(`unknown type :${type}`);
    if (proc === ':nemesis' || proc === 'nemesis') {
      events.push({ process: 'nemesis', type: type as EventType, f, value: null, time: line, line });
      continue;
    }
    if (!/^\d+$/.test(proc)) bad(`process must be a number, got ${proc}`);
    let value: unknown = null;
    let error: string | undefined;
    const v = (rest ?? '').trim();
    if (v.startsWith(':')) {
      // a keyword in the value position is an error such as :timed-out
      if (type === 'invoke' || type === 'ok') bad(`an ${type} cannot carry the keyword ${v}`);
      error = v.slice(1);
    } else if (v !== '') {
      try {
        value = parseEdnValue(v);
      } catch (e) {
        bad((e as Error).message);
      }
    }
    const ev: HistoryEvent = { process: Number(proc), type: type as EventType, f, key: JEPSEN_LOG_KEY, value, time: line, line };
    if (error !== undefined) ev.error = error;
    events.push(ev);
  }
  return events;
}

/** Parses the kv fixtures' EDN maps, one per line, with :process :type :f :key :value. */
export function parseKvEdn(text: string, source?: string): HistoryEvent[] {
  const events: HistoryEvent[] = [];
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const raw = ls[i];
    if (raw.trim() === '') continue;
    const line = i + 1;
    const bad = (why: string): never => {
      throw new HistoryError(`${where(source, line)}: ${why}`, line);
    };
    let m: unknown;
    try {
      m = parseEdnValue(raw.trim());
    } catch (e) {
      bad((e as Error).message);
    }
    if (!(m instanceof Map)) bad('a kv-edn line must be a map {:process ..., :type ..., :f ..., :key ..., :value ...}');
    const map = m as Map<string, unknown>;
    const kw = (name: string): string => {
      const x = map.get(name);
      if (!(x instanceof Keyword)) bad(`${name} must be a keyword, got ${ednString(x)}`);
      return (x as Keyword).name;
    };
    const process = map.get(':process');
    const type = kw(':type');
    if (!TYPES.has(type)) bad(`unknown :type :${type}`);
    const f = kw(':f');
    let proc: number | 'nemesis';
    if (process instanceof Keyword && process.name === 'nemesis') proc = 'nemesis';
    else if (typeof process === 'number' && Number.isSafeInteger(process) && process >= 0) proc = process;
    else return bad(`:process must be a non-negative integer, got ${ednString(process)}`);
    const key = map.get(':key');
    if (proc !== 'nemesis' && typeof key !== 'string') bad(`:key must be a string, got ${ednString(key)}`);
    const value = map.get(':value');
    const ev: HistoryEvent = {
      process: proc,
      type: type as EventType,
      f,
      value: value instanceof Keyword ? null : value === undefined ? null : value,
      time: line,
      line,
    };
    if (typeof key === 'string') ev.key = key;
    if (value instanceof Keyword) ev.error = value.name;
    events.push(ev);
  }
  return events;
}

// ---- a small EDN reader: nil, true/false, integers, strings, keywords, vectors, lists and maps ----

export class Keyword {
  constructor(readonly name: string) {}
  toString(): string {
    return `:${this.name}`;
  }
}

function ednString(x: unknown): string {
  if (x === undefined) return 'nothing';
  if (x instanceof Keyword) return x.toString();
  return JSON.stringify(x);
}

/** Reads one EDN value (maps become Map with ':keyword' or JSON-ish string keys). Throws on anything else. */
export function parseEdnValue(text: string): unknown {
  let i = 0;
  const n = text.length;
  const ws = (): void => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === ',' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const fail = (why: string): never => {
    throw new Error(`${why} at column ${i + 1}`);
  };
  const read = (): unknown => {
    ws();
    if (i >= n) fail('unexpected end of input');
    const c = text[i];
    if (c === '"') {
      i++;
      let s = '';
      while (true) {
        if (i >= n) fail('unterminated string');
        const d = text[i++];
        if (d === '"') return s;
        if (d === '\\') {
          if (i >= n) fail('unterminated string');
          const e = text[i++];
          const esc: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };
          if (!(e in esc)) fail(`unsupported escape \\${e}`);
          s += esc[e];
        } else s += d;
      }
    }
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      i++;
      const out: unknown[] = [];
      while (true) {
        ws();
        if (i >= n) fail(`missing ${close}`);
        if (text[i] === close) {
          i++;
          return out;
        }
        out.push(read());
      }
    }
    if (c === '{') {
      i++;
      const out = new Map<string, unknown>();
      while (true) {
        ws();
        if (i >= n) fail('missing }');
        if (text[i] === '}') {
          i++;
          return out;
        }
        const k = read();
        const key = k instanceof Keyword ? k.toString() : JSON.stringify(k);
        if (out.has(key)) fail(`duplicate map key ${key}`);
        ws();
        if (i >= n || text[i] === '}') fail(`map key ${key} has no value`);
        out.set(key, read());
      }
    }
    // a token: keyword, number, nil, true, false
    const start = i;
    while (i < n && !/[\s,\[\]{}()"]/.test(text[i])) i++;
    const tok = text.slice(start, i);
    if (tok === '') fail(`unexpected ${JSON.stringify(c)}`);
    if (tok === 'nil') return null;
    if (tok === 'true') return true;
    if (tok === 'false') return false;
    if (tok.startsWith(':') && tok.length > 1) return new Keyword(tok.slice(1));
    if (/^[-+]?\d+$/.test(tok)) {
      const v = Number(tok);
      if (!Number.isSafeInteger(v)) fail(`integer ${tok} out of range`);
      return v;
    }
    if (/^[-+]?\d+\.\d+([eE][-+]?\d+)?$/.test(tok)) return Number(tok);
    return fail(`cannot read ${JSON.stringify(tok)}`);
  };
  const v = read();
  ws();
  if (i < n) fail('trailing characters');
  return v;
}

/** Reads a history in any supported format. */
export function parseHistory(text: string, format: HistoryFormat, source?: string): HistoryEvent[] {
  switch (format) {
    case 'jsonl':
      return parseJsonLines(text, source);
    case 'jepsen-log':
      return parseJepsenLog(text, source);
    case 'kv-edn':
      return parseKvEdn(text, source);
  }
}
