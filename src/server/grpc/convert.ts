// etcd's protobuf messages (as src/server/grpc/proto.ts decodes them) to and from Keel's internal requests
// and responses (src/kv/api.ts). Requests: 64-bit integers arrive as decimal strings and must fit a double
// exactly (Keel's limit, as in the gateway); protobuf's defaults (0, false, empty) are left out of the
// internal request, as the gateway does, so the member sees the same request whichever API it came by.
// Responses: uint64 ids (16 hex digits inside Keel) go out as decimal strings; every other number as is.

import {
  Errors,
  MAX_TXN_OPS,
  type AlarmAction,
  type AlarmMember,
  type AlarmRequest,
  type AlarmType,
  type Compare,
  type CompareResult,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type Event,
  type KeyValue,
  type MemberInfo,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type SortOrder,
  type SortTarget,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
  type WatchCreateRequest,
  type WatchFilter,
  type WatchResponse,
} from '../../kv/api';

/** An int64 / uint64 as proto-loader decodes it (longs: String); numbers are accepted too. */
export type Long = string | number;

// ---- decoded request messages (what the server receives) ---------------------------------------------------

export interface RangeRequestPb {
  key: Buffer;
  range_end: Buffer;
  limit: Long;
  revision: Long;
  sort_order: string | number;
  sort_target: string | number;
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: Long;
  max_mod_revision: Long;
  min_create_revision: Long;
  max_create_revision: Long;
}

export interface PutRequestPb {
  key: Buffer;
  value: Buffer;
  lease: Long;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

export interface DeleteRangeRequestPb {
  key: Buffer;
  range_end: Buffer;
  prev_kv: boolean;
}

export interface ComparePb {
  result: string | number;
  target: string | number;
  key: Buffer;
  range_end: Buffer;
  target_union?: 'version' | 'create_revision' | 'mod_revision' | 'value' | 'lease';
  version?: Long;
  create_revision?: Long;
  mod_revision?: Long;
  value?: Buffer;
  lease?: Long;
}

export interface RequestOpPb {
  request?: 'request_range' | 'request_put' | 'request_delete_range' | 'request_txn';
  request_range?: RangeRequestPb;
  request_put?: PutRequestPb;
  request_delete_range?: DeleteRangeRequestPb;
  request_txn?: TxnRequestPb;
}

export interface TxnRequestPb {
  compare: ComparePb[];
  success: RequestOpPb[];
  failure: RequestOpPb[];
}

export interface CompactionRequestPb {
  revision: Long;
  physical: boolean;
}

export interface WatchCreateRequestPb {
  key: Buffer;
  range_end: Buffer;
  start_revision: Long;
  progress_notify: boolean;
  filters: (string | number)[];
  prev_kv: boolean;
  watch_id: Long;
  fragment: boolean;
}

export interface WatchRequestPb {
  request_union?: 'create_request' | 'cancel_request' | 'progress_request';
  create_request?: WatchCreateRequestPb;
  cancel_request?: { watch_id: Long };
  progress_request?: Record<string, never>;
}

export interface LeaseGrantRequestPb {
  TTL: Long;
  ID: Long;
}

export interface LeaseIdRequestPb {
  ID: Long;
}

export interface LeaseTimeToLiveRequestPb {
  ID: Long;
  keys: boolean;
}

export interface MemberAddRequestPb {
  peerURLs: string[];
  isLearner: boolean;
}

export interface MemberIdRequestPb {
  ID: Long;
}

export interface AlarmRequestPb {
  action: string | number;
  memberID: Long;
  alarm: string | number;
}

export interface HashKVRequestPb {
  revision: Long;
}

export interface MoveLeaderRequestPb {
  targetID: Long;
}

// ---- response messages (what the server sends; proto-loader's serializer takes numbers or strings) ---------

export interface ResponseHeaderPb {
  cluster_id: string;
  member_id: string;
  revision: number;
  raft_term: number;
}

export interface KeyValuePb {
  key: Buffer;
  create_revision: number;
  mod_revision: number;
  version: number;
  value: Buffer;
  lease: number;
}

export interface MemberPb {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

// ---- scalars -----------------------------------------------------------------------------------------------

/** An int64 of a request, which must be a safe integer (Keel's limit: |n| <= 2^53 - 1). */
export function int64(v: Long | undefined, name: string): number {
  if (v === undefined || v === '') return 0;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n)) {
    throw Errors.invalid(`invalid ${name} ${String(v)} (must be an integer of at most 2^53-1 in magnitude)`);
  }
  return n;
}

