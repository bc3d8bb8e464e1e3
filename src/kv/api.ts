// The key-value API of a member, in internal form (Buffers and numbers). The HTTP gateway translates it to
// and from etcd's gRPC-gateway JSON (base64 bytes, 64-bit integers as decimal strings, default values
// omitted); the native stream (a later issue) will carry it as msgpackr frames.

export interface ResponseHeader {
  /** 16 hex digits. The gateway prints it as a decimal uint64 string, as etcd does. */
  clusterId: string;
  memberId: string;
  /** The store's revision when the request was served. */
  revision: number;
  raftTerm: number;
}

export interface KeyValue {
  key: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  value: Buffer;
  lease: number;
}

export interface RangeRequest {
  key: Buffer;
  /** Absent: just `key`. "\0": every key >= key. Otherwise keys in [key, rangeEnd). Same as etcd. */
  rangeEnd?: Buffer;
  /** 0: no limit. */
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  /** true: answer from the local state, possibly stale. false (default): linearizable (ReadIndex). */
  serializable?: boolean;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** More keys in the range than were returned (because of `limit`). */
  more: boolean;
  /** Number of keys in the range, whatever `limit` says. */
  count: number;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  prevKv?: boolean;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  prevKv?: boolean;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export interface StatusResponse {
  header: ResponseHeader;
  version: string;
  /** Bytes on disk of the backend (LevelDB dir). */
  dbSize: number;
  /** Member id of the leader this member knows, '' if none. */
  leader: string;
  raftIndex: number;
  raftTerm: number;
  raftAppliedIndex: number;
  /** Keel's additions: index of the newest snapshot, and the first log index still held. */
  snapshotIndex: number;
  firstIndex: number;
  isLearner: boolean;
  errors: string[];
  /** Keel's addition: the member's name. */
  name: string;
}

export interface HealthResponse {
  health: boolean;
  reason: string;
}

/** What the client-facing servers call. Implemented by the member (src/server/member.ts). */
export interface KvService {
  range(req: RangeRequest): Promise<RangeResponse>;
  put(req: PutRequest): Promise<PutResponse>;
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  status(): Promise<StatusResponse>;
  health(): Promise<HealthResponse>;
}

/** gRPC status codes, which etcd's errors carry and its gateway maps to HTTP statuses. */
export const enum GrpcCode {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  FailedPrecondition = 9,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
}

/** An error a client should see, with etcd's message where etcd has one. */
export class KvError extends Error {
  constructor(
    readonly code: GrpcCode,
    message: string,
  ) {
    super(message);
    this.name = 'KvError';
  }
}

/** etcd's messages, verbatim, so that users and tools recognise them. */
export const Errors = {
  timeout: () => new KvError(GrpcCode.Unavailable, 'etcdserver: request timed out'),
  noLeader: () => new KvError(GrpcCode.Unavailable, 'etcdserver: no leader'),
  stopped: () => new KvError(GrpcCode.Unavailable, 'etcdserver: server stopped'),
  /** The client port is bound before the data dir is opened, so that a busy port fails fast. */
  starting: () => new KvError(GrpcCode.Unavailable, 'etcdserver: member is starting (opening its data dir)'),
  /** The member stopped taking part after a failed write to its WAL or backend. */
  failed: (cause: Error) => new KvError(GrpcCode.Internal, `etcdserver: ${cause.message}`),
  emptyKey: () => new KvError(GrpcCode.InvalidArgument, 'etcdserver: key is not provided'),
  tooLarge: () => new KvError(GrpcCode.InvalidArgument, 'etcdserver: request is too large'),
  leaderChanged: () =>
    new KvError(GrpcCode.Unavailable, 'etcdserver: leader changed'),
};

/** Request size limit (etcd's default --max-request-bytes). */
export const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
