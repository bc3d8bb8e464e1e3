// The client API of a Keel cluster, as the CLI, the benchmark, the fault-injection harness and the
// orchestrator use it. Two implementations: KeelClient (src/client/stream-client.ts, the native
// WebSocket + msgpackr stream: the fast path, with request deduplication and watch resumption) and
// KeelHttpClient (src/client/http-client.ts, etcd's gRPC-gateway JSON: works against etcd too).
//
// Failure semantics, the same in both:
// - A request that never reached a member is retried on the next endpoint.
// - A read (range, read-only txn, lease time-to-live/list, status) is retried on the next endpoint after
//   any failure that is not the member's final answer.
// - A write is retried only if it carries a request id that the state machine deduplicates (KeelClient
//   gives every put/delete/txn one); otherwise, once it may have reached a member, a failure surfaces as an
//   OutcomeUnknownError: it may or may not have been applied. Never a guess.

import type {
  CompactionResponse,
  DeleteRangeResponse,
  Event,
  HealthResponse,
  KvError,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeRequest,
  RangeResponse,
  SortOrder,
  SortTarget,
  StatusResponse,
  TxnRequest,
  TxnResponse,
  WatchFilter,
} from '../kv/api';
import type { RangeSpec } from './keys';

export interface PutOptions {
  prevKv?: boolean;
  lease?: number;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface GetOptions extends RangeSpec {
  limit?: number;
  /** 0: current. */
  revision?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  sortOrder?: SortOrder;
  sortTarget?: SortTarget;
  /** Answer from the member's local state (may be stale); default: linearizable. */
  serializable?: boolean;
}

export interface DeleteOptions extends RangeSpec {
  prevKv?: boolean;
}

export interface WatchOptions extends RangeSpec {
  /** 0 or absent: from the next revision. */
  startRevision?: number;
  prevKv?: boolean;
  filters?: WatchFilter[];
  progressNotify?: boolean;
}

export interface WatchHandlers {
  /** Every event of one revision arrives in one call, revisions ascending, none twice, none skipped, even
   *  across a reconnection to another member. */
  onEvents(events: Event[], revision: number): void;
  /** A progress notification: every event up to `revision` has been delivered. */
  onProgress?(revision: number): void;
}

export interface ClientWatch {
  /** Resolves once a member has created the watch (the first time). */
  readonly created: Promise<void>;
  /** The highest revision whose events (or a progress notification) were delivered; 0 before any. */
  readonly lastRevision: number;
  /** Ends the watch; resolves once the member has confirmed (or the connection is gone). */
  cancel(): Promise<void>;
  /** Resolves when the watch ends: undefined after cancel(), the error when the server canceled it (for
   *  example its revision was compacted: a KvError with etcd's message and `compactRevision` set). */
  readonly done: Promise<WatchEndError | undefined>;
}

export interface WatchEndError extends KvError {
  compactRevision?: number;
}

/** A request may have been applied, or not: the client cannot tell (timeout or lost connection after the
 *  request left). */
export class OutcomeUnknownError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'OutcomeUnknownError';
  }
}

export interface KvClient {
  readonly endpoints: readonly string[];
  range(req: RangeRequest): Promise<RangeResponse>;
  get(key: Buffer | string, opts?: GetOptions): Promise<RangeResponse>;
  put(key: Buffer | string, value: Buffer | string, opts?: PutOptions): Promise<PutResponse>;
  delete(key: Buffer | string, opts?: DeleteOptions): Promise<DeleteRangeResponse>;
  txn(req: TxnRequest): Promise<TxnResponse>;
  compact(revision: number, opts?: { physical?: boolean }): Promise<CompactionResponse>;
  leaseGrant(ttl: number, id?: number): Promise<LeaseGrantResponse>;
  leaseRevoke(id: number): Promise<LeaseRevokeResponse>;
  /** One keep-alive (the CLI's `lease keep-alive` and KeelClient.keepAlive loop call it every TTL/3). */
  leaseKeepAliveOnce(id: number): Promise<LeaseKeepAliveResponse>;
  leaseTimeToLive(id: number, opts?: { keys?: boolean }): Promise<LeaseTimeToLiveResponse>;
  leaseLeases(): Promise<LeaseLeasesResponse>;
  watch(key: Buffer | string, opts: WatchOptions, handlers: WatchHandlers): ClientWatch;
  /** The status of one member (no failover: the answer is about that member). */
  status(endpoint: string): Promise<StatusResponse>;
  health(endpoint: string): Promise<HealthResponse>;
  close(): Promise<void>;
}
