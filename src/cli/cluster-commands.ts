// keel cluster up / down / status: a local cluster of `keel node` processes, described by D/cluster.json.
// Member i (0-based) is named n<i+1>, listens for clients on base+2i and for peers on base+2i+1, keeps
// its data in D/n<i+1> and appends its stdout and stderr to D/n<i+1>.log.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Argv } from 'yargs';
import { KeelHttpClient } from '../client/http-client';
import {
  clusterFilePath,
  readClusterFile,
  updatePids,
  writeClusterFile,
  type ClusterFile,
  type ClusterMember,
} from './cluster-file';
import { checkTimeout, type CliContext, type GlobalArgs, type RootArgs } from './context';
import { isLeader } from './endpoint-commands';
import { UsageError } from './errors';
import { errorMessage, renderTable } from './format';
import { KEEL_MAIN, memberNodeArgs } from './member-args';
import { checkPort, isMemberProcess, stopProcesses } from './procs';

/** The compiled CLI that runs each member; the same path from src/cli and dist/cli. */
export const MEMBER_MAIN = KEEL_MAIN;

export const MAX_NODES = 9;
export const DEFAULT_NODES = 3;
export const DEFAULT_BASE_PORT = 2379;
export const DEFAULT_START_TIMEOUT_MS = 15000;
/** How long members get to exit on SIGTERM before SIGKILL. */
export const STOP_TIMEOUT_MS = 10000;
const LOG_TAIL_LINES = 20;

export function memberLogPath(dir: string, name: string): string {
  return path.join(path.resolve(dir), `${name}.log`);
}

export function validateNodes(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_NODES) {
    throw new UsageError(
      `--nodes must be an integer from 1 to ${MAX_NODES} (got ${Number.isNaN(n) ? 'a value that is not a number' : n})`,
    );
  }
  return n;
}

export function validateBasePort(base: number, nodes: number): number {
  const max = 65535 - (2 * nodes - 1);
  if (!Number.isInteger(base) || base < 1 || base > max) {
    const got = Number.isNaN(base) ? 'a value that is not a number' : String(base);
    throw new UsageError(
      `--base-port must be an integer from 1 to ${max} (${nodes} members use ${2 * nodes} ports from it; got ${got})`,
    );
  }
  return base;
}

/** Why an even-sized cluster is a poor choice, or undefined for an odd size. */
export function evenSizeWarning(n: number): string | undefined {
  if (n % 2 !== 0) return undefined;
  const tolerated = Math.floor((n - 1) / 2);
  const quorum = Math.floor(n / 2) + 1;
  const smallerQuorum = Math.floor((n - 1) / 2) + 1;
  return (
    `warning: a cluster of ${n} members tolerates ${tolerated} failure${tolerated === 1 ? '' : 's'}, no more than one of ` +
    `${n - 1}, and needs a larger quorum (${quorum} instead of ${smallerQuorum}); an odd size is better`
  );
}

/** The layout of a new cluster. */
export function planMembers(dir: string, nodes: number, basePort: number): ClusterMember[] {
  const abs = path.resolve(dir);
  return Array.from({ length: nodes }, (_, i) => ({
    name: `n${i + 1}`,
    pid: null,
    clientUrl: `http://127.0.0.1:${basePort + 2 * i}`,
    peerUrl: `http://127.0.0.1:${basePort + 2 * i + 1}`,
    dataDir: path.join(abs, `n${i + 1}`),
  }));
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** Problems with the ports of the members about to start, as "port P (client URL of n1) is in use". */
export async function portProblems(members: ClusterMember[]): Promise<string[]> {
  const problems: string[] = [];
  for (const m of members) {
    for (const [kind, url] of [
      ['client', m.clientUrl],
      ['peer', m.peerUrl],
    ] as const) {
      const u = new URL(url);
      const state = await checkPort(Number(u.port), u.hostname);
      if (state === 'in-use') problems.push(`port ${u.port} (${kind} URL of ${m.name}) is in use`);
      if (state === 'denied')
        problems.push(`port ${u.port} (${kind} URL of ${m.name}) may not be used (permission denied)`);
    }
  }
  return problems;
}

function logTail(file: string, lines: number): string {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const all = text.split('\n');
    if (all[all.length - 1] === '') all.pop();
    return all.slice(-lines).join('\n');
  } catch (e) {
    return `(cannot read ${file}: ${errorMessage(e)})`;
  }
}

