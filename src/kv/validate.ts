// Checks a member runs on a client request before proposing it or serving it, so that what reaches the
// Raft log is always well formed and a bad request changes nothing. etcd does the same in its gRPC layer
// (checkPutRequest, checkTxnRequest, checkIntervals in etcdserver/api/v3rpc/key.go) and in the server (the
// request size limit); the messages are etcd's where etcd has one, else "etcdserver: invalid <field>
// <value> (<rule>)" with the field's .proto name and its path inside a txn.
//
// Where Keel is stricter than etcd, on purpose (issue 3: every bad input gets a clear error):
// - negative numbers (limit, revisions, lease ids, compare operands) are refused; etcd reads most of them
//   as "none" or "latest";
// - a lease TTL <= 0 is refused (etcd raises it to the minimum TTL), and so is a compaction at revision <= 0;
// - a put inside a deleteRange of the same txn is refused whichever comes first, in any nesting: etcd's
//   checkIntervals misses a put in one nested txn against a delete in a LATER nested txn, and reads a
//   delete's range_end "\0" literally (an empty interval) instead of as "every key >= key".
// Things etcd accepts, Keel too: an inverted range for range / deleteRange (it holds no key: empty answer,
// nothing deleted); an empty watch key (etcd's watch server reads it as "\0").

import {
  Errors,
  MAX_LEASE_TTL,
  MAX_REQUEST_BYTES,
  MAX_TXN_OPS,
  type AlarmRequest,
  type ClientRequestId,
  type Compare,
  type CompactionRequest,
  type DeleteRangeRequest,
  type LeaseGrantRequest,
  type LeaseKeepAliveRequest,
  type LeaseRevokeRequest,
  type LeaseTimeToLiveRequest,
  type MemberAddRequest,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  type TxnRequest,
  type WatchCreateRequest,
} from './api';

const SORT_ORDERS: readonly string[] = ['NONE', 'ASCEND', 'DESCEND'];
const SORT_TARGETS: readonly string[] = ['KEY', 'VERSION', 'CREATE', 'MOD', 'VALUE'];
const COMPARE_RESULTS: readonly string[] = ['EQUAL', 'GREATER', 'LESS', 'NOT_EQUAL'];
const WATCH_FILTERS: readonly string[] = ['NOPUT', 'NODELETE'];

/** etcd's cancel_reason for a watch whose range holds no key (range_end <= key): etcd creates the watch
 *  and cancels it in the same response, so this is an answer on the watch stream, not a request error. */
export const WATCH_RANGE_EMPTY = 'mvcc: watcher range is empty';

// ---- field checks --------------------------------------------------------------------------------------

function bytesField(v: unknown, name: string, required: boolean): void {
  if (v === undefined && !required) return;
  if (!(v instanceof Uint8Array)) throw Errors.invalid(`invalid ${name} (must be bytes)`);
}

function keyField(key: unknown, name: string): void {
  bytesField(key, name, true);
  if ((key as Uint8Array).length === 0) throw Errors.emptyKey();
}

/** An int64 that must be >= min (0 unless said otherwise). */
function intField(v: number | undefined, name: string, min = 0): void {
  if (v === undefined) return;
  if (!Number.isSafeInteger(v)) {
    throw Errors.invalid(`invalid ${name} ${String(v)} (must be an integer of at most 2^53-1 in magnitude)`);
  }
  if (v < min) throw Errors.invalid(`invalid ${name} ${v} (must be >= ${min})`);
}

function leaseIdField(v: number | undefined, name: string): void {
  if (v === undefined) return;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw Errors.invalid(`invalid ${name} ${String(v)} (a lease id is between 0 and ${Number.MAX_SAFE_INTEGER})`);
  }
}

function enumField(v: string | undefined, allowed: readonly string[], name: string): void {
  if (v !== undefined && !allowed.includes(v)) {
    throw Errors.invalid(`invalid ${name} ${JSON.stringify(v)} (must be one of ${allowed.join(', ')})`);
  }
}

function requestIdField(id: ClientRequestId | undefined, at: string): void {
  if (id === undefined) return;
  if (at !== '') throw Errors.invalid(`invalid ${at}request id (only the top-level request carries one)`);
  if (typeof id.client !== 'string' || id.client === '' || id.client.length > 64) {
    throw Errors.invalid('invalid request id client (must be a non-empty string of at most 64 characters)');
  }
  intField(id.seq, 'request id seq');
}

