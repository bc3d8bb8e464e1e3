// The workloads' client: etcd's v3 gRPC API over @grpc/grpc-js, with the proto Keel serves (so that one client
// drives both Keel and a real etcd). Every call has a deadline; nothing is retried here, because only the
// workload knows whether an operation is idempotent, and the history must record what was really attempted.
//
// classify() is the crux of a sound history: it says whether an error PROVES that an operation had no effect
// (`fail`) or leaves its outcome open (`info`). Recording an indeterminate write as `fail` makes a correct
// system look broken (or hides a real bug); recording everything as `info` makes the checks weak. So: reads
// have no effect, any error is `fail`; writes are `fail` only on a definite refusal by the server or when
// grpc-js never sent the request at all.

import * as grpc from '@grpc/grpc-js';
import { SERVICE_NAMES, type EtcdServices } from '../../src/server/grpc/proto';
import { grpcAddress, serviceClients } from './channel';

const Status = grpc.status;

/** What an error says about the operation it ended: `fail` = certainly no effect, `info` = indeterminate. */
export type Outcome = 'fail' | 'info';

/** A gRPC error (or a local one, code undefined) from a KvConn call. */
export interface KvCallError extends Error {
  code?: number;
  details?: string;
}

/** Codes by which the server refuses a request before it is proposed, or rejects it at apply without effect. */
const DEFINITE_CODES: ReadonlySet<number> = new Set([
  Status.INVALID_ARGUMENT,
  Status.FAILED_PRECONDITION,
  Status.OUT_OF_RANGE,
  Status.NOT_FOUND,
  Status.ALREADY_EXISTS,
  Status.PERMISSION_DENIED,
  Status.UNAUTHENTICATED,
]);

/**
 * `fail` when the error proves that the operation had no effect, else `info`. `kind` 'read': any error is
 * `fail` (a read changes nothing, so its failure cannot hide an effect).
 */
export function classify(err: unknown, kind: 'read' | 'write' = 'write'): Outcome {
  if (kind === 'read') return 'fail';
  const e = err as KvCallError | undefined;
  const code = e?.code;
  const details = (e?.details ?? e?.message ?? '').toLowerCase();
  if (code === undefined) return 'info';
  if (DEFINITE_CODES.has(code)) return 'fail';
  if (code === Status.RESOURCE_EXHAUSTED) {
    // etcd's NOSPACE alarm and its apply-backlog refusal are checked before a proposal; any other
    // RESOURCE_EXHAUSTED (grpc-js's "received message larger than max", for one) may follow an applied write.
    return details.includes('database space exceeded') || details.includes('too many requests') ? 'fail' : 'info';
  }
  if (code === Status.UNAVAILABLE && /^(\w+: )?no connection established/.test(details)) {
    // grpc-js's picker refused the call while the channel had no connection: the request was never sent.
    return 'fail';
  }
  // DEADLINE_EXCEEDED, CANCELLED, UNKNOWN, INTERNAL, UNAVAILABLE after sending (etcd's "leader changed",
  // "request timed out"): the proposal may be in the log and commit later.
  return 'info';
}

/** A short text for the history's `error` field. */
export function errorText(err: unknown): string {
  const e = err as KvCallError | undefined;
  if (e && typeof e.code === 'number') {
    const name = Status[e.code] ?? String(e.code);
    return `${name}: ${e.details ?? e.message}`;
  }
  return e?.message ?? String(err);
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  /** lease id (decimal), "0" for none */
  lease: string;
}

export interface GetResult {
  /** null: the key is absent */
  value: string | null;
  /** 0 when absent */
  modRevision: number;
  createRevision: number;
  /** the store's revision when read */
  revision: number;
}

export interface RangeResult {
  kvs: KeyValue[];
  revision: number;
}

export type CompareTarget = 'value' | 'mod' | 'create' | 'version' | 'lease';
export type CompareOp = '=' | '!=' | '<' | '>';

export interface Compare {
  key: string;
  target: CompareTarget;
  op: CompareOp;
  /** a string for 'value', a number for revisions and versions, a decimal string or number for 'lease' */
  operand: string | number;
}

export type TxnOp =
  | { type: 'get'; key: string; prefix?: boolean }
  | { type: 'put'; key: string; value: string; lease?: string }
  | { type: 'del'; key: string; prefix?: boolean };

