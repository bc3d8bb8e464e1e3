// A watch over the gateway's streaming route (POST /v3/watch), resumed on another member when its stream
// drops, from the revision after the last one delivered: no gap, no duplicate.
//
// Where the watch stands is a WatchCursor (./watch-resume.ts, shared with the native client): a
// reconnection asks for start_revision = the first revision not delivered yet, so a member that is behind
// waits for it and one that is ahead sends history from it; what was delivered already is dropped.

import {
  Errors,
  GrpcCode,
  KvError,
  type Event,
  type WatchCreateRequest,
  type WatchResponse,
} from '../kv/api';
import { GatewayResponseError, decodeWatchResponse, errorFromJson, watchCreateRequestToJson } from '../kv/gateway-json';
import type { ClientWatch, WatchEndError, WatchHandlers } from './kv-client';
import { errorFromResponse, type HttpTransport } from './http-transport';
import { WatchCursor } from './watch-resume';

/** Backoff between rounds over every endpoint, doubling from the first to the last. */
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;
/** A line of the answer longer than this is taken for a broken stream. */
const MAX_LINE_CHARS = 64 * 1024 * 1024;

/** Codes after which another member (or the same one later) may serve the watch. */
const RETRYABLE = new Set<GrpcCode>([
  GrpcCode.Unavailable,
  GrpcCode.Unknown,
  GrpcCode.Internal,
  GrpcCode.DeadlineExceeded,
  GrpcCode.Canceled,
]);

type WatchSpec = Omit<WatchCreateRequest, 'watchId' | 'fragment'>;

export class HttpWatch implements ClientWatch {
  readonly created: Promise<void>;
  readonly done: Promise<WatchEndError | undefined>;
  private resolveCreated!: () => void;
  private rejectCreated!: (err: Error) => void;
  private resolveDone!: (err: WatchEndError | undefined) => void;
  private everCreated = false;
  private ended = false;
  private readonly cursor: WatchCursor;
  private abort: AbortController | undefined;
  private wake: (() => void) | undefined;
  /** Events of a response split in fragments, until its last fragment. */
  private fragments: Event[] = [];

  constructor(
    private readonly transport: HttpTransport,
    private readonly spec: WatchSpec,
    private readonly handlers: WatchHandlers,
    private readonly onEnd: (w: HttpWatch) => void,
  ) {
    this.cursor = new WatchCursor(spec.startRevision ?? 0);
    this.created = new Promise((resolve, reject) => {
      this.resolveCreated = resolve;
      this.rejectCreated = reject;
    });
    // A caller that only awaits `done` must not see an unhandled rejection of `created`.
    this.created.catch(() => undefined);
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    void this.run();
  }

  get lastRevision(): number {
    return this.cursor.lastRevision;
  }

  async cancel(): Promise<void> {
    this.finish(undefined);
    await this.done;
  }

  private finish(err: WatchEndError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.abort?.abort();
    this.wake?.();
    if (!this.everCreated) this.rejectCreated(err ?? new Error('watch canceled before a member created it'));
    this.resolveDone(err);
    this.onEnd(this);
  }

