// A client of a Keel cluster (or of etcd) over the members' HTTP JSON API, etcd's gRPC-gateway shapes. It
// implements KvClient (./kv-client.ts): endpoint choice and retries are in ./http-transport.ts, watches in
// ./http-watch.ts. The gateway has no field for a client request id, so unlike KeelClient this client never
// retries a write once it may have reached a member: it fails with OutcomeUnknownError instead.

import type {
  AlarmRequest,
  AlarmResponse,
  CompactionResponse,
  DeleteRangeRequest,
  DeleteRangeResponse,
  HealthResponse,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  MemberAddRequest,
  MemberAddResponse,
  MemberListRequest,
  MemberListResponse,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
  PutResponse,
  RangeRequest,
  RangeResponse,
  StatusResponse,
  TxnRequest,
  TxnResponse,
} from '../kv/api';
import {
  GatewayResponseError,
  alarmRequestToJson,
  compactionRequestToJson,
  decodeAlarmResponse,
  decodeCompactionResponse,
  decodeDeleteRangeResponse,
  decodeHealthResponse,
  decodeLeaseGrantResponse,
  decodeLeaseKeepAliveResponse,
  decodeLeaseLeasesResponse,
  decodeLeaseRevokeResponse,
  decodeLeaseTimeToLiveResponse,
  decodeMemberAddResponse,
  decodeMemberListResponse,
  decodeMemberPromoteResponse,
  decodeMemberRemoveResponse,
  decodePutResponse,
  decodeRangeResponse,
  decodeStatusResponse,
  decodeTxnResponse,
  deleteRangeRequestToJson,
  errorFromJson,
  leaseGrantRequestToJson,
  leaseIdRequestToJson,
  leaseTimeToLiveRequestToJson,
  memberAddRequestToJson,
  memberIdRequestToJson,
  memberListRequestToJson,
  putRequestToJson,
  rangeRequestToJson,
  txnRequestToJson,
} from '../kv/gateway-json';
import { txnHasWrites } from '../kv/txn-shape';
import { HttpTransport, DEFAULT_REQUEST_TIMEOUT_MS, type RequestKind } from './http-transport';
import { HttpWatch } from './http-watch';
import { keyRange, toBuffer } from './keys';
import type {
  ClientWatch,
  DeleteOptions,
  GetOptions,
  KvClient,
  PutOptions,
  WatchHandlers,
  WatchOptions,
} from './kv-client';

export { DEFAULT_REQUEST_TIMEOUT_MS };
export type { DeleteOptions, GetOptions, PutOptions };

export interface KeelHttpClientOptions {
  /** Client URLs of the members (http://host:port). */
  endpoints: string[];
  /** Per attempt on one endpoint, in ms (for a watch: until the member answers the stream). Default 5000. */
  requestTimeoutMs?: number;
}

/** The one message of a one-request stream answer ({"result": ...}, or {"error": ...} sent with 200). */
function streamResult(json: unknown): unknown {
  if (typeof json === 'object' && json !== null && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    if (o.result !== undefined) return o.result;
    if (o.error !== undefined) throw errorFromJson(200, json);
  }
  throw new GatewayResponseError('expected {"result": ...} from a streaming route');
}

export class KeelHttpClient implements KvClient {
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  private readonly transport: HttpTransport;
  private readonly watches = new Set<HttpWatch>();
  private closed = false;

  constructor(opts: KeelHttpClientOptions) {
    this.transport = new HttpTransport(opts.endpoints, opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS);
    this.endpoints = this.transport.endpoints;
    this.requestTimeoutMs = this.transport.requestTimeoutMs;
  }

  /** The endpoint the next request goes to first. */
  get currentEndpoint(): string {
    return this.endpoints[this.transport.currentIndex];
  }

  private call(path: string, body: object, kind: RequestKind): Promise<unknown> {
    if (this.closed) return Promise.reject(new Error('KeelHttpClient: closed'));
    return this.transport.call(path, body, kind);
  }

  async range(req: RangeRequest): Promise<RangeResponse> {
    return decodeRangeResponse(await this.call('/v3/kv/range', rangeRequestToJson(req), 'read'));
  }

  /** A range built from a key and etcd's options (prefix, from-key, ...). */
  async get(key: Buffer | string, opts: GetOptions = {}): Promise<RangeResponse> {
    const r = keyRange(key, opts);
    return this.range({
      key: r.key,
      rangeEnd: r.rangeEnd,
      limit: opts.limit,
      revision: opts.revision,
      sortOrder: opts.sortOrder,
      sortTarget: opts.sortTarget,
      keysOnly: opts.keysOnly,
      countOnly: opts.countOnly,
      serializable: opts.serializable,
    });
  }

  async put(key: Buffer | string, value: Buffer | string, opts: PutOptions = {}): Promise<PutResponse> {
    const body = putRequestToJson({
      key: toBuffer(key),
      value: toBuffer(value),
      lease: opts.lease,
      prevKv: opts.prevKv,
      ignoreValue: opts.ignoreValue,
      ignoreLease: opts.ignoreLease,
    });
    return decodePutResponse(await this.call('/v3/kv/put', body, 'write'));
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return decodeDeleteRangeResponse(await this.call('/v3/kv/deleterange', deleteRangeRequestToJson(req), 'write'));
  }

