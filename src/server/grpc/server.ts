// etcd's v3 gRPC API over a member's KvService, so that etcdctl 3.4, etcd's Go client and other etcd clients
// (the `etcd3` npm package) work against Keel unchanged. The messages are etcd's (proto/etcd/**, loaded by
// ./proto.ts, translated by ./convert.ts); requests are checked with src/kv/validate.ts as the gateway checks
// them, so a bad request gets etcd's error with nothing reaching the member.
//
// - KV, Lease (keep-alive as a bidirectional stream answered in order), Cluster (MemberUpdate:
//   Unimplemented), Maintenance (Snapshot: the member's backup in 32 KiB chunks) map one to one onto the
//   KvService methods.
// - Watch: one bidirectional stream carrying many watches, one WatchStream of the member per call, exactly
//   as the gateway's watch route uses it (./../gateway-streams.ts). Backpressure: the sink answers false
//   once grpc-js's write buffer is full, the member's watch hub then holds what follows, and the stream is
//   resumed on 'drain'. While it is backed up the call's requests wait too (reading stops once a few are
//   queued), so that every answer leaves in the order of the requests: a client matches "created" answers
//   to its creates by order.
// - Auth: every method answers Unimplemented (Keel has no authentication yet).
//
// Errors: a KvError becomes a gRPC status with its code and etcd's message; anything else is Internal with
// its message. Every call is counted in rpcMetrics under etcd's service and method names.

import * as grpc from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import {
  Errors,
  GrpcCode,
  KvError,
  MAX_REQUEST_BYTES,
  type KvService,
  type LeaseKeepAliveRequest,
  type MemberInfo,
  type ResponseHeader,
  type WatchCreateRequest,
  type WatchResponse,
  type WatchSink,
  type WatchStream,
} from '../../kv/api';
import {
  validateAlarm,
  validateCompaction,
  validateDelete,
  validateLeaseGrant,
  validateLeaseKeepAlive,
  validateLeaseRevoke,
  validateLeaseTimeToLive,
  validateMemberAdd,
  validateMemberId,
  validatePut,
  validateRange,
  validateTxn,
  validateWatchCreate,
} from '../../kv/validate';
import { RPCS, type RpcName } from '../metrics/rpc-names';
import type { CallEnd, RpcObserver } from '../metrics/rpc-observer';
import {
  alarmMemberPb,
  alarmRequest,
  deleteRangeRequest,
  deleteRangeResponsePb,
  headerPb,
  idFromUint64,
  int64,
  memberPb,
  putRequest,
  putResponsePb,
  rangeRequest,
  rangeResponsePb,
  statusResponsePb,
  txnRequest,
  txnResponsePb,
  watchCreateRequest,
  watchResponsePb,
  type AlarmRequestPb,
  type CompactionRequestPb,
  type DeleteRangeRequestPb,
  type HashKVRequestPb,
  type LeaseGrantRequestPb,
  type LeaseIdRequestPb,
  type LeaseTimeToLiveRequestPb,
  type MemberAddRequestPb,
  type MemberIdRequestPb,
  type MoveLeaderRequestPb,
  type PutRequestPb,
  type RangeRequestPb,
  type TxnRequestPb,
  type WatchRequestPb,
} from './convert';
import { etcdServices } from './proto';

export interface GrpcServerOptions {
  logger?: Logger;
  /** Counts every call as etcd's gRPC server does (MemberMetrics.rpc). */
  rpcMetrics?: RpcObserver;
}

/** What etcd's gRPC server accepts: --max-request-bytes plus 512 KiB of gRPC overhead (etcd's
 *  grpcOverheadBytes). Requests between MAX_REQUEST_BYTES and this get etcd's "request is too large" from
 *  the checks; larger ones are refused by grpc-js (ResourceExhausted), as by grpc-go. */
export const GRPC_MAX_RECEIVE_BYTES = MAX_REQUEST_BYTES + 512 * 1024;
/** etcd: math.MaxInt32. */
export const GRPC_MAX_SEND_BYTES = 0x7fffffff;
/** etcd's snapshotSendBufferSize. */
export const SNAPSHOT_CHUNK_BYTES = 32 * 1024;
/** Keep-alive or watch requests read ahead of their answers before the call stops reading. */
const MAX_QUEUED_REQUESTS = 16;

