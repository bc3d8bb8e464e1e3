// The deterministic cluster simulation (see sim/simulator.ts): many seeds, each a whole randomized run with
// the Raft safety invariants asserted after every step and liveness asserted in every calm phase. About three
// seeds in four change the membership (spare members added as learners or voters, promotions, removals, the
// leader removing itself) and move the leader, under the same faults. 3,500 seeds take about two minutes.
//
//   npx tap test/raft/sim.test.ts                       the default seeds (1..KEEL_SIM_SEEDS)
//   KEEL_SIM_SEEDS=2000 KEEL_SIM_SEED_BASE=100000 ...   more seeds, from another base
//   KEEL_SEED=1234 npx tap test/raft/sim.test.ts        replay exactly one seed (KEEL_SIM_VERBOSE=1: full trace)

import t from 'tap';
import { runSeed, SimFailure, type SimStats } from './fixtures/sim/simulator';

const DEFAULT_SEEDS = 3500;

const only = process.env.KEEL_SEED;
const count = Number(process.env.KEEL_SIM_SEEDS ?? DEFAULT_SEEDS);
const base = Number(process.env.KEEL_SIM_SEED_BASE ?? 1);
const verbose = process.env.KEEL_SIM_VERBOSE === '1';
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => base + i);

t.test(`raft simulation: ${seeds.length} seed(s)${only !== undefined ? ' (replay)' : ` from ${base}`}`, (t) => {
  const started = Date.now();
  const failed: number[] = [];
  const total = {
    steps: 0, messages: 0, crashes: 0, partitions: 0, acked: 0, readsServed: 0, snapChunks: 0, leaders: 0,
    confProposed: 0, confApplied: 0, transfers: 0, transfersDone: 0, spares: 0,
  };
  const byNodes = new Map<number, number>();
  let worstLiveness = 0;
  for (const seed of seeds) {
    let s: SimStats;
    try {
      s = runSeed({ seed, verbose });
    } catch (err) {
      failed.push(seed);
      t.fail(err instanceof SimFailure ? err.message : String((err as Error).stack ?? err));
      if (failed.length >= 5) break;
      continue;
    }
    total.steps += s.steps;
    total.messages += s.messages;
    total.crashes += s.crashes;
    total.partitions += s.partitions;
    total.acked += s.acked;
    total.readsServed += s.readsServed;
    total.snapChunks += s.snapChunks;
    total.leaders += s.leaders;
    total.confProposed += s.confProposed;
    total.confApplied += s.confApplied;
    total.transfers += s.transfers;
    total.transfersDone += s.transfersDone;
    total.spares += s.spares;
    byNodes.set(s.nodes, (byNodes.get(s.nodes) ?? 0) + 1);
    worstLiveness = Math.max(worstLiveness, ...s.livenessTicks);
    if (only !== undefined) t.comment(JSON.stringify(s));
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  t.comment(
    `${seeds.length} seeds in ${secs}s (${[...byNodes].map(([n, c]) => `${c}x${n} nodes`).join(', ')}): ` +
      `${total.steps} steps, ${total.messages} messages, ${total.leaders} leaders, ${total.crashes} crashes, ` +
      `${total.partitions} partitions, ${total.acked} writes acknowledged, ${total.readsServed} reads served, ` +
      `${total.snapChunks} snapshot chunks delivered, ${total.confProposed} membership changes proposed and ` +
      `${total.confApplied} applied (${total.spares} spare members), ${total.transfersDone}/${total.transfers} ` +
      `leadership transfers done; slowest recovery ${worstLiveness} ticks`,
  );
  if (failed.length > 0) t.comment(`failing seeds: ${failed.join(' ')}`);
  t.equal(failed.length, 0, 'every seed keeps the invariants');
  t.end();
});
