// One peer as this member sees it: the outgoing stream this member dials and keeps up (with its bounded send
// queue), plus the bookkeeping of the incoming stream the peer dials to us (accepted in transport.ts).
//
// The outgoing stream is a state machine:
//   connecting --open--> open --close/error--> backoff --timer--> connecting
//   connecting --refused/failed/timeout--> backoff
// and any state --close()--> closed. Messages are queued only while connecting or open; in backoff they are
// dropped at once, because by the time the peer is back they would be stale and Raft resends what matters.

import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import type { NodeId } from '../core/types';
import { encodeFrame } from './codec';
import {
  HEADER_CLUSTER_ID,
  HEADER_FROM,
  HEADER_MEMBER_ID,
  HEADER_REJECT_REASON,
  HEADER_TO,
  HEADER_VERSION,
  MAX_BATCH_BYTES,
  MAX_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  STREAM_PATH,
  headerOf,
} from './protocol';
import { LogThrottle } from './throttle';

export type DropReason = 'queueFull' | 'disconnected' | 'backpressure' | 'tooLarge' | 'encodeError';

export interface PeerStats {
  url: string;
  /** The outgoing stream to the peer is open. */
  connected: boolean;
  /** When the current outgoing stream opened (ms since the epoch); absent while it is down. */
  connectedSince?: number;
  /** An incoming stream from the peer is open. */
  inboundConnected: boolean;
  /** Messages (and their encoded bytes) waiting to be written to the outgoing stream. */
  queuedMessages: number;
  queuedBytes: number;
  /** Bytes written to the outgoing socket but not yet sent; above maxQueueBytes, messages are dropped. */
  socketBufferedBytes: number;
  /** Messages for this peer that were dropped, in total and by reason. */
  dropped: number;
  drops: Record<DropReason, number>;
  sentMessages: number;
  sentFrames: number;
  /** Bytes of frames handed to the socket (WebSocket framing not counted). */
  sentBytes: number;
  receivedMessages: number;
  receivedFrames: number;
  receivedBytes: number;
  /** When the last message from this peer arrived (ms since the epoch). */
  lastReceivedAt?: number;
  /** Round trip of the last answered WebSocket ping on the outgoing stream, in ms. */
  rttMs?: number;
  /** Dials of the outgoing stream started so far. */
  dials: number;
}

/** Settings shared by every link of one transport, already defaulted and checked. */
export interface LinkSettings {
  selfId: NodeId;
  clusterId: string;
  logger: Logger;
  maxQueueBytes: number;
  maxQueueMessages: number;
  dialTimeoutMs: number;
  backoffMinMs: number;
  backoffMaxMs: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  onRoundTrip?: (peer: NodeId, seconds: number) => void;
  /** A peer refused our stream because we were removed from the cluster. */
  onRemoved?: (by: NodeId) => void;
}

/** A stream that stayed up this long counts as healthy: its loss restarts the back-off from the minimum.
 *  Shorter-lived ones keep growing it, so a peer that accepts and then drops us is not hammered. */
const STABLE_AFTER_MS = 1000;

/** Same-kind drop warnings (queue full, backpressure, too large) are logged at most this often per peer. */
const DROP_WARN_INTERVAL_MS = 10_000;

/** Refusals that mean a configuration problem, which no quick retry will fix: retry at the slowest pace. */
const CONFIG_REFUSALS = new Set([
  'version-mismatch',
  'cluster-mismatch',
  'member-mismatch',
  'unknown-member',
  'removed-member',
]);

/** One attempt at (or life of) the outgoing stream. Handlers compare it with `PeerLink.conn`, so events of
 *  a replaced or abandoned socket are ignored. */
interface Conn {
  ws: WebSocket;
  dialTimer?: NodeJS.Timeout;
  /** Why the attempt failed or the stream ended, for the log. The first cause recorded wins. */
  failure?: string;
  /** The acceptor refused the handshake for a configuration reason. */
  configRefusal: boolean;
  /** performance.now() when the stream opened. */
  openedAt?: number;
  /** performance.now() when the unanswered ping was sent. */
  pingSentAt?: number;
  /** ws.bufferedAmount at the previous liveness check: a shrinking buffer proves the peer is reading. */
  bufferedAtCheck: number;
}

type State = 'connecting' | 'open' | 'backoff' | 'closed';

