// Translation between the internal KV API (api.ts) and etcd's gRPC-gateway JSON, both ways: the server
// encodes responses and parses requests, the client encodes requests and decodes responses. No HTTP code
// here, so that the client can import it alone.
//
// etcd's gateway marshals with protobuf JSON, OrigName on and EmitDefaults off, which gives:
// - field names as written in the .proto: snake_case for kv messages (create_revision, prev_kv), but
//   camelCase for StatusResponse, whose .proto fields are camelCase (dbSize, raftIndex);
// - int64 and uint64 as decimal strings ("revision":"5"); ids, being uint64, too;
// - bytes as standard base64;
// - every field equal to its default (0, false, "", empty list) left out.
// Parsing follows protobuf JSON's leniency: both the proto name and the lowerCamelCase JSON name of a field,
// numbers or decimal strings for integers, standard or URL-safe base64 with or without padding, null for
// "default", unknown fields ignored.

import {
  GrpcCode,
  KvError,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type HealthResponse,
  type KeyValue,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
} from './api';

// ---- JSON shapes ---------------------------------------------------------------------------------------

export interface HeaderJson {
  cluster_id?: string;
  member_id?: string;
  revision?: string;
  raft_term?: string;
}

export interface KeyValueJson {
  key?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  value?: string;
  lease?: string;
}

export interface RangeRequestJson {
  key?: string;
  range_end?: string;
  limit?: string;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
}

export interface RangeResponseJson {
  header: HeaderJson;
  kvs?: KeyValueJson[];
  more?: boolean;
  count?: string;
}

export interface PutRequestJson {
  key?: string;
  value?: string;
  prev_kv?: boolean;
}

export interface PutResponseJson {
  header: HeaderJson;
  prev_kv?: KeyValueJson;
}

export interface DeleteRangeRequestJson {
  key?: string;
  range_end?: string;
  prev_kv?: boolean;
}

export interface DeleteRangeResponseJson {
  header: HeaderJson;
  deleted?: string;
  prev_kvs?: KeyValueJson[];
}

export interface StatusResponseJson {
  header: HeaderJson;
  version?: string;
  dbSize?: string;
  leader?: string;
  raftIndex?: string;
  raftTerm?: string;
  raftAppliedIndex?: string;
  errors?: string[];
  isLearner?: boolean;
  /** Keel's additions. */
  snapshotIndex?: string;
  firstIndex?: string;
  name?: string;
}

/** etcd's /health body (plain Go JSON, not protobuf: both fields always present, health a string). */
export interface HealthJson {
  health: 'true' | 'false';
  reason: string;
}

/** The gateway's error body (grpc-gateway v1, which etcd uses). */
export interface ErrorJson {
  error: string;
  code: number;
  message: string;
}

// ---- scalars -------------------------------------------------------------------------------------------

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
function int64(n: number): string | undefined {
  if (!Number.isSafeInteger(n)) throw new Error(`gateway json: ${n} is not an integer`);
  return n === 0 ? undefined : String(n);
}

function bytes(b: Buffer): string | undefined {
  return b.length === 0 ? undefined : b.toString('base64');
}

/** Drops undefined members, so that JSON.stringify output and deep equality agree on what is there. */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

// ---- reading untrusted JSON ----------------------------------------------------------------------------

type Fail = (message: string) => Error;

const requestError: Fail = (message) => new KvError(GrpcCode.InvalidArgument, message);

/** A server's answer that is not what the gateway sends. */
export class GatewayResponseError extends Error {
  constructor(message: string) {
    super(`unexpected response from the server: ${message}`);
    this.name = 'GatewayResponseError';
  }
}
const responseError: Fail = (message) => new GatewayResponseError(message);

