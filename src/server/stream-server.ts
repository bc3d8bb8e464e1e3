// The native stream's listener side: takes WebSocket upgrades at /v3/stream on the member's client HTTP
// server and runs one StreamSession (src/server/stream-session.ts) per connection. Protocol:
// src/kv/stream-protocol.ts.

import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import pino, { type Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { KvService } from '../kv/api';
import { CloseCode, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_IN_FLIGHT, STREAM_PATH } from '../kv/stream-protocol';
import type { RpcObserver } from './metrics/rpc-observer';
import { StreamSession, type SessionSettings } from './stream-session';
import { positive, refuseUpgrade } from '../util/upgrade-refusal';

export interface StreamServerOptions {
  logger?: Logger;
  /** Request frames above this are answered with "request is too large"; above twice this the connection
   *  is closed (1009) without reading the frame. Default: the request size limit + 64 KiB. */
  maxFrameBytes?: number;
  /** Requests in flight per connection; beyond, answered with "too many requests". Default 1024. */
  maxInFlight?: number;
  /** Outgoing bytes buffered on a connection above which it stops reading requests and holds watch
   *  responses. Default 4 MiB. */
  highWaterBytes?: number;
  /** ... until the buffer is back under this. Default a quarter of highWaterBytes. */
  lowWaterBytes?: number;
  /** Clients are pinged this often; one that has not answered the previous ping is cut. Default 15000. */
  pingIntervalMs?: number;
  /** Counts every request as the etcd gRPC call it stands for (MemberMetrics.rpc). */
  rpcMetrics?: RpcObserver;
}

export interface StreamServer {
  /** Open connections. */
  readonly connections: number;
  /** Stops taking connections and closes every open one (code 1001), cutting those that do not answer.
   *  Idempotent. */
  close(): Promise<void>;
}

type UpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Serves the native stream on `server` (the member's client listener). Upgrade requests for other paths
 *  are answered 404, unless another 'upgrade' listener is attached to the server (then they are its). */
export function attachStreamServer(server: http.Server, svc: KvService, opts: StreamServerOptions = {}): StreamServer {
  return new NativeStreamServer(server, svc, opts);
}

class NativeStreamServer implements StreamServer {
  private readonly log: Logger;
  private readonly settings: SessionSettings;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Set<StreamSession>();
  private readonly listener: UpgradeListener;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly server: http.Server,
    private readonly svc: KvService,
    opts: StreamServerOptions,
  ) {
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'stream' });
    const maxFrameBytes = positive('maxFrameBytes', opts.maxFrameBytes, DEFAULT_MAX_FRAME_BYTES);
    const highWaterBytes = positive('highWaterBytes', opts.highWaterBytes, 4 * 1024 * 1024);
    const lowWaterBytes = positive('lowWaterBytes', opts.lowWaterBytes, Math.floor(highWaterBytes / 4));
    if (lowWaterBytes > highWaterBytes) throw new RangeError('lowWaterBytes must not exceed highWaterBytes');
    this.settings = {
      maxFrameBytes,
      maxInFlight: positive('maxInFlight', opts.maxInFlight, DEFAULT_MAX_IN_FLIGHT),
      highWaterBytes,
      lowWaterBytes,
      drainPollMs: 5,
      pingIntervalMs: positive('pingIntervalMs', opts.pingIntervalMs, 15_000),
      rpcMetrics: opts.rpcMetrics,
    };
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      // Frames between maxFrameBytes and this are read only to answer them "too large" by id; beyond it
      // ws closes the connection (1009) before buffering the frame.
      maxPayload: 2 * maxFrameBytes,
      clientTracking: false,
    });
    this.listener = (req, socket, head) => this.onUpgrade(req, socket, head);
    server.on('upgrade', this.listener);
  }

  get connections(): number {
    return this.sessions.size;
  }

  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.server.off('upgrade', this.listener);
    const waits = [...this.sessions].map((s) => s.close(CloseCode.goingAway, 'member shutting down'));
    this.closing = Promise.all(waits).then(() => {
      this.wss.close();
    });
    return this.closing;
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== STREAM_PATH) {
      // Another listener (a later API on the same port) may own this path; answer only if there is none.
      if (this.server.listenerCount('upgrade') > 1) return;
      socket.on('error', () => undefined);
      refuseUpgrade(socket, 404, `no WebSocket endpoint at ${path.slice(0, 100)}; the native stream is at ${STREAM_PATH}`);
      return;
    }
    // From 'upgrade' on the socket is ours, errors included: an unhandled one would crash the member.
    socket.on('error', (err) => this.log.debug({ err: err.message }, 'stream socket error'));
    if (this.closing !== undefined) {
      refuseUpgrade(socket, 503, 'this member is shutting down');
      return;
    }
    if (socket instanceof net.Socket) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 10_000);
    }
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      if (this.closing !== undefined) {
        ws.terminate();
        return;
      }
      const session = new StreamSession(ws, this.svc, this.settings, this.log.child({ remote }));
      this.sessions.add(session);
      this.log.debug({ remote }, 'stream connection opened');
      void session.done.then(() => {
        this.sessions.delete(session);
        this.log.debug({ remote }, 'stream connection closed');
      });
    });
  }
}

