// Randomized runs of the watch hub, each driven by one seeded PRNG: writes (single and multi-key
// transactions, range deletes) applied with a lag, watches created from random old, current and future
// revisions with random ranges, filters, prevKv and fragment, cancels, sinks that back up and resume at
// random, compactions, snapshot restores, progress requests, history reads that take a random number of
// turns, streams closed. Every response is checked as it arrives (fixtures/watch-checker.ts): per watch,
// ordered, no duplicate, no gap against the history, every revision whole, progress never ahead of an
// event, compaction cancels only when the watch was behind the compaction; and at the end, once every
// sink takes responses again, every live watch has everything.
//
//   npx tap test/kv/watch-hub-random.test.ts                  seeds 1..KEEL_WATCH_SEEDS (default below)
//   KEEL_SEED=1234 npx tap test/kv/watch-hub-random.test.ts   replay one seed

import t from 'tap';
import type { WatchCreateRequest, WatchFilter } from '../../src/kv/api';
import type { RevisionEvents } from '../../src/kv/state-machine';
import { WatchHub } from '../../src/kv/watch-hub';
import { Rng } from '../../src/raft/core/rng';
import { header, immediate } from './fixtures/hub-harness';
import { b, MemoryHistory, type WriteOp } from './fixtures/memory-history';
import { CheckedStream } from './fixtures/watch-checker';

const DEFAULT_SEEDS = 150;
const STEPS = 1500;
const KEYS = ['a/1', 'a/2', 'a/3', 'b/1', 'b/2', 'c', 'd/x', 'd/y'];
const ZERO = Buffer.from([0]);

interface RunStats {
  revisions: number;
  watches: number;
  events: number;
  compactCancels: number;
  refused: number;
  progress: number;
  restores: number;
  reads: number;
}

function randomWatch(rng: Rng, history: MemoryHistory): WatchCreateRequest {
  const shape = rng.int(0, 6);
  const req: WatchCreateRequest =
    shape === 0 ? { key: b('a/'), rangeEnd: b('a0') }
    : shape === 1 ? { key: b('d/'), rangeEnd: b('d0') }
    : shape === 2 ? { key: b('b/'), rangeEnd: ZERO }
    : shape === 3 ? { key: Buffer.alloc(0), rangeEnd: ZERO }
    : shape === 4 ? { key: b('a/2'), rangeEnd: b('c') }
    : { key: b(rng.pick(KEYS)) };
  if (rng.chance(0.6)) {
    const lo = Math.max(1, history.compactRevision() - 3);
    req.startRevision = rng.int(lo, history.revision() + 4);
  }
  if (rng.chance(0.15)) req.watchId = rng.int(0, 6);
  const filters: WatchFilter[] = [];
  if (rng.chance(0.1)) filters.push('NOPUT');
  if (rng.chance(0.1)) filters.push('NODELETE');
  if (filters.length > 0) req.filters = filters;
  if (rng.chance(0.5)) req.prevKv = true;
  if (rng.chance(0.3)) req.fragment = true;
  if (rng.chance(0.1)) req.progressNotify = true;
  return req;
}

function randomTxn(rng: Rng): WriteOp[] {
  const n = rng.int(1, 4);
  const keys = [...KEYS].sort(() => rng.next() - 0.5).slice(0, n);
  return keys.map((key): WriteOp => {
    const r = rng.next();
    if (r < 0.7) {
      const len = rng.chance(0.05) ? 400 : rng.int(0, 40);
      return { put: key, value: 'v'.repeat(len) };
    }
    if (r < 0.9) return { del: key };
    return { delRange: key, end: `${key}~` };
  });
}

