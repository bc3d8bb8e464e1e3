// Which requests KeelClient may send again, and which failures are worth another member.

import { Errors, GrpcCode, type KvError, type RequestOp, type TxnRequest } from '../kv/api';

/**
 * - read: no effect; sent again (anywhere) after any failure that is not the member's final answer.
 * - dedup: a write carrying a ClientRequestId: the state machine applies one id once and answers a repeat
 *   with the first result, so it is sent again, with the same id, after a lost connection, an Unavailable
 *   answer or a timeout.
 * - once: a write without request id (lease grant/revoke/keep-alive, compaction): once it may have reached a
 *   member it is never sent again; a failure then is an OutcomeUnknownError.
 */
export type RetryPolicy = 'read' | 'dedup' | 'once';

/** Codes that say the member could not serve the request now — not an answer about the request itself. */
const MEMBER_FAILURE_CODES: ReadonlySet<GrpcCode> = new Set([
  GrpcCode.Unavailable,
  GrpcCode.DeadlineExceeded,
  // A member whose WAL or backend write failed answers Internal ("etcdserver: <cause>") to everything.
  GrpcCode.Internal,
]);

/** Answers given before the member did anything with the request: even a `once` write may go elsewhere. */
const NOT_SERVED_MESSAGES: ReadonlySet<string> = new Set([
  Errors.starting().message,
  // A member removed from the cluster refuses everything before looking at it.
  Errors.memberRemoved().message,
  // The stream's in-flight bound (src/server/stream-session.ts).
  'etcdserver: too many requests',
]);

/** The member's own "cannot tell": a retried write whose id left the deduplication window. */
export function isOutcomeUnknownAnswer(err: KvError): boolean {
  return err.code === GrpcCode.FailedPrecondition && err.message === Errors.requestIdExpired().message;
}

export function isMemberFailure(err: KvError): boolean {
  return MEMBER_FAILURE_CODES.has(err.code);
}

export function wasNotServed(err: KvError): boolean {
  return err.code === GrpcCode.Unavailable && NOT_SERVED_MESSAGES.has(err.message);
}

function opIsRead(op: RequestOp): boolean {
  return op.type === 'range' || (op.type === 'txn' && isReadOnlyTxn(op.txn));
}

/** A txn with only ranges (or read-only txns) in both branches: it changes nothing whichever runs. */
export function isReadOnlyTxn(req: TxnRequest): boolean {
  return req.success.every(opIsRead) && req.failure.every(opIsRead);
}
