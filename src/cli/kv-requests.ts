// The requests of get / put / del built from etcdctl's flags, checked the way etcdctl checks them. Shared by
// the commands and by `keel txn`, whose request lines take the same flags.

import { keyRange } from '../client/keys';
import type { DeleteRangeRequest, PutRequest, RangeRequest, SortOrder, SortTarget } from '../kv/api';
import { UsageError } from './errors';

export interface RangeFlags {
  prefix?: boolean;
  fromKey?: boolean;
}

export interface GetFlags extends RangeFlags {
  rev?: number;
  limit?: number;
  /** etcdctl's names, any case: CREATE, KEY, MODIFY, VALUE, VERSION. */
  sortBy?: string;
  /** ASCEND or DESCEND, any case. */
  order?: string;
  keysOnly?: boolean;
  countOnly?: boolean;
  /** "l" (linearizable, the default) or "s" (serializable). */
  consistency?: string;
}

export interface PutFlags {
  /** Hex, as etcdctl; "0" or absent: no lease. */
  lease?: string;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

export interface DelFlags extends RangeFlags {
  prevKv?: boolean;
}

const SORT_TARGETS: Record<string, SortTarget> = {
  CREATE: 'CREATE',
  KEY: 'KEY',
  MODIFY: 'MOD',
  VALUE: 'VALUE',
  VERSION: 'VERSION',
};

function toBuf(b: Buffer | string): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
}

/** The key and range end of get / del / watch: [key, rangeEnd), a prefix, or every key from the key. With
 *  --prefix or --from-key an empty key means every key (etcdctl sends "\0" then). */
export function rangeOf(
  key: Buffer | string,
  rangeEnd: Buffer | string | undefined,
  f: RangeFlags,
): { key: Buffer; rangeEnd?: Buffer } {
  if (f.prefix === true && f.fromKey === true) throw new UsageError('--prefix and --from-key cannot be used together');
  if (rangeEnd !== undefined && (f.prefix === true || f.fromKey === true)) {
    throw new UsageError('too many arguments: a range end cannot be given with --prefix or --from-key');
  }
  if (rangeEnd !== undefined) return { key: toBuf(key), rangeEnd: toBuf(rangeEnd) };
  return keyRange(toBuf(key), { prefix: f.prefix, fromKey: f.fromKey });
}

export function checkNonNegativeInt(flag: string, v: number | undefined): number {
  if (v === undefined) return 0;
  if (!Number.isSafeInteger(v) || v < 0) throw new UsageError(`${flag} must be a non-negative integer (got ${v})`);
  return v;
}

function sortTarget(s: string | undefined): SortTarget | undefined {
  if (s === undefined || s === '') return undefined;
  const t = SORT_TARGETS[s.toUpperCase()];
  if (t === undefined) {
    throw new UsageError(`--sort-by: bad sort target ${JSON.stringify(s)} (expected CREATE, KEY, MODIFY, VALUE or VERSION)`);
  }
  return t;
}

function sortOrder(s: string | undefined): SortOrder | undefined {
  if (s === undefined || s === '') return undefined;
  const u = s.toUpperCase();
  if (u === 'ASCEND' || u === 'DESCEND') return u;
  throw new UsageError(`--order: bad sort order ${JSON.stringify(s)} (expected ASCEND or DESCEND)`);
}

export function buildRangeRequest(key: Buffer | string, rangeEnd: Buffer | string | undefined, f: GetFlags): RangeRequest {
  if (f.keysOnly === true && f.countOnly === true) {
    throw new UsageError('--keys-only and --count-only cannot be used together');
  }
  const consistency = f.consistency ?? 'l';
  if (consistency !== 'l' && consistency !== 's') {
    throw new UsageError(`--consistency must be l (linearizable) or s (serializable) (got ${JSON.stringify(consistency)})`);
  }
  const req: RangeRequest = { ...rangeOf(key, rangeEnd, f) };
  const limit = checkNonNegativeInt('--limit', f.limit);
  if (limit > 0) req.limit = limit;
  const rev = checkNonNegativeInt('--rev', f.rev);
  if (rev > 0) req.revision = rev;
  let target = sortTarget(f.sortBy);
  let order = sortOrder(f.order);
  // As etcd's Go client (WithSort): the server returns keys in ascending order anyway, so an ascending sort
  // by key is sent as no sort; a sort order without a target sorts by key.
  if (order !== undefined && target === undefined) target = 'KEY';
  if (target === 'KEY' && order === 'ASCEND') order = undefined;
  if (target !== undefined && !(target === 'KEY' && order === undefined)) {
    req.sortTarget = target;
    if (order !== undefined) req.sortOrder = order;
  }
  if (f.keysOnly === true) req.keysOnly = true;
  if (f.countOnly === true) req.countOnly = true;
  if (consistency === 's') req.serializable = true;
  return req;
}

/** A lease id given in hex, as etcdctl takes it ("0": none); `where` names the flag or argument. */
export function parseLeaseHex(s: string, where: string): number {
  if (!/^[0-9a-fA-F]{1,16}$/.test(s)) {
    throw new UsageError(`bad lease ID ${JSON.stringify(s)} (${where}), expecting ID in Hex`);
  }
  const v = parseInt(s, 16);
  if (!Number.isSafeInteger(v)) {
    throw new UsageError(
      `bad lease ID ${s} (${where}): above Keel's largest lease ID, ${Number.MAX_SAFE_INTEGER.toString(16)}`,
    );
  }
  return v;
}

export function buildPutRequest(key: Buffer | string, value: Buffer | string, f: PutFlags): PutRequest {
  const req: PutRequest = { key: toBuf(key), value: toBuf(value) };
  const lease = f.lease === undefined ? 0 : parseLeaseHex(f.lease, '--lease');
  if (lease !== 0) req.lease = lease;
  if (f.prevKv === true) req.prevKv = true;
  if (f.ignoreValue === true) req.ignoreValue = true;
  if (f.ignoreLease === true) req.ignoreLease = true;
  return req;
}

export function buildDeleteRequest(key: Buffer | string, rangeEnd: Buffer | string | undefined, f: DelFlags): DeleteRangeRequest {
  const req: DeleteRangeRequest = { ...rangeOf(key, rangeEnd, f) };
  if (f.prevKv === true) req.prevKv = true;
  return req;
}
