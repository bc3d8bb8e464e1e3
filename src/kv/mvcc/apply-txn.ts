// Transactions, as etcd runs them (server/etcdserver/txn/txn.go): every compare of the txn and of the nested
// txns on the chosen path is evaluated first, against the state before the txn; then every op on that path
// is checked (leases exist, keys exist for ignore_value / ignore_lease, range revisions servable); only then
// do the ops run, in order, each seeing the writes of the ones before it, all at one revision.

import {
  Errors,
  type Compare,
  type KeyValue,
  type RangeResponse,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from '../api';
import { executeDelete, executePut, header } from './apply-kv';
import { getLatest, kvOfLatest, scanLatest } from './mvcc-read';
import { checkRevision, evaluateRange, type RangeView } from './range';
import type { Reader } from './reader';
import { spanOf } from './span';
import type { WriteTxn } from './write-txn';

type Txn = Pick<TxnRequest, 'compare' | 'success' | 'failure'>;

export interface TxnEnv {
  /** Sees the txn's own writes as they are made. */
  reader: Reader;
  w: WriteTxn;
  compactRevision: number;
  leaseExists(id: number): boolean;
}

/** Which branch each txn on the executed path takes: this txn's, then its nested txns' in op order. */
interface TxnPath {
  succeeded: boolean;
  nested: TxnPath[];
}

/** Runs a txn whose state checks may refuse it: the KvError is thrown before anything is written. */
export async function executeTxnCommand(env: TxnEnv, req: Txn): Promise<TxnResponse> {
  const path = await compareToPath(env.reader, req);
  await checkTxn(env, req, path);
  return executeTxn(env, req, path);
}

async function compareToPath(reader: Reader, req: Txn): Promise<TxnPath> {
  let succeeded = true;
  for (const c of req.compare) {
    if (!(await applyCompare(reader, c))) {
      succeeded = false;
      break;
    }
  }
  const nested: TxnPath[] = [];
  for (const op of succeeded ? req.success : req.failure) {
    if (op.type === 'txn') nested.push(await compareToPath(reader, op.txn));
  }
  return { succeeded, nested };
}

const ZERO_KV: KeyValue = {
  key: Buffer.alloc(0),
  createRevision: 0,
  modRevision: 0,
  version: 0,
  value: Buffer.alloc(0),
  lease: 0,
};

/** etcd's applyCompare: holds for every key of the range; with no key at all, a VALUE compare fails and the
 *  others compare against zeros (so "version = 0" holds for a missing key). */
async function applyCompare(reader: Reader, c: Compare): Promise<boolean> {
  const span = spanOf(c.key, c.rangeEnd);
  if (span.kind === 'single') {
    const rec = await getLatest(reader, span.key);
    if (rec !== undefined) return compareKv(c, kvOfLatest(span.key, rec));
  } else if (span.kind === 'range') {
    let any = false;
    let holds = true;
    await scanLatest(reader, { start: span.start, end: span.end }, (k, rec) => {
      any = true;
      holds = compareKv(c, kvOfLatest(k, rec));
      return holds;
    });
    if (any) return holds;
  }
  return c.target === 'VALUE' ? false : compareKv(c, ZERO_KV);
}

function compareKv(c: Compare, kv: KeyValue): boolean {
  let r: number;
  switch (c.target) {
    case 'VALUE':
      r = Buffer.compare(kv.value, c.value);
      break;
    case 'CREATE':
      r = Math.sign(kv.createRevision - c.createRevision);
      break;
    case 'MOD':
      r = Math.sign(kv.modRevision - c.modRevision);
      break;
    case 'VERSION':
      r = Math.sign(kv.version - c.version);
      break;
    case 'LEASE':
      r = Math.sign(kv.lease - c.lease);
      break;
  }
  switch (c.result) {
    case 'EQUAL':
      return r === 0;
    case 'NOT_EQUAL':
      return r !== 0;
    case 'GREATER':
      return r > 0;
    case 'LESS':
      return r < 0;
  }
}

/** etcd's checkTxn: the first op on the path the state refuses throws its error. */
async function checkTxn(env: TxnEnv, req: Txn, path: TxnPath): Promise<void> {
  let n = 0;
  for (const op of path.succeeded ? req.success : req.failure) {
    switch (op.type) {
      case 'range':
        checkRevision(rangeView(env), op.range.revision);
        break;
      case 'put': {
        const p = op.put;
        if ((p.ignoreValue || p.ignoreLease) && (await getLatest(env.reader, p.key)) === undefined) {
          throw Errors.keyNotFound();
        }
        if (p.lease !== undefined && p.lease !== 0 && !env.leaseExists(p.lease)) throw Errors.leaseNotFound();
        break;
      }
      case 'deleteRange':
        break;
      case 'txn':
        await checkTxn(env, op.txn, path.nested[n++]);
        break;
    }
  }
}

/** Ranges in a txn read its own writes at revision 0; an explicit revision may not pass the revision the
 *  txn started from (etcd's checkRange against the read view). */
function rangeView(env: TxnEnv): RangeView {
  return {
    reader: env.reader,
    currentRevision: env.w.currentRev,
    maxRevision: env.w.beginRev,
    compactRevision: env.compactRevision,
  };
}

async function executeTxn(env: TxnEnv, req: Txn, path: TxnPath): Promise<TxnResponse> {
  const responses: ResponseOp[] = [];
  let n = 0;
  for (const op of path.succeeded ? req.success : req.failure) {
    responses.push(await executeOp(env, op, () => path.nested[n++]));
  }
  return { header: header(env.w.currentRev), succeeded: path.succeeded, responses };
}

async function executeOp(env: TxnEnv, op: RequestOp, nextPath: () => TxnPath): Promise<ResponseOp> {
  switch (op.type) {
    case 'range': {
      const r = await evaluateRange(rangeView(env), op.range);
      const range: RangeResponse = { header: header(r.revision), kvs: r.kvs, more: r.more, count: r.count };
      return { type: 'range', range };
    }
    case 'put':
      return { type: 'put', put: await executePut(env.reader, env.w, op.put) };
    case 'deleteRange':
      return { type: 'deleteRange', deleteRange: await executeDelete(env.reader, env.w, op.deleteRange) };
    case 'txn':
      return { type: 'txn', txn: await executeTxn(env, op.txn, nextPath()) };
  }
}