export type TxnResponse =
  | { type: 'get'; kvs: KeyValue[] }
  | { type: 'put'; revision: number }
  | { type: 'del'; deleted: number };

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  responses: TxnResponse[];
}

export interface WatchEvent {
  type: 'put' | 'delete';
  key: string;
  value: string;
  modRevision: number;
}

export interface WatchOptions {
  prefix?: boolean;
  /** first revision to deliver (0: from now) */
  fromRevision: number;
}

export interface CallOptions {
  /** deadline of this call (default: the connection's) */
  timeoutMs?: number;
}

/** A connection to one member's client URL. */
export interface KvConn {
  readonly url: string;
  get(key: string, opts?: CallOptions & { serializable?: boolean }): Promise<GetResult>;
  /** every key with this prefix, in key order */
  range(prefix: string, opts?: CallOptions & { serializable?: boolean }): Promise<RangeResult>;
  put(key: string, value: string, opts?: CallOptions & { lease?: string }): Promise<{ revision: number }>;
  del(key: string, opts?: CallOptions & { prefix?: boolean }): Promise<{ deleted: number; revision: number }>;
  txn(compares: readonly Compare[], success: readonly TxnOp[], failure?: readonly TxnOp[], opts?: CallOptions): Promise<TxnResult>;
  /** resolves to the lease id (decimal string: etcd's ids use all 64 bits) */
  leaseGrant(ttlSec: number, opts?: CallOptions): Promise<{ id: string; ttl: number }>;
  /** one keep-alive round trip; ttl 0 means the lease is gone */
  leaseKeepAliveOnce(id: string, opts?: CallOptions): Promise<{ ttl: number }>;
  leaseRevoke(id: string, opts?: CallOptions): Promise<void>;
  /**
   * Watches a key (or prefix) from a revision. `onEvents` gets each response's events with the response's
   * header revision; `onError` is called at most once, when the watch ends for any reason other than the
   * returned cancel function (a stream error, a cancellation by the server, a compaction). No deadline.
   */
  watch(
    key: string,
    opts: WatchOptions,
    onEvents: (events: WatchEvent[], revision: number) => void,
    onError: (err: Error) => void,
  ): () => void;
  close(): void;
}

// ---- wire shapes (proto-loader with keepCase, longs as strings, enums as names) ----

interface WireKv {
  key: Buffer;
  value: Buffer;
  create_revision: string;
  mod_revision: string;
  version: string;
  lease: string;
}
interface WireHeader {
  revision: string;
}
interface WireRange {
  header: WireHeader;
  kvs: WireKv[];
}
interface WireResponseOp {
  response: 'response_range' | 'response_put' | 'response_delete_range' | 'response_txn';
  response_range?: WireRange;
  response_put?: { header: WireHeader };
  response_delete_range?: { header: WireHeader; deleted: string };
}
interface WireWatchResponse {
  header: WireHeader;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  events: { type: 'PUT' | 'DELETE'; kv: WireKv }[];
}


type Unary = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, resp: unknown) => void) => void;
type Duplex = (opts?: grpc.CallOptions) => grpc.ClientDuplexStream<object, unknown>;

/** The end of a key range covering every key with `prefix` (etcd's convention: the prefix, last byte + 1). */
export function prefixEnd(prefix: string): Buffer {
  const b = Buffer.from(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i] < 0xff) {
      const end = Buffer.from(b.subarray(0, i + 1));
      end[i]++;
      return end;
    }
  }
  return Buffer.from([0]); // every key
}

function toKv(w: WireKv): KeyValue {
  return {
    key: w.key.toString(),
    value: w.value.toString(),
    createRevision: Number(w.create_revision),
    modRevision: Number(w.mod_revision),
    version: Number(w.version),
    lease: String(w.lease),
  };
}

const COMPARE_TARGET: Record<CompareTarget, { target: string; field: string }> = {
  value: { target: 'VALUE', field: 'value' },
  mod: { target: 'MOD', field: 'mod_revision' },
  create: { target: 'CREATE', field: 'create_revision' },
  version: { target: 'VERSION', field: 'version' },
  lease: { target: 'LEASE', field: 'lease' },
};
const COMPARE_RESULT: Record<CompareOp, string> = { '=': 'EQUAL', '!=': 'NOT_EQUAL', '<': 'LESS', '>': 'GREATER' };

