// Figures for the store issue (the full benchmark, side by side with etcd, is bench/ issue 6):
// - linearizable vs serializable get throughput, 64 concurrent requests spread over the 3 members;
// - watch latency: from a put's acknowledgement (to the writer, on one member) to the event's arrival at a
//   watcher connected to another member;
// - with --keys N (default 0: skipped), the resident memory of each member after loading N keys of 256
//   bytes (loaded in txns of 100 puts), and the peak.
// All through the native stream client (KeelClient), 3 members on loopback started by `keel cluster up`.
//
// Usage: npm run bench:store -- [--get-ops 40000] [--watch-ops 2000] [--keys 1000000] [--out FILE]

import os from 'node:os';
import { KeelClient } from '../src/client/stream-client';
import type { RequestOp } from '../src/kv/api';
import {
  arg,
  keel,
  peakRssMiB,
  percentile,
  readCluster,
  Report,
  rssMiB,
  runMain,
  sleep,
  waitLeader,
  withLocalCluster,
  type ClusterFile,
} from './lib/common';

const VALUE = Buffer.alloc(256, 'v');

async function getLoad(
  clients: KeelClient[],
  ops: number,
  concurrency: number,
  serializable: boolean,
): Promise<{ opsPerSec: number; lat: number[] }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async (_v, w) => {
      const client = clients[w % clients.length];
      while (next < ops) {
        const i = next++;
        const s = process.hrtime.bigint();
        await client.get(`bench/${String(i % 1000).padStart(6, '0')}`, { serializable });
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  return { opsPerSec: ops / secs, lat };
}

/** Sequential puts on `writer`; a watcher on `watcher` (another member): event time − ack time, per put. */
async function watchLatency(
  writer: KeelClient,
  watcher: KeelClient,
  ops: number,
): Promise<{ lat: number[]; fromSend: number[]; early: number }> {
  const arrived = new Map<number, bigint>();
  const w = watcher.watch('wl/', { prefix: true }, {
    onEvents: (_events, revision) => arrived.set(revision, process.hrtime.bigint()),
  });
  await w.created;
  const acked = new Map<number, bigint>();
  const sent = new Map<number, bigint>();
  for (let i = 0; i < ops; i++) {
    const at = process.hrtime.bigint();
    const r = await writer.put(`wl/${i % 100}`, VALUE);
    acked.set(r.header.revision, process.hrtime.bigint());
    sent.set(r.header.revision, at);
  }
  const last = Math.max(...acked.keys());
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && w.lastRevision < last) await sleep(10);
  await w.cancel();
  const lat: number[] = [];
  const fromSend: number[] = [];
  let early = 0;
  for (const [rev, ackAt] of acked) {
    const at = arrived.get(rev);
    if (at === undefined) throw new Error(`revision ${rev} never reached the watcher`);
    const ms = Number(at - ackAt) / 1e6;
    if (ms < 0) early++;
    lat.push(Math.max(0, ms));
    fromSend.push(Number(at - (sent.get(rev) as bigint)) / 1e6);
  }
  lat.sort((a, b) => a - b);
  fromSend.sort((a, b) => a - b);
  return { lat, fromSend, early };
}

async function loadKeys(client: KeelClient, n: number, concurrency: number): Promise<number> {
  const perTxn = 100;
  const txns = Math.ceil(n / perTxn);
  let next = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < txns) {
        const t = next++;
        const success: RequestOp[] = [];
        for (let i = t * perTxn; i < Math.min(n, (t + 1) * perTxn); i++) {
          success.push({ type: 'put', put: { key: Buffer.from(`mem/${String(i).padStart(8, '0')}`), value: VALUE } });
        }
        await client.txn({ compare: [], success, failure: [] });
      }
    }),
  );
  return (Date.now() - t0) / 1000;
}

async function main(): Promise<void> {
  const getOps = arg('get-ops', 40000);
  const watchOps = arg('watch-ops', 2000);
  const keys = arg('keys', 0);
  const report = new Report();
  const say = (line: string): void => report.say(line);
  const clients: KeelClient[] = [];
  await withLocalCluster(3, async (dir, cf) => {
    try {
      await measure(dir, cf, clients, { getOps, watchOps, keys }, say);
      report.save();
    } finally {
      for (const c of clients) await c.close().catch(() => undefined);
    }
  });
}