  /** A delete built from a key and etcd's options (prefix, from-key). */
  async delete(key: Buffer | string, opts: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const r = keyRange(key, opts);
    return this.deleteRange({ key: r.key, rangeEnd: r.rangeEnd, prevKv: opts.prevKv });
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    // A txn that writes in neither branch (at any depth) is a read: retried anywhere.
    const kind = txnHasWrites(req) ? 'write' : 'read';
    return decodeTxnResponse(await this.call('/v3/kv/txn', txnRequestToJson(req), kind));
  }

  async compact(revision: number, opts: { physical?: boolean } = {}): Promise<CompactionResponse> {
    const body = compactionRequestToJson({ revision, physical: opts.physical });
    return decodeCompactionResponse(await this.call('/v3/kv/compaction', body, 'write'));
  }

  async leaseGrant(ttl: number, id?: number): Promise<LeaseGrantResponse> {
    return decodeLeaseGrantResponse(await this.call('/v3/lease/grant', leaseGrantRequestToJson({ ttl, id }), 'write'));
  }

  async leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    return decodeLeaseRevokeResponse(await this.call('/v3/lease/revoke', leaseIdRequestToJson({ id }), 'write'));
  }

  /** One keep-alive through the streaming route (one request object, one answer line). Sent again on
   *  another member after a failure, like a read: renewing a lease twice is renewing it. */
  async leaseKeepAliveOnce(id: number): Promise<LeaseKeepAliveResponse> {
    const json = await this.call('/v3/lease/keepalive', leaseIdRequestToJson({ id }), 'read');
    return decodeLeaseKeepAliveResponse(streamResult(json));
  }

  async leaseTimeToLive(id: number, opts: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    const body = leaseTimeToLiveRequestToJson({ id, keys: opts.keys });
    return decodeLeaseTimeToLiveResponse(await this.call('/v3/lease/timetolive', body, 'read'));
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    return decodeLeaseLeasesResponse(await this.call('/v3/lease/leases', {}, 'read'));
  }

  watch(key: Buffer | string, opts: WatchOptions, handlers: WatchHandlers): ClientWatch {
    if (this.closed) throw new Error('KeelHttpClient: closed');
    const r = keyRange(key, opts);
    const w = new HttpWatch(
      this.transport,
      {
        key: r.key,
        rangeEnd: r.rangeEnd,
        startRevision: opts.startRevision,
        prevKv: opts.prevKv,
        filters: opts.filters,
        progressNotify: opts.progressNotify,
      },
      handlers,
      (ended) => this.watches.delete(ended),
    );
    this.watches.add(w);
    return w;
  }

  /** The status of one member (no failover: the answer is about that member). */
  async status(endpoint: string): Promise<StatusResponse> {
    return decodeStatusResponse(await this.transport.callOne(endpoint, '/v3/maintenance/status', {}, 'POST'));
  }

  /** GET /health of one member: a 503 is an answer ({health: false, reason}), not an error. */
  async health(endpoint: string): Promise<HealthResponse> {
    return decodeHealthResponse(await this.transport.callOne(endpoint, '/health', undefined, 'GET', true));
  }

  // Cluster membership and alarms: not in KvClient (the native stream has no such methods); the CLI's
  // `member` and `alarm` commands use this client. A change of membership is a write: never sent twice.

  /** Linearizable by default, as etcd's Go client (3.5 and later) asks; `{ linearizable: false }` for the
   *  answering member's own view. */
  async memberList(req: MemberListRequest = { linearizable: true }): Promise<MemberListResponse> {
    return decodeMemberListResponse(await this.call('/v3/cluster/member/list', memberListRequestToJson(req), 'read'));
  }

  async memberAdd(req: MemberAddRequest): Promise<MemberAddResponse> {
    return decodeMemberAddResponse(await this.call('/v3/cluster/member/add', memberAddRequestToJson(req), 'write'));
  }

  async memberRemove(req: MemberRemoveRequest): Promise<MemberRemoveResponse> {
    const json = await this.call('/v3/cluster/member/remove', memberIdRequestToJson(req), 'write');
    return decodeMemberRemoveResponse(json);
  }

  async memberPromote(req: MemberPromoteRequest): Promise<MemberPromoteResponse> {
    const json = await this.call('/v3/cluster/member/promote', memberIdRequestToJson(req), 'write');
    return decodeMemberPromoteResponse(json);
  }

  /** GET is a read (retried on another member); ACTIVATE and DEACTIVATE are writes. */
  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    const kind = req.action === 'GET' ? 'read' : 'write';
    return decodeAlarmResponse(await this.call('/v3/maintenance/alarm', alarmRequestToJson(req), kind));
  }

  /** Cancels every watch; later calls fail. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.watches].map((w) => w.cancel()));
  }
}
