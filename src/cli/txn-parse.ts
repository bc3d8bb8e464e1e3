// etcdctl's `txn` input (etcdctl/ctlv3/command/txn_command.go): compares, a blank line, the requests to run
// if every compare holds, a blank line, the requests to run otherwise (a blank line or the end of input).
//
//   mod("key1") > "0"          compares: TARGET("KEY") OP "VALUE"; TARGET is ver|version, c|create,
//   value("key2") = "v"        m|mod, val|value or lease (its value in hex); OP is =, !=, < or >; KEY and
//                              VALUE are Go quoted strings ("..." with escapes, or `...`)
//   put key1 "overwrote-key1"  requests: put KEY VALUE, get KEY [RANGE_END], del KEY [RANGE_END], with the
//   get key --prefix           flags of those commands; words split as etcdctl's argify does (double
//                              quotes with Go escapes, single quotes as is)
//
// Keel differs in small ways, each in the user's favour: the end of the input also ends a section (etcdctl
// fails with "EOF" unless every section ends with a blank line), text after a compare is an error
// (etcdctl ignores it), and every error names the input line.

import type { Compare, CompareResult, RequestOp, TxnRequest } from '../kv/api';
import { UsageError } from './errors';
import { QuoteError, quotedEnd, unquoteGo } from './go-quote';
import { buildDeleteRequest, buildPutRequest, buildRangeRequest } from './kv-requests';

/** A problem in the txn input, naming its line. */
export class TxnInputError extends Error {
  constructor(
    readonly lineNo: number,
    readonly line: string,
    problem: string,
  ) {
    super(`txn input line ${lineNo}: ${problem}: ${line}`);
    this.name = 'TxnInputError';
  }
}

/** Splits a request line into words as etcdctl's argify does: "double quoted" (Go escapes), 'single
 *  quoted' (as is), or a run of non-space characters. */
export function argify(line: string): Buffer[] {
  const words: Buffer[] = [];
  let i = 0;
  while (i < line.length) {
    if (/\s/.test(line[i])) {
      i++;
      continue;
    }
    if (line[i] === '"') {
      const end = quotedEnd(line, i);
      if (end < 0) throw new QuoteError(`unterminated quote at column ${i + 1}`);
      words.push(unquoteGo(line.slice(i, end)));
      i = end;
    } else if (line[i] === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new QuoteError(`unterminated quote at column ${i + 1}`);
      words.push(Buffer.from(line.slice(i + 1, end), 'utf8'));
      i = end + 1;
    } else {
      let end = i;
      while (end < line.length && !/\s/.test(line[end])) end++;
      words.push(Buffer.from(line.slice(i, end), 'utf8'));
      i = end;
    }
  }
  return words;
}

