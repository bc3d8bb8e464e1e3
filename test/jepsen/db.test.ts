// The cluster under test (jepsen/db): real Keel members (and etcd's, when installed) behind the link proxies
// of jepsen/net, driven through every operation a nemesis uses; and the WAL damage, checked against Keel's
// own WAL reader. Needs `npm run build` (dist/cli/main.js); built here only when missing.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { connectAdmin } from '../../jepsen/client/admin';
import { connectKv, type KvConn } from '../../jepsen/client/kv';
import { createCluster, type CreateClusterOptions } from '../../jepsen/db';
import { repoRoot } from '../../jepsen/db/keel';
import { corruptWal, keelFrames } from '../../jepsen/db/wal-corrupt';
import { createNet } from '../../jepsen/net/net';
import { createRng } from '../../jepsen/rng';
import type { ClusterUnderTest, Net } from '../../jepsen/types';
import { EntryType } from '../../src/raft/core/types';
import { Wal } from '../../src/raft/wal/wal';

const ROOT = repoRoot();
const ETCD_BIN = '/usr/bin/etcd';

function ensureBuilt(): void {
  if (fs.existsSync(path.join(ROOT, 'dist', 'cli', 'main.js'))) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {
    cwd: ROOT,
    stdio: 'inherit',
    timeout: 300_000,
  });
}

