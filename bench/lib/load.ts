// The load generator: a fixed number of logical clients (the concurrency), each with one request in flight,
// spread round-robin over the connections (which are spread round-robin over the members). The same code
// for every system and client kind; only the BenchConn differs. A run: setup (leases, watches), a warm-up
// that is not counted, then the measured window (--duration seconds, or until --ops operations), in which
// every operation that completes is counted and its latency recorded; CPU and WAL fsyncs are sampled at the
// window's edges.

import { performance } from 'node:perf_hooks';
import type { BenchConn, KeepAliver, LeaseId, WatchHandle } from './clients';
import { createHistogram, type Histogram } from './histogram';
import { cpuBetween, fsyncCount, sampleCpu, type CpuFigures } from './procstat';

export const WORKLOADS = ['put', 'get', 'sget', 'txn', 'mixed', 'watch', 'lease', 'core'] as const;
export type Workload = (typeof WORKLOADS)[number];

export interface LoadOptions {
  workload: Exclude<Workload, 'core'>;
  concurrency: number;
  warmupSec: number;
  durationSec: number;
  /** Measure until this many operations instead of for durationSec. */
  ops?: number;
  keys: number;
  keySize: number;
  valueSize: number;
  readRatio: number;
  watchers: number;
  requestTimeoutMs: number;
}

export interface ServerProcess {
  name: string;
  pid: number | undefined;
  clientUrl: string;
}

export interface LoadResult {
  ops: number;
  errors: number;
  firstError?: string;
  secs: number;
  hist: Histogram;
  cpu: CpuFigures;
  /** WAL fsyncs (all members) during the window, or null if a member's /metrics did not tell. */
  fsyncs: number | null;
  /** Workload-specific counts (txn: CAS successes; watch: puts written). */
  extra: Record<string, number>;
}

/** Fast PRNG (xorshift32) for key choice: Math.random costs more and the sequence need not be good. */
export class KeyPicker {
  private s: number;
  constructor(
    private readonly keys: Buffer[],
    seed: number,
  ) {
    this.s = seed | 0 || 1;
  }
  next(): Buffer {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x;
    return this.keys[(x >>> 0) % this.keys.length];
  }
  /** A number in [0, 1). */
  unit(): number {
    this.next();
    return (this.s >>> 0) / 4294967296;
  }
}

const keyCache = new Map<string, Buffer[]>();

/** The key space: `count` keys of `size` bytes, `prefix` then the zero-padded number. */
export function keySpace(prefix: string, count: number, size: number): Buffer[] {
  const id = `${prefix}/${count}/${size}`;
  let keys = keyCache.get(id);
  if (!keys) {
    const digits = String(Math.max(0, count - 1)).length;
    if (prefix.length + digits > size) {
      throw new Error(`--key-size ${size} is too small for ${count} keys (needs ${prefix.length + digits} bytes)`);
    }
    keys = Array.from({ length: count }, (_v, i) => Buffer.from(prefix + String(i).padStart(size - prefix.length, '0')));
    keyCache.set(id, keys);
  }
  return keys;
}