const OPS: Record<string, CompareResult> = { '=': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER' };

const TARGETS: Record<string, Compare['target']> = {
  ver: 'VERSION',
  version: 'VERSION',
  c: 'CREATE',
  create: 'CREATE',
  m: 'MOD',
  mod: 'MOD',
  val: 'VALUE',
  value: 'VALUE',
  lease: 'LEASE',
};

/** A Go quoted string at `s[i]` (after spaces): its bytes and where it ends. */
function quotedAt(s: string, i: number, what: string): { bytes: Buffer; end: number } {
  while (i < s.length && /\s/.test(s[i])) i++;
  if (s[i] !== '"' && s[i] !== '`') throw new QuoteError(`expected the ${what} in double quotes`);
  const end = quotedEnd(s, i);
  if (end < 0) throw new QuoteError(`the quoted ${what} does not end`);
  return { bytes: unquoteGo(s.slice(i, end)), end };
}

function integer(text: string, radix: 10 | 16, what: string): number {
  const ok = radix === 10 ? /^[+-]?[0-9]+$/.test(text) : /^[0-9a-fA-F]+$/.test(text);
  const v = ok ? parseInt(text, radix) : NaN;
  if (!Number.isSafeInteger(v)) {
    throw new QuoteError(`${JSON.stringify(text)} is not ${radix === 10 ? 'an integer' : 'a lease ID in hex'} (for ${what})`);
  }
  return v;
}

/** One compare line, e.g. `mod("key1") > "0"`. */
export function parseCompare(line: string, lineNo = 1): Compare {
  const fail = (problem: string): never => {
    throw new TxnInputError(lineNo, line, problem);
  };
  const open = line.indexOf('(');
  if (open < 0) fail('malformed comparison (expected TARGET("KEY") OP "VALUE", e.g. mod("key1") > "0")');
  const targetName = line.slice(0, open).trim();
  const target = TARGETS[targetName];
  if (target === undefined) {
    fail(`unknown comparison target ${JSON.stringify(targetName)} (expected ver, version, c, create, m, mod, val, value or lease)`);
  }
  try {
    const key = quotedAt(line, open + 1, 'key');
    let i = key.end;
    while (i < line.length && /\s/.test(line[i])) i++;
    if (line[i] !== ')') throw new QuoteError('expected ")" after the key');
    i++;
    while (i < line.length && /\s/.test(line[i])) i++;
    let opEnd = i;
    while (opEnd < line.length && !/[\s"`]/.test(line[opEnd])) opEnd++;
    const opText = line.slice(i, opEnd);
    const result = OPS[opText];
    if (result === undefined) {
      throw new QuoteError(
        opText === '' ? 'no comparison operator (expected =, !=, < or >)' : `unknown comparison operator ${JSON.stringify(opText)} (expected =, !=, < or >)`,
      );
    }
    const value = quotedAt(line, opEnd, 'value');
    if (line.slice(value.end).trim() !== '') throw new QuoteError('unexpected text after the value');
    const k = key.bytes;
    const v = value.bytes.toString('utf8');
    switch (target) {
      case 'VERSION':
        return { key: k, result, target, version: integer(v, 10, 'version') };
      case 'CREATE':
        return { key: k, result, target, createRevision: integer(v, 10, 'create revision') };
      case 'MOD':
        return { key: k, result, target, modRevision: integer(v, 10, 'mod revision') };
      case 'LEASE':
        return { key: k, result, target, lease: integer(v, 16, 'lease') };
      case 'VALUE':
        return { key: k, result, target, value: value.bytes };
    }
  } catch (e) {
    if (e instanceof QuoteError) fail(`malformed comparison (${e.message})`);
    throw e;
  }
}

type FlagKind = 'bool' | 'string' | 'int';

interface OpSpec {
  flags: Record<string, FlagKind>;
  /** Names of the positional arguments; those after `required` are optional. */
  positionals: string[];
  required: number;
}

const OP_SPECS: Record<'put' | 'get' | 'del', OpSpec> = {
  put: {
    flags: { lease: 'string', 'prev-kv': 'bool', 'ignore-value': 'bool', 'ignore-lease': 'bool' },
    positionals: ['key', 'value'],
    required: 1,
  },
  get: {
    flags: {
      prefix: 'bool',
      'from-key': 'bool',
      rev: 'int',
      limit: 'int',
      'sort-by': 'string',
      order: 'string',
      'keys-only': 'bool',
      'count-only': 'bool',
      consistency: 'string',
    },
    positionals: ['key', 'range_end'],
    required: 1,
  },
  del: {
    flags: { prefix: 'bool', 'from-key': 'bool', 'prev-kv': 'bool' },
    positionals: ['key', 'range_end'],
    required: 1,
  },
};

interface ParsedOpArgs {
  positionals: Buffer[];
  flags: Record<string, string | number | boolean>;
}

/** pflag's syntax: --name, --name=value, --name value (not for booleans); "--" ends the flags. */
function parseOpArgs(cmd: string, words: Buffer[], spec: OpSpec): ParsedOpArgs {
  const out: ParsedOpArgs = { positionals: [], flags: {} };
  let flagsDone = false;
  for (let i = 0; i < words.length; i++) {
    const w = words[i].toString('utf8');
    if (flagsDone || !w.startsWith('-') || w === '-') {
      out.positionals.push(words[i]);
      continue;
    }
    if (w === '--') {
      flagsDone = true;
      continue;
    }
    const body = w.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq < 0 ? body : body.slice(0, eq);
    const kind = spec.flags[name];
    if (kind === undefined) {
      const known = Object.keys(spec.flags).map((f) => `--${f}`);
      throw new UsageError(`unknown flag --${name} for ${cmd} (known: ${known.join(', ')})`);
    }
    let value: string | undefined = eq < 0 ? undefined : body.slice(eq + 1);
    if (kind === 'bool') {
      if (value === undefined || value === 'true') out.flags[name] = true;
      else if (value === 'false') out.flags[name] = false;
      else throw new UsageError(`--${name} takes true or false (got ${JSON.stringify(value)})`);
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= words.length) throw new UsageError(`--${name} needs a value`);
      value = words[++i].toString('utf8');
    }
    if (kind === 'int') {
      if (!/^-?[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new UsageError(`--${name} must be an integer (got ${JSON.stringify(value)})`);
      }
      out.flags[name] = Number(value);
    } else {
      out.flags[name] = value;
    }
  }
  const max = spec.positionals.length;
  if (out.positionals.length < spec.required || out.positionals.length > max) {
    const usage = spec.positionals.map((p, i) => (i < spec.required ? p.toUpperCase() : `[${p.toUpperCase()}]`));
    throw new UsageError(`${cmd} takes ${usage.join(' ')} (got ${out.positionals.length} arguments)`);
  }
  return out;
}

const bool = (f: ParsedOpArgs['flags'], n: string): boolean | undefined => f[n] as boolean | undefined;
const str = (f: ParsedOpArgs['flags'], n: string): string | undefined => f[n] as string | undefined;
const int = (f: ParsedOpArgs['flags'], n: string): number | undefined => f[n] as number | undefined;

/** One request line: `put KEY VALUE`, `get KEY [RANGE_END]` or `del KEY [RANGE_END]`, with their flags. */
export function parseRequestOp(line: string, lineNo = 1): RequestOp {
  try {
    const words = argify(line);
    const cmd = words[0]?.toString('utf8') ?? '';
    if (cmd !== 'put' && cmd !== 'get' && cmd !== 'del') {
      throw new UsageError(`unknown request ${JSON.stringify(cmd)} (expected put, get or del)`);
    }
    const { positionals: p, flags: f } = parseOpArgs(cmd, words.slice(1), OP_SPECS[cmd]);
    switch (cmd) {
      case 'put': {
        const ignoreValue = bool(f, 'ignore-value') === true;
        if (ignoreValue && p.length > 1) throw new UsageError('put takes only KEY with --ignore-value');
        if (!ignoreValue && p.length < 2) throw new UsageError('put takes KEY and VALUE');
        const put = buildPutRequest(p[0], ignoreValue ? Buffer.alloc(0) : p[1], {
          lease: str(f, 'lease'),
          prevKv: bool(f, 'prev-kv'),
          ignoreValue,
          ignoreLease: bool(f, 'ignore-lease'),
        });
        return { type: 'put', put };
      }
      case 'get': {
        const range = buildRangeRequest(p[0], p[1], {
          prefix: bool(f, 'prefix'),
          fromKey: bool(f, 'from-key'),
          rev: int(f, 'rev'),
          limit: int(f, 'limit'),
          sortBy: str(f, 'sort-by'),
          order: str(f, 'order'),
          keysOnly: bool(f, 'keys-only'),
          countOnly: bool(f, 'count-only'),
          consistency: str(f, 'consistency'),
        });
        return { type: 'range', range };
      }
      case 'del': {
        const deleteRange = buildDeleteRequest(p[0], p[1], {
          prefix: bool(f, 'prefix'),
          fromKey: bool(f, 'from-key'),
          prevKv: bool(f, 'prev-kv'),
        });
        return { type: 'deleteRange', deleteRange };
      }
    }
  } catch (e) {
    if (e instanceof UsageError || e instanceof QuoteError) throw new TxnInputError(lineNo, line, `invalid txn request (${e.message})`);
    throw e;
  }
}

/** Where the lines come from (LineReader, or an array in parseTxnText). */
export interface LineSource {
  next(): Promise<string | undefined>;
  /** The number of the line `next()` returned last. */
  readonly lineNo: number;
}

export type TxnSection = 'compares' | 'success' | 'failure';

/** etcdctl's prompts in --interactive mode. */
export const TXN_PROMPTS: Record<TxnSection, string> = {
  compares: 'compares:',
  success: 'success requests (get, put, del):',
  failure: 'failure requests (get, put, del):',
};

/** Reads the lines of one section: up to a blank line (or one with only spaces) or the end of input. */
async function section<T>(src: LineSource, parse: (line: string, lineNo: number) => T): Promise<T[]> {
  const out: T[] = [];
  for (;;) {
    const raw = await src.next();
    if (raw === undefined) return out;
    const line = raw.trim();
    if (line === '') return out;
    out.push(parse(line, src.lineNo));
  }
}

/** Reads a whole txn; `beforeSection` runs before each section is read (for the interactive prompts). */
export async function readTxn(src: LineSource, beforeSection?: (s: TxnSection) => void): Promise<TxnRequest> {
  beforeSection?.('compares');
  const compare = await section(src, parseCompare);
  beforeSection?.('success');
  const success = await section(src, parseRequestOp);
  beforeSection?.('failure');
  const failure = await section(src, parseRequestOp);
  return { compare, success, failure };
}

/** A txn from its whole input text. */
export async function parseTxnText(text: string): Promise<TxnRequest> {
  const lines = text.split(/\r?\n/);
  // A final newline does not start another (empty) line.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let i = 0;
  const src: LineSource = {
    next: async () => (i < lines.length ? lines[i++] : undefined),
    get lineNo() {
      return i;
    },
  };
  return readTxn(src);
}
