// The cluster under test (the ClusterUnderTest contract of types.ts): real Keel or etcd processes on loopback,
// each behind its link proxy (net/), started, killed, paused and restarted by pid, with the administrative
// faults (leader transfer, compaction, membership) done through etcd's gRPC API, which both targets speak.
//
// Member ids matter to the proxies, which tell links apart by the sender id in the peer handshake. Keel
// derives a member's id from its advertised peer URL and the cluster token, so it is known before the member
// starts; etcd mixes in more (a time, for a member added later), so its ids are read from the member list.

import fs from 'node:fs';
import path from 'node:path';
import { AdminError, connectAdmin, type AdminConn, type MemberEntry } from '../client/admin';
import type { ClusterUnderTest, Net, NodeInfo, NodeState, Rng, Target } from '../types';
import { etcdCommandLine, DEFAULT_ETCD_BIN } from './etcd';
import { probeHealth, showsDataOpened } from './health';
import { keelCommandLine, keelMain, keelMemberId } from './keel';
import type { MemberLaunch } from './launch';
import { allocateNodePorts, type NodePorts } from './ports';
import { NodeProcess, describeExit, lastLines, type CommandLine } from './process';
import { corruptWal } from './wal-corrupt';

export interface CreateClusterOptions {
  target: Target;
  /** how many members to start with (3, 5 or 7 in runs) */
  nodes: number;
  /** the run directory: data dirs and logs go inside */
  dir: string;
  net: Net;
  /** --initial-cluster-token (default: "jepsen-" and the run dir's name) */
  token?: string;
  /** default 100 */
  heartbeatMs?: number;
  /** default 1000 */
  electionMs?: number;
  /** the etcd binary (default "etcd" on the PATH) */
  etcdBin?: string;
  /** the directory whose cli/main.js is run for Keel (default: the repository's dist/) */
  keelDist?: string;
  /** how long restart() waits for a member to come up before trusting it survived its start (default 5000) */
  restartCheckMs?: number;
  log: (msg: string) => void;
}

interface Member {
  info: NodeInfo;
  ports: NodePorts;
  /** its command line, fixed at its first start and reused by every restart */
  launch?: CommandLine;
  proc?: NodeProcess;
  /** 16 hex digits; for etcd undefined until the member list names it */
  id?: string;
  /** what the harness last did to it; a process that died on its own shows as 'stopped' (see state()) */
  state: NodeState;
}

const ADMIN_TIMEOUT_MS = 5000;
const POLL_MS = 100;
/** how long a grow() keeps retrying the promotion of its learner */
const PROMOTE_WITHIN_MS = 20_000;
/** how long a membership change (add, remove) is retried while the cluster is busy or between leaders */
const MEMBERSHIP_WITHIN_MS = 20_000;
/** how long shrink() gives a removed member to exit by itself before it is killed */
const REMOVED_EXIT_MS = 5000;
/** the fewest members shrink() leaves */
const MIN_MEMBERS = 3;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * An error from a membership call worth retrying: the cluster is busy or between leaders, not refusing for
 * good. etcd says "unhealthy cluster" to any membership change for 5 s after a member (re)connected.
 */
function transient(err: unknown): boolean {
  const e = err as AdminError;
  const text = (e.details ?? e.message ?? '').toLowerCase();
  return (
    /in sync with leader|unhealthy cluster|leader changed|no leader|not.*leader|timed out|timeout|unavailable|not started|too many|try again/.test(text) ||
    e.code === 4 /* DEADLINE_EXCEEDED */ ||
    e.code === 14 /* UNAVAILABLE */
  );
}

function validate(opts: CreateClusterOptions): void {
  if (opts.target !== 'keel' && opts.target !== 'etcd') throw new Error(`target must be keel or etcd, got "${String(opts.target)}"`);
  if (!Number.isInteger(opts.nodes) || opts.nodes < 1 || opts.nodes > 9) {
    throw new Error(`nodes must be an integer from 1 to 9 (3, 5 or 7 in runs), got ${opts.nodes}`);
  }
  for (const [flag, v] of [['heartbeatMs', opts.heartbeatMs], ['electionMs', opts.electionMs]] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw new Error(`${flag} must be a positive integer, got ${v}`);
  }
  if (opts.token !== undefined && (opts.token.trim() === '' || /[\s,=]/.test(opts.token))) {
    throw new Error(`token must be non-empty without spaces, ',' or '=', got "${opts.token}"`);
  }
}

