import * as fs from 'fs';
import * as path from 'path';
import t from 'tap';
import { scanSegment } from '../../src/raft/wal/segment';
import { Wal } from '../../src/raft/wal/wal';
import { captureLogger, ent, ents, shape, tmpDir, walFiles } from './fixtures/helpers';

const SEG = 64 * 1024;

/** Offsets of the records (after the header) of a segment, and where its data ends. */
function layout(file: string): { offsets: number[]; end: number } {
  const s = scanSegment(fs.readFileSync(file), file, true);
  return { offsets: s.records.map((r) => r.offset), end: s.end };
}

/** A WAL holding entries 1..n, one save per entry (entry i is the i-th record), and its last segment. */
async function walWithEntries(t: Parameters<typeof tmpDir>[0], n: number, size?: number): Promise<{ dir: string; file: string }> {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  for (let i = 1; i <= n; i++) await wal.save(undefined, [ent(i, 1, size === undefined ? undefined : Buffer.alloc(size, i))], true);
  await wal.close();
  const names = walFiles(dir);
  return { dir, file: path.join(dir, names[names.length - 1]) };
}

function flipBit(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0] ^= 0x10;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

t.test('a zero-filled (preallocated) tail is the normal end of the log: no warning', async (t) => {
  const { dir, file } = await walWithEntries(t, 5);
  t.equal(fs.statSync(file).size, SEG);
  const { logger, warnings } = captureLogger();
  const { wal, contents } = await Wal.open(dir, { segmentSize: SEG, logger });
  t.same(shape(contents.entries), shape(ents(1, 5, 1)));
  t.same(warnings(), []);
  await wal.close();
});

t.test('torn tail, file truncated mid-record: cut back with a warning; appends and reopen work', async (t) => {
  for (const cutInto of [3, 12]) {
    // 3: inside the record header; 12: inside the payload.
    const { dir, file } = await walWithEntries(t, 10);
    const last = layout(file).offsets[9];
    fs.truncateSync(file, last + cutInto);
    const { logger, warnings } = captureLogger();
    const { wal, contents } = await Wal.open(dir, { segmentSize: SEG, logger });
    t.same(shape(contents.entries), shape(ents(1, 9, 1)), `cut ${cutInto} bytes into the last record`);
    const w = warnings();
    t.equal(w.length, 1, 'one warning');
    t.equal(w[0].file, file, 'it names the file');
    t.equal(w[0].offset, last, 'and the offset cut back to');
    t.match(w[0].msg, `${file} at offset ${last}`);
    t.equal(wal.lastIndex(), 9);
    t.equal(fs.statSync(file).size, SEG, 'preallocation restored');

    await wal.save({ term: 2, vote: 'b', commit: 9 }, ents(10, 12, 2), true);
    await wal.close();
    const again = captureLogger();
    const { wal: w2, contents: c2 } = await Wal.open(dir, { segmentSize: SEG, logger: again.logger });
    t.same(shape(c2.entries), [...shape(ents(1, 9, 1)), ...shape(ents(10, 12, 2))]);
    t.same(again.warnings(), [], 'the repaired log reopens clean');
    await w2.close();
  }
});

t.test('torn tail, half a record written into the preallocated file: cut back with a warning', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save({ term: 1, vote: 'a', commit: 0 }, ents(1, 5, 1), true);
  await wal.close();
  const file = path.join(dir, walFiles(dir)[0]);
  const before = fs.readFileSync(file);
  // Write entry 6 for real to learn its exact bytes, then put back the file with only half of them,
  // as a crash part-way through the write (at a sector boundary or not) would leave it.
  const { wal: w1 } = await Wal.open(dir, { segmentSize: SEG });
  await w1.save(undefined, [ent(6, 1, Buffer.alloc(3000, 0xab))], true);
  await w1.close();
  const { offsets, end } = layout(file);
  const rec = fs.readFileSync(file).subarray(offsets[offsets.length - 1], end);
  const torn = Buffer.from(before);
  rec.subarray(0, 1500).copy(torn, offsets[offsets.length - 1]);
  fs.writeFileSync(file, torn);

  const { logger, warnings } = captureLogger();
  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG, logger });
  t.same(shape(contents.entries), shape(ents(1, 5, 1)));
  t.equal(warnings().length, 1);
  t.equal(warnings()[0].offset, offsets[offsets.length - 1]);
  await w2.save(undefined, ents(6, 7, 1), true);
  await w2.close();
  const again = captureLogger();
  const { contents: c2 } = await Wal.open(dir, { segmentSize: SEG, logger: again.logger });
  t.same(shape(c2.entries), shape(ents(1, 7, 1)));
  t.same(again.warnings(), []);
});

