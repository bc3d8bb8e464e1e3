// The nemeses and their schedule, against a fake cluster that records what it is asked to do (the real
// processes are the runner's tests' business) and a real Net whose proxies listen on 127.0.0.1.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { CorruptNemesis, KillNemesis, chooseKill } from '../../jepsen/nemesis/process-faults';
import { MembershipNemesis } from '../../jepsen/nemesis/admin-faults';
import { chooseLinks } from '../../jepsen/nemesis/link-faults';
import { planPartition, shapesFor, type Link, type PartitionShape } from '../../jepsen/nemesis/partition';
import { NEMESIS_KINDS, createNemeses, parseNemesisList } from '../../jepsen/nemesis/registry';
import { runSchedule } from '../../jepsen/nemesis/schedule';
import { createNet } from '../../jepsen/net/net';
import { createRng } from '../../jepsen/rng';
import type { HistoryEvent } from '../../jepsen/history';
import type {
  ClusterUnderTest,
  Completion,
  Net,
  NemesisContext,
  NemesisEvent,
  NemesisKind,
  NodeInfo,
  NodeState,
  Recorder,
  Rng,
} from '../../jepsen/types';
import { freePorts } from '../process/fixtures/proc-cluster';

/** A cluster that only keeps the state the harness would, and a log of every call made to it. */
class FakeCluster implements ClusterUnderTest {
  readonly target = 'keel' as const;
  readonly nodes: NodeInfo[] = [];
  readonly calls: string[] = [];
  private readonly states = new Map<string, NodeState>();
  private memberNames: string[];
  leaderName: string | undefined;
  /** names whose restart fails, as a member refusing a damaged WAL would */
  readonly refuseRestart = new Set<string>();
  /** when set, compact() rejects with it */
  compactError: string | undefined;

  constructor(
    ports: number[],
    private readonly net: Net,
  ) {
    for (const port of ports) this.addNode(port);
    this.memberNames = this.nodes.map((n) => n.name);
    this.leaderName = 'n1';
  }

  private addNode(port: number): NodeInfo {
    const name = `n${this.nodes.length + 1}`;
    this.nodes.push({
      name,
      clientUrl: `http://127.0.0.1:1`,
      peerUrl: `http://127.0.0.1:${port}`,
      listenPeerUrl: `http://127.0.0.1:1`,
      dataDir: '/nonexistent',
      logFile: '/nonexistent',
    });
    this.states.set(name, 'running');
    return this.nodes[this.nodes.length - 1]!;
  }

  state(name: string): NodeState {
    const s = this.states.get(name);
    if (!s) throw new Error(`no node ${name}`);
    return s;
  }
  members(): string[] {
    return [...this.memberNames];
  }
  async start(): Promise<void> {}
  async kill(name: string): Promise<void> {
    await new Promise((r) => setImmediate(r));
    this.calls.push(`kill ${name}`);
    this.states.set(name, 'killed');
  }
  async restart(name: string): Promise<void> {
    await new Promise((r) => setImmediate(r));
    this.calls.push(`restart ${name}`);
    if (this.refuseRestart.delete(name)) throw new Error('exit status 1: wal: bad record in 0000-0001.wal at offset 812');
    this.states.set(name, 'running');
  }
  pause(name: string): void {
    this.calls.push(`pause ${name}`);
    this.states.set(name, 'paused');
  }
  resume(name: string): void {
    this.calls.push(`resume ${name}`);
    this.states.set(name, 'running');
  }
  async corruptWal(name: string, mode: 'truncate' | 'bitflip', rng: Rng): Promise<string> {
    if (this.state(name) === 'running') throw new Error(`corruptWal of running ${name}`);
    const offset = rng.int(1000);
    this.calls.push(`corrupt ${name} ${mode} ${offset}`);
    return `${mode} wal/0000-0001.wal at ${offset}`;
  }
  async leader(): Promise<string | undefined> {
    return this.leaderName;
  }
  async transferLeader(to: string): Promise<void> {
    this.calls.push(`transfer ${to}`);
    this.leaderName = to;
  }
  async compact(): Promise<number> {
    if (this.compactError) throw new Error(this.compactError);
    this.calls.push('compact');
    return 42;
  }
  /** as the real cluster does: a new node behind its own link proxy */
  async grow(): Promise<string> {
    const node = this.addNode((await freePorts(1))[0]!);
    await this.net.addNode(node);
    const name = node.name;
    this.memberNames.push(name);
    this.calls.push(`grow ${name}`);
    return name;
  }
  async shrink(name: string): Promise<void> {
    this.memberNames = this.memberNames.filter((n) => n !== name);
    this.states.set(name, 'removed');
    this.calls.push(`shrink ${name}`);
  }
  async stop(): Promise<void> {}

