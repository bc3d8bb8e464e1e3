// The models the linearizability checker knows, in two halves:
//   - prepareKey (main thread): turns one key's paired operations into plain task operations, dropping what
//     can have had no effect and refusing operations the model does not understand (HistoryError naming the
//     line);
//   - compileModel (worker): turns task operations into an integer model for wgl.ts, values interned so that
//     states compare with ===.
//
// register: read / write / cas on one value at a time, initially null (absent).
//   ok read v        allowed iff state == v
//   write v          state := v                (ok or info)
//   ok cas [a, b]    allowed iff state == a; state := b
//   info cas [a, b]  allowed; state := b if state == a (an indeterminate cas may also never take effect: its
//                    return is at +infinity, so "after everything" is always a place for it)
//   fail *           dropped: it had no effect
//   info read        dropped: a read changes nothing, and an unanswered one tells nothing
// kv (the kv fixtures): get / put / append on strings, every key initially "".
//   ok get v  allowed iff state == v;  put v  state := v;  append v  state := state + v;  fail, info get dropped.
// Values compare by JSON value (1 and "1" differ; objects compare structurally).

import { HistoryError, type Operation } from '../history';
import type { IntModel } from './wgl';

export type ModelName = 'register' | 'kv';
export const MODELS: readonly ModelName[] = ['register', 'kv'];

export enum Kind {
  Read = 0,
  Write = 1,
  Cas = 2,
  CasInfo = 3,
  Get = 4,
  Put = 5,
  Append = 6,
}

/** One operation as sent to a worker (structured-cloneable). */
export interface TaskOp {
  /** index of the operation in the whole paired history */
  index: number;
  kind: Kind;
  a: unknown;
  b?: unknown;
  call: number;
  /** Infinity when indeterminate */
  ret: number;
}

export interface PreparedKey {
  ops: TaskOp[];
  /** operations left out because they cannot have had an effect (fail, unanswered reads) */
  dropped: number;
}

function lineOf(op: Operation): string {
  return op.invokeLine !== undefined ? `line ${op.invokeLine}` : `operation at time ${op.invokeTime}`;
}

function refuse(op: Operation, why: string, source?: string): never {
  const at = op.invokeLine !== undefined && source ? `${source}:${op.invokeLine}` : lineOf(op);
  throw new HistoryError(`${at}: ${why}`, op.invokeLine);
}

export function initialValue(model: ModelName): unknown {
  return model === 'kv' ? '' : null;
}

/** The operations of one key, ready for a worker. */
export function prepareKey(model: ModelName, ops: readonly Operation[], source?: string): PreparedKey {
  const out: TaskOp[] = [];
  let dropped = 0;
  for (const op of ops) {
    const base = { index: op.index, call: op.invokeTime, ret: op.type === 'info' ? Infinity : op.completeTime };
    if (model === 'register') {
      switch (op.f) {
        case 'read':
          if (op.type !== 'ok') {
            dropped++;
            continue;
          }
          out.push({ ...base, kind: Kind.Read, a: op.output });
          break;
        case 'write':
          if (op.type === 'fail') {
            dropped++;
            continue;
          }
          if (op.value === undefined) refuse(op, 'a write needs a value', source);
          out.push({ ...base, kind: Kind.Write, a: op.value });
          break;
        case 'cas': {
          if (!Array.isArray(op.value) || op.value.length !== 2) {
            refuse(op, `a cas's value must be [from, to], got ${JSON.stringify(op.value)}`, source);
          }
          if (op.type === 'fail') {
            dropped++;
            continue;
          }
          const [from, to] = op.value as unknown[];
          out.push({ ...base, kind: op.type === 'info' ? Kind.CasInfo : Kind.Cas, a: from, b: to });
          break;
        }
        default:
          refuse(op, `the register workload has read, write and cas; got ${JSON.stringify(op.f)}`, source);
      }
    } else {
      switch (op.f) {
        case 'get':
          if (op.type !== 'ok') {
            dropped++;
            continue;
          }
          if (typeof op.output !== 'string') refuse(op, `a get must return a string, got ${JSON.stringify(op.output)}`, source);
          out.push({ ...base, kind: Kind.Get, a: op.output });
          break;
        case 'put':
        case 'append':
          if (typeof op.value !== 'string') refuse(op, `${op.f === 'append' ? 'an' : 'a'} ${op.f} needs a string value, got ${JSON.stringify(op.value)}`, source);
          if (op.type === 'fail') {
            dropped++;
            continue;
          }
          out.push({ ...base, kind: op.f === 'put' ? Kind.Put : Kind.Append, a: op.value });
          break;
        default:
          refuse(op, `the kv workload has get, put and append; got ${JSON.stringify(op.f)}`, source);
      }
    }
  }
  return { ops: out, dropped };
}

