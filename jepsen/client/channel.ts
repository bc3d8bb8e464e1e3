// What the harness's two gRPC clients (kv.ts for the workloads, admin.ts for the cluster's control) share:
// reading a member's client URL, and one grpc-js client per etcd service over a single HTTP/2 channel.

import * as grpc from '@grpc/grpc-js';
import { etcdServices, type EtcdServices } from '../../src/server/grpc/proto';

/** host:port of a member's client URL (http://host:port); `who` names the caller in the error. */
export function grpcAddress(clientUrl: string, who: string): string {
  let u: URL;
  try {
    u = new URL(clientUrl);
  } catch {
    throw new Error(`${who}: not a URL: ${JSON.stringify(clientUrl)}`);
  }
  if (u.protocol !== 'http:' || !u.port) throw new Error(`${who}: expected http://host:port, got ${clientUrl}`);
  return `${u.hostname}:${u.port}`;
}

/** One client per named service, all on the channel the first one opens (with `channelOptions`). */
export function serviceClients<S extends keyof EtcdServices>(
  address: string,
  names: readonly S[],
  channelOptions: grpc.ChannelOptions = {},
): Record<S, grpc.Client> {
  const defs = etcdServices();
  const clients = {} as Record<S, grpc.Client>;
  let channel: grpc.Channel | undefined;
  for (const name of names) {
    const Ctor = grpc.makeGenericClientConstructor(defs[name], name);
    const creds = grpc.credentials.createInsecure();
    clients[name] = channel ? new Ctor(address, creds, { channelOverride: channel }) : new Ctor(address, creds, channelOptions);
    channel ??= clients[name].getChannel() as grpc.Channel;
  }
  return clients;
}
