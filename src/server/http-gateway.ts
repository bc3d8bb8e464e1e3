// The client HTTP listener of a member: etcd's gRPC-gateway JSON routes (/v3/kv/..., /v3/lease/...,
// /v3/watch, /v3/maintenance/status and alarm, /v3/cluster/member/...) plus /health and /version, on plain node:http. The JSON translation is
// in src/kv/gateway-json.ts, the checks in src/kv/validate.ts: every request is parsed and checked here
// before it reaches the member, so a bad one gets its error with nothing proposed (the member checks again,
// for the requests that come by other ways). The streaming routes are in ./gateway-streams.ts.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { GrpcCode, KvError, type HealthResponse, type KvService } from '../kv/api';
import {
  alarmResponseToJson,
  compactionResponseToJson,
  deleteRangeResponseToJson,
  healthToJson,
  leaseGrantResponseToJson,
  leaseLeasesResponseToJson,
  leaseRevokeResponseToJson,
  leaseTimeToLiveResponseToJson,
  memberAddResponseToJson,
  memberListResponseToJson,
  memberPromoteResponseToJson,
  memberRemoveResponseToJson,
  parseAlarmRequest,
  parseCompactionRequest,
  parseDeleteRangeRequest,
  parseLeaseGrantRequest,
  parseLeaseLeasesRequest,
  parseLeaseRevokeRequest,
  parseLeaseTimeToLiveRequest,
  parseMemberAddRequest,
  parseMemberListRequest,
  parseMemberPromoteRequest,
  parseMemberRemoveRequest,
  parsePutRequest,
  parseRangeRequest,
  parseStatusRequest,
  parseTxnRequest,
  putResponseToJson,
  rangeResponseToJson,
  statusResponseToJson,
  txnResponseToJson,
} from '../kv/gateway-json';
import {
  validateAlarm,
  validateCompaction,
  validateDelete,
  validateLeaseGrant,
  validateLeaseRevoke,
  validateLeaseTimeToLive,
  validateMemberAdd,
  validateMemberId,
  validatePut,
  validateRange,
  validateTxn,
} from '../kv/validate';
import { leaseKeepAliveHandler, watchHandler } from './gateway-streams';
import { parseJson, readBody, sendError, sendJson, sendKvError, type Handler } from './json';
import { countGatewayCalls, type RpcObserver } from './metrics/rpc-observer';

/** A route another module adds to the client listener (/metrics, cluster membership, ...). It gets the
 *  request unread, so that it can stream; src/server/json.ts has helpers for JSON bodies and answers. */
export interface ExtraRoute {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Exact path, without query string. */
  path: string;
  handle(req: http.IncomingMessage, res: http.ServerResponse): void | Promise<void>;
}

export interface ClientServerOptions {
  logger?: Logger;
  extraRoutes?: ExtraRoute[];
  /** Counts every request of a route that stands for one of etcd's gRPC methods (MemberMetrics.rpc). */
  rpcMetrics?: RpcObserver;
}

/** What etcd reports, so that etcd tooling that checks versions accepts us; `keel` is our own. */
export const ETCD_SERVER_VERSION = '3.4.0-keel';
export const ETCD_CLUSTER_VERSION = '3.4.0';

let keelVersion: string | undefined;
/** package.json is two levels up from both src/server and dist/server. */
export function packageVersion(): string {
  if (keelVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as {
        version?: unknown;
      };
      keelVersion = typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      keelVersion = 'unknown';
    }
  }
  return keelVersion;
}

/** A unary POST route of the gateway: JSON body -> internal request -> checks -> service -> JSON answer. */
function rpc<Req, Resp>(
  parse: (body: unknown) => Req,
  validate: (req: Req) => void,
  call: (req: Req) => Promise<Resp>,
  toJson: (resp: Resp) => unknown,
): Handler {
  return async (req, res) => {
    const request = parse(parseJson(await readBody(req)));
    validate(request);
    sendJson(res, 200, toJson(await call(request)));
  };
}

const noChecks = (): void => undefined;

