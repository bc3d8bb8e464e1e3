// Encoding of Entry.data for normal entries: a msgpack map {id, requestId?, cmd} (see Proposal in
// state-machine.ts). Decoding validates the whole shape, nested txns included, because the bytes come from
// the replicated log: a member must never crash on them, and every member must reach the same verdict (a
// malformed entry is a no-op everywhere). What is well-formed but wrong (an empty key, too many txn ops) is
// the store's to refuse with etcd's error, so that the client gets an answer.

import { Packr } from 'msgpackr';
import type {
  ClientRequestId,
  Compare,
  CompareResult,
  CompactionRequest,
  RangeRequest,
  RequestOp,
  SortOrder,
  SortTarget,
  TxnRequest,
} from './api';
import type { Command, Proposal } from './state-machine';

/** Plain msgpack maps without msgpackr's record extension: records depend on a structure table shared
 *  between encoder and decoder, which members (and restarts of one member) do not share. */
export const packr = new Packr({ useRecords: false });

export class MalformedProposalError extends Error {
  constructor(message: string) {
    super(`malformed proposal: ${message}`);
    this.name = 'MalformedProposalError';
  }
}

type Wire = Record<string, unknown>;
type TxnBody = Omit<TxnRequest, 'requestId' | 'serializable'>;

/** A client id is what a client instance picks at random (16 hex digits); anything printable up to 64
 *  characters is accepted, so that a key built from it stays small and unambiguous. */
const CLIENT_ID = /^[\x21-\x7e]{1,64}$/;

// ---- encoding ----------------------------------------------------------------------------------------------

/** Copies the listed fields that are set (absent options stay absent on the wire, and no stray property of
 *  the caller's object ends up in the log). */
function pick(o: object, fields: readonly string[]): Wire {
  const w: Wire = {};
  const src = o as Wire;
  for (const f of fields) if (src[f] !== undefined) w[f] = src[f];
  return w;
}

const PUT_FIELDS = ['key', 'value', 'lease', 'prevKv', 'ignoreValue', 'ignoreLease'] as const;
const DELETE_FIELDS = ['key', 'rangeEnd', 'prevKv'] as const;
const RANGE_FIELDS = [
  'key',
  'rangeEnd',
  'limit',
  'revision',
  'sortOrder',
  'sortTarget',
  'keysOnly',
  'countOnly',
  'serializable',
  'minModRevision',
  'maxModRevision',
  'minCreateRevision',
  'maxCreateRevision',
] as const;
const COMPARE_TARGET_FIELD = {
  VERSION: 'version',
  CREATE: 'createRevision',
  MOD: 'modRevision',
  VALUE: 'value',
  LEASE: 'lease',
} as const;

function compareWire(c: Compare): Wire {
  const w = pick(c, ['key', 'rangeEnd', 'result', 'target']);
  const f = COMPARE_TARGET_FIELD[c.target];
  w[f] = (c as unknown as Wire)[f];
  return w;
}

function opWire(op: RequestOp): Wire {
  switch (op.type) {
    case 'range':
      return { type: 'range', range: pick(op.range, RANGE_FIELDS) };
    case 'put':
      return { type: 'put', put: pick(op.put, PUT_FIELDS) };
    case 'deleteRange':
      return { type: 'deleteRange', deleteRange: pick(op.deleteRange, DELETE_FIELDS) };
    case 'txn':
      return { type: 'txn', txn: txnWire(op.txn) };
  }
}

function txnWire(t: TxnBody): Wire {
  return { compare: t.compare.map(compareWire), success: t.success.map(opWire), failure: t.failure.map(opWire) };
}

