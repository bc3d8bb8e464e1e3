// The Raft log as the core sees it: a snapshot (everything up to some index, as state-machine data), then a
// contiguous run of entries, then the commit and applied marks. The driver persists what the core hands out
// through Ready; this structure remembers what has been handed out so each entry goes to the WAL once (or
// again, after a conflict replaced it).

import { EntryType, type Entry, type Snapshot } from './types';

export class RaftLog {
  /** The newest snapshot known (taken locally or received), if any. */
  snapshot?: Snapshot;
  /** entries[0].index === offset. Entries before offset are compacted away. */
  private entries: Entry[] = [];
  private offset = 1;
  /** The term of the entry at offset - 1 (0 for the empty log), needed for the consistency check. */
  private prevTerm = 0;

  commit = 0;
  applied = 0;
  /** The first index not yet handed to the driver for persistence. */
  unstableFrom = 1;
  /** The last index handed to the driver for applying (ready() moves it; it may lead `applied`). */
  appliedHandedTo = 0;
  /** A snapshot received from the leader that the driver has not installed yet. */
  pendingSnapshot?: Snapshot;

  constructor(snapshot: Snapshot | undefined, entries: Entry[], applied: number) {
    if (snapshot) {
      this.snapshot = snapshot;
      this.offset = snapshot.meta.index + 1;
      this.prevTerm = snapshot.meta.term;
      this.commit = snapshot.meta.index;
    }
    for (let i = 1; i < entries.length; i++) {
      if (entries[i].index !== entries[0].index + i) {
        throw new Error(`raft log: recovered entries are not contiguous at index ${entries[0].index + i}`);
      }
    }
    const snapIndex = snapshot ? snapshot.meta.index : 0;
    const snapTerm = snapshot ? snapshot.meta.term : 0;
    if (entries.length > 0) {
      const first = entries[0].index;
      const last = entries[entries.length - 1].index;
      if (first > snapIndex + 1) {
        throw new Error(
          `raft log: recovered entries start at ${first} but the snapshot covers only up to ${snapIndex}: entries are missing`,
        );
      }
      const atSnap = snapIndex >= first && snapIndex <= last ? entries[snapIndex - first] : undefined;
      if (snapIndex > 0 && snapIndex >= first && (atSnap === undefined || atSnap.term !== snapTerm)) {
        // The log does not reach the snapshot, or disagrees with it (the snapshot came from a leader and
        // replaced a diverged log): everything the log held is superseded.
      } else if (first === snapIndex + 1) {
        this.entries = entries.slice();
      } else {
        // A retained tail reaching back before the snapshot. The term of the entry before the first one is
        // unknown, so the first recovered entry serves as the boundary.
        this.offset = first + 1;
        this.prevTerm = entries[0].term;
        this.entries = entries.slice(1);
      }
    }
    this.unstableFrom = this.lastIndex() + 1;
    this.applied = Math.max(applied, snapIndex);
    this.appliedHandedTo = this.applied;
  }

  /** The first index whose entry we still hold (or would hold next, for an empty log). */
  firstIndex(): number {
    return this.offset;
  }

  lastIndex(): number {
    return this.offset + this.entries.length - 1;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** The term of the entry at index, or undefined if it is compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.offset - 1) return this.prevTerm;
    if (index < this.offset - 1 || index > this.lastIndex()) return undefined;
    return this.entries[index - this.offset].term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  entry(index: number): Entry | undefined {
    if (index < this.offset || index > this.lastIndex()) return undefined;
    return this.entries[index - this.offset];
  }

