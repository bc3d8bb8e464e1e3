// Runtime checks of the internal API types (src/kv/api.ts) as they travel in native stream frames. Requests
// are checked strictly (every field typed, unknown fields refused) because whatever passes goes to the
// member's KvService; answers are checked by the client with unknown fields ignored, so that a member may
// add a field to an answer without breaking older clients. The `Fields<T>` annotations make a field added
// to an API type without a check here a compile error.

import type {
  ClientRequestId,
  CompactionRequest,
  CompactionResponse,
  Compare,
  DeleteRangeRequest,
  DeleteRangeResponse,
  Event,
  HealthResponse,
  KeyValue,
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
  PutRequest,
  PutResponse,
  RangeRequest,
  RangeResponse,
  RequestOp,
  ResponseHeader,
  ResponseOp,
  StatusResponse,
  TxnRequest,
  TxnResponse,
  WatchCreateRequest,
  WatchResponse,
} from './api';
import {
  arrayOf,
  bool,
  bytes,
  CheckError,
  describe,
  field,
  isMap,
  literal,
  optional,
  record,
  safeInt,
  safeUint,
  str,
  type Check,
} from './stream-checks';

/** Nested transactions deeper than this are refused before they are walked (a frame is not allowed to
 *  exhaust the stack of the member). etcd bounds the total operations (128), not the depth; 16 levels is
 *  far beyond any real use. */
export const MAX_TXN_DEPTH = 16;

const tooDeep: Check<never> = (_v, path) => {
  throw new CheckError(path, `transactions nested deeper than ${MAX_TXN_DEPTH} levels`);
};

const optBytes = optional(bytes);
const optBool = optional(bool);
const optUint = optional(safeUint);

function mapOf(v: unknown, path: string): Record<string, unknown> {
  if (!isMap(v)) throw new CheckError(path, `expected a map, got ${describe(v)}`);
  return v;
}

// ---- requests (strict) ------------------------------------------------------------------------------------

const clientRequestId: Check<ClientRequestId> = record<ClientRequestId>(
  {
    client: (v, path) => {
      const s = str(v, path);
      if (s.length === 0 || s.length > 64) throw new CheckError(path, `expected 1 to 64 characters, got ${s.length}`);
      return s;
    },
    seq: safeUint,
  },
  'refuse',
);

export const rangeRequest: Check<RangeRequest> = record<RangeRequest>(
  {
    key: bytes,
    rangeEnd: optBytes,
    limit: optUint,
    revision: optUint,
    sortOrder: optional(literal(['NONE', 'ASCEND', 'DESCEND'] as const)),
    sortTarget: optional(literal(['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'] as const)),
    keysOnly: optBool,
    countOnly: optBool,
    serializable: optBool,
    minModRevision: optUint,
    maxModRevision: optUint,
    minCreateRevision: optUint,
    maxCreateRevision: optUint,
  },
  'refuse',
);

export const putRequest: Check<PutRequest> = record<PutRequest>(
  {
    key: bytes,
    value: bytes,
    lease: optUint,
    prevKv: optBool,
    ignoreValue: optBool,
    ignoreLease: optBool,
    requestId: optional(clientRequestId),
  },
  'refuse',
);

export const deleteRangeRequest: Check<DeleteRangeRequest> = record<DeleteRangeRequest>(
  { key: bytes, rangeEnd: optBytes, prevKv: optBool, requestId: optional(clientRequestId) },
  'refuse',
);

/** The field holding the compared value, per target. */
const COMPARE_VALUE_FIELD = {
  VERSION: 'version',
  CREATE: 'createRevision',
  MOD: 'modRevision',
  VALUE: 'value',
  LEASE: 'lease',
} as const;
type CompareTarget = keyof typeof COMPARE_VALUE_FIELD;
const compareTarget = literal(Object.keys(COMPARE_VALUE_FIELD) as CompareTarget[]);
const compareResult = literal(['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'] as const);

export const compare: Check<Compare> = (v, path) => {
  const m = mapOf(v, path);
  const target = compareTarget(field(m, 'target'), `${path}.target`);
  const valueField = COMPARE_VALUE_FIELD[target];
  for (const k of Object.keys(m)) {
    if (k === 'key' || k === 'rangeEnd' || k === 'result' || k === 'target' || k === valueField) continue;
    throw new CheckError(path, `unknown field ${JSON.stringify(k.slice(0, 64))} (target ${target} compares ${valueField})`);
  }
  const base = {
    key: bytes(field(m, 'key'), `${path}.key`),
    result: compareResult(field(m, 'result'), `${path}.result`),
  };
  const rangeEnd = optBytes(field(m, 'rangeEnd'), `${path}.rangeEnd`);
  const withEnd = rangeEnd === undefined ? base : { ...base, rangeEnd };
  const at = `${path}.${valueField}`;
  const value = field(m, valueField);
  switch (target) {
    case 'VERSION':
      return { ...withEnd, target, version: safeInt(value, at) };
    case 'CREATE':
      return { ...withEnd, target, createRevision: safeInt(value, at) };
    case 'MOD':
      return { ...withEnd, target, modRevision: safeInt(value, at) };
    case 'VALUE':
      return { ...withEnd, target, value: bytes(value, at) };
    case 'LEASE':
      return { ...withEnd, target, lease: safeInt(value, at) };
  }
};

