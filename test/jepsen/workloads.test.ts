// Every workload (jepsen/workloads/) run for a few seconds against a real 3-member Keel cluster, without
// faults: the history it records must be well formed, hold real operations of every kind, and be found valid
// by the workload's checker. The register workload also runs against etcd when it is installed, and its
// checker is shown to reject a doctored history.

import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { pairHistory, type HistoryEvent } from '../../jepsen/history';
import { createRecorder } from '../../jepsen/recorder';
import { createRng } from '../../jepsen/rng';
import type { NodeInfo, Workload, WorkloadContext } from '../../jepsen/types';
import { createWorkload, WORKLOAD_NAMES } from '../../jepsen/workloads/index';
import { ProcCluster } from '../process/fixtures/proc-cluster';
import { findEtcd, startEtcdCluster } from '../../bench/lib/etcd-cluster';

const RUN_MS = 3000;

function nodesOf(members: { name: string; clientUrl: string; peerUrl: string; dataDir: string }[], dir: string): NodeInfo[] {
  return members.map((m) => ({
    name: m.name,
    clientUrl: m.clientUrl,
    peerUrl: m.peerUrl,
    listenPeerUrl: m.peerUrl,
    dataDir: m.dataDir,
    logFile: path.join(dir, `${m.name}.log`),
  }));
}

interface RunOutcome {
  events: readonly HistoryEvent[];
  file: string;
  logs: string[];
}

/** Runs `workload` for RUN_MS (then its finish) with a recorder writing to a file in `dir`. */
async function runWorkload(workload: Workload, nodes: NodeInfo[], target: 'keel' | 'etcd', dir: string, seed: number): Promise<RunOutcome> {
  const file = path.join(dir, `${workload.name}-${target}.jsonl`);
  const recorder = createRecorder({ file });
  const abort = new AbortController();
  const logs: string[] = [];
  const ctx: WorkloadContext = {
    target,
    nodes: () => nodes,
    recorder,
    rng: createRng(seed),
    concurrency: 5,
    opTimeoutMs: 3000,
    signal: abort.signal,
    log: (msg) => logs.push(msg),
  };
  const timer = setTimeout(() => abort.abort(), RUN_MS);
  try {
    await workload.run(ctx);
    await workload.finish(ctx);
  } finally {
    clearTimeout(timer);
    recorder.close();
  }
  return { events: recorder.events(), file, logs };
}

/** How many ok completions each f has. */
function okCounts(events: readonly HistoryEvent[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of events) if (e.type === 'ok') out[e.f] = (out[e.f] ?? 0) + 1;
  return out;
}

t.test('createWorkload names every workload and refuses others', async (tt) => {
  tt.same([...WORKLOAD_NAMES].sort(), ['append', 'lock', 'lock-unfenced', 'register', 'set', 'watch']);
  for (const n of WORKLOAD_NAMES) tt.equal(createWorkload(n).name, n);
  tt.throws(() => createWorkload('bank'), /unknown workload "bank": valid names are register, set, append, watch, lock, lock-unfenced/);
  tt.throws(() => createWorkload('toString'), /unknown workload/);
});

t.test('against a 3-member Keel cluster', async (tt) => {
  const cluster = await ProcCluster.start(3);
  tt.teardown(async () => {
    await cluster.stopAll();
    cluster.cleanup();
  });
  await cluster.waitForLeader(20_000);
  const nodes = nodesOf(cluster.members, cluster.dir);

  // what each workload must have done at least once (ok), so that a run that recorded nothing cannot pass
  const expected: Record<string, string[]> = {
    register: ['read', 'write', 'cas'],
    set: ['add', 'read'],
    append: ['txn'],
    watch: ['write', 'watch'],
    lock: ['acquire', 'fenced-write', 'release', 'read'],
    'lock-unfenced': ['acquire', 'fenced-write', 'release', 'read'],
  };
  let seed = 1;
  for (const name of WORKLOAD_NAMES) {
    await tt.test(name, async (wt) => {
      const workload = createWorkload(name);
      const { events, file, logs } = await runWorkload(workload, nodes, 'keel', cluster.dir, seed++);
      const counts = okCounts(events);
      for (const f of expected[name]) wt.ok((counts[f] ?? 0) > 0, `some ${f} succeeded (${JSON.stringify(counts)})`);
      wt.doesNotThrow(() => pairHistory(events), 'a well-formed history');
      wt.equal(fs.readFileSync(file, 'utf8').trim().split('\n').length, events.length, 'every event is in the file');
      const results = await workload.check(events, { budgetMs: 10_000, workers: 0 });
      wt.ok(results.length > 0, 'at least one checker result');
      for (const r of results) wt.equal(r.verdict, 'valid', `${r.checker}: ${r.summary}${logs.length ? `; log: ${logs.slice(0, 5).join(' | ')}` : ''}`);
      if (name === 'append') {
        // reads came back filled in, and some saw earlier appends
        const reads = events.filter((e) => e.type === 'ok').flatMap((e) => e.value as [string, string, unknown][]).filter((m) => m[0] === 'r');
        wt.ok(reads.length > 0 && reads.every((m) => Array.isArray(m[2])), 'every completed read holds a list');
        wt.ok(reads.some((m) => (m[2] as unknown[]).length > 0), 'some read saw appends');
      }
      if (name === 'watch') {
        const sessions = events.filter((e) => e.type === 'ok' && e.f === 'watch').map((e) => e.value as { events: unknown[] });
        wt.ok(sessions.some((s) => s.events.length > 0), 'watch sessions delivered events');
      }
      if (name === 'register') {
        // the checker is not a rubber stamp: a read that returns a value nobody wrote is caught
        const doctored = events.map((e) => ({ ...e }));
        const read = doctored.find((e) => e.type === 'ok' && e.f === 'read')!;
        read.value = 999_999;
        const bad = await workload.check(doctored, { budgetMs: 10_000, workers: 0 });
        wt.equal(bad[0].verdict, 'invalid', 'a doctored read is invalid');
      }
    });
  }
});

t.test('register against etcd', { skip: findEtcd() ? false : 'etcd is not installed' }, async (tt) => {
  const etcd = await startEtcdCluster(3);
  tt.teardown(() => etcd.stop());
  const nodes = nodesOf(etcd.members, etcd.dir);
  const workload = createWorkload('register');
  const { events } = await runWorkload(workload, nodes, 'etcd', etcd.dir, 42);
  const counts = okCounts(events);
  for (const f of ['read', 'write', 'cas']) tt.ok((counts[f] ?? 0) > 0, `some ${f} succeeded (${JSON.stringify(counts)})`);
  const [r] = await workload.check(events, { budgetMs: 10_000, workers: 0 });
  tt.equal(r.verdict, 'valid', r.summary);
});
