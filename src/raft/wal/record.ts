// WAL record framing and payload codecs.
//
// On-disk record (little-endian, no padding):
//
//   offset 0  u32  length   payload length in bytes (excludes this 9-byte header)
//   offset 4  u32  crc      crc32c(type || payload, prevCrc)
//   offset 8  u8   type     RecordType below; 0 is never written
//   offset 9  ...  payload  `length` bytes
//
// The CRC is chained: prevCrc is the `crc` field of the record before this one, so a record only
// verifies in its place in the sequence and a lost, duplicated or reordered record breaks the chain.
// The chain does not restart at a segment boundary: every segment opens with a SegmentHeader record
// whose payload carries the running CRC at the end of the previous segment (`prevCrc`) and whose own
// crc is computed from that value. A segment therefore verifies on its own (after older segments were
// released) and, when its predecessor is present, the two are checked to join up.
//
// Type 0 is never used, so a run of zeros (a preallocated, never-written tail) never parses as a record.
//
// Payloads are msgpackr maps: plain data, readable by any msgpack tool when debugging a broken WAL.

import { Packr } from 'msgpackr';
import { crc32c } from '../../util/crc32c';
import type { Entry, EntryType, HardState } from '../core/types';

export const RECORD_HEADER_SIZE = 9;

export const enum RecordType {
  SegmentHeader = 1,
  Entry = 2,
  HardState = 3,
  /** The log was replaced by a snapshot at {index, term}: see WalContents.snapshot. */
  SnapshotMarker = 4,
}

export function isRecordType(t: number): t is RecordType {
  return t >= RecordType.SegmentHeader && t <= RecordType.SnapshotMarker;
}

export interface SnapshotMarker {
  index: number;
  term: number;
}

/** First record of every segment. */
export interface SegmentHeader {
  /** Format version of the segment; readers refuse versions they do not know. */
  v: number;
  seq: number;
  /** Must equal the index in the file name: lastIndex + 1 when the segment was started. */
  firstIndex: number;
  /** Running CRC of the chain at the end of the previous segment (0 for the very first segment). */
  prevCrc: number;
  /** State as of the segment's start, so that replay can begin here once older segments are deleted:
   *  the latest hard state and snapshot marker written before it. */
  hardState?: HardState;
  snapshot?: SnapshotMarker;
}

export const SEGMENT_FORMAT_VERSION = 1;

// copyBuffers: decoded Entry.data must not be a view into the segment buffer read at replay, or each
// entry would keep a whole (up to 64 MiB) segment alive.
const packr = new Packr({ useRecords: false, copyBuffers: true });

/** Thrown by the decoders below; the WAL turns it into an error naming the file and offset. */
export class PayloadError extends Error {}

export function encodeEntry(e: Entry): Uint8Array {
  return packr.pack({ term: e.term, index: e.index, type: e.type, data: e.data });
}

export function encodeHardState(hs: HardState): Uint8Array {
  return packr.pack({ term: hs.term, vote: hs.vote, commit: hs.commit });
}

export function encodeSnapshotMarker(m: SnapshotMarker): Uint8Array {
  return packr.pack({ index: m.index, term: m.term });
}

export function encodeSegmentHeader(h: SegmentHeader): Uint8Array {
  const o: Record<string, unknown> = { v: h.v, seq: h.seq, firstIndex: h.firstIndex, prevCrc: h.prevCrc };
  if (h.hardState) o.hardState = { term: h.hardState.term, vote: h.hardState.vote, commit: h.hardState.commit };
  if (h.snapshot) o.snapshot = { index: h.snapshot.index, term: h.snapshot.term };
  return packr.pack(o);
}