/** The bytes a request carries; the rest of a proposal (ids, field names) is a few dozen bytes. etcd
 *  measures the marshalled request, so a request right at the limit fails in both. */
function payload(...parts: (Uint8Array | undefined)[]): number {
  let n = 0;
  for (const p of parts) n += p === undefined ? 0 : p.length;
  return n;
}

function checkSize(bytes: number): void {
  if (bytes > MAX_REQUEST_BYTES) throw Errors.tooLarge();
}

// ---- kv ------------------------------------------------------------------------------------------------

function rangeFields(req: RangeRequest, at: string): void {
  keyField(req.key, `${at}key`);
  bytesField(req.rangeEnd, `${at}range_end`, false);
  intField(req.limit, `${at}limit`);
  intField(req.revision, `${at}revision`);
  enumField(req.sortOrder, SORT_ORDERS, `${at}sort_order`);
  enumField(req.sortTarget, SORT_TARGETS, `${at}sort_target`);
  intField(req.minModRevision, `${at}min_mod_revision`);
  intField(req.maxModRevision, `${at}max_mod_revision`);
  intField(req.minCreateRevision, `${at}min_create_revision`);
  intField(req.maxCreateRevision, `${at}max_create_revision`);
}

function putFields(req: PutRequest, at: string): void {
  keyField(req.key, `${at}key`);
  bytesField(req.value, `${at}value`, true);
  leaseIdField(req.lease, `${at}lease`);
  // etcd's checkPutRequest, in its order.
  if (req.ignoreValue === true && req.value.length !== 0) throw Errors.valueProvided();
  if (req.ignoreLease === true && (req.lease ?? 0) !== 0) throw Errors.leaseProvided();
  requestIdField(req.requestId, at);
}

function deleteFields(req: DeleteRangeRequest, at: string): void {
  keyField(req.key, `${at}key`);
  bytesField(req.rangeEnd, `${at}range_end`, false);
  requestIdField(req.requestId, at);
}

export function validateRange(req: RangeRequest): void {
  rangeFields(req, '');
  checkSize(payload(req.key, req.rangeEnd));
}

export function validatePut(req: PutRequest): void {
  putFields(req, '');
  checkSize(payload(req.key, req.value));
}

/** An inverted range (range_end <= key) is fine: it holds no key, so nothing is deleted (as in etcd). */
export function validateDelete(req: DeleteRangeRequest): void {
  deleteFields(req, '');
  checkSize(payload(req.key, req.rangeEnd));
}

// ---- txn -----------------------------------------------------------------------------------------------

function compareFields(c: Compare, at: string): void {
  keyField(c.key, `${at}key`);
  bytesField(c.rangeEnd, `${at}range_end`, false);
  enumField(c.result, COMPARE_RESULTS, `${at}result`);
  switch (c.target) {
    case 'VERSION':
      return intField(c.version, `${at}version`);
    case 'CREATE':
      return intField(c.createRevision, `${at}create_revision`);
    case 'MOD':
      return intField(c.modRevision, `${at}mod_revision`);
    case 'VALUE':
      return bytesField(c.value, `${at}value`, true);
    case 'LEASE':
      return leaseIdField(c.lease, `${at}lease`);
    default:
      throw Errors.invalid(
        `invalid ${at}target ${JSON.stringify((c as { target: unknown }).target)} ` +
          '(must be one of VERSION, CREATE, MOD, VALUE, LEASE)',
      );
  }
}

/**
 * etcd's checkTxnRequest: the longest of compare / success / failure counts against the limit, and a
 * nested txn gets what is left of it (so nesting cannot multiply the limit away). Depth is bounded by the
 * budget, each level taking at least one operation.
 */
function txnFields(req: TxnRequest, budget: number, at: string): void {
  for (const list of ['compare', 'success', 'failure'] as const) {
    if (!Array.isArray(req[list])) throw Errors.invalid(`invalid ${at}${list} (must be a list)`);
  }
  const opc = Math.max(req.compare.length, req.success.length, req.failure.length);
  if (opc > budget) throw Errors.tooManyOps();
  req.compare.forEach((c, i) => compareFields(c, `${at}compare[${i}].`));
  const ops = (list: 'success' | 'failure'): void =>
    req[list].forEach((op, i) => opFields(op, budget - opc, `${at}${list}[${i}].`));
  ops('success');
  ops('failure');
  if (at !== '' && req.requestId !== undefined) requestIdField(req.requestId, at);
}

