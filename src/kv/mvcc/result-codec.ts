// The stored form of a deduplicated command's result (the Dedup table): msgpack of plain maps, decoded with
// checks, because it comes from disk or from a snapshot another member sent.

import { KvError, type GrpcCode, type KeyValue, type ResponseOp, type TxnResponse } from '../api';
import { packr } from '../proposal';
import type { CommandResult } from '../state-machine';
import { header } from './apply-kv';

/** The results a deduplicated command can have. */
export type DedupResult = Extract<CommandResult, { op: 'put' | 'delete' | 'txn' | 'error' }>;

type Wire = Record<string, unknown>;

function kvWire(kv: KeyValue): Wire {
  return {
    key: kv.key,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  };
}

function opWire(op: ResponseOp): Wire {
  switch (op.type) {
    case 'range': {
      const r = op.range;
      return { type: 'range', revision: r.header.revision, kvs: r.kvs.map(kvWire), more: r.more, count: r.count };
    }
    case 'put': {
      const w: Wire = { type: 'put', revision: op.put.header.revision };
      if (op.put.prevKv !== undefined) w.prevKv = kvWire(op.put.prevKv);
      return w;
    }
    case 'deleteRange': {
      const d = op.deleteRange;
      return { type: 'deleteRange', revision: d.header.revision, deleted: d.deleted, prevKvs: d.prevKvs.map(kvWire) };
    }
    case 'txn':
      return { type: 'txn', ...txnWire(op.txn) };
  }
}

function txnWire(t: TxnResponse): Wire {
  return { revision: t.header.revision, succeeded: t.succeeded, responses: t.responses.map(opWire) };
}

export function encodeResult(r: DedupResult): Buffer {
  let w: Wire;
  switch (r.op) {
    case 'put':
      w = { op: 'put', revision: r.revision };
      if (r.prevKv !== undefined) w.prevKv = kvWire(r.prevKv);
      break;
    case 'delete':
      w = { op: 'delete', revision: r.revision, deleted: r.deleted, prevKvs: r.prevKvs.map(kvWire) };
      break;
    case 'txn':
      w = { op: 'txn', revision: r.revision, txn: txnWire(r.txn) };
      break;
    case 'error':
      w = { op: 'error', revision: r.revision, code: r.error.code, message: r.error.message };
      break;
  }
  return packr.pack(w);
}

class BadResult extends Error {}

function map(v: unknown, what: string): Wire {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new BadResult(`${what} is not a map`);
  }
  return v as Wire;
}

function count(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new BadResult(`${what} is not a count`);
  return v;
}

function bin(v: unknown, what: string): Buffer {
  if (!(v instanceof Uint8Array)) throw new BadResult(`${what} is not binary`);
  return Buffer.from(v);
}

function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new BadResult(`${what} is not a boolean`);
  return v;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new BadResult(`${what} is not a list`);
  return v;
}

function kvOf(v: unknown, what: string): KeyValue {
  const o = map(v, what);
  return {
    key: bin(o.key, `${what}.key`),
    createRevision: count(o.createRevision, `${what}.createRevision`),
    modRevision: count(o.modRevision, `${what}.modRevision`),
    version: count(o.version, `${what}.version`),
    value: bin(o.value, `${what}.value`),
    lease: count(o.lease, `${what}.lease`),
  };
}

/** Nested txns are at most ~128 deep (the op budget shrinks per level); anything deeper is not ours. */
const MAX_DEPTH = 200;

function txnOf(o: Wire, what: string, depth: number): TxnResponse {
  if (depth > MAX_DEPTH) throw new BadResult(`${what} is nested too deeply`);
  return {
    header: header(count(o.revision, `${what}.revision`)),
    succeeded: bool(o.succeeded, `${what}.succeeded`),
    responses: list(o.responses, `${what}.responses`).map((r, i) => opOf(r, `${what}.responses[${i}]`, depth)),
  };
}

function opOf(v: unknown, what: string, depth: number): ResponseOp {
  const o = map(v, what);
  const h = (): ReturnType<typeof header> => header(count(o.revision, `${what}.revision`));
  switch (o.type) {
    case 'range':
      return {
        type: 'range',
        range: {
          header: h(),
          kvs: list(o.kvs, `${what}.kvs`).map((kv, i) => kvOf(kv, `${what}.kvs[${i}]`)),
          more: bool(o.more, `${what}.more`),
          count: count(o.count, `${what}.count`),
        },
      };
    case 'put': {
      const put: { header: ReturnType<typeof header>; prevKv?: KeyValue } = { header: h() };
      if (o.prevKv !== undefined) put.prevKv = kvOf(o.prevKv, `${what}.prevKv`);
      return { type: 'put', put };
    }
    case 'deleteRange':
      return {
        type: 'deleteRange',
        deleteRange: {
          header: h(),
          deleted: count(o.deleted, `${what}.deleted`),
          prevKvs: list(o.prevKvs, `${what}.prevKvs`).map((kv, i) => kvOf(kv, `${what}.prevKvs[${i}]`)),
        },
      };
    case 'txn':
      return { type: 'txn', txn: txnOf(o, what, depth + 1) };
    default:
      throw new BadResult(`${what}.type is not a response type`);
  }
}

/** Throws an Error saying what is wrong if `data` is not an encoded result. */
export function decodeResult(data: Uint8Array): DedupResult {
  try {
    let raw: unknown;
    try {
      raw = packr.unpack(data);
    } catch (err) {
      throw new BadResult(`not msgpack (${(err as Error).message})`);
    }
    const o = map(raw, 'result');
    const revision = count(o.revision, 'result.revision');
    switch (o.op) {
      case 'put': {
        const r: DedupResult = { op: 'put', revision };
        if (o.prevKv !== undefined) r.prevKv = kvOf(o.prevKv, 'result.prevKv');
        return r;
      }
      case 'delete':
        return {
          op: 'delete',
          revision,
          deleted: count(o.deleted, 'result.deleted'),
          prevKvs: list(o.prevKvs, 'result.prevKvs').map((kv, i) => kvOf(kv, `result.prevKvs[${i}]`)),
        };
      case 'txn':
        return { op: 'txn', revision, txn: txnOf(map(o.txn, 'result.txn'), 'result.txn', 0) };
      case 'error': {
        if (typeof o.message !== 'string') throw new BadResult('result.message is not a string');
        return { op: 'error', revision, error: new KvError(count(o.code, 'result.code') as GrpcCode, o.message) };
      }
      default:
        throw new BadResult('result.op is not put, delete, txn or error');
    }
  } catch (err) {
    if (err instanceof BadResult) throw new Error(`invalid deduplicated result: ${err.message}`);
    throw err;
  }
}
