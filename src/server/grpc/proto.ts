// etcd 3.4's gRPC API as Keel writes it (proto/etcd/**: same package, service, message and field names and
// numbers as etcd's), loaded once with @grpc/proto-loader. Decoded messages keep the .proto's field names
// (keepCase: etcd's snake_case, and its "ID" / "TTL" / "peerURLs"), 64-bit integers as decimal strings
// (longs: String; etcd's uint64 ids do not fit a double), enums by name, bytes as Buffers, every field
// present with its default, and each oneof's chosen member named in a virtual field (oneofs: true, e.g.
// RequestOp.request = 'request_put').

import fs from 'node:fs';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The proto dir at the package root: the nearest `proto/etcd` above this file — three levels up from
 *  src/server/grpc and dist/server/grpc, four from dist-bench/src/server/grpc (the harness's build). */
export const PROTO_ROOT = findProtoRoot(__dirname);
/** The include dir: rpc.proto imports "mvccpb/kv.proto" and "authpb/auth.proto" from here. */
export const ETCD_PROTO_DIR = path.join(PROTO_ROOT, 'etcd');

function findProtoRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'proto');
    if (fs.existsSync(path.join(candidate, 'etcd', 'etcdserverpb', 'rpc.proto'))) return candidate;
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..', '..', 'proto');
  }
}

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [ETCD_PROTO_DIR],
};

/** etcd's services, by name (package etcdserverpb). */
export interface EtcdServices {
  KV: grpc.ServiceDefinition;
  Watch: grpc.ServiceDefinition;
  Lease: grpc.ServiceDefinition;
  Cluster: grpc.ServiceDefinition;
  Maintenance: grpc.ServiceDefinition;
  Auth: grpc.ServiceDefinition;
}

export const SERVICE_NAMES = ['KV', 'Watch', 'Lease', 'Cluster', 'Maintenance', 'Auth'] as const;

let loaded: { definition: protoLoader.PackageDefinition; services: EtcdServices } | undefined;

function load(): { definition: protoLoader.PackageDefinition; services: EtcdServices } {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync('etcdserverpb/rpc.proto', LOADER_OPTIONS);
    const services = {} as Record<(typeof SERVICE_NAMES)[number], grpc.ServiceDefinition>;
    for (const name of SERVICE_NAMES) {
      const def = definition[`etcdserverpb.${name}`];
      if (def === undefined || 'format' in def || !isService(def)) {
        throw new Error(`${path.join(ETCD_PROTO_DIR, 'etcdserverpb/rpc.proto')}: service etcdserverpb.${name} is missing`);
      }
      services[name] = def as unknown as grpc.ServiceDefinition;
    }
    loaded = { definition, services };
  }
  return loaded;
}

function isService(def: object): boolean {
  // A service definition maps method names to method definitions (which have a path); a message type
  // definition has a "type" and a "format".
  return Object.values(def).every((m) => typeof m === 'object' && m !== null && 'path' in m);
}

/** The package definition (for clients: grpc.loadPackageDefinition). */
export function etcdPackageDefinition(): protoLoader.PackageDefinition {
  return load().definition;
}

/** The service definitions, for grpc.Server.addService and for grpc.makeGenericClientConstructor. */
export function etcdServices(): EtcdServices {
  return load().services;
}