function opFields(op: RequestOp, budget: number, at: string): void {
  switch (op.type) {
    case 'range':
      return rangeFields(op.range, `${at}request_range.`);
    case 'put':
      return putFields(op.put, `${at}request_put.`);
    case 'deleteRange':
      return deleteFields(op.deleteRange, `${at}request_delete_range.`);
    case 'txn':
      return txnFields(op.txn, budget, `${at}request_txn.`);
    default:
      throw Errors.invalid(
        `invalid ${at}type ${JSON.stringify((op as { type: unknown }).type)} (must be range, put, deleteRange or txn)`,
      );
  }
}

function txnPayload(req: TxnRequest): number {
  let n = 0;
  for (const c of req.compare) n += payload(c.key, c.rangeEnd, c.target === 'VALUE' ? c.value : undefined);
  for (const op of [...req.success, ...req.failure]) {
    switch (op.type) {
      case 'range':
        n += payload(op.range.key, op.range.rangeEnd);
        break;
      case 'put':
        n += payload(op.put.key, op.put.value);
        break;
      case 'deleteRange':
        n += payload(op.deleteRange.key, op.deleteRange.rangeEnd);
        break;
      case 'txn':
        n += txnPayload(op.txn);
        break;
    }
  }
  return n;
}

export function validateTxn(req: TxnRequest): void {
  // Fields first: it bounds the nesting depth that the two walks below recurse through.
  txnFields(req, MAX_TXN_OPS, '');
  requestIdField(req.requestId, '');
  checkSize(txnPayload(req));
  checkNoOverlap(req.success);
  checkNoOverlap(req.failure);
}

// ---- txn: no key written twice ---------------------------------------------------------------------------
// Two operations of a txn can both run unless they sit in different branches (success / failure) of one
// txn. Among those that can both run, no two puts may write the same key and no put may write a key that
// a deleteRange covers (etcd's ErrGRPCDuplicateKey). Deletes may overlap each other.

/** A deleteRange as [start, end); end null: no end ("\0", every key >= start). */
interface Interval {
  start: Buffer;
  end: Buffer | null;
}

interface Writes {
  puts: Buffer[];
  dels: Interval[];
}

function deleteInterval(req: DeleteRangeRequest): Interval | undefined {
  const key = Buffer.from(req.key);
  const end = req.rangeEnd;
  // Just the key: [key, key + "\0").
  if (end === undefined || end.length === 0) return { start: key, end: Buffer.concat([key, Buffer.from([0])]) };
  if (end.length === 1 && end[0] === 0) return { start: key, end: null };
  if (Buffer.compare(key, end) >= 0) return undefined; // inverted: deletes nothing
  return { start: key, end: Buffer.from(end) };
}

function endsAfter(end: Buffer | null, key: Buffer): boolean {
  return end === null || Buffer.compare(key, end) < 0;
}

function laterEnd(a: Buffer | null, b: Buffer | null): boolean {
  // Is a strictly after b?
  if (a === null) return b !== null;
  return b !== null && Buffer.compare(a, b) > 0;
}

