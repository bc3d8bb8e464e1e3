// The snapshot data of the MVCC store: every LevelDB pair of the store, in key order, framed as
//
//   "KEELMVCC" (8 bytes) | framing version u32 (1) | pair count u64 |
//   pair count x { key length u32 | key | value length u32 | value }
//
// (big-endian). The pairs include the meta records (format tag "keel-mvcc/1", applied index, revisions,
// compaction progress), so the dump needs no other header. Reading validates the framing, the key order and
// every record, so that a corrupt or foreign snapshot is refused with a message naming the problem before
// anything is written.

import { META_ALARMS, META_MEMBERS, decodeAlarms, decodeMembers } from './cluster-records';
import { CorruptDataError, FORMAT, decodeCompaction, decodeDedupClient, decodeDedupIndex, decodeDedupRecord } from './records';
import {
  decodeEvent,
  decodeLatest,
  decodeLease,
  decodeState,
  decodeVersion,
  describeKey,
  type CompactionProgress,
  type MetaState,
} from './records';
import {
  META_COMPACTION,
  META_FORMAT,
  META_STATE,
  Table,
  decodeDedupClientKey,
  decodeDedupIndexKey,
  decodeDedupKey,
  decodeEventKey,
  decodeHistoryKey,
  decodeLeaseKey,
  decodeLeaseKeysKey,
  readU64,
  writeU64,
} from './keys';
import { decodeResult } from './result-codec';

const MAGIC = Buffer.from('KEELMVCC', 'latin1');
const FRAMING_VERSION = 1;
const HEADER = MAGIC.length + 4 + 8;

/** Builds the snapshot data from the store's pairs, in key order. Pairs are copied into large chunks (not
 *  kept as four small Buffers each, which for millions of keys would cost more heap than the data). */
export class SnapshotWriter {
  private static readonly CHUNK = 16 * 1024 * 1024;
  private readonly chunks: Buffer[] = [];
  private chunk: Buffer;
  private off: number;
  private count = 0;

  constructor() {
    this.chunk = Buffer.allocUnsafe(SnapshotWriter.CHUNK);
    this.off = HEADER;
  }

  add(key: Buffer, value: Buffer): void {
    const need = 8 + key.length + value.length;
    if (this.off + need > this.chunk.length) {
      this.chunks.push(this.chunk.subarray(0, this.off));
      this.chunk = Buffer.allocUnsafe(Math.max(SnapshotWriter.CHUNK, need));
      this.off = 0;
    }
    const c = this.chunk;
    c.writeUInt32BE(key.length, this.off);
    key.copy(c, this.off + 4);
    this.off += 4 + key.length;
    c.writeUInt32BE(value.length, this.off);
    value.copy(c, this.off + 4);
    this.off += 4 + value.length;
    this.count++;
  }

  finish(): Buffer {
    const first = this.chunks.length > 0 ? this.chunks[0] : this.chunk;
    MAGIC.copy(first, 0);
    first.writeUInt32BE(FRAMING_VERSION, MAGIC.length);
    writeU64(first, this.count, MAGIC.length + 4);
    return Buffer.concat([...this.chunks, this.chunk.subarray(0, this.off)]);
  }
}

export interface SnapshotSummary {
  format: typeof FORMAT;
  applied: number;
  revision: number;
  compactRevision: number;
  compaction: CompactionProgress;
  /** Live keys (the Latest table). */
  keys: number;
  /** Retained versions, tombstones included. */
  versions: number;
  events: number;
  leases: number;
  dedupRecords: number;
  pairs: number;
  bytes: number;
}

class Invalid extends Error {}

/**
 * Validates snapshot data and summarizes it; `visit` receives every pair (views into `data`) as it is
 * validated. Throws an Error naming what is wrong ("mvcc store: invalid snapshot data: ...").
 */
export function readSnapshotData(data: Uint8Array, visit?: (key: Buffer, value: Buffer) => void): SnapshotSummary {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  try {
    return read(buf, visit);
  } catch (err) {
    if (err instanceof Invalid || err instanceof CorruptDataError) {
      throw new Error(`mvcc store: invalid snapshot data: ${err.message.replace(/^mvcc store: /, '')}`);
    }
    throw err;
  }
}

/** The summary only (for `keel snapshot status` and tests). */
export function decodeSnapshotData(data: Uint8Array): SnapshotSummary {
  return readSnapshotData(data);
}

