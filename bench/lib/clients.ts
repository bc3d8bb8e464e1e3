// The two ways the load generator talks to a cluster, behind one interface so that every workload runs the
// same code for both systems:
// - GrpcConn: etcd's gRPC API (proto/etcd/etcdserverpb/rpc.proto) over @grpc/grpc-js, one HTTP/2
//   connection per GrpcConn (a local subchannel pool, so connections to the same member are not shared).
//   The client for etcd, and for Keel, which serves the same API on its client URL.
// - NativeConn: Keel's native stream (KeelClient, WebSocket + msgpackr), one connection per NativeConn,
//   to its member first.

import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { KeelClient } from '../../src/client/stream-client';

export type ClientKind = 'grpc' | 'native';
export type LeaseId = string | number;

export interface CasResult {
  succeeded: boolean;
  /** The key's mod revision now: the txn's revision when it succeeded, else the key's current one. */
  modRevision: number;
}

export interface KeepAliver {
  keepAlive(id: LeaseId): Promise<void>;
  close(): void;
}

export interface WatchHandle {
  cancel(): void;
}

export interface BenchConn {
  readonly kind: ClientKind;
  /** The member this connection talks to. */
  readonly endpoint: string;
  put(key: Buffer, value: Buffer): Promise<void>;
  get(key: Buffer, serializable: boolean): Promise<void>;
  /** One txn of puts (preloading). */
  putMany(kvs: [Buffer, Buffer][]): Promise<void>;
  /** Compare-and-swap: put `value` if the key's mod revision is `modRevision` (0: absent), else read it. */
  cas(key: Buffer, modRevision: number, value: Buffer): Promise<CasResult>;
  leaseGrant(ttlSeconds: number): Promise<LeaseId>;
  leaseRevoke(id: LeaseId): Promise<void>;
  keepAliver(): KeepAliver;
  /** Watches keys with `prefix`; `onValues` gets the values of each response's events. Resolves once created. */
  watch(prefix: Buffer, onValues: (values: Buffer[]) => void): Promise<WatchHandle>;
  close(): Promise<void>;
}

/** The first byte string after every key that starts with `prefix` (etcd's range end of a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

// ---- gRPC ------------------------------------------------------------------------------------------------

/** The repository root: the first directory above this file with proto/etcd in it (src and dist alike). */
export function repoRoot(): string {
  let d = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(d, 'proto', 'etcd')) && fs.existsSync(path.join(d, 'package.json'))) return d;
    d = path.dirname(d);
  }
  return path.resolve(__dirname, '..', '..');
}

// Decoded messages keep the .proto's names; 64-bit integers as strings (lease ids do not fit a double);
// no defaults filled in (less work per message: absent fields are undefined).
const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
};

type Unary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: any) => void) => void;
type AnyClient = grpc.Client & Record<string, any>;

let services: { KV: grpc.ServiceClientConstructor; Lease: grpc.ServiceClientConstructor; Watch: grpc.ServiceClientConstructor } | undefined;

function etcdServices(): NonNullable<typeof services> {
  if (!services) {
    const dir = path.join(repoRoot(), 'proto', 'etcd');
    const file = path.join(dir, 'etcdserverpb', 'rpc.proto');
    if (!fs.existsSync(file)) throw new Error(`${file} is missing: the gRPC client needs etcd's protos`);
    const def = protoLoader.loadSync(file, { ...LOADER_OPTIONS, includeDirs: [dir] });
        const pkg = grpc.loadPackageDefinition(def) as any;
    services = { KV: pkg.etcdserverpb.KV, Lease: pkg.etcdserverpb.Lease, Watch: pkg.etcdserverpb.Watch };
  }
  return services;
}

/** host:port of a client URL. */
function target(url: string): string {
  return new URL(url).host;
}

