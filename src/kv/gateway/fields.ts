// Reading and writing the scalars of etcd's gRPC-gateway JSON, and typed access to the fields of one JSON
// object with errors that name the field.
//
// etcd's gateway marshals with protobuf JSON, OrigName on and EmitDefaults off, which gives:
// - field names as written in the .proto: snake_case for kv messages (create_revision, prev_kv), "ID" and
//   "TTL" for leases, camelCase for StatusResponse (dbSize, raftIndex);
// - int64 and uint64 as decimal strings ("revision":"5"); ids, being uint64, too;
// - bytes as standard base64; enums by name;
// - every field equal to its default (0, false, "", empty list, the enum's first value) left out.
// Parsing follows protobuf JSON's leniency: both the proto name and the lowerCamelCase JSON name of a field,
// numbers or decimal strings for integers, enum names or numbers, standard or URL-safe base64 with or
// without padding, null for "default".
//
// Unknown fields: etcd's gateway ignores them (its JSON unmarshaler drops what it does not know). Keel
// refuses a request with an unknown field, naming it (InvalidArgument), because issue 3 asks for a clear
// error for every bad input: a misspelt "prevKV" silently ignored gives an answer the client did not ask
// for. Responses, on the other hand, are read leniently (a newer server may add fields).

import { GrpcCode, KvError } from '../api';

const HEX_ID = /^[0-9a-f]{1,16}$/;
const DECIMAL = /^-?[0-9]+$/;
const BASE64 = /^[A-Za-z0-9+/_-]*$/;

/** A member or cluster id (16 hex digits) as the gateway prints it: a decimal uint64; '' (none) is 0. */
export function idToJson(id: string): string | undefined {
  if (id === '') return undefined;
  if (!HEX_ID.test(id)) throw new Error(`gateway json: member/cluster id "${id}" is not hex`);
  const n = BigInt('0x' + id);
  return n === 0n ? undefined : n.toString();
}

/** The inverse of idToJson: 16 lowercase hex digits, or '' for 0. */
export function idFromJson(dec: string): string {
  const n = BigInt(dec);
  return n === 0n ? '' : n.toString(16).padStart(16, '0');
}

/** int64/uint64 as protobuf JSON writes them; 0 is the default, so it is left out. */
export function int64(n: number): string | undefined {
  return n === 0 ? undefined : int64Always(n);
}

/** An int64 that is written even when 0: a member of a oneof (Compare's target_union), which protobuf JSON
 *  writes whenever it is set. */
export function int64Always(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`gateway json: ${n} is not an integer`);
  return String(n);
}

export function bytes(b: Buffer | undefined): string | undefined {
  return b === undefined || b.length === 0 ? undefined : b.toString('base64');
}

export function flag(b: boolean | undefined): true | undefined {
  return b === true ? true : undefined;
}

/** An enum as protobuf JSON writes it: by name, left out when it is the default (the first value). */
export function enumName<T extends string>(v: T | undefined, names: readonly T[]): T | undefined {
  return v === undefined || v === names[0] ? undefined : v;
}

/** Drops undefined members, so that JSON.stringify output and deep equality agree on what is there. */
export function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

// ---- reading untrusted JSON ----------------------------------------------------------------------------

export type Fail = (message: string) => Error;

/** A request the client got wrong: InvalidArgument (HTTP 400, code 3). */
export const requestError: Fail = (message) => new KvError(GrpcCode.InvalidArgument, message);

/** A server's answer that is not what the gateway sends. */
export class GatewayResponseError extends Error {
  constructor(message: string) {
    super(`unexpected response from the server: ${message}`);
    this.name = 'GatewayResponseError';
  }
}
export const responseError: Fail = (message) => new GatewayResponseError(message);

/** protobuf's JSON name of a field: each "_x" becomes "X" ("range_end" -> "rangeEnd", "ID" stays). */
export function jsonName(protoName: string): string {
  return protoName.replace(/_(.)/g, (_, c: string) => c.toUpperCase());
}

/** Typed access to the fields of one JSON object, with errors that name the field. */
export class Fields {
  private constructor(
    private readonly o: Record<string, unknown>,
    private readonly where: string,
    readonly fail: Fail,
  ) {}

  /**
   * A request object: every member must be one of `known` (proto names; their JSON names are accepted
   * too), and a field may not be given under both names. null or absent is the empty object, as in
   * protobuf JSON.
   */
  static request(v: unknown, where: string, known: readonly string[]): Fields {
    const f = Fields.object(v, where, requestError);
    const byName = new Map<string, string>();
    for (const k of known) {
      byName.set(k, k);
      byName.set(jsonName(k), k);
    }
    const seen = new Map<string, string>();
    for (const member of Object.keys(f.o)) {
      const proto = byName.get(member);
      if (proto === undefined) throw requestError(`${f.name(member)}: unknown field`);
      const other = seen.get(proto);
      if (other !== undefined) throw requestError(`${f.name(proto)}: given twice (as ${other} and ${member})`);
      seen.set(proto, member);
    }
    return f;
  }