/** A canonical string for a JSON value (object keys sorted), to intern values. */
function canon(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'number':
      return 'n' + String(v);
    case 'string':
      return 's' + v;
    case 'boolean':
      return v ? 'true' : 'false';
    default:
      return 'j' + stableJson(v);
  }
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return '[' + v.map(stableJson).join(',') + ']';
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return '{' + Object.keys(o).sort().map((k) => JSON.stringify(k) + ':' + stableJson(o[k])).join(',') + '}';
  }
  return JSON.stringify(v === undefined ? null : v);
}

export interface CompiledModel extends IntModel {
  /** the value a state stands for */
  value(state: number): unknown;
}

/** The integer model of a task's operations, for wgl(). Operation i of the model is ops[i]. */
export function compileModel(model: ModelName, ops: readonly TaskOp[]): CompiledModel {
  const ids = new Map<string, number>();
  const values: unknown[] = [];
  const intern = (v: unknown): number => {
    const k = model === 'kv' ? (v as string) : canon(v);
    let id = ids.get(k);
    if (id === undefined) {
      id = values.length;
      ids.set(k, id);
      values.push(v === undefined ? null : v);
    }
    return id;
  };
  const init = intern(initialValue(model));
  const n = ops.length;
  const kind = new Uint8Array(n);
  const a = new Int32Array(n);
  const b = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const op = ops[i];
    kind[i] = op.kind;
    a[i] = op.kind === Kind.Append ? -1 : intern(op.a);
    if (op.kind === Kind.Cas || op.kind === Kind.CasInfo) b[i] = intern(op.b);
  }
  if (model === 'register') {
    return {
      init,
      value: (s) => values[s],
      // a read, and a cas [a, a]: never change the state, admitted or not by the state alone
      pure: (op) => kind[op] === Kind.Read || ((kind[op] === Kind.Cas || kind[op] === Kind.CasInfo) && a[op] === b[op]),
      // for the lookahead (wgl.ts, reduction 2): only a write of v or a cas to v can make the value v
      produces: (op) => (kind[op] === Kind.Write ? a[op] : kind[op] === Kind.Cas || kind[op] === Kind.CasInfo ? b[op] : -1),
      needs: (op) => (kind[op] === Kind.Read || kind[op] === Kind.Cas ? [a[op]] : undefined),
      admitsWithout: (state, op) => state === a[op],
      step(state: number, op: number): number {
        switch (kind[op]) {
          case Kind.Read:
            return state === a[op] ? state : -1;
          case Kind.Write:
            return a[op];
          case Kind.Cas:
            return state === a[op] ? b[op] : -1;
          default: // CasInfo
            return state === a[op] ? b[op] : state;
        }
      },
    };
  }
  // kv: appends create new strings; remember each (state, op) transition
  const appended = new Map<number, number>();
  const strs = values as string[];
  const appendArg = ops.map((o) => (o.kind === Kind.Append ? (o.a as string) : ''));
  const putValues = [...new Set(ops.flatMap((o, i) => (o.kind === Kind.Put ? [a[i]] : [])))];
  return {
    init,
    value: (s) => values[s],
    pure: (op) => kind[op] === Kind.Get || (kind[op] === Kind.Append && appendArg[op] === ''),
    // for the lookahead (wgl.ts, reduction 2): appends only extend the value, so a get of v needs the current value
    // to be a prefix of v, or a put of a prefix of v
    produces: (op) => (kind[op] === Kind.Put ? a[op] : -1),
    needs: (op) => (kind[op] === Kind.Get ? putValues.filter((p) => strs[a[op]].startsWith(strs[p])) : undefined),
    admitsWithout: (state, op) => strs[a[op]].startsWith(strs[state]),
    step(state: number, op: number): number {
      switch (kind[op]) {
        case Kind.Get:
          return state === a[op] ? state : -1;
        case Kind.Put:
          return a[op];
        default: {
          const k = state * n + op;
          let s = appended.get(k);
          if (s === undefined) {
            s = intern(strs[state] + appendArg[op]);
            appended.set(k, s);
          }
          return s;
        }
      }
    },
  };
}
