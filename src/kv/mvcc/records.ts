// LevelDB value encodings of the MVCC store: fixed-layout binary (big-endian integers, then the raw value
// bytes), decoded with checks, because a corrupt record must stop the store with an error naming the key
// rather than serve or replicate garbage. The layout is documented at the top of mvcc-store.ts.

import type { KeyValue } from '../api';
import type { LeaseRecord } from '../state-machine';
import { readU64, writeU64 } from './keys';

/** Local disk data (or a snapshot being restored) that does not decode. */
export class CorruptDataError extends Error {
  constructor(what: string, key: Uint8Array, why: string) {
    super(`mvcc store: corrupt ${what} at key ${describeKey(key)}: ${why}`);
    this.name = 'CorruptDataError';
  }
}

/** A LevelDB key for messages: printable ASCII as is, other bytes as \xNN. */
export function describeKey(key: Uint8Array): string {
  let s = '';
  const n = Math.min(key.length, 80);
  for (let i = 0; i < n; i++) {
    const c = key[i];
    s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  }
  return `"${s}${key.length > n ? '...' : ''}"`;
}

function u64At(v: Buffer, offset: number, what: string, key: Uint8Array, field: string): number {
  const n = readU64(v, offset);
  if (n === undefined) throw new CorruptDataError(what, key, `${field} does not fit in 2^53`);
  return n;
}

// ---- latest (Table.Latest) -------------------------------------------------------------------------------

/** The newest version of a live key, as the Latest table holds it. `modSub` locates its history entry. */
export interface LatestRecord {
  value: Buffer;
  createRevision: number;
  modRevision: number;
  modSub: number;
  version: number;
  lease: number;
}

const LATEST_TAG = 1;
const LATEST_HEADER = 1 + 8 + 8 + 4 + 8 + 8;

export function encodeLatest(r: LatestRecord): Buffer {
  const b = Buffer.allocUnsafe(LATEST_HEADER + r.value.length);
  b[0] = LATEST_TAG;
  writeU64(b, r.createRevision, 1);
  writeU64(b, r.modRevision, 9);
  b.writeUInt32BE(r.modSub, 17);
  writeU64(b, r.version, 21);
  writeU64(b, r.lease, 29);
  b.set(r.value, LATEST_HEADER);
  return b;
}

/** The value is a view of `v` (LevelDB hands out one buffer per value, so nothing larger is pinned). */
export function decodeLatest(v: Buffer, key: Uint8Array): LatestRecord {
  const what = 'latest-version record';
  if (v.length < LATEST_HEADER || v[0] !== LATEST_TAG) throw new CorruptDataError(what, key, 'bad header');
  const r: LatestRecord = {
    createRevision: u64At(v, 1, what, key, 'create revision'),
    modRevision: u64At(v, 9, what, key, 'mod revision'),
    modSub: v.readUInt32BE(17),
    version: u64At(v, 21, what, key, 'version'),
    lease: u64At(v, 29, what, key, 'lease'),
    value: v.subarray(LATEST_HEADER),
  };
  if (r.createRevision < 1 || r.createRevision > r.modRevision || r.version < 1) {
    throw new CorruptDataError(what, key, 'inconsistent revisions or version');
  }
  return r;
}

// ---- history (Table.History) -----------------------------------------------------------------------------

/** One retained version of a key; its key and mod revision are in the LevelDB key. */
export type VersionRecord =
  | { tombstone: false; value: Buffer; createRevision: number; version: number; lease: number }
  | { tombstone: true };

const TOMBSTONE_TAG = 0;
const VERSION_TAG = 1;
const VERSION_HEADER = 1 + 8 + 8 + 8;
export const TOMBSTONE = Buffer.from([TOMBSTONE_TAG]);

export function encodeVersion(r: { value: Buffer; createRevision: number; version: number; lease: number }): Buffer {
  const b = Buffer.allocUnsafe(VERSION_HEADER + r.value.length);
  b[0] = VERSION_TAG;
  writeU64(b, r.createRevision, 1);
  writeU64(b, r.version, 9);
  writeU64(b, r.lease, 17);
  b.set(r.value, VERSION_HEADER);
  return b;
}

