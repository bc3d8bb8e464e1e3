// First figures for the foundation issue (the full benchmark, side by side with etcd, is a later issue):
// - the time to elect a new leader after SIGKILL of the leader of a 3-member cluster (N trials, median);
// - put throughput and latency on a 3-member cluster, sequential and 64 concurrent, over the HTTP JSON API;
// - as the reference measured in the same run: raw 400-byte write + fdatasync calls per second on the same
//   disk, since one put costs at least one fsync on the leader and one on a follower.
//
// Usage: npm run bench:foundation -- [--trials 10] [--seq-ops 2000] [--conc-ops 20000] [--out FILE]

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePortRange } from '../src/cli/procs';
import { KeelHttpClient } from '../src/client/http-client';
import { agreedLeader } from '../src/client/leader';

const MAIN = path.resolve(__dirname, '../../dist/cli/main.js');

interface ClusterFile {
  members: { name: string; pid: number | null; clientUrl: string; peerUrl: string; dataDir: string }[];
  endpoints: string;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

function argStr(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

function keel(...args: string[]): string {
  return execFileSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
}

function readCluster(dir: string): ClusterFile {
  return JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as ClusterFile;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The name of the leader that every member not in `exclude` names, or undefined. */
async function leaderOf(cf: ClusterFile, exclude: Set<string>): Promise<string | undefined> {
  const live = cf.members.filter((m) => !exclude.has(m.name));
  const leader = await agreedLeader(live.map((m) => m.clientUrl));
  return live.find((m) => m.clientUrl === leader)?.name;
}

async function waitLeader(cf: ClusterFile, exclude: Set<string>, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const l = await leaderOf(cf, exclude);
    if (l) return l;
    await sleep(10);
  }
  throw new Error('no leader');
}

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

function fsyncRate(dir: string, n = 1000): number {
  const file = path.join(dir, 'fsync-probe');
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.alloc(400, 1);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    fs.writeSync(fd, buf, 0, buf.length, i * buf.length);
    fs.fdatasyncSync(fd);
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  fs.closeSync(fd);
  fs.rmSync(file);
  return n / secs;
}

async function main(): Promise<void> {
  const trials = arg('trials', 10);
  const seqOps = arg('seq-ops', 2000);
  const concOps = arg('conc-ops', 20000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-'));
  const base = await freePortRange(6);
  const lines: string[] = [];
  const say = (s: string): void => {
    lines.push(s);
    console.log(s);
  };
  try {
    const fsyncBefore = fsyncRate(dir);
    keel('cluster', 'up', '--nodes', '3', '--dir', dir, '--base-port', String(base), '--detach');
    let cf = readCluster(dir);
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
    const out = argStr('out');
    if (out) fs.writeFileSync(out, lines.join('\n') + '\n');
  } finally {
    try {
      keel('cluster', 'down', '--dir', dir);
    } catch (err) {
      console.error(`cluster down failed: ${(err as Error).message}`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: Error) => {
  console.error(err.stack ?? err.message);
  process.exit(1);
});
