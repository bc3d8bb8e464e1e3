// The native stream of a member: WebSocket + MessagePack, the fast path of the TypeScript client.
//
// Transport. One WebSocket per client connection, at STREAM_PATH (/v3/stream) on the member's client URL.
// Every message is one binary WebSocket message holding one MessagePack map (a "frame"), encoded with
// msgpackr without its record extension, so any MessagePack library can speak it. Bytes (keys, values) are
// MessagePack bin; numbers are integers below 2^53 (etcd's int64 revisions, ids and counts, capped at what a
// double holds exactly); absent optional fields are left out (nil is read as absent too). The field names
// and shapes are those of the internal API types in src/kv/api.ts, which travel as they are.
//
// Version. Both sides open with a hello frame. The member sends {hello: {version, maxFrameBytes,
// maxInFlight}} as soon as the connection is up; the client's first frame must be {hello: {version}}. A
// member that does not speak the client's version closes the connection with code 1002 and a reason naming
// both versions; a client that does not speak the member's closes likewise. Bump STREAM_PROTOCOL_VERSION
// on any incompatible change.
//
// Requests (client -> member): {id, method, params}. `id` is chosen by the client (a non-negative integer,
// unique among its requests in flight); `method` is a key of StreamMethods below and `params` its request
// type. Many requests may be in flight on one connection (at most the hello's maxInFlight; beyond that a
// request is answered with an error without being served).
//
// Answers (member -> client), in completion order, matched by id: {id, result} with the method's result
// type, or {id, error: {code, message}} with a gRPC status code (GrpcCode) and etcd's message. Every
// request gets exactly one answer while the connection lives.
//
// Watches are multiplexed by watch id. watchCreate's params are a WatchCreateRequest: with a watchId the
// client chooses the id (one in use on this connection is refused with an error), without one (or -1) the
// member picks a free one. Its answer is the first WatchResponse of that watch: `created` (its header
// revision is the member's current one; a watch from revision 0 sends the revisions after it), or
// `canceled` with a reason (a create the member refuses comes with watchId -1, as etcd sends it; a start
// revision below the compaction is created, then canceled with compactRevision set). Every later response
// of the watch comes as a watch frame {watch: WatchResponse} (events, progress notifications, a
// cancellation by the member), in order, after that answer. watchCancel {watchId} is answered by the
// watch's `canceled` response, after which no frame of that watch follows; an unknown id is answered with a
// NotFound error. watchProgress {} is answered at once with {}; the notification itself comes later as a
// watch frame with watchId -1 (etcd's InvalidWatchID) once every watch of the connection has caught up.
//
// Flow control. A member whose outgoing buffer for a connection is full stops reading that connection's
// requests and holds its watch responses until the client has read enough: a client must keep reading.
//
// Bad frames. A frame that cannot be decoded or does not fit the protocol is answered with an
// InvalidArgument error naming the field and the problem when its request id can be read; otherwise the
// member closes the connection with 1007 (undecodable payload) or 1002 (protocol violation: no hello
// first, a second hello), 1003 for a text message. A request frame above maxFrameBytes is answered with
// etcd's "request is too large"; one above twice that is not read at all (the connection is closed with
// 1009).

import { Packr } from 'msgpackr';
import type { Options as PackrOptions } from 'msgpackr';
import {
  Errors,
  MAX_REQUEST_BYTES,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type GrpcCode,
  type HealthResponse,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseKeepAliveRequest,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
  type WatchCreateRequest,
  type WatchResponse,
  KvError,
} from './api';
import { CheckError, describe, field, isMap, literal, safeUint, str, type Check } from './stream-checks';
import * as S from './stream-schemas';

export type { NoParams, WatchCancelParams } from './stream-schemas';

/** The HTTP path of the stream on a member's client URL. */
export const STREAM_PATH = '/v3/stream';

/** Bumped on any incompatible change of the frames. */
export const STREAM_PROTOCOL_VERSION = 1;

/** Room for the frame's own fields (id, method, field names) around a request at the request size limit,
 *  so that a request the member would take over HTTP also fits in a frame. */
export const FRAME_SLACK_BYTES = 64 * 1024;
export const DEFAULT_MAX_FRAME_BYTES = MAX_REQUEST_BYTES + FRAME_SLACK_BYTES;
export const DEFAULT_MAX_IN_FLIGHT = 1024;

/** WebSocket close codes (RFC 6455, 7.4.1). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  unsupportedData: 1003,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
} as const;

/** Every method, its params and its result. */
export interface StreamMethods {
  range: { params: RangeRequest; result: RangeResponse };
  put: { params: PutRequest; result: PutResponse };
  deleteRange: { params: DeleteRangeRequest; result: DeleteRangeResponse };
  txn: { params: TxnRequest; result: TxnResponse };
  compact: { params: CompactionRequest; result: CompactionResponse };
  leaseGrant: { params: LeaseGrantRequest; result: LeaseGrantResponse };
  leaseRevoke: { params: LeaseRevokeRequest; result: LeaseRevokeResponse };
  leaseKeepAlive: { params: LeaseKeepAliveRequest; result: LeaseKeepAliveResponse };
  leaseTimeToLive: { params: LeaseTimeToLiveRequest; result: LeaseTimeToLiveResponse };
  leaseLeases: { params: S.NoParams; result: LeaseLeasesResponse };
  status: { params: S.NoParams; result: StatusResponse };
  health: { params: S.NoParams; result: HealthResponse };
  watchCreate: { params: WatchCreateRequest; result: WatchResponse };
  watchCancel: { params: S.WatchCancelParams; result: WatchResponse };
  watchProgress: { params: S.NoParams; result: Record<string, never> };
}