  /** true when no process is left killed or paused */
  healed(): boolean {
    return this.memberNames.every((n) => this.states.get(n) === 'running');
  }
}

/** Keeps the nemesis events; the schedule uses nothing else of a recorder. */
class NemesisRecorder implements Recorder {
  readonly log: { ev: NemesisEvent; phase: 'start' | 'stop' }[] = [];
  onEvent: (() => void) | undefined;
  invoke(): Completion {
    throw new Error('the nemesis schedule records no operations');
  }
  nemesis(ev: NemesisEvent, phase: 'start' | 'stop'): void {
    this.log.push({ ev, phase });
    this.onEvent?.();
  }
  nextProcess(): number {
    throw new Error('the nemesis schedule has no processes');
  }
  events(): readonly HistoryEvent[] {
    return [];
  }
}

async function setup(t: Test, size: number, seed: number): Promise<{ cluster: FakeCluster; net: Net; ctx: NemesisContext; logs: string[] }> {
  const logs: string[] = [];
  const net = createNet({ log: (m) => logs.push(m) });
  t.teardown(() => net.close());
  const cluster = new FakeCluster(await freePorts(size), net);
  for (const node of cluster.nodes) await net.addNode(node);
  return { cluster, net, ctx: { cluster, net, rng: createRng(seed), log: (m) => logs.push(m) }, logs };
}

/** Runs the schedule until `events` nemesis events were recorded, then aborts it. */
async function runFor(
  ctx: NemesisContext,
  kinds: NemesisKind[],
  events: number,
  faultMs = 1,
): Promise<{ ev: NemesisEvent; phase: 'start' | 'stop' }[]> {
  const recorder = new NemesisRecorder();
  const ac = new AbortController();
  recorder.onEvent = () => {
    if (recorder.log.length >= events) ac.abort();
  };
  const guard = setTimeout(() => ac.abort(), 20_000);
  await runSchedule({ ...ctx, recorder, signal: ac.signal, intervalMs: 1, faultMs }, createNemeses(kinds));
  clearTimeout(guard);
  return recorder.log;
}

const key = (l: Link): string => `${l.from}>${l.to}`;
function linkSet(links: Link[]): Set<string> {
  return new Set(links.map(key));
}
function connected(blocked: Set<string>, a: string, b: string): boolean {
  return !blocked.has(`${a}>${b}`) && !blocked.has(`${b}>${a}`);
}
const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `n${i + 1}`);

t.test('createRng is deterministic and within bounds', async (t) => {
  const a = createRng(123);
  const b = createRng(123);
  const seqA = Array.from({ length: 20 }, () => a.next());
  t.same(seqA, Array.from({ length: 20 }, () => b.next()));
  t.notSame(seqA, Array.from({ length: 20 }, () => createRng(124).next()));
  t.ok(seqA.every((x) => x >= 0 && x < 1));
  const r = createRng(5);
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[r.int(3)]!++;
  t.ok(counts.every((c) => c > 800), `int(3) roughly uniform: ${counts.join(',')}`);
  t.same(r.shuffle(names(6)).sort(), names(6), 'a shuffle is a permutation');
  t.throws(() => r.int(0), /positive integer bound/);
  t.throws(() => r.pick([]), /empty list/);
  t.throws(() => createRng(NaN), /finite number/);
});