/** A uint64 member id of a request -> 16 hex digits; 0 -> '' (none). */
export function idFromUint64(v: Long | undefined, name: string): string {
  if (v === undefined || v === '' || v === 0 || v === '0') return '';
  let n: bigint;
  try {
    n = BigInt(v);
  } catch {
    throw Errors.invalid(`invalid ${name} ${String(v)} (must be a uint64)`);
  }
  if (n < 0n || n >= 1n << 64n) throw Errors.invalid(`invalid ${name} ${String(v)} (must be a uint64)`);
  return n === 0n ? '' : n.toString(16).padStart(16, '0');
}

/** 16 hex digits (or '') -> the decimal uint64 string etcd's clients expect. */
export function idToUint64(id: string): string {
  return id === '' ? '0' : BigInt(`0x${id}`).toString();
}

/** An enum field decoded by name (enums: String); a number the .proto does not know stays a number, which
 *  the checks refuse. */
function enumOf<T extends string>(v: string | number, name: string, allowed: readonly T[]): T {
  if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
  throw Errors.invalid(`invalid ${name} ${JSON.stringify(v)} (must be one of ${allowed.join(', ')})`);
}

function nonEmpty(b: Buffer | undefined): Buffer | undefined {
  return b === undefined || b.length === 0 ? undefined : b;
}

function set<T, K extends keyof T>(o: T, k: K, v: T[K] | 0 | false | undefined): void {
  if (v !== undefined && v !== 0 && v !== false) o[k] = v as T[K];
}

// ---- KV requests ---------------------------------------------------------------------------------------

const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const COMPARE_RESULTS: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const COMPARE_TARGETS: readonly Compare['target'][] = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'];
const TARGET_FIELD: Record<Compare['target'], NonNullable<ComparePb['target_union']>> = {
  VERSION: 'version',
  CREATE: 'create_revision',
  MOD: 'mod_revision',
  VALUE: 'value',
  LEASE: 'lease',
};

export function rangeRequest(m: RangeRequestPb, at = ''): RangeRequest {
  const r: RangeRequest = { key: m.key };
  const end = nonEmpty(m.range_end);
  if (end !== undefined) r.rangeEnd = end;
  set(r, 'limit', int64(m.limit, `${at}limit`));
  set(r, 'revision', int64(m.revision, `${at}revision`));
  const order = enumOf(m.sort_order, `${at}sort_order`, SORT_ORDERS);
  if (order !== 'NONE') r.sortOrder = order;
  const target = enumOf(m.sort_target, `${at}sort_target`, SORT_TARGETS);
  if (target !== 'KEY') r.sortTarget = target;
  set(r, 'serializable', m.serializable);
  set(r, 'keysOnly', m.keys_only);
  set(r, 'countOnly', m.count_only);
  set(r, 'minModRevision', int64(m.min_mod_revision, `${at}min_mod_revision`));
  set(r, 'maxModRevision', int64(m.max_mod_revision, `${at}max_mod_revision`));
  set(r, 'minCreateRevision', int64(m.min_create_revision, `${at}min_create_revision`));
  set(r, 'maxCreateRevision', int64(m.max_create_revision, `${at}max_create_revision`));
  return r;
}

export function putRequest(m: PutRequestPb, at = ''): PutRequest {
  const r: PutRequest = { key: m.key, value: m.value };
  set(r, 'lease', int64(m.lease, `${at}lease`));
  set(r, 'prevKv', m.prev_kv);
  set(r, 'ignoreValue', m.ignore_value);
  set(r, 'ignoreLease', m.ignore_lease);
  return r;
}

export function deleteRangeRequest(m: DeleteRangeRequestPb): DeleteRangeRequest {
  const r: DeleteRangeRequest = { key: m.key };
  const end = nonEmpty(m.range_end);
  if (end !== undefined) r.rangeEnd = end;
  set(r, 'prevKv', m.prev_kv);
  return r;
}

