// One client connection of the native stream (protocol: src/kv/stream-protocol.ts): reads request frames,
// serves them through the member's KvService with many in flight, answers them in completion order, and
// carries the connection's watches (one WatchStream per connection, opened at the first watchCreate).
//
// Backpressure: every frame goes into the WebSocket, whose buffered bytes are watched. Above the high-water
// mark the session stops reading requests (ws.pause(): TCP pushes back on a client that sends without
// reading) and its WatchSink answers false, so the watch hub holds further responses; once the buffer is
// back under the low-water mark (polled, as ws has no public drain event) both resume. Memory per
// connection is thus bounded by the high-water mark plus the answers of at most maxInFlight requests.

import type { Logger } from 'pino';
import WebSocket from 'ws';
import {
  Errors,
  GrpcCode,
  KvError,
  type HealthResponse,
  type KvService,
  type WatchCreateRequest,
  type WatchResponse,
  type WatchSink,
  type WatchStream,
} from '../kv/api';
import {
  CloseCode,
  decodeClientFrame,
  encodeError,
  encodeResult,
  encodeServerHello,
  encodeWatch,
  FrameError,
  peekRequestId,
  STREAM_PROTOCOL_VERSION,
  type RequestFrame,
  type ResultOf,
  type StreamMethod,
} from '../kv/stream-protocol';
import { codeOfError } from './metrics/rpc-names';
import { SessionRpcs, type RpcObserver } from './metrics/rpc-observer';

export interface SessionSettings {
  maxFrameBytes: number;
  maxInFlight: number;
  highWaterBytes: number;
  lowWaterBytes: number;
  /** How often a backed-up connection's buffer is looked at. */
  drainPollMs: number;
  /** A client that leaves a ping unanswered for this long is cut (its watches are freed). */
  pingIntervalMs: number;
  /** Counts the requests as etcd's gRPC calls (optional). */
  rpcMetrics?: RpcObserver;
}

/** After asking a misbehaving client to close, how long to wait for its close frame before cutting. */
const CLOSE_GRACE_MS = 1000;

/** A close reason is at most 123 bytes (RFC 6455 5.5: control frame payload 125, 2 for the code). */
function closeReason(text: string): string {
  let s = text;
  while (Buffer.byteLength(s) > 123) s = s.slice(0, -1);
  return s;
}

export class StreamSession {
  /** Resolves once the connection is closed and everything it held is released. */
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private helloSeen = false;
  /** No further frame is read: the connection is closing (or closed). */
  private closing = false;
  private closed = false;
  /** Request ids being served, watch creates and cancels waiting for the hub included. */
  private readonly inFlight = new Set<number>();
  private watchStream: WatchStream | undefined;
  /** Watch ids in use on this connection: created, or being created. */
  private readonly watches = new Set<number>();
  /** watch id -> the watchCreate request waiting for its first response, oldest first. */
  private readonly pendingCreates = new Map<number, number>();
  /** watch id -> the watchCancel requests waiting for its canceled response. */
  private readonly pendingCancels = new Map<number, number[]>();
  private nextWatchId = 0;
  private backedUp = false;
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly pingTimer: NodeJS.Timeout;
  private awaitingPong = false;
  private graceTimer: NodeJS.Timeout | undefined;
  private readonly rpcs: SessionRpcs;

