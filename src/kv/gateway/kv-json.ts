// The KV service in etcd's gateway JSON (rpc.proto's RangeRequest ... CompactionResponse, kv.proto's
// KeyValue): encoders and decoders for both sides. The server parses requests and encodes responses; the
// client encodes requests and decodes responses.

import {
  Errors,
  MAX_TXN_OPS,
  type CompactionRequest,
  type CompactionResponse,
  type Compare,
  type CompareResult,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type KeyValue,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type SortOrder,
  type SortTarget,
  type TxnRequest,
  type TxnResponse,
} from '../api';
import { Fields, bytes, compact, enumName, flag, idToJson, int64, int64Always } from './fields';

// ---- enums, in the .proto's order (index = number) ------------------------------------------------------

export const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
export const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
export const COMPARE_RESULTS: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
export type CompareTarget = Compare['target'];
export const COMPARE_TARGETS: readonly CompareTarget[] = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'];

/** The target_union member each target reads (etcd's Compare message). */
const TARGET_FIELD: Record<CompareTarget, string> = {
  VERSION: 'version',
  CREATE: 'create_revision',
  MOD: 'mod_revision',
  VALUE: 'value',
  LEASE: 'lease',
};

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
  revision?: string;
  sort_order?: SortOrder;
  sort_target?: SortTarget;
  serializable?: boolean;
  keys_only?: boolean;
  count_only?: boolean;
  min_mod_revision?: string;
  max_mod_revision?: string;
  min_create_revision?: string;
  max_create_revision?: string;
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
  lease?: string;
  prev_kv?: boolean;
  ignore_value?: boolean;
  ignore_lease?: boolean;
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

export interface CompareJson {
  result?: CompareResult;
  target?: CompareTarget;
  key?: string;
  range_end?: string;
  // target_union: exactly one, written even when it holds its default (protobuf JSON writes a set oneof).
  version?: string;
  create_revision?: string;
  mod_revision?: string;
  value?: string;
  lease?: string;
}

export interface RequestOpJson {
  request_range?: RangeRequestJson;
  request_put?: PutRequestJson;
  request_delete_range?: DeleteRangeRequestJson;
  request_txn?: TxnRequestJson;
}

export interface ResponseOpJson {
  response_range?: RangeResponseJson;
  response_put?: PutResponseJson;
  response_delete_range?: DeleteRangeResponseJson;
  response_txn?: TxnResponseJson;
}

export interface TxnRequestJson {
  compare?: CompareJson[];
  success?: RequestOpJson[];
  failure?: RequestOpJson[];
}

export interface TxnResponseJson {
  header: HeaderJson;
  succeeded?: boolean;
  responses?: ResponseOpJson[];
}

export interface CompactionRequestJson {
  revision?: string;
  physical?: boolean;
}

export interface CompactionResponseJson {
  header: HeaderJson;
}

// ---- encoding responses (server) -----------------------------------------------------------------------

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
    more: flag(r.more),
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

function responseOpToJson(op: ResponseOp): ResponseOpJson {
  switch (op.type) {
    case 'range':
      return { response_range: rangeResponseToJson(op.range) };
    case 'put':
      return { response_put: putResponseToJson(op.put) };
    case 'deleteRange':
      return { response_delete_range: deleteRangeResponseToJson(op.deleteRange) };
    case 'txn':
      return { response_txn: txnResponseToJson(op.txn) };
  }
}

export function txnResponseToJson(r: TxnResponse): TxnResponseJson {
  return compact({
    header: headerToJson(r.header),
    succeeded: flag(r.succeeded),
    responses: r.responses.length === 0 ? undefined : r.responses.map(responseOpToJson),
  });
}

export function compactionResponseToJson(r: CompactionResponse): CompactionResponseJson {
  return { header: headerToJson(r.header) };
}

// ---- encoding requests (client) ------------------------------------------------------------------------

export function rangeRequestToJson(r: RangeRequest): RangeRequestJson {
  return compact({
    key: bytes(r.key),
    range_end: bytes(r.rangeEnd),
    limit: int64(r.limit ?? 0),
    revision: int64(r.revision ?? 0),
    sort_order: enumName(r.sortOrder, SORT_ORDERS),
    sort_target: enumName(r.sortTarget, SORT_TARGETS),
    serializable: flag(r.serializable),
    keys_only: flag(r.keysOnly),
    count_only: flag(r.countOnly),
    min_mod_revision: int64(r.minModRevision ?? 0),
    max_mod_revision: int64(r.maxModRevision ?? 0),
    min_create_revision: int64(r.minCreateRevision ?? 0),
    max_create_revision: int64(r.maxCreateRevision ?? 0),
  });
}

