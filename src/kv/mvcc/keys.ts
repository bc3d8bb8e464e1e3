// LevelDB key encodings of the MVCC store. Every table lives under a one-byte prefix; integers are
// big-endian so that LevelDB's bytewise order is numeric order. The layout itself is documented at the top
// of mvcc-store.ts.

/** Table prefixes. */
export const enum Table {
  Meta = 0x00,
  /** Newest version of every live key. */
  Latest = 0x01,
  /** Every retained version of every key, by key then revision. */
  History = 0x02,
  /** Every retained change, by revision: the event log. */
  Events = 0x03,
  /** lease id -> attached keys. */
  LeaseKeys = 0x04,
  /** lease id -> lease record. */
  Leases = 0x05,
  /** (client, seq) -> deduplicated result. */
  Dedup = 0x06,
  /** client -> its deduplication bookkeeping. */
  DedupClients = 0x07,
  /** entry index -> the (client, seq) recorded at that entry, for cleanup in index order. */
  DedupByIndex = 0x08,
}

/** The first byte past the last table: every key of the store is below it. */
export const TABLE_END = 0x09;

/** Largest sub-revision (a u32 on disk). A txn has at most 128 ops, but a lease revoke or a delete range makes
 *  one change per key, so the counter is 32 bits wide. */
export const MAX_SUB = 0xffff_ffff;

const TWO_32 = 0x1_0000_0000;

/** Writes a non-negative safe integer as 8 bytes big-endian (without BigInt, which is slow). */
export function writeU64(buf: Buffer, n: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(n / TWO_32), offset);
  buf.writeUInt32BE(n >>> 0, offset + 4);
}

/** Reads 8 bytes big-endian; undefined if the value does not fit a safe integer. */
export function readU64(buf: Buffer, offset: number): number | undefined {
  const hi = buf.readUInt32BE(offset);
  if (hi > 0x1f_ffff) return undefined;
  return hi * TWO_32 + buf.readUInt32BE(offset + 4);
}

export function u64(n: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  writeU64(b, n, 0);
  return b;
}

/**
 * Order-preserving, self-delimiting encoding of a byte string, so that (key, revision) pairs sort by key
 * first even when one key is a prefix of another: every 0x00 becomes 0x00 0xff and the end is 0x00 0x01.
 * ("a" -> 61 00 01 sorts before "a\0" -> 61 00 ff 00 01, as "a" < "a\0".)
 */
export function escapedLength(key: Uint8Array): number {
  let n = key.length + 2;
  for (let i = 0; i < key.length; i++) if (key[i] === 0) n++;
  return n;
}

function writeEscaped(buf: Buffer, key: Uint8Array, offset: number): number {
  let o = offset;
  for (let i = 0; i < key.length; i++) {
    const c = key[i];
    buf[o++] = c;
    if (c === 0) buf[o++] = 0xff;
  }
  buf[o++] = 0;
  buf[o++] = 1;
  return o;
}

/** Decodes an escaped key starting at `offset`; undefined if malformed. `end` is the offset after it. */
function readEscaped(buf: Buffer, offset: number): { key: Buffer; end: number } | undefined {
  let zeros = 0;
  let i = offset;
  for (;;) {
    if (i >= buf.length) return undefined;
    if (buf[i] !== 0) {
      i++;
      continue;
    }
    if (i + 1 >= buf.length) return undefined;
    const next = buf[i + 1];
    if (next === 1) break;
    if (next !== 0xff) return undefined;
    zeros++;
    i += 2;
  }
  const key = Buffer.allocUnsafe(i - offset - zeros);
  let o = 0;
  for (let j = offset; j < i; j++) {
    key[o++] = buf[j];
    if (buf[j] === 0) j++;
  }
  return { key, end: i + 2 };
}

// ---- meta ------------------------------------------------------------------------------------------------

export const META_FORMAT = Buffer.from('\x00format', 'latin1');
export const META_STATE = Buffer.from('\x00state', 'latin1');
export const META_COMPACTION = Buffer.from('\x00compaction', 'latin1');
/** The foundation's store (keel-kv/1) kept its applied index here: a sign of a db of the old format. */
export const LEGACY_APPLIED = Buffer.from('\x00applied', 'latin1');

// ---- latest ----------------------------------------------------------------------------------------------

export function latestKey(userKey: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(userKey.length + 1);
  b[0] = Table.Latest;
  b.set(userKey, 1);
  return b;
}

export const LATEST_END = Buffer.from([Table.Latest + 1]);

// ---- history ---------------------------------------------------------------------------------------------