export function decodeVersion(v: Buffer, key: Uint8Array): VersionRecord {
  const what = 'history record';
  if (v.length === 1 && v[0] === TOMBSTONE_TAG) return { tombstone: true };
  if (v.length < VERSION_HEADER || v[0] !== VERSION_TAG) throw new CorruptDataError(what, key, 'bad header');
  const r = {
    tombstone: false as const,
    createRevision: u64At(v, 1, what, key, 'create revision'),
    version: u64At(v, 9, what, key, 'version'),
    lease: u64At(v, 17, what, key, 'lease'),
    value: v.subarray(VERSION_HEADER),
  };
  if (r.createRevision < 1 || r.version < 1) throw new CorruptDataError(what, key, 'zero revision or version');
  return r;
}

export function kvOfVersion(
  key: Buffer,
  modRevision: number,
  r: { value: Buffer; createRevision: number; version: number; lease: number },
): KeyValue {
  return {
    key,
    createRevision: r.createRevision,
    modRevision,
    version: r.version,
    value: r.value,
    lease: r.lease,
  };
}

export function kvOfLatest(key: Buffer, r: LatestRecord): KeyValue {
  return kvOfVersion(key, r.modRevision, r);
}

// ---- events (Table.Events) -------------------------------------------------------------------------------

/** One change in the event log. The record of a put is in History at (key, rev, sub); `prev` locates the
 *  version it replaced (absent when the key did not exist), which compaction uses to find what became
 *  garbage without searching. */
export interface EventPointer {
  key: Buffer;
  tombstone: boolean;
  prev?: { rev: number; sub: number };
}

const EV_TOMBSTONE = 1;
const EV_HAS_PREV = 2;
const EVENT_HEADER = 1 + 8 + 4;

export function encodeEvent(e: EventPointer): Buffer {
  const b = Buffer.allocUnsafe(EVENT_HEADER + e.key.length);
  b[0] = (e.tombstone ? EV_TOMBSTONE : 0) | (e.prev ? EV_HAS_PREV : 0);
  writeU64(b, e.prev ? e.prev.rev : 0, 1);
  b.writeUInt32BE(e.prev ? e.prev.sub : 0, 9);
  b.set(e.key, EVENT_HEADER);
  return b;
}

export function decodeEvent(v: Buffer, key: Uint8Array): EventPointer {
  const what = 'event record';
  if (v.length <= EVENT_HEADER || (v[0] & ~(EV_TOMBSTONE | EV_HAS_PREV)) !== 0) {
    throw new CorruptDataError(what, key, 'bad header or empty key');
  }
  const tombstone = (v[0] & EV_TOMBSTONE) !== 0;
  const e: EventPointer = { key: Buffer.from(v.subarray(EVENT_HEADER)), tombstone };
  if ((v[0] & EV_HAS_PREV) !== 0) {
    e.prev = { rev: u64At(v, 1, what, key, 'previous revision'), sub: v.readUInt32BE(9) };
  } else if (tombstone) {
    throw new CorruptDataError(what, key, 'a delete without the version it deleted');
  }
  return e;
}

// ---- leases (Table.Leases) -------------------------------------------------------------------------------

export function encodeLease(r: LeaseRecord): Buffer {
  const b = Buffer.allocUnsafe(16);
  writeU64(b, r.ttl, 0);
  writeU64(b, r.remainingTtl, 8);
  return b;
}

export function decodeLease(id: number, v: Buffer, key: Uint8Array): LeaseRecord {
  const what = 'lease record';
  if (v.length !== 16) throw new CorruptDataError(what, key, `${v.length} bytes, expected 16`);
  return { id, ttl: u64At(v, 0, what, key, 'ttl'), remainingTtl: u64At(v, 8, what, key, 'remaining ttl') };
}

// ---- deduplication ---------------------------------------------------------------------------------------

/** Per client: retries with a seq below `expiredBelow` (one past the highest seq whose record was dropped)
 *  are refused as expired; `count` records are retained (at 0 the client is forgotten). */