export class GrpcConn implements BenchConn {
  readonly kind = 'grpc';
  private readonly channel: grpc.Channel;
  private readonly kv: AnyClient;
  private readonly lease: AnyClient;
  private readonly watchClient: AnyClient;

  constructor(
    readonly endpoint: string,
    private readonly timeoutMs: number,
  ) {
    const s = etcdServices();
    const options: grpc.ChannelOptions = {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
      'grpc.max_send_message_length': 16 * 1024 * 1024,
    };
    this.channel = new grpc.Channel(target(endpoint), grpc.credentials.createInsecure(), options);
    const opts = { channelOverride: this.channel };
    const creds = grpc.credentials.createInsecure();
    this.kv = new s.KV(target(endpoint), creds, opts) as AnyClient;
    this.lease = new s.Lease(target(endpoint), creds, opts) as AnyClient;
    this.watchClient = new s.Watch(target(endpoint), creds, opts) as AnyClient;
  }

    private call(client: AnyClient, method: string, req: object, timeoutMs = this.timeoutMs): Promise<any> {
    return new Promise((resolve, reject) => {
      (client[method] as Unary).call(client, req, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res),
      );
    });
  }

  /** Whether the member answers a gRPC Range within `timeoutMs` (a member without gRPC does not). */
  async probe(timeoutMs = 3000): Promise<string | undefined> {
    try {
      await this.call(this.kv, 'Range', { key: Buffer.from('bench-probe'), serializable: true }, timeoutMs);
      return undefined;
    } catch (err) {
      // grpc-js appends a "Resolution note" and a timestamp: keep the first sentence.
      return (err as Error).message.replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/, '').replace(/\.?\s*Resolution note:.*$/s, '');
    }
  }

  async put(key: Buffer, value: Buffer): Promise<void> {
    await this.call(this.kv, 'Put', { key, value });
  }

  async get(key: Buffer, serializable: boolean): Promise<void> {
    await this.call(this.kv, 'Range', serializable ? { key, serializable } : { key });
  }

  async putMany(kvs: [Buffer, Buffer][]): Promise<void> {
    await this.call(this.kv, 'Txn', { success: kvs.map(([key, value]) => ({ request_put: { key, value } })) });
  }

  async cas(key: Buffer, modRevision: number, value: Buffer): Promise<CasResult> {
    const res = await this.call(this.kv, 'Txn', {
      compare: [{ result: 'EQUAL', target: 'MOD', key, mod_revision: String(modRevision) }],
      success: [{ request_put: { key, value } }],
      failure: [{ request_range: { key } }],
    });
    if (res.succeeded) return { succeeded: true, modRevision: Number(res.header?.revision ?? 0) };
    const kv = res.responses?.[0]?.response_range?.kvs?.[0];
    return { succeeded: false, modRevision: Number(kv?.mod_revision ?? 0) };
  }

  async leaseGrant(ttlSeconds: number): Promise<LeaseId> {
    const res = await this.call(this.lease, 'LeaseGrant', { TTL: String(ttlSeconds) });
    if (res.error) throw new Error(`LeaseGrant: ${res.error}`);
    return String(res.ID);
  }

  async leaseRevoke(id: LeaseId): Promise<void> {
    await this.call(this.lease, 'LeaseRevoke', { ID: String(id) });
  }

  keepAliver(): KeepAliver {
    const stream = this.lease.LeaseKeepAlive() as grpc.ClientDuplexStream<object, { ID?: string; TTL?: string }>;
    const waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];
    let failed: Error | undefined;
    const failAll = (e: Error): void => {
      failed ??= e;
      for (const w of waiting.splice(0)) w.reject(e);
    };
    stream.on('data', (res) => {
      const w = waiting.shift();
      if (!w) return;
      if (res.TTL === undefined || Number(res.TTL) <= 0) w.reject(new Error('lease keep-alive: the lease is gone (TTL <= 0)'));
      else w.resolve();
    });
    stream.on('error', (e) => failAll(e));
    stream.on('end', () => failAll(new Error('lease keep-alive stream ended')));
    return {
      keepAlive: (id) =>
        new Promise<void>((resolve, reject) => {
          if (failed) return reject(failed);
          waiting.push({ resolve, reject });
          stream.write({ ID: String(id) });
        }),
      close: () => {
        failed ??= new Error('closed');
        stream.cancel();
      },
    };
  }

  watch(prefix: Buffer, onValues: (values: Buffer[]) => void): Promise<WatchHandle> {
    const stream = this.watchClient.Watch() as grpc.ClientDuplexStream<object, any>;
    let canceled = false;
    return new Promise((resolve, reject) => {
      let created = false;
      stream.on('data', (res) => {
        if (res.created && !created) {
          created = true;
          resolve({
            cancel: () => {
              canceled = true;
              stream.cancel();
            },
          });
        }
        const events = res.events as { kv?: { value?: Buffer } }[] | undefined;
        if (events && events.length > 0) onValues(events.map((e) => e.kv?.value ?? Buffer.alloc(0)));
      });
      stream.on('error', (e) => {
        if (!created) reject(e);
        else if (!canceled) console.error(`bench: a watch on ${this.endpoint} failed: ${e.message}`);
      });
      stream.write({ create_request: { key: prefix, range_end: prefixEnd(prefix) } });
    });
  }

  async close(): Promise<void> {
    this.kv.close();
    this.lease.close();
    this.watchClient.close();
    this.channel.close();
  }
}

