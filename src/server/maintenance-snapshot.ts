// POST /v3/maintenance/snapshot on a member's client URL: etcd's Maintenance.Snapshot. It streams a
// consistent dump of the member's store (the state machine's snapshot: a full copy at one applied index) as a
// backup file, in the format of ./backup-file.ts: a short header, the dump, and a sha256 of both.
//
// etcd's gRPC gateway wraps each chunk of the stream in a JSON line, {"result":{"blob":"<base64>",
// "remaining_bytes":...}}, and appends the sha256 as a last blob. Keel serves the raw bytes instead
// (Content-Type application/octet-stream, with a Content-Length): base64 inside JSON costs a third more bytes
// and a decode per chunk, for a payload that only `keel snapshot save` reads. etcd's request body,
// SnapshotRequest, has no fields: the body is empty or {} (an unknown field is refused, as on every route).
//
// The dump is the one StateMachine.snapshot() returns, sent in chunks as views into it (no second copy),
// written only as fast as the client reads (backpressure), and abandoned as soon as the client disconnects.
// It is the member's local state: a follower serves its own applied state, which may lag the leader's, as in
// etcd; and no leader is needed, so that a member that lost its quorum can still be backed up.

import { createHash } from 'node:crypto';
import type http from 'node:http';
import pino, { type Logger } from 'pino';
import type { ResponseHeader } from '../kv/api';
import { Fields } from '../kv/gateway/fields';
import { META_STATE, Table } from '../kv/mvcc/keys';
import { decodeState, type MetaState } from '../kv/mvcc/records';
import { BACKUP_FORMAT_VERSION, backupLength, encodeBackupPrefix, type BackupHeader } from './backup-file';
import type { ExtraRoute } from './http-gateway';
import { parseJson, readBody } from './json';

export const SNAPSHOT_PATH = '/v3/maintenance/snapshot';

/** What the route needs from the member. */
export interface SnapshotSource {
  /** A consistent dump of the store at one applied index (StateMachine.snapshot()); throws a KvError when
   *  the member cannot serve one (starting, stopped). */
  snapshot(): Promise<Uint8Array>;
  /** The member's response header at `revision`: its cluster and member ids and its Raft term. */
  header(revision: number): ResponseHeader;
}

export interface SnapshotRouteOptions {
  logger?: Logger;
  /** Bytes handed to the socket per write (default 1 MiB; etcd sends 32 KiB gRPC messages). */
  chunkBytes?: number;
}

const DEFAULT_CHUNK_BYTES = 1024 * 1024;

/** The route to add to createClientServer's extraRoutes. */
export function maintenanceSnapshotRoute(source: SnapshotSource, opts: SnapshotRouteOptions = {}): ExtraRoute {
  const log = (opts.logger ?? pino({ level: 'silent' })).child({ route: SNAPSHOT_PATH });
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1) {
    throw new Error(`maintenanceSnapshotRoute: chunkBytes must be a positive integer (got ${chunkBytes})`);
  }
  return {
    method: 'POST',
    path: SNAPSHOT_PATH,
    handle: async (req, res) => {
      Fields.request(parseJson(await readBody(req)), '', []);
      const data = await source.snapshot();
      await sendBackup(res, backupHeaderOf(source, data), data, chunkBytes, log);
    },
  };
}

/** The backup file's header for a dump of this member's store. */
function backupHeaderOf(source: SnapshotSource, data: Uint8Array): BackupHeader {
  const state = dumpState(data);
  const h = source.header(state.revision);
  return {
    appliedIndex: state.applied,
    revision: state.revision,
    compactRevision: state.compactRevision,
    dataBytes: data.length,
    clusterId: h.clusterId,
    memberId: h.memberId,
    raftTerm: h.raftTerm,
    createdAt: new Date().toISOString(),
  };
}

/** A whole backup file in memory (the gRPC Snapshot stream sends it in chunks), and the header at its revision. */
export async function backupFile(source: SnapshotSource): Promise<{ header: ResponseHeader; bytes: Buffer }> {
  const data = await source.snapshot();
  const header = backupHeaderOf(source, data);
  const prefix = encodeBackupPrefix(header);
  const digest = createHash('sha256').update(prefix).update(data).digest();
  return { header: source.header(header.revision), bytes: Buffer.concat([prefix, data, digest]) };
}

/** Writes the backup, chunk by chunk, honouring backpressure; returns early if the client goes away. */
async function sendBackup(
  res: http.ServerResponse,
  header: BackupHeader,
  data: Uint8Array,
  chunkBytes: number,
  log: Logger,
): Promise<void> {
  const prefix = encodeBackupPrefix(header);
  const total = backupLength(prefix.length, data.length);
  const started = performance.now();
  const info = { appliedIndex: header.appliedIndex, revision: header.revision, bytes: total };
  log.info({ ...info, format: BACKUP_FORMAT_VERSION }, 'sending database snapshot to client');

  // The client may have gone while the dump was being made: then its socket is already destroyed and no
  // 'close' will come.
  const gone = (): boolean => res.destroyed || res.socket === null || res.socket.destroyed;
  // Resolves when the socket wants more, or when the client is gone (then nothing more is written).
  const drained = (): Promise<void> =>
    new Promise((resolve) => {
      if (gone()) {
        resolve();
        return;
      }
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });

  res.statusCode = 200;
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Length', total);
  const hash = createHash('sha256');
  hash.update(prefix);
  let sent = 0;
  const write = async (chunk: Uint8Array): Promise<void> => {
    sent += chunk.length;
    if (!res.write(chunk)) await drained();
  };
  await write(prefix);
  for (let off = 0; off < data.length && !gone(); off += chunkBytes) {
    const chunk = data.subarray(off, Math.min(data.length, off + chunkBytes));
    hash.update(chunk);
    await write(chunk);
  }
  if (gone()) {
    log.info({ ...info, sent }, 'snapshot stream canceled: the client disconnected');
    return;
  }
  res.end(hash.digest());
  log.info({ ...info, tookMs: Math.round(performance.now() - started) }, 'sent database snapshot to client');
}

/**
 * The state record (applied index, revisions) of a store dump, read from its first pairs without decoding
 * the rest: the member must not spend a full validation of a large dump on its event loop. The framing is
 * src/kv/mvcc/snapshot-data.ts's: "KEELMVCC" | u32 version | u64 pair count | {u32 len | key | u32 len |
 * value}*, pairs in key order, so the meta records (table 0x00) come first.
 */
export function dumpState(data: Uint8Array): MetaState {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let off = 8 + 4 + 8;
  const field = (): Buffer | undefined => {
    if (off + 4 > buf.length) return undefined;
    const len = buf.readUInt32BE(off);
    if (off + 4 + len > buf.length) return undefined;
    const b = buf.subarray(off + 4, off + 4 + len);
    off += 4 + len;
    return b;
  };
  if (buf.length < off || buf.toString('latin1', 0, 8) !== 'KEELMVCC') {
    throw new Error('the store dump is not in the keel-mvcc snapshot format');
  }
  for (;;) {
    const k = field();
    const v = field();
    if (k === undefined || v === undefined || k.length === 0 || k[0] !== Table.Meta) break;
    if (k.equals(META_STATE)) return decodeState(v, k);
  }
  throw new Error('the store dump has no state record (applied index, revision)');
}