function unpackObject(payload: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = packr.unpack(payload);
  } catch (err) {
    throw new PayloadError(`undecodable ${what} payload: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PayloadError(`${what} payload is not a map`);
  return v as Record<string, unknown>;
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function num(o: Record<string, unknown>, key: string, what: string): number {
  const v = o[key];
  if (!isIndex(v)) throw new PayloadError(`${what}.${key} is not a non-negative integer`);
  return v;
}

function decodeHardStateObject(o: Record<string, unknown>, what: string): HardState {
  if (typeof o.vote !== 'string') throw new PayloadError(`${what}.vote is not a string`);
  return { term: num(o, 'term', what), vote: o.vote, commit: num(o, 'commit', what) };
}

function decodeMarkerObject(o: Record<string, unknown>, what: string): SnapshotMarker {
  return { index: num(o, 'index', what), term: num(o, 'term', what) };
}

function subObject(o: Record<string, unknown>, key: string, what: string): Record<string, unknown> | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new PayloadError(`${what}.${key} is not a map`);
  return v as Record<string, unknown>;
}

export function decodeEntry(payload: Uint8Array): Entry {
  const o = unpackObject(payload, 'entry');
  const data = o.data;
  if (!(data instanceof Uint8Array)) throw new PayloadError('entry.data is not binary');
  return {
    term: num(o, 'term', 'entry'),
    index: num(o, 'index', 'entry'),
    type: num(o, 'type', 'entry') as EntryType,
    data,
  };
}

export function decodeHardState(payload: Uint8Array): HardState {
  return decodeHardStateObject(unpackObject(payload, 'hardState'), 'hardState');
}

export function decodeSnapshotMarker(payload: Uint8Array): SnapshotMarker {
  return decodeMarkerObject(unpackObject(payload, 'snapshot marker'), 'snapshot marker');
}

export function decodeSegmentHeader(payload: Uint8Array): SegmentHeader {
  const what = 'segment header';
  const o = unpackObject(payload, what);
  const hs = subObject(o, 'hardState', what);
  const snap = subObject(o, 'snapshot', what);
  const h: SegmentHeader = {
    v: num(o, 'v', what),
    seq: num(o, 'seq', what),
    firstIndex: num(o, 'firstIndex', what),
    prevCrc: num(o, 'prevCrc', what),
  };
  if (h.prevCrc > 0xffffffff) throw new PayloadError(`${what}.prevCrc is not a u32`);
  if (hs) h.hardState = decodeHardStateObject(hs, `${what}.hardState`);
  if (snap) h.snapshot = decodeMarkerObject(snap, `${what}.snapshot`);
  return h;
}

/** A record ready to be framed: the chain CRC is only known when the batch is laid out. */
export interface PendingRecord {
  type: RecordType;
  payload: Uint8Array;
}

export function framedSize(r: PendingRecord): number {
  return RECORD_HEADER_SIZE + r.payload.length;
}

/** The chained CRC of a record of `type` carrying `payload`, after a record whose CRC was `prevCrc`. */
export function recordCrc(type: RecordType, payload: Uint8Array, prevCrc: number): number {
  return crc32c(payload, crc32c(Uint8Array.of(type), prevCrc));
}

/**
 * Lays `records` out into `out` starting at `offset`, chaining CRCs from `prevCrc`.
 * Returns the CRC of the last record (the chain's new running value).
 */
export function frameRecords(records: PendingRecord[], prevCrc: number, out: Buffer, offset: number): number {
  let crc = prevCrc;
  let off = offset;
  for (const r of records) {
    crc = recordCrc(r.type, r.payload, crc);
    out.writeUInt32LE(r.payload.length, off);
    out.writeUInt32LE(crc, off + 4);
    out.writeUInt8(r.type, off + 8);
    out.set(r.payload, off + RECORD_HEADER_SIZE);
    off += framedSize(r);
  }
  return crc;
}

/** Copies the payload out of msgpackr's shared scratch buffer: what we frame must not depend on when
 *  msgpackr chooses to recycle that buffer (a batch packs every payload before framing any). */
export function pending(type: RecordType, payload: Uint8Array): PendingRecord {
  return { type, payload: Uint8Array.prototype.slice.call(payload) };
}
