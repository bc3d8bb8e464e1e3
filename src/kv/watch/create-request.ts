// Checks and normalises a watch create request the way etcd's watch server (v3rpc/watch.go) and its
// watch stream (mvcc/watcher.go) do, with etcd's cancel reasons where etcd has one.

import { Errors, MAX_REQUEST_BYTES, type WatchCreateRequest, type WatchFilter } from '../api';

/** What a watcher watches: one key, [key, end), or every key >= key. */
export type KeyRange =
  | { kind: 'key'; key: Buffer }
  | { kind: 'range'; key: Buffer; end: Buffer }
  | { kind: 'fromKey'; key: Buffer };

export interface WatchSpec {
  range: KeyRange;
  /** 0: from the next revision. */
  startRevision: number;
  /** null: the stream picks the next free id. */
  watchId: number | null;
  noPut: boolean;
  noDelete: boolean;
  prevKv: boolean;
  progressNotify: boolean;
  fragment: boolean;
}

/** etcd's messages (mvcc/watcher.go); etcd sends them as cancel_reason without an "etcdserver:" prefix. */
export const CancelReasons = {
  emptyRange: 'mvcc: watcher range is empty',
  duplicateId: 'mvcc: duplicate watch ID provided on the WatchStream',
  /** etcd answers a negative start revision with the compacted error (watch.go). */
  compacted: Errors.compacted().message,
} as const;

const FILTERS: readonly WatchFilter[] = ['NOPUT', 'NODELETE'];
const ZERO_KEY = Buffer.from([0]);

/** The spec, or the cancel reason to answer with. */
export function parseCreate(req: WatchCreateRequest): WatchSpec | { error: string } {
  if (!Buffer.isBuffer(req.key)) return { error: 'etcdserver: watch key must be bytes' };
  if (req.rangeEnd !== undefined && !Buffer.isBuffer(req.rangeEnd)) {
    return { error: 'etcdserver: watch range_end must be bytes' };
  }
  if (req.key.length + (req.rangeEnd?.length ?? 0) > MAX_REQUEST_BYTES) return { error: Errors.tooLarge().message };

  // etcd: an empty key is the smallest key, "\0"; an empty range end is no range end; "\0" means ">= key".
  const key = req.key.length === 0 ? ZERO_KEY : req.key;
  let range: KeyRange;
  const end = req.rangeEnd;
  if (end === undefined || end.length === 0) range = { kind: 'key', key };
  else if (end.length === 1 && end[0] === 0) range = { kind: 'fromKey', key };
  else if (Buffer.compare(key, end) >= 0) return { error: CancelReasons.emptyRange };
  else range = { kind: 'range', key, end };

  const start = req.startRevision ?? 0;
  if (!Number.isSafeInteger(start)) return { error: `etcdserver: invalid watch start revision ${String(start)}` };
  if (start < 0) return { error: CancelReasons.compacted };

  let watchId: number | null = null;
  if (req.watchId !== undefined && req.watchId !== -1) {
    if (!Number.isSafeInteger(req.watchId) || req.watchId < 0) {
      const id = String(req.watchId);
      return { error: `etcdserver: invalid watch id ${id} (must be >= 0, or -1 to let the server pick)` };
    }
    watchId = req.watchId;
  }

  let noPut = false;
  let noDelete = false;
  for (const f of req.filters ?? []) {
    if (!FILTERS.includes(f)) {
      return { error: `etcdserver: unknown watch filter ${JSON.stringify(f)} (NOPUT or NODELETE)` };
    }
    if (f === 'NOPUT') noPut = true;
    else noDelete = true;
  }

  return {
    range,
    startRevision: start,
    watchId,
    noPut,
    noDelete,
    prevKv: req.prevKv === true,
    progressNotify: req.progressNotify === true,
    fragment: req.fragment === true,
  };
}