/** The gateway has no field for Keel's client request id: it is not sent (and HTTP writes are therefore
 *  never retried by KeelHttpClient). */
export function putRequestToJson(r: PutRequest): PutRequestJson {
  return compact({
    key: bytes(r.key),
    value: bytes(r.value),
    lease: int64(r.lease ?? 0),
    prev_kv: flag(r.prevKv),
    ignore_value: flag(r.ignoreValue),
    ignore_lease: flag(r.ignoreLease),
  });
}

export function deleteRangeRequestToJson(r: DeleteRangeRequest): DeleteRangeRequestJson {
  return compact({ key: bytes(r.key), range_end: bytes(r.rangeEnd), prev_kv: flag(r.prevKv) });
}

export function compareToJson(c: Compare): CompareJson {
  const out: CompareJson = compact({
    result: enumName(c.result, COMPARE_RESULTS),
    target: enumName(c.target, COMPARE_TARGETS),
    key: bytes(c.key),
    range_end: bytes(c.rangeEnd),
  });
  switch (c.target) {
    case 'VERSION':
      out.version = int64Always(c.version);
      break;
    case 'CREATE':
      out.create_revision = int64Always(c.createRevision);
      break;
    case 'MOD':
      out.mod_revision = int64Always(c.modRevision);
      break;
    case 'VALUE':
      out.value = c.value.toString('base64');
      break;
    case 'LEASE':
      out.lease = int64Always(c.lease);
      break;
  }
  return out;
}

function requestOpToJson(op: RequestOp): RequestOpJson {
  switch (op.type) {
    case 'range':
      return { request_range: rangeRequestToJson(op.range) };
    case 'put':
      return { request_put: putRequestToJson(op.put) };
    case 'deleteRange':
      return { request_delete_range: deleteRangeRequestToJson(op.deleteRange) };
    case 'txn':
      return { request_txn: txnRequestToJson(op.txn) };
  }
}

/** `serializable` has no field in etcd's TxnRequest: the server derives it from the ranges' own flags
 *  (isTxnSerializable), so a read-only txn whose ranges are all serializable is served locally. */
export function txnRequestToJson(r: TxnRequest): TxnRequestJson {
  return compact({
    compare: r.compare.length === 0 ? undefined : r.compare.map(compareToJson),
    success: r.success.length === 0 ? undefined : r.success.map(requestOpToJson),
    failure: r.failure.length === 0 ? undefined : r.failure.map(requestOpToJson),
  });
}

export function compactionRequestToJson(r: CompactionRequest): CompactionRequestJson {
  return compact({ revision: int64(r.revision), physical: flag(r.physical) });
}

// ---- decoding requests (server). Errors are KvError InvalidArgument (HTTP 400, code 3). ------------------
// Defaults (0, false, empty) are left out of the internal request, so that what the member receives is the
// same whichever way the client spelt "nothing".

const RANGE_FIELDS = [
  'key',
  'range_end',
  'limit',
  'revision',
  'sort_order',
  'sort_target',
  'serializable',
  'keys_only',
  'count_only',
  'min_mod_revision',
  'max_mod_revision',
  'min_create_revision',
  'max_create_revision',
];

function setIfNonZero<T, K extends keyof T>(o: T, k: K, v: T[K] | undefined | 0 | false): void {
  if (v !== undefined && v !== 0 && v !== false) o[k] = v as T[K];
}

function parseRange(body: unknown, where: string): RangeRequest {
  const f = Fields.request(body, where, RANGE_FIELDS);
  const r: RangeRequest = { key: f.bytes('key') ?? Buffer.alloc(0) };
  const rangeEnd = f.bytes('range_end');
  if (rangeEnd !== undefined && rangeEnd.length > 0) r.rangeEnd = rangeEnd;
  setIfNonZero(r, 'limit', f.int('limit'));
  setIfNonZero(r, 'revision', f.int('revision'));
  const order = f.enumValue('sort_order', SORT_ORDERS);
  if (order !== undefined && order !== 'NONE') r.sortOrder = order;
  const target = f.enumValue('sort_target', SORT_TARGETS);
  if (target !== undefined && target !== 'KEY') r.sortTarget = target;
  setIfNonZero(r, 'serializable', f.bool('serializable'));
  setIfNonZero(r, 'keysOnly', f.bool('keys_only'));
  setIfNonZero(r, 'countOnly', f.bool('count_only'));
  setIfNonZero(r, 'minModRevision', f.int('min_mod_revision'));
  setIfNonZero(r, 'maxModRevision', f.int('max_mod_revision'));
  setIfNonZero(r, 'minCreateRevision', f.int('min_create_revision'));
  setIfNonZero(r, 'maxCreateRevision', f.int('max_create_revision'));
  return r;
}

