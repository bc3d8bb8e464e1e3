import * as fs from 'fs';
import * as path from 'path';
import t from 'tap';
import { Wal } from '../../src/raft/wal/wal';
import { captureLogger, ent, ents, shape, tmpDir, walFiles } from './fixtures/helpers';

const SEG = 64 * 1024;

t.test('append, close, reopen: entries, hard state and indexes come back', async (t) => {
  const dir = path.join(tmpDir(t), 'wal');
  t.equal(await Wal.exists(dir), false, 'no WAL before create');
  const { logger, warnings } = captureLogger();
  const wal = await Wal.create(dir, { segmentSize: SEG, logger });
  t.equal(await Wal.exists(dir), true);
  t.same(walFiles(dir), ['0000000000000000-0000000000000001.wal']);
  t.equal(fs.statSync(path.join(dir, walFiles(dir)[0])).size, SEG, 'preallocated');
  t.equal(wal.firstIndex(), 0);
  t.equal(wal.lastIndex(), 0);

  const batch = ents(1, 5, 1);
  batch[2] = ent(3, 1, new Uint8Array([0, 1, 2, 255]));
  await wal.save({ term: 1, vote: 'aaaa', commit: 0 }, batch, true);
  await wal.save({ term: 1, vote: 'aaaa', commit: 3 }, ents(6, 7, 1), true);
  t.equal(wal.firstIndex(), 1);
  t.equal(wal.lastIndex(), 7);
  await wal.close();

  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG, logger });
  t.same(shape(contents.entries), shape(ents(1, 7, 1)));
  t.same(Buffer.from(contents.entries[2].data), Buffer.from([0, 1, 2, 255]), 'binary data intact');
  t.same(Buffer.from(contents.entries[0].data).toString(), 'e1t1');
  t.same(contents.hardState, { term: 1, vote: 'aaaa', commit: 3 }, 'last hard state wins');
  t.equal(contents.snapshot, undefined);
  t.equal(w2.firstIndex(), 1);
  t.equal(w2.lastIndex(), 7);

  // Appends after a reopen continue the chain.
  await w2.save(undefined, ents(8, 9, 2), true);
  await w2.close();
  const { contents: c3 } = await Wal.open(dir, { segmentSize: SEG, logger });
  t.same(shape(c3.entries), [...shape(ents(1, 7, 1)), [8, 2], [9, 2]]);
  t.same(c3.hardState, { term: 1, vote: 'aaaa', commit: 3 });
  t.same(warnings(), [], 'nothing to warn about on a clean log');
});

t.test('hard state: the last one written wins, including one saved alone', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG, logger: captureLogger().logger });
  await wal.save({ term: 1, vote: 'a', commit: 0 }, ents(1, 2, 1), true);
  await wal.save({ term: 2, vote: 'b', commit: 1 }, [], true);
  await wal.save(undefined, ents(3, 3, 2), true);
  await wal.close();
  const { contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(contents.hardState, { term: 2, vote: 'b', commit: 1 });
  t.same(shape(contents.entries), [[1, 1], [2, 1], [3, 2]]);
});

t.test('an empty WAL opens to an empty hard state and no entries', async (t) => {
  const dir = tmpDir(t);
  await (await Wal.create(dir, { segmentSize: SEG })).close();
  const { wal, contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(contents, { hardState: { term: 0, vote: '', commit: 0 }, entries: [] });
  t.equal(wal.lastIndex(), 0);
  await wal.close();
});

t.test('group commit: one save of 100 entries costs one fdatasync', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  t.equal(wal.stats().fsyncs, 0, 'create is not counted');
  await wal.save({ term: 1, vote: 'a', commit: 0 }, ents(1, 100, 1), true);
  t.equal(wal.stats().fsyncs, 1);
  t.ok(wal.stats().lastFsyncMs >= 0);
  await wal.save(undefined, ents(101, 150, 1), false);
  await wal.save(undefined, ents(151, 200, 1), false);
  t.equal(wal.stats().fsyncs, 1, 'unsynced saves do not fsync');
  await wal.save(undefined, [], true);
  t.equal(wal.stats().fsyncs, 2, 'a sync-only save flushes what the unsynced ones wrote');
  await wal.save(undefined, [], true);
  t.equal(wal.stats().fsyncs, 2, 'nothing dirty: nothing to sync');
  await wal.close();
});