export async function createCluster(opts: CreateClusterOptions): Promise<ClusterUnderTest> {
  validate(opts);
  // Checked now, not at the first start: a missing build is a setup error, not a fault of the run.
  const main = opts.target === 'keel' ? keelMain(opts.keelDist) : undefined;
  fs.mkdirSync(opts.dir, { recursive: true });
  const ports = await allocateNodePorts(opts.nodes);
  return new Cluster(opts, main, ports);
}

class Cluster implements ClusterUnderTest {
  readonly target: Target;
  /** one array for the whole run, appended to by grow(): a reference taken early sees later members */
  readonly nodes: NodeInfo[] = [];
  private readonly members_: Member[] = [];
  private readonly byName = new Map<string, Member>();
  /** names of the voting members and learners, as the harness last changed them */
  private current: string[] = [];
  private readonly admins = new Map<string, AdminConn>();
  private readonly usedPorts = new Set<number>();
  private readonly token: string;
  private readonly heartbeatMs: number;
  private readonly electionMs: number;
  private started = false;

  constructor(
    private readonly opts: CreateClusterOptions,
    private readonly keelMainJs: string | undefined,
    ports: NodePorts[],
  ) {
    this.target = opts.target;
    this.token = opts.token ?? `jepsen-${path.basename(path.resolve(opts.dir))}`;
    this.heartbeatMs = opts.heartbeatMs ?? 100;
    this.electionMs = opts.electionMs ?? 1000;
    for (const p of ports) this.addMember(p);
  }

  private addMember(ports: NodePorts): Member {
    const name = `n${this.members_.length + 1}`;
    const info: NodeInfo = {
      name,
      clientUrl: `http://127.0.0.1:${ports.client}`,
      peerUrl: `http://127.0.0.1:${ports.peerFront}`,
      listenPeerUrl: `http://127.0.0.1:${ports.peerListen}`,
      dataDir: path.join(this.opts.dir, name),
      logFile: path.join(this.opts.dir, `${name}.log`),
    };
    const m: Member = { info, ports, state: 'stopped' };
    if (this.target === 'keel') m.id = keelMemberId(info.peerUrl, this.token);
    for (const p of [ports.client, ports.peerFront, ports.peerListen]) this.usedPorts.add(p);
    this.members_.push(m);
    this.nodes.push(info);
    this.byName.set(name, m);
    return m;
  }

  private member(name: string): Member {
    const m = this.byName.get(name);
    if (m === undefined) throw new Error(`no node "${name}" (the cluster has ${this.members_.map((x) => x.info.name).join(', ')})`);
    return m;
  }

  state(name: string): NodeState {
    const m = this.member(name);
    // A member that exited by itself (a crash, a refusal) is no longer what the harness last made it.
    if ((m.state === 'running' || m.state === 'paused') && !m.proc?.alive) return 'stopped';
    return m.state;
  }

  members(): string[] {
    return [...this.current];
  }

  private commandLine(m: Member, initial: readonly NodeInfo[], clusterState: 'new' | 'existing'): CommandLine {
    const launch: MemberLaunch = {
      node: m.info,
      initialCluster: initial,
      clusterState,
      token: this.token,
      heartbeatMs: this.heartbeatMs,
      electionMs: this.electionMs,
    };
    return this.target === 'keel'
      ? keelCommandLine(launch, this.keelMainJs!)
      : etcdCommandLine(launch, this.opts.etcdBin ?? DEFAULT_ETCD_BIN);
  }

  /** Spawns a member's (fixed) command line. */
  private spawn(m: Member): void {
    if (m.launch === undefined) throw new Error(`${m.info.name} was never started: there is no command line to run again`);
    this.dropAdmin(m.info.name);
    m.proc = new NodeProcess(m.info.name, m.launch, m.info.logFile, this.opts.dir);
    m.proc.start();
    m.state = 'running';
  }

  /** The exit of a member that died, as an Error with the end of its log. */
  private exitError(m: Member, when: string): Error {
    const status = m.proc?.exitStatus;
    const how = status ? describeExit(status) : 'not running';
    const tail = lastLines(m.info.logFile, 15);
    return new Error(`${m.info.name} exited ${when} (${how}); last lines of ${m.info.logFile}:\n${tail}`);
  }

