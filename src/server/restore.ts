// `keel snapshot restore`: builds the data dir of one member of a NEW cluster from a backup, as etcd's
// snapshot restore does. Every member of the new cluster is restored from the same file, each with its own
// name and data dir, then started with `keel node` and the same --initial-cluster and --initial-cluster-token.
//
// What the data dir gets (see ./member-dir.ts and openStorage() in ./member.ts):
//   db/          the MVCC store, restored from the dump in one batch: keys, history, revisions, compaction,
//                leases and deduplication records, applied index = the dump's (I)
//   snap/        <term 1>-<I>.snap: the dump again, with the new cluster's voters as its configuration
//   wal/         a fresh WAL holding a snapshot marker at (I, term 1) and the hard state {term 1, no vote,
//                commit I}, so the log starts right after the snapshot
//   member.json  the identity the new member will check at start: name, member id, cluster id
// Ids come from the new --initial-cluster and --initial-cluster-token (./ids.ts), so the cluster id is new
// and no member of the old cluster can talk to a restored one. The applied index is kept as it was (etcd
// resets it): nothing in the state depends on the log indexes of the old cluster except the deduplication
// records, which expire by index and stay consistent with it.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import pino, { type Logger } from 'pino';
import { MvccStore } from '../kv/mvcc/mvcc-store';
import { NONE, type Snapshot } from '../raft/core/types';
import { Snapshotter } from '../raft/snapshot/snapshotter';
import { fsyncDir, isErrno } from '../raft/wal/durable-fs';
import { Wal } from '../raft/wal/wal';
import type { CheckedBackup } from './backup-file';
import { identityOf, writeIdentity, type MemberIdentity } from './member-dir';
import type { InitialMember } from './options';

/** The term of the restored snapshot and hard state: the new cluster's first leader is elected in term 2. */
export const RESTORED_TERM = 1;

export interface RestoreOptions {
  /** A verified backup (readBackupFile / checkBackup in ./backup-file.ts). */
  backup: CheckedBackup;
  /** This member's name; must be in initialCluster. */
  name: string;
  /** Every voting member of the new cluster. */
  initialCluster: InitialMember[];
  initialClusterToken: string;
  /** Must not exist, or be an empty directory. */
  dataDir: string;
  logger?: Logger;
}

export interface RestoreResult {
  dataDir: string;
  name: string;
  memberId: string;
  clusterId: string;
  /** The snapshot's index and term in the new cluster's log. */
  index: number;
  term: number;
  revision: number;
}

/** The identity a member started with these flags computes (as KeelMember's constructor does). */
export function restoredIdentity(name: string, initialCluster: InitialMember[], token: string): MemberIdentity {
  return identityOf(name, initialCluster, token);
}

/** Throws unless `dir` is missing or an empty directory; says whether it exists. */
async function checkTarget(dir: string): Promise<boolean> {
  let entries: string[];
  try {
    entries = await fsp.readdir(dir);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return false;
    if (isErrno(err, 'ENOTDIR')) throw new Error(`data dir ${dir} exists and is not a directory`);
    throw new Error(`cannot read data dir ${dir}: ${(err as Error).message}`);
  }
  if (entries.length > 0) {
    throw new Error(
      `data dir ${dir} exists and is not empty (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); ` +
        'restore builds a new data dir and never writes into a used one',
    );
  }
  return true;
}

/** Builds the data dir; on failure removes what it wrote, leaving the dir as it found it. */
export async function restoreDataDir(o: RestoreOptions): Promise<RestoreResult> {
  const log = o.logger ?? pino({ level: 'silent' });
  if (o.initialClusterToken.trim() === '') throw new Error('the initial cluster token must not be empty');
  const identity = restoredIdentity(o.name, o.initialCluster, o.initialClusterToken);
  const { header, data, summary } = o.backup;
  if (summary.applied < 1) {
    // Raft cannot start from a snapshot at index 0, and such a store holds nothing to restore.
    throw new Error('the snapshot is of a store that never applied an entry (index 0): there is nothing to restore');
  }
  const dataDir = path.resolve(o.dataDir);
  const existed = await checkTarget(dataDir);
  const meta = { index: summary.applied, term: RESTORED_TERM, voters: identity.initialCluster.map((m) => m.id) };
  let snapshot: Snapshot = { meta, data };
  try {
    await fsp.mkdir(dataDir, { recursive: true });
    const store = await MvccStore.open(path.join(dataDir, 'db'), log);
    try {
      await store.restore(snapshot);
      // A new cluster: its members are the restored ones, with new ids, and the old cluster's alarms go.
      await store.resetCluster(
        identity.initialCluster.map((m) => ({ id: m.id, name: m.name, peerUrls: [m.peerUrl], clientUrls: [], isLearner: false })),
      );
      // The snapshot file must say the same (a leader sends it to members that need it).
      snapshot = { meta, data: await store.snapshot() };
    } finally {
      await store.close();
    }
    await new Snapshotter(path.join(dataDir, 'snap'), log).save(snapshot);
    const wal = await Wal.create(path.join(dataDir, 'wal'), { logger: log });
    try {
      await wal.saveSnapshotMarker({ index: snapshot.meta.index, term: RESTORED_TERM });
      await wal.save({ term: RESTORED_TERM, vote: NONE, commit: snapshot.meta.index }, [], true);
    } finally {
      await wal.close();
    }
    await writeIdentity(dataDir, identity);
    await fsyncDir(dataDir);
  } catch (err) {
    await undo(dataDir, existed);
    throw err;
  }
  log.info(
    {
      dataDir,
      name: o.name,
      memberId: identity.memberId,
      clusterId: identity.clusterId,
      fromCluster: header.clusterId,
      index: snapshot.meta.index,
      revision: summary.revision,
    },
    'restored snapshot',
  );
  return {
    dataDir,
    name: o.name,
    memberId: identity.memberId,
    clusterId: identity.clusterId,
    index: snapshot.meta.index,
    term: RESTORED_TERM,
    revision: summary.revision,
  };
}

async function undo(dataDir: string, existed: boolean): Promise<void> {
  if (!existed) {
    await fsp.rm(dataDir, { recursive: true, force: true });
    return;
  }
  for (const name of await fsp.readdir(dataDir).catch(() => [] as string[])) {
    await fsp.rm(path.join(dataDir, name), { recursive: true, force: true });
  }
}
