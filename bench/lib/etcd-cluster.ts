// A real etcd cluster for the side-by-side benchmark: `nodes` members of the `etcd` binary on PATH, in a
// temporary dir, on free loopback ports, default settings except a storage quota of 8 GiB (so that a long
// run of puts does not raise the NOSPACE alarm at etcd's 2 GiB default). Every member is a child of this
// process in its own process group, stopped by its pid (SIGTERM, then SIGKILL).

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePortRange } from '../../src/cli/procs';
import { httpGetText } from './procstat';

export interface EtcdMember {
  name: string;
  pid: number;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
}

export interface EtcdCluster {
  dir: string;
  members: EtcdMember[];
  /** SIGTERM to every member, SIGKILL to those still alive after `timeoutMs`, then removes the dir. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL to every member at once, then removes the dir: for exit and signal handlers. */
  kill(): void;
}

/** The `etcd` binary on PATH, or undefined. */
export function findEtcd(): string | undefined {
  for (const d of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!d) continue;
    const f = path.join(d, 'etcd');
    try {
      fs.accessSync(f, fs.constants.X_OK);
      if (fs.statSync(f).isFile()) return f;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** "3.4.23", from `etcd --version`, or undefined. */
export function etcdVersion(bin: string | undefined = findEtcd()): string | undefined {
  if (!bin) return undefined;
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    return /etcd Version:\s*(\S+)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startEtcdCluster(nodes: number, opts: { bin?: string; startTimeoutMs?: number } = {}): Promise<EtcdCluster> {
  const bin = opts.bin ?? findEtcd();
  if (!bin) throw new Error('etcd is not on PATH (Debian: apt-get install etcd-server)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-bench-'));
  const base = await freePortRange(2 * nodes);
  const members: EtcdMember[] = Array.from({ length: nodes }, (_v, i) => ({
    name: `e${i + 1}`,
    pid: 0,
    clientUrl: `http://127.0.0.1:${base + 2 * i}`,
    peerUrl: `http://127.0.0.1:${base + 2 * i + 1}`,
    dataDir: path.join(dir, `e${i + 1}`),
  }));
  const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  const children = new Map<string, string>(); // name -> how it exited
  let stopped = false;
  const remove = (): void => fs.rmSync(dir, { recursive: true, force: true });
  const cluster: EtcdCluster = {
    dir,
    members,
    async stop(timeoutMs = 10_000) {
      if (stopped) return;
      stopped = true;
      const pids = members.map((m) => m.pid).filter((p) => p > 0);
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // gone already
        }
      }
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && pids.some(alive)) await new Promise((r) => setTimeout(r, 50));
      for (const pid of pids.filter(alive)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      remove();
    },
    kill() {
      if (stopped) return;
      stopped = true;
      for (const m of members) {
        if (m.pid <= 0) continue;
        try {
          process.kill(m.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      remove();
    },
  };
  try {
    for (const m of members) {
      const log = fs.openSync(path.join(dir, `${m.name}.log`), 'a');
      const args = [
        '--name', m.name,
        '--data-dir', m.dataDir,
        '--listen-client-urls', m.clientUrl,
        '--advertise-client-urls', m.clientUrl,
        '--listen-peer-urls', m.peerUrl,
        '--initial-advertise-peer-urls', m.peerUrl,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', path.basename(dir),
        '--quota-backend-bytes', String(8 * 1024 ** 3),
        '--logger', 'zap',
        '--log-outputs', 'stderr',
      ];
      const child = spawn(bin, args, { stdio: ['ignore', log, log], detached: true, cwd: dir });
      fs.closeSync(log);
      if (child.pid === undefined) throw new Error(`could not start ${bin}`);
      m.pid = child.pid;
      child.on('exit', (code, sig) => children.set(m.name, sig ? `was killed by ${sig}` : `exited with code ${code}`));
      child.unref();
    }
    await waitHealthy(cluster, children, opts.startTimeoutMs ?? 20_000);
  } catch (err) {
    cluster.kill();
    throw err;
  }
  return cluster;
}

/** Every member's /health says true (etcd answers false until there is a leader). */
async function waitHealthy(c: EtcdCluster, exits: Map<string, string>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exits.size > 0) {
      const [name, how] = [...exits][0];
      let tail = '';
      try {
        tail = fs.readFileSync(path.join(c.dir, `${name}.log`), 'utf8').split('\n').slice(-10).join('\n');
      } catch {
        // no log
      }
      throw new Error(`etcd member ${name} ${how}:\n${tail}`);
    }
    const ok = await Promise.all(
      c.members.map(async (m) => {
        try {
          return JSON.parse(await httpGetText(`${m.clientUrl}/health`, 1000)).health === 'true';
        } catch {
          return false;
        }
      }),
    );
    if (ok.every(Boolean)) return;
    if (Date.now() > deadline) throw new Error(`etcd cluster in ${c.dir} not healthy after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
