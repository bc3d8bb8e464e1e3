// Small runtime checks for values decoded from MessagePack frames of the native stream
// (src/kv/stream-protocol.ts). Each check either returns the value with its static type or throws a
// CheckError naming the field (a path such as `params.success[2].put.key`) and what is wrong with it, so
// that a malformed frame gets an answer a person can act on.

/** A value that is not what the protocol says; `path` names the field. */
export class CheckError extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`${path}: ${problem}`);
    this.name = 'CheckError';
  }
}

/** Returns `v` as a T, or throws CheckError. */
export type Check<T> = (v: unknown, path: string) => T;

/** What a decoded value is, for error messages. */
export function describe(v: unknown): string {
  if (v === null) return 'nil';
  if (v === undefined) return 'nothing';
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return 'binary';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'number') return Number.isInteger(v) ? `the integer ${v}` : `the number ${v}`;
  if (typeof v === 'bigint') return `the integer ${v} (beyond 2^53)`;
  if (typeof v === 'string') return 'a string';
  if (typeof v === 'boolean') return 'a boolean';
  if (typeof v === 'object') return 'a map';
  return typeof v;
}

function fail(path: string, expected: string, v: unknown): never {
  throw new CheckError(path, `expected ${expected}, got ${describe(v)}`);
}

/** A MessagePack map decoded as a plain object (msgpackr's mapsAsObjects). */
export function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array) &&
    Object.getPrototypeOf(v) === Object.prototype;
}

/** MessagePack bin. msgpackr decodes it to a Buffer in Node; a plain Uint8Array is wrapped, not copied. */
export const bytes: Check<Buffer> = (v, path) => {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return fail(path, 'binary', v);
};

/** An integer that a double holds exactly (revisions, ids, counts: etcd's int64, capped at 2^53 - 1). */
export const safeInt: Check<number> = (v, path) => {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  return fail(path, 'an integer within ±(2^53 - 1)', v);
};

export const safeUint: Check<number> = (v, path) => {
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return v;
  return fail(path, 'a non-negative integer below 2^53', v);
};

export const bool: Check<boolean> = (v, path) => (typeof v === 'boolean' ? v : fail(path, 'a boolean', v));

export const str: Check<string> = (v, path) => (typeof v === 'string' ? v : fail(path, 'a string', v));

export function literal<T extends string>(values: readonly T[]): Check<T> {
  const allowed = new Set<string>(values);
  const list = values.map((x) => JSON.stringify(x)).join(', ');
  return (v, path) => {
    if (typeof v === 'string' && allowed.has(v)) return v as T;
    if (typeof v === 'string') throw new CheckError(path, `expected one of ${list}, got ${JSON.stringify(v.slice(0, 64))}`);
    return fail(path, `one of ${list}`, v);
  };
}

/** Absent or nil (how other MessagePack encoders write "no value") both mean absent. */
export function optional<T>(check: Check<T>): Check<T | undefined> {
  return (v, path) => (v === undefined || v === null ? undefined : check(v, path));
}

export function arrayOf<T>(check: Check<T>): Check<T[]> {
  return (v, path) => {
    if (!Array.isArray(v)) return fail(path, 'an array', v);
    const out: T[] = new Array<T>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = check(v[i], `${path}[${i}]`);
    return out;
  };
}

/** One check per field of T, optional fields included (so that a field added to T without a check here
 *  is a compile error). */
export type Fields<T> = { [K in keyof Required<T>]: Check<T[K]> };

/** What to do with a field the schema does not know: a request carrying one is refused (the sender
 *  misspelled something, or speaks a newer protocol); an answer carrying one is read without it, so a
 *  member may add fields to its answers without breaking older clients. */
export type UnknownFields = 'refuse' | 'ignore';

export function record<T>(fields: Fields<T>, unknown: UnknownFields): Check<T> {
  const names = Object.keys(fields) as (keyof T & string)[];
  const known = new Set<string>(names);
  return (v, path) => {
    if (!isMap(v)) return fail(path, 'a map', v);
    if (unknown === 'refuse') {
      for (const k of Object.keys(v)) {
        if (!known.has(k)) throw new CheckError(path, `unknown field ${JSON.stringify(k.slice(0, 64))}`);
      }
    }
    const out: Partial<T> = {};
    for (const k of names) {
      const checked = (fields[k] as Check<unknown>)(field(v, k), path === '' ? k : `${path}.${k}`);
      // Absent stays absent (not a key holding undefined), as the internal types expect.
      if (checked !== undefined) (out as Record<string, unknown>)[k] = checked;
    }
    return out as T;
  };
}

/** The field of a map, for checks written by hand (discriminated unions). */
export function field(v: Record<string, unknown>, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(v, name) ? v[name] : undefined;
}
