// One native-stream connection from the client to one member (protocol: src/kv/stream-protocol.ts): the
// hello exchange, requests matched to answers by id, watch frames routed to the watch that owns their id,
// and an account of what happened to every request when the connection ends. Which member to talk to, and
// what to do when a request fails, is decided above (endpoint-pool.ts, stream-client.ts).

import type { Logger } from 'pino';
import WebSocket from 'ws';
import { Errors, KvError, type WatchResponse } from '../kv/api';
import {
  CloseCode,
  decodeResult,
  decodeServerFrame,
  encodeClientHello,
  encodeRequest,
  FrameError,
  STREAM_PATH,
  STREAM_PROTOCOL_VERSION,
  type ParamsOf,
  type ResultOf,
  type ServerHello,
  type StreamMethod,
} from '../kv/stream-protocol';

/** What became of one request. */
export type Outcome<T> =
  /** The member's answer. */
  | { kind: 'ok'; result: T }
  /** The member's error answer. */
  | { kind: 'error'; error: KvError }
  /** The request never left this client (the connection was not open, or the frame was refused here). */
  | { kind: 'notSent'; reason: string }
  /** It left, and the connection ended (or was given up) before an answer: it may or may not have been
   *  served. */
  | { kind: 'lost'; reason: string }
  /** It left, and no answer came before the deadline (the connection is still up). */
  | { kind: 'timeout' };

export interface ConnectionSettings {
  dialTimeoutMs: number;
  /** Largest frame accepted from the member (a range answer can be big). */
  maxResponseBytes: number;
  logger: Logger;
}

export interface RequestOptions {
  /** May be abandoned (answered `lost`) when the connection is retired for another member, so that the
   *  caller retries it there at once: true for reads and deduplicated writes. */
  retryable: boolean;
}

/** Receives every response of one watch, in the order the member sent them: the answer to its watchCreate
 *  (and watchCancel) first, then its watch frames. Called synchronously from the socket's message event, so
 *  that an answer is never processed after a frame that followed it. */
export type WatchHandler = (resp: WatchResponse) => void;

interface Pending {
  method: StreamMethod;
  retryable: boolean;
  /** For watchCreate / watchCancel: the watch whose handler also gets the answer. */
  watchId?: number;
  timer: NodeJS.Timeout;
  settle(outcome: Outcome<unknown>): void;
}

export class DialError extends Error {
  constructor(
    readonly endpoint: string,
    message: string,
  ) {
    super(`${endpoint}: ${message}`);
    this.name = 'DialError';
  }
}

/** ws://host:port/v3/stream for http://host:port. */
export function streamUrl(endpoint: string): string {
  const u = new URL(endpoint);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  u.pathname = STREAM_PATH;
  u.search = '';
  u.hash = '';
  return u.toString();
}

export class StreamConnection {
  private readonly pending = new Map<number, Pending>();
  private readonly watchHandlers = new Map<number, WatchHandler>();
  private readonly closeListeners: ((reason: string) => void)[] = [];
  /** Requests waiting for a free slot (the member's maxInFlight). */
  private readonly slotWaiters: (() => void)[] = [];
  private nextId = 1;
  private nextWatchId = 0;
  private closedReason: string | undefined;
  private retiring = false;