  /** Entries in [lo, hi], at most maxBytes of data (but always at least one). */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo < this.offset) throw new Error(`raft log: slice from ${lo} below first index ${this.offset}`);
    hi = Math.min(hi, this.lastIndex());
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= hi; i++) {
      const e = this.entries[i - this.offset];
      bytes += e.data.length + 24;
      if (out.length > 0 && bytes > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  /** A candidate's log is at least as up to date as ours (Raft §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Appends entries at the end (the leader's own proposals). */
  append(entries: Entry[]): void {
    for (const e of entries) {
      if (e.index !== this.lastIndex() + 1) {
        throw new Error(`raft log: append of index ${e.index} after ${this.lastIndex()}`);
      }
      this.entries.push(e);
    }
  }

  /**
   * A follower's consistency check and append (Raft §5.3). Returns the last index known to match the
   * leader, or undefined if the entry at (prevIndex, prevTerm) does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, committed: number, entries: Entry[]): number | undefined {
    if (prevIndex < this.offset - 1) {
      // The leader speaks of entries we compacted: they are committed, so they match. Skip those.
      const skip = this.offset - 1 - prevIndex;
      if (skip >= entries.length) {
        this.commitTo(Math.min(committed, this.offset - 1));
        return prevIndex + entries.length;
      }
      const e = entries[skip - 1];
      return this.maybeAppend(e.index, e.term, committed, entries.slice(skip));
    }
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      if (conflict <= this.commit) {
        throw new Error(`raft log: entry ${conflict} conflicts with a committed entry (commit ${this.commit})`);
      }
      const from = conflict - (prevIndex + 1);
      this.truncateAndAppend(entries.slice(from));
    }
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** The first index where `entries` disagree with ours or go past our end; 0 if all already present. */
  private findConflict(entries: Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  private truncateAndAppend(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    if (first <= this.lastIndex()) {
      this.entries.length = first - this.offset;
      // Entries from `first` on must be (re)written to the WAL, which truncates logically on replay.
      this.unstableFrom = Math.min(this.unstableFrom, first);
    }
    this.append(entries);
  }

  /**
   * The conflict hint (etcd-io/raft's findConflictByTerm): the largest index <= index whose term is
   * <= term. Lets a leader skip a whole diverged term per round trip instead of one entry.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let i = Math.min(index, this.lastIndex());
    for (; i >= this.offset - 1; i--) {
      const t = this.term(i);
      if (t === undefined) break;
      if (t <= term) return { index: i, term: t };
    }
    return { index: this.offset - 1, term: this.prevTerm };
  }

  commitTo(index: number): void {
    if (index > this.commit) {
      if (index > this.lastIndex()) {
        throw new Error(`raft log: commit ${index} beyond last index ${this.lastIndex()}`);
      }
      this.commit = index;
    }
  }

  /** Entries not yet handed out for persistence; marks them handed out. */
  takeUnstable(): Entry[] {
    const last = this.lastIndex();
    if (this.unstableFrom > last) return [];
    const out = this.entries.slice(this.unstableFrom - this.offset);
    this.unstableFrom = last + 1;
    return out;
  }

  hasUnstable(): boolean {
    return this.unstableFrom <= this.lastIndex();
  }

  /** Committed entries not yet handed out for applying. */
  hasCommittedToHand(): boolean {
    return this.commit > this.appliedHandedTo && this.appliedHandedTo + 1 >= this.offset;
  }

  takeCommitted(maxBytes = 64 * 1024 * 1024): Entry[] {
    if (!this.hasCommittedToHand()) return [];
    const out = this.slice(this.appliedHandedTo + 1, this.commit, maxBytes);
    if (out.length > 0) this.appliedHandedTo = out[out.length - 1].index;
    return out;
  }

  appliedTo(index: number): void {
    if (index > this.applied) this.applied = index;
  }

  /** Replaces the log by a snapshot received from the leader (the driver installs the data). */
  restore(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.pendingSnapshot = snapshot;
    this.entries = [];
    this.offset = snapshot.meta.index + 1;
    this.prevTerm = snapshot.meta.term;
    this.commit = snapshot.meta.index;
    this.unstableFrom = this.offset;
    this.appliedHandedTo = snapshot.meta.index;
  }

  /**
   * The driver took a snapshot of the state machine at `snapshot.meta.index` (<= applied). Keep it, and
   * drop entries below `keepFrom` (the retained tail lets slow followers catch up from the log).
   */
  compact(snapshot: Snapshot, keepFrom: number): void {
    const idx = snapshot.meta.index;
    if (idx > this.applied) throw new Error(`raft log: snapshot ${idx} beyond applied ${this.applied}`);
    if (!this.snapshot || idx > this.snapshot.meta.index) this.snapshot = snapshot;
    const cut = Math.min(keepFrom, idx + 1, this.unstableFrom);
    if (cut > this.offset) {
      const t = this.term(cut - 1);
      if (t === undefined) return;
      this.entries = this.entries.slice(cut - this.offset);
      this.prevTerm = t;
      this.offset = cut;
    }
  }

  /**
   * The index of the first (or, with `last`, the last) ConfChange entry held in [lo, hi], or 0 if none.
   * Entries not held (compacted, or beyond the end) are skipped.
   */
  findConfChange(lo: number, hi: number, last = false): number {
    lo = Math.max(lo, this.offset);
    hi = Math.min(hi, this.lastIndex());
    if (last) {
      for (let i = hi; i >= lo; i--) if (this.entries[i - this.offset].type === EntryType.ConfChange) return i;
    } else {
      for (let i = lo; i <= hi; i++) if (this.entries[i - this.offset].type === EntryType.ConfChange) return i;
    }
    return 0;
  }

  /** For invariant checks and status: every entry we hold. */
  allEntries(): readonly Entry[] {
    return this.entries;
  }
}

export function isNoop(e: Entry): boolean {
  return e.type === EntryType.Normal && e.data.length === 0;
}
