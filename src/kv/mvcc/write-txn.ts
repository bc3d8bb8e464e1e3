// The changes of one write command, all at one revision with sub-revisions 0, 1, 2... in the order made.
// Each change writes the Latest table, a History version and an Events entry (plus the lease index) into
// the command's overlay, and records the event the watch hub gets.

import type { Event, KeyValue } from '../api';
import { eventKey, historyKey, latestKey, leaseKeysKey } from './keys';
import { TOMBSTONE, encodeEvent, encodeLatest, encodeVersion, kvOfLatest, type LatestRecord } from './records';
import type { Overlay } from './reader';

export class WriteTxn {
  /** The revision of this command's changes. */
  readonly rev: number;
  private sub = 0;
  readonly events: Event[] = [];

  constructor(
    private readonly overlay: Overlay,
    /** The store's revision before the command. */
    readonly beginRev: number,
  ) {
    this.rev = beginRev + 1;
  }

  get changed(): boolean {
    return this.sub > 0;
  }

  /** The revision as the command's own ops see it: bumped once anything changed (etcd's storeTxnWrite). */
  get currentRev(): number {
    return this.changed ? this.rev : this.beginRev;
  }

  /** Puts `key` on top of `prev` (its current version, if it exists). Returns the new version. */
  put(key: Buffer, value: Buffer, lease: number, prev: LatestRecord | undefined): KeyValue {
    const sub = this.sub++;
    const rec: LatestRecord = {
      value,
      createRevision: prev === undefined ? this.rev : prev.createRevision,
      modRevision: this.rev,
      modSub: sub,
      version: prev === undefined ? 1 : prev.version + 1,
      lease,
    };
    this.overlay.put(latestKey(key), encodeLatest(rec));
    this.overlay.put(historyKey(key, this.rev, sub), encodeVersion(rec));
    this.overlay.put(
      eventKey(this.rev, sub),
      encodeEvent({ key, tombstone: false, prev: prev && { rev: prev.modRevision, sub: prev.modSub } }),
    );
    // A put without a lease detaches the key from the lease it had, as in etcd.
    const oldLease = prev?.lease ?? 0;
    if (oldLease !== lease) {
      if (oldLease !== 0) this.overlay.del(leaseKeysKey(oldLease, key));
      if (lease !== 0) this.overlay.put(leaseKeysKey(lease, key), Buffer.alloc(0));
    }
    const kv = kvOfLatest(key, rec);
    const ev: Event = { type: 'PUT', kv };
    if (prev !== undefined) ev.prevKv = kvOfLatest(key, prev);
    this.events.push(ev);
    return kv;
  }

  /** Deletes `key`, whose current version is `prev`: a tombstone at this revision. */
  del(key: Buffer, prev: LatestRecord): void {
    const sub = this.sub++;
    this.overlay.del(latestKey(key));
    this.overlay.put(historyKey(key, this.rev, sub), TOMBSTONE);
    this.overlay.put(
      eventKey(this.rev, sub),
      encodeEvent({ key, tombstone: true, prev: { rev: prev.modRevision, sub: prev.modSub } }),
    );
    if (prev.lease !== 0) this.overlay.del(leaseKeysKey(prev.lease, key));
    this.events.push({ type: 'DELETE', kv: deletedKv(key, this.rev), prevKv: kvOfLatest(key, prev) });
  }
}

/** A DELETE event's kv: the key and the delete's revision, everything else zero, as etcd sends it. */
export function deletedKv(key: Buffer, rev: number): KeyValue {
  return { key, createRevision: 0, modRevision: rev, version: 0, value: Buffer.alloc(0), lease: 0 };
}
