// Range requests, with etcd's semantics (server/etcdserver/txn/range.go): revision checks, filters, sort,
// limit with `more`, `count` of the whole range, keys_only and count_only.

import { Errors, type KeyValue, type RangeRequest, type SortOrder, type SortTarget } from '../api';
import type { LocalRange } from '../state-machine';
import { countLatest, getAt, getLatest, kvOfLatest, scanAt, scanLatest, type KeyRange } from './mvcc-read';
import type { Reader } from './reader';
import { spanOf } from './span';

/** What a range reads from and at which revisions. */
export interface RangeView {
  reader: Reader;
  /** The revision `reader`'s Latest table is at: reads at it (or at 0) use that table. */
  currentRevision: number;
  /** The highest revision a request may name (above it: Errors.futureRevision()). Inside a txn it is the
   *  revision before the txn, as in etcd's checkRange. */
  maxRevision: number;
  compactRevision: number;
}

/** Throws Errors.futureRevision() or Errors.compacted() for a revision the view cannot serve. */
export function checkRevision(view: RangeView, revision: number | undefined): void {
  const rev = revision ?? 0;
  if (rev > view.maxRevision) throw Errors.futureRevision();
  if (rev > 0 && rev < view.compactRevision) throw Errors.compacted();
}

function isDefaultOrdering(target: SortTarget, order: SortOrder): boolean {
  return order === 'NONE' || (target === 'KEY' && order === 'ASCEND');
}

function hasRevisionFilters(req: RangeRequest): boolean {
  return !!(req.minModRevision || req.maxModRevision || req.minCreateRevision || req.maxCreateRevision);
}

export async function evaluateRange(view: RangeView, req: RangeRequest): Promise<LocalRange> {
  checkRevision(view, req.revision);
  const atRev = req.revision !== undefined && req.revision > 0 ? req.revision : view.currentRevision;
  const latest = atRev === view.currentRevision;
  const revision = view.currentRevision;
  const span = spanOf(req.key, req.rangeEnd);
  if (span.kind === 'empty') return { kvs: [], more: false, count: 0, revision };

  const target: SortTarget = req.sortTarget ?? 'KEY';
  const order: SortOrder = req.sortOrder ?? 'NONE';
  const limit = req.limit !== undefined && req.limit > 0 ? req.limit : 0;
  // etcd pushes the limit down (plus one, to know `more`) unless it must sort or filter everything first.
  // With a sort target but no order it pushes it down too and then sorts only what it fetched: kept as is.
  const fetchLimit = !isDefaultOrdering(target, order) || hasRevisionFilters(req) || limit === 0 ? 0 : limit + 1;

  let kvs: KeyValue[] = [];
  let count: number;
  if (span.kind === 'single') {
    const kv = latest
      ? await getLatest(view.reader, span.key).then((r) => (r === undefined ? undefined : kvOfLatest(span.key, r)))
      : await getAt(view.reader, span.key, atRev);
    count = kv === undefined ? 0 : 1;
    if (kv !== undefined && !req.countOnly) kvs.push(kv);
  } else {
    const range: KeyRange = { start: span.start, end: span.end };
    if (latest) {
      if (req.countOnly) {
        count = await countLatest(view.reader, range);
      } else {
        await scanLatest(view.reader, range, (k, r) => void kvs.push(kvOfLatest(k, r)), { limit: fetchLimit });
        count = kvs.length;
        if (fetchLimit > 0 && kvs.length === fetchLimit) {
          // `count` is the whole range's: count the rest without reading their values.
          count += await countLatest(view.reader, range, kvs[kvs.length - 1].key);
        }
      }
    } else {
      count = 0;
      await scanAt(view.reader, range, atRev, (kv) => {
        count++;
        if (!req.countOnly && (fetchLimit === 0 || kvs.length < fetchLimit)) kvs.push(kv);
      });
    }
  }
  if (req.countOnly) return { kvs: [], more: false, count, revision };

  // etcd's count is taken before the filters.
  kvs = kvs.filter(
    (kv) =>
      !(req.maxModRevision && kv.modRevision > req.maxModRevision) &&
      !(req.minModRevision && kv.modRevision < req.minModRevision) &&
      !(req.maxCreateRevision && kv.createRevision > req.maxCreateRevision) &&
      !(req.minCreateRevision && kv.createRevision < req.minCreateRevision),
  );
  sortKvs(kvs, target, order);
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  if (req.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: Buffer.alloc(0) }));
  return { kvs, more, count, revision };
}

const compareBy: Record<SortTarget, (a: KeyValue, b: KeyValue) => number> = {
  KEY: (a, b) => Buffer.compare(a.key, b.key),
  VERSION: (a, b) => a.version - b.version,
  CREATE: (a, b) => a.createRevision - b.createRevision,
  MOD: (a, b) => a.modRevision - b.modRevision,
  VALUE: (a, b) => Buffer.compare(a.value, b.value),
};

/** etcd's sortRangeResults: a target without an order means ASCEND; KEY ASCEND is the natural order. The
 *  sort is stable here (etcd's is not), so equal values keep key order, in both directions. */
export function sortKvs(kvs: KeyValue[], target: SortTarget, requested: SortOrder): void {
  const order = target !== 'KEY' && requested === 'NONE' ? 'ASCEND' : requested;
  if (isDefaultOrdering(target, order)) return;
  if (target === 'KEY') {
    kvs.reverse();
    return;
  }
  const cmp = compareBy[target];
  kvs.sort(order === 'DESCEND' ? (a, b) => cmp(b, a) : cmp);
}
