// Processes and ports of a local cluster: is a recorded pid still our member, stop members, is a port free.

import fs from 'node:fs';
import net from 'node:net';

/** Whether a process with this pid exists (a zombie counts as gone). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return false;
  }
  // "<pid> (<comm>) <state> ...": comm may hold spaces and parentheses, so look after the last ')'.
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  return state === 'Z' || state === 'X';
}

function hasProcFs(): boolean {
  return fs.existsSync('/proc/self/cmdline');
}

/** The arguments of a process, or undefined when they cannot be read. */
export function processArgs(pid: number): string[] | undefined {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return raw.split('\0').filter((s, i, all) => !(s === '' && i === all.length - 1));
  } catch {
    return undefined;
  }
}

function flagValue(args: string[], flag: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag) return args[i + 1];
    if (args[i].startsWith(flag + '=')) return args[i].slice(flag.length + 1);
  }
  return undefined;
}

/** Whether `pid` is alive and is the `keel node` of this member (same name and data dir), so that a
 *  recycled pid is not taken for a member. Without /proc, only whether the pid exists. */
export function isMemberProcess(pid: number, member: { name: string; dataDir: string }): boolean {
  if (!pidExists(pid)) return false;
  if (!hasProcFs()) return true;
  const args = processArgs(pid);
  if (args === undefined || args.length === 0) return false;
  const isNodeProgram = args.some((a) => a.includes('node'));
  return (
    isNodeProgram &&
    args.includes('node') &&
    flagValue(args, '--name') === member.name &&
    flagValue(args, '--data-dir') === member.dataDir
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Waits (bounded) until none of the pids exists; returns those still alive at the deadline. */
export async function waitGone(pids: number[], timeoutMs: number, pollMs = 100): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  let alive = pids.filter(pidExists);
  while (alive.length > 0 && Date.now() < deadline) {
    await sleep(pollMs);
    alive = alive.filter(pidExists);
  }
  return alive;
}

/** SIGTERM, wait up to `timeoutMs`, then SIGKILL what is left. Returns the pids that had to be killed. */
export async function stopProcesses(pids: number[], timeoutMs: number): Promise<number[]> {
  for (const pid of pids) signal(pid, 'SIGTERM');
  const left = await waitGone(pids, timeoutMs);
  for (const pid of left) signal(pid, 'SIGKILL');
  await waitGone(left, 5000);
  return left;
}

export type PortState = 'free' | 'in-use' | 'denied';

/** Whether 127.0.0.1:port can be listened on now (the check closes its listener before returning). */
export function checkPort(port: number, host = '127.0.0.1'): Promise<PortState> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EADDRINUSE') resolve('in-use');
      else if (e.code === 'EACCES') resolve('denied');
      else reject(e);
    });
    srv.listen({ port, host, exclusive: true }, () => {
      srv.close(() => resolve('free'));
    });
  });
}

/** Where free ports are looked for: below Linux's default ephemeral range (32768-60999), from which the
 *  kernel takes the source ports of outgoing connections: a port probed free there could be taken by a
 *  member's dial to a peer before the member meant to listen on it has started. */
export const PROBE_PORTS = { from: 20000, to: 32000 } as const;

/** The first port of `count` consecutive ports that are free on 127.0.0.1 now (even, in PROBE_PORTS). */
export async function freePortRange(count: number): Promise<number> {
  const span = (PROBE_PORTS.to - PROBE_PORTS.from - count) / 2;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = PROBE_PORTS.from + Math.floor(Math.random() * span) * 2;
    let free = true;
    for (let p = base; p < base + count && free; p++) free = (await checkPort(p)) === 'free';
    if (free) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}
