// Shared by the benchmark scripts: flags, local clusters through `keel cluster up`, percentiles, the fsync
// reference, and process resident memory.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePortRange } from '../../src/cli/procs';
import { agreedLeader } from '../../src/client/leader';

export const MAIN = path.resolve(__dirname, '../../../dist/cli/main.js');

export interface ClusterFile {
  members: { name: string; pid: number | null; clientUrl: string; peerUrl: string; dataDir: string }[];
  endpoints: string;
}

export function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v)) throw new Error(`--${name}: "${process.argv[i + 1]}" is not a number`);
  return v;
}

export function argStr(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/** Runs the compiled `keel` CLI and returns its stdout. */
export function keel(...args: string[]): string {
  return execFileSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
}

export function readCluster(dir: string): ClusterFile {
  return JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as ClusterFile;
}

/** The p-th percentile of an ascending list (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** The name of the leader that every member not in `exclude` names, or undefined. */
export async function leaderOf(cf: ClusterFile, exclude: Set<string>): Promise<string | undefined> {
  const live = cf.members.filter((m) => !exclude.has(m.name));
  const leader = await agreedLeader(live.map((m) => m.clientUrl));
  return live.find((m) => m.clientUrl === leader)?.name;
}

export async function waitLeader(cf: ClusterFile, exclude: Set<string>, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const l = await leaderOf(cf, exclude);
    if (l) return l;
    await sleep(10);
  }
  throw new Error('no leader');
}

/** 400-byte write + fdatasync calls per second on the disk of `dir`: what one put must pay at least. */
export function fsyncRate(dir: string, n = 1000): number {
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

/** Resident set size of a process, in MiB, from /proc (Linux). */
export function rssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Peak resident set size of a process, in MiB. */
export function peakRssMiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** A local Keel cluster started by `keel cluster up --detach` in a temporary dir. */
export interface LocalCluster {
  dir: string;
  cf: ClusterFile;
  /** `keel cluster down` (SIGTERM, then SIGKILL after its timeout), then removes the dir. Idempotent. */
  stop(): void;
  /** SIGKILL to every member, no waiting, then removes the dir: for exit and signal handlers. */
  kill(): void;
}

/** Starts `nodes` members with `keel cluster up --detach` in a temporary dir on free ports. `env` is the
 *  environment of `keel cluster up`, which its members inherit (e.g. NODE_OPTIONS=--cpu-prof). */
export async function startLocalCluster(nodes: number, env?: NodeJS.ProcessEnv): Promise<LocalCluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-bench-'));
  let stopped = false;
  const remove = (): void => fs.rmSync(dir, { recursive: true, force: true });
  const pids = (): number[] => {
    try {
      return readCluster(dir).members.map((m) => m.pid).filter((p): p is number => p !== null);
    } catch {
      return [];
    }
  };
  const cluster: LocalCluster = {
    dir,
    cf: { members: [], endpoints: '' },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        keelEnv(env, 'cluster', 'down', '--dir', dir);
      } catch (err) {
        console.error(`cluster down failed: ${(err as Error).message}`);
        for (const pid of pids()) killQuietly(pid);
      }
      remove();
    },
    kill() {
      if (stopped) return;
      stopped = true;
      for (const pid of pids()) killQuietly(pid);
      remove();
    },
  };
  try {
    const base = await freePortRange(2 * nodes);
    keelEnv(env, 'cluster', 'up', '--nodes', String(nodes), '--dir', dir, '--base-port', String(base), '--detach');
    cluster.cf = readCluster(dir);
  } catch (err) {
    cluster.kill();
    throw err;
  }
  return cluster;
}

function keelEnv(env: NodeJS.ProcessEnv | undefined, ...args: string[]): string {
  return execFileSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: env ?? process.env });
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

/** Starts `nodes` members with `keel cluster up --detach` in a temporary dir on free ports, runs `fn`, and
 *  always stops the members and removes the dir afterwards. */
export async function withLocalCluster<T>(
  nodes: number,
  fn: (dir: string, cf: ClusterFile) => Promise<T>,
): Promise<T> {
  const cluster = await startLocalCluster(nodes);
  try {
    return await fn(cluster.dir, cluster.cf);
  } finally {
    cluster.stop();
  }
}

/** Runs a benchmark's main: an error is printed and the process exits 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: Error) => {
    console.error(err.stack ?? err.message);
    process.exit(1);
  });
}

/** Lines printed as they come and, with `--out FILE`, written to FILE at the end. */
export class Report {
  private readonly lines: string[] = [];

  say(line: string): void {
    this.lines.push(line);
    console.log(line);
  }

  /** Writes the lines to the file named by --out, if any. */
  save(): void {
    const out = argStr('out');
    if (out) fs.writeFileSync(out, this.lines.join('\n') + '\n');
  }
}