t.test('one save is one write: the whole batch lands or the log is cut before it', async (t) => {
  // Indirect check of "one write per batch": the bytes of the batch follow the previous ones directly.
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save(undefined, ents(1, 3, 1), true);
  await wal.close();
  const file = path.join(dir, walFiles(dir)[0]);
  const buf = fs.readFileSync(file);
  let end = buf.length;
  while (end > 0 && buf[end - 1] === 0) end--;
  t.ok(end > 0 && end < 400, `three small entries and a header, ${end} bytes`);
});

t.test('refusals: create over an existing WAL, gaps, bad indexes, use after close', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await t.rejects(Wal.create(dir, { segmentSize: SEG }), /already holds segments/);
  await wal.save(undefined, ents(1, 3, 1), true);
  await t.rejects(wal.save(undefined, ents(5, 6, 1), true), /gap after the last index 3/);
  await t.rejects(wal.save(undefined, [ent(4, 1), ent(6, 1)], true), /gap/, 'gaps inside a batch too');
  await t.rejects(wal.save(undefined, [ent(0, 1)], true), /not a positive integer/);
  t.equal(wal.lastIndex(), 3, 'a refused batch changes nothing');
  await wal.close();
  await t.rejects(wal.save(undefined, ents(4, 4, 1), true), /closed/);
  const { contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(shape(contents.entries), [[1, 1], [2, 1], [3, 1]], 'refused batches left no trace');
  await t.rejects(Wal.open(tmpDir(t)), /no segments/);
  await t.rejects(Wal.create(dir, { segmentSize: 10 }), /segmentSize/);
});

t.test('truncation on conflict: 1..10 (t1), then 6..8 (t2) replays as 1..5 t1, 6..8 t2', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save({ term: 1, vote: 'a', commit: 0 }, ents(1, 10, 1), true);
  await wal.save({ term: 2, vote: 'b', commit: 0 }, ents(6, 8, 2), true);
  t.equal(wal.lastIndex(), 8, 'lastIndex follows the truncation');
  t.equal(wal.firstIndex(), 1);
  await t.rejects(wal.save(undefined, [ent(10, 2)], true), /gap after the last index 8/, 'the cut suffix is gone');
  await wal.save(undefined, ents(9, 9, 2), true);
  await wal.close();
  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(shape(contents.entries), [...shape(ents(1, 5, 1)), ...shape(ents(6, 9, 2))]);
  t.equal(w2.lastIndex(), 9);
  // A conflict reaching below the first entry replaces the whole log.
  await w2.save(undefined, ents(1, 2, 3), true);
  t.equal(w2.lastIndex(), 2);
  await w2.close();
  const { contents: c3 } = await Wal.open(dir, { segmentSize: SEG });
  t.same(shape(c3.entries), [[1, 3], [2, 3]]);
});

t.test('snapshot marker: 1..10, marker at 20, then 21..25', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save({ term: 1, vote: 'a', commit: 10 }, ents(1, 10, 1), true);
  const before = wal.stats().fsyncs;
  await wal.saveSnapshotMarker({ index: 20, term: 3 });
  t.equal(wal.stats().fsyncs, before + 1, 'the marker is synced');
  t.equal(wal.lastIndex(), 20, 'with no entries after it, the marker is the last index');
  t.equal(wal.firstIndex(), 0);
  await t.rejects(wal.save(undefined, [ent(22, 3)], true), /gap after the last index 20/);
  await wal.save({ term: 3, vote: 'c', commit: 20 }, ents(21, 25, 3), true);
  t.equal(wal.firstIndex(), 21);
  t.equal(wal.lastIndex(), 25);
  await wal.close();
  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(contents.snapshot, { index: 20, term: 3 });
  t.same(shape(contents.entries), shape(ents(21, 25, 3)));
  t.same(contents.hardState, { term: 3, vote: 'c', commit: 20 });
  t.equal(w2.firstIndex(), 21);
  t.equal(w2.lastIndex(), 25);
  // Entries the snapshot covers are ignored; the rest must follow on.
  await w2.save(undefined, [ent(19, 3), ent(20, 3), ent(26, 3)], true);
  await w2.close();
  const { contents: c3 } = await Wal.open(dir, { segmentSize: SEG });
  t.same(shape(c3.entries), shape(ents(21, 26, 3)));
});

t.test('a marker replaces the whole log, entries above its index included', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save(undefined, ents(1, 30, 1), true);
  await wal.saveSnapshotMarker({ index: 20, term: 2 });
  await wal.save(undefined, ents(21, 22, 2), true);
  await wal.close();
  const { contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(shape(contents.entries), [[21, 2], [22, 2]]);
});