  /** A response object: unknown members are ignored. */
  static response(v: unknown, where: string): Fields {
    return Fields.object(v, where, responseError);
  }

  private static object(v: unknown, where: string, fail: Fail): Fields {
    if (v === undefined || v === null) return new Fields({}, where, fail);
    if (typeof v !== 'object' || Array.isArray(v)) throw fail(`${where || 'body'}: expected a JSON object`);
    return new Fields(v as Record<string, unknown>, where, fail);
  }

  /** The path of a field, for messages ("compare[0].key"). */
  name(field: string): string {
    return this.where === '' ? field : `${this.where}.${field}`;
  }

  /** The value under the proto name or the JSON name; null counts as absent. */
  raw(field: string): unknown {
    let v = this.o[field];
    if (v === undefined) {
      const alt = jsonName(field);
      if (alt !== field) v = this.o[alt];
    }
    return v === null ? undefined : v;
  }

  has(field: string): boolean {
    return this.raw(field) !== undefined;
  }

  bytes(field: string): Buffer | undefined {
    const v = this.raw(field);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.fail(`${this.name(field)}: expected a base64 string`);
    return decodeBase64(v, () => this.fail(`${this.name(field)}: illegal base64 data`));
  }

  /** An int64 that Keel can hold exactly: |n| <= 2^53-1 (Number.MAX_SAFE_INTEGER). */
  int(field: string): number | undefined {
    const v = this.raw(field);
    if (v === undefined) return undefined;
    return toInt(v, this.name(field), this.fail);
  }

  /** A uint64 (raft term, index): an int that may not be negative. */
  uint(field: string): number | undefined {
    const n = this.int(field);
    if (n !== undefined && n < 0) throw this.fail(`${this.name(field)}: ${n} is negative`);
    return n;
  }

  /** A uint64 member or cluster id, as 16 hex digits ('' for 0). */
  id(field: string): string {
    const v = this.raw(field);
    if (v === undefined) return '';
    if ((typeof v === 'string' && /^[0-9]+$/.test(v)) || (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0)) {
      const id = idFromJson(String(v));
      if (id.length <= 16) return id;
    }
    throw this.fail(`${this.name(field)}: expected a uint64 id as a decimal string`);
  }

  bool(field: string): boolean | undefined {
    const v = this.raw(field);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.fail(`${this.name(field)}: expected true or false`);
    return v;
  }

  str(field: string): string | undefined {
    const v = this.raw(field);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.fail(`${this.name(field)}: expected a string`);
    return v;
  }

  /** An enum by name or by number, as protobuf JSON accepts it; `names` in the .proto's order. */
  enumValue<T extends string>(field: string, names: readonly T[]): T | undefined {
    const v = this.raw(field);
    if (v === undefined) return undefined;
    return toEnum(v, names, this.name(field), this.fail);
  }

  /** A repeated enum. */
  enumList<T extends string>(field: string, names: readonly T[]): T[] {
    return this.list(field).map((v, i) => {
      if (v === null) throw this.fail(`${this.name(field)}[${i}]: expected one of ${names.join(', ')}`);
      return toEnum(v, names, `${this.name(field)}[${i}]`, this.fail);
    });
  }

  /** A nested message; absent: undefined. */
  obj(field: string): unknown {
    return this.raw(field);
  }

  list(field: string): unknown[] {
    const v = this.raw(field);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw this.fail(`${this.name(field)}: expected a list`);
    return v;
  }
}

/** Standard or URL-safe base64, padded or not; a partial last quantum is illegal, as in Go. */
export function decodeBase64(v: string, fail: () => Error): Buffer {
  const body = v.replace(/={1,2}$/, '');
  const padded = body.length !== v.length;
  if (!BASE64.test(body) || body.length % 4 === 1 || (padded && v.length % 4 !== 0)) throw fail();
  return Buffer.from(body, 'base64');
}

function toInt(v: unknown, name: string, fail: Fail): number {
  let n: number;
  if (typeof v === 'number') n = v;
  else if (typeof v === 'string' && DECIMAL.test(v)) n = Number(v);
  else throw fail(`${name}: expected an integer (number or decimal string)`);
  if (Number.isInteger(n) && !Number.isSafeInteger(n)) {
    // Lease ids and revisions are int64 in etcd; Keel keeps them as JS numbers, exact up to 2^53-1.
    throw fail(
      `${name}: ${String(v)} is out of the range Keel supports (at most ${Number.MAX_SAFE_INTEGER} = 2^53-1 in magnitude)`,
    );
  }
  if (!Number.isSafeInteger(n)) throw fail(`${name}: ${String(v)} is not an integer`);
  return n;
}

function toEnum<T extends string>(v: unknown, names: readonly T[], name: string, fail: Fail): T {
  if (typeof v === 'string' && (names as readonly string[]).includes(v)) return v as T;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < names.length) return names[v];
  const expected = `${names.join(', ')}, or 0-${names.length - 1}`;
  throw fail(`${name}: unknown value ${JSON.stringify(v)} (expected one of ${expected})`);
}