  private constructor(
    readonly endpoint: string,
    private readonly ws: WebSocket,
    readonly hello: ServerHello,
    private readonly log: Logger,
  ) {
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.ended(`connection to ${endpoint} closed (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`));
    ws.on('error', (err) => this.log.debug({ endpoint, err: err.message }, 'stream connection error'));
  }

  /** Connects, exchanges hellos, and resolves with the connection; throws DialError. */
  static open(endpoint: string, settings: ConnectionSettings): Promise<StreamConnection> {
    const log = settings.logger;
    return new Promise((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(streamUrl(endpoint), {
        perMessageDeflate: false,
        maxPayload: settings.maxResponseBytes,
        handshakeTimeout: settings.dialTimeoutMs,
        followRedirects: false,
        // An all-zero mask, which ws skips: masking protects HTTP intermediaries from a browser's frames
        // (RFC 6455 §10.3); this Node client has no such script to guard against, only the cost of a pass
        // over every byte.
        generateMask: (mask: Buffer) => mask.fill(0),
      });
      const fail = (message: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners('message');
        ws.on('error', () => undefined); // terminate() may still report one
        ws.terminate();
        reject(new DialError(endpoint, message));
      };
      const timer = setTimeout(() => fail(`no hello from the member within ${settings.dialTimeoutMs} ms`), settings.dialTimeoutMs);
      ws.on('error', (err) => fail(err.message === '' ? String((err as NodeJS.ErrnoException).code) : err.message));
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        fail(`the member refused the stream: HTTP ${res.statusCode ?? '?'} (is it a Keel member?)`);
      });
      ws.on('close', (code, reason) => fail(`closed before the hello (${code} ${reason.toString()})`));
      ws.on('open', () => ws.send(encodeClientHello()));
      ws.once('message', (data, isBinary) => {
        if (settled) return;
        let hello: ServerHello;
        try {
          if (!isBinary) throw new FrameError('a text message');
          const frame = decodeServerFrame(toBuffer(data));
          if (!('hello' in frame)) throw new FrameError('the first frame is not a hello');
          hello = frame.hello;
        } catch (err) {
          ws.close(CloseCode.protocolError, 'expected a hello');
          fail(`not a Keel stream: ${(err as Error).message}`);
          return;
        }
        if (hello.version !== STREAM_PROTOCOL_VERSION) {
          ws.close(CloseCode.protocolError, `this client speaks version ${STREAM_PROTOCOL_VERSION}`);
          fail(`the member speaks stream protocol version ${hello.version}, this client ${STREAM_PROTOCOL_VERSION}`);
          return;
        }
        settled = true;
        clearTimeout(timer);
        ws.removeAllListeners('close');
        ws.removeAllListeners('error');
        ws.removeAllListeners('unexpected-response');
        if (ws.readyState !== WebSocket.OPEN) {
          ws.on('error', () => undefined);
          ws.terminate();
          reject(new DialError(endpoint, 'closed right after the hello'));
          return;
        }
        resolve(new StreamConnection(endpoint, ws, hello, log));
      });
    });
  }

  get isOpen(): boolean {
    return this.closedReason === undefined && !this.retiring;
  }

  /** Requests sent and not answered yet. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** A watch id free on this connection (the client chooses them, so it can route frames from the first). */
  allocWatchId(): number {
    return this.nextWatchId++;
  }

  setWatchHandler(watchId: number, handler: WatchHandler): void {
    this.watchHandlers.set(watchId, handler);
  }

  dropWatchHandler(watchId: number): void {
    this.watchHandlers.delete(watchId);
  }

  /** Called once, when the connection ends (at once if it has ended). */
  onClose(listener: (reason: string) => void): void {
    if (this.closedReason !== undefined) listener(this.closedReason);
    else this.closeListeners.push(listener);
  }

  async request<M extends StreamMethod>(
    method: M,
    params: ParamsOf<M>,
    deadline: number,
    opts: RequestOptions,
  ): Promise<Outcome<ResultOf<M>>> {
    while (this.pending.size >= this.hello.maxInFlight) {
      if (!this.isOpen) break;
      const left = deadline - Date.now();
      if (left <= 0) return { kind: 'notSent', reason: `no free request slot on ${this.endpoint} before the deadline` };
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.slotWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (!this.isOpen) {
      return { kind: 'notSent', reason: this.closedReason ?? `connection to ${this.endpoint} is being retired` };
    }
    if (this.ws.readyState !== WebSocket.OPEN) {
      // Closing: ws would drop the frame silently, and the request would look lost rather than unsent.
      return { kind: 'notSent', reason: `connection to ${this.endpoint} is closing` };
    }
    const id = this.nextId++;
    const frame = encodeRequest(id, method, params);
    if (frame.length > this.hello.maxFrameBytes) {
      this.log.debug({ method, bytes: frame.length, limit: this.hello.maxFrameBytes }, 'request too large to send');
      return { kind: 'error', error: Errors.tooLarge() };
    }
    const watchId =
      method === 'watchCreate' || method === 'watchCancel' ? (params as { watchId?: number }).watchId : undefined;
    return new Promise<Outcome<ResultOf<M>>>((resolve) => {
      const timer = setTimeout(
        () => {
          if (this.pending.get(id) !== entry) return;
          this.pending.delete(id);
          this.freeSlot();
          resolve({ kind: 'timeout' });
        },
        Math.max(0, deadline - Date.now()),
      );
      const entry: Pending = {
        method,
        retryable: opts.retryable,
        watchId,
        timer,
        settle: (o) => resolve(o as Outcome<ResultOf<M>>),
      };
      this.pending.set(id, entry);
      this.ws.send(frame);
    });
  }

  /** No new requests; retryable ones in flight are answered `lost` so their callers move on now; the
   *  connection closes once the others are answered (or time out). */
  retire(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.retiring = true;
    for (const [id, p] of this.pending) {
      if (p.retryable) this.finish(id, p, { kind: 'lost', reason });
    }
    this.wakeSlotWaiters();
    if (this.pending.size === 0) this.close();
  }

  /** Closes the connection; every request in flight is answered `lost`. */
  close(): void {
    if (this.closedReason !== undefined) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CloseCode.normal, 'client closing');
    // Do not wait for the member's close frame: a hung member would hold the requests until it came.
    this.ended(`connection to ${this.endpoint} closed by the client`);
    this.ws.terminate();
  }

  private finish(id: number, p: Pending, outcome: Outcome<unknown>): void {
    this.pending.delete(id);
    clearTimeout(p.timer);
    this.freeSlot();
    p.settle(outcome);
  }

  private freeSlot(): void {
    const next = this.slotWaiters.shift();
    if (next !== undefined) next();
    if (this.retiring && this.pending.size === 0) this.close();
  }

  private wakeSlotWaiters(): void {
    for (const w of this.slotWaiters.splice(0)) w();
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (this.closedReason !== undefined) return;
    try {
      if (!isBinary) throw new FrameError('a text message');
      const frame = decodeServerFrame(toBuffer(data));
      if ('watch' in frame) {
        this.toWatch(frame.watch.watchId, frame.watch);
        return;
      }
      if ('hello' in frame) throw new FrameError('a second hello');
      const p = this.pending.get(frame.id);
      if (p === undefined) return; // timed out or abandoned: the answer comes too late
      if ('error' in frame) {
        this.finish(frame.id, p, { kind: 'error', error: new KvError(frame.error.code, frame.error.message) });
        return;
      }
      const result = decodeResult(p.method, frame.id, frame.result);
      if (p.watchId !== undefined) this.toWatch(p.watchId, result as WatchResponse);
      this.finish(frame.id, p, { kind: 'ok', result });
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      // A member that breaks the protocol cannot be trusted with the rest of this connection either.
      this.log.warn({ endpoint: this.endpoint, problem: err.message }, 'malformed frame from member; closing');
      if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CloseCode.invalidPayload, 'malformed frame');
      this.ended(`malformed frame from ${this.endpoint}: ${err.message}`);
      this.ws.terminate();
    }
  }

  private toWatch(watchId: number, resp: WatchResponse): void {
    const handler = this.watchHandlers.get(watchId);
    if (handler === undefined) return; // a watch that moved on (or a progress answer nobody asked for)
    try {
      handler(resp);
    } catch (err) {
      this.log.error({ watchId, err }, 'a watch handler threw');
    }
  }

  private ended(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    for (const [id, p] of this.pending) this.finish(id, p, { kind: 'lost', reason });
    this.wakeSlotWaiters();
    this.watchHandlers.clear();
    for (const l of this.closeListeners.splice(0)) {
      try {
        l(reason);
      } catch (err) {
        this.log.error({ err }, 'a close listener threw');
      }
    }
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  return Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}
