// The checks etcd's gRPC layer runs on a request before it is proposed (server/etcdserver/api/v3rpc/key.go:
// checkPutRequest, checkTxnRequest, checkIntervals), as pure functions: the member runs them before proposing
// (through src/kv/validate.ts), and the store runs them again on what it applies, so that a command that
// reached the log some other way is refused the same way on every member instead of half-applied.

import {
  Errors,
  MAX_TXN_OPS,
  type DeleteRangeRequest,
  type KvError,
  type PutRequest,
  type RequestOp,
  type TxnRequest,
} from '../api';

type PutShape = Pick<PutRequest, 'key' | 'value' | 'lease' | 'ignoreValue' | 'ignoreLease'>;
type TxnShape = Pick<TxnRequest, 'compare' | 'success' | 'failure'>;

export function checkPutShape(req: PutShape): KvError | undefined {
  if (req.key.length === 0) return Errors.emptyKey();
  if (req.ignoreValue && req.value.length !== 0) return Errors.valueProvided();
  if (req.ignoreLease && req.lease !== undefined && req.lease !== 0) return Errors.leaseProvided();
  return undefined;
}

export function checkDeleteShape(req: Pick<DeleteRangeRequest, 'key'>): KvError | undefined {
  return req.key.length === 0 ? Errors.emptyKey() : undefined;
}

/**
 * etcd's checkTxnRequest then checkIntervals. The op limit is etcd's: at each level, the longest of the
 * compare, success and failure lists must not exceed the budget, and a nested txn gets what its parent left
 * (budget minus the parent's longest list).
 */
export function checkTxnShape(req: TxnShape, maxOps: number = MAX_TXN_OPS): KvError | undefined {
  const err = checkTxnRequest(req, maxOps);
  if (err !== undefined) return err;
  // After the size checks, so that a huge txn cannot make the overlap check quadratic (as etcd orders them).
  if (checkIntervals(req.success) === undefined || checkIntervals(req.failure) === undefined) {
    return Errors.duplicateKey();
  }
  return undefined;
}

function checkTxnRequest(req: TxnShape, maxOps: number): KvError | undefined {
  const opc = Math.max(req.compare.length, req.success.length, req.failure.length);
  if (opc > maxOps) return Errors.tooManyOps();
  for (const c of req.compare) if (c.key.length === 0) return Errors.emptyKey();
  for (const op of [...req.success, ...req.failure]) {
    const err = checkRequestOp(op, maxOps - opc);
    if (err !== undefined) return err;
  }
  return undefined;
}

function checkRequestOp(op: RequestOp, maxOps: number): KvError | undefined {
  switch (op.type) {
    case 'range':
      return op.range.key.length === 0 ? Errors.emptyKey() : undefined;
    case 'put':
      return checkPutShape(op.put);
    case 'deleteRange':
      return checkDeleteShape(op.deleteRange);
    case 'txn':
      return checkTxnRequest(op.txn, maxOps);
  }
}

/**
 * A delete's interval [begin, end) under etcd's "affine" string order, where the empty string is above
 * every other; a single key k is [k, k + "\0"). Like etcd, a range end of "\0" is taken literally here (an
 * interval that contains no key), so a from-key delete never conflicts with a put in the same txn: that is
 * etcd's behaviour, kept so that a txn etcd accepts is accepted here too.
 */
interface Interval {
  begin: Buffer;
  end: Buffer;
}

function affineLess(a: Buffer, b: Buffer): boolean {
  if (a.length === 0) return false;
  if (b.length === 0) return true;
  return Buffer.compare(a, b) < 0;
}

function deleteInterval(d: DeleteRangeRequest): Interval {
  if (d.rangeEnd !== undefined && d.rangeEnd.length !== 0) return { begin: d.key, end: d.rangeEnd };
  return { begin: d.key, end: Buffer.concat([d.key, Buffer.from([0])]) };
}

function intersectsPoint(dels: Interval[], k: Buffer): boolean {
  const p = { begin: k, end: Buffer.concat([k, Buffer.from([0])]) };
  return dels.some((d) => affineLess(d.begin, p.end) && affineLess(p.begin, d.end));
}

/** latin1 so that a Set of keys compares bytes. */
const str = (b: Buffer): string => b.toString('latin1');

/** The puts and deletes of a list of ops (nested txns included), or undefined if two of them overlap. */
function checkIntervals(reqs: RequestOp[]): { puts: Set<string>; dels: Interval[] } | undefined {
  const dels: Interval[] = [];
  for (const r of reqs) if (r.type === 'deleteRange') dels.push(deleteInterval(r.deleteRange));

  const puts = new Set<string>();
  for (const r of reqs) {
    if (r.type !== 'txn') continue;
    const then = checkIntervals(r.txn.success);
    const otherwise = checkIntervals(r.txn.failure);
    if (then === undefined || otherwise === undefined) return undefined;
    for (const k of then.puts) {
      if (puts.has(k) || intersectsPoint(dels, Buffer.from(k, 'latin1'))) return undefined;
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      // The two branches of one nested txn exclude each other: the same key in both is fine.
      if (puts.has(k) && !then.puts.has(k)) return undefined;
      if (intersectsPoint(dels, Buffer.from(k, 'latin1'))) return undefined;
      puts.add(k);
    }
    dels.push(...then.dels, ...otherwise.dels);
  }

  for (const r of reqs) {
    if (r.type !== 'put') continue;
    const k = str(r.put.key);
    if (puts.has(k) || intersectsPoint(dels, r.put.key)) return undefined;
    puts.add(k);
  }
  return { puts, dels };
}
