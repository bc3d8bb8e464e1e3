// What etcd's gRPC server would call each client request Keel serves, so that the request counters carry
// etcd's labels (grpc_service, grpc_method, grpc_type, grpc_code) and etcd's dashboards and alerts read
// them unchanged. Both client APIs map here: the gateway's routes (by path) and the native stream's methods.
// No prom-client in this file: the gateway and the stream session import it without the metrics.

import { GrpcCode, KvError } from '../../kv/api';
import type { StreamMethod } from '../../kv/stream-protocol';

/** go-grpc-prometheus's grpc_type label values. */
export type RpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/** One gRPC method of etcd's API: `${service}/${method}`. */
export interface RpcName {
  readonly service: string;
  readonly method: string;
  readonly type: RpcType;
}

const rpc = (service: string, method: string, type: RpcType = 'unary'): RpcName => ({ service, method, type });

/** etcd's methods that Keel serves (etcdserverpb's rpc.proto), plus gRPC's standard health check. The Auth
 *  service's methods (all answered Unimplemented by the gRPC server) are not listed: they are counted when
 *  called, under names made by src/server/grpc/server.ts. */
export const RPCS = {
  range: rpc('etcdserverpb.KV', 'Range'),
  put: rpc('etcdserverpb.KV', 'Put'),
  deleteRange: rpc('etcdserverpb.KV', 'DeleteRange'),
  txn: rpc('etcdserverpb.KV', 'Txn'),
  compact: rpc('etcdserverpb.KV', 'Compact'),
  watch: rpc('etcdserverpb.Watch', 'Watch', 'bidi_stream'),
  leaseGrant: rpc('etcdserverpb.Lease', 'LeaseGrant'),
  leaseRevoke: rpc('etcdserverpb.Lease', 'LeaseRevoke'),
  leaseKeepAlive: rpc('etcdserverpb.Lease', 'LeaseKeepAlive', 'bidi_stream'),
  leaseTimeToLive: rpc('etcdserverpb.Lease', 'LeaseTimeToLive'),
  leaseLeases: rpc('etcdserverpb.Lease', 'LeaseLeases'),
  status: rpc('etcdserverpb.Maintenance', 'Status'),
  memberAdd: rpc('etcdserverpb.Cluster', 'MemberAdd'),
  memberRemove: rpc('etcdserverpb.Cluster', 'MemberRemove'),
  memberUpdate: rpc('etcdserverpb.Cluster', 'MemberUpdate'),
  memberList: rpc('etcdserverpb.Cluster', 'MemberList'),
  memberPromote: rpc('etcdserverpb.Cluster', 'MemberPromote'),
  alarm: rpc('etcdserverpb.Maintenance', 'Alarm'),
  snapshot: rpc('etcdserverpb.Maintenance', 'Snapshot', 'server_stream'),
  moveLeader: rpc('etcdserverpb.Maintenance', 'MoveLeader'),
  defragment: rpc('etcdserverpb.Maintenance', 'Defragment'),
  hash: rpc('etcdserverpb.Maintenance', 'Hash'),
  hashKV: rpc('etcdserverpb.Maintenance', 'HashKV'),
  healthCheck: rpc('grpc.health.v1.Health', 'Check'),
} as const satisfies Record<string, RpcName>;

export type RpcKey = keyof typeof RPCS;

/**
 * The gateway's routes and the method each stands for, as etcd's gRPC-gateway registers them (rpc.proto's
 * google.api.http options, /v3/kv/lease/... aliases included). Routes that are not added to the listener
 * (membership, alarms, snapshots until they exist) are simply never looked up. GET /health, /version and
 * /metrics are plain HTTP in etcd too, and are not counted.
 */
export const GATEWAY_RPCS: ReadonlyMap<string, RpcName> = new Map<string, RpcName>([
  ['/v3/kv/range', RPCS.range],
  ['/v3/kv/put', RPCS.put],
  ['/v3/kv/deleterange', RPCS.deleteRange],
  ['/v3/kv/txn', RPCS.txn],
  ['/v3/kv/compaction', RPCS.compact],
  ['/v3/watch', RPCS.watch],
  ['/v3/lease/grant', RPCS.leaseGrant],
  ['/v3/lease/revoke', RPCS.leaseRevoke],
  ['/v3/kv/lease/revoke', RPCS.leaseRevoke],
  ['/v3/lease/keepalive', RPCS.leaseKeepAlive],
  ['/v3/lease/timetolive', RPCS.leaseTimeToLive],
  ['/v3/kv/lease/timetolive', RPCS.leaseTimeToLive],
  ['/v3/lease/leases', RPCS.leaseLeases],
  ['/v3/kv/lease/leases', RPCS.leaseLeases],
  ['/v3/maintenance/status', RPCS.status],
  ['/v3/maintenance/alarm', RPCS.alarm],
  ['/v3/maintenance/snapshot', RPCS.snapshot],
  ['/v3/maintenance/transfer-leadership', RPCS.moveLeader],
  ['/v3/cluster/member/add', RPCS.memberAdd],
  ['/v3/cluster/member/remove', RPCS.memberRemove],
  ['/v3/cluster/member/update', RPCS.memberUpdate],
  ['/v3/cluster/member/list', RPCS.memberList],
  ['/v3/cluster/member/promote', RPCS.memberPromote],
]);

/**
 * The native stream's unary methods. Its watch frames (watchCreate, watchCancel, watchProgress) are messages
 * of the connection's one Watch stream, and its keep-alive frames messages of its one LeaseKeepAlive stream,
 * as etcd's Go client multiplexes them: see SessionRpcs.
 */
export const STREAM_UNARY_RPCS: { readonly [M in StreamMethod]?: RpcName } = {
  range: RPCS.range,
  put: RPCS.put,
  deleteRange: RPCS.deleteRange,
  txn: RPCS.txn,
  compact: RPCS.compact,
  leaseGrant: RPCS.leaseGrant,
  leaseRevoke: RPCS.leaseRevoke,
  leaseTimeToLive: RPCS.leaseTimeToLive,
  leaseLeases: RPCS.leaseLeases,
  status: RPCS.status,
  health: RPCS.healthCheck,
};

/** grpc-go's codes.Code names, by number: the values of the grpc_code label. */
const CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
] as const;

export type GrpcCodeName = (typeof CODE_NAMES)[number];

/** The name of a gRPC code; a number outside gRPC's codes is "Unknown", as grpc-go reports it. */
export function grpcCodeName(code: number): GrpcCodeName {
  return Number.isInteger(code) && code >= 0 && code < CODE_NAMES.length ? CODE_NAMES[code] : 'Unknown';
}

/** The gRPC code a failed call ends with: a KvError's own, anything else Unknown (as grpc-go does for an
 *  error without a status). */
export function codeOfError(err: unknown): GrpcCode {
  return err instanceof KvError ? err.code : GrpcCode.Unknown;
}
