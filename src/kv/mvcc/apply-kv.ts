// Put and delete-range as one op of a write command (standalone or inside a txn), with etcd's semantics
// (server/etcdserver/txn/txn.go: put, deleteRange). State checks that must refuse the whole command before
// anything is written (unknown lease) are the caller's.

import {
  Errors,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type KeyValue,
  type PutRequest,
  type PutResponse,
  type ResponseHeader,
} from '../api';
import { getLatest, kvOfLatest, scanLatest } from './mvcc-read';
import type { LatestRecord } from './records';
import type { Reader } from './reader';
import { spanOf } from './span';
import type { WriteTxn } from './write-txn';

/** A header as the store fills it: the revision; the member fills cluster, member and term. */
export function header(revision: number): ResponseHeader {
  return { clusterId: '', memberId: '', revision, raftTerm: 0 };
}

export async function executePut(
  reader: Reader,
  w: WriteTxn,
  req: Omit<PutRequest, 'requestId'>,
): Promise<PutResponse> {
  const prev = await getLatest(reader, req.key);
  if ((req.ignoreValue || req.ignoreLease) && prev === undefined) throw Errors.keyNotFound();
  const value = req.ignoreValue && prev !== undefined ? prev.value : req.value;
  const lease = req.ignoreLease && prev !== undefined ? prev.lease : (req.lease ?? 0);
  w.put(req.key, value, lease, prev);
  const resp: PutResponse = { header: header(w.rev) };
  if (req.prevKv && prev !== undefined) resp.prevKv = kvOfLatest(req.key, prev);
  return resp;
}

/** The live keys a delete-range covers, in key order, with their current versions. */
export async function keysToDelete(
  reader: Reader,
  key: Buffer,
  rangeEnd: Buffer | undefined,
): Promise<[Buffer, LatestRecord][]> {
  const span = spanOf(key, rangeEnd);
  if (span.kind === 'empty') return [];
  if (span.kind === 'single') {
    const rec = await getLatest(reader, span.key);
    return rec === undefined ? [] : [[span.key, rec]];
  }
  const found: [Buffer, LatestRecord][] = [];
  await scanLatest(reader, { start: span.start, end: span.end }, (k, rec) => void found.push([Buffer.from(k), rec]));
  return found;
}

export async function executeDelete(
  reader: Reader,
  w: WriteTxn,
  req: Omit<DeleteRangeRequest, 'requestId'>,
): Promise<DeleteRangeResponse> {
  const found = await keysToDelete(reader, req.key, req.rangeEnd);
  const prevKvs: KeyValue[] = [];
  for (const [k, rec] of found) {
    w.del(k, rec);
    if (req.prevKv) prevKvs.push(kvOfLatest(k, rec));
  }
  // Deleting nothing changes nothing: no revision bump (etcd).
  return { header: header(w.currentRev), deleted: found.length, prevKvs };
}
