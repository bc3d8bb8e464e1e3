// Compaction: what it keeps (etcd's rule), its errors, the background removal in bounded batches that never
// holds up apply() for long, its progress surviving a restart, and a restore in the middle of it.

import path from 'node:path';
import t from 'tap';
import { MvccStore, decodeSnapshotData } from '../../src/kv/mvcc/mvcc-store';
import type { Command } from '../../src/kv/state-machine';
import { Log, ZERO, del, errorOf, get, openStore, put, run, tempDir } from './fixtures/mvcc';

const compact = (revision: number): Command => ({ op: 'compact', req: { revision } });
const summary = async (s: MvccStore) => decodeSnapshotData(await s.snapshot());

t.test('compaction keeps each key\'s newest version at or below the revision, unless deleted', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await s.apply([
    log.entry(put('a', '1')), // 2
    log.entry(put('a', '2')), // 3
    log.entry(put('b', '1')), // 4
    log.entry(del('a')), // 5
    log.entry(put('c', '1')), // 6
    log.entry(put('a', 'new')), // 7
    log.entry(put('b', '2')), // 8
  ]);
  t.same(await run(s, log, compact(6)), { op: 'compact', revision: 8 });
  t.equal(s.compactRevision(), 6, 'recorded at once');
  await t.rejects(s.range({ key: ZERO, rangeEnd: ZERO, revision: 5 }), { message: 'etcdserver: mvcc: required revision has been compacted' });
  await t.rejects(s.events(5, 8, 10), { message: 'etcdserver: mvcc: required revision has been compacted' });
  await s.compacted(6);
  const at = async (rev: number) => (await get(s, '\0', { rangeEnd: ZERO, revision: rev })).kvs.map((kv) => `${kv.key}=${kv.value}@${kv.m}`);
  t.same(await at(6), ['b=1@4', 'c=1@6'], 'a read at the compact revision still works');
  t.same(await at(7), ['a=new@7', 'b=1@4', 'c=1@6']);
  t.same(await at(8), ['a=new@7', 'b=2@8', 'c=1@6']);
  t.same((await get(s, 'b', { revision: 7 })).kvs.map((kv) => kv.value), ['1']);
  // Physically: b@4 (newest of b at or below 6), c@6, a@7, b@8; a's versions and its delete are gone.
  const sum = await summary(s);
  t.same([sum.versions, sum.events, sum.compaction.done], [4, 3, 6]);
  t.same((await s.events(6, 8, 10)).map((r) => r.revision), [6, 7, 8]);
  const [seven] = await s.events(7, 7, 1);
  t.notOk(seven.events[0].prevKv, 'a@7 was created after a delete: no prevKv');
  const [eight] = await s.events(8, 8, 1);
  t.same(eight.events[0].prevKv?.value.toString(), '1', 'the version a later event replaced is kept');

  t.equal(errorOf(await run(s, log, compact(6))), 'etcdserver: mvcc: required revision has been compacted');
  t.equal(errorOf(await run(s, log, compact(3))), 'etcdserver: mvcc: required revision has been compacted');
  t.equal(errorOf(await run(s, log, compact(9))), 'etcdserver: mvcc: required revision is a future revision');
  t.same(await run(s, log, compact(8)), { op: 'compact', revision: 8 });
  await s.compacted(8);
  const later = await summary(s);
  t.same([later.versions, later.events], [3, 1], 'the events kept at 6 went with the next compaction');
  t.same(await at(8), ['a=new@7', 'b=2@8', 'c=1@6']);
});

t.test('a fresh store refuses compacting at 0 and compacts at its first revision', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  t.equal(errorOf(await run(s, log, compact(0))), 'etcdserver: mvcc: required revision has been compacted');
  t.same(await run(s, log, compact(1)), { op: 'compact', revision: 1 });
  await s.compacted(1);
  t.same((await get(s, 'x', { revision: 1 })).kvs, []);
});

async function fill(s: MvccStore, log: Log, revisions: number, keys: number): Promise<void> {
  const perCall = 1000;
  for (let done = 0; done < revisions; done += perCall) {
    const n = Math.min(perCall, revisions - done);
    await s.apply(Array.from({ length: n }, (_, i) => log.entry(put(`key/${(done + i) % keys}`, `value-${done + i}`))));
  }
}