function commandWire(cmd: Command): Wire {
  switch (cmd.op) {
    case 'put':
      return { op: 'put', req: pick(cmd.req, PUT_FIELDS) };
    case 'delete':
      return { op: 'delete', req: pick(cmd.req, DELETE_FIELDS) };
    case 'txn':
      return { op: 'txn', req: txnWire(cmd.req) };
    case 'compact':
      return { op: 'compact', req: pick(cmd.req, ['revision', 'physical']) };
    case 'leaseGrant':
      return { op: 'leaseGrant', id: cmd.id, ttl: cmd.ttl };
    case 'leaseRevoke':
      return { op: 'leaseRevoke', id: cmd.id };
    case 'leaseKeepAlive':
      return { op: 'leaseKeepAlive', id: cmd.id };
    case 'leaseCheckpoint':
      return { op: 'leaseCheckpoint', checkpoints: cmd.checkpoints.map((c) => ({ id: c.id, remainingTtl: c.remainingTtl })) };
    case 'memberAttrs':
      return { op: 'memberAttrs', memberId: cmd.memberId, name: cmd.name, clientUrls: [...cmd.clientUrls] };
    case 'alarm':
      return { op: 'alarm', action: cmd.action, memberId: cmd.memberId, alarm: cmd.alarm };
  }
}

export function encodeProposal(p: Proposal): Uint8Array {
  const wire: Wire = { id: p.id, cmd: commandWire(p.cmd) };
  if (p.requestId !== undefined) wire.requestId = { client: p.requestId.client, seq: p.requestId.seq };
  return packr.pack(wire);
}

// ---- decoding ----------------------------------------------------------------------------------------------

function fail(message: string): never {
  throw new MalformedProposalError(message);
}

function isMap(v: unknown): v is Wire {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function map(v: unknown, field: string): Wire {
  if (!isMap(v)) fail(`${field} is not a map`);
  return v;
}

function list(v: unknown, field: string): unknown[] {
  if (!Array.isArray(v)) fail(`${field} is not a list`);
  return v;
}

/** A copy, so that a decoded key does not pin the (possibly large) buffer it was decoded from. */
function bytes(v: unknown, field: string): Buffer {
  if (!(v instanceof Uint8Array)) fail(`${field} is not binary`);
  return Buffer.from(v);
}

function absent(v: unknown): v is undefined | null {
  return v === undefined || v === null;
}

function optBytes(v: unknown, field: string): Buffer | undefined {
  return absent(v) ? undefined : bytes(v, field);
}

function optBool(v: unknown, field: string): boolean | undefined {
  if (absent(v)) return undefined;
  if (typeof v !== 'boolean') fail(`${field} is not a boolean`);
  return v;
}

function int(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(`${field} is not an integer`);
  return v;
}

function count(v: unknown, field: string): number {
  const n = int(v, field);
  if (n < 0) fail(`${field} is negative`);
  return n;
}

function id(v: unknown, field: string): number {
  const n = int(v, field);
  if (n < 1) fail(`${field} is not a positive integer`);
  return n;
}

function optInt(v: unknown, field: string): number | undefined {
  return absent(v) ? undefined : int(v, field);
}

function optCount(v: unknown, field: string): number | undefined {
  return absent(v) ? undefined : count(v, field);
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], field: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    fail(`${field} is not one of ${allowed.join(', ')}`);
  }
  return v as T;
}

/** Sets the optional fields that are present (so a decoded request has no keys set to undefined). */
function assignDefined<T extends object>(target: T, fields: Partial<T>): T {
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) (target as Wire)[k] = v;
  return target;
}

type PutBody = Extract<Command, { op: 'put' }>['req'];
type DeleteBody = Extract<Command, { op: 'delete' }>['req'];

function putReq(v: unknown, f: string): PutBody {
  const o = map(v, f);
  return assignDefined<PutBody>(
    { key: bytes(o.key, `${f}.key`), value: bytes(o.value, `${f}.value`) },
    {
      lease: optCount(o.lease, `${f}.lease`),
      prevKv: optBool(o.prevKv, `${f}.prevKv`),
      ignoreValue: optBool(o.ignoreValue, `${f}.ignoreValue`),
      ignoreLease: optBool(o.ignoreLease, `${f}.ignoreLease`),
    },
  );
}