function wireCompare(c: Compare): object {
  const t = COMPARE_TARGET[c.target];
  const operand = c.target === 'value' ? Buffer.from(String(c.operand)) : String(c.operand);
  return { key: Buffer.from(c.key), target: t.target, result: COMPARE_RESULT[c.op], [t.field]: operand, target_union: t.field };
}

function wireOp(op: TxnOp): object {
  switch (op.type) {
    case 'get':
      return {
        request: 'request_range',
        request_range: op.prefix ? { key: Buffer.from(op.key), range_end: prefixEnd(op.key) } : { key: Buffer.from(op.key) },
      };
    case 'put':
      return { request: 'request_put', request_put: { key: Buffer.from(op.key), value: Buffer.from(op.value), lease: op.lease ?? '0' } };
    case 'del':
      return {
        request: 'request_delete_range',
        request_delete_range: op.prefix ? { key: Buffer.from(op.key), range_end: prefixEnd(op.key) } : { key: Buffer.from(op.key) },
      };
  }
}

function fromResponseOp(r: WireResponseOp): TxnResponse {
  if (r.response === 'response_range' && r.response_range) return { type: 'get', kvs: r.response_range.kvs.map(toKv) };
  if (r.response === 'response_put' && r.response_put) return { type: 'put', revision: Number(r.response_put.header?.revision ?? 0) };
  if (r.response === 'response_delete_range' && r.response_delete_range) {
    return { type: 'del', deleted: Number(r.response_delete_range.deleted) };
  }
  throw new Error(`unexpected txn response ${r.response}`);
}

export interface ConnectOptions {
  /** default deadline of every unary call (default 5000 ms) */
  timeoutMs?: number;
}

