// How big a watch response is, where to cut a run of revisions into responses, and how etcd's `fragment`
// option splits one response that is too large.
//
// Sizes are estimates of the encoded response (etcd measures the protobuf; Keel's streams use JSON or
// msgpackr). What matters is that they grow with the bytes carried, so that a response stays near the
// limit whatever the transport.

import type { Event, KeyValue } from '../api';

/** Field tags and varints of a KeyValue (four revisions/versions, a lease, two length prefixes). */
const KV_OVERHEAD = 48;
/** Event type, tags and length prefixes of an Event. */
const EVENT_OVERHEAD = 8;
/** Header (ids, revision, term), watch id and flags of a response. */
export const RESPONSE_OVERHEAD = 64;

function kvBytes(kv: KeyValue): number {
  return kv.key.length + kv.value.length + KV_OVERHEAD;
}

export function eventBytes(e: Event): number {
  return EVENT_OVERHEAD + kvBytes(e.kv) + (e.prevKv ? kvBytes(e.prevKv) : 0);
}

export function eventsBytes(events: readonly Event[]): number {
  let n = RESPONSE_OVERHEAD;
  for (const e of events) n += eventBytes(e);
  return n;
}

/** The events of one revision, already shaped for one watcher (range, filters, prevKv). */
export interface RevisionSlice {
  revision: number;
  events: Event[];
}

/** A run of whole revisions that goes out as one response. */
export interface ResponseBody {
  events: Event[];
  /** Revisions it holds (each with at least one event). */
  revisions: number;
  /** Its first revision. */
  fromRev: number;
}

/**
 * Packs consecutive revisions into responses, cutting only between revisions (so every revision's events
 * stay in one response) and before a response would pass `maxBytes`. A single revision larger than that
 * goes out alone and whole; `fragment` (below) is the only way to split it, as in etcd.
 */
export function packRevisions(slices: readonly RevisionSlice[], maxBytes: number): ResponseBody[] {
  const out: ResponseBody[] = [];
  let cur: ResponseBody | null = null;
  let curBytes = 0;
  for (const s of slices) {
    if (s.events.length === 0) continue;
    const bytes = eventsBytes(s.events) - RESPONSE_OVERHEAD;
    if (cur && curBytes + bytes > maxBytes) {
      out.push(cur);
      cur = null;
    }
    if (!cur) {
      cur = { events: [], revisions: 0, fromRev: s.revision };
      curBytes = RESPONSE_OVERHEAD;
    }
    for (const e of s.events) cur.events.push(e);
    cur.revisions += 1;
    curBytes += bytes;
  }
  if (cur) out.push(cur);
  return out;
}

/**
 * etcd's sendFragments: a response under `maxBytes`, or with fewer than two events, goes out whole;
 * otherwise it is cut into pieces that each stay under `maxBytes` (a piece always holds at least one
 * event). Every piece but the last carries fragment: true, and the client joins them back.
 */
export function splitFragments(events: Event[], maxBytes: number): Event[][] {
  if (events.length < 2 || eventsBytes(events) < maxBytes) return [events];
  const pieces: Event[][] = [];
  let cur: Event[] = [];
  let curBytes = RESPONSE_OVERHEAD;
  for (const e of events) {
    const b = eventBytes(e);
    if (cur.length > 0 && curBytes + b >= maxBytes) {
      pieces.push(cur);
      cur = [];
      curBytes = RESPONSE_OVERHEAD;
    }
    cur.push(e);
    curBytes += b;
  }
  pieces.push(cur);
  return pieces;
}
