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

export type SortOrder = 'NONE' | 'ASCEND' | 'DESCEND';
export type SortTarget = 'KEY' | 'VERSION' | 'CREATE' | 'MOD' | 'VALUE';

export interface RangeRequest {
  key: Buffer;
  /** Absent: just `key`. "\0": every key >= key. Otherwise keys in [key, rangeEnd). Same as etcd. */
  rangeEnd?: Buffer;
  /** 0: no limit. */
  limit?: number;
  /** 0 or absent: the current revision. Below the compact revision: Errors.compacted(); above the current
   *  one: Errors.futureRevision(). */
  revision?: number;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  keysOnly?: boolean;
  countOnly?: boolean;
  /** true: answer from the local state, possibly stale. false (default): linearizable (ReadIndex). */
  serializable?: boolean;
  /** etcd's filters (0: no filter); applied before `limit`, as etcd does. */
  minModRevision?: number;
  maxModRevision?: number;
  minCreateRevision?: number;
  maxCreateRevision?: number;
}

export interface RangeResponse {
  header: ResponseHeader;
  kvs: KeyValue[];
  /** More keys in the range than were returned (because of `limit`). */
  more: boolean;
  /** Number of keys in the range, whatever `limit` says. */
  count: number;
}

/** Identifies a write for deduplication: the state machine applies a given (client, seq) once, and answers
 *  a retry with the first application's result (Keel's addition; etcd has no such thing). */
export interface ClientRequestId {
  /** Chosen at random by a client instance (16 hex digits). */
  client: string;
  /** Increases with every write of that client; never reused. */
  seq: number;
}

export interface PutRequest {
  key: Buffer;
  value: Buffer;
  /** 0 or absent: no lease (the key is detached from any lease it had, as in etcd). */
  lease?: number;
  prevKv?: boolean;
  /** Keep the current value (the key must exist: else Errors.keyNotFound()). */
  ignoreValue?: boolean;
  /** Keep the current lease (the key must exist). */
  ignoreLease?: boolean;
  requestId?: ClientRequestId;
}

export interface PutResponse {
  header: ResponseHeader;
  prevKv?: KeyValue;
}

export interface DeleteRangeRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  prevKv?: boolean;
  requestId?: ClientRequestId;
}

export interface DeleteRangeResponse {
  header: ResponseHeader;
  deleted: number;
  prevKvs: KeyValue[];
}

export type CompareResult = 'EQUAL' | 'GREATER' | 'LESS' | 'NOT_EQUAL';

/** A txn guard. With rangeEnd it holds when it holds for every key in the range (etcd 3.3+); a missing
 *  key compares as version 0, create 0, mod 0, lease 0, and (for VALUE) fails every comparison. */
export type Compare = { key: Buffer; rangeEnd?: Buffer; result: CompareResult } & (
  | { target: 'VERSION'; version: number }
  | { target: 'CREATE'; createRevision: number }
  | { target: 'MOD'; modRevision: number }
  | { target: 'VALUE'; value: Buffer }
  | { target: 'LEASE'; lease: number }
);

export type RequestOp =
  | { type: 'range'; range: RangeRequest }
  | { type: 'put'; put: PutRequest }
  | { type: 'deleteRange'; deleteRange: DeleteRangeRequest }
  | { type: 'txn'; txn: TxnRequest };

export type ResponseOp =
  | { type: 'range'; range: RangeResponse }
  | { type: 'put'; put: PutResponse }
  | { type: 'deleteRange'; deleteRange: DeleteRangeResponse }
  | { type: 'txn'; txn: TxnResponse };

/** Applied atomically at one revision (bumped once if anything changed). Nested ops carry no requestId:
 *  only the top-level request's counts. The ops of the chosen branch run in order, each seeing the writes of
 *  the ones before it (as in etcd, a range after a put in the same txn sees the put); ranges in a txn ignore
 *  `serializable`. Two writes to one key in one txn are refused (Errors.duplicateKey()), as in etcd. */
export interface TxnRequest {
  compare: Compare[];
  success: RequestOp[];
  failure: RequestOp[];
  requestId?: ClientRequestId;
  /** For a txn without writes in either branch: serve it locally, possibly stale (like a serializable
   *  range). Ignored when the txn writes. */
  serializable?: boolean;
}

export interface TxnResponse {
  header: ResponseHeader;
  succeeded: boolean;
  responses: ResponseOp[];
}

