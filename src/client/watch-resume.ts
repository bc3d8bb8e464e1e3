// Where a watch stands, so that it can be re-created on another member with no gap and no duplicate.
//
// A watch has delivered every event up to `lastRevision` (the highest revision of events delivered, or of a
// progress notification: "everything up to here was sent"). Re-created, it must start at lastRevision + 1,
// and whatever the new member sends at or below lastRevision was seen already and is dropped.
//
// Before anything was delivered, the start is what the watch was asked for: its startRevision, or for a
// watch "from now" (startRevision 0) the revision after the one in the header of the member's `created`
// answer: that member's watch sends the revisions after its current one, so a re-created watch starting
// there misses nothing the first one would have sent, and repeats nothing. A watch "from now" that was never
// created has promised nothing yet and is simply created "from now" again.

import type { Event } from '../kv/api';

/** Every event of one revision, as WatchHandlers.onEvents gets them. */
export interface RevisionGroup {
  revision: number;
  events: Event[];
}

/** The revision an event belongs to: a put's new mod revision, a delete's own revision (etcd puts it in
 *  kv.modRevision too). */
export function eventRevision(e: Event): number {
  return e.kv.modRevision;
}

export class WatchCursor {
  private last = 0;
  /** The first revision not delivered yet; 0: "from now", nothing known yet. */
  private from: number;

  constructor(startRevision: number) {
    this.from = startRevision > 0 ? startRevision : 0;
  }

  /** The highest revision delivered (events or progress); 0 before any. */
  get lastRevision(): number {
    return this.last;
  }

  /** The startRevision to (re)create the watch with; 0 for "from the member's next revision". */
  get startRevision(): number {
    return this.from;
  }

  /** A member created the watch; `headerRevision` is the revision in the header of its answer. */
  created(headerRevision: number): void {
    if (this.from === 0) this.from = headerRevision + 1;
  }

  /** The events of one response, split by revision, without what was delivered already (or comes before
   *  where the watch starts), in ascending order. Marks them delivered. */
  accept(events: readonly Event[]): RevisionGroup[] {
    const groups: RevisionGroup[] = [];
    let group: RevisionGroup | undefined;
    for (const e of events) {
      const rev = eventRevision(e);
      if (group !== undefined && rev === group.revision) {
        group.events.push(e);
        continue;
      }
      // A revision below the next expected one was delivered already (or precedes the start): a member the
      // watch moved to sends it again. Responses are in revision order, so nothing below can follow.
      if (rev < this.from) {
        group = undefined;
        continue;
      }
      group = { revision: rev, events: [e] };
      groups.push(group);
      this.from = rev + 1;
      this.last = rev;
    }
    return groups;
  }

  /** A progress notification at `revision`; true if it says something new (then it counts as delivered). */
  progress(revision: number): boolean {
    if (revision <= this.last) return false;
    this.last = revision;
    if (revision + 1 > this.from) this.from = revision + 1;
    return true;
  }
}
