// Checks a member runs on a client request before proposing it or serving it, so that what reaches the
// Raft log is always well formed. etcd does the same in its gRPC layer (checkPutRequest and friends) and
// in the server (the request size limit); the messages are etcd's where etcd has one.

import {
  Errors,
  GrpcCode,
  KvError,
  MAX_REQUEST_BYTES,
  type DeleteRangeRequest,
  type PutRequest,
  type RangeRequest,
} from './api';

/** The bytes a request carries; the rest of a proposal (id, field names) is a few dozen bytes. etcd
 *  measures the marshalled request, so a request right at the limit fails in both. */
function payloadBytes(...parts: (Buffer | undefined)[]): number {
  let n = 0;
  for (const p of parts) n += p === undefined ? 0 : p.length;
  return n;
}

function checkKey(key: Buffer): void {
  if (key.length === 0) throw Errors.emptyKey();
}

export function validatePut(req: PutRequest): void {
  checkKey(req.key);
  if (payloadBytes(req.key, req.value) > MAX_REQUEST_BYTES) throw Errors.tooLarge();
}

export function validateRange(req: RangeRequest): void {
  checkKey(req.key);
  if (req.limit !== undefined && (!Number.isSafeInteger(req.limit) || req.limit < 0)) {
    throw new KvError(GrpcCode.InvalidArgument, `etcdserver: invalid range limit ${req.limit} (must be >= 0)`);
  }
  if (payloadBytes(req.key, req.rangeEnd) > MAX_REQUEST_BYTES) throw Errors.tooLarge();
}

export function validateDelete(req: DeleteRangeRequest): void {
  checkKey(req.key);
  if (payloadBytes(req.key, req.rangeEnd) > MAX_REQUEST_BYTES) throw Errors.tooLarge();
}