t.test('a torn batch keeps its complete records and cuts the torn one', async (t) => {
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { segmentSize: SEG });
  await wal.save(undefined, ents(1, 2, 1), true);
  await wal.save(undefined, ents(3, 6, 1, 700), true);
  await wal.close();
  const file = path.join(dir, walFiles(dir)[0]);
  const { offsets } = layout(file);
  // The write of the second batch stopped in the middle of entry 5 (file offsets are 512-aligned cuts).
  const cut = Math.ceil((offsets[4] + 20) / 512) * 512;
  const buf = fs.readFileSync(file);
  buf.fill(0, cut);
  fs.writeFileSync(file, buf);
  const { logger, warnings } = captureLogger();
  const { wal: w2, contents } = await Wal.open(dir, { segmentSize: SEG, logger });
  t.same(shape(contents.entries), shape(ents(1, 4, 1)));
  t.equal(warnings().length, 1);
  t.equal(w2.lastIndex(), 4);
  await w2.close();
});

t.test('zeros in the middle followed by valid records: refused, never skipped', async (t) => {
  const { dir, file } = await walWithEntries(t, 20);
  const { offsets } = layout(file);
  const buf = fs.readFileSync(file);
  buf.fill(0, offsets[4], offsets[7]); // entries 5, 6, 7 zeroed
  fs.writeFileSync(file, buf);
  const { logger } = captureLogger();
  await t.rejects(Wal.open(dir, { segmentSize: SEG, logger }), {
    message: `wal: corrupt record in ${file} at offset ${offsets[4]}: bad framing: unknown record type 0; a valid record follows at offset ${offsets[7]}, so this is not a torn tail`,
  });
  t.equal(fs.readFileSync(file).compare(buf), 0, 'the file was not touched');
});

t.test('a flipped bit in the middle of the last segment, good records after: refused', async (t) => {
  const { dir, file } = await walWithEntries(t, 20);
  const { offsets } = layout(file);
  flipBit(file, offsets[9] + 15); // inside entry 10's payload
  await t.rejects(Wal.open(dir, { segmentSize: SEG, logger: captureLogger().logger }), {
    message: new RegExp(`^wal: corrupt record in ${file} at offset ${offsets[9]}: crc mismatch .*a valid record follows at offset ${offsets[10]}`),
  });
  // The same in the length field: framing is lost, the valid records further on still give it away.
  const second = await walWithEntries(t, 20);
  const o2 = layout(second.file).offsets;
  flipBit(second.file, o2[9] + 1);
  await t.rejects(Wal.open(second.dir, { segmentSize: SEG, logger: captureLogger().logger }), {
    message: new RegExp(`corrupt record in ${second.file} at offset ${o2[9]}: .*not a torn tail`),
  });
});

t.test('a flipped bit in a complete last record: refused, it is not a torn write', async (t) => {
  const { dir, file } = await walWithEntries(t, 5);
  const { offsets } = layout(file);
  flipBit(file, offsets[4] + 12);
  await t.rejects(Wal.open(dir, { segmentSize: SEG, logger: captureLogger().logger }), {
    message: new RegExp(`corrupt record in ${file} at offset ${offsets[4]}: crc mismatch .*no zero-filled sector`),
  });
});

t.test('a flipped bit in a segment other than the last: refused with file and offset', async (t) => {
  const { dir } = await walWithEntries(t, 150, 1000);
  const names = walFiles(dir);
  t.ok(names.length >= 3);
  for (const [which, recordNo] of [
    [0, 10],
    [1, 0],
  ] as const) {
    const copy = tmpDir(t);
    for (const n of names) fs.copyFileSync(path.join(dir, n), path.join(copy, n));
    const file = path.join(copy, names[which]);
    const buf = fs.readFileSync(file);
    const s = scanSegment(buf, file, false);
    const off = s.records[recordNo].offset;
    flipBit(file, off + 30);
    await t.rejects(Wal.open(copy, { segmentSize: SEG, logger: captureLogger().logger }), {
      message: new RegExp(`^wal: corrupt record in ${file} at offset ${off}: crc mismatch`),
    });
  }
  // The last record of a non-last segment too: only the last segment may have a torn tail.
  const copy = tmpDir(t);
  for (const n of names) fs.copyFileSync(path.join(dir, n), path.join(copy, n));
  const file = path.join(copy, names[0]);
  const s = scanSegment(fs.readFileSync(file), file, false);
  const lastOff = s.records[s.records.length - 1].offset;
  fs.truncateSync(file, lastOff + 20);
  await t.rejects(Wal.open(copy, { segmentSize: SEG, logger: captureLogger().logger }), {
    message: new RegExp(`^wal: corrupt record in ${file} at offset ${lastOff}: bad framing`),
  });
});

t.test('a damaged segment header: refused at offset 0', async (t) => {
  const { dir, file } = await walWithEntries(t, 3);
  flipBit(file, 20);
  await t.rejects(Wal.open(dir, { segmentSize: SEG, logger: captureLogger().logger }), {
    message: new RegExp(`^wal: corrupt record in ${file} at offset 0: `),
  });
});