export type StreamMethod = keyof StreamMethods;
export type ParamsOf<M extends StreamMethod> = StreamMethods[M]['params'];
export type ResultOf<M extends StreamMethod> = StreamMethods[M]['result'];

const METHOD_CHECKS: { [M in StreamMethod]: { params: Check<ParamsOf<M>>; result: Check<ResultOf<M>> } } = {
  range: { params: S.rangeRequest, result: S.rangeResponse },
  put: { params: S.putRequest, result: S.putResponse },
  deleteRange: { params: S.deleteRangeRequest, result: S.deleteRangeResponse },
  txn: { params: S.txnRequest, result: S.txnResponse },
  compact: { params: S.compactionRequest, result: S.compactionResponse },
  leaseGrant: { params: S.leaseGrantRequest, result: S.leaseGrantResponse },
  leaseRevoke: { params: S.leaseRevokeRequest, result: S.leaseRevokeResponse },
  leaseKeepAlive: { params: S.leaseKeepAliveRequest, result: S.leaseKeepAliveResponse },
  leaseTimeToLive: { params: S.leaseTimeToLiveRequest, result: S.leaseTimeToLiveResponse },
  leaseLeases: { params: S.noParams, result: S.leaseLeasesResponse },
  status: { params: S.noParams, result: S.statusResponse },
  health: { params: S.noParams, result: S.healthResponse },
  watchCreate: { params: S.watchCreateRequest, result: S.watchResponse },
  watchCancel: { params: S.watchCancelParams, result: S.watchResponse },
  watchProgress: { params: S.noParams, result: S.emptyResult },
};

export const STREAM_METHODS = Object.keys(METHOD_CHECKS) as StreamMethod[];
const methodName = literal(STREAM_METHODS);

export interface ClientHello {
  version: number;
}

export interface ServerHello {
  version: number;
  /** Request frames above this are answered with "request is too large". */
  maxFrameBytes: number;
  /** Requests beyond this many in flight on one connection are answered with an error, unserved. */
  maxInFlight: number;
}

export type RequestFrame = { [M in StreamMethod]: { id: number; method: M; params: ParamsOf<M> } }[StreamMethod];

export type ClientFrame = { hello: ClientHello } | RequestFrame;

export interface ErrorBody {
  code: GrpcCode;
  message: string;
}

export type ServerFrame =
  | { hello: ServerHello }
  | { id: number; result: ResultOf<StreamMethod> }
  | { id: number; error: ErrorBody }
  | { watch: WatchResponse };

/** A server frame as the client first reads it: a result is checked once the client has looked up which
 *  method its id was for (decodeResult). */
export type DecodedServerFrame =
  | { hello: ServerHello }
  | { id: number; result: unknown }
  | { id: number; error: ErrorBody }
  | { watch: WatchResponse };

/** A frame that does not fit the protocol. `requestId` is set when the frame's id could be read, so that
 *  the request can be answered with the problem instead of closing the connection. */
export class FrameError extends Error {
  constructor(
    message: string,
    readonly requestId?: number,
    readonly method?: StreamMethod,
  ) {
    super(message);
    this.name = 'FrameError';
  }

  /** The error answer for a request whose frame was malformed. */
  toKvError(): KvError {
    const what = this.method === undefined ? 'request' : `${this.method} request`;
    return Errors.invalid(`malformed ${what}: ${this.message}`);
  }
}

// `skipValues` is documented in msgpackr's README but missing from its typings.
const packr = new Packr({
  // Plain maps, no record extension: records need a structure table both sides share.
  useRecords: false,
  mapsAsObjects: true,
  // Decoded keys and values get their own memory instead of pinning the whole received frame.
  copyBuffers: true,
  skipValues: [undefined],
} as PackrOptions & { skipValues: unknown[] });