t.test('background compaction of 20,000 revisions does not hold up apply', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await fill(s, log, 20_000, 500);
  const target = s.revision();
  await run(s, log, compact(target));
  let finished = false;
  const started = Date.now();
  const done = s.compacted(target).then(() => {
    finished = true;
  });
  const latencies: number[] = [];
  for (let i = 0; i < 5000 && !finished && Date.now() - started < 60_000; i++) {
    const t0 = process.hrtime.bigint();
    await s.apply([log.entry(put(`live/${i % 10}`, `${i}`))]);
    latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await done;
  const took = Date.now() - started;
  latencies.sort((a, b) => a - b);
  const max = latencies[latencies.length - 1];
  t.comment(`compaction of ${target} revisions took ${took} ms; ${latencies.length} applies meanwhile, p50 ${latencies[latencies.length >> 1]?.toFixed(1)} ms, max ${max?.toFixed(1)} ms`);
  // Done in one go, the compaction would hold the first apply until it finished (one apply meanwhile, as
  // long as the whole compaction); in batches of 1000 events, applies go on between them.
  t.ok(latencies.length >= 10, `applies went on while the compaction ran (${latencies.length})`);
  t.ok(max < took * 0.75, `the slowest apply (${max?.toFixed(1)} ms) waited for a batch, not the compaction (${took} ms)`);
  const sum = await summary(s);
  t.equal(sum.keys, 500 + Math.min(10, latencies.length));
  t.equal(sum.versions, 500 + latencies.length, 'the newest version of each compacted key, and what came after');
  t.equal((await get(s, 'key/', { rangeEnd: ZERO, revision: target, countOnly: true })).count, 500);
});

t.test('an unfinished compaction resumes after a restart', async (t) => {
  const dir = path.join(await tempDir(t), 'db');
  const opts = { compactionBatchKeys: 2 };
  const s1 = await MvccStore.open(dir, undefined, opts);
  const log = new Log();
  await fill(s1, log, 400, 20);
  await run(s1, log, compact(300));
  // Let a few batches run, then stop in the middle.
  let progressed = await summary(s1);
  for (let i = 0; i < 200 && progressed.compaction.cursor.rev < 20; i++) progressed = await summary(s1);
  t.ok(progressed.compaction.cursor.rev >= 20 && progressed.compaction.done === 0, `stopped in the middle (cursor ${progressed.compaction.cursor.rev})`);
  await s1.close();

  const s2 = await openStore(t, dir, { compactionBatchKeys: 1_000_000 });
  t.equal(s2.compactRevision(), 300);
  await s2.compacted(300);
  const sum = await summary(s2);
  t.same([sum.compaction.done, sum.versions, sum.events], [300, 20 + 101, 102], 'revisions 2..401: the newest of 20 keys at 300, then 301..401');
  t.same((await get(s2, 'key/', { rangeEnd: ZERO, revision: 300, countOnly: true })).count, 20);
  await t.rejects(s2.range({ key: ZERO, rangeEnd: ZERO, revision: 299 }), /compacted/);
});

t.test('restore in the middle of a compaction: the restored state\'s own compaction goes on', async (t) => {
  const a = await openStore(t, undefined, { compactionBatchKeys: 1 });
  const log = new Log();
  await fill(a, log, 300, 10);
  await run(a, log, compact(250));
  const data = await a.snapshot();
  const mid = decodeSnapshotData(data);
  t.ok(mid.compaction.done < 250, 'the snapshot holds an unfinished compaction');

  // The target is itself compacting its own (other) history when the snapshot arrives.
  const b = await openStore(t, undefined, { compactionBatchKeys: 1 });
  const blog = new Log();
  await fill(b, blog, 200, 7);
  await run(b, blog, compact(150));
  const waiting = b.compacted(150);
  await b.restore({ meta: { index: log.index, term: 1, voters: [] }, data });
  await waiting; // the restored state is compacted to 250 logically; 150 <= what it reaches
  await b.compacted(250);
  const sum = await summary(b);
  t.same([sum.compactRevision, sum.compaction.done, sum.versions, sum.events], [250, 250, 10 + 51, 52]);
  t.same(await get(b, 'key/', { rangeEnd: ZERO }), await get(a, 'key/', { rangeEnd: ZERO }));
  await a.compacted(250);
  t.same(await b.events(250, 301, 100), await a.events(250, 301, 100));
});