// ---- Keel's native stream ---------------------------------------------------------------------------------

export class NativeConn implements BenchConn {
  readonly kind = 'native';
  private readonly client: KeelClient;

  /** `endpoints`: the member to talk to first, then the others (for failover only). */
  constructor(endpoints: string[], timeoutMs: number) {
    this.endpoint = endpoints[0];
    this.client = new KeelClient({ endpoints, requestTimeoutMs: timeoutMs });
  }

  readonly endpoint: string;

  async put(key: Buffer, value: Buffer): Promise<void> {
    await this.client.put(key, value);
  }

  async get(key: Buffer, serializable: boolean): Promise<void> {
    await this.client.get(key, { serializable });
  }

  async putMany(kvs: [Buffer, Buffer][]): Promise<void> {
    await this.client.txn({ compare: [], success: kvs.map(([key, value]) => ({ type: 'put', put: { key, value } })), failure: [] });
  }

  async cas(key: Buffer, modRevision: number, value: Buffer): Promise<CasResult> {
    const res = await this.client.txn({
      compare: [{ key, result: 'EQUAL', target: 'MOD', modRevision }],
      success: [{ type: 'put', put: { key, value } }],
      failure: [{ type: 'range', range: { key } }],
    });
    if (res.succeeded) return { succeeded: true, modRevision: res.header.revision };
    const r = res.responses[0];
    return { succeeded: false, modRevision: r?.type === 'range' ? (r.range.kvs[0]?.modRevision ?? 0) : 0 };
  }

  async leaseGrant(ttlSeconds: number): Promise<LeaseId> {
    return (await this.client.leaseGrant(ttlSeconds)).id;
  }

  async leaseRevoke(id: LeaseId): Promise<void> {
    await this.client.leaseRevoke(Number(id));
  }

  keepAliver(): KeepAliver {
    return {
      keepAlive: async (id) => {
        const res = await this.client.leaseKeepAliveOnce(Number(id));
        if (res.ttl <= 0) throw new Error('lease keep-alive: the lease is gone (TTL <= 0)');
      },
      close: () => undefined,
    };
  }

  async watch(prefix: Buffer, onValues: (values: Buffer[]) => void): Promise<WatchHandle> {
    const w = this.client.watch(prefix, { prefix: true }, { onEvents: (events) => onValues(events.map((e) => e.kv.value)) });
    await w.created;
    return { cancel: () => void w.cancel().catch(() => undefined) };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