/** The writes of one list of operations that run together, after checking them against each other. */
function listWrites(ops: RequestOp[]): Writes {
  // Each operation is one "item"; a nested txn's two branches form one item (they never both run, and
  // within each branch the recursive call has checked them).
  const items: Writes[] = ops.map((op) => {
    switch (op.type) {
      case 'put':
        return { puts: [Buffer.from(op.put.key)], dels: [] };
      case 'deleteRange': {
        const iv = deleteInterval(op.deleteRange);
        return { puts: [], dels: iv === undefined ? [] : [iv] };
      }
      case 'txn': {
        const s = listWrites(op.txn.success);
        const f = listWrites(op.txn.failure);
        return { puts: [...s.puts, ...f.puts], dels: [...s.dels, ...f.dels] };
      }
      default:
        return { puts: [], dels: [] };
    }
  });

  // put vs put of another item
  const putBy = new Map<string, number>();
  items.forEach((w, item) => {
    for (const k of w.puts) {
      const s = k.toString('latin1');
      const other = putBy.get(s);
      if (other !== undefined && other !== item) throw Errors.duplicateKey();
      putBy.set(s, item);
    }
  });

  // put vs delete of another item: deletes sorted by start, with, for each prefix, the latest end and the
  // latest end among the other items (so a put can ignore its own item's deletes in O(log n)).
  const dels = items.flatMap((w, item) => w.dels.map((iv) => ({ ...iv, item })));
  if (dels.length > 0 && putBy.size > 0) {
    dels.sort((a, b) => Buffer.compare(a.start, b.start));
    type Best = { end: Buffer | null; item: number } | undefined;
    const best1: Best[] = [];
    const best2: Best[] = [];
    let b1: Best;
    let b2: Best;
    for (const d of dels) {
      if (b1 === undefined) b1 = { end: d.end, item: d.item };
      else if (d.item === b1.item) {
        if (laterEnd(d.end, b1.end)) b1 = { end: d.end, item: d.item };
      } else if (laterEnd(d.end, b1.end)) {
        b2 = b1;
        b1 = { end: d.end, item: d.item };
      } else if (b2 === undefined || laterEnd(d.end, b2.end)) {
        b2 = { end: d.end, item: d.item };
      }
      best1.push(b1);
      best2.push(b2);
    }
    items.forEach((w, item) => {
      for (const k of w.puts) {
        // The last delete starting at or before k.
        let lo = 0;
        let hi = dels.length - 1;
        let at = -1;
        while (lo <= hi) {
          const mid = (lo + hi) >> 1;
          if (Buffer.compare(dels[mid].start, k) <= 0) {
            at = mid;
            lo = mid + 1;
          } else hi = mid - 1;
        }
        if (at < 0) continue;
        const first = best1[at];
        const second = best2[at];
        if (first !== undefined && first.item !== item && endsAfter(first.end, k)) throw Errors.duplicateKey();
        if (first !== undefined && first.item === item && second !== undefined && endsAfter(second.end, k)) {
          throw Errors.duplicateKey();
        }
      }
    });
  }

  return { puts: items.flatMap((w) => w.puts), dels };
}

function checkNoOverlap(ops: RequestOp[]): void {
  listWrites(ops);
}

// ---- compaction, leases ----------------------------------------------------------------------------------

export function validateCompaction(req: CompactionRequest): void {
  intField(req.revision, 'compaction revision', 1);
}

export function validateLeaseGrant(req: LeaseGrantRequest): void {
  if (!Number.isSafeInteger(req.ttl)) throw Errors.invalid(`invalid lease TTL ${String(req.ttl)} (must be an integer)`);
  if (req.ttl > MAX_LEASE_TTL) throw Errors.leaseTtlTooLarge();
  if (req.ttl <= 0) throw Errors.invalid(`invalid lease TTL ${req.ttl} (must be > 0 seconds)`);
  leaseIdField(req.id, 'lease ID');
}

export function validateLeaseRevoke(req: LeaseRevokeRequest): void {
  leaseIdField(req.id, 'lease ID');
}

export function validateLeaseKeepAlive(req: LeaseKeepAliveRequest): void {
  leaseIdField(req.id, 'lease ID');
}

export function validateLeaseTimeToLive(req: LeaseTimeToLiveRequest): void {
  leaseIdField(req.id, 'lease ID');
}

// ---- cluster membership, alarms ---------------------------------------------------------------------------
// A member's peer URL is http://host:port and nothing else, written as `keel node` writes it (lower-case
// host, no trailing slash: what src/server/options.ts's normalizeUrl gives), so that two spellings of one
// URL can never both join. etcd answers every bad URL with its one message ("given member URLs are
// invalid"); the CLI checks first and names the problem.

const MEMBER_ID = /^[0-9a-f]{16}$/;
const ALARM_ACTIONS: readonly string[] = ['GET', 'ACTIVATE', 'DEACTIVATE'];
const ALARM_TYPES: readonly string[] = ['NONE', 'NOSPACE', 'CORRUPT'];
export const MAX_MEMBER_NAME_CHARS = 64;

/** Why `url` is not a peer URL as a member keeps it, or undefined when it is one. */
export function peerUrlProblem(url: unknown): string | undefined {
  if (typeof url !== 'string') return 'not a string';
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL (expected http://HOST:PORT)';
  }
  if (u.protocol !== 'http:') return 'must use http:// (TLS is not supported yet)';
  if (u.port === '' || u.port === '0') return 'needs a port';
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
    return 'must be just http://HOST:PORT';
  }
  if (u.pathname !== '/' && u.pathname !== '') return 'must not have a path';
  if (url !== `http://${u.host}`) return `must be written http://${u.host}`;
  return undefined;
}

