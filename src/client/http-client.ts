// A client of a Keel cluster over the members' HTTP JSON API (etcd's gRPC-gateway shapes).
//
// Endpoint choice: the client sticks to the endpoint that last answered. When a request fails before it
// reached a member (connection refused, unknown host, ...) it tries the next endpoint, for every kind of
// request. When a member was reached but did not answer usefully (a timeout, a dropped connection, a 503
// such as "etcdserver: no leader") a read is tried on the next endpoint but a write is not: it may have
// been applied, so the error goes to the caller, as etcd's client does. Each endpoint is tried at most once
// per call.

import {
  GrpcCode,
  KvError,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type HealthResponse,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type StatusResponse,
} from '../kv/api';
import { normalizeUrl } from '../server/options';
import {
  decodeDeleteRangeResponse,
  decodeHealthResponse,
  decodePutResponse,
  decodeRangeResponse,
  decodeStatusResponse,
  deleteRangeRequestToJson,
  errorFromJson,
  putRequestToJson,
  rangeRequestToJson,
} from '../kv/gateway-json';
import { keyRange, toBuffer, type RangeSpec } from './keys';

export interface KeelHttpClientOptions {
  /** Client URLs of the members (http://host:port). */
  endpoints: string[];
  /** Per attempt on one endpoint, in ms. Default 5000. */
  requestTimeoutMs?: number;
}

export interface PutOptions {
  prevKv?: boolean;
}

export interface GetOptions extends RangeSpec {
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
  /** Answer from the member's local state (may be stale); default: linearizable. */
  serializable?: boolean;
}

export interface DeleteOptions extends RangeSpec {
  prevKv?: boolean;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** Error codes of failures that happen before a request reaches the server: safe to retry anywhere. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

type RequestKind = 'read' | 'write';

/** How one attempt on one endpoint failed. */
type Failure =
  /** The request never reached the member. */
  | { kind: 'unreached'; endpoint: string; cause: string }
  /** The member may have received it (timeout, dropped connection, 503): retry only reads. */
  | { kind: 'uncertain'; endpoint: string; error: KvError; local: boolean }
  /** A definite answer from the member: no retry. */
  | { kind: 'final'; error: Error };

type Attempt = { ok: true; json: unknown } | { ok: false; failure: Failure };

function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The innermost useful message and code of a fetch failure (fetch wraps the socket error in `cause`). */
function describeFetchError(e: unknown): { code?: string; message: string; notSent: boolean } {
  let cur: unknown = e;
  for (let depth = 0; depth < 5; depth++) {
    const next = cur instanceof Error ? (cur as Error & { cause?: unknown }).cause : undefined;
    if (next === undefined || next === null) break;
    cur = next;
  }
  const code = errorCode(cur);
  let notSent = code !== undefined && NOT_SENT_CODES.has(code);
  // Happy eyeballs (localhost -> ::1 and 127.0.0.1) reports an AggregateError of connect errors.
  if (cur instanceof AggregateError && cur.errors.length > 0) {
    notSent = cur.errors.every((x: unknown) => {
      const c = errorCode(x);
      return c !== undefined && NOT_SENT_CODES.has(c);
    });
  }
  let message = cur instanceof Error ? cur.message : String(cur);
  if (message === '' && cur instanceof AggregateError) {
    message = cur.errors.map((x: unknown) => (x instanceof Error ? x.message : String(x))).join('; ');
  }
  if (message === '' && code !== undefined) message = code;
  return { code, message, notSent };
}

function isTimeout(e: unknown): boolean {
  return e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A KvError from an error answer ({"error": msg, "message": msg, "code": grpcCode}); for a body that is
 *  not the gateway's, a code from the HTTP status and the start of the body. */
function errorFromResponse(status: number, text: string): KvError {
  const err = errorFromJson(status, parseJson(text));
  const snippet = text.trim().slice(0, 200);
  if (err.message === `HTTP ${status}` && snippet !== '') return new KvError(err.code, `HTTP ${status}: ${snippet}`);
  return err;
}

export class KeelHttpClient {
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  /** Index of the endpoint that answered last. */
  private current = 0;

  constructor(opts: KeelHttpClientOptions) {
    if (opts.endpoints.length === 0) throw new Error('KeelHttpClient: no endpoints given');
    this.endpoints = opts.endpoints.map((e) => normalizeUrl(e, 'endpoint'));
    const t = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    if (!Number.isFinite(t) || t <= 0) throw new Error(`KeelHttpClient: bad requestTimeoutMs ${t}`);
    this.requestTimeoutMs = t;
  }

  /** The endpoint the next request goes to first. */
  get currentEndpoint(): string {
    return this.endpoints[this.current];
  }

  async put(key: Buffer | string, value: Buffer | string, opts: PutOptions = {}): Promise<PutResponse> {
    const body = putRequestToJson({ key: toBuffer(key), value: toBuffer(value), prevKv: opts.prevKv });
    return decodePutResponse(await this.call('/v3/kv/put', body, 'write'));
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
      keysOnly: opts.keysOnly,
      countOnly: opts.countOnly,
      serializable: opts.serializable,
    });
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    return decodeDeleteRangeResponse(await this.call('/v3/kv/deleterange', deleteRangeRequestToJson(req), 'write'));
  }