const opType = literal(['range', 'put', 'deleteRange', 'txn'] as const);

/** `{type, <type>: body}` and nothing else; the body's check is chosen by the type. */
function tagged(m: Record<string, unknown>, path: string): 'range' | 'put' | 'deleteRange' | 'txn' {
  const type = opType(field(m, 'type'), `${path}.type`);
  for (const k of Object.keys(m)) {
    if (k !== 'type' && k !== type) {
      throw new CheckError(path, `unknown field ${JSON.stringify(k.slice(0, 64))} (an op of type ${type} holds ${type})`);
    }
  }
  return type;
}

function requestOp(depth: number): Check<RequestOp> {
  return (v, path) => {
    const m = mapOf(v, path);
    const type = tagged(m, path);
    const body = field(m, type);
    const at = `${path}.${type}`;
    switch (type) {
      case 'range':
        return { type, range: rangeRequest(body, at) };
      case 'put':
        return { type, put: putRequest(body, at) };
      case 'deleteRange':
        return { type, deleteRange: deleteRangeRequest(body, at) };
      case 'txn':
        return { type, txn: txnAt(depth + 1)(body, at) };
    }
  };
}

/** One check per nesting depth, built on first use (a txn's ops check the txns nested in them one level
 *  deeper). */
const txnByDepth: Check<TxnRequest>[] = [];

function txnAt(depth: number): Check<TxnRequest> {
  let check = txnByDepth[depth];
  if (check === undefined) {
    check =
      depth > MAX_TXN_DEPTH
        ? tooDeep
        : record<TxnRequest>(
            {
              compare: arrayOf(compare),
              success: arrayOf(requestOp(depth)),
              failure: arrayOf(requestOp(depth)),
              requestId: optional(clientRequestId),
              serializable: optBool,
            },
            'refuse',
          );
    txnByDepth[depth] = check;
  }
  return check;
}

export const txnRequest: Check<TxnRequest> = txnAt(1);

export const compactionRequest: Check<CompactionRequest> = record<CompactionRequest>(
  { revision: safeUint, physical: optBool },
  'refuse',
);

export const leaseGrantRequest: Check<LeaseGrantRequest> = record<LeaseGrantRequest>(
  // A TTL below the minimum (zero and negative included) is raised by the member, as etcd does.
  { ttl: safeInt, id: optUint },
  'refuse',
);

export const leaseRevokeRequest: Check<LeaseRevokeRequest> = record<LeaseRevokeRequest>({ id: safeUint }, 'refuse');

export const leaseKeepAliveRequest: Check<LeaseKeepAliveRequest> = record<LeaseKeepAliveRequest>(
  { id: safeUint },
  'refuse',
);

export const leaseTimeToLiveRequest: Check<LeaseTimeToLiveRequest> = record<LeaseTimeToLiveRequest>(
  { id: safeUint, keys: optBool },
  'refuse',
);

export const watchCreateRequest: Check<WatchCreateRequest> = record<WatchCreateRequest>(
  {
    key: bytes,
    rangeEnd: optBytes,
    startRevision: optUint,
    progressNotify: optBool,
    filters: optional(arrayOf(literal(['NOPUT', 'NODELETE'] as const))),
    prevKv: optBool,
    watchId: optional((v, path) => {
      const id = safeInt(v, path);
      if (id < -1) throw new CheckError(path, `expected -1 (any free id) or a non-negative id, got ${id}`);
      return id;
    }),
    fragment: optBool,
  },
  'refuse',
);

export interface WatchCancelParams {
  watchId: number;
}

export const watchCancelParams: Check<WatchCancelParams> = record<WatchCancelParams>({ watchId: safeUint }, 'refuse');

/** Methods without parameters take an empty map. */
export type NoParams = Record<string, never>;

export const noParams: Check<NoParams> = (v, path) => {
  const m = mapOf(v, path);
  const extra = Object.keys(m);
  if (extra.length > 0) throw new CheckError(path, `unknown field ${JSON.stringify(extra[0].slice(0, 64))} (this method takes no parameters)`);
  return {};
};

// ---- answers (unknown fields ignored) -----------------------------------------------------------------------

