// KeelClient's watch: created on the pool's current member, and re-created on another one (from where it
// stands, see watch-resume.ts) whenever its connection is lost or the pool moves away from an unhealthy
// member, until it is canceled, the member cancels it for good (compaction), or the client closes.

import type { Logger } from 'pino';
import { Errors, GrpcCode, KvError, type Event, type WatchCreateRequest, type WatchResponse } from '../kv/api';
import type { ClientWatch, WatchEndError, WatchHandlers, WatchOptions } from './kv-client';
import type { EndpointPool } from './endpoint-pool';
import type { StreamConnection } from './stream-connection';
import { WatchCursor } from './watch-resume';

export interface WatchSettings {
  requestTimeoutMs: number;
  logger: Logger;
}

/** Cancel reasons that say the member cannot serve the watch right now, not that the watch is wrong: the
 *  watch moves to another member. */
const TRANSIENT_CANCEL_REASONS = new Set([
  Errors.noLeader().message,
  Errors.stopped().message,
  Errors.leaderChanged().message,
  Errors.timeout().message,
  Errors.starting().message,
]);

/** Where the watch is attached: the connection and the id the watch has there. */
interface Attachment {
  conn: StreamConnection;
  watchId: number;
}

export class StreamWatch implements ClientWatch {
  readonly created: Promise<void>;
  readonly done: Promise<WatchEndError | undefined>;
  private resolveCreated!: () => void;
  private rejectCreated!: (err: Error) => void;
  private resolveDone!: (err: WatchEndError | undefined) => void;
  private isCreated = false;
  private ended = false;
  private readonly cursor: WatchCursor;
  private at: Attachment | undefined;
  /** Events of a fragmented response, until its last fragment. */
  private fragments: Event[] = [];
  private readonly abort = new AbortController();
  private readonly stopListening: () => void;
  private readonly log: Logger;

  constructor(
    private readonly pool: EndpointPool,
    private readonly key: Buffer,
    private readonly rangeEnd: Buffer | undefined,
    private readonly opts: WatchOptions,
    private readonly handlers: WatchHandlers,
    private readonly settings: WatchSettings,
    private readonly onEnd: (w: StreamWatch) => void,
  ) {
    this.log = settings.logger;
    this.cursor = new WatchCursor(opts.startRevision ?? 0);
    this.created = new Promise<void>((resolve, reject) => {
      this.resolveCreated = resolve;
      this.rejectCreated = reject;
    });
    // A caller that only looks at `done` must not get an unhandled rejection from `created`.
    this.created.catch(() => undefined);
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.stopListening = pool.onLeave((conn) => {
      if (this.at?.conn === conn) this.reattach(`left ${conn.endpoint}`);
    });
    pool.retain();
    this.start();
  }

  get lastRevision(): number {
    return this.cursor.lastRevision;
  }

  async cancel(): Promise<void> {
    if (this.ended) return;
    const at = this.at;
    this.end(undefined, new Error('the watch was canceled before a member created it'));
    if (at === undefined || !at.conn.isOpen) return;
    // Confirmation only: the watch delivers nothing more whatever the answer.
    await at.conn.request('watchCancel', { watchId: at.watchId }, Date.now() + this.settings.requestTimeoutMs, {
      retryable: true,
    });
  }

  /** The client is closing: end without asking the member (its connection is about to go). */
  close(): void {
    this.end(undefined, new Error('the client was closed before a member created the watch'));
  }

  private start(): void {
    this.attach().catch((err: unknown) => {
      // Not expected (failures come back as outcomes); end the watch rather than leave it silently stuck.
      this.log.error({ err }, 'watch failed');
      const e = new KvError(GrpcCode.Unknown, err instanceof Error ? err.message : String(err));
      this.end(e, e);
    });
  }

