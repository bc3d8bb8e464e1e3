// Damage to the tail of a stopped member's write-ahead log, for the `corrupt` nemesis: the faults a disk and a
// crash can leave behind. The member must then either repair its log (a torn tail: cut back to the last good
// record) or refuse to start with an error naming the file; starting on silently wrong data is the bug.
//
// Both WALs preallocate their segments (64 MiB of zeros), so "the end of the file" means nothing: the written
// end is found by walking the record frames from the start of the last segment until the zeros.
//
// - Keel (src/raft/wal/record.ts): u32 payload length, u32 chained CRC32C, u8 type (1..4, never 0), payload.
// - etcd (server/wal/encoder.go): an int64 little-endian length field whose low 56 bits are the record's
//   length and whose top bit, when set, says bits 56..58 hold the count of padding bytes (to 8-byte
//   alignment); then the record (a walpb.Record protobuf with its own CRC) and the padding.
//
// `truncate` shortens the file part-way through its last record: the file ends mid-record, as when a crash
// interrupts an append. (Zeroing the cut-off bytes inside a preallocated file instead would, for a record
// within one 512-byte sector, look to both WALs' torn-write test like damage in place, which they rightly
// refuse: a disk loses whole sectors.) `bitflip` flips one bit in the payload of one of the last few records:
// damage in place, which a CRC must catch.

import fs from 'node:fs';
import path from 'node:path';
import { RECORD_HEADER_SIZE, isRecordType } from '../../src/raft/wal/record';
import { parseSegmentName } from '../../src/raft/wal/segment';
import type { Rng } from '../types';

export type WalDamage = 'truncate' | 'bitflip';

/** One record frame in a segment file: [offset, end), its payload [payloadStart, payloadEnd). */
export interface Frame {
  offset: number;
  payloadStart: number;
  payloadEnd: number;
  /** past the frame, padding included */
  end: number;
}

/** How many of the last records a bit flip may land in. */
const BITFLIP_WINDOW = 3;

/** Keel's frames, from the segment header on, up to the first thing that is not a whole frame. */
export function keelFrames(buf: Buffer): Frame[] {
  const frames: Frame[] = [];
  let off = 0;
  while (off + RECORD_HEADER_SIZE <= buf.length) {
    const len = buf.readUInt32LE(off);
    if (!isRecordType(buf[off + 8]!)) break; // zeros of the preallocation (type 0 is never written)
    const end = off + RECORD_HEADER_SIZE + len;
    if (end > buf.length) break;
    frames.push({ offset: off, payloadStart: off + RECORD_HEADER_SIZE, payloadEnd: end, end });
    off = end;
  }
  return frames;
}

const LOW_56 = (1n << 56n) - 1n;

/** etcd's frames, up to the zeros of the preallocation (a zero length field) or a frame past the end. */
export function etcdFrames(buf: Buffer): Frame[] {
  const frames: Frame[] = [];
  let off = 0;
  while (off + 8 <= buf.length) {
    const field = buf.readBigUInt64LE(off);
    if (field === 0n) break;
    const recBytes = Number(field & LOW_56);
    const padBytes = field >> 63n === 1n ? Number((field >> 56n) & 7n) : 0;
    const payloadEnd = off + 8 + recBytes;
    const end = payloadEnd + padBytes;
    if (end > buf.length) break;
    frames.push({ offset: off, payloadStart: off + 8, payloadEnd, end });
    off = end;
  }
  return frames;
}

/** Where a target keeps its WAL segments under the data dir, and how its segment files sort. */
interface WalLayout {
  walDir: string;
  frames: (buf: Buffer) => Frame[];
  /** frames at the start of every segment that are not records to damage (Keel's segment header) */
  skipFrames: number;
  /** segment file names, oldest first */
  segments: (names: string[]) => string[];
}

const KEEL_LAYOUT = (dataDir: string): WalLayout => ({
  walDir: path.join(dataDir, 'wal'),
  frames: keelFrames,
  // Segments are created with their header synced before they are named, so a torn header cannot happen;
  // damaging it would test nothing a crash can do.
  skipFrames: 1,
  segments: (names) =>
    names
      .map((n) => ({ n, parsed: parseSegmentName(n) }))
      .filter((x) => x.parsed !== undefined)
      .sort((a, b) => a.parsed!.seq - b.parsed!.seq)
      .map((x) => x.n),
});

const ETCD_LAYOUT = (dataDir: string): WalLayout => ({
  walDir: path.join(dataDir, 'member', 'wal'),
  frames: etcdFrames,
  skipFrames: 0,
  // <seq>-<index>.wal, both 16 hex digits: the names sort in order.
  segments: (names) => names.filter((n) => /^[0-9a-f]{16}-[0-9a-f]{16}\.wal$/.test(n)).sort(),
});

/**
 * Damages the last segment of the WAL under `dataDir` (the member must not be running). Returns what was done,
 * e.g. "wal/0000000000000000-0000000000000001.wal truncated at 123456 (record at 123400..123500)", the path
 * relative to the data dir.
 */
export function corruptWal(target: 'keel' | 'etcd', dataDir: string, mode: WalDamage, rng: Rng): string {
  const layout = target === 'keel' ? KEEL_LAYOUT(dataDir) : ETCD_LAYOUT(dataDir);
  let names: string[];
  try {
    names = fs.readdirSync(layout.walDir);
  } catch (err) {
    throw new Error(`no WAL to corrupt: cannot read ${layout.walDir}: ${(err as Error).message}`);
  }
  const segments = layout.segments(names);
  const last = segments[segments.length - 1];
  if (last === undefined) throw new Error(`no WAL segment in ${layout.walDir}`);
  const file = path.join(layout.walDir, last);
  const rel = path.relative(dataDir, file);
  const buf = fs.readFileSync(file);
  const records = layout.frames(buf).slice(layout.skipFrames);
  if (records.length === 0) throw new Error(`${rel}: no record to damage (the segment holds ${layout.skipFrames ? 'only its header' : 'nothing'})`);

  if (mode === 'truncate') {
    const rec = records[records.length - 1]!;
    // Strictly inside the record: at least one byte of it stays, at least one is lost.
    const cut = rec.offset + 1 + rng.int(rec.end - rec.offset - 1);
    fs.truncateSync(file, cut);
    return `${rel} truncated at ${cut} (record at ${rec.offset}..${rec.end}, file was ${buf.length} bytes)`;
  }
  const window = records.slice(-BITFLIP_WINDOW).filter((r) => r.payloadEnd > r.payloadStart);
  if (window.length === 0) throw new Error(`${rel}: the last records have empty payloads: no bit to flip`);
  const rec = rng.pick(window);
  const pos = rec.payloadStart + rng.int(rec.payloadEnd - rec.payloadStart);
  const bit = rng.int(8);
  const fd = fs.openSync(file, 'r+');
  try {
    fs.writeSync(fd, Buffer.of(buf[pos]! ^ (1 << bit)), 0, 1, pos);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const fromEnd = records.length - records.indexOf(rec) - 1;
  const which = fromEnd === 0 ? 'the last record' : `${fromEnd} before the last`;
  return `${rel}: flipped bit ${bit} of byte ${pos} (payload of the record at ${rec.offset}..${rec.end}, ${which} of ${records.length})`;
}