/** Turns a peer URL (http://host:port) into its stream URL (ws://host:port/raft/stream); throws if invalid. */
export function streamUrlOf(peerUrl: string): string {
  const u = new URL(peerUrl);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  else if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new TypeError(`peer URL ${peerUrl}: expected http(s)://host:port`);
  }
  u.pathname = STREAM_PATH;
  u.search = '';
  u.hash = '';
  return u.toString();
}

export class PeerLink {
  url: string;
  private streamUrl: string;
  private state: State = 'backoff';
  private conn: Conn | undefined;
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private flushHandle: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private attempts = 0;
  private readonly log: Logger;
  private readonly dropWarnings = new LogThrottle(DROP_WARN_INTERVAL_MS);

  // Transition logging: "active" / "inactive" once per transition, and while inactive one warning for the
  // first failure only (plus one per new refusal reason), never one per retry.
  private active = false;
  private failureReported = false;
  private lastRefusal: string | undefined;

  /** The peer's stream to us, managed by the transport; at most one (a newer one replaces it). */
  inbound: WebSocket | undefined;
  /** performance.now() when a message from the peer last arrived. */
  lastReceivedMono: number | undefined;

  private connectedSince: number | undefined;
  private rttMs: number | undefined;
  private dials = 0;
  private readonly drops: Record<DropReason, number> = {
    queueFull: 0,
    disconnected: 0,
    backpressure: 0,
    tooLarge: 0,
    encodeError: 0,
  };
  private sentMessages = 0;
  private sentFrames = 0;
  private sentBytes = 0;
  private receivedMessages = 0;
  private receivedFrames = 0;
  private receivedBytes = 0;
  private lastReceivedAt: number | undefined;

  constructor(
    readonly id: NodeId,
    url: string,
    private readonly cfg: LinkSettings,
  ) {
    this.url = url;
    this.streamUrl = streamUrlOf(url);
    this.log = cfg.logger.child({ peer: id });
  }

  /** Starts dialing. */
  start(): void {
    this.dial();
  }

  /** True while messages are taken into the queue (dialing or open) rather than dropped at once. */
  get accepting(): boolean {
    return this.state === 'connecting' || this.state === 'open';
  }

  /** True while the outgoing stream is open. */
  get connected(): boolean {
    return this.state === 'open';
  }

  /** Queues one encoded message; drops it (counted) when the peer is unreachable or a bound would be exceeded. */
  enqueue(encoded: Buffer): void {
    if (this.state === 'closed') return;
    if (this.state === 'backoff') {
      this.drop('disconnected', 1);
      return;
    }
    const size = encoded.length;
    // 5 bytes: the largest array header a frame can have.
    if (size > this.cfg.maxQueueBytes || size + 5 > MAX_PAYLOAD_BYTES) {
      this.drop('tooLarge', 1);
      this.warnDrop('tooLarge', { bytes: size, maxQueueBytes: this.cfg.maxQueueBytes },
        'dropping a message larger than the send queue bound (is maxQueueBytes below the message size limit?)');
      return;
    }
    if (this.queue.length >= this.cfg.maxQueueMessages || this.queuedBytes + size > this.cfg.maxQueueBytes) {
      this.drop('queueFull', 1);
      this.warnDrop('queueFull', { queuedMessages: this.queue.length, queuedBytes: this.queuedBytes },
        'send queue full, dropping messages for peer');
      return;
    }
    this.queue.push(encoded);
    this.queuedBytes += size;
    if (this.state === 'open') this.scheduleFlush();
  }

  /** Counts a message dropped before it reached the queue for a reason found by the caller. */
  countDrop(reason: DropReason): void {
    this.drop(reason, 1);
  }

  /** Records a frame received on the incoming stream. */
  noteReceived(frameBytes: number, messages: number): void {
    this.receivedFrames++;
    this.receivedBytes += frameBytes;
    this.receivedMessages += messages;
    this.lastReceivedMono = performance.now();
    this.lastReceivedAt = Date.now();
  }