  /** Creates the watch on a healthy member, trying again (elsewhere) until it is created or ends. */
  private async attach(): Promise<void> {
    let delayMs = 50;
    while (!this.ended) {
      const conn = await this.pool.acquire(Number.POSITIVE_INFINITY, false, this.abort.signal);
      if (this.ended) return;
      if (conn === undefined) continue; // the (very long) wait ran out: wait again
      const watchId = conn.allocWatchId();
      const at: Attachment = { conn, watchId };
      this.at = at;
      this.fragments = [];
      conn.setWatchHandler(watchId, (resp) => this.onResponse(at, resp));
      const req: WatchCreateRequest = { key: this.key, watchId };
      if (this.rangeEnd !== undefined) req.rangeEnd = this.rangeEnd;
      if (this.cursor.startRevision > 0) req.startRevision = this.cursor.startRevision;
      if (this.opts.prevKv === true) req.prevKv = true;
      if (this.opts.progressNotify === true) req.progressNotify = true;
      if (this.opts.filters !== undefined && this.opts.filters.length > 0) req.filters = [...this.opts.filters];
      const out = await conn.request('watchCreate', req, Date.now() + this.settings.requestTimeoutMs, {
        retryable: true,
      });
      // The answer itself went to onResponse (in order with the watch's frames); here only what failed.
      if (out.kind === 'ok' || this.at !== at) return;
      conn.dropWatchHandler(watchId);
      this.at = undefined;
      if (out.kind === 'error') {
        if (out.error.code !== GrpcCode.Unavailable) {
          this.end(out.error, out.error);
          return;
        }
        this.pool.reportUnavailable(conn, out.error.message);
      } else if (out.kind === 'timeout') {
        this.pool.reportUnavailable(conn, `no answer to watchCreate within ${this.settings.requestTimeoutMs} ms`);
      }
      this.log.debug({ endpoint: conn.endpoint, outcome: out.kind }, 'watch not created; trying again');
      await new Promise((r) => setTimeout(r, delayMs));
      delayMs = Math.min(delayMs * 2, 1000);
    }
  }

  /** Moves the watch: drops it where it is and creates it again from where it stands. */
  private reattach(why: string): void {
    const at = this.at;
    if (this.ended || at === undefined) return;
    this.log.debug({ endpoint: at.conn.endpoint, why, from: this.cursor.startRevision }, 'watch moving');
    this.at = undefined;
    at.conn.dropWatchHandler(at.watchId);
    if (at.conn.isOpen) {
      void at.conn.request('watchCancel', { watchId: at.watchId }, Date.now() + this.settings.requestTimeoutMs, {
        retryable: true,
      });
    }
    this.start();
  }

  private onResponse(at: Attachment, resp: WatchResponse): void {
    if (this.ended || this.at !== at) return;
    if (resp.canceled === true) {
      this.onCanceled(resp);
      return;
    }
    if (resp.created === true) {
      this.cursor.created(resp.header.revision);
      if (!this.isCreated) {
        this.isCreated = true;
        this.resolveCreated();
      }
      if (resp.events.length === 0) return;
    }
    if (resp.fragment === true) {
      for (const e of resp.events) this.fragments.push(e);
      return;
    }
    let events = resp.events;
    if (this.fragments.length > 0) {
      events = this.fragments.concat(events);
      this.fragments = [];
    }
    if (events.length === 0) {
      if (this.cursor.progress(resp.header.revision)) this.call(() => this.handlers.onProgress?.(resp.header.revision));
      return;
    }
    for (const g of this.cursor.accept(events)) {
      this.call(() => this.handlers.onEvents(g.events, g.revision));
      if (this.ended) return; // a handler canceled the watch
    }
  }

  private onCanceled(resp: WatchResponse): void {
    if (resp.compactRevision !== undefined && resp.compactRevision > 0) {
      const err: WatchEndError = Errors.compacted();
      err.compactRevision = resp.compactRevision;
      this.end(err, err);
      return;
    }
    const reason = resp.cancelReason ?? '';
    if (TRANSIENT_CANCEL_REASONS.has(reason)) {
      const conn = this.at?.conn;
      if (conn !== undefined) this.pool.reportUnavailable(conn, reason);
      this.reattach(`the member canceled it: ${reason}`);
      return;
    }
    const err: WatchEndError = new KvError(
      GrpcCode.Canceled,
      reason === '' ? 'etcdserver: the member canceled the watch' : reason,
    );
    this.end(err, err);
  }

  private end(result: WatchEndError | undefined, notCreated: Error): void {
    if (this.ended) return;
    this.ended = true;
    const at = this.at;
    this.at = undefined;
    at?.conn.dropWatchHandler(at.watchId);
    this.abort.abort();
    this.stopListening();
    this.pool.release();
    if (!this.isCreated) this.rejectCreated(notCreated);
    this.resolveDone(result);
    this.onEnd(this);
  }

  /** A handler that throws must not break the delivery to the others, nor the connection. */
  private call(f: () => void): void {
    try {
      f();
    } catch (err) {
      this.log.error({ err }, 'a watch handler threw');
    }
  }
}