/** Why `name` cannot be a member's name, or undefined. A name goes into --initial-cluster's NAME=URL list
 *  and on `keel node --name`, so it has no '=', ',', spaces or control characters (as `keel node` asks). */
export function memberNameProblem(name: string): string | undefined {
  if (name === '') return 'must not be empty';
  if ([...name].length > MAX_MEMBER_NAME_CHARS) return `must be at most ${MAX_MEMBER_NAME_CHARS} characters`;
  if (/[\p{C}\p{Z}\s]/u.test(name)) return 'must be printable, without spaces';
  if (/[=,]/.test(name)) return "must not contain '=' or ','";
  return undefined;
}

function memberIdField(id: unknown, name: string, required: boolean): void {
  if (id === undefined || id === '') {
    if (required) throw Errors.invalid(`invalid ${name} (required: a member id, a non-zero uint64)`);
    return;
  }
  if (typeof id !== 'string' || !MEMBER_ID.test(id) || /^0+$/.test(id)) {
    throw Errors.invalid(`invalid ${name} ${JSON.stringify(id)} (a member id is a non-zero uint64)`);
  }
}

/** Keel members have exactly one peer URL (etcd allows several). */
export function validateMemberAdd(req: MemberAddRequest): void {
  if (!Array.isArray(req.peerUrls) || req.peerUrls.length !== 1) throw Errors.memberBadUrls();
  if (peerUrlProblem(req.peerUrls[0]) !== undefined) throw Errors.memberBadUrls();
  if (req.isLearner !== undefined && typeof req.isLearner !== 'boolean') {
    throw Errors.invalid('invalid isLearner (must be true or false)');
  }
  if (req.name !== undefined) {
    if (typeof req.name !== 'string') throw Errors.invalid('invalid member name (must be a string)');
    const problem = req.name === '' ? undefined : memberNameProblem(req.name);
    if (problem !== undefined) throw Errors.invalid(`invalid member name ${JSON.stringify(req.name)} (${problem})`);
  }
}

/** Remove and promote: the id of a member (16 hex digits, not 0). */
export function validateMemberId(req: { id: string }): void {
  memberIdField(req.id, 'member ID', true);
}

/** ACTIVATE names a member and an alarm other than NONE; GET and DEACTIVATE may leave either out (every
 *  member, every alarm type). */
export function validateAlarm(req: AlarmRequest): void {
  enumField(req.action, ALARM_ACTIONS, 'alarm action');
  if (!ALARM_ACTIONS.includes(req.action)) throw Errors.invalid('invalid alarm action (required)');
  enumField(req.alarm, ALARM_TYPES, 'alarm');
  memberIdField(req.memberId, 'alarm memberID', req.action === 'ACTIVATE');
  if (req.action === 'ACTIVATE' && (req.alarm === undefined || req.alarm === 'NONE')) {
    throw Errors.invalid('invalid alarm NONE (ACTIVATE needs the alarm to raise: NOSPACE or CORRUPT)');
  }
}

// ---- watch ---------------------------------------------------------------------------------------------

/** What etcd's protobuf layer would never let through. An empty key is accepted (read it as "\0", as
 *  etcd does); an empty range is not an error here but an answer, see watchCreateCancelReason. */
export function validateWatchCreate(req: WatchCreateRequest): void {
  bytesField(req.key, 'key', true);
  bytesField(req.rangeEnd, 'range_end', false);
  intField(req.startRevision, 'start_revision');
  // -1 is the contract's "pick one" (api.ts); 0 and up are ids the client chose.
  intField(req.watchId, 'watch_id', -1);
  if (req.filters !== undefined) {
    if (!Array.isArray(req.filters)) throw Errors.invalid('invalid filters (must be a list)');
    req.filters.forEach((f, i) => enumField(f, WATCH_FILTERS, `filters[${i}]`));
  }
  checkSize(payload(req.key, req.rangeEnd));
}

/**
 * etcd's answer to a well-formed watch it will not serve: a response with created AND canceled set and this
 * reason (WatchStream.create must answer so; undefined: serve it). Today only the empty range.
 */
export function watchCreateCancelReason(req: WatchCreateRequest): string | undefined {
  const end = req.rangeEnd;
  if (end === undefined || end.length === 0 || (end.length === 1 && end[0] === 0)) return undefined;
  const key = req.key.length === 0 ? Buffer.from([0]) : req.key;
  return Buffer.compare(key, end) >= 0 ? WATCH_RANGE_EMPTY : undefined;
}
