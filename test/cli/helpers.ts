// Shared by the CLI tests: run `keel` in-process, an in-memory member behind the real HTTP gateway, ports.

import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import {
  Errors,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type HealthResponse,
  type KeyValue,
  type KvService,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
} from '../../src/kv/api';
import { createClientServer } from '../../src/server/http-gateway';
import { runCli } from '../../src/cli/app';
import { captureIo } from '../../src/cli/io';
import { checkPort } from '../../src/cli/procs';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `keel ARGS` in this process. */
export async function keel(args: string[], env: Record<string, string | undefined> = {}): Promise<CliResult> {
  const io = captureIo(env);
  const code = await runCli(args, io);
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

function inRange(key: Buffer, req: { key: Buffer; rangeEnd?: Buffer }): boolean {
  if (req.rangeEnd === undefined || req.rangeEnd.length === 0) return key.equals(req.key);
  if (Buffer.compare(key, req.key) < 0) return false;
  if (req.rangeEnd.length === 1 && req.rangeEnd[0] === 0) return true;
  return Buffer.compare(key, req.rangeEnd) < 0;
}

/** A member's KV API in memory: enough of etcd's semantics to check what the CLI prints. */
export class MemoryKv implements KvService {
  revision = 1;
  private readonly data = new Map<string, KeyValue>();
  health_: HealthResponse = { health: true, reason: '' };
  requests: (RangeRequest | PutRequest | DeleteRangeRequest)[] = [];

  constructor(
    readonly memberId: string,
    readonly name: string,
    readonly leader: string,
  ) {}

  private header(): ResponseHeader {
    return { clusterId: '00000000000000aa', memberId: this.memberId, revision: this.revision, raftTerm: 3 };
  }

  private sorted(req: { key: Buffer; rangeEnd?: Buffer }): KeyValue[] {
    return [...this.data.values()].filter((kv) => inRange(kv.key, req)).sort((a, b) => Buffer.compare(a.key, b.key));
  }

  async put(req: PutRequest): Promise<PutResponse> {
    if (req.key.length === 0) throw Errors.emptyKey();
    this.requests.push(req);
    const k = req.key.toString('hex');
    const prev = this.data.get(k);
    this.revision++;
    this.data.set(k, {
      key: req.key,
      value: req.value,
      createRevision: prev?.createRevision ?? this.revision,
      modRevision: this.revision,
      version: (prev?.version ?? 0) + 1,
      lease: 0,
    });
    return req.prevKv === true && prev !== undefined
      ? { header: this.header(), prevKv: prev }
      : { header: this.header() };
  }

  async range(req: RangeRequest): Promise<RangeResponse> {
    if (req.key.length === 0) throw Errors.emptyKey();
    this.requests.push(req);
    const all = this.sorted(req);
    const limited = req.limit !== undefined && req.limit > 0 ? all.slice(0, req.limit) : all;
    const kvs =
      req.countOnly === true
        ? []
        : limited.map((kv) => (req.keysOnly === true ? { ...kv, value: Buffer.alloc(0) } : kv));
    return { header: this.header(), kvs, more: limited.length < all.length, count: all.length };
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    if (req.key.length === 0) throw Errors.emptyKey();
    this.requests.push(req);
    const gone = this.sorted(req);
    if (gone.length > 0) this.revision++;
    for (const kv of gone) this.data.delete(kv.key.toString('hex'));
    return { header: this.header(), deleted: gone.length, prevKvs: req.prevKv === true ? gone : [] };
  }

  async status(): Promise<StatusResponse> {
    return {
      header: this.header(),
      version: '3.4.0-keel',
      dbSize: 24576,
      leader: this.leader,
      raftIndex: 42,
      raftTerm: 3,
      raftAppliedIndex: 41,
      snapshotIndex: 40,
      firstIndex: 35,
      isLearner: false,
      errors: [],
      name: this.name,
    };
  }

  async health(): Promise<HealthResponse> {
    return this.health_;
  }
}

export interface FakeMember {
  url: string;
  kv: MemoryKv;
  close(): Promise<void>;
}

/** The real client-facing HTTP gateway in front of a MemoryKv, on 127.0.0.1 and a free port. */
export async function fakeMember(kv: MemoryKv): Promise<FakeMember> {
  const server: http.Server = createClientServer(kv);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    kv,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 on which nothing listens (right now). */
export async function unusedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

/** A base port with `count` consecutive free ports (bounded search over random bases). */
export async function freePortRange(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * 20000) * 2;
    let free = true;
    for (let p = base; p < base + count && free; p++) free = (await checkPort(p)) === 'free';
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** Listens on 127.0.0.1:port until closed. */
export async function occupy(port: number): Promise<{ close(): Promise<void> }> {
  const srv = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', resolve);
  });
  return { close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
}
