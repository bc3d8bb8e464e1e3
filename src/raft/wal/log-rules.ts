// The rules that turn the sequence of records into the log. Shared by replay (which builds the entry
// list) and by the live WAL (which only tracks indexes), so the two can never disagree about what a
// restart will see.
//
// - An entry at or below the snapshot marker is covered by the snapshot: ignored.
// - An entry at index i <= the last index truncates the log from i on before it is appended: a new
//   leader replaced a conflicting suffix. The truncation is logical: the old records stay on disk.
// - An entry after a gap (i > last + 1) is refused: the log must stay contiguous.
// - A snapshot marker replaces the log: every entry before it is dropped (those at or below its index
//   are covered by the snapshot; any above it belonged to the log the snapshot replaced, as with
//   etcd-raft's restore), and the next entry must be marker.index + 1.

import type { SnapshotMarker } from './record';

export interface LogPosition {
  snapshot?: SnapshotMarker;
  /** The log's last index: of the last entry, or of the marker after a marker, or (when replay starts
   *  at a segment whose predecessors were released) the last index when that segment was started.
   *  0 for a fresh log, whose first entry may have any index. */
  last: number;
}

export type Placement = 'covered' | 'placed';

/**
 * Where an entry at `index` goes, given the log so far, or why it cannot go anywhere.
 * Does not modify `pos`: a placed entry makes `index` the new last (`{...pos, last: index}`).
 */
export function placeEntry(pos: LogPosition, index: number): Placement | { gap: string } {
  if (pos.snapshot && index <= pos.snapshot.index) return 'covered';
  if (pos.last > 0 && index > pos.last + 1) return { gap: `entry index ${index} leaves a gap after the last index ${pos.last}` };
  return 'placed';
}