/** A client for the member at `clientUrl` (http://host:port); one HTTP/2 channel shared by every service. */
export function connectKv(clientUrl: string, opts: ConnectOptions = {}): KvConn {
  const address = grpcAddress(clientUrl, 'connectKv');
  const defaultTimeout = opts.timeoutMs ?? 5000;
  const clients = serviceClients(address, SERVICE_NAMES);
  let closed = false;

  function unary<T>(service: keyof EtcdServices, method: string, req: object, o: CallOptions | undefined): Promise<T> {
    if (closed) return Promise.reject(new Error(`connection to ${clientUrl} is closed`));
    const client = clients[service] as unknown as Record<string, Unary>;
    const fn = client[method];
    const deadline = Date.now() + (o?.timeoutMs ?? defaultTimeout);
    return new Promise<T>((resolve, reject) => {
      fn.call(client, req, new grpc.Metadata(), { deadline }, (err, resp) => (err ? reject(err) : resolve(resp as T)));
    });
  }

  function duplex(service: keyof EtcdServices, method: string, o?: grpc.CallOptions): grpc.ClientDuplexStream<object, unknown> {
    const client = clients[service] as unknown as Record<string, Duplex>;
    return client[method].call(client, o);
  }

  return {
    url: clientUrl,
    async get(key, o) {
      const r = await unary<WireRange>('KV', 'Range', { key: Buffer.from(key), serializable: o?.serializable ?? false }, o);
      const kv = r.kvs[0];
      return {
        value: kv ? kv.value.toString() : null,
        modRevision: kv ? Number(kv.mod_revision) : 0,
        createRevision: kv ? Number(kv.create_revision) : 0,
        revision: Number(r.header.revision),
      };
    },
    async range(prefix, o) {
      const req = { key: Buffer.from(prefix), range_end: prefixEnd(prefix), serializable: o?.serializable ?? false };
      const r = await unary<WireRange>('KV', 'Range', req, o);
      return { kvs: r.kvs.map(toKv), revision: Number(r.header.revision) };
    },
    async put(key, value, o) {
      const r = await unary<{ header: WireHeader }>('KV', 'Put', { key: Buffer.from(key), value: Buffer.from(value), lease: o?.lease ?? '0' }, o);
      return { revision: Number(r.header.revision) };
    },
    async del(key, o) {
      const req = o?.prefix ? { key: Buffer.from(key), range_end: prefixEnd(key) } : { key: Buffer.from(key) };
      const r = await unary<{ header: WireHeader; deleted: string }>('KV', 'DeleteRange', req, o);
      return { deleted: Number(r.deleted), revision: Number(r.header.revision) };
    },
    async txn(compares, success, failure = [], o) {
      const req = { compare: compares.map(wireCompare), success: success.map(wireOp), failure: failure.map(wireOp) };
      const r = await unary<{ header: WireHeader; succeeded: boolean; responses: WireResponseOp[] }>('KV', 'Txn', req, o);
      return { succeeded: r.succeeded, revision: Number(r.header.revision), responses: r.responses.map(fromResponseOp) };
    },
    async leaseGrant(ttlSec, o) {
      const r = await unary<{ ID: string; TTL: string; error: string }>('Lease', 'LeaseGrant', { TTL: String(ttlSec), ID: '0' }, o);
      if (r.error) throw new Error(`lease grant refused: ${r.error}`);
      return { id: String(r.ID), ttl: Number(r.TTL) };
    },
    leaseKeepAliveOnce(id, o) {
      if (closed) return Promise.reject(new Error(`connection to ${clientUrl} is closed`));
      const deadline = Date.now() + (o?.timeoutMs ?? defaultTimeout);
      return new Promise((resolve, reject) => {
        const stream = duplex('Lease', 'LeaseKeepAlive', { deadline });
        let settled = false;
        const settle = (f: () => void): void => {
          if (settled) return;
          settled = true;
          f();
          stream.cancel();
        };
        stream.on('data', (resp: { TTL: string }) => settle(() => resolve({ ttl: Number(resp.TTL) })));
        // The cancel() in settle() makes the stream emit a CANCELLED error: ignored once settled.
        stream.on('error', (err: Error) => settle(() => reject(err)));
        stream.on('end', () => settle(() => reject(new Error('keep-alive stream ended without an answer'))));
        stream.write({ ID: id });
      });
    },
    async leaseRevoke(id, o) {
      await unary('Lease', 'LeaseRevoke', { ID: id }, o);
    },
    watch(key, o, onEvents, onError) {
      if (closed) {
        queueMicrotask(() => onError(new Error(`connection to ${clientUrl} is closed`)));
        return () => undefined;
      }
      const stream = duplex('Watch', 'Watch');
      let ended = false;
      const end = (err: Error): void => {
        if (ended) return;
        ended = true;
        stream.cancel();
        onError(err);
      };
      stream.on('data', (resp: WireWatchResponse) => {
        if (ended) return;
        if (resp.canceled) {
          const why = resp.cancel_reason || (Number(resp.compact_revision) > 0 ? `compacted at ${resp.compact_revision}` : 'canceled');
          end(new Error(`watch canceled by the server: ${why}`));
          return;
        }
        if (resp.events.length === 0) return; // the creation answer, or a progress notification
        const events = resp.events.map((ev) => ({
          type: ev.type === 'DELETE' ? ('delete' as const) : ('put' as const),
          key: ev.kv.key.toString(),
          value: ev.kv.value.toString(),
          modRevision: Number(ev.kv.mod_revision),
        }));
        onEvents(events, Number(resp.header?.revision ?? 0));
      });
      stream.on('error', (err: Error) => end(err));
      stream.on('end', () => end(new Error('watch stream ended')));
      const create: Record<string, unknown> = { key: Buffer.from(key), start_revision: String(o.fromRevision) };
      if (o.prefix) create.range_end = prefixEnd(key);
      stream.write({ request_union: 'create_request', create_request: create });
      return () => {
        if (ended) return;
        ended = true;
        stream.cancel();
      };
    },
    close() {
      if (closed) return;
      closed = true;
      for (const name of SERVICE_NAMES) clients[name].close();
    },
  };
}

/**
 * One connection per member, shared by the logical processes bound to it (as Jepsen's clients are: a process
 * talks to one node until an indeterminate result makes the workload re-pick), all closed at the end.
 */
export class KvPool {
  private readonly conns = new Map<string, KvConn>();
  private rr = 0;

  constructor(private readonly opts: ConnectOptions = {}) {}

  conn(clientUrl: string): KvConn {
    let c = this.conns.get(clientUrl);
    if (!c) {
      c = connectKv(clientUrl, this.opts);
      this.conns.set(clientUrl, c);
    }
    return c;
  }

  /** The next of `urls` in round-robin order. */
  pick(urls: readonly string[]): KvConn {
    if (urls.length === 0) throw new Error('no member to connect to');
    const url = urls[this.rr++ % urls.length];
    return this.conn(url);
  }

  close(): void {
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }
}