  async start(timeoutMs: number): Promise<void> {
    if (this.started) throw new Error('the cluster was already started');
    this.started = true;
    const deadline = Date.now() + timeoutMs;
    const initial = this.members_.map((m) => m.info);
    for (const m of this.members_) {
      await this.opts.net.addNode(m.info);
      if (m.id !== undefined) this.opts.net.identify(m.info.name, m.id);
      fs.mkdirSync(path.dirname(m.info.dataDir), { recursive: true });
      m.launch = this.commandLine(m, initial, 'new');
    }
    for (const m of this.members_) this.spawn(m);
    this.current = this.members_.map((m) => m.info.name);
    this.opts.log(`started ${this.target} members ${this.current.join(', ')} (pids ${this.members_.map((m) => m.proc?.pid).join(', ')})`);
    while (Date.now() < deadline) {
      const dead = this.members_.find((m) => !m.proc?.alive);
      if (dead) throw this.exitError(dead, 'during the cluster start');
      const leader = await this.leader(Math.min(1000, Math.max(1, deadline - Date.now())));
      if (leader !== undefined) {
        if (this.target === 'etcd') await this.refreshIds();
        this.opts.log(`leader elected: ${leader}`);
        return;
      }
    }
    throw new Error(`no leader elected within ${timeoutMs} ms; member logs in ${this.opts.dir}`);
  }

  private admin(name: string): AdminConn {
    let c = this.admins.get(name);
    if (c === undefined) {
      c = connectAdmin(this.member(name).info.clientUrl, { timeoutMs: ADMIN_TIMEOUT_MS });
      this.admins.set(name, c);
    }
    return c;
  }

  private dropAdmin(name: string): void {
    this.admins.get(name)?.close();
    this.admins.delete(name);
  }

  private running(): Member[] {
    return this.members_.filter((m) => m.state === 'running' && m.proc?.alive);
  }

  /** Reads the member list (from any running member) and tells the proxies each member's id. */
  private async refreshIds(): Promise<MemberEntry[] | undefined> {
    for (const m of this.running()) {
      let list: MemberEntry[];
      try {
        list = await this.admin(m.info.name).memberList({ timeoutMs: 2000 });
      } catch {
        continue;
      }
      this.learnIds(list);
      return list;
    }
    return undefined;
  }

  private learnIds(list: readonly MemberEntry[]): void {
    for (const e of list) {
      const m = this.members_.find((x) => e.peerUrls.includes(x.info.peerUrl));
      if (m === undefined || e.id === '' || m.id === e.id) continue;
      m.id = e.id;
      this.opts.net.identify(m.info.name, e.id);
    }
  }

  private nameOfId(id: string): string | undefined {
    return this.members_.find((m) => m.id !== undefined && BigInt(`0x${m.id}`) === BigInt(`0x${id}`))?.info.name;
  }