export interface CompactionRequest {
  revision: number;
  /** Answer only once the history below `revision` is physically removed. */
  physical?: boolean;
}

export interface CompactionResponse {
  header: ResponseHeader;
}

// ---- leases ------------------------------------------------------------------------------------------------

export interface LeaseGrantRequest {
  /** Seconds. Below the minimum (1.5 election timeouts, rounded up) it is raised to the minimum, as etcd. */
  ttl: number;
  /** 0 or absent: the member picks one. At most Number.MAX_SAFE_INTEGER (Keel's limit; etcd's is 2^63-1). */
  id?: number;
}

export interface LeaseGrantResponse {
  header: ResponseHeader;
  id: number;
  ttl: number;
}

export interface LeaseRevokeRequest {
  id: number;
}

export interface LeaseRevokeResponse {
  header: ResponseHeader;
}

export interface LeaseKeepAliveRequest {
  id: number;
}

export interface LeaseKeepAliveResponse {
  header: ResponseHeader;
  id: number;
  /** The TTL the lease was renewed to; 0: the lease does not exist (expired or revoked), as etcd answers. */
  ttl: number;
}

export interface LeaseTimeToLiveRequest {
  id: number;
  /** List the keys attached to the lease. */
  keys?: boolean;
}

export interface LeaseTimeToLiveResponse {
  header: ResponseHeader;
  id: number;
  /** Seconds left (as this member estimates it); -1: the lease does not exist, as etcd answers. */
  ttl: number;
  grantedTtl: number;
  keys: Buffer[];
}

export interface LeaseLeasesResponse {
  header: ResponseHeader;
  leases: { id: number }[];
}

// ---- watch ---------------------------------------------------------------------------------------------------

export type WatchFilter = 'NOPUT' | 'NODELETE';

export interface WatchCreateRequest {
  key: Buffer;
  rangeEnd?: Buffer;
  /** 0 or absent: from the next revision. Older revisions are served from history; below the compact
   *  revision the watch is created and canceled at once with compactRevision set (etcd's behaviour). A
   *  future revision is fine: the watch waits for it. */
  startRevision?: number;
  /** Periodic progress notifications (empty responses carrying the current revision). */
  progressNotify?: boolean;
  filters?: WatchFilter[];
  prevKv?: boolean;
  /** Absent or -1: the stream picks the next free id. An id in use: canceled with a reason. */
  watchId?: number;
  /** Split responses larger than the request size limit into fragments (etcd's `fragment`). */
  fragment?: boolean;
}

export interface Event {
  type: 'PUT' | 'DELETE';
  /** For DELETE: key, and modRevision = the delete's revision; everything else zero/empty, as etcd. */
  kv: KeyValue;
  prevKv?: KeyValue;
}

export interface WatchResponse {
  header: ResponseHeader;
  watchId: number;
  created?: boolean;
  canceled?: boolean;
  /** Set on a watch canceled because its start revision (or the point it had reached) was compacted. */
  compactRevision?: number;
  cancelReason?: string;
  /** More fragments of this response follow. */
  fragment?: boolean;
  /** Every event of a revision is in one response (unless fragmented); empty for created, canceled and
   *  progress responses. */
  events: Event[];
}

/** Receives the responses of one watch stream, in order. Returns false when the consumer is backed up (its
 *  socket buffer is full): the hub then holds further responses for that stream until resume(). */
export type WatchSink = (resp: WatchResponse) => boolean;