const responseHeader: Check<ResponseHeader> = record<ResponseHeader>(
  { clusterId: str, memberId: str, revision: safeUint, raftTerm: safeUint },
  'ignore',
);

const keyValue: Check<KeyValue> = record<KeyValue>(
  { key: bytes, createRevision: safeUint, modRevision: safeUint, version: safeUint, value: bytes, lease: safeUint },
  'ignore',
);

export const rangeResponse: Check<RangeResponse> = record<RangeResponse>(
  { header: responseHeader, kvs: arrayOf(keyValue), more: bool, count: safeUint },
  'ignore',
);

export const putResponse: Check<PutResponse> = record<PutResponse>(
  { header: responseHeader, prevKv: optional(keyValue) },
  'ignore',
);

export const deleteRangeResponse: Check<DeleteRangeResponse> = record<DeleteRangeResponse>(
  { header: responseHeader, deleted: safeUint, prevKvs: arrayOf(keyValue) },
  'ignore',
);

function responseOp(depth: number): Check<ResponseOp> {
  return (v, path) => {
    const m = mapOf(v, path);
    const type = opType(field(m, 'type'), `${path}.type`);
    const body = field(m, type);
    const at = `${path}.${type}`;
    switch (type) {
      case 'range':
        return { type, range: rangeResponse(body, at) };
      case 'put':
        return { type, put: putResponse(body, at) };
      case 'deleteRange':
        return { type, deleteRange: deleteRangeResponse(body, at) };
      case 'txn':
        return { type, txn: txnResponseAt(depth + 1)(body, at) };
    }
  };
}

const txnResponseByDepth: Check<TxnResponse>[] = [];

function txnResponseAt(depth: number): Check<TxnResponse> {
  let check = txnResponseByDepth[depth];
  if (check === undefined) {
    check =
      depth > MAX_TXN_DEPTH
        ? tooDeep
        : record<TxnResponse>({ header: responseHeader, succeeded: bool, responses: arrayOf(responseOp(depth)) }, 'ignore');
    txnResponseByDepth[depth] = check;
  }
  return check;
}

export const txnResponse: Check<TxnResponse> = txnResponseAt(1);

export const compactionResponse: Check<CompactionResponse> = record<CompactionResponse>(
  { header: responseHeader },
  'ignore',
);

export const leaseGrantResponse: Check<LeaseGrantResponse> = record<LeaseGrantResponse>(
  { header: responseHeader, id: safeUint, ttl: safeInt },
  'ignore',
);

export const leaseRevokeResponse: Check<LeaseRevokeResponse> = record<LeaseRevokeResponse>(
  { header: responseHeader },
  'ignore',
);

export const leaseKeepAliveResponse: Check<LeaseKeepAliveResponse> = record<LeaseKeepAliveResponse>(
  { header: responseHeader, id: safeUint, ttl: safeInt },
  'ignore',
);

export const leaseTimeToLiveResponse: Check<LeaseTimeToLiveResponse> = record<LeaseTimeToLiveResponse>(
  { header: responseHeader, id: safeUint, ttl: safeInt, grantedTtl: safeInt, keys: arrayOf(bytes) },
  'ignore',
);

export const leaseLeasesResponse: Check<LeaseLeasesResponse> = record<LeaseLeasesResponse>(
  { header: responseHeader, leases: arrayOf(record<{ id: number }>({ id: safeUint }, 'ignore')) },
  'ignore',
);

export const statusResponse: Check<StatusResponse> = record<StatusResponse>(
  {
    header: responseHeader,
    version: str,
    dbSize: safeUint,
    leader: str,
    raftIndex: safeUint,
    raftTerm: safeUint,
    raftAppliedIndex: safeUint,
    snapshotIndex: safeUint,
    firstIndex: safeUint,
    isLearner: bool,
    errors: arrayOf(str),
    name: str,
  },
  'ignore',
);

export const healthResponse: Check<HealthResponse> = record<HealthResponse>({ health: bool, reason: str }, 'ignore');

const event: Check<Event> = record<Event>(
  { type: literal(['PUT', 'DELETE'] as const), kv: keyValue, prevKv: optional(keyValue) },
  'ignore',
);

export const watchResponse: Check<WatchResponse> = record<WatchResponse>(
  {
    header: responseHeader,
    watchId: safeInt,
    created: optBool,
    canceled: optBool,
    compactRevision: optUint,
    cancelReason: optional(str),
    fragment: optBool,
    events: arrayOf(event),
  },
  'ignore',
);

/** The answer to watchProgress: an empty map (the notification itself comes as a watch frame). */
export const emptyResult: Check<Record<string, never>> = (v, path) => {
  mapOf(v, path);
  return {};
};