function tmpDir(t: Test, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.teardown(() => {
    if (process.env.KEEL_KEEP_DIRS) console.error(`# KEEL_KEEP_DIRS: left ${dir}`);
    else fs.rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `f` until it returns something other than undefined; fails after `ms`. */
async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

interface Env {
  cluster: ClusterUnderTest;
  net: Net;
  dir: string;
  logs: string[];
  kv(name: string): KvConn;
}

/** A cluster in a temporary run dir behind a real Net; everything torn down by pid at the end. */
async function setup(t: Test, opts: Partial<CreateClusterOptions> & Pick<CreateClusterOptions, 'target'>): Promise<Env> {
  const dir = tmpDir(t, `jepsen-db-${opts.target}-`);
  const logs: string[] = [];
  const log = (m: string): void => void logs.push(m);
  const net = createNet({ log });
  const cluster = await createCluster({ nodes: 3, dir, net, log, ...opts });
  const conns: KvConn[] = [];
  t.teardown(async () => {
    for (const c of conns) c.close();
    await cluster.stop();
    await net.close();
  });
  return {
    cluster,
    net,
    dir,
    logs,
    kv(name) {
      const node = cluster.nodes.find((n) => n.name === name);
      if (node === undefined) throw new Error(`no node ${name}`);
      const c = connectKv(node.clientUrl, { timeoutMs: 5000 });
      conns.push(c);
      return c;
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The pids of the members' processes now running (read from /proc: the cluster does not expose them). */
function memberPids(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes(dir)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

t.test('createCluster refuses bad options and a dist without cli/main.js', async (t) => {
  const dir = tmpDir(t, 'jepsen-db-bad-');
  const net = createNet({ log: () => undefined });
  t.teardown(() => net.close());
  const base = { target: 'keel' as const, nodes: 3, dir, net, log: () => undefined };
  await t.rejects(createCluster({ ...base, keelDist: dir }), /cli\/main\.js is missing/);
  await t.rejects(createCluster({ ...base, nodes: 0 }), /nodes must be an integer/);
  await t.rejects(createCluster({ ...base, electionMs: -5 }), /electionMs must be a positive integer/);
  await t.rejects(createCluster({ ...base, token: 'a b' }), /token must be/);
});

t.test('WAL damage, read back by Keel\'s own WAL', async (t) => {
  const silent = pino({ level: 'silent' });
  /** A data dir whose WAL holds entries 1..n, one record each, with distinct payloads. */
  async function dataDirWithEntries(n: number): Promise<string> {
    const dataDir = tmpDir(t, 'jepsen-db-wal-');
    const wal = await Wal.create(path.join(dataDir, 'wal'), { segmentSize: 64 * 1024, logger: silent });
    for (let i = 1; i <= n; i++) {
      await wal.save(undefined, [{ term: 1, index: i, type: EntryType.Normal, data: Buffer.from(`entry-${i}-`.repeat(20)) }], true);
    }
    await wal.close();
    return dataDir;
  }

  await t.test('truncate: cut part-way through the last record, repaired on open', async (t) => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const dataDir = await dataDirWithEntries(10);
      const what = corruptWal('keel', dataDir, 'truncate', createRng(seed));
      const m = /^wal\/(\S+\.wal) truncated at (\d+) \(record at (\d+)\.\.(\d+), file was (\d+) bytes\)$/.exec(what);
      t.ok(m, `described: ${what}`);
      const [, file, cut, from, to] = m!;
      t.ok(Number(cut) > Number(from) && Number(cut) < Number(to), 'the cut is strictly inside the record');
      t.equal(fs.statSync(path.join(dataDir, 'wal', file!)).size, Number(cut), 'the file ends at the cut');
      const { wal, contents } = await Wal.open(path.join(dataDir, 'wal'), { segmentSize: 64 * 1024, logger: silent });
      t.same(contents.entries.map((e) => e.index), [1, 2, 3, 4, 5, 6, 7, 8, 9], 'the torn last entry is cut off');
      await wal.close();
    }
  });

  await t.test('bitflip: one bit of one of the last records; never read back as other data', async (t) => {
    let refused = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const dataDir = await dataDirWithEntries(10);
      const walDir = path.join(dataDir, 'wal');
      const file = path.join(walDir, fs.readdirSync(walDir).find((n) => n.endsWith('.wal'))!);
      const before = fs.readFileSync(file);
      const what = corruptWal('keel', dataDir, 'bitflip', createRng(seed));
      t.match(what, /^wal\/\S+\.wal: flipped bit [0-7] of byte \d+ \(payload of the record at \d+\.\.\d+, /);
      const after = fs.readFileSync(file);
      const diff = [...before.keys()].filter((i) => before[i] !== after[i]);
      t.equal(diff.length, 1, 'exactly one byte changed');
      const frames = keelFrames(before);
      const hit = frames.findIndex((f) => diff[0]! >= f.payloadStart && diff[0]! < f.payloadEnd);
      t.ok(hit >= frames.length - 3, `inside the payload of one of the last three records (record ${hit} of ${frames.length})`);
      try {
        const { wal, contents } = await Wal.open(walDir, { segmentSize: 64 * 1024, logger: silent });
        // Repair may only cut the damaged tail: whatever is read back is what was written.
        for (const e of contents.entries) t.equal(Buffer.from(e.data).toString(), `entry-${e.index}-`.repeat(20));
        await wal.close();
      } catch (err) {
        refused++;
        t.match((err as Error).message, file, 'a refusal names the file');
      }
    }
    t.ok(refused > 0, `damage in place is refused (${refused} of 6 times)`);
  });

  await t.test('errors: no WAL, only a segment header', async (t) => {
    const empty = tmpDir(t, 'jepsen-db-nowal-');
    t.throws(() => corruptWal('keel', empty, 'truncate', createRng(1)), /no WAL to corrupt/);
    const headerOnly = tmpDir(t, 'jepsen-db-hdr-');
    const wal = await Wal.create(path.join(headerOnly, 'wal'), { segmentSize: 64 * 1024, logger: silent });
    await wal.close();
    t.throws(() => corruptWal('keel', headerOnly, 'bitflip', createRng(1)), /no record to damage/);
  });
});

t.test('Keel: 3 members behind the link proxies', async (t) => {
  ensureBuilt();
  const env = await setup(t, { target: 'keel' });
  const { cluster } = env;
  await cluster.start(30_000);
  t.same(cluster.members(), ['n1', 'n2', 'n3']);
  t.same(cluster.nodes.map((n) => cluster.state(n.name)), ['running', 'running', 'running']);
  for (const n of cluster.nodes) t.not(new URL(n.peerUrl).port, new URL(n.listenPeerUrl).port, `${n.name} listens behind its proxy`);

  const leader = await cluster.leader(10_000);
  t.ok(leader && cluster.members().includes(leader), `a leader: ${leader}`);
  const put = await env.kv('n1').put('k1', 'v1');
  t.ok(put.revision > 1, 'a put through gRPC works');
  t.equal((await env.kv('n3').get('k1')).value, 'v1');

  await t.test('a partition through the proxies isolates the leader', async (t) => {
    const old = (await cluster.leader(10_000))!;
    const rest = cluster.members().filter((n) => n !== old);
    env.net.partition([[old], rest]);
    const next = await until('a leader among the majority', 15_000, async () => {
      const l = await cluster.leader(1000);
      return l !== undefined && l !== old ? l : undefined;
    });
    t.ok(rest.includes(next), `${next} leads the majority`);
    env.net.heal();
  });

  await t.test('kill the leader: another is elected; restart it', async (t) => {
    const old = (await cluster.leader(10_000))!;
    await cluster.kill(old);
    t.equal(cluster.state(old), 'killed');
    const next = await until('a new leader', 15_000, async () => {
      const l = await cluster.leader(1000);
      return l !== undefined && l !== old ? l : undefined;
    });
    t.not(next, old);
    await t.rejects(cluster.corruptWal(next, 'truncate', createRng(1)), /kill it first/, 'a running member\'s WAL is left alone');
    await cluster.restart(old);
    t.equal(cluster.state(old), 'running');
    await t.rejects(cluster.restart(old), /still running/);
    t.equal((await until('a read on the restarted member', 15_000, async () => (await env.kv(old).get('k1')).value ?? undefined)), 'v1');
  });

  await t.test('pause and resume a member', async (t) => {
    const l = (await cluster.leader(10_000))!;
    const follower = cluster.members().find((n) => n !== l)!;
    cluster.pause(follower);
    t.equal(cluster.state(follower), 'paused');
    t.throws(() => cluster.pause(follower), /cannot pause/);
    const status = connectAdmin(cluster.nodes.find((n) => n.name === follower)!.clientUrl);
    t.teardown(() => status.close());
    await t.rejects(status.status({ timeoutMs: 500 }), /DEADLINE_EXCEEDED/, 'a paused member does not answer');
    t.ok((await env.kv(l).put('k2', 'v2')).revision > 0, 'the others still commit');
    cluster.resume(follower);
    t.equal(cluster.state(follower), 'running');
    t.throws(() => cluster.resume(follower), /not paused/);
    await until('the resumed member answering', 10_000, async () => (await status.status({ timeoutMs: 1000 })).memberId);
  });

  await t.test('transfer leadership and compact', async (t) => {
    const l = (await cluster.leader(10_000))!;
    const to = cluster.members().find((n) => n !== l)!;
    await until(`${to} up to date enough to take over`, 15_000, async () => {
      await cluster.transferLeader(to);
      return true;
    });
    t.equal(await until(`${to} to lead`, 10_000, async () => ((await cluster.leader(1000)) === to ? to : undefined)), to);
    const r1 = (await env.kv(to).put('k3', 'v3')).revision;
    const rev = await cluster.compact();
    t.ok(rev >= r1, `compacted at ${rev} >= ${r1}`);
    const admin = connectAdmin(cluster.nodes.find((n) => n.name === to)!.clientUrl);
    t.teardown(() => admin.close());
    await t.rejects(admin.compact(rev - 1), /required revision has been compacted/, 'the store is compacted at rev');
    t.equal(await cluster.compact(), rev, 'compacting again with no write in between is a no-op at the same revision');
  });

  await t.test('truncate a stopped member\'s WAL: it repairs the torn tail and comes back', async (t) => {
    const l = (await cluster.leader(10_000))!;
    const victim = cluster.members().find((n) => n !== l)!;
    await cluster.kill(victim);
    const what = await cluster.corruptWal(victim, 'truncate', createRng(7));
    t.match(what, new RegExp(`^${victim}: wal/[0-9a-f]{16}-[0-9a-f]{16}\\.wal truncated at \\d+ \\(record at \\d+\\.\\.\\d+`));
    await cluster.restart(victim);
    t.equal(cluster.state(victim), 'running');
    const log = fs.readFileSync(cluster.nodes.find((n) => n.name === victim)!.logFile, 'utf8');
    t.match(log, /torn|cut back|truncat/i, 'its log reports the repair');
    t.ok((await env.kv(victim).put('k4', 'v4')).revision > 0, 'it serves writes again');
  });

  await t.test('grow to 4 members (learner, then promoted) and shrink back to 3', async (t) => {
    const name = await cluster.grow();
    t.equal(name, 'n4');
    t.same(cluster.members(), ['n1', 'n2', 'n3', 'n4']);
    t.equal(cluster.state('n4'), 'running');
    const admin = connectAdmin(cluster.nodes[3]!.clientUrl);
    t.teardown(() => admin.close());
    const list = await admin.memberList();
    t.equal(list.length, 4);
    t.notOk(list.find((m) => m.peerUrls.includes(cluster.nodes[3]!.peerUrl))?.isLearner, 'n4 is a voting member');
    t.equal((await env.kv('n4').get('k1')).value, 'v1', 'n4 has the data');
    await cluster.shrink('n4');
    t.same(cluster.members(), ['n1', 'n2', 'n3']);
    t.equal(cluster.state('n4'), 'removed');
    await t.rejects(cluster.shrink('n1'), /keeps at least 3/);
    await t.rejects(cluster.restart('n4'), /was removed/);
    const l = await cluster.leader(10_000);
    t.ok(l && ['n1', 'n2', 'n3'].includes(l), `a leader among the three: ${l}`);
  });

  await t.test('bitflip in a stopped member\'s WAL: it comes back or refuses naming the WAL', async (t) => {
    const l = (await cluster.leader(10_000))!;
    const victim = cluster.members().find((n) => n !== l)!;
    await env.kv(l).put('k5', 'v5');
    await cluster.kill(victim);
    const what = await cluster.corruptWal(victim, 'bitflip', createRng(3));
    t.match(what, new RegExp(`^${victim}: wal/\\S+\\.wal: flipped bit`));
    try {
      await cluster.restart(victim);
      t.comment(`${victim} came back after: ${what}`);
      t.equal(cluster.state(victim), 'running');
    } catch (err) {
      t.comment(`${victim} refused: ${(err as Error).message.split('\n')[0]}`);
      t.match((err as Error).message, new RegExp(`${victim} exited right after its restart \\(exit code [1-9]`));
      t.match((err as Error).message, /wal/i, 'the error names the WAL');
      t.equal(cluster.state(victim), 'stopped');
    }
  });

  const dir = env.dir;
  t.ok(memberPids(dir).length > 0, 'members are running before stop');
  await cluster.stop();
  await cluster.stop();
  t.same(memberPids(dir).filter(isAlive), [], 'stop() leaves no member process');
  t.ok(cluster.nodes.every((n) => ['stopped', 'killed', 'removed'].includes(cluster.state(n.name))));
});

t.test('etcd: 3 members behind the link proxies', { skip: fs.existsSync(ETCD_BIN) ? false : `${ETCD_BIN} is not installed` }, async (t) => {
  const env = await setup(t, { target: 'etcd', etcdBin: ETCD_BIN });
  const { cluster } = env;
  await cluster.start(30_000);
  const leader = (await cluster.leader(10_000))!;
  t.ok(cluster.members().includes(leader), `a leader: ${leader}`);
  t.ok((await env.kv('n2').put('k1', 'v1')).revision > 1, 'a put through gRPC works');

  await cluster.kill(leader);
  const next = await until('a new leader', 20_000, async () => {
    const l = await cluster.leader(1000);
    return l !== undefined && l !== leader ? l : undefined;
  });
  t.not(next, leader, `${next} took over`);

  const what = await cluster.corruptWal(leader, 'truncate', createRng(5));
  t.match(what, new RegExp(`^${leader}: member/wal/[0-9a-f]{16}-[0-9a-f]{16}\\.wal truncated at \\d+`));
  await cluster.restart(leader);
  t.equal(cluster.state(leader), 'running', `etcd repaired its torn WAL tail (${what})`);
  t.equal((await until('a read on the restarted member', 15_000, async () => (await env.kv(leader).get('k1')).value ?? undefined)), 'v1');

  const grown = await cluster.grow();
  t.equal(grown, 'n4');
  const admin = connectAdmin(cluster.nodes[3]!.clientUrl);
  t.teardown(() => admin.close());
  const list = await admin.memberList();
  t.equal(list.filter((m) => !m.isLearner).length, 4, 'n4 was promoted: four voting members');
  await cluster.shrink('n4');
  t.same(cluster.members(), ['n1', 'n2', 'n3']);
  t.equal(cluster.state('n4'), 'removed');

  const dir = env.dir;
  await cluster.stop();
  await cluster.stop();
  t.same(memberPids(dir).filter(isAlive), [], 'stop() leaves no member process');
});
