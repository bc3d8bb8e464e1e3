// Questions about a txn's shape that do not depend on the state: shared by the member (a txn without
// writes is served as a read, by ReadIndex, without going through the log, as etcd does) and the client
// (such a txn is safe to retry).

import type { RequestOp, TxnRequest } from './api';

function opWrites(op: RequestOp): boolean {
  switch (op.type) {
    case 'range':
      return false;
    case 'put':
    case 'deleteRange':
      return true;
    case 'txn':
      return txnHasWrites(op.txn);
  }
}

/** Whether either branch (nested txns included) puts or deletes. */
export function txnHasWrites(req: Pick<TxnRequest, 'success' | 'failure'>): boolean {
  return req.success.some(opWrites) || req.failure.some(opWrites);
}