t.test('partition shapes on 3 and 5 members', async (t) => {
  for (const n of [3, 5]) {
    const all = names(n);
    t.same(shapesFor(n).includes('ring'), n >= 4, `ring offered for ${n}: only when it partitions anything`);
    for (let seed = 0; seed < 20; seed++) {
      const rng = createRng(seed);
      const shapes: Record<PartitionShape, Set<string>> = {
        leader: linkSet(planPartition('leader', all, rng, 'n2').blocked),
        halves: linkSet(planPartition('halves', all, rng).blocked),
        ring: n >= 4 ? linkSet(planPartition('ring', all, rng).blocked) : new Set(),
        bridge: linkSet(planPartition('bridge', all, rng).blocked),
        'one-way': linkSet(planPartition('one-way', all, rng).blocked),
      };
      // leader: n2 sees no one, everyone else sees each other.
      for (const a of all) for (const b of all) {
        if (a === b) continue;
        t.equal(connected(shapes.leader, a, b), a !== 'n2' && b !== 'n2');
      }
      // halves: a minority of floor(n/2) and the rest, each fully connected inside, cut across.
      const reach = (blocked: Set<string>, a: string): string[] => all.filter((b) => b !== a && connected(blocked, a, b));
      const minority = all.filter((a) => reach(shapes.halves, a).length === Math.floor(n / 2) - 1);
      t.equal(minority.length, Math.floor(n / 2), `halves of ${n}: ${[...shapes.halves].join(' ')}`);
      for (const a of all) for (const b of all) {
        if (a !== b) t.equal(connected(shapes.halves, a, b), minority.includes(a) === minority.includes(b));
      }
      // bridge: one member sees everyone; the others split into two halves that see only themselves and it,
      // each half plus the bridge a majority.
      const bridges = all.filter((a) => reach(shapes.bridge, a).length === n - 1);
      t.equal(bridges.length, 1, `one bridge among ${n}`);
      const others = all.filter((a) => a !== bridges[0]);
      const left = [others[0]!, ...others.slice(1).filter((b) => connected(shapes.bridge, others[0]!, b))];
      const right = others.filter((a) => !left.includes(a));
      t.ok(left.length >= 1 && right.length >= 1, 'two halves');
      for (const side of [left, right]) t.ok(side.length + 1 > n / 2, `half ${side} plus the bridge is a majority of ${n}`);
      for (const a of left) for (const b of right) t.ok(shapes.bridge.has(`${a}>${b}`) && shapes.bridge.has(`${b}>${a}`), `${a} -x- ${b}`);
      // one-way: exactly the outgoing links of one member.
      const [mute] = [...shapes['one-way']].map((k) => k.split('>')[0]);
      t.same([...shapes['one-way']].sort(), all.filter((b) => b !== mute).map((b) => `${mute}>${b}`).sort());
      if (n >= 4) {
        // ring: each member sees exactly two others (with itself a majority of 5), yet no three members
        // (a majority of 5) see each other all.
        for (const a of all) t.equal(reach(shapes.ring, a).length, 2);
        for (const a of all) for (const b of all) for (const c of all) {
          if (a < b && b < c) t.notOk(connected(shapes.ring, a, b) && connected(shapes.ring, b, c) && connected(shapes.ring, a, c), `${a},${b},${c} not all connected`);
        }
      }
    }
  }
  t.throws(() => planPartition('ring', names(3), createRng(1)), /at least 4 members/);
  t.throws(() => planPartition('halves', ['n1'], createRng(1)), /at least 2 members/);
});

t.test('kill picks one, a minority, a majority or all, within the running members', async (t) => {
  const seen = new Map<string, number>();
  const rng = createRng(99);
  for (let i = 0; i < 400; i++) {
    const { scope, names: picked } = chooseKill(5, names(5), rng);
    const size = { one: 1, minority: 2, majority: 3, all: 5 }[scope];
    t.equal(picked.length, size);
    t.equal(new Set(picked).size, picked.length, 'no member twice');
    seen.set(scope, (seen.get(scope) ?? 0) + 1);
  }
  t.ok((seen.get('one') ?? 0) + (seen.get('minority') ?? 0) > (seen.get('majority') ?? 0) + (seen.get('all') ?? 0), 'weighted toward one and minority');
  t.ok((seen.get('all') ?? 0) > 0 && (seen.get('majority') ?? 0) > 0, 'a majority and all happen too');
  const few = chooseKill(5, ['n4'], createRng(3));
  t.same(few.names, ['n4'], 'never more than the running ones');

  const { cluster, ctx } = await setup(t, 5, 7);
  const kill = new KillNemesis();
  for (let i = 0; i < 10; i++) {
    const started = await kill.start(ctx);
    const killed = (started.value as { killed: string[] }).killed;
    t.ok(killed.length >= 1 && killed.length <= 5);
    t.ok(killed.every((n) => cluster.state(n) === 'killed'));
    const stopped = await kill.stop(ctx);
    t.same((stopped.value as { restarted: string[] }).restarted.sort(), [...killed].sort());
    t.ok(cluster.healed());
    t.same((await kill.stop(ctx)).value, { restarted: [] }, 'a second stop has nothing to do');
  }
});