function compare(m: ComparePb, at: string): Compare {
  const target = enumOf(m.target, `${at}target`, COMPARE_TARGETS);
  const field = TARGET_FIELD[target];
  if (m.target_union !== undefined && m.target_union !== field) {
    // etcd would compare against the target's zero value, which is never what the client meant (the
    // gateway refuses it the same way).
    throw Errors.invalid(`invalid ${at}target_union (target ${target} compares ${field}, but ${m.target_union} was given)`);
  }
  const base = { key: m.key, result: enumOf(m.result, `${at}result`, COMPARE_RESULTS) };
  let c: Compare;
  switch (target) {
    case 'VERSION':
      c = { ...base, target, version: int64(m.version, `${at}version`) };
      break;
    case 'CREATE':
      c = { ...base, target, createRevision: int64(m.create_revision, `${at}create_revision`) };
      break;
    case 'MOD':
      c = { ...base, target, modRevision: int64(m.mod_revision, `${at}mod_revision`) };
      break;
    case 'VALUE':
      c = { ...base, target, value: m.value ?? Buffer.alloc(0) };
      break;
    case 'LEASE':
      c = { ...base, target, lease: int64(m.lease, `${at}lease`) };
      break;
  }
  const end = nonEmpty(m.range_end);
  if (end !== undefined) c.rangeEnd = end;
  return c;
}

function requestOp(m: RequestOpPb, at: string, depth: number): RequestOp {
  switch (m.request) {
    case 'request_range':
      return { type: 'range', range: rangeRequest(m.request_range!, `${at}request_range.`) };
    case 'request_put':
      return { type: 'put', put: putRequest(m.request_put!, `${at}request_put.`) };
    case 'request_delete_range':
      return { type: 'deleteRange', deleteRange: deleteRangeRequest(m.request_delete_range!) };
    case 'request_txn':
      return { type: 'txn', txn: txn(m.request_txn!, `${at}request_txn.`, depth + 1) };
    default:
      // etcd answers an empty RequestOp with "etcdserver: key not found", which says nothing of the problem.
      throw Errors.invalid(`invalid ${at.replace(/\.$/, '')} (an empty operation: expected request_range, request_put, request_delete_range or request_txn)`);
  }
}

function txn(m: TxnRequestPb, at: string, depth: number): TxnRequest {
  // Each nesting level takes at least one operation of etcd's budget, so a deeper txn is refused anyway.
  if (depth > MAX_TXN_OPS) throw Errors.tooManyOps();
  return {
    compare: m.compare.map((c, i) => compare(c, `${at}compare[${i}].`)),
    success: m.success.map((op, i) => requestOp(op, `${at}success[${i}].`, depth)),
    failure: m.failure.map((op, i) => requestOp(op, `${at}failure[${i}].`, depth)),
  };
}

/** etcd's isTxnSerializable: a txn whose operations are all serializable ranges is served locally. */
export function txnRequest(m: TxnRequestPb): TxnRequest {
  const r = txn(m, '', 0);
  if ([...r.success, ...r.failure].every((op) => op.type === 'range' && op.range.serializable === true)) {
    r.serializable = true;
  }
  return r;
}

// ---- KV responses --------------------------------------------------------------------------------------

export function headerPb(h: ResponseHeader): ResponseHeaderPb {
  return {
    cluster_id: idToUint64(h.clusterId),
    member_id: idToUint64(h.memberId),
    revision: h.revision,
    raft_term: h.raftTerm,
  };
}

export function keyValuePb(kv: KeyValue): KeyValuePb {
  return {
    key: kv.key,
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  };
}

export function rangeResponsePb(r: RangeResponse): object {
  return { header: headerPb(r.header), kvs: r.kvs.map(keyValuePb), more: r.more, count: r.count };
}

export function putResponsePb(r: PutResponse): object {
  return { header: headerPb(r.header), prev_kv: r.prevKv === undefined ? null : keyValuePb(r.prevKv) };
}