  /** Points the link at a new URL: the current stream is dropped and the new URL dialed right away. */
  setUrl(url: string): void {
    if (url === this.url || this.state === 'closed') return;
    const streamUrl = streamUrlOf(url); // throws before anything changes if the URL is invalid
    this.log.info({ oldUrl: this.url, url }, 'peer URL changed');
    this.url = url;
    this.streamUrl = streamUrl;
    this.abandonConn();
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.dropQueue();
    this.markInactive('peer URL changed');
    this.failureReported = false;
    this.lastRefusal = undefined;
    this.attempts = 0;
    this.dial();
  }

  stats(): PeerStats {
    const dropped = Object.values(this.drops).reduce((a, b) => a + b, 0);
    return {
      url: this.url,
      connected: this.state === 'open',
      connectedSince: this.connectedSince,
      inboundConnected: this.inbound !== undefined && this.inbound.readyState === WebSocket.OPEN,
      queuedMessages: this.queue.length,
      queuedBytes: this.queuedBytes,
      socketBufferedBytes: this.conn?.ws.bufferedAmount ?? 0,
      dropped,
      drops: { ...this.drops },
      sentMessages: this.sentMessages,
      sentFrames: this.sentFrames,
      sentBytes: this.sentBytes,
      receivedMessages: this.receivedMessages,
      receivedFrames: this.receivedFrames,
      receivedBytes: this.receivedBytes,
      lastReceivedAt: this.lastReceivedAt,
      rttMs: this.rttMs,
      dials: this.dials,
    };
  }

