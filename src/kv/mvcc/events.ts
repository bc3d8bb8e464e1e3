// Reading the event log: every change of a run of revisions, as the watch hub sends them.

import type { Event } from '../api';
import type { RevisionEvents } from '../state-machine';
import { MAX_SUB, decodeEventKey, eventKey, historyKey } from './keys';
import { CorruptDataError, decodeEvent, decodeVersion, kvOfVersion, type EventPointer } from './records';
import type { Reader } from './reader';
import { deletedKv } from './write-txn';

/**
 * The events of revisions [fromRev, toRev], at most `maxRevisions` revisions (each complete), ascending.
 * prevKv is filled when the key existed before the change and that version is still in history: a version
 * replaced at or below the compact revision is gone (as in etcd, whose watch reads prevKv at rev - 1, which
 * fails once compacted), so events at the compact revision itself may lack it.
 */
export async function readEvents(
  reader: Reader,
  fromRev: number,
  toRev: number,
  maxRevisions: number,
): Promise<RevisionEvents[]> {
  const out: RevisionEvents[] = [];
  if (fromRev > toRev || maxRevisions <= 0) return out;
  const bounds = { gte: eventKey(fromRev, 0), lte: eventKey(toRev, MAX_SUB) };
  for await (const chunk of reader.scan(bounds)) {
    const items: { rev: number; sub: number; ev: EventPointer }[] = [];
    let full = false;
    let distinct = out.length;
    let lastRev = out.length > 0 ? out[out.length - 1].revision : -1;
    for (const [k, v] of chunk) {
      const pos = decodeEventKey(k);
      if (pos === undefined) throw new CorruptDataError('event key', k, 'bad revision');
      if (pos.rev !== lastRev) {
        if (distinct === maxRevisions) {
          full = true;
          break;
        }
        distinct++;
        lastRev = pos.rev;
      }
      items.push({ ...pos, ev: decodeEvent(v, k) });
    }
    // One read for every version these events need: the new one of each put and the one each replaced.
    const keys: Buffer[] = [];
    const want = (k: Buffer): number => keys.push(k) - 1;
    const slots = items.map((it) => ({
      current: it.ev.tombstone ? -1 : want(historyKey(it.ev.key, it.rev, it.sub)),
      previous: it.ev.prev === undefined ? -1 : want(historyKey(it.ev.key, it.ev.prev.rev, it.ev.prev.sub)),
    }));
    const got = await reader.getMany(keys);
    const fetched = (slot: number): [Buffer, Buffer] | undefined => {
      const v = slot < 0 ? undefined : got[slot];
      return v === undefined ? undefined : [keys[slot], v];
    };
    items.forEach((it, i) => {
      const ev = toEvent(it, fetched(slots[i].current), fetched(slots[i].previous));
      const last = out[out.length - 1];
      if (last !== undefined && last.revision === it.rev) last.events.push(ev);
      else out.push({ revision: it.rev, events: [ev] });
    });
    if (full) break;
  }
  return out;
}

/** `current` and `previous`: the History pairs of the new version and of the one replaced, if retained. */
function toEvent(
  it: { rev: number; sub: number; ev: EventPointer },
  current: [Buffer, Buffer] | undefined,
  previous: [Buffer, Buffer] | undefined,
): Event {
  let prevKv;
  if (previous !== undefined && it.ev.prev !== undefined) {
    const p = decodeVersion(previous[1], previous[0]);
    if (!p.tombstone) prevKv = kvOfVersion(it.ev.key, it.ev.prev.rev, p);
  }
  let ev: Event;
  if (it.ev.tombstone) {
    ev = { type: 'DELETE', kv: deletedKv(it.ev.key, it.rev) };
  } else {
    // Compaction keeps every version made at or above the compact revision.
    if (current === undefined) {
      throw new CorruptDataError('event record', eventKey(it.rev, it.sub), 'the version it put is missing from history');
    }
    const r = decodeVersion(current[1], current[0]);
    if (r.tombstone) throw new CorruptDataError('history record', current[0], 'a tombstone where a put was logged');
    ev = { type: 'PUT', kv: kvOfVersion(it.ev.key, it.rev, r) };
  }
  if (prevKv !== undefined) ev.prevKv = prevKv;
  return ev;
}