  constructor(
    private readonly ws: WebSocket,
    private readonly svc: KvService,
    private readonly settings: SessionSettings,
    private readonly log: Logger,
  ) {
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.rpcs = new SessionRpcs(settings.rpcMetrics);
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', () => this.onClose());
    // ws reports protocol violations of the client here (a frame above maxPayload, bad framing), then closes.
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'stream connection error'));
    ws.on('pong', () => (this.awaitingPong = false));
    this.pingTimer = setInterval(() => this.ping(), settings.pingIntervalMs);
    this.pingTimer.unref();
    this.send(encodeServerHello({ maxFrameBytes: settings.maxFrameBytes, maxInFlight: settings.maxInFlight }));
  }

  /** Number of requests being served (for tests and metrics). */
  get requestsInFlight(): number {
    return this.inFlight.size;
  }

  /** Closes the connection with `code` (telling the client why); cut if the client does not answer. */
  close(code: number, reason: string): Promise<void> {
    if (this.closed) return this.done;
    this.closing = true;
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close(code, closeReason(reason));
    }
    if (this.graceTimer === undefined) {
      this.graceTimer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
      this.graceTimer.unref();
    }
    return this.done;
  }

  private onMessage(raw: WebSocket.RawData, isBinary: boolean): void {
    if (this.closing) return;
    if (!isBinary) {
      this.refuse(CloseCode.unsupportedData, 'text message: the stream speaks binary MessagePack frames');
      return;
    }
    const data = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
    if (data.length > this.settings.maxFrameBytes) {
      const id = this.helloSeen ? peekRequestId(data) : undefined;
      if (id === undefined || this.inFlight.has(id)) {
        this.refuse(CloseCode.tooBig, `frame of ${data.length} bytes is above the limit of ${this.settings.maxFrameBytes}`);
        return;
      }
      this.log.debug({ id, bytes: data.length, limit: this.settings.maxFrameBytes }, 'request frame too large');
      this.answerError(id, Errors.tooLarge());
      return;
    }
    let frame;
    try {
      frame = decodeClientFrame(data);
    } catch (err) {
      if (!(err instanceof FrameError)) {
        // A bug of ours, not the client's; still never let it escape a socket event (it would crash the member).
        this.log.error({ err }, 'cannot read a stream frame');
        this.refuse(CloseCode.invalidPayload, `unreadable frame: ${messageOf(err)}`);
        return;
      }
      if (err.requestId !== undefined && this.helloSeen && !this.inFlight.has(err.requestId)) {
        this.log.debug({ id: err.requestId, problem: err.message }, 'malformed request');
        this.answerError(err.requestId, err.toKvError());
      } else {
        this.refuse(CloseCode.invalidPayload, `malformed frame: ${err.message}`);
      }
      return;
    }
    if ('hello' in frame) {
      if (this.helloSeen) {
        this.refuse(CloseCode.protocolError, 'a second hello frame');
      } else if (frame.hello.version !== STREAM_PROTOCOL_VERSION) {
        this.refuse(
          CloseCode.protocolError,
          `protocol version ${frame.hello.version} is not supported; this member speaks version ${STREAM_PROTOCOL_VERSION}`,
        );
      } else {
        this.helloSeen = true;
      }
      return;
    }
    if (!this.helloSeen) {
      this.refuse(CloseCode.protocolError, 'the first frame must be a hello');
      return;
    }
    if (this.inFlight.has(frame.id)) {
      // Answering it would answer the other request of that id too: the client lost track of its ids.
      this.refuse(CloseCode.protocolError, `request id ${frame.id} is already in flight`);
      return;
    }
    if (this.inFlight.size >= this.settings.maxInFlight) {
      // etcd's message for its own in-flight bound (ErrTooManyRequests). Not served, so safe to retry.
      this.rpcs.request(frame.method)(GrpcCode.Unavailable);
      this.answerError(frame.id, new KvError(GrpcCode.Unavailable, 'etcdserver: too many requests'));
      return;
    }
    this.serve(frame);
  }

  private serve(frame: RequestFrame): void {
    const end = this.rpcs.request(frame.method);
    switch (frame.method) {
      case 'watchCreate':
        this.createWatch(frame.id, frame.params);
        return;
      case 'watchCancel':
        this.cancelWatch(frame.id, frame.params.watchId);
        return;
      case 'watchProgress':
        try {
          this.stream().requestProgress();
          this.answer(frame.id, {});
        } catch (err) {
          this.answerFailure(frame.id, frame.method, err);
        }
        return;
      default: {
        const { id, method } = frame;
        this.inFlight.add(id);
        let pending: Promise<ResultOf<StreamMethod>>;
        try {
          pending = this.invoke(frame);
        } catch (err) {
          pending = Promise.reject(err);
        }
        pending.then(
          (result) => {
            end(GrpcCode.OK);
            this.answer(id, result);
          },
          (err: unknown) => {
            end(codeOfError(err));
            this.answerFailure(id, method, err);
          },
        );
      }
    }
  }

  private invoke(frame: RequestFrame): Promise<ResultOf<StreamMethod>> {
    const svc = this.svc;
    switch (frame.method) {
      case 'range':
        return svc.range(frame.params);
      case 'put':
        return svc.put(frame.params);
      case 'deleteRange':
        return svc.deleteRange(frame.params);
      case 'txn':
        return svc.txn(frame.params);
      case 'compact':
        return svc.compact(frame.params);
      case 'leaseGrant':
        return svc.leaseGrant(frame.params);
      case 'leaseRevoke':
        return svc.leaseRevoke(frame.params);
      case 'leaseKeepAlive':
        return svc.leaseKeepAlive(frame.params);
      case 'leaseTimeToLive':
        return svc.leaseTimeToLive(frame.params);
      case 'leaseLeases':
        return svc.leaseLeases();
      case 'status':
        return svc.status();
      case 'health':
        // As GET /health: a member that cannot even say is unhealthy, with the reason.
        return svc.health().catch((err: unknown): HealthResponse => ({ health: false, reason: messageOf(err) }));
      case 'watchCreate':
      case 'watchCancel':
      case 'watchProgress':
        throw new Error(`${frame.method} is not a unary method`);
    }
  }

  // ---- watches ----------------------------------------------------------------------------------------------

  private stream(): WatchStream {
    if (this.watchStream === undefined) this.watchStream = this.svc.watch(this.sink);
    return this.watchStream;
  }

  private createWatch(id: number, params: WatchCreateRequest): void {
    let watchId = params.watchId;
    if (watchId === undefined || watchId === -1) {
      while (this.watches.has(this.nextWatchId)) this.nextWatchId++;
      watchId = this.nextWatchId++;
    } else if (this.watches.has(watchId)) {
      this.answerError(id, Errors.invalid(`watch id ${watchId} is already in use on this stream`));
      return;
    }
    this.inFlight.add(id);
    this.watches.add(watchId);
    this.pendingCreates.set(watchId, id);
    try {
      // Registered before create(): the hub may answer from inside it.
      this.stream().create({ ...params, watchId });
    } catch (err) {
      if (this.pendingCreates.get(watchId) === id) {
        this.pendingCreates.delete(watchId);
        this.watches.delete(watchId);
        this.answerFailure(id, 'watchCreate', err);
      }
    }
  }

  private cancelWatch(id: number, watchId: number): void {
    if (!this.watches.has(watchId)) {
      this.answerError(id, new KvError(GrpcCode.NotFound, `etcdserver: no watch with id ${watchId} on this stream`));
      return;
    }
    this.inFlight.add(id);
    const waiting = this.pendingCancels.get(watchId);
    if (waiting !== undefined) {
      waiting.push(id); // one cancel is on its way to the hub already
      return;
    }
    this.pendingCancels.set(watchId, [id]);
    this.stream().cancel(watchId);
  }

  /** The watch hub's responses for this connection. */
  private readonly sink: WatchSink = (resp) => {
    if (this.closed) return false;
    this.route(resp);
    return !this.backedUp;
  };

  /** The first response of a watch answers its watchCreate; its canceled response answers watchCancel;
   *  everything else is a watch frame. */
  private route(resp: WatchResponse): void {
    let watchId = resp.watchId;
    if (watchId === -1 && resp.canceled === true && this.pendingCreates.size > 0) {
      // The hub refuses a create with watch id -1 (as etcd), in the order the creates reached it: this is
      // the answer to the oldest create not answered yet (a Map iterates in insertion order).
      const [oldest] = this.pendingCreates.keys();
      watchId = oldest;
    }
    if (resp.canceled === true) {
      this.watches.delete(watchId);
      const create = this.pendingCreates.get(watchId);
      const cancels = this.pendingCancels.get(watchId);
      this.pendingCreates.delete(watchId);
      this.pendingCancels.delete(watchId);
      if (create !== undefined || cancels !== undefined) {
        if (create !== undefined) this.answer(create, resp);
        for (const id of cancels ?? []) this.answer(id, resp);
        return;
      }
    } else if (resp.created === true) {
      const create = this.pendingCreates.get(watchId);
      if (create !== undefined) {
        this.pendingCreates.delete(watchId);
        this.answer(create, resp);
        return;
      }
    }
    this.send(encodeWatch(resp));
  }

  // ---- answers and backpressure -------------------------------------------------------------------------------

  private answer(id: number, result: ResultOf<StreamMethod>): void {
    if (this.closed) return;
    this.inFlight.delete(id);
    let frame: Buffer;
    try {
      frame = encodeResult(id, result);
    } catch (err) {
      this.log.error({ id, err }, 'cannot encode an answer');
      this.answerError(id, new KvError(GrpcCode.Internal, `etcdserver: cannot encode the answer: ${messageOf(err)}`));
      return;
    }
    this.send(frame);
  }

  private answerFailure(id: number, method: StreamMethod, err: unknown): void {
    if (err instanceof KvError) {
      this.log.debug({ id, method, code: err.code, err: err.message }, 'request failed');
      this.answerError(id, err);
    } else {
      this.log.error({ id, method, err }, 'request failed with an unexpected error');
      this.answerError(id, new KvError(GrpcCode.Unknown, messageOf(err)));
    }
  }

  private answerError(id: number, err: KvError): void {
    if (this.closed) return;
    this.inFlight.delete(id);
    this.send(encodeError(id, { code: err.code, message: err.message }));
  }

  private send(frame: Buffer): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(frame);
    if (!this.backedUp && this.ws.bufferedAmount > this.settings.highWaterBytes) {
      this.backedUp = true;
      this.ws.pause();
      this.drainTimer = setInterval(() => this.checkDrained(), this.settings.drainPollMs);
    }
  }

  private checkDrained(): void {
    if (this.closed || this.ws.bufferedAmount > this.settings.lowWaterBytes) return;
    clearInterval(this.drainTimer);
    this.drainTimer = undefined;
    this.backedUp = false;
    // A pong may have waited unread while paused: do not count it as missing.
    this.awaitingPong = false;
    this.ws.resume();
    this.watchStream?.resume();
  }

  private ping(): void {
    // While backed up the session reads nothing, pongs included; TCP keep-alive covers a dead peer then.
    if (this.closing || this.backedUp) return;
    if (this.awaitingPong) {
      this.log.debug('stream client did not answer a ping; cutting the connection');
      this.ws.terminate();
      return;
    }
    this.awaitingPong = true;
    this.ws.ping();
  }

  private refuse(code: number, reason: string): void {
    this.log.warn({ code, reason }, 'closing a stream connection that broke the protocol');
    void this.close(code, reason);
  }

  private onClose(): void {
    if (this.closed) return;
    // The connection's streams end as gRPC's do: Canceled when the client went away, Unavailable when this
    // member closed it (shutting down, or refusing a client that broke the protocol).
    this.rpcs.close(this.closing ? GrpcCode.Unavailable : GrpcCode.Canceled);
    this.closed = true;
    this.closing = true;
    clearInterval(this.pingTimer);
    clearInterval(this.drainTimer);
    clearTimeout(this.graceTimer);
    this.watchStream?.close();
    this.resolveDone();
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