export interface DedupClient {
  expiredBelow: number;
  count: number;
}

export function encodeDedupClient(c: DedupClient): Buffer {
  const b = Buffer.allocUnsafe(16);
  writeU64(b, c.expiredBelow, 0);
  writeU64(b, c.count, 8);
  return b;
}

export function decodeDedupClient(v: Buffer, key: Uint8Array): DedupClient {
  const what = 'deduplication client record';
  if (v.length !== 16) throw new CorruptDataError(what, key, `${v.length} bytes, expected 16`);
  const c = { expiredBelow: u64At(v, 0, what, key, 'expired-below seq'), count: u64At(v, 8, what, key, 'count') };
  if (c.count < 1) throw new CorruptDataError(what, key, 'a client without records');
  return c;
}

/** The Dedup table's value: the index of the entry that applied the request, then the encoded result. */
export function encodeDedupRecord(index: number, result: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(8 + result.length);
  writeU64(b, index, 0);
  b.set(result, 8);
  return b;
}

export function decodeDedupRecord(v: Buffer, key: Uint8Array): { index: number; result: Buffer } {
  const what = 'deduplication record';
  if (v.length < 9) throw new CorruptDataError(what, key, 'too short');
  return { index: u64At(v, 0, what, key, 'entry index'), result: v.subarray(8) };
}

/** The DedupByIndex table's value: which (client, seq) the entry recorded. */
export function encodeDedupIndex(client: string, seq: number): Buffer {
  const c = Buffer.from(client, 'utf8');
  const b = Buffer.allocUnsafe(8 + c.length);
  writeU64(b, seq, 0);
  b.set(c, 8);
  return b;
}

export function decodeDedupIndex(v: Buffer, key: Uint8Array): { client: string; seq: number } {
  const what = 'deduplication index record';
  if (v.length < 9) throw new CorruptDataError(what, key, 'too short');
  return { seq: u64At(v, 0, what, key, 'seq'), client: v.subarray(8).toString('utf8') };
}

// ---- meta ------------------------------------------------------------------------------------------------

export const FORMAT = 'keel-mvcc/1';

/** What every reader needs to agree on, in one LevelDB value so that one read gets a consistent triple. */
export interface MetaState {
  applied: number;
  revision: number;
  compactRevision: number;
}

export function encodeState(s: MetaState): Buffer {
  const b = Buffer.allocUnsafe(24);
  writeU64(b, s.applied, 0);
  writeU64(b, s.revision, 8);
  writeU64(b, s.compactRevision, 16);
  return b;
}

export function decodeState(v: Buffer, key: Uint8Array): MetaState {
  const what = 'state record';
  if (v.length !== 24) throw new CorruptDataError(what, key, `${v.length} bytes, expected 24`);
  const s = {
    applied: u64At(v, 0, what, key, 'applied index'),
    revision: u64At(v, 8, what, key, 'revision'),
    compactRevision: u64At(v, 16, what, key, 'compact revision'),
  };
  if (s.revision < 1 || s.compactRevision > s.revision) {
    throw new CorruptDataError(what, key, `revision ${s.revision} with compact revision ${s.compactRevision}`);
  }
  return s;
}

/** Progress of the physical compaction: history below `done` is gone; the next event to look at is `cursor`. */
export interface CompactionProgress {
  done: number;
  cursor: { rev: number; sub: number };
}

export function encodeCompaction(p: CompactionProgress): Buffer {
  const b = Buffer.allocUnsafe(20);
  writeU64(b, p.done, 0);
  writeU64(b, p.cursor.rev, 8);
  b.writeUInt32BE(p.cursor.sub, 16);
  return b;
}

export function decodeCompaction(v: Buffer, key: Uint8Array): CompactionProgress {
  const what = 'compaction record';
  if (v.length !== 20) throw new CorruptDataError(what, key, `${v.length} bytes, expected 20`);
  return {
    done: u64At(v, 0, what, key, 'done revision'),
    cursor: { rev: u64At(v, 8, what, key, 'cursor revision'), sub: v.readUInt32BE(16) },
  };
}
