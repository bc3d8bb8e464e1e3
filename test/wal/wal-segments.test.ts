import * as fs from 'fs';
import * as path from 'path';
import t from 'tap';
import { Wal } from '../../src/raft/wal/wal';
import { captureLogger, ents, shape, tmpDir, walFiles } from './fixtures/helpers';

const SEG = 64 * 1024;
const NAME = /^[0-9a-f]{16}-[0-9a-f]{16}\.wal$/;

function parse(name: string): { seq: number; first: number } {
  return { seq: parseInt(name.slice(0, 16), 16), first: parseInt(name.slice(17, 33), 16) };
}

/** Writes entries 1..n of `size` data bytes, `per` to a batch, synced. */
async function fill(wal: Wal, n: number, per: number, size: number, term = 1): Promise<void> {
  for (let i = 1; i <= n; i += per) {
    await wal.save({ term, vote: 'a', commit: i - 1 }, ents(i, Math.min(n, i + per - 1), term, size), true);
  }
}

t.test('rollover: segments are cut, named <seq>-<firstIndex>, and replay spans them', async (t) => {
  const dir = tmpDir(t);
  const { logger, warnings } = captureLogger();
  const wal = await Wal.create(dir, { segmentSize: SEG, logger });
  await fill(wal, 600, 10, 1000);
  const names = walFiles(dir);
  t.ok(names.length >= 9, `${names.length} segments for ~600 KB`);
  for (const n of names) t.match(n, NAME);
  names.forEach((n, i) => t.equal(parse(n).seq, i, 'seq counts from 0 without gaps'));
  t.equal(parse(names[0]).first, 1);
  for (let i = 1; i < names.length; i++) {
    const first = parse(names[i]).first;
    t.equal((first - 1) % 10, 0, `segment ${i} starts at a batch boundary (${first})`);
    t.ok(first > parse(names[i - 1]).first);
  }
  // Old segments are truncated to their used length; the current one keeps its preallocation.
  for (const n of names.slice(0, -1)) t.ok(fs.statSync(path.join(dir, n)).size <= SEG, `${n} within segmentSize`);
  t.equal(fs.statSync(path.join(dir, names[names.length - 1])).size, SEG);
  await wal.close();

  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG, logger });
  t.same(shape(contents.entries), shape(ents(1, 600, 1)));
  t.same(contents.hardState, { term: 1, vote: 'a', commit: 590 });
  t.equal(w2.lastIndex(), 600);
  await w2.close();
  t.same(warnings(), []);
});

t.test('a batch larger than a segment gets a segment sized to fit', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save(undefined, ents(1, 1, 1, 100), true);
  const before = wal.stats().fsyncs;
  await wal.save(undefined, ents(2, 2, 1, 200 * 1024), true);
  t.ok(wal.stats().fsyncs > before + 1, 'a cut syncs the old segment and the new one too');
  await wal.save(undefined, ents(3, 3, 1, 100), true);
  const names = walFiles(dir);
  t.equal(names.length, 3, 'small, big, then the next one');
  t.ok(fs.statSync(path.join(dir, names[1])).size >= 200 * 1024, 'the big record fits in its segment');
  t.equal(parse(names[1]).first, 2);
  t.equal(parse(names[2]).first, 3);
  await wal.close();
  const { contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(shape(contents.entries), [[1, 1], [2, 1], [3, 1]]);
  t.equal(contents.entries[1].data.length, 200 * 1024);
});

t.test('releaseTo deletes whole old segments only; replay and the indexes still work', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await fill(wal, 600, 10, 1000);
  const before = walFiles(dir);
  const third = parse(before[3]).first; // entries of segments 0..2 are all below this
  await wal.releaseTo(third);
  const after = walFiles(dir);
  t.same(after, before.slice(3), 'segments 0..2 went, the one holding index `third` stayed');
  t.equal(wal.firstIndex(), third);
  t.equal(wal.lastIndex(), 600);
  await wal.releaseTo(third + 1);
  t.same(walFiles(dir), after, 'a segment holding an entry >= index is kept');
  await wal.releaseTo(1_000_000);
  t.same(walFiles(dir), [before[before.length - 1]], 'never the current segment');
  await wal.save(undefined, ents(601, 605, 1, 10), true);
  await wal.close();

  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG });
  const first = parse(before[before.length - 1]).first;
  t.same(shape(contents.entries), shape(ents(first, 605, 1)));
  t.same(contents.hardState, { term: 1, vote: 'a', commit: 590 }, 'hard state carried by the segment header');
  t.equal(w2.firstIndex(), first);
  t.equal(w2.lastIndex(), 605);
  await w2.close();
});