function snakeToCamel(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Typed access to the fields of one JSON object, with errors that name the field. */
class Fields {
  constructor(
    private readonly o: Record<string, unknown>,
    private readonly where: string,
    private readonly fail: Fail,
  ) {}

  static of(v: unknown, where: string, fail: Fail): Fields {
    if (v === undefined || v === null) return new Fields({}, where, fail);
    if (typeof v !== 'object' || Array.isArray(v)) throw fail(`${where || 'body'}: expected a JSON object`);
    return new Fields(v as Record<string, unknown>, where, fail);
  }

  private name(field: string): string {
    return this.where === '' ? field : `${this.where}.${field}`;
  }

  /** The value under the proto name or the lowerCamelCase JSON name; null counts as absent. */
  raw(field: string): unknown {
    let v = this.o[field];
    if (v === undefined) {
      const camel = snakeToCamel(field);
      if (camel !== field) v = this.o[camel];
    }
    return v === null ? undefined : v;
  }

  bytes(field: string): Buffer | undefined {
    const v = this.raw(field);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.fail(`${this.name(field)}: expected a base64 string`);
    const body = v.replace(/={1,2}$/, '');
    const padded = body.length !== v.length;
    if (!BASE64.test(body) || body.length % 4 === 1 || (padded && v.length % 4 !== 0)) {
      throw this.fail(`${this.name(field)}: illegal base64 data`);
    }
    return Buffer.from(body, 'base64');
  }

  int(field: string, unsigned = false): number | undefined {
    const v = this.raw(field);
    if (v === undefined) return undefined;
    let n: number;
    if (typeof v === 'number') n = v;
    else if (typeof v === 'string' && DECIMAL.test(v)) n = Number(v);
    else throw this.fail(`${this.name(field)}: expected an integer (number or decimal string)`);
    if (!Number.isSafeInteger(n)) throw this.fail(`${this.name(field)}: ${v} is not an integer Keel can represent`);
    if (unsigned && n < 0) throw this.fail(`${this.name(field)}: ${v} is negative`);
    return n;
  }

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

  obj(field: string): Fields | undefined {
    const v = this.raw(field);
    return v === undefined ? undefined : Fields.of(v, this.name(field), this.fail);
  }

  list(field: string): unknown[] {
    const v = this.raw(field);
    if (v === undefined) return [];
    if (!Array.isArray(v)) throw this.fail(`${this.name(field)}: expected a list`);
    return v;
  }

  /** Fields of etcd's request that Keel does not implement yet: refused unless they hold the default, so
   *  that a client never gets a silently different answer than it asked for. */
  unsupported(fields: string[], what: string, alsoAccepted: unknown[] = []): void {
    for (const f of fields) {
      const v = this.raw(f);
      if (v === undefined || v === 0 || v === '0' || v === false || v === '' || alsoAccepted.includes(v)) continue;
      throw new KvError(GrpcCode.Unimplemented, `keel: ${what} field "${f}" is not supported yet`);
    }
  }
}

// ---- encoding (server: responses; client: requests) ----------------------------------------------------

export function headerToJson(h: ResponseHeader): HeaderJson {
  return compact({
    cluster_id: idToJson(h.clusterId),
    member_id: idToJson(h.memberId),
    revision: int64(h.revision),
    raft_term: int64(h.raftTerm),
  });
}

export function kvToJson(kv: KeyValue): KeyValueJson {
  return compact({
    key: bytes(kv.key),
    create_revision: int64(kv.createRevision),
    mod_revision: int64(kv.modRevision),
    version: int64(kv.version),
    value: bytes(kv.value),
    lease: int64(kv.lease),
  });
}

export function rangeResponseToJson(r: RangeResponse): RangeResponseJson {
  return compact({
    header: headerToJson(r.header),
    kvs: r.kvs.length === 0 ? undefined : r.kvs.map(kvToJson),
    more: r.more ? true : undefined,
    count: int64(r.count),
  });
}

export function putResponseToJson(r: PutResponse): PutResponseJson {
  return compact({
    header: headerToJson(r.header),
    prev_kv: r.prevKv === undefined ? undefined : kvToJson(r.prevKv),
  });
}

export function deleteRangeResponseToJson(r: DeleteRangeResponse): DeleteRangeResponseJson {
  return compact({
    header: headerToJson(r.header),
    deleted: int64(r.deleted),
    prev_kvs: r.prevKvs.length === 0 ? undefined : r.prevKvs.map(kvToJson),
  });
}

export function statusResponseToJson(r: StatusResponse): StatusResponseJson {
  return compact({
    header: headerToJson(r.header),
    version: r.version === '' ? undefined : r.version,
    dbSize: int64(r.dbSize),
    leader: idToJson(r.leader),
    raftIndex: int64(r.raftIndex),
    raftTerm: int64(r.raftTerm),
    raftAppliedIndex: int64(r.raftAppliedIndex),
    errors: r.errors.length === 0 ? undefined : [...r.errors],
    isLearner: r.isLearner ? true : undefined,
    snapshotIndex: int64(r.snapshotIndex),
    firstIndex: int64(r.firstIndex),
    name: r.name === '' ? undefined : r.name,
  });
}

export function healthToJson(h: HealthResponse): HealthJson {
  return { health: h.health ? 'true' : 'false', reason: h.reason };
}

export function errorToJson(code: GrpcCode, message: string): ErrorJson {
  // grpc-gateway v1's field order.
  return { error: message, code, message };
}

export function rangeRequestToJson(r: RangeRequest): RangeRequestJson {
  return compact({
    key: bytes(r.key),
    range_end: r.rangeEnd === undefined ? undefined : bytes(r.rangeEnd),
    limit: r.limit === undefined ? undefined : int64(r.limit),
    serializable: r.serializable ? true : undefined,
    keys_only: r.keysOnly ? true : undefined,
    count_only: r.countOnly ? true : undefined,
  });
}

export function putRequestToJson(r: PutRequest): PutRequestJson {
  return compact({ key: bytes(r.key), value: bytes(r.value), prev_kv: r.prevKv ? true : undefined });
}

export function deleteRangeRequestToJson(r: DeleteRangeRequest): DeleteRangeRequestJson {
  return compact({
    key: bytes(r.key),
    range_end: r.rangeEnd === undefined ? undefined : bytes(r.rangeEnd),
    prev_kv: r.prevKv ? true : undefined,
  });
}

// ---- decoding requests (server). Errors are KvError InvalidArgument (HTTP 400, code 3). ------------------

export function parseRangeRequest(body: unknown): RangeRequest {
  const f = Fields.of(body, '', requestError);
  f.unsupported(
    ['revision', 'min_mod_revision', 'max_mod_revision', 'min_create_revision', 'max_create_revision'],
    'range',
  );
  // Ascending by key is the order Keel answers in; etcd reads NONE as that order too (for target KEY).
  f.unsupported(['sort_target'], 'range', ['KEY']);
  f.unsupported(['sort_order'], 'range', ['NONE', 'ASCEND', 1, '1']);
  const r: RangeRequest = { key: f.bytes('key') ?? Buffer.alloc(0) };
  const rangeEnd = f.bytes('range_end');
  if (rangeEnd !== undefined && rangeEnd.length > 0) r.rangeEnd = rangeEnd;
  const limit = f.int('limit');
  if (limit !== undefined && limit !== 0) r.limit = limit;
  if (f.bool('serializable')) r.serializable = true;
  if (f.bool('keys_only')) r.keysOnly = true;
  if (f.bool('count_only')) r.countOnly = true;
  return r;
}

export function parsePutRequest(body: unknown): PutRequest {
  const f = Fields.of(body, '', requestError);
  f.unsupported(['lease', 'ignore_value', 'ignore_lease'], 'put');
  const r: PutRequest = { key: f.bytes('key') ?? Buffer.alloc(0), value: f.bytes('value') ?? Buffer.alloc(0) };
  if (f.bool('prev_kv')) r.prevKv = true;
  return r;
}

export function parseDeleteRangeRequest(body: unknown): DeleteRangeRequest {
  const f = Fields.of(body, '', requestError);
  const r: DeleteRangeRequest = { key: f.bytes('key') ?? Buffer.alloc(0) };
  const rangeEnd = f.bytes('range_end');
  if (rangeEnd !== undefined && rangeEnd.length > 0) r.rangeEnd = rangeEnd;
  if (f.bool('prev_kv')) r.prevKv = true;
  return r;
}

// ---- decoding responses (client). Missing fields are defaults; wrong types throw GatewayResponseError. ----

function decodeHeaderFields(f: Fields | undefined): ResponseHeader {
  if (f === undefined) return { clusterId: '', memberId: '', revision: 0, raftTerm: 0 };
  return {
    clusterId: f.id('cluster_id'),
    memberId: f.id('member_id'),
    revision: f.int('revision') ?? 0,
    raftTerm: f.int('raft_term', true) ?? 0,
  };
}

function decodeKvFields(f: Fields): KeyValue {
  return {
    key: f.bytes('key') ?? Buffer.alloc(0),
    createRevision: f.int('create_revision') ?? 0,
    modRevision: f.int('mod_revision') ?? 0,
    version: f.int('version') ?? 0,
    value: f.bytes('value') ?? Buffer.alloc(0),
    lease: f.int('lease') ?? 0,
  };
}

function decodeKvList(f: Fields, field: string): KeyValue[] {
  return f.list(field).map((v, i) => decodeKvFields(Fields.of(v, `${field}[${i}]`, responseError)));
}

export function decodeHeader(json: unknown): ResponseHeader {
  return decodeHeaderFields(Fields.of(json, 'header', responseError));
}

export function decodeKeyValue(json: unknown): KeyValue {
  return decodeKvFields(Fields.of(json, 'kv', responseError));
}

export function decodeRangeResponse(json: unknown): RangeResponse {
  const f = Fields.of(json, '', responseError);
  return {
    header: decodeHeaderFields(f.obj('header')),
    kvs: decodeKvList(f, 'kvs'),
    more: f.bool('more') ?? false,
    count: f.int('count') ?? 0,
  };
}

export function decodePutResponse(json: unknown): PutResponse {
  const f = Fields.of(json, '', responseError);
  const r: PutResponse = { header: decodeHeaderFields(f.obj('header')) };
  const prev = f.obj('prev_kv');
  if (prev !== undefined) r.prevKv = decodeKvFields(prev);
  return r;
}

export function decodeDeleteRangeResponse(json: unknown): DeleteRangeResponse {
  const f = Fields.of(json, '', responseError);
  return {
    header: decodeHeaderFields(f.obj('header')),
    deleted: f.int('deleted') ?? 0,
    prevKvs: decodeKvList(f, 'prev_kvs'),
  };
}

export function decodeStatusResponse(json: unknown): StatusResponse {
  const f = Fields.of(json, '', responseError);
  return {
    header: decodeHeaderFields(f.obj('header')),
    version: f.str('version') ?? '',
    dbSize: f.int('dbSize') ?? 0,
    leader: f.id('leader'),
    raftIndex: f.int('raftIndex', true) ?? 0,
    raftTerm: f.int('raftTerm', true) ?? 0,
    raftAppliedIndex: f.int('raftAppliedIndex', true) ?? 0,
    snapshotIndex: f.int('snapshotIndex', true) ?? 0,
    firstIndex: f.int('firstIndex', true) ?? 0,
    isLearner: f.bool('isLearner') ?? false,
    errors: f.list('errors').map((e, i) => {
      if (typeof e !== 'string') throw responseError(`errors[${i}]: expected a string`);
      return e;
    }),
    name: f.str('name') ?? '',
  };
}

export function decodeHealthResponse(json: unknown): HealthResponse {
  const f = Fields.of(json, '', responseError);
  const h = f.str('health');
  if (h !== 'true' && h !== 'false') throw responseError('health: expected "true" or "false"');
  return { health: h === 'true', reason: f.str('reason') ?? '' };
}

const GRPC_CODES = new Set<number>([
  GrpcCode.Canceled,
  GrpcCode.Unknown,
  GrpcCode.InvalidArgument,
  GrpcCode.DeadlineExceeded,
  GrpcCode.NotFound,
  GrpcCode.FailedPrecondition,
  GrpcCode.OutOfRange,
  GrpcCode.Unimplemented,
  GrpcCode.Internal,
  GrpcCode.Unavailable,
]);

/** The KvError an error answer stands for: its code and etcd's message when the body is the gateway's,
 *  otherwise a code guessed from the HTTP status. */
export function errorFromJson(httpStatus: number, json: unknown): KvError {
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    const message = typeof o.message === 'string' ? o.message : typeof o.error === 'string' ? o.error : undefined;
    if (message !== undefined) {
      const code = typeof o.code === 'number' && GRPC_CODES.has(o.code) ? (o.code as GrpcCode) : codeFromHttpStatus(httpStatus);
      return new KvError(code, message);
    }
  }
  return new KvError(codeFromHttpStatus(httpStatus), `HTTP ${httpStatus}`);
}

/** grpc-gateway's mapping of gRPC codes to HTTP statuses (v1, which etcd uses). */
export function httpStatusFromCode(code: GrpcCode): number {
  switch (code) {
    case GrpcCode.OK:
      return 200;
    case GrpcCode.Canceled:
      return 408;
    case GrpcCode.InvalidArgument:
    case GrpcCode.FailedPrecondition:
    case GrpcCode.OutOfRange:
      return 400;
    case GrpcCode.DeadlineExceeded:
      return 504;
    case GrpcCode.NotFound:
      return 404;
    case GrpcCode.Unimplemented:
      return 501;
    case GrpcCode.Unavailable:
      return 503;
    case GrpcCode.Unknown:
    case GrpcCode.Internal:
    default:
      return 500;
  }
}

function codeFromHttpStatus(status: number): GrpcCode {
  switch (status) {
    case 400:
    case 413:
      return GrpcCode.InvalidArgument;
    case 404:
      return GrpcCode.NotFound;
    case 408:
      return GrpcCode.Canceled;
    case 501:
      return GrpcCode.Unimplemented;
    case 503:
      return GrpcCode.Unavailable;
    case 504:
      return GrpcCode.DeadlineExceeded;
    default:
      return GrpcCode.Unknown;
  }
}