async function measure(
  dir: string,
  cf: ClusterFile,
  clients: KeelClient[],
  o: { getOps: number; watchOps: number; keys: number },
  say: (line: string) => void,
): Promise<void> {
  const { getOps, watchOps, keys } = o;
  const endpoints = cf.endpoints.split(',');
  await waitLeader(cf, new Set(), 15_000);
  // One client per member (its own endpoint first), so the reads are spread over the 3 members.
  for (let i = 0; i < endpoints.length; i++) {
    clients.push(new KeelClient({ endpoints: [endpoints[i], ...endpoints.filter((_e, j) => j !== i)], requestTimeoutMs: 20_000 }));
  }
  for (let i = 0; i < 1000; i++) await clients[0].put(`bench/${String(i).padStart(6, '0')}`, VALUE);

  await getLoad(clients, 2000, 64, false); // warm-up, not counted
  const lin = await getLoad(clients, getOps, 64, false);
  const ser = await getLoad(clients, getOps, 64, true);
  const wl = await watchLatency(clients[0], clients[1], watchOps);

  const f = (x: number): string => x.toFixed(2);
  say(`# Keel store figures (${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, Node ${process.version})`);
  say('');
  say(`Command: npm run bench:store -- --get-ops ${getOps} --watch-ops ${watchOps} --keys ${keys}`);
  say('3 members on 127.0.0.1 (`keel cluster up`, default settings), native stream client (KeelClient), one');
  say('connection per member, load generator on the same 2-core machine.');
  say('');
  say('| measure | result |');
  say('|---|---|');
  say(
    `| get, linearizable (ReadIndex), c=64, ${getOps} ops | ${lin.opsPerSec.toFixed(0)} ops/s (p50 ${f(percentile(lin.lat, 50))} / p99 ${f(percentile(lin.lat, 99))} ms) |`,
  );
  say(
    `| get, serializable (local), c=64, ${getOps} ops | ${ser.opsPerSec.toFixed(0)} ops/s (p50 ${f(percentile(ser.lat, 50))} / p99 ${f(percentile(ser.lat, 99))} ms) |`,
  );
  say(`| linearizable / serializable | ${(lin.opsPerSec / ser.opsPerSec).toFixed(2)} |`);
  say(
    `| watch: put acknowledged → event at a watcher on another member, ${watchOps} sequential puts | p50 ${f(percentile(wl.lat, 50))} / p99 ${f(percentile(wl.lat, 99))} / max ${f(wl.lat[wl.lat.length - 1])} ms (${wl.early} events arrived before the ack: counted as 0) |`,
  );
  say(
    `| watch: put sent → event at that watcher (same puts) | p50 ${f(percentile(wl.fromSend, 50))} / p99 ${f(percentile(wl.fromSend, 99))} / max ${f(wl.fromSend[wl.fromSend.length - 1])} ms |`,
  );

  if (keys > 0) {
    const secs = await loadKeys(clients[0], keys, 16);
    await sleep(5000); // let the followers apply and the snapshot, if one is due, finish
    const rss = cf.members.map((m) => ({ name: m.name, rss: rssMiB(m.pid as number), peak: peakRssMiB(m.pid as number) }));
    const count = await clients[0].get('mem/', { prefix: true, countOnly: true });
    say(
      `| resident memory with ${count.count} keys of 256 bytes (loaded in ${secs.toFixed(0)} s, txns of 100 puts) | ${rss
        .map((r) => `${r.name}: ${r.rss.toFixed(0)} MiB (peak ${r.peak.toFixed(0)} MiB)`)
        .join('; ')} |`,
    );
    // The same member after a restart: its state comes back from disk (the newest snapshot file and the
    // WAL), without the garbage and the in-memory log of the load.
    const last = cf.members[cf.members.length - 1];
    process.kill(last.pid as number, 'SIGTERM');
    await sleep(2000);
    keel('cluster', 'up', '--nodes', String(cf.members.length), '--dir', dir, '--detach');
    const restarted = readCluster(dir).members.find((m) => m.name === last.name);
    await sleep(10_000);
    const again = await clients[0].get('mem/', { prefix: true, countOnly: true, serializable: true });
    say(
      `| ${last.name} restarted on that data (after 10 s; ${again.count} keys) | ${rssMiB(restarted?.pid as number).toFixed(0)} MiB (peak ${peakRssMiB(restarted?.pid as number).toFixed(0)} MiB) |`,
    );
  }
}

runMain(main);
