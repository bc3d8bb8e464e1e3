// First figures for the foundation issue (the full benchmark, side by side with etcd, is a later issue):
// - the time to elect a new leader after SIGKILL of the leader of a 3-member cluster (N trials, median);
// - put throughput and latency on a 3-member cluster, sequential and 64 concurrent, over the HTTP JSON API;
// - as the reference measured in the same run: raw 400-byte write + fdatasync calls per second on the same
//   disk, since one put costs at least one fsync on the leader and one on a follower.
//
// Usage: npm run bench:foundation -- [--trials 10] [--seq-ops 2000] [--conc-ops 20000] [--out FILE]

import os from 'node:os';
import { KeelHttpClient } from '../src/client/http-client';
import {
  arg,
  fsyncRate,
  keel,
  percentile,
  readCluster,
  Report,
  runMain,
  sleep,
  waitLeader,
  withLocalCluster,
} from './lib/common';

async function putLoad(endpoints: string[], ops: number, concurrency: number): Promise<{ opsPerSec: number; lat: number[] }> {
  const client = new KeelHttpClient({ endpoints, requestTimeoutMs: 10_000 });
  const value = 'x'.repeat(256);
  const lat: number[] = [];
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ops) {
        const i = next++;
        const s = process.hrtime.bigint();
        await client.put(`bench/${String(i % 100000).padStart(8, '0')}`, value);
        lat.push(Number(process.hrtime.bigint() - s) / 1e6);
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  lat.sort((a, b) => a - b);
  return { opsPerSec: ops / secs, lat };
}

async function main(): Promise<void> {
  const trials = arg('trials', 10);
  const seqOps = arg('seq-ops', 2000);
  const concOps = arg('conc-ops', 20000);
  const report = new Report();
  const say = (line: string): void => report.say(line);
  await withLocalCluster(3, async (dir, first) => {
    // Measured with the cluster up but idle, and again after the load; the mean is the reference.
    const fsyncBefore = fsyncRate(dir);
    let cf = first;
    const endpoints = cf.endpoints.split(',');
    await waitLeader(cf, new Set(), 15_000);

    await putLoad(endpoints, 500, 16); // warm-up, not counted
    const seq = await putLoad(endpoints, seqOps, 1);
    const conc = await putLoad(endpoints, concOps, 64);
    const fsyncAfter = fsyncRate(dir);
    const fsyncRef = (fsyncBefore + fsyncAfter) / 2;

    const elections: number[] = [];
    for (let t = 0; t < trials; t++) {
      cf = readCluster(dir);
      const leader = await waitLeader(cf, new Set(), 15_000);
      const m = cf.members.find((x) => x.name === leader);
      if (!m || !m.pid) throw new Error('leader pid unknown');
      process.kill(m.pid, 'SIGKILL');
      const killed = process.hrtime.bigint();
      await waitLeader(cf, new Set([leader]), 15_000);
      elections.push(Number(process.hrtime.bigint() - killed) / 1e6);
      await sleep(200);
      keel('cluster', 'up', '--nodes', '3', '--dir', dir, '--detach');
      await waitLeader(readCluster(dir), new Set(), 15_000);
      await sleep(500);
    }
    elections.sort((a, b) => a - b);

    const f = (x: number): string => x.toFixed(1);
    say(`# Keel foundation figures (${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, Node ${process.version})`);
    say('');
    say(`Command: npm run bench:foundation -- --trials ${trials} --seq-ops ${seqOps} --conc-ops ${concOps}`);
    say('3 members on 127.0.0.1, default settings, 256-byte values, HTTP JSON API through KeelHttpClient,');
    say('load generator in the same machine (2 cores shared with the 3 members).');
    say('');
    say('| measure | result |');
    say('|---|---|');
    say(`| reference: 400-byte write + fdatasync on this disk, same run | ${fsyncRef.toFixed(0)} /s |`);
    say(
      `| put, sequential (c=1), ${seqOps} ops | ${seq.opsPerSec.toFixed(0)} ops/s (p50 ${f(percentile(seq.lat, 50))} / p99 ${f(percentile(seq.lat, 99))} / max ${f(seq.lat[seq.lat.length - 1])} ms); ${(seq.opsPerSec / fsyncRef).toFixed(3)} x the fsync rate |`,
    );
    say(
      `| put, 64 concurrent, ${concOps} ops | ${conc.opsPerSec.toFixed(0)} ops/s (p50 ${f(percentile(conc.lat, 50))} / p99 ${f(percentile(conc.lat, 99))} / max ${f(conc.lat[conc.lat.length - 1])} ms); ${(conc.opsPerSec / fsyncRef).toFixed(3)} x the fsync rate |`,
    );
    say(
      `| new leader after SIGKILL of the leader, ${trials} trials | median ${f(percentile(elections, 50))} ms (min ${f(elections[0])}, max ${f(elections[elections.length - 1])}) |`,
    );
    say('');
    say(`Election trials (ms): ${elections.map(f).join(', ')}`);
    report.save();
  });
}

runMain(main);