export function historyKey(userKey: Uint8Array, rev: number, sub: number): Buffer {
  const b = Buffer.allocUnsafe(1 + escapedLength(userKey) + 12);
  b[0] = Table.History;
  const o = writeEscaped(b, userKey, 1);
  writeU64(b, rev, o);
  b.writeUInt32BE(sub, o + 8);
  return b;
}

/** The first history key of `userKey` (and of every key >= it). */
export function historyKeyStart(userKey: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(1 + escapedLength(userKey));
  b[0] = Table.History;
  writeEscaped(b, userKey, 1);
  return b;
}

export const HISTORY_END = Buffer.from([Table.History + 1]);

export interface HistoryPos {
  key: Buffer;
  rev: number;
  sub: number;
}

export function decodeHistoryKey(k: Buffer): HistoryPos | undefined {
  if (k[0] !== Table.History) return undefined;
  const e = readEscaped(k, 1);
  if (e === undefined || e.end + 12 !== k.length) return undefined;
  const rev = readU64(k, e.end);
  if (rev === undefined) return undefined;
  return { key: e.key, rev, sub: k.readUInt32BE(e.end + 8) };
}

// ---- events ----------------------------------------------------------------------------------------------

export function eventKey(rev: number, sub: number): Buffer {
  const b = Buffer.allocUnsafe(13);
  b[0] = Table.Events;
  writeU64(b, rev, 1);
  b.writeUInt32BE(sub, 9);
  return b;
}

export function decodeEventKey(k: Buffer): { rev: number; sub: number } | undefined {
  if (k.length !== 13 || k[0] !== Table.Events) return undefined;
  const rev = readU64(k, 1);
  return rev === undefined ? undefined : { rev, sub: k.readUInt32BE(9) };
}

// ---- leases ----------------------------------------------------------------------------------------------

export function leaseKeysKey(lease: number, userKey: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(9 + userKey.length);
  b[0] = Table.LeaseKeys;
  writeU64(b, lease, 1);
  b.set(userKey, 9);
  return b;
}

/** [gte, lt) of every key attached to `lease`. */
export function leaseKeysBounds(lease: number): { gte: Buffer; lt: Buffer } {
  const gte = Buffer.allocUnsafe(9);
  gte[0] = Table.LeaseKeys;
  writeU64(gte, lease, 1);
  const lt = Buffer.allocUnsafe(9);
  lt[0] = Table.LeaseKeys;
  writeU64(lt, lease + 1, 1);
  return { gte, lt };
}

export function decodeLeaseKeysKey(k: Buffer): { lease: number; key: Buffer } | undefined {
  if (k.length < 10 || k[0] !== Table.LeaseKeys) return undefined;
  const lease = readU64(k, 1);
  return lease === undefined || lease === 0 ? undefined : { lease, key: Buffer.from(k.subarray(9)) };
}

export function leaseKey(id: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = Table.Leases;
  writeU64(b, id, 1);
  return b;
}

export function decodeLeaseKey(k: Buffer): number | undefined {
  if (k.length !== 9 || k[0] !== Table.Leases) return undefined;
  const id = readU64(k, 1);
  return id === 0 ? undefined : id;
}

export const LEASES_BOUNDS = { gte: Buffer.from([Table.Leases]), lt: Buffer.from([Table.Leases + 1]) };

// ---- deduplication ---------------------------------------------------------------------------------------

export function dedupKey(client: string, seq: number): Buffer {
  const c = Buffer.from(client, 'utf8');
  const b = Buffer.allocUnsafe(1 + escapedLength(c) + 8);
  b[0] = Table.Dedup;
  const o = writeEscaped(b, c, 1);
  writeU64(b, seq, o);
  return b;
}

export function decodeDedupKey(k: Buffer): { client: string; seq: number } | undefined {
  if (k[0] !== Table.Dedup) return undefined;
  const e = readEscaped(k, 1);
  if (e === undefined || e.end + 8 !== k.length || e.key.length === 0) return undefined;
  const seq = readU64(k, e.end);
  return seq === undefined ? undefined : { client: e.key.toString('utf8'), seq };
}

export function dedupClientKey(client: string): Buffer {
  return Buffer.concat([Buffer.from([Table.DedupClients]), Buffer.from(client, 'utf8')]);
}

export function decodeDedupClientKey(k: Buffer): string | undefined {
  if (k.length < 2 || k[0] !== Table.DedupClients) return undefined;
  return k.subarray(1).toString('utf8');
}

export function dedupIndexKey(index: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = Table.DedupByIndex;
  writeU64(b, index, 1);
  return b;
}

export function decodeDedupIndexKey(k: Buffer): number | undefined {
  if (k.length !== 9 || k[0] !== Table.DedupByIndex) return undefined;
  return readU64(k, 1);
}
