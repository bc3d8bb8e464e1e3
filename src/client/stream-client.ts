// KeelClient: the KvClient (src/client/kv-client.ts) over the members' native stream (/v3/stream,
// src/kv/stream-protocol.ts). One connection at a time, to a healthy member found by the EndpointPool;
// many requests in flight on it; failover and retries by the rules of request-policy.ts within one deadline
// per request (requestTimeoutMs); watches that resume on another member without gap or duplicate
// (client-watch.ts); and a lease keep-alive loop (keepAlive).
//
// Every put, delete and writing txn carries a ClientRequestId {client, seq}: `client` is 16 random hex
// digits per KeelClient, `seq` counts its writes. A retry sends the same id, so the state machine applies
// the write once and answers the retry with the first result.

import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import {
  GrpcCode,
  KvError,
  type ClientRequestId,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type HealthResponse,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
} from '../kv/api';
import type { ParamsOf, ResultOf, StreamMethod } from '../kv/stream-protocol';
import { normalizeUrl } from '../server/options';
import { StreamWatch } from './client-watch';
import { EndpointPool } from './endpoint-pool';
import { keyRange, toBuffer } from './keys';
import {
  OutcomeUnknownError,
  type ClientWatch,
  type DeleteOptions,
  type GetOptions,
  type KvClient,
  type PutOptions,
  type WatchHandlers,
  type WatchOptions,
} from './kv-client';
import { startKeepAlive, type KeepAliveHandle, type KeepAliveOptions } from './lease-keepalive';
import { isMemberFailure, isOutcomeUnknownAnswer, isReadOnlyTxn, wasNotServed, type RetryPolicy } from './request-policy';
import { DialError, StreamConnection, type ConnectionSettings } from './stream-connection';

export type { KeepAliveHandle, KeepAliveOptions } from './lease-keepalive';

export interface KeelClientOptions {
  /** Client URLs of the members (http://host:port), tried in this order. */
  endpoints: string[];
  /** Deadline of one call, retries and failovers included. Default 5000. */
  requestTimeoutMs?: number;
  /** Connecting to a member, and its health check. Default 2000. */
  dialTimeoutMs?: number;
  /** While watches are open, the member's health is checked this often. Default 1000. */
  healthCheckIntervalMs?: number;
  /** Largest answer accepted. Default 256 MiB. */
  maxResponseBytes?: number;
  /** Default: silent. */
  logger?: Logger;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;
export const DEFAULT_DIAL_TIMEOUT_MS = 2000;

export class KeelClient implements KvClient {
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  /** This client's half of every ClientRequestId. */
  readonly clientId: string = randomBytes(8).toString('hex');
  private seq = 0;
  private retried = 0;
  private readonly pool: EndpointPool;
  private readonly connSettings: ConnectionSettings;
  private readonly log: Logger;
  private readonly watches = new Set<StreamWatch>();
  private readonly keepAlives = new Set<KeepAliveHandle>();
  private closed = false;

