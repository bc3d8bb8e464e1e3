// The backup file of `keel snapshot save`: what POST /v3/maintenance/snapshot streams, byte for byte, and
// what `keel snapshot status` and `keel snapshot restore` read.
//
//   offset 0        8 bytes  magic "KEELBKUP"
//   offset 8        u32 BE   format version (1)
//   offset 12       u32 BE   header length h (at most 64 KiB)
//   offset 16       h bytes  header: UTF-8 JSON, BackupHeader below (where the dump comes from, its size)
//   offset 16 + h   n bytes  the store dump: StateMachine.snapshot(), the MVCC store's LevelDB pairs in
//                            the framing of src/kv/mvcc/snapshot-data.ts; n = header.dataBytes
//   offset 16+h+n   32 bytes sha256 of every byte before it (magic, version, header and dump)
//
// Why a header when etcd's file is the bolt db followed by its sha256: the header's dataBytes tells a torn or
// truncated download from a corrupt one before the hash is even computed, and the applied index and revision
// let a reader cross-check the dump. The sha256 at the end plays etcd's part: it covers everything, so any
// flipped bit anywhere is caught, and it can be computed while streaming (the member hashes as it sends, the
// CLI as it receives).

import { createHash, type Hash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { decodeSnapshotData, type SnapshotSummary } from '../kv/mvcc/snapshot-data';

const MAGIC = Buffer.from('KEELBKUP', 'latin1');
export const BACKUP_FORMAT_VERSION = 1;
/** Magic, version, header length. */
const PREFIX_BYTES = MAGIC.length + 4 + 4;
export const SHA256_BYTES = 32;
/** A header is a few hundred bytes; anything near this bound is not a header of ours. */
const MAX_HEADER_BYTES = 64 * 1024;

/** Where the dump comes from. Every number is a non-negative safe integer. */
export interface BackupHeader {
  /** The index of the last log entry applied to the dumped state (the dump's own state record says so too). */
  appliedIndex: number;
  /** The store's revision at that index. */
  revision: number;
  compactRevision: number;
  /** Bytes of the dump that follows the header. */
  dataBytes: number;
  /** The cluster and member that served it (16 hex digits each) and that member's Raft term then. */
  clusterId: string;
  memberId: string;
  raftTerm: number;
  /** When the member started sending it (ISO 8601, UTC). */
  createdAt: string;
}

/** A file or download that is not a whole, intact backup; the message says what is wrong with it. */
export class BackupFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BackupFormatError';
  }
}

/** etcdctl's snapshot page check (see encodeBackupPrefix). */
const BACKUP_ALIGN = 512;

/** The header itself is unreadable (as opposed to the framing around it or the length of the whole). */
class BackupHeaderError extends BackupFormatError {}

/** The bytes that precede the dump: magic, version, header length and header. */
export function encodeBackupPrefix(h: BackupHeader): Buffer {
  // etcdctl's `snapshot save` (etcd's Maintenance.Snapshot over gRPC) checks that the stream, less its trailing
  // sha256, is a whole number of 512-byte pages, as a bolt database is: the JSON is padded with spaces
  // (insignificant to JSON) so that header and dump together are, and the trailing sha256 then matches
  // etcdctl's own check too.
  const bare = Buffer.byteLength(JSON.stringify(h), 'utf8');
  const pad = (BACKUP_ALIGN - ((PREFIX_BYTES + bare + h.dataBytes) % BACKUP_ALIGN)) % BACKUP_ALIGN;
  const json = Buffer.from(JSON.stringify(h) + ' '.repeat(pad), 'utf8');
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32BE(BACKUP_FORMAT_VERSION, MAGIC.length);
  prefix.writeUInt32BE(json.length, MAGIC.length + 4);
  return Buffer.concat([prefix, json]);
}

/** The whole length of a backup with this header. */
export function backupLength(prefixBytes: number, dataBytes: number): number {
  return prefixBytes + dataBytes + SHA256_BYTES;
}

const HEX16 = /^[0-9a-f]{16}$/;