function deleteReq(v: unknown, f: string): DeleteBody {
  const o = map(v, f);
  return assignDefined<DeleteBody>(
    { key: bytes(o.key, `${f}.key`) },
    { rangeEnd: optBytes(o.rangeEnd, `${f}.rangeEnd`), prevKv: optBool(o.prevKv, `${f}.prevKv`) },
  );
}

const SORT_ORDERS: readonly SortOrder[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly SortTarget[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const COMPARE_RESULTS: readonly CompareResult[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const COMPARE_TARGETS = ['VERSION', 'CREATE', 'MOD', 'VALUE', 'LEASE'] as const;

function rangeReq(v: unknown, f: string): RangeRequest {
  const o = map(v, f);
  return assignDefined<RangeRequest>(
    { key: bytes(o.key, `${f}.key`) },
    {
      rangeEnd: optBytes(o.rangeEnd, `${f}.rangeEnd`),
      limit: optInt(o.limit, `${f}.limit`),
      revision: optInt(o.revision, `${f}.revision`),
      sortOrder: absent(o.sortOrder) ? undefined : oneOf(o.sortOrder, SORT_ORDERS, `${f}.sortOrder`),
      sortTarget: absent(o.sortTarget) ? undefined : oneOf(o.sortTarget, SORT_TARGETS, `${f}.sortTarget`),
      keysOnly: optBool(o.keysOnly, `${f}.keysOnly`),
      countOnly: optBool(o.countOnly, `${f}.countOnly`),
      serializable: optBool(o.serializable, `${f}.serializable`),
      minModRevision: optInt(o.minModRevision, `${f}.minModRevision`),
      maxModRevision: optInt(o.maxModRevision, `${f}.maxModRevision`),
      minCreateRevision: optInt(o.minCreateRevision, `${f}.minCreateRevision`),
      maxCreateRevision: optInt(o.maxCreateRevision, `${f}.maxCreateRevision`),
    },
  );
}

function compare(v: unknown, f: string): Compare {
  const o = map(v, f);
  const base = assignDefined<{ key: Buffer; rangeEnd?: Buffer; result: CompareResult }>(
    { key: bytes(o.key, `${f}.key`), result: oneOf(o.result, COMPARE_RESULTS, `${f}.result`) },
    { rangeEnd: optBytes(o.rangeEnd, `${f}.rangeEnd`) },
  );
  const target = oneOf(o.target, COMPARE_TARGETS, `${f}.target`);
  switch (target) {
    case 'VERSION':
      return { ...base, target, version: int(o.version, `${f}.version`) };
    case 'CREATE':
      return { ...base, target, createRevision: int(o.createRevision, `${f}.createRevision`) };
    case 'MOD':
      return { ...base, target, modRevision: int(o.modRevision, `${f}.modRevision`) };
    case 'VALUE':
      return { ...base, target, value: bytes(o.value, `${f}.value`) };
    case 'LEASE':
      return { ...base, target, lease: int(o.lease, `${f}.lease`) };
  }
}

/** Deep enough for any txn within etcd's op budget (which shrinks at every level); deeper is not a txn. */
const MAX_TXN_DEPTH = 200;

function requestOp(v: unknown, f: string, depth: number): RequestOp {
  const o = map(v, f);
  switch (o.type) {
    case 'range':
      return { type: 'range', range: rangeReq(o.range, `${f}.range`) };
    case 'put':
      return { type: 'put', put: putReq(o.put, `${f}.put`) };
    case 'deleteRange':
      return { type: 'deleteRange', deleteRange: deleteReq(o.deleteRange, `${f}.deleteRange`) };
    case 'txn':
      return { type: 'txn', txn: txnReq(o.txn, `${f}.txn`, depth + 1) };
    default:
      return fail(`${f}.type is not range, put, deleteRange or txn`);
  }
}

function txnReq(v: unknown, f: string, depth: number): TxnBody {
  if (depth > MAX_TXN_DEPTH) fail(`${f} is nested more than ${MAX_TXN_DEPTH} deep`);
  const o = map(v, f);
  return {
    compare: list(o.compare, `${f}.compare`).map((c, i) => compare(c, `${f}.compare[${i}]`)),
    success: list(o.success, `${f}.success`).map((op, i) => requestOp(op, `${f}.success[${i}]`, depth)),
    failure: list(o.failure, `${f}.failure`).map((op, i) => requestOp(op, `${f}.failure[${i}]`, depth)),
  };
}

function command(c: Wire): Command {
  switch (c.op) {
    case 'put':
      return { op: 'put', req: putReq(c.req, 'cmd.req') };
    case 'delete':
      return { op: 'delete', req: deleteReq(c.req, 'cmd.req') };
    case 'txn':
      return { op: 'txn', req: txnReq(c.req, 'cmd.req', 0) };
    case 'compact': {
      const r = map(c.req, 'cmd.req');
      const req = assignDefined<CompactionRequest>(
        { revision: count(r.revision, 'cmd.req.revision') },
        { physical: optBool(r.physical, 'cmd.req.physical') },
      );
      return { op: 'compact', req };
    }
    case 'leaseGrant':
      return { op: 'leaseGrant', id: id(c.id, 'cmd.id'), ttl: count(c.ttl, 'cmd.ttl') };
    case 'leaseRevoke':
      return { op: 'leaseRevoke', id: id(c.id, 'cmd.id') };
    case 'leaseKeepAlive':
      return { op: 'leaseKeepAlive', id: id(c.id, 'cmd.id') };
    case 'leaseCheckpoint':
      return {
        op: 'leaseCheckpoint',
        checkpoints: list(c.checkpoints, 'cmd.checkpoints').map((v, i) => {
          const o = map(v, `cmd.checkpoints[${i}]`);
          return {
            id: id(o.id, `cmd.checkpoints[${i}].id`),
            remainingTtl: count(o.remainingTtl, `cmd.checkpoints[${i}].remainingTtl`),
          };
        }),
      };
    case 'memberAttrs': {
      if (typeof c.memberId !== 'string' || c.memberId === '') fail('cmd.memberId is not a member id');
      if (typeof c.name !== 'string') fail('cmd.name is not a string');
      const urls = list(c.clientUrls, 'cmd.clientUrls');
      if (!urls.every((u): u is string => typeof u === 'string')) fail('cmd.clientUrls is not a list of strings');
      return { op: 'memberAttrs', memberId: c.memberId, name: c.name, clientUrls: urls };
    }
    case 'alarm': {
      if (c.action !== 'ACTIVATE' && c.action !== 'DEACTIVATE') fail('cmd.action is not ACTIVATE or DEACTIVATE');
      if (typeof c.memberId !== 'string') fail('cmd.memberId is not a string');
      if (c.alarm !== 'NONE' && c.alarm !== 'NOSPACE' && c.alarm !== 'CORRUPT') fail('cmd.alarm is not an alarm type');
      return { op: 'alarm', action: c.action, memberId: c.memberId, alarm: c.alarm };
    }
    default:
      return fail(`unknown op ${typeof c.op === 'string' ? JSON.stringify(c.op) : `of type ${typeof c.op}`}`);
  }
}

function requestId(v: unknown): ClientRequestId {
  const o = map(v, 'requestId');
  if (typeof o.client !== 'string' || !CLIENT_ID.test(o.client)) {
    fail('requestId.client is not 1 to 64 printable ASCII characters');
  }
  return { client: o.client, seq: count(o.seq, 'requestId.seq') };
}

/** Throws MalformedProposalError if `data` is not a Proposal. Unknown extra fields are ignored. */
export function decodeProposal(data: Uint8Array): Proposal {
  let raw: unknown;
  try {
    raw = packr.unpack(data);
  } catch (err) {
    fail(`not msgpack (${(err as Error).message})`);
  }
  const o = map(raw, 'proposal');
  if (typeof o.id !== 'string') fail('id is not a string');
  const p: Proposal = { id: o.id, cmd: command(map(o.cmd, 'cmd')) };
  if (!absent(o.requestId)) p.requestId = requestId(o.requestId);
  return p;
}