  /** A delete built from a key and etcd's options (prefix, from-key). */
  async delete(key: Buffer | string, opts: DeleteOptions = {}): Promise<DeleteRangeResponse> {
    const r = keyRange(key, opts);
    return this.deleteRange({ key: r.key, rangeEnd: r.rangeEnd, prevKv: opts.prevKv });
  }

  /** The status of one member (no failover: the answer is about that member). */
  async status(endpoint: string): Promise<StatusResponse> {
    const ep = normalizeUrl(endpoint, 'endpoint');
    const a = await this.attempt(ep, '/v3/maintenance/status', {}, 'POST');
    if (a.ok) return decodeStatusResponse(a.json);
    throw this.failureError([a.failure], [ep]);
  }

  /** GET /health of one member: a 503 is an answer ({health: false, reason}), not an error. */
  async health(endpoint: string): Promise<HealthResponse> {
    const ep = normalizeUrl(endpoint, 'endpoint');
    const a = await this.attempt(ep, '/health', undefined, 'GET', true);
    if (a.ok) return decodeHealthResponse(a.json);
    throw this.failureError([a.failure], [ep]);
  }

  private async call(path: string, body: object, kind: RequestKind): Promise<unknown> {
    const n = this.endpoints.length;
    const failures: Failure[] = [];
    const tried: string[] = [];
    for (let i = 0; i < n; i++) {
      const idx = (this.current + i) % n;
      const ep = this.endpoints[idx];
      tried.push(ep);
      const a = await this.attempt(ep, path, body, 'POST');
      if (a.ok) {
        this.current = idx;
        return a.json;
      }
      const f = a.failure;
      failures.push(f);
      if (f.kind === 'final') {
        this.current = idx; // the member answered: it works
        throw f.error;
      }
      if (f.kind === 'uncertain' && kind === 'write') {
        // The member may have applied it: say so when the message is ours (a server's message stays verbatim).
        if (f.local) throw new KvError(f.error.code, `${f.error.message} (the write may or may not have been applied)`);
        throw f.error;
      }
    }
    throw this.failureError(failures, tried);
  }

  /** The error for a call whose every attempt failed: the last answer of a member, if one answered. */
  private failureError(failures: Failure[], tried: string[]): Error {
    for (let i = failures.length - 1; i >= 0; i--) {
      const f = failures[i];
      if (f.kind === 'final' || f.kind === 'uncertain') return f.error;
    }
    const causes = failures.map((f) => (f.kind === 'unreached' ? f : undefined)).filter((f) => f !== undefined);
    const cause = causes.length === 1 ? causes[0].cause : causes.map((c) => `${c.endpoint}: ${c.cause}`).join('; ');
    return new Error(`no member reachable at ${tried.join(',')}: ${cause}`);
  }

  private async attempt(
    endpoint: string,
    path: string,
    body: object | undefined,
    method: 'GET' | 'POST',
    errorStatusIsAnswer = false,
  ): Promise<Attempt> {
    const url = endpoint + path;
    const ms = this.requestTimeoutMs;
    let status: number;
    let text: string;
    try {
      const res = await fetch(url, {
        method,
        headers: body !== undefined ? { 'content-type': 'application/json' } : undefined,
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(ms),
      });
      status = res.status;
      text = await res.text();
    } catch (e) {
      if (isTimeout(e)) {
        return {
          ok: false,
          failure: {
            kind: 'uncertain',
            endpoint,
            error: new KvError(GrpcCode.DeadlineExceeded, `request to ${url} timed out after ${ms} ms`),
            local: true,
          },
        };
      }
      const d = describeFetchError(e);
      if (d.notSent) return { ok: false, failure: { kind: 'unreached', endpoint, cause: d.message } };
      return {
        ok: false,
        failure: {
          kind: 'uncertain',
          endpoint,
          error: new KvError(GrpcCode.Unavailable, `connection to ${endpoint} failed during the request: ${d.message}`),
          local: true,
        },
      };
    }
    if ((status >= 200 && status < 300) || (errorStatusIsAnswer && status === 503)) {
      const json = parseJson(text);
      if (json === undefined) {
        return {
          ok: false,
          failure: {
            kind: 'final',
            error: new Error(`${url}: HTTP ${status} with a body that is not JSON: ${text.slice(0, 200)}`),
          },
        };
      }
      return { ok: true, json };
    }
    const err = errorFromResponse(status, text);
    if (status === 503 || err.code === GrpcCode.Unavailable) {
      return { ok: false, failure: { kind: 'uncertain', endpoint, error: err, local: false } };
    }
    return { ok: false, failure: { kind: 'final', error: err } };
  }
}