t.test('releaseTo keeps the state the released segments held: marker and hard state', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save({ term: 4, vote: 'z', commit: 5 }, ents(1, 5, 4), true);
  await wal.saveSnapshotMarker({ index: 100, term: 4 });
  for (let i = 101; i <= 300; i += 10) await wal.save(undefined, ents(i, i + 9, 4, 1000), true);
  const names = walFiles(dir);
  t.ok(names.length > 2);
  await wal.releaseTo(parse(names[names.length - 1]).first);
  t.equal(walFiles(dir).length, 1);
  await wal.close();
  const { contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(contents.snapshot, { index: 100, term: 4 });
  t.same(contents.hardState, { term: 4, vote: 'z', commit: 5 });
  const first = parse(names[names.length - 1]).first;
  t.same(shape(contents.entries), shape(ents(first, 300, 4)));
});

t.test('releaseTo with a conflict that rewrote entries of an older segment', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await fill(wal, 100, 10, 1000); // segment 0 holds about 1..60
  const seg1First = parse(walFiles(dir)[1]).first;
  // A new leader replaces 30.. : those records land in the current segment, with indexes below its name.
  await wal.save(undefined, ents(30, 32, 2), true);
  t.equal(wal.lastIndex(), 32);
  await wal.releaseTo(seg1First);
  t.equal(parse(walFiles(dir)[0]).first, seg1First, 'segment 0 released');
  // Replay from segment 1 sees seg1First.. then 30..32 truncating all of it.
  t.equal(wal.firstIndex(), 30);
  await wal.close();
  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(shape(contents.entries), [[30, 2], [31, 2], [32, 2]]);
  t.equal(w2.firstIndex(), 30);
  t.equal(w2.lastIndex(), 32);
  await w2.close();
});

t.test('the CRC chain verifies across segments, and from a released boundary', async (t) => {
  // Two WALs fed the same batches except for one byte in the first segment: their second segments
  // are each valid alone, but each only chains onto its own first segment.
  const a = tmpDir(t);
  const b = tmpDir(t);
  for (const [dir, tweak] of [
    [a, 0],
    [b, 1],
  ] as const) {
    const wal = await Wal.create(dir, { segmentSize: SEG });
    await wal.save(undefined, ents(1, 1, 1, 1000 + tweak), true);
    for (let i = 2; i <= 200; i += 10) await wal.save(undefined, ents(i, i + 9, 1, 1000), true);
    await wal.close();
  }
  t.same(walFiles(a), walFiles(b), 'same layout');
  t.ok(walFiles(a).length >= 3);
  const [s0, s1] = walFiles(a);
  const mixed = tmpDir(t);
  // a's first segment, then b's: b's segment 1 does not chain onto a's segment 0.
  fs.copyFileSync(path.join(a, s0), path.join(mixed, s0));
  for (const n of walFiles(b).slice(1)) fs.copyFileSync(path.join(b, n), path.join(mixed, n));
  await t.rejects(Wal.open(mixed, { segmentSize: SEG }), {
    message: new RegExp(`${s1}.*offset 0: crc chain broken across segments`),
  });

  // Released boundary: without segment 0, segment 1 verifies from the CRC its header carries.
  fs.rmSync(path.join(mixed, s0));
  const { wal, contents } = await Wal.open(mixed, { segmentSize: SEG });
  t.equal(contents.entries[0].index, parse(s1).first);
  t.equal(contents.entries[contents.entries.length - 1].index, 201);
  await wal.close();

  // A middle segment missing is refused, not skipped.
  const holed = tmpDir(t);
  for (const n of walFiles(a)) if (n !== s1) fs.copyFileSync(path.join(a, n), path.join(holed, n));
  await t.rejects(Wal.open(holed, { segmentSize: SEG }), /segment missing between/);
});

t.test('a crash mid-cut leaves a .tmp segment, which open removes', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save(undefined, ents(1, 3, 1), true);
  await wal.close();
  fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000004.wal.tmp'), Buffer.alloc(100, 7));
  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG });
  t.same(shape(contents.entries), [[1, 1], [2, 1], [3, 1]]);
  t.same(walFiles(dir), ['0000000000000000-0000000000000001.wal']);
  t.notOk(fs.existsSync(path.join(dir, '0000000000000001-0000000000000004.wal.tmp')));
  await w2.close();
});