export const MEMBER_UPDATE_UNSUPPORTED = 'etcdserver: member update is not supported by Keel';
export const AUTH_UNSUPPORTED = 'etcdserver: authentication is not supported by Keel';

const AUTH_METHODS = [
  'AuthEnable',
  'AuthDisable',
  'Authenticate',
  'UserAdd',
  'UserGet',
  'UserList',
  'UserDelete',
  'UserChangePassword',
  'UserGrantRole',
  'UserRevokeRole',
  'RoleAdd',
  'RoleGet',
  'RoleList',
  'RoleDelete',
  'RoleGrantPermission',
  'RoleRevokePermission',
] as const;

/** The status a failed call ends with. */
interface Status {
  code: number;
  details: string;
}

export function statusOf(err: unknown): Status {
  if (err instanceof KvError) return { code: err.code, details: err.message };
  return { code: GrpcCode.Internal, details: err instanceof Error ? err.message : String(err) };
}

/** A status as grpc-js takes it from a handler (its Status enum has the same numbers as GrpcCode). */
function serviceError(s: Status): grpc.ServerErrorResponse {
  return Object.assign(new Error(s.details), { code: s.code as grpc.status, details: s.details });
}

const ignore: CallEnd = () => undefined;

export function createGrpcServer(svc: KvService, opts: GrpcServerOptions = {}): grpc.Server {
  const log = opts.logger ?? pino({ level: 'silent' });
  const observer = opts.rpcMetrics;
  const begin = (rpc: RpcName): CallEnd => (observer === undefined ? ignore : observer.begin(rpc));

  const logFailure = (rpc: RpcName, err: unknown): void => {
    if (err instanceof KvError) log.debug({ rpc: rpc.method, code: err.code, err: err.message }, 'gRPC call failed');
    else log.error({ rpc: rpc.method, err }, 'gRPC call failed with an unexpected error');
  };

  /** A unary method: decode + check (throwing is fine), call the member, encode. */
  function unary<Req>(rpc: RpcName, handle: (req: Req) => Promise<object>): grpc.handleUnaryCall<Req, object> {
    return (call, callback) => {
      const end = begin(rpc);
      let pending: Promise<object>;
      try {
        pending = handle(call.request);
      } catch (err) {
        pending = Promise.reject(err);
      }
      pending.then(
        (resp) => {
          end(GrpcCode.OK);
          callback(null, resp);
        },
        (err: unknown) => {
          logFailure(rpc, err);
          const status = statusOf(err);
          end(status.code);
          callback(serviceError(status));
        },
      );
    };
  }

  /** A method Keel does not serve. */
  function unimplemented(rpc: RpcName, message: string): grpc.handleUnaryCall<unknown, object> {
    return (_call, callback) => {
      begin(rpc)(GrpcCode.Unimplemented);
      callback(serviceError({ code: GrpcCode.Unimplemented, details: message }));
    };
  }

  const header = (h: ResponseHeader): { header: object } => ({ header: headerPb(h) });

  // ---- KV ------------------------------------------------------------------------------------------------

  const kv: grpc.UntypedServiceImplementation = {
    Range: unary(RPCS.range, async (m: RangeRequestPb) => {
      const req = rangeRequest(m);
      validateRange(req);
      return rangeResponsePb(await svc.range(req));
    }),
    Put: unary(RPCS.put, async (m: PutRequestPb) => {
      const req = putRequest(m);
      validatePut(req);
      return putResponsePb(await svc.put(req));
    }),
    DeleteRange: unary(RPCS.deleteRange, async (m: DeleteRangeRequestPb) => {
      const req = deleteRangeRequest(m);
      validateDelete(req);
      return deleteRangeResponsePb(await svc.deleteRange(req));
    }),
    Txn: unary(RPCS.txn, async (m: TxnRequestPb) => {
      const req = txnRequest(m);
      validateTxn(req);
      return txnResponsePb(await svc.txn(req));
    }),
    Compact: unary(RPCS.compact, async (m: CompactionRequestPb) => {
      const req = { revision: int64(m.revision, 'compaction revision'), physical: m.physical };
      validateCompaction(req);
      return header((await svc.compact(req)).header);
    }),
  };

  // ---- Lease ---------------------------------------------------------------------------------------------

  const lease: grpc.UntypedServiceImplementation = {
    LeaseGrant: unary(RPCS.leaseGrant, async (m: LeaseGrantRequestPb) => {
      const req: { ttl: number; id?: number } = { ttl: int64(m.TTL, 'lease TTL') };
      const id = int64(m.ID, 'lease ID');
      if (id !== 0) req.id = id;
      validateLeaseGrant(req);
      const r = await svc.leaseGrant(req);
      return { ...header(r.header), ID: r.id, TTL: r.ttl, error: '' };
    }),
    LeaseRevoke: unary(RPCS.leaseRevoke, async (m: LeaseIdRequestPb) => {
      const req = { id: int64(m.ID, 'lease ID') };
      validateLeaseRevoke(req);
      return header((await svc.leaseRevoke(req)).header);
    }),
    LeaseKeepAlive: (call: grpc.ServerDuplexStream<LeaseIdRequestPb, object>) => keepAlive(call),
    LeaseTimeToLive: unary(RPCS.leaseTimeToLive, async (m: LeaseTimeToLiveRequestPb) => {
      const req: { id: number; keys?: boolean } = { id: int64(m.ID, 'lease ID') };
      if (m.keys) req.keys = true;
      validateLeaseTimeToLive(req);
      const r = await svc.leaseTimeToLive(req);
      return { ...header(r.header), ID: r.id, TTL: r.ttl, grantedTTL: r.grantedTtl, keys: r.keys };
    }),
    LeaseLeases: unary(RPCS.leaseLeases, async () => {
      const r = await svc.leaseLeases();
      return { ...header(r.header), leases: r.leases.map((l) => ({ ID: l.id })) };
    }),
  };

  /**
   * Each request is answered with the lease's new TTL (0: the lease does not exist, as etcd), in order.
   * The call ends when the client has ended its side and every request is answered; a failure (no leader,
   * ...) ends it with that error, as etcd's server does.
   */
  function keepAlive(call: grpc.ServerDuplexStream<LeaseIdRequestPb, object>): void {
    const end = begin(RPCS.leaseKeepAlive);
    let done = false;
    let queued = 0;
    let chain: Promise<void> = Promise.resolve();

    const finish = (status: Status | undefined): void => {
      if (done) return;
      done = true;
      end(status === undefined ? GrpcCode.OK : status.code);
      if (status === undefined) call.end();
      else call.emit('error', serviceError(status));
    };
    const fail = (err: unknown): void => {
      if (done) return;
      logFailure(RPCS.leaseKeepAlive, err);
      finish(statusOf(err));
    };
    // Requests are read while few wait for their answer and the answers are being taken: a client that
    // sends without reading is pushed back by HTTP/2 flow control, and nothing here grows without bound.
    const flow = (): void => {
      if (done) return;
      if (queued >= MAX_QUEUED_REQUESTS || call.writableNeedDrain) call.pause();
      else call.resume();
    };
    call.on('drain', flow);
    call.on('cancelled', () => {
      if (done) return;
      done = true;
      end(GrpcCode.Canceled);
    });
    call.on('data', (m: LeaseIdRequestPb) => {
      if (done) return;
      let req: LeaseKeepAliveRequest;
      try {
        req = { id: int64(m.ID, 'lease ID') };
        validateLeaseKeepAlive(req);
      } catch (err) {
        // Answered in order, after the keep-alives before it.
        chain = chain.then(() => fail(err));
        return;
      }
      queued++;
      flow();
      chain = chain
        .then(async () => {
          if (done) return;
          const r = await svc.leaseKeepAlive(req);
          if (!done) call.write({ ...header(r.header), ID: r.id, TTL: r.ttl });
        })
        .catch(fail)
        .finally(() => {
          queued--;
          flow();
        });
    });
    // The client ended its side (or reset the stream: Node's HTTP/2 reports a reset as the end of the
    // request stream too, and grpc-js's 'cancelled' comes later; a reset with keep-alives still being
    // served is counted as Canceled, one after the last answer as OK).
    call.on('end', () => {
      void chain.then(() => finish(undefined));
    });
  }

  // ---- Watch ---------------------------------------------------------------------------------------------

  function watch(call: grpc.ServerDuplexStream<WatchRequestPb, object>): void {
    const end = begin(RPCS.watch);
    let stream: WatchStream | undefined;
    let closed = false;
    /** The last sink call answered false and no 'drain' came since: the hub holds responses. */
    let backedUp = false;
    /** Requests not served yet: they wait while the stream is backed up. */
    const pending: WatchRequestPb[] = [];
    /** The header of the last response, for answers this server makes itself. */
    let lastHeader: ResponseHeader = { clusterId: '', memberId: '', revision: 0, raftTerm: 0 };

    const close = (status: Status | undefined, code: GrpcCode): void => {
      if (closed) return;
      closed = true;
      pending.length = 0;
      stream?.close();
      end(code);
      if (status !== undefined) call.emit('error', serviceError(status));
    };
    const fail = (err: unknown): void => {
      if (closed) return;
      logFailure(RPCS.watch, err);
      const status = statusOf(err);
      close(status, status.code);
    };

    const write = (resp: WatchResponse): boolean => {
      lastHeader = resp.header;
      if (!call.write(watchResponsePb(resp))) backedUp = true;
      return !backedUp;
    };

    const sink: WatchSink = (resp) => {
      if (closed) return false;
      try {
        return write(resp);
      } catch (err) {
        // Called from the hub: answer it, and end the call outside of its call.
        queueMicrotask(() => fail(new KvError(GrpcCode.Internal, `watch: cannot encode a response: ${messageOf(err)}`)));
        return false;
      }
    };

    const open = (): WatchStream => {
      if (stream === undefined) stream = svc.watch(sink); // may throw (member starting): ends the call
      return stream;
    };

    const serve = (m: WatchRequestPb): void => {
      switch (m.request_union) {
        case 'create_request': {
          let req: WatchCreateRequest;
          try {
            req = watchCreateRequest(m.create_request!);
            validateWatchCreate(req);
          } catch (err) {
            if (!(err instanceof KvError)) throw err;
            // As etcd answers a watch it cannot create: created and canceled at once, with the reason, on
            // the stream (the stream and its other watches go on).
            write({ header: lastHeader, watchId: -1, created: true, canceled: true, cancelReason: err.message, events: [] });
            return;
          }
          open().create(req);
          return;
        }
        case 'cancel_request': {
          const id = Number(m.cancel_request!.watch_id);
          // An id that is no watch's is not answered (as etcd).
          if (Number.isSafeInteger(id)) open().cancel(id);
          return;
        }
        case 'progress_request':
          open().requestProgress();
          return;
        default:
          // etcd ignores a request with none of the three set.
          return;
      }
    };

    const pump = (): void => {
      try {
        while (!closed && !backedUp && pending.length > 0) serve(pending.shift()!);
      } catch (err) {
        fail(err);
        return;
      }
      if (closed) return;
      if (pending.length >= MAX_QUEUED_REQUESTS) call.pause();
      else call.resume();
    };

    call.on('data', (m: WatchRequestPb) => {
      if (closed) return;
      pending.push(m);
      pump();
    });
    call.on('drain', () => {
      if (closed) return;
      backedUp = false;
      stream?.resume();
      pump();
    });
    // The client ended its side: its watches go on until it cancels the call (as etcd's recvLoop ends on
    // EOF without ending the stream).
    call.on('end', () => undefined);
    call.on('cancelled', () => close(undefined, GrpcCode.Canceled));
  }

  // ---- Cluster -------------------------------------------------------------------------------------------

  const members = (r: { header: ResponseHeader; members: MemberInfo[] }): object => ({
    ...header(r.header),
    members: r.members.map(memberPb),
  });

  const cluster: grpc.UntypedServiceImplementation = {
    MemberAdd: unary(RPCS.memberAdd, async (m: MemberAddRequestPb) => {
      const req: { peerUrls: string[]; isLearner?: boolean } = { peerUrls: m.peerURLs };
      if (m.isLearner) req.isLearner = true;
      validateMemberAdd(req);
      const r = await svc.memberAdd(req);
      return { ...members(r), member: memberPb(r.member) };
    }),
    MemberRemove: unary(RPCS.memberRemove, async (m: MemberIdRequestPb) => {
      const req = { id: idFromUint64(m.ID, 'member ID') };
      validateMemberId(req);
      return members(await svc.memberRemove(req));
    }),
    MemberUpdate: unimplemented(RPCS.memberUpdate, MEMBER_UPDATE_UNSUPPORTED),
    // etcd 3.4's MemberList has no request fields and answers from the member's own registry.
    MemberList: unary(RPCS.memberList, async () => members(await svc.memberList({}))),
    MemberPromote: unary(RPCS.memberPromote, async (m: MemberIdRequestPb) => {
      const req = { id: idFromUint64(m.ID, 'member ID') };
      validateMemberId(req);
      return members(await svc.memberPromote(req));
    }),
  };

  // ---- Maintenance ---------------------------------------------------------------------------------------

  const maintenance: grpc.UntypedServiceImplementation = {
    Alarm: unary(RPCS.alarm, async (m: AlarmRequestPb) => {
      const req = alarmRequest(m);
      validateAlarm(req);
      const r = await svc.alarm(req);
      return { ...header(r.header), alarms: r.alarms.map(alarmMemberPb) };
    }),
    Status: unary(RPCS.status, async () => statusResponsePb(await svc.status())),
    Defragment: unary(RPCS.defragment, async () => header((await svc.defragment()).header)),
    Hash: unary(RPCS.hash, async () => {
      const r = await svc.hash();
      return { ...header(r.header), hash: r.hash };
    }),
    HashKV: unary(RPCS.hashKV, async (m: HashKVRequestPb) => {
      const revision = int64(m.revision, 'revision');
      if (revision < 0) throw Errors.invalid(`invalid revision ${revision} (must be >= 0)`);
      const r = await svc.hashKV({ revision });
      return { ...header(r.header), hash: r.hash, compact_revision: r.compactRevision };
    }),
    Snapshot: (call: grpc.ServerWritableStream<unknown, object>) => snapshot(call),
    MoveLeader: unary(RPCS.moveLeader, async (m: MoveLeaderRequestPb) => {
      const targetId = idFromUint64(m.targetID, 'targetID');
      validateMemberId({ id: targetId });
      return header((await svc.moveLeader({ targetId })).header);
    }),
  };

  /** The member's backup (keel snapshot save's file format) in chunks of 32 KiB, each with the header and
   *  the bytes still to come after it; an empty backup is one empty chunk. */
  function snapshot(call: grpc.ServerWritableStream<unknown, object>): void {
    const end = begin(RPCS.snapshot);
    let cancelled = false;
    let wake: (() => void) | undefined;
    call.on('cancelled', () => {
      cancelled = true;
      end(GrpcCode.Canceled);
      wake?.();
    });
    call.on('drain', () => wake?.());
    const writable = (): Promise<void> =>
      new Promise((resolve) => {
        wake = () => {
          wake = undefined;
          resolve();
        };
      });
    void (async () => {
      const snap = await svc.snapshot();
      const data = Buffer.from(snap.data.buffer, snap.data.byteOffset, snap.data.byteLength);
      const h = headerPb(snap.header);
      let sent = 0;
      do {
        if (cancelled) return;
        const n = Math.min(SNAPSHOT_CHUNK_BYTES, data.length - sent);
        const blob = data.subarray(sent, sent + n);
        sent += n;
        if (!call.write({ header: h, remaining_bytes: data.length - sent, blob })) await writable();
      } while (sent < data.length);
      if (cancelled) return;
      end(GrpcCode.OK);
      call.end();
    })().catch((err: unknown) => {
      if (cancelled) return;
      logFailure(RPCS.snapshot, err);
      const status = statusOf(err);
      end(status.code);
      call.emit('error', serviceError(status));
    });
  }

  // ---- Auth ----------------------------------------------------------------------------------------------

  const auth: grpc.UntypedServiceImplementation = {};
  for (const method of AUTH_METHODS) {
    auth[method] = unimplemented({ service: 'etcdserverpb.Auth', method, type: 'unary' }, AUTH_UNSUPPORTED);
  }

  const server = new grpc.Server({
    'grpc.max_receive_message_length': GRPC_MAX_RECEIVE_BYTES,
    'grpc.max_send_message_length': GRPC_MAX_SEND_BYTES,
  });
  const services = etcdServices();
  server.addService(services.KV, kv);
  server.addService(services.Watch, { Watch: watch as grpc.UntypedHandleCall });
  server.addService(services.Lease, lease);
  server.addService(services.Cluster, cluster);
  server.addService(services.Maintenance, maintenance);
  server.addService(services.Auth, auth);
  return server;
}


function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
