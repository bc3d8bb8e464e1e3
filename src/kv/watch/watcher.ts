// One watch: what it watches, how its events are shaped, and how far it has been served.

import type { Event } from '../api';
import type { RevisionEvents } from '../state-machine';
import type { KeyRange, WatchSpec } from './create-request';
import type { RevisionSlice } from './fragment';
import type { HubStream } from './stream';

/**
 * - new: being created (not yet in any group).
 * - synced: served live by onApplied; it has everything up to the hub's current revision.
 * - unsynced: behind (started in the past, overflowed its buffer, or the state was restored); served
 *   from history (or the hub's recent revisions) from `nextRev` until it catches up.
 * - canceled: gone; nothing more is sent for it.
 */
export type WatcherState = 'new' | 'synced' | 'unsynced' | 'canceled';

export class Watcher {
  state: WatcherState = 'new';
  /**
   * The next revision this watcher needs. Everything below it has been handed to the sink or sits in the
   * stream's queue. For a synced watcher it is the revision it went live at (or its future start revision):
   * onApplied does not touch watchers that an apply does not concern, so a synced watcher's real position
   * is max(nextRev, current revision + 1).
   */
  nextRev = 0;
  /** Revisions of this watcher's responses waiting in the stream's queue (bounded by maxBufferedRevisions). */
  buffered = 0;
  /** Bumped whenever the watcher is rolled back (buffer overflow) or leaves, so that a delivery in
   *  progress notices and stops. */
  resets = 0;
  /** Events went out since the last progress tick (etcd elides the next periodic notification then). */
  eventsSinceTick = false;

  readonly range: KeyRange;
  readonly noPut: boolean;
  readonly noDelete: boolean;
  readonly prevKv: boolean;
  readonly progressNotify: boolean;
  readonly fragment: boolean;

  constructor(
    readonly id: number,
    readonly stream: HubStream,
    spec: WatchSpec,
  ) {
    this.range = spec.range;
    this.noPut = spec.noPut;
    this.noDelete = spec.noDelete;
    this.prevKv = spec.prevKv;
    this.progressNotify = spec.progressNotify;
    this.fragment = spec.fragment;
  }

  matchesKey(key: Buffer): boolean {
    const r = this.range;
    switch (r.kind) {
      case 'key':
        return key.equals(r.key);
      case 'fromKey':
        return Buffer.compare(key, r.key) >= 0;
      case 'range':
        return Buffer.compare(key, r.key) >= 0 && Buffer.compare(key, r.end) < 0;
    }
  }

  /** Whether a filter drops the event (etcd's NOPUT / NODELETE). */
  filtersOut(e: Event): boolean {
    return e.type === 'PUT' ? this.noPut : this.noDelete;
  }

  /** The event as this watcher sends it: without prevKv unless it asked for it. */
  shape(e: Event): Event {
    return this.prevKv || e.prevKv === undefined ? e : { type: e.type, kv: e.kv };
  }

  /** This watcher's events in a run of revisions (from history or the recent window), from nextRev on. */
  select(revs: readonly RevisionEvents[], fromRev: number, toRev: number): RevisionSlice[] {
    const out: RevisionSlice[] = [];
    for (const rc of revs) {
      if (rc.revision < fromRev || rc.revision > toRev) continue;
      let events: Event[] | null = null;
      for (const e of rc.events) {
        if (!this.matchesKey(e.kv.key) || this.filtersOut(e)) continue;
        (events ??= []).push(this.shape(e));
      }
      if (events) out.push({ revision: rc.revision, events });
    }
    return out;
  }
}