function parseHeader(json: Buffer): BackupHeader {
  let v: unknown;
  try {
    v = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new BackupHeaderError(`the header is not valid JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BackupHeaderError('the header is not a JSON object');
  const o = v as Record<string, unknown>;
  const count = (name: keyof BackupHeader): number => {
    const n = o[name];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      throw new BackupHeaderError(`header field ${name} is ${JSON.stringify(n)}, not a non-negative integer`);
    }
    return n;
  };
  const id = (name: 'clusterId' | 'memberId'): string => {
    const s = o[name];
    if (typeof s !== 'string' || !HEX16.test(s)) {
      throw new BackupHeaderError(`header field ${name} is ${JSON.stringify(s)}, not 16 hex digits`);
    }
    return s;
  };
  const createdAt = o.createdAt;
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) {
    throw new BackupHeaderError(`header field createdAt is ${JSON.stringify(createdAt)}, not a date`);
  }
  const h: BackupHeader = {
    appliedIndex: count('appliedIndex'),
    revision: count('revision'),
    compactRevision: count('compactRevision'),
    dataBytes: count('dataBytes'),
    clusterId: id('clusterId'),
    memberId: id('memberId'),
    raftTerm: count('raftTerm'),
    createdAt,
  };
  if (h.compactRevision > h.revision) {
    throw new BackupHeaderError(`header: compact revision ${h.compactRevision} is above the revision ${h.revision}`);
  }
  return h;
}

function mismatch(stored: Buffer, computed: Buffer, more = ''): BackupFormatError {
  return new BackupFormatError(
    `sha256 mismatch: the file ends with ${stored.toString('hex')} but its contents hash to ` +
      `${computed.toString('hex')} (the file is corrupt${more})`,
  );
}

/**
 * Checks a backup as its bytes arrive, keeping only the header and the last 32 bytes: push() every chunk in
 * order, then finish(). Used on a download (nothing is held in memory) and on a whole file.
 */
export class BackupVerifier {
  private readonly hash: Hash = createHash('sha256');
  /** The bytes before the header is complete (it is parsed from them). */
  private head: Buffer = Buffer.alloc(0);
  private header: BackupHeader | undefined;
  private expected: number | undefined;
  /** The last SHA256_BYTES bytes seen: they are the stored hash if the stream ends here, so not hashed yet. */
  private tail: Buffer = Buffer.alloc(0);
  private received = 0;

  private prefix = 0;

  /** Bytes of the header and what precedes it (where the dump starts); known once the header is. */
  get prefixBytes(): number {
    return this.prefix;
  }

  /** Bytes pushed so far. */
  get bytes(): number {
    return this.received;
  }

  /** Takes the next bytes; throws BackupFormatError as soon as they cannot be a backup. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.received += chunk.length;
    if (this.header === undefined) this.readHead(chunk);
    if (this.expected !== undefined && this.received > this.expected) {
      throw new BackupFormatError(`more than the ${this.expected} bytes its header announces`);
    }
    // Hash everything but the newest 32 bytes (without copying large chunks).
    if (chunk.length >= SHA256_BYTES) {
      if (this.tail.length > 0) this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - SHA256_BYTES));
      this.tail = Buffer.from(chunk.subarray(chunk.length - SHA256_BYTES));
    } else {
      const joined = Buffer.concat([this.tail, chunk]);
      const cut = Math.max(0, joined.length - SHA256_BYTES);
      this.hash.update(joined.subarray(0, cut));
      this.tail = joined.subarray(cut);
    }
  }

  /** The header, once every byte has been pushed and the hash matches. */
  finish(): BackupHeader {
    if (this.header === undefined || this.expected === undefined) {
      if (this.received < PREFIX_BYTES) {
        throw new BackupFormatError(`truncated: ${this.received} bytes, too short for a Keel backup`);
      }
      throw new BackupFormatError(`truncated: ${this.received} bytes, the header is not complete`);
    }
    if (this.received < this.expected) {
      throw new BackupFormatError(`truncated: ${this.received} bytes of the ${this.expected} its header announces`);
    }
    const computed = this.hash.digest();
    if (!computed.equals(this.tail)) throw mismatch(this.tail, computed);
    return this.header;
  }

  private readHead(chunk: Buffer): void {
    this.head = Buffer.concat([this.head, chunk]);
    const head = this.head;
    if (head.length >= MAGIC.length && !head.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new BackupFormatError('not a Keel backup (bad magic: expected "KEELBKUP")');
    }
    if (head.length < PREFIX_BYTES) return;
    const version = head.readUInt32BE(MAGIC.length);
    if (version !== BACKUP_FORMAT_VERSION) {
      throw new BackupFormatError(`format version ${version} is not supported (this keel reads ${BACKUP_FORMAT_VERSION})`);
    }
    const len = head.readUInt32BE(MAGIC.length + 4);
    if (len > MAX_HEADER_BYTES) throw new BackupFormatError(`header length ${len} is implausible (at most ${MAX_HEADER_BYTES})`);
    if (head.length < PREFIX_BYTES + len) return;
    this.header = parseHeader(head.subarray(PREFIX_BYTES, PREFIX_BYTES + len));
    this.prefix = PREFIX_BYTES + len;
    this.expected = backupLength(this.prefix, this.header.dataBytes);
    this.head = Buffer.alloc(0);
  }
}

/** A whole backup, verified: its header and a view of the dump inside `buf`. */
export interface Backup {
  header: BackupHeader;
  data: Buffer;
}

/** Verifies a whole backup held in memory; throws BackupFormatError naming the problem. */
export function parseBackup(buf: Buffer): Backup {
  const v = new BackupVerifier();
  try {
    v.push(buf);
  } catch (err) {
    // An unreadable header in a file whose hash fails is damage: say so first, the header's state second.
    if (err instanceof BackupHeaderError && buf.length > SHA256_BYTES) {
      const body = buf.subarray(0, buf.length - SHA256_BYTES);
      const stored = buf.subarray(buf.length - SHA256_BYTES);
      const computed = createHash('sha256').update(body).digest();
      if (!computed.equals(stored)) throw mismatch(stored, computed, `; ${err.message}`);
    }
    throw err;
  }
  const header = v.finish();
  return { header, data: buf.subarray(v.prefixBytes, v.prefixBytes + header.dataBytes) };
}

/** A backup whose dump has been decoded and checked too, record by record. */
export interface CheckedBackup extends Backup {
  summary: SnapshotSummary;
}

/**
 * Verifies a whole backup (framing, sha256) and the store dump inside it (every record, see
 * src/kv/mvcc/snapshot-data.ts), and that the header agrees with the dump's own state record.
 */
export function checkBackup(buf: Buffer): CheckedBackup {
  const { header, data } = parseBackup(buf);
  let summary: SnapshotSummary;
  try {
    summary = decodeSnapshotData(data);
  } catch (err) {
    throw new BackupFormatError(`the store dump inside is invalid: ${(err as Error).message}`);
  }
  if (summary.applied !== header.appliedIndex || summary.revision !== header.revision) {
    throw new BackupFormatError(
      `the header says applied index ${header.appliedIndex}, revision ${header.revision}, but the dump holds ` +
        `applied index ${summary.applied}, revision ${summary.revision}`,
    );
  }
  return { header, data, summary };
}

/** Reads and checks a backup file (checkBackup); every error names the file. */
export async function readBackupFile(file: string): Promise<CheckedBackup> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new BackupFormatError(`snapshot file ${file} does not exist`);
    if (e.code === 'EISDIR') throw new BackupFormatError(`snapshot file ${file} is a directory`);
    throw new BackupFormatError(`cannot read snapshot file ${file}: ${e.message}`);
  }
  try {
    return checkBackup(buf);
  } catch (err) {
    if (err instanceof BackupFormatError) throw new BackupFormatError(`snapshot file ${file}: ${err.message}`);
    throw err;
  }
}
