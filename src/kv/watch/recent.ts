// The last revisions onApplied delivered, kept in memory (bounded in count and bytes).
//
// Why: a history read is asynchronous, and writes keep being applied while it runs. Without this window a
// watcher catching up under a steady write load would chase the head forever: each read would end where
// the store was when it started, never where it is when it returns. With it, the revisions applied during
// the read are bridged from memory in the same synchronous step that moves the watcher to live, so a
// watcher whose read returns within `maxRevisions` applied revisions always catches up. It also serves
// watchers that start a few revisions back, and slow watchers that resume soon, without any read.

import type { RevisionEvents } from '../state-machine';
import { eventsBytes } from './fragment';

export class RecentRevisions {
  private items: { rc: RevisionEvents; bytes: number }[] = [];
  private head = 0;
  private bytes = 0;
  /** Every revision delivered from here up to the current one is held. */
  private from: number;

  constructor(
    private readonly maxRevisions: number,
    private readonly maxBytes: number,
    currentRevision: number,
  ) {
    this.from = currentRevision + 1;
  }

  /** The lowest revision from which the window is complete up to the current revision. */
  get coveredFrom(): number {
    return this.from;
  }

  push(rc: RevisionEvents): void {
    const bytes = eventsBytes(rc.events);
    this.items.push({ rc, bytes });
    this.bytes += bytes;
    const held = (): number => this.items.length - this.head;
    while (held() > this.maxRevisions || (this.bytes > this.maxBytes && held() > 0)) {
      const old = this.items[this.head++];
      this.bytes -= old.bytes;
      this.from = old.rc.revision + 1;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }

  /** The held revisions >= rev (rev must be >= coveredFrom to get them all). */
  since(rev: number): RevisionEvents[] {
    let lo = this.head;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.items[mid].rc.revision < rev) lo = mid + 1;
      else hi = mid;
    }
    const out: RevisionEvents[] = [];
    for (let i = lo; i < this.items.length; i++) out.push(this.items[i].rc);
    return out;
  }

  /** The state was replaced: nothing held is known to be contiguous with what comes next. */
  reset(currentRevision: number): void {
    this.items = [];
    this.head = 0;
    this.bytes = 0;
    this.from = currentRevision + 1;
  }
}
