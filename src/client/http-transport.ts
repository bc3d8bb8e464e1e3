// Unary calls to the members' HTTP JSON API, with the endpoint choice and the retry rules of
// src/client/kv-client.ts.
//
// The transport sticks to the endpoint that last answered. A request that fails before it reached a member
// (connection refused, unknown host, ...) is tried on the next endpoint, whatever it is. When a member was
// reached but did not answer usefully (a timeout, a dropped connection, a 503 such as "etcdserver: no
// leader") a read is tried on the next endpoint but a write is not, as the gateway carries no request id
// that would make a retry safe:
// - when the outcome is unknown (our timeout or a dropped connection after the request left, or the
//   member's own "request timed out" / "leader changed" / "server stopped") the write fails with
//   OutcomeUnknownError: it may or may not have been applied;
// - otherwise (the member refused it: "no leader", "member is starting") with the member's KvError.
// Each endpoint is tried at most once per call.

import { Errors, GrpcCode, KvError } from '../kv/api';
import { errorFromJson } from '../kv/gateway-json';
import { normalizeUrl } from '../server/options';
import { OutcomeUnknownError } from './kv-client';

export const DEFAULT_REQUEST_TIMEOUT_MS = 5000;

/** 'read': safe to send twice (reads, and keep-alives: renewing twice is renewing). 'write': not. */
export type RequestKind = 'read' | 'write';

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

/** The member's answers to a write after which it may or may not have been applied (etcd's meanings:
 *  the proposal was made, then the wait for it ended without an answer). */
const OUTCOME_UNKNOWN_PREFIXES = [Errors.timeout().message, Errors.leaderChanged().message, Errors.stopped().message];

export const OUTCOME_UNKNOWN_SUFFIX = ' (the write may or may not have been applied)';

/** How one attempt on one endpoint failed. */
export type Failure =
  /** The request never reached the member. */
  | { kind: 'unreached'; endpoint: string; cause: string }
  /** The request left, then our timeout fired or the connection dropped. */
  | { kind: 'lost'; endpoint: string; error: KvError }
  /** The member answered that it cannot serve now (503 / Unavailable). */
  | { kind: 'unavailable'; endpoint: string; error: KvError }
  /** A definite answer from the member: no retry. */
  | { kind: 'final'; error: Error };

export type Attempt = { ok: true; json: unknown } | { ok: false; failure: Failure };

function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The innermost useful message and code of a fetch failure (fetch wraps the socket error in `cause`). */
export function describeFetchError(e: unknown): { code?: string; message: string; notSent: boolean } {
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

export function isTimeout(e: unknown): boolean {
  return e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
}

export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** A KvError from an error answer (the gateway's unary or stream error body); for a body that is not the
 *  gateway's, a code from the HTTP status and the start of the body. */
export function errorFromResponse(status: number, text: string): KvError {
  const err = errorFromJson(status, parseJsonOrUndefined(text));
  const snippet = text.trim().slice(0, 200);
  if (err.message === `HTTP ${status}` && snippet !== '') return new KvError(err.code, `HTTP ${status}: ${snippet}`);
  return err;
}

function outcomeUnknown(error: KvError): OutcomeUnknownError {
  return new OutcomeUnknownError(`${error.message}${OUTCOME_UNKNOWN_SUFFIX}`, error);
}

export class HttpTransport {
  readonly endpoints: readonly string[];
  readonly requestTimeoutMs: number;
  /** Index of the endpoint that answered last. */
  private current = 0;

  constructor(endpoints: string[], requestTimeoutMs: number) {
    if (endpoints.length === 0) throw new Error('KeelHttpClient: no endpoints given');
    this.endpoints = endpoints.map((e) => normalizeUrl(e, 'endpoint'));
    if (!Number.isFinite(requestTimeoutMs) || requestTimeoutMs <= 0) {
      throw new Error(`KeelHttpClient: bad requestTimeoutMs ${requestTimeoutMs}`);
    }
    this.requestTimeoutMs = requestTimeoutMs;
  }

  get currentIndex(): number {
    return this.current;
  }

  /** Remembers the endpoint that answered, so the next request goes there first. */
  answeredBy(index: number): void {
    this.current = index;
  }

  /** A POST on the endpoints in turn, by the rules above; the answer's JSON. */
  async call(path: string, body: object, kind: RequestKind): Promise<unknown> {
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
      if (kind === 'write') {
        if (f.kind === 'lost') throw outcomeUnknown(f.error);
        if (f.kind === 'unavailable') {
          if (OUTCOME_UNKNOWN_PREFIXES.some((p) => f.error.message.startsWith(p))) throw outcomeUnknown(f.error);
          throw f.error;
        }
      }
    }
    throw this.failureError(failures, tried);
  }

  /** One request to one endpoint, no failover (status and health are about that member). */
  async callOne(
    endpoint: string,
    path: string,
    body: object | undefined,
    method: 'GET' | 'POST',
    errorStatusIsAnswer = false,
  ): Promise<unknown> {
    const ep = normalizeUrl(endpoint, 'endpoint');
    const a = await this.attempt(ep, path, body, method, errorStatusIsAnswer);
    if (a.ok) return a.json;
    throw this.failureError([a.failure], [ep]);
  }

  /** The error for a call whose every attempt failed: the last answer of a member, if one answered. */
  private failureError(failures: Failure[], tried: string[]): Error {
    for (let i = failures.length - 1; i >= 0; i--) {
      const f = failures[i];
      if (f.kind !== 'unreached') return f.error;
    }
    const causes = failures.flatMap((f) => (f.kind === 'unreached' ? [f] : []));
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
        const error = new KvError(GrpcCode.DeadlineExceeded, `request to ${url} timed out after ${ms} ms`);
        return { ok: false, failure: { kind: 'lost', endpoint, error } };
      }
      const d = describeFetchError(e);
      if (d.notSent) return { ok: false, failure: { kind: 'unreached', endpoint, cause: d.message } };
      const message = `connection to ${endpoint} failed during the request: ${d.message}`;
      const error = new KvError(GrpcCode.Unavailable, message);
      return { ok: false, failure: { kind: 'lost', endpoint, error } };
    }
    if ((status >= 200 && status < 300) || (errorStatusIsAnswer && status === 503)) {
      const json = parseJsonOrUndefined(text);
      if (json === undefined) {
        const error = new Error(`${url}: HTTP ${status} with a body that is not JSON: ${text.slice(0, 200)}`);
        return { ok: false, failure: { kind: 'final', error } };
      }
      return { ok: true, json };
    }
    const err = errorFromResponse(status, text);
    if (status === 503 || err.code === GrpcCode.Unavailable) {
      return { ok: false, failure: { kind: 'unavailable', endpoint, error: err } };
    }
    return { ok: false, failure: { kind: 'final', error: err } };
  }
}