function read(buf: Buffer, visit?: (key: Buffer, value: Buffer) => void): SnapshotSummary {
  if (buf.length < HEADER || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new Invalid('not a keel-mvcc snapshot (bad magic)');
  }
  const version = buf.readUInt32BE(MAGIC.length);
  if (version !== FRAMING_VERSION) throw new Invalid(`framing version ${version}, expected ${FRAMING_VERSION}`);
  const pairs = readU64(buf, MAGIC.length + 4);
  if (pairs === undefined) throw new Invalid('pair count too large');

  let format: string | undefined;
  let state: MetaState | undefined;
  let compaction: CompactionProgress | undefined;
  const s = { keys: 0, versions: 0, events: 0, leases: 0, dedupRecords: 0 };
  let off = HEADER;
  let prev: Buffer | undefined;
  const field = (i: number, what: string): Buffer => {
    if (off + 4 > buf.length) throw new Invalid(`pair ${i}: truncated ${what} length`);
    const len = buf.readUInt32BE(off);
    off += 4;
    if (off + len > buf.length) throw new Invalid(`pair ${i}: ${what} runs past the end (${len} bytes)`);
    const b = buf.subarray(off, off + len);
    off += len;
    return b;
  };
  for (let i = 0; i < pairs; i++) {
    const k = field(i, 'key');
    const v = field(i, 'value');
    if (k.length === 0) throw new Invalid(`pair ${i}: empty key`);
    if (prev !== undefined && Buffer.compare(prev, k) >= 0) {
      throw new Invalid(`pair ${i}: key ${describeKey(k)} is not above the one before it`);
    }
    prev = k;
    if (k[0] !== Table.Meta && state === undefined) {
      throw new Invalid('the state record (applied index, revision) is missing');
    }
    const bad = (why: string): Invalid => new Invalid(`pair ${i} (key ${describeKey(k)}): ${why}`);
    const atMost = (rev: number, what: string): void => {
      if (state !== undefined && rev > state.revision) throw bad(`${what} ${rev} is above the revision ${state.revision}`);
    };
    switch (k[0]) {
      case Table.Meta:
        if (k.equals(META_FORMAT)) {
          format = v.toString('utf8');
          if (format !== FORMAT) throw bad(`format ${JSON.stringify(format)}, expected ${JSON.stringify(FORMAT)}`);
        } else if (k.equals(META_STATE)) state = decodeState(v, k);
        else if (k.equals(META_COMPACTION)) compaction = decodeCompaction(v, k);
        else if (k.equals(META_MEMBERS)) decodeMembers(v);
        else if (k.equals(META_ALARMS)) decodeAlarms(v);
        else throw bad('unknown meta record');
        break;
      case Table.Latest: {
        if (k.length < 2) throw bad('empty user key');
        const r = decodeLatest(v, k);
        atMost(r.modRevision, 'mod revision');
        s.keys++;
        break;
      }
      case Table.History: {
        const pos = decodeHistoryKey(k);
        if (pos === undefined || pos.key.length === 0) throw bad('bad history key');
        atMost(pos.rev, 'revision');
        decodeVersion(v, k);
        s.versions++;
        break;
      }
      case Table.Events: {
        const pos = decodeEventKey(k);
        if (pos === undefined) throw bad('bad event key');
        atMost(pos.rev, 'revision');
        const e = decodeEvent(v, k);
        if (e.prev !== undefined && e.prev.rev > pos.rev) throw bad('an event replacing a later version');
        s.events++;
        break;
      }
      case Table.LeaseKeys:
        if (decodeLeaseKeysKey(k) === undefined || v.length !== 0) throw bad('bad lease index entry');
        break;
      case Table.Leases: {
        const id = decodeLeaseKey(k);
        if (id === undefined) throw bad('bad lease key');
        decodeLease(id, v, k);
        s.leases++;
        break;
      }
      case Table.Dedup: {
        if (decodeDedupKey(k) === undefined) throw bad('bad deduplication key');
        const r = decodeDedupRecord(v, k);
        try {
          decodeResult(r.result);
        } catch (err) {
          throw bad((err as Error).message);
        }
        s.dedupRecords++;
        break;
      }
      case Table.DedupClients:
        if (decodeDedupClientKey(k) === undefined) throw bad('bad deduplication client key');
        decodeDedupClient(v, k);
        break;
      case Table.DedupByIndex: {
        const index = decodeDedupIndexKey(k);
        if (index === undefined || state === undefined || index > state.applied) {
          throw bad('bad deduplication index entry');
        }
        decodeDedupIndex(v, k);
        break;
      }
      default:
        throw bad('unknown table');
    }
    visit?.(k, v);
  }
  if (off !== buf.length) throw new Invalid(`${buf.length - off} bytes after the last pair`);
  if (format === undefined) throw new Invalid('the format record is missing');
  if (state === undefined) throw new Invalid('the state record (applied index, revision) is missing');
  if (compaction === undefined) throw new Invalid('the compaction record is missing');
  if (compaction.done > state.compactRevision) {
    throw new Invalid(`compaction done to ${compaction.done}, above the compact revision ${state.compactRevision}`);
  }
  return {
    format: FORMAT,
    applied: state.applied,
    revision: state.revision,
    compactRevision: state.compactRevision,
    compaction,
    ...s,
    pairs,
    bytes: buf.length,
  };
}