async function runSeed(seed: number): Promise<{ violations: string[]; stats: RunStats }> {
  const rng = new Rng(seed);
  const history = new MemoryHistory();
  history.readDelay = () => rng.int(0, 4);
  const hub = new WatchHub({
    history,
    header,
    maxBufferedRevisions: rng.int(1, 10),
    historyBatchRevisions: rng.int(1, 8),
    maxResponseBytes: rng.pick([300, 800, 1 << 20]),
    progressIntervalMs: 3_600_000, // periodic progress is timing; watch-hub-slow.test.ts covers it
  });
  const violations: string[] = [];
  let step = 0;
  const fail = (msg: string): void => {
    if (violations.length < 10) violations.push(`step ${step}: ${msg}`);
  };
  const stats: RunStats = { revisions: 0, watches: 0, events: 0, compactCancels: 0, refused: 0, progress: 0, restores: 0, reads: 0 };
  let liveRev = history.revision();
  /** While onApplied runs: [revision before, last revision of the batch]. */
  let applying: [number, number] | null = null;
  let pending: RevisionEvents[] = [];
  let streamNo = 0;
  const open = (): CheckedStream => {
    const s = new CheckedStream(hub, history, fail, `stream ${streamNo++}`);
    // Now and then the client acts from inside the sink, as a server reacting to a response might.
    s.afterReceive = () => {
      if (!rng.chance(0.03)) return;
      const what = rng.int(0, 3);
      if (what === 0) s.create(randomWatch(rng, history), applying ?? liveRev);
      else if (what === 1 && s.watches.size > 0) s.cancel(rng.pick([...s.watches.keys()]));
      else s.requestProgress();
    };
    return s;
  };
  const streams = [open(), open(), open()];
  const closed: CheckedStream[] = [];

  const applyPending = (count: number): void => {
    const batch = pending.slice(0, count);
    pending = pending.slice(count);
    const last = batch.length > 0 ? batch[batch.length - 1].revision : liveRev;
    applying = [liveRev, last];
    hub.onApplied(batch);
    applying = null;
    liveRev = last;
  };

  try {
    for (step = 0; step < STEPS && violations.length === 0; step++) {
      const roll = rng.next();
      const s = rng.pick(streams);
      if (roll < 0.3) {
        const rc = history.txn(randomTxn(rng));
        if (rc) pending.push(rc);
      } else if (roll < 0.42) {
        applyPending(pending.length === 0 ? 0 : rng.int(1, pending.length + 1));
      } else if (roll < 0.53) {
        s.create(randomWatch(rng, history), liveRev);
        stats.watches += 1;
      } else if (roll < 0.57) {
        const ids = [...s.watches.keys()];
        s.cancel(ids.length > 0 && rng.chance(0.9) ? rng.pick(ids) : rng.int(0, 20));
      } else if (roll < 0.67) {
        s.backedUp = rng.chance(0.6);
      } else if (roll < 0.75) {
        if (rng.chance(0.7)) s.backedUp = false;
        s.resume();
      } else if (roll < 0.775) {
        const to = Math.max(history.compactRevision(), history.revision() - rng.int(0, 60));
        history.compact(to);
        applyPending(pending.length);
      } else if (roll < 0.785) {
        // A snapshot from the leader replaces the state: what this member had applied but not yet handed to
        // the hub, and a few revisions it never applied, arrive together; sometimes after a compaction.
        if (rng.chance(0.5)) applyPending(pending.length);
        pending = [];
        for (let i = rng.int(0, 6); i > 0; i--) history.txn(randomTxn(rng));
        if (rng.chance(0.3)) history.compact(Math.max(history.compactRevision(), history.revision() - rng.int(0, 10)));
        hub.onRestore();
        liveRev = history.revision();
        stats.restores += 1;
      } else if (roll < 0.82) {
        s.requestProgress();
      } else if (roll < 0.825) {
        s.close();
        closed.push(s);
        streams[streams.indexOf(s)] = open();
      } else {
        for (let i = rng.int(1, 5); i > 0; i--) await immediate();
      }
    }

    // Quiesce: everything applied, every sink takes responses again; the hub must bring every watch level.
    applyPending(pending.length);
    for (const s of streams) {
      s.backedUp = false;
      s.resume();
    }
    for (let i = 0; i < 5000 && hub.stats().unsynced > 0; i++) await immediate();
    if (hub.stats().unsynced > 0) fail(`${hub.stats().unsynced} watcher(s) still behind after the quiet period`);
    for (const s of streams) s.finalCheck(liveRev);
  } finally {
    hub.close();
  }
  stats.revisions = history.revision();
  stats.reads = history.reads.length;
  for (const s of [...streams, ...closed]) {
    for (const w of [...s.watches.values(), ...s.ended]) stats.events += w.events;
    stats.compactCancels += s.ended.filter((w) => w.compactRevision !== undefined).length;
    stats.refused += s.refused.length;
    stats.progress += s.progressAll + s.progress;
  }
  return { violations, stats };
}

const only = process.env.KEEL_SEED;
const count = Number(process.env.KEEL_WATCH_SEEDS ?? DEFAULT_SEEDS);
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: count }, (_, i) => i + 1);

t.test(`watch hub randomized: ${seeds.length} seed(s)${only !== undefined ? ` (replay of ${only})` : ' from 1'}`, async (t) => {
  const started = Date.now();
  const total: RunStats = { revisions: 0, watches: 0, events: 0, compactCancels: 0, refused: 0, progress: 0, restores: 0, reads: 0 };
  let failed = 0;
  for (const seed of seeds) {
    const { violations, stats } = await runSeed(seed);
    if (violations.length > 0) {
      failed += 1;
      t.fail(`seed ${seed}:\n  ${violations.join('\n  ')}\n  replay: KEEL_SEED=${seed} npx tap test/kv/watch-hub-random.test.ts`);
      if (failed >= 3) break;
    }
    for (const k of Object.keys(total) as (keyof RunStats)[]) total[k] += stats[k];
  }
  t.equal(failed, 0, 'every seed holds the guarantees');
  // The runs must actually exercise what they claim to (a generator gone quiet would pass vacuously).
  t.ok(total.events > 1000 * seeds.length / 40, `events delivered: ${total.events}`);
  if (seeds.length >= 10) {
    t.ok(total.compactCancels > 0, `watches canceled by compaction: ${total.compactCancels}`);
    t.ok(total.refused > 0, `creates refused: ${total.refused}`);
    t.ok(total.progress > 0, `progress notifications: ${total.progress}`);
    t.ok(total.restores > 0, `restores: ${total.restores}`);
  }
  t.comment(`seeds ${seeds[0]}..${seeds[seeds.length - 1]} in ${Date.now() - started} ms: ${JSON.stringify(total)}`);
});
