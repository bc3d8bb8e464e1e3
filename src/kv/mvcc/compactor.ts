// Physical compaction: removing the history that a compaction (already recorded, so reads below it fail)
// made unreachable, in bounded batches that the store interleaves with apply().
//
// What goes, for compact revision C (etcd's rule): every version of a key that a newer version at or below
// C replaced, and every tombstone below C; so each key keeps its newest version <= C unless that is a
// tombstone, and a read at C still works. The event log keeps revisions >= C (events(C) still works).
//
// Revision C itself keeps all its changes until the next compaction: its tombstones, and a version that a
// later change of the same revision replaced (a txn may put a key and then delete it through a from-key
// range, which etcd's overlap check lets through). Dropping them would not change a read at C, but it would
// drop a put from events(C), which must return every change of C.
//
// Walking the event log from the cursor up to C finds all of it without a search: each event names the
// version it replaced (EventPointer.prev), which is garbage once the event is at or below C; a tombstone
// event is garbage itself. Deleting a LevelDB key that is already gone is a no-op, so a batch can be redone
// (after a crash, or when a new compaction moves the cursor back) without harm.

import { MAX_SUB, META_COMPACTION, decodeEventKey, eventKey, historyKey } from './keys';
import { CorruptDataError, decodeEvent, encodeCompaction, type CompactionProgress } from './records';
import type { Reader } from './reader';

export const DEFAULT_COMPACTION_BATCH_KEYS = 1000;

export type BatchOp = { type: 'del'; key: Buffer } | { type: 'put'; key: Buffer; value: Buffer };

/** The next batch towards compact revision `target`: the LevelDB ops (its own progress record included)
 *  and the progress after it. */
export async function compactionBatch(
  reader: Reader,
  target: number,
  progress: CompactionProgress,
  batchKeys: number,
): Promise<{ ops: BatchOp[]; progress: CompactionProgress }> {
  const ops: BatchOp[] = [];
  let n = 0;
  let last: { rev: number; sub: number } | undefined;
  const bounds = {
    gte: eventKey(progress.cursor.rev, progress.cursor.sub),
    lte: eventKey(target, MAX_SUB),
    limit: batchKeys,
  };
  for await (const chunk of reader.scan(bounds)) {
    for (const [k, v] of chunk) {
      const pos = decodeEventKey(k);
      if (pos === undefined) throw new CorruptDataError('event key', k, 'bad revision');
      const ev = decodeEvent(v, k);
      if (ev.prev !== undefined && ev.prev.rev < target) {
        ops.push({ type: 'del', key: historyKey(ev.key, ev.prev.rev, ev.prev.sub) });
      }
      if (pos.rev < target) {
        if (ev.tombstone) ops.push({ type: 'del', key: historyKey(ev.key, pos.rev, pos.sub) });
        ops.push({ type: 'del', key: k });
      }
      last = pos;
      n++;
    }
  }
  const next: CompactionProgress =
    n < batchKeys || last === undefined
      ? // Nothing left up to the target. The cursor stays at the target's first event: those events are kept
        // now, and the next compaction must revisit them to drop them.
        { done: target, cursor: { rev: target, sub: 0 } }
      : { done: progress.done, cursor: nextPos(last) };
  ops.push({ type: 'put', key: META_COMPACTION, value: encodeCompaction(next) });
  return { ops, progress: next };
}

function nextPos(p: { rev: number; sub: number }): { rev: number; sub: number } {
  return p.sub === MAX_SUB ? { rev: p.rev + 1, sub: 0 } : { rev: p.rev, sub: p.sub + 1 };
}

/** The progress once a new compaction to a higher revision is recorded: events at the old target were kept
 *  (they were not below it) and must be visited again, so the cursor moves back to them if it passed them. */
export function retarget(progress: CompactionProgress, oldTarget: number): CompactionProgress {
  const c = progress.cursor;
  if (c.rev > oldTarget || (c.rev === oldTarget && c.sub > 0)) {
    return { done: progress.done, cursor: { rev: oldTarget, sub: 0 } };
  }
  return progress;
}
