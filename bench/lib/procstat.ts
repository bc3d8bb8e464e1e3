// What a run costs, outside the request path: CPU time of server processes (from /proc/<pid>/stat) and of
// this process (process.cpuUsage), WAL fsyncs from each member's /metrics, and, for clusters the benchmark
// did not start, the pid that listens on a loopback port.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';

let clkTck: number | undefined;

/** Clock ticks per second of /proc/<pid>/stat's times (getconf CLK_TCK; 100 on Linux almost always). */
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** CPU time (user + system) of a process so far, in seconds; undefined if it is gone or not readable. */
export function processCpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "<pid> (<comm>) <state> <ppid> ...": comm may hold spaces; fields 14 and 15 (utime, stime) counted
  // from 1, i.e. 11 and 12 after the state (field 3).
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / ticksPerSecond();
}

/** This process's CPU time so far, in seconds. */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export interface CpuSample {
  at: bigint;
  self: number;
  procs: Map<string, number | undefined>;
}

export function sampleCpu(procs: { name: string; pid: number | undefined }[]): CpuSample {
  const m = new Map<string, number | undefined>();
  for (const p of procs) m.set(p.name, p.pid === undefined ? undefined : processCpuSeconds(p.pid));
  return { at: process.hrtime.bigint(), self: selfCpuSeconds(), procs: m };
}

export interface CpuFigures {
  /** CPU of the load generator (this process), in % of one core. */
  generator: number;
  /** CPU of each server process, in % of one core (null: unknown pid). */
  servers: Record<string, number | null>;
  /** Sum over the server processes whose CPU is known. */
  serverTotal: number;
  /** CPU time per operation, in µs: load generator, and all servers together. */
  generatorUsPerOp: number | null;
  serverUsPerOp: number | null;
}

export function cpuBetween(a: CpuSample, b: CpuSample, ops: number): CpuFigures {
  const wall = Number(b.at - a.at) / 1e9;
  const pct = (secs: number): number => round1((100 * secs) / wall);
  const servers: Record<string, number | null> = {};
  let total = 0;
  let known = 0;
  for (const [name, before] of a.procs) {
    const after = b.procs.get(name);
    if (before === undefined || after === undefined) {
      servers[name] = null;
      continue;
    }
    servers[name] = pct(after - before);
    total += after - before;
    known++;
  }
  const self = b.self - a.self;
  return {
    generator: pct(self),
    servers,
    serverTotal: pct(total),
    generatorUsPerOp: ops > 0 ? round1((self * 1e6) / ops) : null,
    serverUsPerOp: ops > 0 && known > 0 ? round1((total * 1e6) / ops) : null,
  };
}

function round1(x: number): number {
  return Math.round(x * 10) / 10;
}

/** GET a URL over HTTP/1.1, the body as text. */
export function httpGetText(url: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 0) >= 400) reject(new Error(`GET ${url}: HTTP ${res.statusCode}`));
        else resolve(body);
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

export const FSYNC_METRIC = 'etcd_disk_wal_fsync_duration_seconds_count';

/** The value of an unlabelled counter in Prometheus text, or undefined. */
export function metricValue(text: string, name: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(name + ' ') || line.startsWith(name + '{')) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) return v;
    }
  }
  return undefined;
}

/** WAL fsyncs so far, summed over the members (from each one's /metrics); undefined if any is unknown. */
export async function fsyncCount(clientUrls: string[]): Promise<number | undefined> {
  const values = await Promise.all(
    clientUrls.map(async (u) => {
      try {
        return metricValue(await httpGetText(new URL('/metrics', u).toString()), FSYNC_METRIC);
      } catch {
        return undefined;
      }
    }),
  );
  if (values.some((v) => v === undefined)) return undefined;
  return (values as number[]).reduce((s, v) => s + v, 0);
}

/** The pid of the process of this user that listens on 127.0.0.1:port or *:port (TCP), or undefined. */
export function pidListeningOn(port: number): number | undefined {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || f[3] !== '0A') continue; // 0A: LISTEN
      const local = f[1];
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(f[9]);
    }
  }
  if (inodes.size === 0) return undefined;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${d}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const link = fs.readlinkSync(`/proc/${d}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m && inodes.has(m[1])) return Number(d);
      } catch {
        // closed meanwhile
      }
    }
  }
  return undefined;
}