  /** Stops for good: timers cleared, queue dropped, both streams terminated. Resolves once the sockets closed. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    if (this.flushHandle !== undefined) clearImmediate(this.flushHandle);
    this.flushHandle = undefined;
    this.queue = [];
    this.queuedBytes = 0;
    const waits: Promise<void>[] = [];
    const conn = this.abandonConn();
    if (conn !== undefined) waits.push(terminateAndWait(conn.ws));
    if (this.inbound !== undefined) waits.push(terminateAndWait(this.inbound));
    this.inbound = undefined;
    await Promise.all(waits);
  }

  private dial(): void {
    if (this.state === 'closed') return;
    this.state = 'connecting';
    this.dials++;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.streamUrl, {
        headers: {
          [HEADER_VERSION]: PROTOCOL_VERSION,
          [HEADER_CLUSTER_ID]: this.cfg.clusterId,
          [HEADER_FROM]: this.cfg.selfId,
          [HEADER_TO]: this.id,
        },
        perMessageDeflate: false,
        maxPayload: MAX_PAYLOAD_BYTES,
        handshakeTimeout: this.cfg.dialTimeoutMs,
        followRedirects: false,
        // An all-zero mask, which ws recognises and skips: masking exists to protect HTTP intermediaries
        // from a browser's frames (RFC 6455 §10.3); between two members it only costs a pass over every byte.
        generateMask: zeroMask,
      });
    } catch (err) {
      // streamUrlOf already validated the URL, so this is not expected; never let it escape to the caller.
      this.log.error({ url: this.url, err }, 'cannot create a stream to peer');
      this.state = 'backoff';
      this.scheduleRetry(this.cfg.backoffMaxMs);
      return;
    }
    const conn: Conn = { ws, configRefusal: false, bufferedAtCheck: 0 };
    this.conn = conn;
    // handshakeTimeout is a socket idle timeout; this one bounds the whole dial, whatever the peer does.
    conn.dialTimer = setTimeout(() => {
      conn.dialTimer = undefined;
      if (conn.openedAt !== undefined) return;
      conn.failure ??= `dial timed out after ${this.cfg.dialTimeoutMs} ms`;
      ws.terminate();
    }, this.cfg.dialTimeoutMs);
    ws.on('unexpected-response', (_req, res) => {
      const reason = headerOf(res, HEADER_REJECT_REASON);
      conn.failure = this.describeRefusal(res, reason);
      conn.configRefusal = reason !== undefined && CONFIG_REFUSALS.has(reason);
      res.resume();
      ws.terminate();
      if (reason === 'removed-member') this.cfg.onRemoved?.(this.id);
    });
    ws.on('open', () => this.onOpen(conn));
    ws.on('error', (err) => {
      conn.failure ??= err.message;
    });
    ws.on('close', (code, reason) => {
      conn.failure ??= `stream closed by peer (code ${code}${reason.length > 0 ? `: ${reason.toString()}` : ''})`;
      this.onClose(conn);
    });
    ws.on('pong', () => this.onPong(conn));
    // The acceptor never writes data on this stream (its own messages travel on the stream it dials), so any
    // 'message' is ignored by not listening for it.
  }

  private describeRefusal(res: IncomingMessage, reason: string | undefined): string {
    const theirCluster = headerOf(res, HEADER_CLUSTER_ID) ?? '(not given)';
    const theirId = headerOf(res, HEADER_MEMBER_ID) ?? '(not given)';
    switch (reason) {
      case 'cluster-mismatch':
        return `peer ${this.id} at ${this.url} belongs to cluster ${theirCluster}, ` +
          `we are cluster ${this.cfg.clusterId}`;
      case 'member-mismatch':
        return `the member at ${this.url} is ${theirId}, not ${this.id} (was the member replaced at that URL?)`;
      case 'unknown-member':
        return `peer ${this.id} at ${this.url} does not know us (${this.cfg.selfId}) as a member ` +
          `(removed, or its membership not updated yet)`;
      case 'removed-member':
        return `peer ${this.id} at ${this.url} says this member (${this.cfg.selfId}) was removed from the cluster`;
      case 'version-mismatch':
        return `peer ${this.id} at ${this.url} speaks transport protocol ${headerOf(res, HEADER_VERSION) ?? '?'}, ` +
          `we speak ${PROTOCOL_VERSION}`;
      case 'shutting-down':
        return `peer ${this.id} at ${this.url} is shutting down`;
      default:
        return `peer ${this.id} at ${this.url} refused the stream with HTTP ${res.statusCode ?? '?'}` +
          (reason !== undefined ? ` (${reason})` : '');
    }
  }

  private onOpen(conn: Conn): void {
    if (this.conn !== conn) {
      conn.ws.terminate();
      return;
    }
    if (conn.dialTimer !== undefined) clearTimeout(conn.dialTimer);
    conn.dialTimer = undefined;
    conn.openedAt = performance.now();
    this.state = 'open';
    this.connectedSince = Date.now();
    this.failureReported = false;
    this.lastRefusal = undefined;
    if (!this.active) {
      this.active = true;
      this.log.info({ url: this.url }, 'peer became active');
    }
    this.pingTimer = setInterval(() => this.checkLiveness(conn), this.cfg.pingIntervalMs);
    if (this.queue.length > 0) this.scheduleFlush();
  }

  private onClose(conn: Conn): void {
    if (conn.dialTimer !== undefined) clearTimeout(conn.dialTimer);
    conn.dialTimer = undefined;
    if (this.conn !== conn) return;
    this.conn = undefined;
    this.stopPing();
    this.connectedSince = undefined;
    this.dropQueue();
    const reason = conn.failure ?? 'stream closed';
    if (conn.configRefusal) {
      // A configuration problem: worth a warning each time it changes, not on every retry.
      if (reason !== this.lastRefusal) this.log.warn({ url: this.url }, reason);
      else this.log.debug({ url: this.url }, reason);
      this.lastRefusal = reason;
      this.failureReported = true;
    } else if (this.active) {
      this.markInactive(reason);
    } else if (!this.failureReported) {
      this.failureReported = true;
      this.log.warn({ url: this.url, reason }, 'cannot reach peer; retrying in the background');
    } else {
      this.log.debug({ url: this.url, reason }, 'dial failed');
    }
    if (conn.openedAt !== undefined && performance.now() - conn.openedAt >= STABLE_AFTER_MS) this.attempts = 0;
    this.state = 'backoff';
    this.scheduleRetry(conn.configRefusal ? this.cfg.backoffMaxMs : this.backoffDelay(this.attempts++));
  }

  private markInactive(reason: string): void {
    if (!this.active) return;
    this.active = false;
    this.failureReported = true;
    this.log.warn({ url: this.url, reason }, 'peer became inactive');
  }

  /** Exponential back-off with "equal jitter": half fixed, half random, so members that lost the same peer
   *  at the same moment do not redial in lockstep. */
  private backoffDelay(attempt: number): number {
    const base = Math.min(this.cfg.backoffMaxMs, this.cfg.backoffMinMs * 2 ** Math.min(attempt, 30));
    return base / 2 + Math.random() * (base / 2);
  }

