// Reading keys at the current revision (the Latest table) or at an older one (the History table).

import type { KeyValue } from '../api';
import {
  HISTORY_END,
  LATEST_END,
  MAX_SUB,
  Table,
  decodeHistoryKey,
  historyKey,
  historyKeyStart,
  latestKey,
  readU64,
} from './keys';
import { CorruptDataError, decodeLatest, decodeVersion, kvOfLatest, kvOfVersion, type LatestRecord } from './records';
import type { Reader, ScanOptions } from './reader';

/** A [start, end) key range (end null: to the end of the key space). */
export interface KeyRange {
  start: Buffer;
  end: Buffer | null;
}

export async function getLatest(r: Reader, key: Buffer): Promise<LatestRecord | undefined> {
  const v = await r.get(latestKey(key));
  return v === undefined ? undefined : decodeLatest(v, latestKey(key));
}

export function latestBounds(range: KeyRange): ScanOptions {
  return { gte: latestKey(range.start), lt: range.end === null ? LATEST_END : latestKey(range.end) };
}

/** Visits the live keys of the range in key order with their newest version, until `visit` returns false. */
export async function scanLatest(
  r: Reader,
  range: KeyRange,
  visit: (key: Buffer, rec: LatestRecord) => boolean | void,
  opts: { limit?: number } = {},
): Promise<void> {
  for await (const chunk of r.scan({ ...latestBounds(range), limit: opts.limit })) {
    for (const [k, v] of chunk) {
      if (visit(k.subarray(1), decodeLatest(v, k)) === false) return;
    }
  }
}

/** Number of live keys in the range after `after` (exclusive), or from its start. */
export async function countLatest(r: Reader, range: KeyRange, after?: Buffer): Promise<number> {
  const b = latestBounds(range);
  const opts: ScanOptions = after === undefined ? b : { ...b, gte: latestKey(after), exclusiveStart: true };
  let n = 0;
  for await (const chunk of r.scanKeys(opts)) n += chunk.length;
  return n;
}

/** The key as it was at revision `rev` (its newest version <= rev), or undefined if it did not exist then. */
export async function getAt(r: Reader, key: Buffer, rev: number): Promise<KeyValue | undefined> {
  const opts: ScanOptions = { gte: historyKey(key, 0, 0), lte: historyKey(key, rev, MAX_SUB), reverse: true, limit: 1 };
  for await (const chunk of r.scan(opts)) {
    for (const [k, v] of chunk) {
      const rec = decodeVersion(v, k);
      if (rec.tombstone) return undefined;
      return kvOfVersion(key, modRevisionOf(k), rec);
    }
  }
  return undefined;
}

/** The mod revision of a History key (its last 12 bytes are revision and sub-revision). */
function modRevisionOf(k: Buffer): number {
  const rev = k.length >= 13 ? readU64(k, k.length - 12) : undefined;
  if (rev === undefined) throw new CorruptDataError('history key', k, 'bad revision');
  return rev;
}

/**
 * Visits the keys of the range that existed at revision `rev`, in key order, as they were then. This reads
 * every retained version in the range (History is ordered by key, then revision): reads at an older revision
 * cost the history they cover; reads at the current revision go to the Latest table instead.
 */
export async function scanAt(
  r: Reader,
  range: KeyRange,
  rev: number,
  visit: (kv: KeyValue) => boolean | void,
): Promise<void> {
  const opts: ScanOptions = {
    gte: historyKeyStart(range.start),
    lt: range.end === null ? HISTORY_END : historyKeyStart(range.end),
  };
  // The History key minus its revision suffix identifies the user key without decoding it.
  let group: Buffer | undefined;
  let best: [Buffer, Buffer] | undefined;
  const flush = (): boolean | void => {
    if (best === undefined) return true;
    const [k, v] = best;
    best = undefined;
    const rec = decodeVersion(v, k);
    if (rec.tombstone) return true;
    const pos = decodeHistoryKey(k);
    if (pos === undefined) throw new CorruptDataError('history key', k, 'cannot decode');
    return visit(kvOfVersion(pos.key, pos.rev, rec));
  };
  for await (const chunk of r.scan(opts)) {
    for (const pair of chunk) {
      const k = pair[0];
      if (k[0] !== Table.History || k.length < 15) throw new CorruptDataError('history key', k, 'too short');
      const prefix = k.subarray(0, k.length - 12);
      if (group === undefined || !prefix.equals(group)) {
        if (flush() === false) return;
        group = prefix;
      }
      if (modRevisionOf(k) <= rev) best = pair;
    }
  }
  flush();
}

export { kvOfLatest };