function describeExit(code: number | null, sig: NodeJS.Signals | null): string {
  return sig !== null ? `was killed by ${sig}` : `exited with code ${code ?? '?'}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface LeaderWait {
  /** The leader's name (or id), when some member knows one. */
  leader?: string;
  /** Members started now, still alive, that had not reported a leader at the deadline. */
  lagging: string[];
}

/** Polls the members' status until one knows a leader and every member in `started` that is still
 *  alive (per `exited`) knows it too, or until the deadline, or until `giveUp()`. */
async function waitForLeader(
  members: ClusterMember[],
  started: ClusterMember[],
  exited: (name: string) => boolean,
  timeoutMs: number,
  giveUp: () => boolean,
): Promise<LeaderWait> {
  const client = new KeelHttpClient({ endpoints: members.map((m) => m.clientUrl), requestTimeoutMs: 1000 });
  const deadline = Date.now() + timeoutMs;
  let result: LeaderWait = { lagging: started.map((m) => m.name) };
  while (Date.now() < deadline && !giveUp()) {
    const statuses = await Promise.all(members.map((m) => client.status(m.clientUrl).catch(() => undefined)));
    const knows = statuses.find((s) => s !== undefined && s.leader !== '');
    if (knows !== undefined) {
      const leader = statuses.find((x) => x !== undefined && isLeader(x));
      const lagging = started
        .filter((m) => !exited(m.name))
        .filter((m) => {
          const s = statuses[members.indexOf(m)];
          return s === undefined || s.leader === '';
        })
        .map((m) => m.name);
      result = { leader: leader !== undefined && leader.name !== '' ? leader.name : knows.leader, lagging };
      if (lagging.length === 0) return result;
    }
    await sleep(200);
  }
  return result;
}

function printCluster(ctx: CliContext, dir: string, cf: ClusterFile, leader: string | undefined, json: boolean): void {
  if (json) {
    ctx.printJson({ ...cf, leader: leader ?? null });
    return;
  }
  ctx.print(`ENDPOINTS=${cf.endpoints}`);
  ctx.io.out(
    renderTable(
      ['NAME', 'PID', 'CLIENT URL', 'PEER URL', 'DATA DIR', 'LOG'],
      cf.members.map((m) => [
        m.name,
        m.pid === null ? '-' : String(m.pid),
        m.clientUrl,
        m.peerUrl,
        m.dataDir,
        memberLogPath(dir, m.name),
      ]),
    ),
  );
  if (leader !== undefined) ctx.print(`leader: ${leader}`);
}

export interface UpArgs extends GlobalArgs {
  dir: string;
  nodes?: number;
  basePort?: number;
  snapshotCount?: number;
  detach: boolean;
  startTimeout: number;
}

export async function clusterUpCommand(ctx: CliContext, a: UpArgs): Promise<number> {
  const dir = path.resolve(a.dir);
  const startTimeoutMs = a.startTimeout;
  if (!Number.isInteger(startTimeoutMs) || startTimeoutMs <= 0) {
    throw new UsageError(`--start-timeout must be a positive integer number of milliseconds (got ${startTimeoutMs})`);
  }
  if (a.snapshotCount !== undefined && (!Number.isSafeInteger(a.snapshotCount) || a.snapshotCount <= 0)) {
    throw new UsageError(`--snapshot-count must be a positive integer (got ${a.snapshotCount})`);
  }
  let members: ClusterMember[];
  if (fs.existsSync(clusterFilePath(dir))) {
    members = readClusterFile(dir).members;
    if (a.nodes !== undefined && a.nodes !== members.length) {
      ctx.warn(`note: ${clusterFilePath(dir)} describes ${members.length} members; ignoring --nodes ${a.nodes}`);
    }
    const base = portOf(members[0].clientUrl);
    if (a.basePort !== undefined && a.basePort !== base) {
      ctx.warn(`note: ${clusterFilePath(dir)} uses base port ${base}; ignoring --base-port ${a.basePort}`);
    }
  } else {
    const nodes = validateNodes(a.nodes ?? DEFAULT_NODES);
    const basePort = validateBasePort(a.basePort ?? DEFAULT_BASE_PORT, nodes);
    const warning = evenSizeWarning(nodes);
    if (warning !== undefined) ctx.warn(warning);
    members = planMembers(dir, nodes, basePort);
  }

  const running: ClusterMember[] = [];
  for (const m of members) {
    if (m.pid !== null && isMemberProcess(m.pid, m)) running.push(m);
    else m.pid = null;
  }
  const toStart = members.filter((m) => m.pid === null);
  if (running.length > 0) {
    ctx.warn(
      `already running: ${running.map((m) => `${m.name} (pid ${m.pid})`).join(', ')}` +
        (toStart.length > 0 ? `; starting ${toStart.map((m) => m.name).join(', ')}` : ''),
    );
  }

  const problems = await portProblems(toStart);
  if (problems.length > 0) throw new Error(`${problems.join('; ')}; nothing was started`);
  if (toStart.length > 0 && !fs.existsSync(MEMBER_MAIN)) {
    throw new Error(`${MEMBER_MAIN} is missing: build Keel first (npm run build)`);
  }
  fs.mkdirSync(dir, { recursive: true });

  // A signal while the members start: stop the ones started now, rather than leave them half-started.
  let interrupted: NodeJS.Signals | undefined;
  const onStartSignal = (sig: NodeJS.Signals): void => {
    interrupted = sig;
  };
  for (const s of STOP_SIGNALS) process.on(s, onStartSignal);
  try {
    return await startMembers(ctx, a, dir, members, running, toStart, () => interrupted);
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onStartSignal);
  }
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

async function startMembers(
  ctx: CliContext,
  a: UpArgs,
  dir: string,
  members: ClusterMember[],
  running: ClusterMember[],
  toStart: ClusterMember[],
  interrupted: () => NodeJS.Signals | undefined,
): Promise<number> {
  const startTimeoutMs = a.startTimeout;
  const children = new Map<string, ChildProcess>();
  const exits = new Map<string, string>();
  for (const m of toStart) {
    const log = memberLogPath(dir, m.name);
    const fd = fs.openSync(log, 'a');
    let child: ChildProcess;
    try {
      fs.writeSync(fd, `--- ${new Date().toISOString()} keel cluster up: starting ${m.name} ---\n`);
      const args = memberNodeArgs(m, members, { 'snapshot-count': a.snapshotCount });
      // Its own process group, so that a Ctrl-C in the terminal reaches only this command, which stops
      // the members in order (and a detached cluster outlives it).
      child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], detached: true, cwd: dir });
    } finally {
      fs.closeSync(fd);
    }
    if (child.pid === undefined) {
      const started = [...children.values()].map((c) => c.pid).filter((p): p is number => p !== undefined);
      await stopProcesses(started, STOP_TIMEOUT_MS);
      throw new Error(`could not start ${m.name} (${process.execPath} ${MEMBER_MAIN})`);
    }
    m.pid = child.pid;
    children.set(m.name, child);
    child.on('exit', (code, sig) => exits.set(m.name, describeExit(code, sig)));
    if (a.detach) child.unref();
  }
  writeClusterFile(dir, members);

  const allExited = (): boolean => running.length === 0 && exits.size === toStart.length;
  const { leader, lagging } = await waitForLeader(
    members,
    toStart,
    (name) => exits.has(name),
    startTimeoutMs,
    () => allExited() || interrupted() !== undefined,
  );
  const sig = interrupted();
  if (sig !== undefined) {
    const left = toStart.filter((m) => !exits.has(m.name) && m.pid !== null).map((m) => m.pid as number);
    await stopProcesses(left, STOP_TIMEOUT_MS);
    updatePids(
      dir,
      toStart.map((m) => ({ name: m.name, pid: null })),
    );
    throw new Error(`${sig} received during start-up: the members started now were stopped`);
  }
  if (leader === undefined) {
    const left = toStart.filter((m) => !exits.has(m.name) && m.pid !== null).map((m) => m.pid as number);
    await stopProcesses(left, STOP_TIMEOUT_MS);
    updatePids(
      dir,
      toStart.map((m) => ({ name: m.name, pid: null })),
    );
    const why = allExited()
      ? 'every member exited during start-up'
      : `no leader was elected within ${startTimeoutMs / 1000} s; the members started now were stopped`;
    const details = toStart.map((m) => {
      const how = exits.get(m.name);
      const log = memberLogPath(dir, m.name);
      return `${m.name}${how !== undefined ? ` ${how}` : ''}; last lines of ${log}:\n${logTail(log, LOG_TAIL_LINES)}`;
    });
    throw new Error(`${why}\n${details.join('\n')}`);
  }
  const died = toStart.filter((m) => exits.has(m.name));
  for (const m of died) {
    ctx.warn(
      `warning: member ${m.name} ${exits.get(m.name) ?? 'exited'} during start-up; see ${memberLogPath(dir, m.name)}`,
    );
  }
  for (const name of lagging) {
    ctx.warn(
      `warning: member ${name} has not reported a leader within ${startTimeoutMs / 1000} s; see ${memberLogPath(dir, name)}`,
    );
  }
  const cf =
    died.length > 0
      ? updatePids(
          dir,
          died.map((m) => ({ name: m.name, pid: null })),
        )
      : readClusterFile(dir);
  printCluster(ctx, dir, cf, leader, a.json);
  if (a.detach) return 0;
  for (const m of died) children.delete(m.name);
  ctx.warn('The cluster runs in the foreground: Ctrl-C (SIGINT) or SIGTERM stops every member.');
  return supervise(
    ctx,
    dir,
    cf.members.filter((m) => m.pid !== null),
    children,
  );
}

/** Stays in the foreground: reports members that die (and keeps the others), stops every member on
 *  SIGINT, SIGTERM or SIGHUP. Resolves to the exit code. */
function supervise(
  ctx: CliContext,
  dir: string,
  members: ClusterMember[],
  children: Map<string, ChildProcess>,
): Promise<number> {
  return new Promise<number>((resolve) => {
    const live = new Map<string, number>();
    for (const m of members) if (m.pid !== null) live.set(m.name, m.pid);
    let stopping = false;
    const signals = STOP_SIGNALS;

    const finish = (code: number): void => {
      clearInterval(poll);
      for (const s of signals) process.off(s, onSignal);
      resolve(code);
    };
    const onMemberGone = (name: string, pid: number, how: string): void => {
      if (stopping || live.get(name) !== pid) return;
      live.delete(name);
      ctx.warn(
        `member ${name} (pid ${pid}) ${how}; see ${memberLogPath(dir, name)}` +
          (live.size > 0 ? `; ${live.size} member${live.size === 1 ? '' : 's'} still running` : ''),
      );
      try {
        updatePids(dir, [{ name, pid: null, expect: pid }]);
      } catch (e) {
        ctx.warn(`warning: could not update ${clusterFilePath(dir)}: ${errorMessage(e)}`);
      }
      if (live.size === 0) {
        ctx.warn('Error: every member has exited');
        finish(1);
      }
    };
    for (const [name, child] of children) {
      const pid = child.pid;
      if (pid === undefined) continue;
      if (child.exitCode !== null || child.signalCode !== null) {
        // It exited between the start-up checks and now.
        setImmediate(() => onMemberGone(name, pid, describeExit(child.exitCode, child.signalCode)));
      } else {
        child.on('exit', (code, sig) => onMemberGone(name, pid, describeExit(code, sig)));
      }
    }
    // Members this command did not start (already running): polled.
    const adopted = members.filter((m) => !children.has(m.name));
    const poll = setInterval(() => {
      for (const m of adopted) {
        if (m.pid !== null && live.get(m.name) === m.pid && !isMemberProcess(m.pid, m)) {
          onMemberGone(m.name, m.pid, 'exited');
        }
      }
    }, 1000);

    const onSignal = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      ctx.warn(`${sig} received: stopping ${live.size} member${live.size === 1 ? '' : 's'}`);
      const targets = [...live.entries()];
      void stopProcesses(
        targets.map(([, pid]) => pid),
        STOP_TIMEOUT_MS,
      ).then((killed) => {
        for (const [name, pid] of targets) {
          if (killed.includes(pid))
            ctx.warn(`member ${name} (pid ${pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s: killed`);
        }
        try {
          updatePids(
            dir,
            targets.map(([name, pid]) => ({ name, pid: null, expect: pid })),
          );
        } catch (e) {
          ctx.warn(`warning: could not update ${clusterFilePath(dir)}: ${errorMessage(e)}`);
        }
        ctx.warn('cluster stopped');
        finish(0);
      });
    };
    for (const s of signals) process.on(s, onSignal);
  });
}

export interface DirArgs extends GlobalArgs {
  dir: string;
}

export async function clusterDownCommand(ctx: CliContext, a: DirArgs): Promise<number> {
  const dir = path.resolve(a.dir);
  const cf = readClusterFile(dir);
  const targets = cf.members.filter((m) => m.pid !== null && isMemberProcess(m.pid, m));
  for (const m of cf.members) {
    if (m.pid !== null && !targets.includes(m)) ctx.print(`${m.name} was not running (pid ${m.pid} is gone)`);
  }
  if (targets.length === 0) {
    ctx.print('no member is running');
  } else {
    const killed = await stopProcesses(
      targets.map((m) => m.pid as number),
      STOP_TIMEOUT_MS,
    );
    for (const m of targets) {
      const pid = m.pid as number;
      ctx.print(
        killed.includes(pid)
          ? `killed ${m.name} (pid ${pid}): it did not stop within ${STOP_TIMEOUT_MS / 1000} s of SIGTERM`
          : `stopped ${m.name} (pid ${pid})`,
      );
    }
  }
  updatePids(
    dir,
    cf.members.map((m) => ({ name: m.name, pid: null, expect: m.pid })),
  );
  return 0;
}

interface MemberState {
  member: ClusterMember;
  alive: boolean;
  isLeader?: boolean;
  raftTerm?: number;
  raftIndex?: number;
  error?: string;
}

export async function clusterStatusCommand(ctx: CliContext, a: DirArgs): Promise<number> {
  const dir = path.resolve(a.dir);
  const cf = readClusterFile(dir);
  const timeoutMs = checkTimeout(a.commandTimeout);
  const client = new KeelHttpClient({ endpoints: cf.members.map((m) => m.clientUrl), requestTimeoutMs: timeoutMs });
  const states = await Promise.all(
    cf.members.map(async (m): Promise<MemberState> => {
      const alive = m.pid !== null && isMemberProcess(m.pid, m);
      if (!alive) return { member: m, alive, error: 'not running' };
      try {
        const s = await client.status(m.clientUrl);
        return { member: m, alive, isLeader: isLeader(s), raftTerm: s.raftTerm, raftIndex: s.raftIndex };
      } catch (e) {
        return { member: m, alive, error: errorMessage(e) };
      }
    }),
  );
  if (a.json) {
    ctx.printJson(
      states.map((s) => ({
        name: s.member.name,
        pid: s.member.pid,
        alive: s.alive,
        clientUrl: s.member.clientUrl,
        peerUrl: s.member.peerUrl,
        dataDir: s.member.dataDir,
        log: memberLogPath(dir, s.member.name),
        ...(s.error !== undefined
          ? { error: s.error }
          : { isLeader: s.isLeader ?? false, raftTerm: s.raftTerm ?? 0, raftIndex: s.raftIndex ?? 0 }),
      })),
    );
    return 0;
  }
  ctx.print(`ENDPOINTS=${cf.endpoints}`);
  ctx.io.out(
    renderTable(
      ['NAME', 'PID', 'ALIVE', 'CLIENT URL', 'IS LEADER', 'TERM', 'RAFT INDEX', 'ERROR'],
      states.map((s) => [
        s.member.name,
        s.member.pid === null ? '-' : String(s.member.pid),
        String(s.alive),
        s.member.clientUrl,
        s.isLeader === undefined ? '' : String(s.isLeader),
        s.raftTerm === undefined ? '' : String(s.raftTerm),
        s.raftIndex === undefined ? '' : String(s.raftIndex),
        s.error ?? '',
      ]),
    ),
  );
  return 0;
}

export function registerClusterCommands(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  const dirOption = {
    type: 'string',
    demandOption: true,
    requiresArg: true,
    describe: "the cluster's directory",
  } as const;
  return y.command('cluster', 'A local cluster of keel node processes (D/cluster.json)', (b) =>
    b
      .command(
        'up',
        'Start a local cluster (or the members of D/cluster.json that are not running)',
        (c) =>
          c
            .option('dir', dirOption)
            .option('nodes', {
              type: 'number',
              requiresArg: true,
              describe: `number of members, 1..${MAX_NODES} (default ${DEFAULT_NODES})`,
            })
            .option('base-port', {
              type: 'number',
              requiresArg: true,
              describe: `member i: client port BASE+2i, peer port BASE+2i+1 (default ${DEFAULT_BASE_PORT})`,
            })
            .option('snapshot-count', { type: 'number', requiresArg: true, describe: 'passed to every member' })
            .option('detach', {
              type: 'boolean',
              default: false,
              describe: 'return once a leader is elected; members keep running',
            })
            .option('start-timeout', {
              type: 'number',
              default: DEFAULT_START_TIMEOUT_MS,
              requiresArg: true,
              describe: 'ms to wait for a leader',
            }),
        (argv) => ctx.run(() => clusterUpCommand(ctx, argv)),
      )
      .command(
        'down',
        'Stop the members of D/cluster.json (SIGTERM, then SIGKILL after 10 s)',
        (c) => c.option('dir', dirOption),
        (argv) => ctx.run(() => clusterDownCommand(ctx, argv)),
      )
      .command(
        'status',
        'Show the members of D/cluster.json: pid, alive, client URL, leader, term, raft index',
        (c) => c.option('dir', dirOption),
        (argv) => ctx.run(() => clusterStatusCommand(ctx, argv)),
      )
      .demandCommand(1, "keel cluster needs a subcommand: 'up', 'down' or 'status'"),
  );
}