function parsePut(body: unknown, where: string): PutRequest {
  const f = Fields.request(body, where, ['key', 'value', 'lease', 'prev_kv', 'ignore_value', 'ignore_lease']);
  const r: PutRequest = { key: f.bytes('key') ?? Buffer.alloc(0), value: f.bytes('value') ?? Buffer.alloc(0) };
  setIfNonZero(r, 'lease', f.int('lease'));
  setIfNonZero(r, 'prevKv', f.bool('prev_kv'));
  setIfNonZero(r, 'ignoreValue', f.bool('ignore_value'));
  setIfNonZero(r, 'ignoreLease', f.bool('ignore_lease'));
  return r;
}

function parseDelete(body: unknown, where: string): DeleteRangeRequest {
  const f = Fields.request(body, where, ['key', 'range_end', 'prev_kv']);
  const r: DeleteRangeRequest = { key: f.bytes('key') ?? Buffer.alloc(0) };
  const rangeEnd = f.bytes('range_end');
  if (rangeEnd !== undefined && rangeEnd.length > 0) r.rangeEnd = rangeEnd;
  setIfNonZero(r, 'prevKv', f.bool('prev_kv'));
  return r;
}

const TARGET_UNION = Object.values(TARGET_FIELD);

function parseCompare(body: unknown, where: string): Compare {
  const f = Fields.request(body, where, ['result', 'target', 'key', 'range_end', ...TARGET_UNION]);
  const given = TARGET_UNION.filter((u) => f.has(u));
  if (given.length > 1) {
    throw f.fail(`${where}: target_union holds one field, got ${given.join(' and ')}`);
  }
  const target = f.enumValue('target', COMPARE_TARGETS) ?? 'VERSION';
  const field = TARGET_FIELD[target];
  if (given.length === 1 && given[0] !== field) {
    // etcd would compare against the target's zero value here, which is never what the client meant.
    throw f.fail(`${where}: target ${target} compares ${field}, but ${given[0]} was given`);
  }
  const base = {
    key: f.bytes('key') ?? Buffer.alloc(0),
    result: f.enumValue('result', COMPARE_RESULTS) ?? 'EQUAL',
  };
  const rangeEnd = f.bytes('range_end');
  const c: Compare =
    target === 'VALUE'
      ? { ...base, target, value: f.bytes('value') ?? Buffer.alloc(0) }
      : target === 'VERSION'
        ? { ...base, target, version: f.int('version') ?? 0 }
        : target === 'CREATE'
          ? { ...base, target, createRevision: f.int('create_revision') ?? 0 }
          : target === 'MOD'
            ? { ...base, target, modRevision: f.int('mod_revision') ?? 0 }
            : { ...base, target, lease: f.int('lease') ?? 0 };
  if (rangeEnd !== undefined && rangeEnd.length > 0) c.rangeEnd = rangeEnd;
  return c;
}

const OP_FIELDS = ['request_range', 'request_put', 'request_delete_range', 'request_txn'];

function parseRequestOp(body: unknown, where: string, depth: number): RequestOp {
  const f = Fields.request(body, where, OP_FIELDS);
  const given = OP_FIELDS.filter((o) => f.has(o));
  if (given.length !== 1) {
    // etcd answers an empty RequestOp with "etcdserver: key not found", which says nothing of the problem.
    throw f.fail(
      given.length === 0
        ? `${where}: empty operation (expected one of ${OP_FIELDS.join(', ')})`
        : `${where}: one operation per entry, got ${given.join(' and ')}`,
    );
  }
  const name = given[0];
  const inner = f.obj(name);
  const at = f.name(name);
  switch (name) {
    case 'request_range':
      return { type: 'range', range: parseRange(inner, at) };
    case 'request_put':
      return { type: 'put', put: parsePut(inner, at) };
    case 'request_delete_range':
      return { type: 'deleteRange', deleteRange: parseDelete(inner, at) };
    default:
      return { type: 'txn', txn: parseTxn(inner, at, depth + 1) };
  }
}

/** etcd's isTxnSerializable: a txn is served locally when every operation of both branches is a
 *  serializable range (and so nothing writes). */
function txnIsSerializable(r: TxnRequest): boolean {
  return [...r.success, ...r.failure].every((op) => op.type === 'range' && op.range.serializable === true);
}