t.test('the schedule is deterministic for a seed and records start/stop pairs', async (t) => {
  const kinds: NemesisKind[] = ['partition', 'delay', 'drop', 'kill', 'pause', 'corrupt', 'transfer', 'compact', 'membership'];
  const runs: { ev: NemesisEvent; phase: string }[][] = [];
  const calls: string[][] = [];
  for (const seed of [11, 11, 12]) {
    const { cluster, ctx } = await setup(t, 5, seed);
    runs.push(await runFor(ctx, kinds, 40));
    calls.push(cluster.calls);
    t.same(runs[runs.length - 1]!.filter((e) => e.ev.error), [], 'no fault failed');
    t.ok(cluster.healed(), 'every process running at the end');
    t.equal(ctx.net.describe(), 'healthy', 'every link healed at the end');
  }
  t.same(runs[0], runs[1], 'same seed, same events');
  t.same(calls[0], calls[1], 'same seed, same actions');
  t.notSame(runs[0], runs[2], 'another seed, another schedule');
  const log = runs[0]!;
  t.equal(log.length, 40);
  for (let i = 0; i < log.length; i += 2) {
    const kind = log[i]!.ev.f.replace(/^start-/, '');
    t.equal(log[i]!.phase, 'start');
    t.equal(log[i]!.ev.f, `start-${kind}`);
    t.equal(log[i + 1]!.phase, 'stop');
    t.equal(log[i + 1]!.ev.f, `stop-${kind}`);
  }
  t.ok(new Set(log.map((e) => e.ev.f)).size >= 8, 'several kinds were chosen');
  t.same(JSON.parse(JSON.stringify(log)), log, 'events are JSON-able');
});

t.test('abort stops the active fault at once and leaves the cluster healed', async (t) => {
  for (const kind of ['kill', 'pause', 'partition', 'delay', 'drop', 'corrupt'] as NemesisKind[]) {
    const { cluster, net, ctx } = await setup(t, 3, 1);
    const recorder = new NemesisRecorder();
    const ac = new AbortController();
    let faulty = '';
    recorder.onEvent = () => {
      if (recorder.log.length === 1) {
        faulty = `${net.describe()} / ${cluster.calls.join(',')}`;
        setTimeout(() => ac.abort(), 20);
      }
    };
    const began = Date.now();
    await runSchedule({ ...ctx, recorder, signal: ac.signal, intervalMs: 0, faultMs: 60_000 }, createNemeses([kind]));
    t.ok(Date.now() - began < 5_000, `${kind}: the 60 s fault hold woke on abort`);
    t.same(recorder.log.map((e) => `${e.phase} ${e.ev.f}`), [`start start-${kind}`, `stop stop-${kind}`]);
    t.notOk(recorder.log.some((e) => e.ev.error), `${kind}: no errors`);
    const damaged = kind === 'partition' || kind === 'delay' || kind === 'drop' ? !faulty.startsWith('healthy') : faulty.split(' / ')[1] !== '';
    t.ok(damaged, `${kind} did something while active: ${faulty}`);
    t.ok(cluster.healed(), `${kind}: processes healed`);
    t.equal(net.describe(), 'healthy', `${kind}: links healed`);
  }
});

