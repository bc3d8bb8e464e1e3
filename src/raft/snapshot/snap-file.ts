// The bytes of one snapshot file, `<term>-<index>.snap` (16 lowercase hex digits each):
//
//   offset 0       8 bytes  magic "KEELSNAP"
//   offset 8       u32 LE   format version (1)
//   offset 12      u64 LE   body length n
//   offset 20      n bytes  body: msgpackr map {meta: {index, term, voters, learners?, removed?}, data}
//   offset 20 + n  u32 LE   crc32c of bytes [0, 20 + n): header and body
//
// The file must be exactly 24 + n bytes: anything shorter is a torn write, anything longer is not ours.
// The CRC covers the header too, so a damaged version or length is caught even when it still parses.

import { Packr } from 'msgpackr';
import { crc32c } from '../../util/crc32c';
import type { Snapshot, SnapshotMeta } from '../core/types';

const MAGIC = Buffer.from('KEELSNAP', 'ascii');
export const SNAP_FORMAT_VERSION = 1;
const HEADER_SIZE = 20;
const TRAILER_SIZE = 4;

export const SNAP_SUFFIX = '.snap';
const NAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

// No copyBuffers: the decoded data is a view into the file's buffer, which is almost all data anyway,
// so copying would only double the peak memory of a load.
const packr = new Packr({ useRecords: false });

function hex16(n: number): string {
  return n.toString(16).padStart(16, '0');
}

export function snapName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}${SNAP_SUFFIX}`;
}

export function parseSnapName(name: string): { term: number; index: number } | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  const term = parseInt(m[1], 16);
  const index = parseInt(m[2], 16);
  if (!Number.isSafeInteger(term) || !Number.isSafeInteger(index)) return undefined;
  return { term, index };
}

/** The file as separate buffers (header, body, trailer), so that writing needs no concatenation. */
export function encodeSnapFile(s: Snapshot): Buffer[] {
  const meta: Record<string, unknown> = { index: s.meta.index, term: s.meta.term, voters: [...s.meta.voters] };
  // Written only when present, so that files without learners stay byte-identical to the older format.
  if (s.meta.learners !== undefined && s.meta.learners.length > 0) meta.learners = [...s.meta.learners];
  if (s.meta.removed !== undefined && s.meta.removed.length > 0) meta.removed = [...s.meta.removed];
  const body = packr.pack({ meta, data: s.data });
  const header = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(header, 0);
  header.writeUInt32LE(SNAP_FORMAT_VERSION, 8);
  header.writeBigUInt64LE(BigInt(body.length), 12);
  const trailer = Buffer.alloc(TRAILER_SIZE);
  trailer.writeUInt32LE(crc32c(body, crc32c(header)), 0);
  return [header, body, trailer];
}

function isIdList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** The snapshot in `buf`, or why the file cannot be trusted. */
export function decodeSnapFile(buf: Buffer): Snapshot | { error: string } {
  if (buf.length < HEADER_SIZE + TRAILER_SIZE) return { error: `file too short (${buf.length} bytes)` };
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return { error: 'bad magic: not a Keel snapshot file' };
  const bodyLen = buf.readBigUInt64LE(12);
  const expected = BigInt(HEADER_SIZE + TRAILER_SIZE) + bodyLen;
  if (expected !== BigInt(buf.length)) {
    return { error: `length mismatch: header says ${expected} bytes in all, file has ${buf.length}` };
  }
  const end = buf.length - TRAILER_SIZE;
  const stored = buf.readUInt32LE(end);
  const computed = crc32c(buf.subarray(0, end));
  if (stored !== computed) return { error: `crc mismatch (stored 0x${stored.toString(16)}, computed 0x${computed.toString(16)})` };
  const version = buf.readUInt32LE(8);
  if (version !== SNAP_FORMAT_VERSION) return { error: `unsupported format version ${version}` };
  let body: unknown;
  try {
    body = packr.unpack(buf.subarray(HEADER_SIZE, end));
  } catch (err) {
    return { error: `undecodable body: ${(err as Error).message}` };
  }
  if (typeof body !== 'object' || body === null) return { error: 'body is not a map' };
  const { meta, data } = body as { meta?: unknown; data?: unknown };
  if (!(data instanceof Uint8Array)) return { error: 'body.data is not binary' };
  if (typeof meta !== 'object' || meta === null) return { error: 'body.meta is not a map' };
  const { index, term, voters, learners, removed } = meta as Record<string, unknown>;
  if (!isCount(index) || !isCount(term)) return { error: 'body.meta index or term is not a non-negative integer' };
  if (!isIdList(voters)) return { error: 'body.meta.voters is not a list of member ids' };
  if (learners !== undefined && !isIdList(learners)) return { error: 'body.meta.learners is not a list of member ids' };
  if (removed !== undefined && !isIdList(removed)) return { error: 'body.meta.removed is not a list of member ids' };
  const m: SnapshotMeta = { index, term, voters };
  if (learners !== undefined && learners.length > 0) m.learners = learners;
  if (removed !== undefined && removed.length > 0) m.removed = removed;
  return { meta: m, data };
}