function parseTxn(body: unknown, where: string, depth: number): TxnRequest {
  // Every nesting level takes at least one operation from etcd's budget of MAX_TXN_OPS, so a deeper
  // request is refused anyway; stopping here keeps the recursion shallow whatever the body holds.
  if (depth > MAX_TXN_OPS) throw Errors.tooManyOps();
  const f = Fields.request(body, where, ['compare', 'success', 'failure']);
  const r: TxnRequest = {
    compare: f.list('compare').map((c, i) => parseCompare(c, `${f.name('compare')}[${i}]`)),
    success: f.list('success').map((o, i) => parseRequestOp(o, `${f.name('success')}[${i}]`, depth)),
    failure: f.list('failure').map((o, i) => parseRequestOp(o, `${f.name('failure')}[${i}]`, depth)),
  };
  if (depth === 0 && txnIsSerializable(r)) r.serializable = true;
  return r;
}

export function parseRangeRequest(body: unknown): RangeRequest {
  return parseRange(body, '');
}

export function parsePutRequest(body: unknown): PutRequest {
  return parsePut(body, '');
}

export function parseDeleteRangeRequest(body: unknown): DeleteRangeRequest {
  return parseDelete(body, '');
}

export function parseTxnRequest(body: unknown): TxnRequest {
  return parseTxn(body, '', 0);
}

export function parseCompactionRequest(body: unknown): CompactionRequest {
  const f = Fields.request(body, '', ['revision', 'physical']);
  const r: CompactionRequest = { revision: f.int('revision') ?? 0 };
  setIfNonZero(r, 'physical', f.bool('physical'));
  return r;
}

// ---- decoding responses (client). Missing fields are defaults; wrong types throw GatewayResponseError. ----

export function decodeHeader(json: unknown, where = 'header'): ResponseHeader {
  const f = Fields.response(json, where);
  return {
    clusterId: f.id('cluster_id'),
    memberId: f.id('member_id'),
    revision: f.int('revision') ?? 0,
    raftTerm: f.uint('raft_term') ?? 0,
  };
}


export function decodeKeyValue(json: unknown, where = 'kv'): KeyValue {
  const f = Fields.response(json, where);
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
  return f.list(field).map((v, i) => decodeKeyValue(v, `${f.name(field)}[${i}]`));
}

function decodeRange(json: unknown, where: string): RangeResponse {
  const f = Fields.response(json, where);
  return {
    header: decodeHeader(f.obj('header'), f.name('header')),
    kvs: decodeKvList(f, 'kvs'),
    more: f.bool('more') ?? false,
    count: f.int('count') ?? 0,
  };
}

function decodePut(json: unknown, where: string): PutResponse {
  const f = Fields.response(json, where);
  const r: PutResponse = { header: decodeHeader(f.obj('header'), f.name('header')) };
  const prev = f.obj('prev_kv');
  if (prev !== undefined) r.prevKv = decodeKeyValue(prev, f.name('prev_kv'));
  return r;
}

function decodeDelete(json: unknown, where: string): DeleteRangeResponse {
  const f = Fields.response(json, where);
  return {
    header: decodeHeader(f.obj('header'), f.name('header')),
    deleted: f.int('deleted') ?? 0,
    prevKvs: decodeKvList(f, 'prev_kvs'),
  };
}

function decodeResponseOp(json: unknown, where: string): ResponseOp {
  const f = Fields.response(json, where);
  if (f.has('response_range')) {
    return { type: 'range', range: decodeRange(f.obj('response_range'), f.name('response_range')) };
  }
  if (f.has('response_put')) return { type: 'put', put: decodePut(f.obj('response_put'), f.name('response_put')) };
  if (f.has('response_delete_range')) {
    return {
      type: 'deleteRange',
      deleteRange: decodeDelete(f.obj('response_delete_range'), f.name('response_delete_range')),
    };
  }
  if (f.has('response_txn')) return { type: 'txn', txn: decodeTxn(f.obj('response_txn'), f.name('response_txn')) };
  throw f.fail(`${where}: expected one of response_range, response_put, response_delete_range, response_txn`);
}

function decodeTxn(json: unknown, where: string): TxnResponse {
  const f = Fields.response(json, where);
  return {
    header: decodeHeader(f.obj('header'), f.name('header')),
    succeeded: f.bool('succeeded') ?? false,
    responses: f.list('responses').map((r, i) => decodeResponseOp(r, `${f.name('responses')}[${i}]`)),
  };
}

export function decodeRangeResponse(json: unknown): RangeResponse {
  return decodeRange(json, '');
}

export function decodePutResponse(json: unknown): PutResponse {
  return decodePut(json, '');
}

export function decodeDeleteRangeResponse(json: unknown): DeleteRangeResponse {
  return decodeDelete(json, '');
}

export function decodeTxnResponse(json: unknown): TxnResponse {
  return decodeTxn(json, '');
}

export function decodeCompactionResponse(json: unknown): CompactionResponse {
  const f = Fields.response(json, '');
  return { header: decodeHeader(f.obj('header')) };
}