t.test('fault errors are recorded, never thrown; a refused restart leaves the member out', async (t) => {
  const { cluster, ctx } = await setup(t, 3, 4);
  cluster.compactError = 'etcdserver: mvcc: required revision is a future revision';
  const log = await runFor(ctx, ['compact'], 4);
  t.equal(log[0]!.ev.error, 'compact: etcdserver: mvcc: required revision is a future revision');
  t.equal(log.length, 4, 'the schedule went on after the error');

  const corrupt = new CorruptNemesis();
  const started = await corrupt.start(ctx);
  const victim = (started.value as { node: string }).node;
  t.match(started.value, { node: victim, mode: /^(truncate|bitflip)$/, damage: /wal\/0000-0001\.wal at \d+/ });
  t.ok(cluster.calls.indexOf(`kill ${victim}`) < cluster.calls.findIndex((c) => c.startsWith(`corrupt ${victim}`)), 'killed before its WAL is damaged');
  cluster.refuseRestart.add(victim);
  const stopped = await corrupt.stop(ctx);
  t.match(stopped.error, new RegExp(`${victim} stays down: no WAL backup to restore`));
  t.match(stopped.value, { node: victim, restarted: false, refused: /exit status 1: wal: bad record/ });
  t.equal(cluster.state(victim), 'killed');
  t.same((await corrupt.stop(ctx)).value, { node: null }, 'stop is idempotent');
  await cluster.restart(victim);

  // With a WAL on disk: the refusal is recorded, the WAL as it was before the damage is put back, and the
  // member restarted.
  const dataRoot = mkdtempSync(path.join(os.tmpdir(), 'keel-nemesis-wal-'));
  t.teardown(() => rmSync(dataRoot, { recursive: true, force: true }));
  for (const n of cluster.nodes) {
    (n as { dataDir: string }).dataDir = path.join(dataRoot, n.name);
    mkdirSync(path.join(n.dataDir, 'wal'), { recursive: true });
    writeFileSync(path.join(n.dataDir, 'wal', '0000-0001.wal'), `original log of ${n.name}`);
  }
  const again = await corrupt.start(ctx);
  const v2 = (again.value as { node: string }).node;
  const walFile = path.join(dataRoot, v2, 'wal', '0000-0001.wal');
  writeFileSync(walFile, 'damaged'); // what the fake's corruptWal would have done to a real file
  cluster.refuseRestart.add(v2);
  const healed = await corrupt.stop(ctx);
  t.equal(healed.error, undefined, 'a refusal is the right answer, not an error of the fault');
  t.match(healed.value, { node: v2, restarted: true, restoredWal: true, refused: /wal: bad record/ });
  t.equal(readFileSync(walFile, 'utf8'), `original log of ${v2}`, 'the WAL as it was before the damage');
  t.equal(cluster.state(v2), 'running');

  // A nemesis that throws (here: kill on a cluster whose members() fails) is recorded with its error.
  const broken = Object.create(cluster) as FakeCluster;
  broken.members = () => {
    throw new Error('members unavailable');
  };
  const log2 = await runFor({ ...ctx, cluster: broken }, ['kill'], 2);
  t.same(log2.map((e) => [e.ev.f, e.ev.error]), [['start-kill', 'members unavailable'], ['stop-kill', undefined]]);
});

t.test('membership stays between 3 and the initial size + 2', async (t) => {
  const { cluster, ctx } = await setup(t, 3, 21);
  const m = new MembershipNemesis();
  const sizes = new Set<number>();
  for (let i = 0; i < 30; i++) {
    const ev = await m.start(ctx);
    t.notOk(ev.error);
    const n = cluster.members().length;
    t.ok(n >= 3 && n <= 5, `size ${n}`);
    sizes.add(n);
    await m.stop();
  }
  t.same([...sizes].sort(), [3, 4, 5], 'it both grows and shrinks');
});

t.test('delay and drop fault chosen links and heal exactly those', async (t) => {
  const rng = createRng(8);
  for (let i = 0; i < 20; i++) {
    const { scope, links } = chooseLinks(names(3), rng);
    t.ok(links.length >= 1 && links.length <= 6);
    if (scope === 'all') t.equal(links.length, 6);
  }
  const { net, ctx } = await setup(t, 3, 2);
  for (const kind of ['delay', 'drop'] as const) {
    const [nemesis] = createNemeses([kind]);
    const ev = await nemesis!.start(ctx);
    const value = ev.value as { links: string[]; delayMs?: number; jitterMs?: number; dropProbability?: number };
    if (kind === 'delay') t.ok(value.delayMs! >= 50 && value.delayMs! <= 200 && value.jitterMs! <= value.delayMs! / 2);
    else t.ok(value.dropProbability! >= 0.05 && value.dropProbability! <= 0.3);
    t.equal(net.describe().split(' | ').length, value.links.length, net.describe());
    for (const l of value.links) t.match(net.describe(), `${kind} ${l}`);
    await nemesis!.stop(ctx);
    t.equal(net.describe(), 'healthy');
  }
});

t.test('nemesis names are parsed with clear errors', async (t) => {
  t.same(parseNemesisList('kill,pause, partition'), ['kill', 'pause', 'partition']);
  t.same(parseNemesisList('kill,kill'), ['kill']);
  t.same(parseNemesisList('none'), []);
  t.throws(() => parseNemesisList('kill,explode'), { message: `unknown nemesis "explode" (valid: ${NEMESIS_KINDS.join(', ')})` });
  t.throws(() => parseNemesisList('kill,,pause'), /empty name/);
  t.throws(() => createNemeses(['bogus' as NemesisKind]), /unknown nemesis "bogus"/);
  t.same(createNemeses(NEMESIS_KINDS).map((n) => n.kind), NEMESIS_KINDS);
});