export function createClientServer(svc: KvService, opts: ClientServerOptions = {}): http.Server {
  const log = opts.logger ?? pino({ level: 'silent' });
  // path -> method -> handler
  const routes = new Map<string, Map<string, Handler>>();
  const add = (method: string, p: string, h: Handler): void => {
    let byMethod = routes.get(p);
    if (byMethod === undefined) routes.set(p, (byMethod = new Map()));
    if (byMethod.has(method)) throw new Error(`client server: route ${method} ${p} is defined twice`);
    byMethod.set(method, countGatewayCalls(opts.rpcMetrics, p, h));
  };

  add('POST', '/v3/kv/range', rpc(parseRangeRequest, validateRange, (r) => svc.range(r), rangeResponseToJson));
  add('POST', '/v3/kv/put', rpc(parsePutRequest, validatePut, (r) => svc.put(r), putResponseToJson));
  add(
    'POST',
    '/v3/kv/deleterange',
    rpc(parseDeleteRangeRequest, validateDelete, (r) => svc.deleteRange(r), deleteRangeResponseToJson),
  );
  add('POST', '/v3/kv/txn', rpc(parseTxnRequest, validateTxn, (r) => svc.txn(r), txnResponseToJson));
  add(
    'POST',
    '/v3/kv/compaction',
    rpc(parseCompactionRequest, validateCompaction, (r) => svc.compact(r), compactionResponseToJson),
  );

  add('POST', '/v3/watch', watchHandler(svc, log));

  // The lease routes, with the /v3/kv/lease/... aliases etcd 3.4 registers for revoke, timetolive and
  // leases (additional_bindings in its rpc.proto; grant and keepalive have none).
  add(
    'POST',
    '/v3/lease/grant',
    rpc(parseLeaseGrantRequest, validateLeaseGrant, (r) => svc.leaseGrant(r), leaseGrantResponseToJson),
  );
  const revoke = rpc(
    parseLeaseRevokeRequest,
    validateLeaseRevoke,
    (r) => svc.leaseRevoke(r),
    leaseRevokeResponseToJson,
  );
  add('POST', '/v3/lease/revoke', revoke);
  add('POST', '/v3/kv/lease/revoke', revoke);
  add('POST', '/v3/lease/keepalive', leaseKeepAliveHandler(svc, log));
  const timeToLive = rpc(
    parseLeaseTimeToLiveRequest,
    validateLeaseTimeToLive,
    (r) => svc.leaseTimeToLive(r),
    leaseTimeToLiveResponseToJson,
  );
  add('POST', '/v3/lease/timetolive', timeToLive);
  add('POST', '/v3/kv/lease/timetolive', timeToLive);
  const leases = rpc(parseLeaseLeasesRequest, noChecks, () => svc.leaseLeases(), leaseLeasesResponseToJson);
  add('POST', '/v3/lease/leases', leases);
  add('POST', '/v3/kv/lease/leases', leases);

  add('POST', '/v3/maintenance/status', rpc(parseStatusRequest, noChecks, () => svc.status(), statusResponseToJson));
  add('POST', '/v3/maintenance/alarm', rpc(parseAlarmRequest, validateAlarm, (r) => svc.alarm(r), alarmResponseToJson));

  // Cluster membership. Counted in the request metrics as etcdserverpb.Cluster/Member* (by path, like every
  // route: see GATEWAY_RPCS in ./metrics/rpc-names.ts).
  add(
    'POST',
    '/v3/cluster/member/list',
    rpc(parseMemberListRequest, noChecks, (r) => svc.memberList(r), memberListResponseToJson),
  );
  add(
    'POST',
    '/v3/cluster/member/add',
    rpc(parseMemberAddRequest, validateMemberAdd, (r) => svc.memberAdd(r), memberAddResponseToJson),
  );
  add(
    'POST',
    '/v3/cluster/member/remove',
    rpc(parseMemberRemoveRequest, validateMemberId, (r) => svc.memberRemove(r), memberRemoveResponseToJson),
  );
  add(
    'POST',
    '/v3/cluster/member/promote',
    rpc(parseMemberPromoteRequest, validateMemberId, (r) => svc.memberPromote(r), memberPromoteResponseToJson),
  );
  add('GET', '/health', async (_req, res) => {
    let health: HealthResponse;
    try {
      health = await svc.health();
    } catch (err) {
      health = { health: false, reason: (err as Error).message };
    }
    sendJson(res, health.health ? 200 : 503, healthToJson(health));
  });
  add('GET', '/version', (_req, res) => {
    sendJson(res, 200, { etcdserver: ETCD_SERVER_VERSION, etcdcluster: ETCD_CLUSTER_VERSION, keel: packageVersion() });
  });
  for (const r of opts.extraRoutes ?? []) add(r.method, r.path, (req, res) => r.handle(req, res));

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    const byMethod = routes.get(pathname);
    if (byMethod === undefined) {
      req.resume();
      sendError(res, 404, GrpcCode.NotFound, 'Not Found');
      return;
    }
    const handler = byMethod.get(method);
    if (handler === undefined) {
      req.resume();
      res.setHeader('Allow', [...byMethod.keys()].join(', '));
      sendError(res, 405, GrpcCode.Unimplemented, 'Method Not Allowed');
      return;
    }
    const fail = (err: unknown): void => {
      if (err instanceof KvError) {
        log.debug({ method, path: pathname, code: err.code, err: err.message }, 'request failed');
      } else {
        log.error({ method, path: pathname, err }, 'request failed with an unexpected error');
      }
      if (res.headersSent) {
        // Too late for an error answer (a streaming route failed midway): cut the connection so the client
        // sees a failure rather than a truncated success.
        res.destroy();
        return;
      }
      if (err instanceof KvError) sendKvError(res, err);
      else sendError(res, 500, GrpcCode.Unknown, err instanceof Error ? err.message : String(err));
    };
    try {
      const done = handler(req, res);
      if (done instanceof Promise) done.catch(fail);
    } catch (err) {
      fail(err);
    }
  });
  return server;
}