  private scheduleRetry(delayMs: number): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.dial();
    }, delayMs);
  }

  /**
   * Every ping interval: send a ping, or, if the last one is still unanswered after pongTimeoutMs while the
   * socket's buffer is not shrinking either, declare the stream dead. Without this a peer whose machine
   * vanished (no FIN, no RST) would look connected until TCP gives up, many minutes later.
   */
  private checkLiveness(conn: Conn): void {
    if (this.conn !== conn || this.state !== 'open') return;
    const ws = conn.ws;
    const now = performance.now();
    const buffered = ws.bufferedAmount;
    if (conn.pingSentAt !== undefined) {
      // The ping queues behind data already buffered, so a slow but live link may answer late; a
      // draining buffer shows the peer is still reading.
      const draining = buffered < conn.bufferedAtCheck;
      conn.bufferedAtCheck = buffered;
      if (!draining && now - conn.pingSentAt > this.cfg.pongTimeoutMs) {
        conn.failure ??= `no answer to ping for ${Math.round(now - conn.pingSentAt)} ms`;
        ws.terminate();
      }
      return;
    }
    conn.pingSentAt = now;
    conn.bufferedAtCheck = buffered;
    ws.ping();
  }

  private onPong(conn: Conn): void {
    if (this.conn !== conn || conn.pingSentAt === undefined) return;
    this.rttMs = performance.now() - conn.pingSentAt;
    conn.pingSentAt = undefined;
    this.cfg.onRoundTrip?.(this.id, this.rttMs / 1000);
  }

  private stopPing(): void {
    if (this.pingTimer !== undefined) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  /** Detaches the current connection (its events are ignored from now on) and terminates its socket. */
  private abandonConn(): Conn | undefined {
    const conn = this.conn;
    if (conn === undefined) return undefined;
    this.conn = undefined;
    this.stopPing();
    this.connectedSince = undefined;
    if (conn.dialTimer !== undefined) clearTimeout(conn.dialTimer);
    conn.dialTimer = undefined;
    conn.ws.terminate();
    return conn;
  }

  private scheduleFlush(): void {
    // setImmediate rather than a timer: everything queued in the current turn of the event loop (typically
    // one Ready's messages) goes out together, and nothing waits longer than that.
    if (this.flushHandle === undefined) this.flushHandle = setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushHandle = undefined;
    const conn = this.conn;
    if (this.state !== 'open' || conn === undefined) return;
    const ws = conn.ws;
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    if (ws.readyState !== WebSocket.OPEN) {
      // Closing; the 'close' event will move us to back-off.
      this.drop('disconnected', batch.length);
      return;
    }
    let i = 0;
    while (i < batch.length) {
      let j = i;
      let bytes = 0;
      do {
        bytes += batch[j].length;
        j++;
      } while (j < batch.length && bytes + batch[j].length <= MAX_BATCH_BYTES);
      const count = j - i;
      const buffered = ws.bufferedAmount;
      // Backpressure: the socket is not draining as fast as we write, so buffering more would only grow
      // memory without bound. Drop instead (Raft resends). An empty buffer always takes one frame, so a
      // single message as large as the bound still goes through.
      if (buffered > 0 && buffered + bytes > this.cfg.maxQueueBytes) {
        this.drop('backpressure', count);
        this.warnDrop('backpressure', { bufferedBytes: buffered },
          'peer is not keeping up (socket buffer full), dropping messages');
      } else {
        const frame = encodeFrame(i === 0 && j === batch.length ? batch : batch.slice(i, j), bytes);
        ws.send(frame, { binary: true });
        this.sentFrames++;
        this.sentMessages += count;
        this.sentBytes += frame.length;
      }
      i = j;
    }
  }

  private dropQueue(): void {
    if (this.queue.length > 0) this.drop('disconnected', this.queue.length);
    this.queue = [];
    this.queuedBytes = 0;
  }

  private drop(reason: DropReason, count: number): void {
    this.drops[reason] += count;
  }

  private warnDrop(reason: DropReason, fields: Record<string, number>, msg: string): void {
    if (this.dropWarnings.allow(reason)) {
      this.log.warn({ ...fields, dropped: this.drops[reason] }, msg);
    }
  }
}

/** Terminates a socket and resolves once it has emitted 'close' (at once if it already has). */
export function terminateAndWait(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.terminate();
  });
}

function zeroMask(mask: Buffer): void {
  mask.fill(0);
}