  private async run(): Promise<void> {
    const n = this.transport.endpoints.length;
    let idx = this.transport.currentIndex;
    let failures = 0; // connections in a row that did not get a created response
    while (!this.ended) {
      const createdHere = await this.connect(idx);
      if (this.ended) return;
      failures = createdHere ? 1 : failures + 1;
      idx = (idx + 1) % n;
      if (failures % n === 0) {
        // A whole round without a member serving the watch: wait before the next one.
        const rounds = failures / n;
        await this.sleep(Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (rounds - 1)));
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private request(): WatchCreateRequest {
    const r: WatchCreateRequest = { ...this.spec };
    const from = this.cursor.startRevision;
    if (from > 0) r.startRevision = from;
    else delete r.startRevision;
    return r;
  }

  /** One stream on one endpoint; true if a member created the watch on it. Returns when the stream ends. */
  private async connect(idx: number): Promise<boolean> {
    const endpoint = this.transport.endpoints[idx];
    const ac = new AbortController();
    this.abort = ac;
    // Until the answer's headers: the same limit as any request. After them, a watch may be idle for ever.
    const headersTimer = setTimeout(() => ac.abort(), this.transport.requestTimeoutMs);
    let res: Response;
    try {
      res = await fetch(`${endpoint}/v3/watch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(watchCreateRequestToJson(this.request())),
        signal: ac.signal,
      });
    } catch {
      // Refused, reset or timed out: another member may do.
      return false;
    } finally {
      clearTimeout(headersTimer);
    }
    if (res.status !== 200 || res.body === null) {
      const text = await res.text().catch(() => '');
      const err = errorFromResponse(res.status, text);
      if (!RETRYABLE.has(err.code)) this.finish(err);
      return false;
    }
    this.transport.answeredBy(idx);

    let createdHere = false;
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done || this.ended) break;
        buf += decoder.decode(value, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line === '') continue;
          const outcome = this.onLine(line);
          if (outcome === 'created') createdHere = true;
          if (outcome === 'drop' || this.ended) {
            ac.abort();
            return createdHere;
          }
        }
        if (buf.length > MAX_LINE_CHARS) break;
      }
    } catch {
      // The connection dropped (or cancel() aborted it).
    }
    ac.abort();
    return createdHere;
  }

  /** Handles one chunk of the answer: 'drop' to abandon this stream (and retry elsewhere). */
  private onLine(line: string): 'ok' | 'created' | 'drop' {
    let chunk: unknown;
    try {
      chunk = JSON.parse(line);
    } catch {
      return 'drop';
    }
    if (typeof chunk !== 'object' || chunk === null) return 'drop';
    const o = chunk as { result?: unknown; error?: unknown };
    if (o.error !== undefined) {
      const err = errorFromJson(200, chunk);
      if (!RETRYABLE.has(err.code)) this.finish(err);
      return 'drop';
    }
    let resp: WatchResponse;
    try {
      resp = decodeWatchResponse(o.result);
    } catch (err) {
      const message = err instanceof GatewayResponseError ? err.message : String(err);
      this.finish(new KvError(GrpcCode.Unknown, message));
      return 'drop';
    }
    try {
      return this.onResponse(resp);
    } catch (err) {
      // A handler threw: the watch cannot go on without losing what it was handed.
      const message = err instanceof Error ? err.message : String(err);
      this.finish(new KvError(GrpcCode.Unknown, `watch handler threw: ${message}`));
      return 'drop';
    }
  }

  private onResponse(resp: WatchResponse): 'ok' | 'created' {
    let outcome: 'ok' | 'created' = 'ok';
    if (resp.created === true) {
      outcome = 'created';
      this.cursor.created(resp.header.revision);
      if (!this.everCreated) {
        this.everCreated = true;
        this.resolveCreated();
      }
    }
    if (resp.canceled === true) {
      this.finish(this.cancelError(resp));
      return outcome;
    }
    if (resp.fragment === true) {
      this.fragments.push(...resp.events);
      return outcome;
    }
    const events = this.fragments.length > 0 ? [...this.fragments, ...resp.events] : resp.events;
    this.fragments = [];
    if (events.length > 0) {
      // One onEvents call per revision, in order, without what was delivered already.
      for (const g of this.cursor.accept(events)) {
        this.handlers.onEvents(g.events, g.revision);
        if (this.ended) break;
      }
    } else if (resp.created !== true) {
      // A progress notification: everything up to header.revision has been sent.
      const rev = resp.header.revision;
      if (this.cursor.progress(rev)) this.handlers.onProgress?.(rev);
    }
    return outcome;
  }

  private cancelError(resp: WatchResponse): WatchEndError {
    if (resp.compactRevision !== undefined && resp.compactRevision > 0) {
      const err: WatchEndError = Errors.compacted();
      err.compactRevision = resp.compactRevision;
      return err;
    }
    return new KvError(GrpcCode.FailedPrecondition, resp.cancelReason ?? 'watch canceled by the member');
  }
}