/** One client stream carrying many watches (etcd's bidirectional Watch RPC). */
export interface WatchStream {
  /** The answer (created, or canceled with a reason) and then the events arrive through the sink. */
  create(req: WatchCreateRequest): void;
  /** Answered by a canceled response through the sink (none if the id is unknown). */
  cancel(watchId: number): void;
  /** Asks for a progress notification: a response with watchId -1 (etcd's InvalidWatchID), no events and
   *  the current revision in its header, sent once every watch of the stream has caught up to it. */
  requestProgress(): void;
  /** The sink can take responses again. */
  resume(): void;
  /** Drops every watch of the stream; no further responses. */
  close(): void;
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

// ---- cluster membership (etcd's Cluster service) -------------------------------------------------------

/** A member as the replicated member registry knows it (etcd's Member). */
export interface MemberInfo {
  /** 16 hex digits (the gateway prints the decimal uint64, as etcd does). */
  id: string;
  /** '' until the member has started and published it (etcd leaves it empty for a member added but not
   *  started), unless `keel member add NAME` gave it. */
  name: string;
  peerUrls: string[];
  /** Published by the member itself once it runs; empty before. */
  clientUrls: string[];
  isLearner: boolean;
}

export interface MemberListRequest {
  /** Confirmed with the leader first (etcd's linearizable member list); otherwise this member's registry. */
  linearizable?: boolean;
}
export interface MemberListResponse {
  header: ResponseHeader;
  members: MemberInfo[];
}

export interface MemberAddRequest {
  /** http://host:port, exactly one for now (Keel members have one peer URL). */
  peerUrls: string[];
  isLearner?: boolean;
  /** Keel's addition: the new member's name, shown by member list before the member has started. */
  name?: string;
}
export interface MemberAddResponse {
  header: ResponseHeader;
  /** The member added, with the id the cluster gave it. */
  member: MemberInfo;
  /** Every member once the change is applied, the new one included. */
  members: MemberInfo[];
}

export interface MemberRemoveRequest {
  id: string;
}
export interface MemberRemoveResponse {
  header: ResponseHeader;
  members: MemberInfo[];
}

export interface MemberPromoteRequest {
  id: string;
}
export interface MemberPromoteResponse {
  header: ResponseHeader;
  members: MemberInfo[];
}

// ---- alarms (etcd's Maintenance.Alarm) ---------------------------------------------------------------

export type AlarmType = 'NONE' | 'NOSPACE' | 'CORRUPT';
export type AlarmAction = 'GET' | 'ACTIVATE' | 'DEACTIVATE';

export interface AlarmMember {
  memberId: string;
  alarm: AlarmType;
}

export interface AlarmRequest {
  action: AlarmAction;
  /** For ACTIVATE / DEACTIVATE; '' or absent with DEACTIVATE: every member's alarm of that type. */
  memberId?: string;
  /** NONE (or absent) with GET: every alarm. */
  alarm?: AlarmType;
}
export interface AlarmResponse {
  header: ResponseHeader;
  /** GET: the alarms raised (of the requested type); ACTIVATE / DEACTIVATE: the alarms changed. */
  alarms: AlarmMember[];
}

// ---- maintenance (etcd's Maintenance service, beyond status and alarms) ---------------------------------

export interface HashKVRequest {
  /** 0: the current revision. */
  revision: number;
}
export interface HashKVResponse {
  header: ResponseHeader;
  /** CRC-32C over every key-value version in (compactRevision, hashRevision], in key-then-revision order,
   *  tombstones included: equal on every member that has applied the same revisions (a consistency check). */
  hash: number;
  compactRevision: number;
  /** The revision the hash covers up to. */
  hashRevision: number;
}
export interface HashResponse {
  header: ResponseHeader;
  /** CRC-32C over the whole replicated key-value state (every table of the store but its meta records). */
  hash: number;
}
export interface DefragmentResponse {
  header: ResponseHeader;
}
export interface MoveLeaderRequest {
  /** 16 hex digits. */
  targetId: string;
}
export interface MoveLeaderResponse {
  header: ResponseHeader;
}
/** A consistent backup of the member's store, in `keel snapshot save`'s file format (src/server/backup-file.ts). */
export interface SnapshotResponse {
  header: ResponseHeader;
  data: Uint8Array;
}

/** What the client-facing servers (HTTP gateway, native stream, later gRPC) call. Implemented by the member
 *  (src/server/member.ts). Every method throws KvError for a request the client got wrong or that failed. */
export interface KvService {
  range(req: RangeRequest): Promise<RangeResponse>;
  put(req: PutRequest): Promise<PutResponse>;
  deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse>;
  txn(req: TxnRequest): Promise<TxnResponse>;
  compact(req: CompactionRequest): Promise<CompactionResponse>;
  leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse>;
  leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse>;
  leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse>;
  leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(): Promise<LeaseLeasesResponse>;
  /** Opens a watch stream on this member (served from its own applied state). */
  watch(sink: WatchSink): WatchStream;
  status(): Promise<StatusResponse>;
  health(): Promise<HealthResponse>;
  memberList(req: MemberListRequest): Promise<MemberListResponse>;
  /** Forwarded to the leader by a follower. Answers once the change is applied on this member. */
  memberAdd(req: MemberAddRequest): Promise<MemberAddResponse>;
  memberRemove(req: MemberRemoveRequest): Promise<MemberRemoveResponse>;
  memberPromote(req: MemberPromoteRequest): Promise<MemberPromoteResponse>;
  alarm(req: AlarmRequest): Promise<AlarmResponse>;
  hashKV(req: HashKVRequest): Promise<HashKVResponse>;
  hash(): Promise<HashResponse>;
  /** LevelDB compacts its files by itself; this asks it to compact the whole key range now. */
  defragment(): Promise<DefragmentResponse>;
  /** Hands leadership to the target (forwarded to the leader by a follower), answered once it leads. */
  moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse>;
  snapshot(): Promise<SnapshotResponse>;
}

/** gRPC status codes, which etcd's errors carry and its gateway maps to HTTP statuses. */
export const enum GrpcCode {
  OK = 0,
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  ResourceExhausted = 8,
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
  leaderChanged: () => new KvError(GrpcCode.Unavailable, 'etcdserver: leader changed'),
  compacted: () => new KvError(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision has been compacted'),
  futureRevision: () =>
    new KvError(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision is a future revision'),
  tooManyOps: () => new KvError(GrpcCode.InvalidArgument, 'etcdserver: too many operations in txn request'),
  duplicateKey: () => new KvError(GrpcCode.InvalidArgument, 'etcdserver: duplicate key given in txn request'),
  keyNotFound: () => new KvError(GrpcCode.InvalidArgument, 'etcdserver: key not found'),
  valueProvided: () => new KvError(GrpcCode.InvalidArgument, 'etcdserver: value is provided'),
  leaseProvided: () => new KvError(GrpcCode.InvalidArgument, 'etcdserver: lease is provided'),
  leaseNotFound: () => new KvError(GrpcCode.NotFound, 'etcdserver: requested lease not found'),
  leaseExists: () => new KvError(GrpcCode.FailedPrecondition, 'etcdserver: lease already exists'),
  leaseTtlTooLarge: () => new KvError(GrpcCode.OutOfRange, 'etcdserver: too large lease TTL'),
  // Membership (etcd's rpctypes messages and codes).
  memberExists: () => new KvError(GrpcCode.FailedPrecondition, 'etcdserver: member ID already exist'),
  peerUrlExists: () => new KvError(GrpcCode.FailedPrecondition, 'etcdserver: Peer URLs already exists'),
  notEnoughStarted: () =>
    new KvError(GrpcCode.FailedPrecondition, 'etcdserver: re-configuration failed due to not enough started members'),
  memberBadUrls: () => new KvError(GrpcCode.InvalidArgument, 'etcdserver: given member URLs are invalid'),
  memberNotFound: () => new KvError(GrpcCode.NotFound, 'etcdserver: member not found'),
  memberNotLearner: () => new KvError(GrpcCode.FailedPrecondition, 'etcdserver: can only promote a learner member'),
  learnerNotReady: () =>
    new KvError(
      GrpcCode.FailedPrecondition,
      'etcdserver: can only promote a learner member which is in sync with leader',
    ),
  /** A change refused by Raft for a reason etcd has no message for (one change pending, leader not ready). */
  reconfigRefused: (why: string) => new KvError(GrpcCode.FailedPrecondition, `etcdserver: ${why}`),
  /** The member was removed from the cluster: it serves nothing any more (Unavailable: ask another member). */
  memberRemoved: () =>
    new KvError(GrpcCode.Unavailable, 'etcdserver: the member has been permanently removed from the cluster'),
  /** A NOSPACE alarm is raised: writes that add data are refused until it is disarmed. */
  noSpace: () => new KvError(GrpcCode.ResourceExhausted, 'etcdserver: mvcc: database space exceeded'),
  /** etcd's gRPC layer: "rpc error: code = InvalidArgument desc = etcdserver: ..."; our own wording where
   *  etcd has no message. */
  invalid: (what: string) => new KvError(GrpcCode.InvalidArgument, `etcdserver: ${what}`),
  /** A deduplicated write retried after its record left the deduplication window: it may or may not have
   *  been applied, and applying it again could apply it twice. */
  requestIdExpired: () =>
    new KvError(
      GrpcCode.FailedPrecondition,
      'etcdserver: request id is older than the deduplication window; its outcome is unknown',
    ),
};

/** etcd's limits. */
export const MAX_TXN_OPS = 128;
/** etcd's MaxLeaseTTL (9,000,000,000 s). */
export const MAX_LEASE_TTL = 9_000_000_000;

/** Request size limit (etcd's default --max-request-bytes). */
export const MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
