// Segment files: naming, and the verifying scan of one segment's bytes (pure: no I/O here, so every
// corruption case can be tested on a buffer).
//
// A segment is `<seq>-<firstIndex>.wal`, both 16 lowercase hex digits: seq counts segments from 0 with
// no gaps; firstIndex is lastIndex + 1 when the segment was started (entries of a conflicting suffix
// written later may have lower indexes; the name is a hint for humans and a cross-check of the header).
// Segments are never reused or recycled: a new segment is a fresh file, so any bytes after the last
// record were never written by us (zeros of the preallocation) or belong to a write that never
// completed. That is what makes "nothing valid after the bad record" a sound test for a torn tail.

import {
  RECORD_HEADER_SIZE,
  RecordType,
  PayloadError,
  SEGMENT_FORMAT_VERSION,
  decodeSegmentHeader,
  isRecordType,
  recordCrc,
} from './record';
import type { SegmentHeader } from './record';

export const SEGMENT_SUFFIX = '.wal';
/** A segment being created: written, synced, then renamed into place, so a named segment always has
 *  a durable header. Leftovers from a crash mid-creation are deleted on open. */
export const TMP_SUFFIX = '.tmp';

const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function segmentName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}${SEGMENT_SUFFIX}`;
}

export function parseSegmentName(name: string): { seq: number; firstIndex: number } | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  const seq = parseInt(m[1], 16);
  const firstIndex = parseInt(m[2], 16);
  if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(firstIndex)) return undefined;
  return { seq, firstIndex };
}

/** A WAL that cannot be trusted: the message names the file and byte offset, for the operator. */
export class CorruptWalError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    detail: string,
  ) {
    super(`wal: corrupt record in ${file} at offset ${offset}: ${detail}`);
    this.name = 'CorruptWalError';
  }
}

export interface ScannedRecord {
  type: RecordType;
  /** Byte offset of the record's header in the segment file. */
  offset: number;
  /** A view into the scanned buffer. */
  payload: Uint8Array;
}

export interface ScannedSegment {
  header: SegmentHeader;
  /** The records after the header, in order, all verified. */
  records: ScannedRecord[];
  /** Offset just past the last good record: where the next write goes. */
  end: number;
  /** CRC of the last good record: the chain's running value. */
  crc: number;
  /** Set when the last segment ended in a torn write that must be cut off at `end`. */
  torn?: string;
}

type ReadResult =
  | { ok: true; type: RecordType; payload: Uint8Array; crc: number; next: number }
  | { ok: false; reason: string; storedCrc?: number; next?: number };

function readRecord(buf: Buffer, off: number, prevCrc: number): ReadResult {
  const left = buf.length - off;
  if (left < RECORD_HEADER_SIZE) return { ok: false, reason: `bad framing: truncated record header (${left} bytes left)` };
  const len = buf.readUInt32LE(off);
  const stored = buf.readUInt32LE(off + 4);
  const type = buf[off + 8];
  if (!isRecordType(type)) return { ok: false, reason: `bad framing: unknown record type ${type}` };
  if (len > left - RECORD_HEADER_SIZE) {
    return { ok: false, reason: `bad framing: length ${len} runs past the end of the file (${left - RECORD_HEADER_SIZE} bytes left)` };
  }
  const next = off + RECORD_HEADER_SIZE + len;
  const payload = buf.subarray(off + RECORD_HEADER_SIZE, next);
  const computed = recordCrc(type, payload, prevCrc);
  if (computed !== stored) {
    return {
      ok: false,
      reason: `crc mismatch (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)})`,
      storedCrc: stored,
      next,
    };
  }
  return { ok: true, type, payload, crc: stored, next };
}

function zerosFrom(buf: Buffer, off: number): boolean {
  for (let i = off; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Sector size assumed by the torn-write test: the smallest unit a disk writes atomically. */
const SECTOR_SIZE = 512;

/**
 * Whether some sector-aligned piece of [start, end) (cut at file offsets that are multiples of 512,
 * the pieces at either end possibly shorter) is all zeros. A write torn by a crash loses whole sectors
 * (or pages, which are whole sectors too), and what it loses reads back as the zeros of the fresh file;
 * a complete record whose CRC fails has no such hole: its bytes were damaged, not lost. This is etcd's
 * isTornEntry test.
 */
function hasZeroSector(buf: Buffer, start: number, end: number): boolean {
  let from = start;
  while (from < end) {
    const to = Math.min(end, (Math.floor(from / SECTOR_SIZE) + 1) * SECTOR_SIZE);
    let zero = true;
    for (let i = from; i < to; i++) {
      if (buf[i] !== 0) {
        zero = false;
        break;
      }
    }
    if (zero) return true;
    from = to;
  }
  return false;
}

/**
 * Looks for evidence of a valid record after a bad one at `badOff`: if there is any, the bad record is
 * damage in the middle of the log, not a torn tail, and cutting there would silently drop data that
 * was written (and maybe acknowledged) after it.
 *
 * A lone record cannot be verified without the CRC of the record before it, so the evidence is:
 * - the record right after the bad one, when the bad one's framing is intact (a flipped payload bit),
 *   verified against the bad record's stored CRC; or
 * - anywhere after `badOff`, two consecutive records where the second verifies against the first's
 *   stored CRC (a chance match on garbage is a 2^-32 event).
 * So damage followed by a single valid record whose predecessor's framing is also destroyed is not
 * detected; two or more are.
 *
 * Cost: linear in the bytes after `badOff`, plus a CRC per plausible pair. Zeros are skipped at once
 * (type 0 does not exist), so a preallocated tail costs a byte scan.
 */
function findValidRecordAfter(buf: Buffer, badOff: number, bad: ReadResult & { ok: false }): number | undefined {
  if (bad.next !== undefined && bad.storedCrc !== undefined && bad.next < buf.length) {
    if (readRecord(buf, bad.next, bad.storedCrc).ok) return bad.next;
  }
  const lastStart = buf.length - 2 * RECORD_HEADER_SIZE;
  for (let y = badOff + 1; y <= lastStart; y++) {
    if (!isRecordType(buf[y + 8])) continue;
    const len = buf.readUInt32LE(y);
    if (len > lastStart - y) continue;
    const z = y + RECORD_HEADER_SIZE + len;
    if (!isRecordType(buf[z + 8])) continue;
    if (readRecord(buf, z, buf.readUInt32LE(y + 4)).ok) return y;
  }
  return undefined;
}

/**
 * Verifies one segment and returns its records.
 *
 * - The header must be the first record and verify against the prevCrc it carries; when the previous
 *   segment is present (`expectedPrevCrc`), that value must equal the running CRC at its end.
 * - A segment other than the last must consist of good records exactly up to its end of file: it was
 *   truncated to its used length and synced before the next segment was created.
 * - In the last segment, the first record that does not verify ends the log if everything from it on is
 *   zeros (the preallocated tail: normal, `torn` unset). Otherwise it is a torn write (`torn` is set and
 *   the caller cuts the file back) when no valid record follows it and, if it is a whole record whose
 *   CRC fails, it has a zero-filled sector. Otherwise the segment is corrupt and this throws.
 *   A bit flip in the length or type of the very last record cannot be told from a torn write and is
 *   cut off as one (with the caller's warning); a flip anywhere else in the last record is refused.
 */
export function scanSegment(buf: Buffer, file: string, isLast: boolean, expectedPrevCrc?: number): ScannedSegment {
  // The header verifies against the prevCrc it carries, so its payload is decoded before it is trusted;
  // a damaged payload then fails either decoding or the CRC.
  const first = readHeader(buf, file);
  if (expectedPrevCrc !== undefined && first.header.prevCrc !== expectedPrevCrc) {
    throw new CorruptWalError(
      file,
      0,
      `crc chain broken across segments: header carries prevCrc 0x${first.header.prevCrc.toString(16)} ` +
        `but the previous segment ends with 0x${expectedPrevCrc.toString(16)}`,
    );
  }
  const records: ScannedRecord[] = [];
  let off = first.next;
  let crc = first.crc;
  while (off < buf.length) {
    const r = readRecord(buf, off, crc);
    if (r.ok) {
      if (r.type === RecordType.SegmentHeader) {
        throw new CorruptWalError(file, off, 'bad framing: segment header record in the middle of a segment');
      }
      records.push({ type: r.type, offset: off, payload: r.payload });
      crc = r.crc;
      off = r.next;
      continue;
    }
    if (!isLast) throw new CorruptWalError(file, off, r.reason);
    if (zerosFrom(buf, off)) break;
    const valid = findValidRecordAfter(buf, off, r);
    if (valid !== undefined) {
      throw new CorruptWalError(file, off, `${r.reason}; a valid record follows at offset ${valid}, so this is not a torn tail`);
    }
    if (r.next !== undefined && !hasZeroSector(buf, off, r.next)) {
      throw new CorruptWalError(file, off, `${r.reason}; the record has no zero-filled sector, so this is damage, not a torn write`);
    }
    return { header: first.header, records, end: off, crc, torn: r.reason };
  }
  return { header: first.header, records, end: off, crc };
}

function readHeader(buf: Buffer, file: string): { header: SegmentHeader; crc: number; next: number } {
  const left = buf.length;
  if (left < RECORD_HEADER_SIZE) throw new CorruptWalError(file, 0, `bad framing: file too short for a segment header (${left} bytes)`);
  const len = buf.readUInt32LE(0);
  const type = buf[8];
  if (type !== RecordType.SegmentHeader) throw new CorruptWalError(file, 0, `bad framing: expected a segment header, found record type ${type}`);
  if (len > left - RECORD_HEADER_SIZE) throw new CorruptWalError(file, 0, `bad framing: header length ${len} runs past the end of the file`);
  let header: SegmentHeader;
  try {
    header = decodeSegmentHeader(buf.subarray(RECORD_HEADER_SIZE, RECORD_HEADER_SIZE + len));
  } catch (err) {
    if (err instanceof PayloadError) throw new CorruptWalError(file, 0, `bad segment header: ${err.message}`);
    throw err;
  }
  const r = readRecord(buf, 0, header.prevCrc);
  if (!r.ok) throw new CorruptWalError(file, 0, `segment header: ${r.reason}`);
  if (header.v !== SEGMENT_FORMAT_VERSION) {
    throw new CorruptWalError(file, 0, `unsupported segment format version ${header.v} (this build reads ${SEGMENT_FORMAT_VERSION})`);
  }
  return { header, crc: r.crc, next: r.next };
}