  async leader(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      const answers = await Promise.all(
        this.running().map((m) =>
          this.admin(m.info.name)
            .status({ timeoutMs: Math.max(1, Math.min(1000, left)) })
            .catch(() => undefined),
        ),
      );
      // The answer of the highest term is the freshest: a member cut off may still name a deposed leader.
      const best = answers
        .filter((a) => a !== undefined && a.leader !== '')
        .sort((a, b) => b!.raftTerm - a!.raftTerm)[0];
      if (best !== undefined) {
        let name = this.nameOfId(best.leader);
        if (name === undefined && this.target === 'etcd') {
          await this.refreshIds();
          name = this.nameOfId(best.leader);
        }
        if (name !== undefined) return name;
        this.opts.log(`leader id ${best.leader} names no node of this cluster`);
      }
      if (Date.now() + POLL_MS >= deadline) return undefined;
      await sleep(POLL_MS);
    }
  }

  async kill(name: string): Promise<void> {
    const m = this.member(name);
    if (m.state === 'removed') throw new Error(`${name} was removed from the cluster: nothing to kill`);
    await m.proc?.kill();
    m.state = 'killed';
    this.dropAdmin(name);
  }

  async restart(name: string): Promise<void> {
    const m = this.member(name);
    if (m.state === 'removed') throw new Error(`${name} was removed from the cluster: it cannot be restarted`);
    if (m.proc?.alive) throw new Error(`${name} is still running (pid ${m.proc.pid}): kill it before restarting it`);
    this.spawn(m);
    await this.waitUp(m, 'right after its restart');
  }

  /**
   * Waits until a just-started member shows it opened its data (see showsDataOpened) or exits; throws its exit
   * status and the end of its log if it exits. After restartCheckMs of neither, it is trusted to be starting.
   */
  private async waitUp(m: Member, when: string): Promise<void> {
    const limit = this.opts.restartCheckMs ?? 5000;
    const deadline = Date.now() + limit;
    while (Date.now() < deadline) {
      if (!m.proc?.alive) throw this.exitError(m, when);
      const a = await probeHealth(m.info.clientUrl, Math.min(500, Math.max(1, deadline - Date.now())));
      if (a !== undefined && showsDataOpened(this.target, a) && m.proc.alive) return;
      await sleep(POLL_MS);
    }
    if (!m.proc?.alive) throw this.exitError(m, when);
    this.opts.log(`${m.info.name} is running but did not answer /health within ${limit} ms`);
  }

  pause(name: string): void {
    const m = this.member(name);
    if (m.state !== 'running' || !m.proc?.signal('SIGSTOP')) throw new Error(`cannot pause ${name}: it is ${this.state(name)}`);
    m.state = 'paused';
  }

  resume(name: string): void {
    const m = this.member(name);
    if (m.state !== 'paused') throw new Error(`cannot resume ${name}: it is ${this.state(name)}, not paused`);
    m.proc?.signal('SIGCONT');
    m.state = 'running';
  }

  async corruptWal(name: string, mode: 'truncate' | 'bitflip', rng: Rng): Promise<string> {
    const m = this.member(name);
    if (m.proc?.alive) throw new Error(`cannot corrupt ${name}'s WAL: it is ${this.state(name)} (pid ${m.proc.pid}); kill it first`);
    const what = corruptWal(this.target, m.info.dataDir, mode, rng);
    return `${name}: ${what}`;
  }

  async transferLeader(to: string): Promise<void> {
    const target = this.member(to);
    if (!this.current.includes(to)) throw new Error(`cannot transfer leadership to ${to}: it is not a member`);
    const leader = await this.leader(5000);
    if (leader === undefined) throw new Error(`cannot transfer leadership to ${to}: no leader answers`);
    if (leader === to) return;
    if (target.id === undefined) await this.refreshIds();
    if (target.id === undefined) throw new Error(`cannot transfer leadership to ${to}: its member id is unknown`);
    await this.admin(leader).moveLeader(target.id, { timeoutMs: 10_000 });
  }

  async compact(): Promise<number> {
    let last: unknown = new Error('no member is running');
    for (const m of this.running()) {
      const c = this.admin(m.info.name);
      let rev: number | undefined;
      try {
        rev = await c.revision();
        await c.compact(rev);
        return rev;
      } catch (err) {
        // Compacted already at this revision (nothing written since the last compaction): the store is in
        // the state asked for.
        if (rev !== undefined && err instanceof AdminError && /required revision has been compacted/.test(err.details)) return rev;
        last = err;
      }
    }
    throw last;
  }

  async grow(): Promise<string> {
    if (!this.started) throw new Error('grow: the cluster is not started');
    const [ports] = await allocateNodePorts(1, this.usedPorts);
    const m = this.addMember(ports!);
    const name = m.info.name;
    await this.opts.net.addNode(m.info);
    if (m.id !== undefined) this.opts.net.identify(name, m.id);
    const added = await this.addLearner(m);
    if (m.id !== undefined && BigInt(`0x${m.id}`) !== BigInt(`0x${added.member.id}`)) {
      this.opts.log(`grow: ${name} was added with id ${added.member.id}, not the ${m.id} derived from its peer URL`);
    }
    m.id = added.member.id;
    this.opts.net.identify(name, m.id);
    // The cluster as it is now that the new member is in: etcd checks a joiner's --initial-cluster against it.
    const initial = added.members.map((e) => {
      const x = this.members_.find((y) => e.peerUrls.includes(y.info.peerUrl));
      if (x === undefined) throw new Error(`grow: the member list names ${e.peerUrls.join(',')}, which is no node of this cluster`);
      return x.info;
    });
    m.launch = this.commandLine(m, initial, 'existing');
    this.spawn(m);
    this.current.push(name);
    this.opts.log(`grow: ${name} added as a learner (id ${m.id}) and started (pid ${m.proc?.pid})`);
    await this.waitUp(m, 'right after joining');
    await this.promote(m);
    return name;
  }

  /**
   * MemberAdd as a learner, retried while the cluster is busy or between leaders. A retry after an answer that
   * was lost may find the peer URL already added: the member list then says which member it became.
   */
  private async addLearner(m: Member): Promise<{ member: MemberEntry; members: MemberEntry[] }> {
    const deadline = Date.now() + MEMBERSHIP_WITHIN_MS;
    let attempts = 0;
    for (;;) {
      const leader = await this.leader(Math.min(2000, Math.max(1, deadline - Date.now())));
      if (leader !== undefined) {
        attempts++;
        try {
          return await this.admin(leader).memberAdd(m.info.peerUrl, true, { timeoutMs: 10_000 });
        } catch (err) {
          if (attempts > 1 && err instanceof AdminError && /already exists/i.test(err.details)) {
            const members = await this.admin(leader).memberList();
            const member = members.find((e) => e.peerUrls.includes(m.info.peerUrl));
            if (member !== undefined) return { member, members };
          }
          if (!transient(err) || Date.now() >= deadline) throw err;
        }
      } else if (Date.now() >= deadline) {
        throw new Error(`grow: cannot add ${m.info.name}: no leader answers`);
      }
      await sleep(300);
    }
  }

  /** Promotes a learner, retrying while the leader says it is not in sync yet (or leadership moves). */
  private async promote(m: Member): Promise<void> {
    const deadline = Date.now() + PROMOTE_WITHIN_MS;
    let lastErr: unknown;
    while (Date.now() < deadline) {
      const leader = await this.leader(Math.min(2000, Math.max(1, deadline - Date.now())));
      if (leader !== undefined) {
        try {
          await this.admin(leader).memberPromote(m.id!, { timeoutMs: 5000 });
          this.opts.log(`grow: ${m.info.name} promoted to a voting member`);
          return;
        } catch (err) {
          if (!transient(err)) throw err;
          lastErr = err;
        }
      }
      if (!m.proc?.alive) throw this.exitError(m, 'while waiting to be promoted');
      await sleep(300);
    }
    throw new Error(
      `grow: ${m.info.name} was added as a learner but not promoted within ${PROMOTE_WITHIN_MS} ms: ${(lastErr as Error | undefined)?.message ?? 'no leader'}`,
    );
  }

  async shrink(name: string): Promise<void> {
    const m = this.member(name);
    if (!this.current.includes(name)) throw new Error(`shrink: ${name} is not a member`);
    if (this.current.length <= MIN_MEMBERS) {
      throw new Error(`shrink: the cluster has ${this.current.length} members; it keeps at least ${MIN_MEMBERS}`);
    }
    if (m.id === undefined) await this.refreshIds();
    if (m.id === undefined) throw new Error(`shrink: ${name}'s member id is unknown`);
    await this.removeMember(m);
    this.current = this.current.filter((n) => n !== name);
    m.state = 'removed';
    // A removed member leaves by itself (Keel exits 0); a paused one must be let go to notice.
    m.proc?.signal('SIGCONT');
    const exit = await m.proc?.waitForExit(REMOVED_EXIT_MS);
    if (m.proc?.alive) {
      this.opts.log(`shrink: ${name} still runs ${REMOVED_EXIT_MS} ms after its removal; killing it`);
      await m.proc.kill();
    } else if (exit !== undefined) {
      this.opts.log(`shrink: ${name} removed and exited (${describeExit(exit)})`);
    }
    this.dropAdmin(name);
  }

  /** MemberRemove, retried while the cluster is between leaders; "not found" after a retry means done. */
  private async removeMember(m: Member): Promise<void> {
    const deadline = Date.now() + MEMBERSHIP_WITHIN_MS;
    let attempts = 0;
    for (;;) {
      const leader = await this.leader(Math.min(2000, Math.max(1, deadline - Date.now())));
      const via = leader ?? this.running().find((x) => x !== m)?.info.name;
      if (via === undefined) throw new Error(`shrink: no member answers to remove ${m.info.name}`);
      attempts++;
      try {
        await this.admin(via).memberRemove(m.id!, { timeoutMs: 5000 });
        return;
      } catch (err) {
        // An earlier attempt whose answer was lost may have removed it already.
        if (attempts > 1 && err instanceof AdminError && /member not found|not found/i.test(err.details)) return;
        if (!transient(err) || Date.now() >= deadline) throw err;
      }
      await sleep(300);
    }
  }

  async stop(): Promise<void> {
    for (const m of this.members_) {
      if (m.proc?.alive) {
        try {
          await m.proc.kill(); // SIGCONT, then SIGKILL, by pid
        } catch (err) {
          this.opts.log(`stop: ${(err as Error).message}`);
        }
      }
      if (m.state === 'running' || m.state === 'paused') m.state = 'stopped';
    }
    for (const name of [...this.admins.keys()]) this.dropAdmin(name);
  }
}