export function deleteRangeResponsePb(r: DeleteRangeResponse): object {
  return { header: headerPb(r.header), deleted: r.deleted, prev_kvs: r.prevKvs.map(keyValuePb) };
}

function responseOpPb(op: ResponseOp): object {
  switch (op.type) {
    case 'range':
      return { response_range: rangeResponsePb(op.range) };
    case 'put':
      return { response_put: putResponsePb(op.put) };
    case 'deleteRange':
      return { response_delete_range: deleteRangeResponsePb(op.deleteRange) };
    case 'txn':
      return { response_txn: txnResponsePb(op.txn) };
  }
}

export function txnResponsePb(r: TxnResponse): object {
  return { header: headerPb(r.header), succeeded: r.succeeded, responses: r.responses.map(responseOpPb) };
}

// ---- watch ---------------------------------------------------------------------------------------------

/** As etcd's watch server (and the gateway): an empty key is "\0", the smallest key; watch_id 0 is
 *  protobuf's "not set", which etcd reads as "pick one". Filters the .proto does not know are ignored, as
 *  etcd ignores them. */
export function watchCreateRequest(m: WatchCreateRequestPb): WatchCreateRequest {
  const r: WatchCreateRequest = { key: m.key.length === 0 ? Buffer.from([0]) : m.key };
  const end = nonEmpty(m.range_end);
  if (end !== undefined) r.rangeEnd = end;
  set(r, 'startRevision', int64(m.start_revision, 'start_revision'));
  set(r, 'progressNotify', m.progress_notify);
  const filters = m.filters.filter((f): f is WatchFilter => f === 'NOPUT' || f === 'NODELETE');
  if (filters.length > 0) r.filters = [...new Set(filters)];
  set(r, 'prevKv', m.prev_kv);
  set(r, 'watchId', int64(m.watch_id, 'watch_id'));
  set(r, 'fragment', m.fragment);
  return r;
}

function eventPb(e: Event): object {
  return { type: e.type, kv: keyValuePb(e.kv), prev_kv: e.prevKv === undefined ? null : keyValuePb(e.prevKv) };
}

export function watchResponsePb(r: WatchResponse): object {
  return {
    header: headerPb(r.header),
    watch_id: r.watchId,
    created: r.created === true,
    canceled: r.canceled === true,
    compact_revision: r.compactRevision ?? 0,
    cancel_reason: r.cancelReason ?? '',
    fragment: r.fragment === true,
    events: r.events.map(eventPb),
  };
}

// ---- cluster, maintenance ----------------------------------------------------------------------------------

export function memberPb(m: MemberInfo): MemberPb {
  return {
    ID: idToUint64(m.id),
    name: m.name,
    peerURLs: m.peerUrls,
    clientURLs: m.clientUrls,
    isLearner: m.isLearner,
  };
}

const ALARM_ACTIONS: readonly AlarmAction[] = ['GET', 'ACTIVATE', 'DEACTIVATE'];
const ALARM_TYPES: readonly AlarmType[] = ['NONE', 'NOSPACE', 'CORRUPT'];

export function alarmRequest(m: AlarmRequestPb): AlarmRequest {
  const r: AlarmRequest = { action: enumOf(m.action, 'alarm action', ALARM_ACTIONS) };
  const memberId = idFromUint64(m.memberID, 'alarm memberID');
  if (memberId !== '') r.memberId = memberId;
  const alarm = enumOf(m.alarm, 'alarm', ALARM_TYPES);
  if (alarm !== 'NONE') r.alarm = alarm;
  return r;
}

export function alarmMemberPb(a: AlarmMember): object {
  return { memberID: idToUint64(a.memberId), alarm: a.alarm };
}

/** LevelDB has no free pages inside its files: the space in use is the size on disk. */
export function statusResponsePb(r: StatusResponse): object {
  return {
    header: headerPb(r.header),
    version: r.version,
    dbSize: r.dbSize,
    leader: idToUint64(r.leader),
    raftIndex: r.raftIndex,
    raftTerm: r.raftTerm,
    raftAppliedIndex: r.raftAppliedIndex,
    errors: r.errors,
    dbSizeInUse: r.dbSize,
    isLearner: r.isLearner,
  };
}