function unpack(data: Uint8Array): Record<string, unknown> {
  let v: unknown;
  try {
    v = packr.unpack(data);
  } catch (err) {
    throw new FrameError(`not a MessagePack value (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isMap(v)) throw new FrameError(`expected a map, got ${describe(v)}`);
  return v;
}

function onlyFields(m: Record<string, unknown>, allowed: readonly string[], what: string, requestId?: number): void {
  for (const k of Object.keys(m)) {
    if (!allowed.includes(k)) {
      throw new FrameError(`unknown field ${JSON.stringify(k.slice(0, 64))} in a ${what} frame`, requestId);
    }
  }
}

function checked<T>(check: Check<T>, v: unknown, path: string, requestId?: number, method?: StreamMethod): T {
  try {
    return check(v, path);
  } catch (err) {
    if (err instanceof CheckError) throw new FrameError(err.message, requestId, method);
    throw err;
  }
}

const helloCheck: Check<{ version: number }> = (v, path) => {
  if (!isMap(v)) throw new CheckError(path, `expected a map, got ${describe(v)}`);
  // Other fields are allowed in a hello: a later version may announce more there.
  return { version: safeUint(field(v, 'version'), `${path}.version`) };
};

const serverHelloCheck: Check<ServerHello> = (v, path) => {
  const { version } = helloCheck(v, path);
  const m = v as Record<string, unknown>;
  return {
    version,
    maxFrameBytes: safeUint(field(m, 'maxFrameBytes'), `${path}.maxFrameBytes`),
    maxInFlight: safeUint(field(m, 'maxInFlight'), `${path}.maxInFlight`),
  };
};

// ---- client -> member ------------------------------------------------------------------------------------------

export function encodeClientHello(): Buffer {
  return packr.pack({ hello: { version: STREAM_PROTOCOL_VERSION } });
}

export function encodeRequest<M extends StreamMethod>(id: number, method: M, params: ParamsOf<M>): Buffer {
  return packr.pack({ id, method, params });
}

/** Reads a frame a client sent. Throws FrameError, with the request id when it could be read. */
export function decodeClientFrame(data: Uint8Array): ClientFrame {
  const m = unpack(data);
  if (Object.prototype.hasOwnProperty.call(m, 'hello')) {
    onlyFields(m, ['hello'], 'hello');
    return { hello: checked(helloCheck, m.hello, 'hello') };
  }
  const id = readRequestId(m);
  if (id === undefined) {
    throw new FrameError(
      Object.prototype.hasOwnProperty.call(m, 'id')
        ? `id: expected a non-negative integer below 2^53, got ${describe(m.id)}`
        : 'expected a hello frame or a request frame (with an id), got a map without either',
    );
  }
  onlyFields(m, ['id', 'method', 'params'], 'request', id);
  const method = checked(methodName, field(m, 'method'), 'method', id);
  const params = checked(METHOD_CHECKS[method].params as Check<unknown>, field(m, 'params'), 'params', id, method);
  return { id, method, params } as RequestFrame;
}

/** The id of a request frame, if it has a readable one (used to answer a frame too large to serve). */
export function readRequestId(m: Record<string, unknown>): number | undefined {
  const id = field(m, 'id');
  return typeof id === 'number' && Number.isSafeInteger(id) && id >= 0 ? id : undefined;
}

/** Just enough of an oversized frame to answer it: its id, if it has one. */
export function peekRequestId(data: Uint8Array): number | undefined {
  try {
    return readRequestId(unpack(data));
  } catch {
    return undefined;
  }
}

// ---- member -> client ----------------------------------------------------------------------------------------

export function encodeServerHello(hello: Omit<ServerHello, 'version'>): Buffer {
  return packr.pack({ hello: { version: STREAM_PROTOCOL_VERSION, ...hello } });
}

export function encodeResult(id: number, result: ResultOf<StreamMethod>): Buffer {
  return packr.pack({ id, result });
}

export function encodeError(id: number, err: ErrorBody): Buffer {
  return packr.pack({ id, error: { code: err.code, message: err.message } });
}

export function encodeWatch(watch: WatchResponse): Buffer {
  return packr.pack({ watch });
}

const errorBody: Check<ErrorBody> = (v, path) => {
  if (!isMap(v)) throw new CheckError(path, `expected a map, got ${describe(v)}`);
  const code = safeUint(field(v, 'code'), `${path}.code`);
  if (code > 16) throw new CheckError(`${path}.code`, `expected a gRPC status code (0 to 16), got ${code}`);
  return { code: code as GrpcCode, message: str(field(v, 'message'), `${path}.message`) };
};

/** Reads a frame a member sent; a result stays unchecked until decodeResult. Throws FrameError. */
export function decodeServerFrame(data: Uint8Array): DecodedServerFrame {
  const m = unpack(data);
  const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(m, k);
  if (has('hello')) return { hello: checked(serverHelloCheck, m.hello, 'hello') };
  if (has('watch')) return { watch: checked(S.watchResponse, m.watch, 'watch') };
  const id = readRequestId(m);
  if (id === undefined) throw new FrameError(`expected a hello, watch or answer frame, got a map without either`);
  if (has('error')) return { id, error: checked(errorBody, m.error, 'error', id) };
  if (has('result')) return { id, result: m.result };
  throw new FrameError(`answer ${id} has neither result nor error`, id);
}

/** Checks the result of a request of `method`. Throws FrameError. */
export function decodeResult<M extends StreamMethod>(method: M, id: number, result: unknown): ResultOf<M> {
  return checked(METHOD_CHECKS[method].result as Check<ResultOf<M>>, result, 'result', id, method);
}