/** Puts every key of the read workloads' key space (txns of 100 puts, 16 at a time). */
export async function preload(conns: BenchConn[], o: { keys: number; keySize: number; valueSize: number }): Promise<number> {
  const keys = keySpace('k', o.keys, o.keySize);
  const value = Buffer.alloc(o.valueSize, 'v');
  const perTxn = 100;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async (_v, w) => {
      const conn = conns[w % conns.length];
      while (next < keys.length) {
        const from = next;
        next += perTxn;
        await conn.putMany(keys.slice(from, from + perTxn).map((k) => [k, value] as [Buffer, Buffer]));
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

interface Worker {
  /** Called before the warm-up. */
  setup?(): Promise<void>;
  op(): Promise<void>;
  teardown?(): Promise<void>;
}

export async function runLoad(conns: BenchConn[], servers: ServerProcess[], o: LoadOptions): Promise<LoadResult> {
  const hist = createHistogram();
  const st = { recording: false, stop: false, ops: 0, errors: 0, firstError: undefined as string | undefined };
  const extra: Record<string, number> = {};
  let reachedOps: (() => void) | undefined;
  const opsReached = new Promise<void>((r) => (reachedOps = r));
  const counted = (latencyMs: number): void => {
    hist.recordValue(latencyMs * 1000);
    st.ops++;
    if (o.ops !== undefined && st.ops >= o.ops) reachedOps?.();
  };

  const value = Buffer.alloc(o.valueSize, 'v');
  const workers: Worker[] = [];
  const watches: WatchHandle[] = [];

  if (o.workload === 'watch') {
    // Writers put values that carry their send time; every watcher's event counts as one operation, its
    // latency from the put's send to the event's arrival here.
    const keys = keySpace('w', o.keys, o.keySize);
    const onValues = (values: Buffer[]): void => {
      const now = performance.now();
      for (const v of values) if (st.recording && v.length >= 8) counted(now - v.readDoubleLE(0));
    };
    for (let i = 0; i < o.watchers; i++) watches.push(await conns[i % conns.length].watch(Buffer.from('w'), onValues));
    extra.watchers = o.watchers;
    extra.puts = 0;
    for (let i = 0; i < o.concurrency; i++) {
      const conn = conns[i % conns.length];
      const pick = new KeyPicker(keys, 7919 * (i + 1));
      workers.push({
        op: async () => {
          const v = Buffer.allocUnsafe(Math.max(8, o.valueSize));
          value.copy(v, 8, 0, v.length - 8);
          v.writeDoubleLE(performance.now(), 0);
          await conn.put(pick.next(), v);
          if (st.recording) extra.puts++;
        },
      });
    }
  } else {
    const keys = keySpace('k', o.keys, o.keySize);
    if (o.workload === 'txn') extra.casSucceeded = 0;
    for (let i = 0; i < o.concurrency; i++) {
      const conn = conns[i % conns.length];
      const pick = new KeyPicker(keys, 7919 * (i + 1));
      switch (o.workload) {
        case 'put':
          workers.push({ op: () => conn.put(pick.next(), value) });
          break;
        case 'get':
        case 'sget': {
          const serializable = o.workload === 'sget';
          workers.push({ op: () => conn.get(pick.next(), serializable) });
          break;
        }
        case 'mixed':
          workers.push({
            op: () => (pick.unit() < o.readRatio ? conn.get(pick.next(), false) : conn.put(pick.next(), value)),
          });
          break;
        case 'txn': {
          const key = Buffer.from('c'.padEnd(o.keySize, '0'));
          let rev = 0;
          workers.push({
            op: async () => {
              const r = await conn.cas(key, rev, value);
              rev = r.modRevision;
              if (r.succeeded && st.recording) extra.casSucceeded++;
            },
          });
          break;
        }
        case 'lease': {
          let id: LeaseId = 0;
          let ka: KeepAliver | undefined;
          workers.push({
            setup: async () => {
              id = await conn.leaseGrant(600);
              ka = conn.keepAliver();
            },
            op: () => (ka as KeepAliver).keepAlive(id),
            teardown: async () => {
              ka?.close();
              await conn.leaseRevoke(id).catch(() => undefined);
            },
          });
          break;
        }
        default:
          throw new Error(`unknown workload ${String(o.workload)}`);
      }
    }
  }

  // Setup in batches, so that hundreds of lease grants do not all time out together on a slow cluster.
  for (let i = 0; i < workers.length; i += 32) {
    await Promise.all(workers.slice(i, i + 32).map((w) => w.setup?.()));
  }

  const loops = workers.map(async (w) => {
    while (!st.stop) {
      const t = performance.now();
      try {
        await w.op();
        if (st.recording && o.workload !== 'watch') counted(performance.now() - t);
      } catch (err) {
        if (st.recording) {
          st.errors++;
          st.firstError ??= (err as Error).message;
        }
        // Do not spin on a member that refuses at once.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  });

  await sleep(o.warmupSec * 1000);
  const cpuProcs = servers.map((s) => ({ name: s.name, pid: s.pid }));
  const urls = servers.map((s) => s.clientUrl);
  const fs0 = await fsyncCount(urls);
  const cpu0 = sampleCpu(cpuProcs);
  st.recording = true;
  if (o.ops !== undefined) {
    // --ops: until that many, but never longer than 10 minutes.
    await within(opsReached, 600_000);
  } else {
    await sleep(o.durationSec * 1000);
  }
  st.recording = false;
  const cpu1 = sampleCpu(cpuProcs);
  const fs1 = await fsyncCount(urls);
  st.stop = true;
  const secs = Number(cpu1.at - cpu0.at) / 1e9;
  // Let the requests in flight finish (not counted), within the request timeout.
  await within(Promise.all(loops), o.requestTimeoutMs + 1000);
  for (const w of watches) w.cancel();
  for (let i = 0; i < workers.length; i += 32) {
    await Promise.all(workers.slice(i, i + 32).map((w) => w.teardown?.().catch(() => undefined)));
  }
  return {
    ops: st.ops,
    errors: st.errors,
    firstError: st.firstError,
    secs,
    hist,
    cpu: cpuBetween(cpu0, cpu1, st.ops),
    fsyncs: fs0 === undefined || fs1 === undefined ? null : fs1 - fs0,
    extra,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for `p`, but at most `ms` (without leaving a timer behind). */
async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise((r) => (timer = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
