// How the two client APIs report the calls they serve, counted as etcd's gRPC server counts its calls
// (go-grpc-prometheus: one "started" when a call begins, one "handled" with its code when it ends). The
// observer itself (prom-client) is in grpc-metrics.ts; this file only needs the names, so the gateway and
// the stream session run the same whether metrics are on or not.

import type http from 'node:http';
import { GrpcCode } from '../../kv/api';
import { codeFromHttpStatus } from '../../kv/gateway/errors-json';
import type { StreamMethod } from '../../kv/stream-protocol';
import type { Handler } from '../json';
import { GATEWAY_RPCS, RPCS, STREAM_UNARY_RPCS, codeOfError, type RpcName } from './rpc-names';

/** Records the end of one call with the gRPC code it ended with; later calls are ignored. */
export type CallEnd = (code: GrpcCode) => void;

export interface RpcObserver {
  /** A call of `rpc` (a unary request, or a whole stream) began. */
  begin(rpc: RpcName): CallEnd;
}

const ignore: CallEnd = () => undefined;

const WATCH_FRAMES = new Set<StreamMethod>(['watchCreate', 'watchCancel', 'watchProgress']);

/**
 * Wraps a gateway route's handler so that the call it stands for is counted; routes that stand for no gRPC
 * method (health, version, metrics) are returned as they are. The call ends when the answer is closed, with:
 * the code of the error the handler threw or rejected with; Canceled when the connection closed before the
 * answer was complete (the client went away: as etcd's watch streams usually end); the code of the HTTP
 * status of an error answer (a stream refused at its first message); OK otherwise. An error that ends a
 * stream after its first response (the error chunk of a 200 answer) cannot be told from outside the
 * streaming handlers and counts as OK.
 */
export function countGatewayCalls(observer: RpcObserver | undefined, path: string, handler: Handler): Handler {
  const rpc = GATEWAY_RPCS.get(path);
  if (observer === undefined || rpc === undefined) return handler;
  return (req, res) => {
    const end = observer.begin(rpc);
    let failure: GrpcCode | undefined;
    // 'close' comes after the server's own error answer for a thrown or rejected handler, so the code of
    // that error is known by then.
    res.once('close', () => end(failure ?? outcomeOf(res)));
    let done: void | Promise<void>;
    try {
      done = handler(req, res);
    } catch (err) {
      failure = codeOfError(err);
      throw err;
    }
    if (!(done instanceof Promise)) return done;
    return done.catch((err: unknown) => {
      failure = codeOfError(err);
      throw err;
    });
  };
}

function outcomeOf(res: http.ServerResponse): GrpcCode {
  if (!res.writableFinished) return GrpcCode.Canceled;
  return res.statusCode < 400 ? GrpcCode.OK : codeFromHttpStatus(res.statusCode);
}

/**
 * The calls of one native stream connection. Its unary requests are one call each. Its watch frames are
 * messages of one Watch stream and its keep-alive frames messages of one LeaseKeepAlive stream, each begun
 * at the first such frame and ended when the connection closes: what etcd's Go client opens on one gRPC
 * connection, so etcd's "active streams" panels (started - handled) read the same.
 */
export class SessionRpcs {
  private watchStream: CallEnd | undefined;
  private keepAliveStream: CallEnd | undefined;

  constructor(private readonly observer: RpcObserver | undefined) {}

  /** A request frame of `method` is being served (or refused): its unary call's end, if it is one. */
  request(method: StreamMethod): CallEnd {
    const observer = this.observer;
    if (observer === undefined) return ignore;
    const unary = STREAM_UNARY_RPCS[method];
    if (unary !== undefined) return observer.begin(unary);
    if (method === 'leaseKeepAlive') this.keepAliveStream ??= observer.begin(RPCS.leaseKeepAlive);
    else if (WATCH_FRAMES.has(method)) this.watchStream ??= observer.begin(RPCS.watch);
    // A method with no etcd counterpart is not counted.
    return ignore;
  }

  /** The connection closed: its streams end with `code`. */
  close(code: GrpcCode): void {
    this.watchStream?.(code);
    this.keepAliveStream?.(code);
  }
}
