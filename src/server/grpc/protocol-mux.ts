// gRPC on the same port as the HTTP client API (etcd serves both on its client URL too), by looking at the
// first bytes of each connection:
// - the HTTP/2 client preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" (gRPC over cleartext HTTP/2 with prior
//   knowledge: what etcdctl, etcd's Go client and grpc-js send) -> the connection is proxied, those bytes
//   included, to the grpc-js server, which listens on a Unix socket of its own in the temp dir (no TCP port:
//   an ephemeral port of its own could take one that another member is about to bind); on the way, an
//   :authority that Node's HTTP/2 would refuse (etcd's Go client sends "http://host:port" for its
//   per-endpoint maintenance calls) is repaired (./h2-authority.ts);
// - anything else -> the bytes are put back and the socket is handed to the HTTP server as if it had
//   accepted it (JSON gateway, /health, /metrics, and WebSocket upgrades such as the native stream).
// The decision is taken as soon as the bytes differ from the preface, so an HTTP/1.1 request is never held
// back waiting for 24 bytes; a connection that sends nothing for 10 s is closed.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { listenOn } from '../listen';
import { AuthorityRepair } from './h2-authority';

export const HTTP2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** How long a new connection may stay silent before it is closed. */
export const FIRST_BYTES_TIMEOUT_MS = 10_000;

export interface GrpcListener {
  /** The port the client URL was bound to (the one asked for, or the one the system gave for port 0). */
  readonly port: number;
  /** The grpc server's internal Unix socket (a path). */
  readonly grpcSocket: string;
  /** Stops accepting, cuts every connection it accepted (the proxied gRPC ones and those handed to the HTTP
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

const SOCKET_NAME = /^keel-grpc-(\d+)-[0-9a-f]+\.sock$/;

/** Removes the sockets that members killed without a chance to clean up (SIGKILL) left in `dir`: those whose
 *  process is gone. Best effort. */
function sweepStaleSockets(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = SOCKET_NAME.exec(name);
    if (m === null || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(dir, name), { force: true });
    }
  }
}

function bindGrpc(server: grpc.Server): Promise<string> {
  // Short, so that it fits a socket address (108 bytes) whatever the temp dir.
  const dir = os.tmpdir();
  sweepStaleSockets(dir);
  const socket = path.join(dir, `keel-grpc-${process.pid}-${randomBytes(6).toString('hex')}.sock`);
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) => {
      if (err) reject(new Error(`gRPC server: cannot listen on ${socket}: ${err.message}`));
      else resolve(socket);
    });
  });
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
  const grpcSocket = await bindGrpc(grpcServer);
  /** Every socket accepted and not closed yet; the proxied ones with their upstream. */
  const sockets = new Set<net.Socket>();
  let closing = false;

  const proxy = (socket: net.Socket, first: Buffer): void => {
    const upstream = net.connect({ path: grpcSocket });
    sockets.add(upstream);
    socket.setNoDelay(true);
    upstream.setNoDelay(true);
    const cut = (): void => {
      socket.destroy();
      upstream.destroy();
    };
    // Either side closing or failing closes both: the other has nothing to talk to.
    socket.on('error', cut);
    upstream.on('error', cut);
    socket.on('close', cut);
    upstream.on('close', () => {
      sockets.delete(upstream);
      cut();
    });
    // The preface as it came; the frames after it through the :authority repair (see ./h2-authority.ts).
    const repair = new AuthorityRepair();
    repair.on('error', cut);
    upstream.write(first.subarray(0, HTTP2_PREFACE.length));
    repair.write(first.subarray(HTTP2_PREFACE.length));
    socket.pipe(repair).pipe(upstream);
    upstream.pipe(socket);
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
      if (kind === 'grpc') proxy(socket, first);
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
    grpcServer.forceShutdown();
    fs.rmSync(grpcSocket, { force: true });
    throw err;
  }
  const port = (netServer.address() as net.AddressInfo).port;
  // node:http starts its connection tracking (closeAllConnections, and the headers / request timeouts that
  // guard against slow clients) when it starts listening; it never listens itself here.
  httpServer.emit('listening');

  return {
    port,
    grpcSocket,
    close: async () => {
      if (closing) return;
      closing = true;
      const closed = new Promise<void>((resolve) => netServer.close(() => resolve()));
      httpServer.closeAllConnections();
      // Stops its connection tracking (it answers "not running", being no listener of its own).
      httpServer.close(() => undefined);
      for (const s of sockets) s.destroy();
      sockets.clear();
      grpcServer.forceShutdown();
      await closed;
      fs.rmSync(grpcSocket, { force: true });
    },
  };
}
