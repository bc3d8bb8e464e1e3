// gRPC on the same port as the HTTP client API (etcd serves both on its client URL too), by looking at the
// first bytes of each connection:
// - the HTTP/2 client preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (gRPC over cleartext HTTP/2 with prior
//   knowledge: what etcdctl, etcd's Go client and grpc-js send) -> the connection is handed to the grpc-js
//   server (its connection injector: no port or socket of its own), through a stream that repairs on the way
//   an :authority that Node's HTTP/2 would refuse (etcd's Go client sends "http://host:port" for its
//   per-endpoint maintenance calls; ./h2-authority.ts);
// - anything else -> the bytes are put back and the socket is handed to the HTTP server as if it had
//   accepted it (JSON gateway, /health, /metrics, and WebSocket upgrades such as the native stream).
// The decision is taken as soon as the bytes differ from the preface, so an HTTP/1.1 request is never held
// back waiting for 24 bytes; a connection that sends nothing for 10 s is closed.
//
// (Until 2026-11-22 the gRPC connections were proxied to a grpc-js server on a Unix socket: a second hop of
// kernel copies and event-loop turns for every frame, which the benchmark's gRPC rows paid for.)

import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { listenOn } from '../listen';
import { AuthorityRepair } from './h2-authority';

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** How long a new connection may stay silent before it is closed. */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;

export interface GrpcListener {
  /** The port the client URL was bound to (the one asked for, or the one the system gave for port 0). */
  readonly port: number;
  /** Stops accepting, cuts every connection it accepted (the gRPC ones and those handed to the HTTP
   *  server, upgraded or not), closes the HTTP server (which never listened itself) and force-shuts the grpc
   *  server. Close the native stream server first for a graceful end of its WebSocket sessions. */
  close(): Promise<void>;
}

/** What `protocol` decided for a connection, from the bytes seen so far: undefined while undecided. */
export function classify(first: Buffer): 'grpc' | 'http' | undefined {
  const n = Math.min(first.length, HTTP2_PREFACE.length);
  if (first.compare(HTTP2_PREFACE, 0, n, 0, n) !== 0) return 'http';
  return first.length >= HTTP2_PREFACE.length ? 'grpc' : undefined;
}

/**
 * The client socket as grpc-js sees it: what the client sends passes through the :authority repair, what
 * the server writes goes straight to the socket. Flow control both ways: a full readable side pauses the
 * repair (and so the socket), the socket's write callbacks pace the server.
 */
function repairedConnection(socket: net.Socket, first: Buffer, cut: () => void): Duplex {
  const repair = new AuthorityRepair();
  const conn = new Duplex({
    read() {
      repair.resume();
    },
    write(chunk: Buffer, _enc, done) {
      socket.write(chunk, done);
    },
    writev(chunks: Array<{ chunk: Buffer }>, done) {
      for (let i = 0; i < chunks.length - 1; i++) socket.write(chunks[i].chunk);
      socket.write(chunks[chunks.length - 1].chunk, done);
    },
    final(done) {
      socket.end();
      done();
    },
    destroy(err, done) {
      socket.destroy();
      repair.destroy();
      done(err);
    },
  });
  repair.on('data', (b: Buffer) => {
    if (!conn.push(b)) repair.pause();
  });
  repair.on('end', () => conn.push(null));
  repair.on('error', cut);
  // The preface as it came; the frames after it through the repair.
  conn.push(first.subarray(0, HTTP2_PREFACE.length));
  repair.write(first.subarray(HTTP2_PREFACE.length));
  socket.pipe(repair);
  return conn;
}

export interface MuxOptions {
  /** How long a new connection may stay silent (default FIRST_BYTES_TIMEOUT_MS). */
  firstBytesTimeoutMs?: number;
}

export async function listenWithGrpc(
  url: string,
  httpServer: http.Server,
  grpcServer: grpc.Server,
  opts: MuxOptions = {},
): Promise<GrpcListener> {
  const silentMs = opts.firstBytesTimeoutMs ?? FIRST_BYTES_TIMEOUT_MS;
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  /** Every socket accepted and not closed yet. */
  const sockets = new Set<net.Socket>();
  let closing = false;

  const toGrpc = (socket: net.Socket, first: Buffer): void => {
    socket.setNoDelay(true);
    let conn: Duplex | undefined;
    // Either side closing or failing closes both: the other has nothing to talk to.
    const cut = (): void => {
      socket.destroy();
      conn?.destroy();
    };
    socket.on('error', cut);
    socket.on('close', cut);
    conn = repairedConnection(socket, first, cut);
    conn.on('error', cut);
    injector.injectConnection(conn);
    socket.resume();
  };

  const toHttp = (socket: net.Socket, first: Buffer): void => {
    socket.unshift(first);
    httpServer.emit('connection', socket);
    // node:http does not resume a socket that was paused before it got it; the bytes put back are the
    // first to be read, before anything still in the kernel's buffer.
    socket.resume();
  };

  const onConnection = (socket: net.Socket): void => {
    if (closing) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let first: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), silentMs);
    timer.unref();
    const onError = (): void => {
      // A reset before the first bytes: nothing to tell anyone.
      clearTimeout(timer);
    };
    const onData = (chunk: Buffer): void => {
      first = first.length === 0 ? chunk : Buffer.concat([first, chunk]);
      const kind = classify(first);
      if (kind === undefined) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
      if (kind === 'grpc') toGrpc(socket, first);
      else toHttp(socket, first);
    };
    const onClose = (): void => clearTimeout(timer);
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  };

  const netServer = net.createServer(onConnection);
  try {
    await listenOn(netServer, url, 'client');
  } catch (err) {
    injector.destroy();
    grpcServer.forceShutdown();
    throw err;
  }
  const port = (netServer.address() as net.AddressInfo).port;
  // node:http starts its connection tracking (closeAllConnections, and the headers / request timeouts that
  // guard against slow clients) when it starts listening; it never listens itself here.
  httpServer.emit('listening');

  return {
    port,
    close: async () => {
      if (closing) return;
      closing = true;
      const closed = new Promise<void>((resolve) => netServer.close(() => resolve()));
      httpServer.closeAllConnections();
      // Stops its connection tracking (it answers "not running", being no listener of its own).
      httpServer.close(() => undefined);
      for (const s of sockets) s.destroy();
      sockets.clear();
      injector.destroy();
      grpcServer.forceShutdown();
      await closed;
    },
  };
}
