import * as fs from 'fs';
import * as path from 'path';
import t from 'tap';
import type { Snapshot } from '../../src/raft/core/types';
import { Snapshotter } from '../../src/raft/snapshot/snapshotter';
import { captureLogger, tmpDir } from '../wal/fixtures/helpers';

function snap(index: number, term: number, data = `state at ${index}`): Snapshot {
  return { meta: { index, term, voters: ['00000000000000a1', '00000000000000b2'] }, data: Buffer.from(data) };
}

function snapFiles(dir: string): string[] {
  return fs.readdirSync(dir).sort();
}

t.test('save and load round-trip; file name and format', async (t) => {
  const dir = path.join(tmpDir(t), 'snap');
  const s = new Snapshotter(dir, captureLogger().logger);
  t.equal(await s.loadNewest(), undefined, 'no directory yet: no snapshot');
  const data = Buffer.alloc(100_000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  const p = await s.save({ meta: { index: 0x1234, term: 5, voters: ['aa'] }, data });
  t.equal(p, path.join(dir, '0000000000000005-0000000000001234.snap'));
  t.same(snapFiles(dir), ['0000000000000005-0000000000001234.snap'], 'no .tmp left behind');
  const raw = fs.readFileSync(p);
  t.equal(raw.subarray(0, 8).toString('ascii'), 'KEELSNAP');
  t.equal(raw.readUInt32LE(8), 1, 'version');
  const got = await new Snapshotter(dir).loadNewest();
  t.same(got?.meta, { index: 0x1234, term: 5, voters: ['aa'] });
  t.ok(got && Buffer.from(got.data).equals(data), 'data intact');
});

t.test('loadNewest picks the highest index, then the highest term', async (t) => {
  const dir = tmpDir(t);
  const s = new Snapshotter(dir, captureLogger().logger);
  await s.save(snap(100, 2));
  // Names start with the term, so by name 9-200 would sort last; newest means highest index first.
  await s.save(snap(0x300, 3));
  await s.save(snap(0x200, 9));
  await s.save(snap(0x300, 2));
  t.same(
    s.list().map((f) => [f.index, f.term]),
    [
      [0x300, 3],
      [0x300, 2],
      [0x200, 9],
      [100, 2],
    ],
  );
  const got = await s.loadNewest();
  t.same(got?.meta.index, 0x300);
  t.same(got?.meta.term, 3);
  t.same(Buffer.from(got?.data ?? []).toString(), `state at ${0x300}`);
});

t.test('a corrupt newest snapshot is renamed .broken with a warning; the older one is used', async (t) => {
  const dir = tmpDir(t);
  const { logger, warnings } = captureLogger();
  const s = new Snapshotter(dir, logger);
  await s.save(snap(10, 1));
  const p20 = await s.save(snap(20, 1));
  const p30 = await s.save(snap(30, 2));
  // 30: a flipped bit in the data; 20: cut short (a torn copy).
  const b = fs.readFileSync(p30);
  b[b.length - 10] ^= 1;
  fs.writeFileSync(p30, b);
  fs.truncateSync(p20, fs.statSync(p20).size - 3);
  const got = await s.loadNewest();
  t.equal(got?.meta.index, 10);
  t.same(snapFiles(dir), [
    '0000000000000001-000000000000000a.snap',
    '0000000000000001-0000000000000014.snap.broken',
    '0000000000000002-000000000000001e.snap.broken',
  ]);
  const w = warnings();
  t.equal(w.length, 2);
  t.equal(w[0].file, p30);
  t.match(String(w[0].reason), /crc mismatch/);
  t.equal(w[1].file, p20);
  t.match(String(w[1].reason), /length mismatch/);
  t.equal((await s.loadNewest())?.meta.index, 10, 'broken files are not retried');
});

t.test('every snapshot broken: undefined, all set aside', async (t) => {
  const dir = tmpDir(t);
  const s = new Snapshotter(dir, captureLogger().logger);
  const p = await s.save(snap(10, 1));
  fs.writeFileSync(p, Buffer.from('KEELSNAP but not really'));
  fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000009.snap'), '');
  t.equal(await s.loadNewest(), undefined);
  t.same(
    snapFiles(dir).filter((n) => n.endsWith('.snap')),
    [],
  );
});

t.test('a file whose contents do not match its name is broken', async (t) => {
  const dir = tmpDir(t);
  const s = new Snapshotter(dir, captureLogger().logger);
  const p = await s.save(snap(10, 1));
  await s.save(snap(5, 1));
  fs.renameSync(p, path.join(dir, '0000000000000001-0000000000000063.snap'));
  t.equal((await s.loadNewest())?.meta.index, 5);
});

t.test('leftover .tmp files are removed on load', async (t) => {
  const dir = tmpDir(t);
  const s = new Snapshotter(dir, captureLogger().logger);
  await s.save(snap(10, 1));
  fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000014.snap.tmp'), 'half written');
  t.equal((await s.loadNewest())?.meta.index, 10);
  t.same(snapFiles(dir), ['0000000000000001-000000000000000a.snap']);
});

t.test('purge keeps the N newest', async (t) => {
  const dir = tmpDir(t);
  const s = new Snapshotter(dir, captureLogger().logger);
  for (let i = 1; i <= 8; i++) await s.save(snap(i * 10, 1));
  fs.writeFileSync(path.join(dir, '0000000000000001-0000000000000001.snap.broken'), 'x');
  await s.purge();
  t.same(
    s.list().map((f) => f.index),
    [80, 70, 60, 50, 40],
    'default: 5',
  );
  await s.purge(2);
  t.same(
    s.list().map((f) => f.index),
    [80, 70],
  );
  t.ok(fs.existsSync(path.join(dir, '0000000000000001-0000000000000001.snap.broken')), '.broken files are left alone');
  await s.purge(0);
  t.same(s.list(), []);
});

t.test('save refuses nonsense metadata', async (t) => {
  const s = new Snapshotter(tmpDir(t), captureLogger().logger);
  await t.rejects(s.save(snap(-1, 1)), /invalid snapshot metadata/);
});