  constructor(opts: KeelClientOptions) {
    if (opts.endpoints.length === 0) throw new Error('KeelClient: no endpoints given');
    this.endpoints = opts.endpoints.map((e) => normalizeUrl(e, 'endpoint'));
    this.requestTimeoutMs = positive('requestTimeoutMs', opts.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS);
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'keel-client' });
    this.connSettings = {
      dialTimeoutMs: positive('dialTimeoutMs', opts.dialTimeoutMs, DEFAULT_DIAL_TIMEOUT_MS),
      maxResponseBytes: positive('maxResponseBytes', opts.maxResponseBytes, 256 * 1024 * 1024),
      logger: this.log,
    };
    this.pool = new EndpointPool({
      ...this.connSettings,
      endpoints: this.endpoints,
      healthCheckIntervalMs: positive('healthCheckIntervalMs', opts.healthCheckIntervalMs, 1000),
      backoffMinMs: 50,
      backoffMaxMs: 1000,
    });
  }

  // ---- key-value ---------------------------------------------------------------------------------------------

  range(req: RangeRequest): Promise<RangeResponse> {
    return this.call('range', req, 'read', req.serializable === true);
  }

  get(key: Buffer | string, opts: GetOptions = {}): Promise<RangeResponse> {
    const req: RangeRequest = keyRange(key, opts);
    if (opts.limit !== undefined) req.limit = opts.limit;
    if (opts.revision !== undefined) req.revision = opts.revision;
    if (opts.keysOnly === true) req.keysOnly = true;
    if (opts.countOnly === true) req.countOnly = true;
    if (opts.sortOrder !== undefined) req.sortOrder = opts.sortOrder;
    if (opts.sortTarget !== undefined) req.sortTarget = opts.sortTarget;
    if (opts.serializable === true) req.serializable = true;
    return this.range(req);
  }

  put(key: Buffer | string, value: Buffer | string, opts: PutOptions = {}): Promise<PutResponse> {
    const req: PutRequest = { key: toBuffer(key), value: toBuffer(value), requestId: this.nextRequestId() };
    if (opts.lease !== undefined && opts.lease !== 0) req.lease = opts.lease;
    if (opts.prevKv === true) req.prevKv = true;
    if (opts.ignoreValue === true) req.ignoreValue = true;
    if (opts.ignoreLease === true) req.ignoreLease = true;
    return this.call('put', req, 'dedup');
  }

  delete(key: Buffer | string, opts: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const req: DeleteRangeRequest = { ...keyRange(key, opts), requestId: this.nextRequestId() };
    if (opts.prevKv === true) req.prevKv = true;
    return this.call('deleteRange', req, 'dedup');
  }

  /** A txn that writes gets a request id (unless it has one); a read-only one is retried as a read. */
  txn(req: TxnRequest): Promise<TxnResponse> {
    if (isReadOnlyTxn(req)) return this.call('txn', req, 'read', req.serializable === true);
    return this.call('txn', { ...req, requestId: req.requestId ?? this.nextRequestId() }, 'dedup');
  }

  compact(revision: number, opts: { physical?: boolean } = {}): Promise<CompactionResponse> {
    return this.call('compact', opts.physical === true ? { revision, physical: true } : { revision }, 'once');
  }

  // ---- leases ------------------------------------------------------------------------------------------------

  leaseGrant(ttl: number, id?: number): Promise<LeaseGrantResponse> {
    const req: LeaseGrantRequest = { ttl };
    if (id !== undefined && id !== 0) req.id = id;
    return this.call('leaseGrant', req, 'once');
  }

  leaseRevoke(id: number): Promise<LeaseRevokeResponse> {
    return this.call('leaseRevoke', { id }, 'once');
  }

  leaseKeepAliveOnce(id: number): Promise<LeaseKeepAliveResponse> {
    return this.call('leaseKeepAlive', { id }, 'once');
  }

  leaseTimeToLive(id: number, opts: { keys?: boolean } = {}): Promise<LeaseTimeToLiveResponse> {
    return this.call('leaseTimeToLive', opts.keys === true ? { id, keys: true } : { id }, 'read');
  }

  leaseLeases(): Promise<LeaseLeasesResponse> {
    return this.call('leaseLeases', {}, 'read');
  }

  /** Keeps lease `id` alive (a keep-alive every TTL/3) until stop() or the client closes; `lost` resolves
   *  when the lease is gone or no keep-alive succeeded for a whole TTL. */
  keepAlive(id: number, opts: KeepAliveOptions = {}): KeepAliveHandle {
    this.checkOpen();
    const h = startKeepAlive(id, (i) => this.leaseKeepAliveOnce(i), opts, this.requestTimeoutMs);
    this.keepAlives.add(h);
    void h.lost.then(() => this.keepAlives.delete(h));
    return {
      lost: h.lost,
      stop: () => {
        h.stop();
        this.keepAlives.delete(h);
      },
    };
  }

  // ---- watch ---------------------------------------------------------------------------------------------------

  watch(key: Buffer | string, opts: WatchOptions, handlers: WatchHandlers): ClientWatch {
    this.checkOpen();
    const r = keyRange(key, opts);
    const settings = { requestTimeoutMs: this.requestTimeoutMs, logger: this.log };
    const w = new StreamWatch(this.pool, r.key, r.rangeEnd, opts, handlers, settings, (ended) =>
      this.watches.delete(ended),
    );
    this.watches.add(w);
    return w;
  }

  // ---- one member -------------------------------------------------------------------------------------------------

  status(endpoint: string): Promise<StatusResponse> {
    return this.callOne(endpoint, 'status');
  }

  health(endpoint: string): Promise<HealthResponse> {
    return this.callOne(endpoint, 'health');
  }

  /** Ends every watch and keep-alive, and closes the connection (requests in flight fail). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of [...this.watches]) w.close();
    for (const k of [...this.keepAlives]) k.stop();
    this.keepAlives.clear();
    this.pool.close();
  }

  /** Requests sent again after an attempt failed (reads, and writes with a request id), since creation. */
  get retries(): number {
    return this.retried;
  }

  // ---- plumbing ---------------------------------------------------------------------------------------------------

  private nextRequestId(): ClientRequestId {
    return { client: this.clientId, seq: ++this.seq };
  }

  private checkOpen(): void {
    if (this.closed) throw new Error('KeelClient is closed');
  }

  private async call<M extends StreamMethod>(
    method: M,
    params: ParamsOf<M>,
    policy: RetryPolicy,
    allowUnhealthy = false,
  ): Promise<ResultOf<M>> {
    this.checkOpen();
    const deadline = Date.now() + this.requestTimeoutMs;
    /** A copy of the request may have reached a member. */
    let reached = false;
    let lastError: KvError | undefined;
    let pauseMs = 20;
    for (let attempt = 0; ; attempt++) {
      if (Date.now() >= deadline) throw this.giveUp(method, policy, reached, lastError);
      const conn = this.pool.ready() ?? (await this.pool.acquire(deadline, allowUnhealthy));
      if (conn === undefined) throw this.giveUp(method, policy, reached, lastError);
      // A retryable attempt gets half the time at most, so that a member that hangs leaves room to try
      // another; a `once` request has a single attempt, with all of it.
      if (attempt > 0) this.retried++;
      const attemptStart = Date.now();
      const attemptDeadline =
        policy === 'once' ? deadline : Math.min(deadline, attemptStart + Math.max(this.requestTimeoutMs / 2, 250));
      const out = await conn.request(method, params, attemptDeadline, { retryable: policy !== 'once' });
      switch (out.kind) {
        case 'ok':
          return out.result;
        case 'notSent':
          // The connection is going away under us (its close may not have been processed yet): say so to the
          // pool and pause below. Retrying at once would spin in microtasks on the same half-closed
          // connection, starving the event loop that would deliver its close (a bug seen after a SIGKILL).
          lastError = new KvError(GrpcCode.Unavailable, out.reason);
          this.pool.reportUnavailable(conn, out.reason);
          break;
        case 'error':
          if (isOutcomeUnknownAnswer(out.error)) throw this.unknown(method, out.error.message, out.error);
          if (!isMemberFailure(out.error)) throw out.error; // the member's final answer
          lastError = out.error;
          this.pool.reportUnavailable(conn, out.error.message);
          if (!wasNotServed(out.error)) {
            if (policy === 'once') throw this.unknown(method, `${conn.endpoint} answered "${out.error.message}"`, out.error);
            reached = true;
          }
          break;
        case 'lost':
          lastError = new KvError(GrpcCode.Unavailable, out.reason);
          if (policy === 'once') throw this.unknown(method, out.reason, lastError);
          reached = true;
          break;
        case 'timeout':
          reached = true;
          lastError = new KvError(
            GrpcCode.DeadlineExceeded,
            `no answer from ${conn.endpoint} within ${attemptDeadline - attemptStart} ms`,
          );
          if (Date.now() >= deadline || policy === 'once') throw this.giveUp(method, policy, reached, lastError);
          this.pool.reportUnavailable(conn, lastError.message);
          break;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw this.giveUp(method, policy, reached, lastError);
      await new Promise((r) => setTimeout(r, Math.min(pauseMs, left)));
      pauseMs = Math.min(pauseMs * 2, 500);
    }
  }

  /** The error of a call that ran out of time (or of client): never a guess about a write. */
  private giveUp(method: StreamMethod, policy: RetryPolicy, reached: boolean, lastError: KvError | undefined): Error {
    const ms = this.requestTimeoutMs;
    if (policy !== 'read' && reached) {
      const why = this.closed ? 'the client was closed' : `no answer within ${ms} ms`;
      return this.unknown(method, why, lastError);
    }
    if (this.closed) return new Error(`KeelClient is closed (${method} not done)`);
    if (lastError !== undefined && lastError.code === GrpcCode.DeadlineExceeded) {
      return new KvError(GrpcCode.DeadlineExceeded, `${method}: no answer within ${ms} ms (${lastError.message})`);
    }
    if (lastError !== undefined && reached) return lastError;
    const what = policy === 'read' ? method : `${method} (not sent, so not applied)`;
    return new KvError(
      GrpcCode.Unavailable,
      `${what}: no healthy member among ${this.endpoints.join(',')} within ${ms} ms: ${this.pool.describeProblems()}`,
    );
  }

  private unknown(method: StreamMethod, why: string, cause: unknown): OutcomeUnknownError {
    return new OutcomeUnknownError(`${method}: ${why}; it may or may not have been applied`, cause);
  }

  /** status and health are about one member: no failover. */
  private async callOne<M extends 'status' | 'health'>(endpoint: string, method: M): Promise<ResultOf<M>> {
    this.checkOpen();
    const ep = normalizeUrl(endpoint, 'endpoint');
    const deadline = Date.now() + this.requestTimeoutMs;
    let conn = this.pool.ready();
    let own = false;
    if (conn === undefined || conn.endpoint !== ep) {
      try {
        conn = await StreamConnection.open(ep, this.connSettings);
      } catch (err) {
        const why = err instanceof DialError ? err.message : String(err);
        throw new KvError(GrpcCode.Unavailable, `no member reachable at ${why}`);
      }
      own = true;
    }
    try {
      const out = await conn.request(method, {}, deadline, { retryable: true });
      switch (out.kind) {
        case 'ok':
          return out.result as ResultOf<M>;
        case 'error':
          throw out.error;
        case 'timeout':
          throw new KvError(GrpcCode.DeadlineExceeded, `${method}: no answer from ${ep} within ${this.requestTimeoutMs} ms`);
        default:
          throw new KvError(GrpcCode.Unavailable, `${method}: ${out.reason}`);
      }
    } finally {
      if (own) conn.close();
    }
  }
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`KeelClient: ${name} must be a positive number, got ${value}`);
  return value;
}
