// etcdctl v3's `-w json` output (printer_json.go): Go's encoding/json of the protobuf structs as the Go
// client hands them over. That means, as etcdctl prints them:
// - fields named by their json tags (snake_case) and left out when zero, false, empty or nil (omitempty);
// - 64-bit integers as JSON numbers (cluster and member ids too, which exceed 2^53: written from their
//   hex form with BigInt, so no digit is lost), keys and values as base64;
// - a txn's responses as {"Response":{"response_put":{...}}} (the oneof wrapper's Go field name);
// - watch responses as the Go client's WatchResponse, whose fields have no json tags ("Header", "Events",
//   "CompactRevision", "Canceled", "Created"), with the event type as a number left out for PUT (0);
// - lease responses as the Go client's structs, where the header's fields sit at the top level.
// Where Keel differs it says so below.

import type {
  CompactionResponse,
  DeleteRangeResponse,
  Event,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeResponse,
  LeaseTimeToLiveResponse,
  PutResponse,
  RangeResponse,
  ResponseHeader,
  ResponseOp,
  TxnResponse,
} from '../kv/api';

/** A JSON value as Go writes it; `bigint` is written as a number with all its digits; an `undefined`
 *  field is left out. */
export type GoJson = null | boolean | number | bigint | string | GoJson[] | { [field: string]: GoJson | undefined };

/** Serializes like Go's json.Marshal (field order as given; no spaces). */
export function goJson(v: GoJson): string {
  if (v === null) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`cannot write ${v} as JSON`);
    return String(v);
  }
  if (typeof v === 'boolean' || typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return '[' + v.map(goJson).join(',') + ']';
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    if (x !== undefined) parts.push(JSON.stringify(k) + ':' + goJson(x));
  }
  return '{' + parts.join(',') + '}';
}

// omitempty
const num = (n: number): number | undefined => (n === 0 ? undefined : n);
const flag = (b: boolean | undefined): true | undefined => (b === true ? true : undefined);
const bytes = (b: Buffer): string | undefined => (b.length === 0 ? undefined : b.toString('base64'));
function list<T>(xs: readonly T[] | undefined, f: (x: T) => GoJson): GoJson[] | undefined {
  return xs === undefined || xs.length === 0 ? undefined : xs.map(f);
}

/** A member or cluster id (16 hex digits) as the uint64 it is; undefined for 0 (omitempty). */
function id64(hex: string): bigint | undefined {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) return undefined;
  const v = BigInt('0x' + hex);
  return v === 0n ? undefined : v;
}

/** The fields of etcdserverpb.ResponseHeader. */
function headerFields(h: ResponseHeader): { [field: string]: GoJson | undefined } {
  return {
    cluster_id: id64(h.clusterId),
    member_id: id64(h.memberId),
    revision: num(h.revision),
    raft_term: num(h.raftTerm),
  };
}

export function headerJson(h: ResponseHeader | undefined): GoJson | undefined {
  return h === undefined ? undefined : headerFields(h);
}

export function kvJson(kv: KeyValue): GoJson {
  return {
    key: bytes(kv.key),
    create_revision: num(kv.createRevision),
    mod_revision: num(kv.modRevision),
    version: num(kv.version),
    value: bytes(kv.value),
    lease: num(kv.lease),
  };
}

export function rangeJson(r: RangeResponse): GoJson {
  return { header: headerJson(r.header), kvs: list(r.kvs, kvJson), more: flag(r.more), count: num(r.count) };
}

export function putJson(r: PutResponse): GoJson {
  return { header: headerJson(r.header), prev_kv: r.prevKv === undefined ? undefined : kvJson(r.prevKv) };
}

export function deleteJson(r: DeleteRangeResponse): GoJson {
  return { header: headerJson(r.header), deleted: num(r.deleted), prev_kvs: list(r.prevKvs, kvJson) };
}

function responseOpJson(op: ResponseOp): GoJson {
  switch (op.type) {
    case 'range':
      return { Response: { response_range: rangeJson(op.range) } };
    case 'put':
      return { Response: { response_put: putJson(op.put) } };
    case 'deleteRange':
      return { Response: { response_delete_range: deleteJson(op.deleteRange) } };
    case 'txn':
      return { Response: { response_txn: txnJson(op.txn) } };
  }
}

export function txnJson(r: TxnResponse): GoJson {
  return { header: headerJson(r.header), succeeded: flag(r.succeeded), responses: list(r.responses, responseOpJson) };
}

function eventJson(e: Event): GoJson {
  return {
    type: e.type === 'DELETE' ? 1 : undefined,
    kv: kvJson(e.kv),
    prev_kv: e.prevKv === undefined ? undefined : kvJson(e.prevKv),
  };
}

export interface WatchJsonInput {
  /** Keel differs: the client hands the CLI a revision, not the member's whole header, so "Header" holds
   *  only the revision. */
  revision: number;
  events: readonly Event[];
  compactRevision?: number;
  canceled?: boolean;
  created?: boolean;
}

/** The Go client's WatchResponse (no json tags, so Go's field names and no omitempty). */
export function watchJson(w: WatchJsonInput): GoJson {
  return {
    Header: { revision: num(w.revision) },
    Events: w.events.length === 0 ? null : w.events.map(eventJson),
    CompactRevision: w.compactRevision ?? 0,
    Canceled: w.canceled === true,
    Created: w.created === true,
  };
}

/** clientv3.LeaseGrantResponse: the header embedded (its fields at the top level), then ID, TTL, Error. */
export function leaseGrantJson(r: LeaseGrantResponse): GoJson {
  return { ...headerFields(r.header), ID: r.id, TTL: r.ttl, Error: '' };
}

export function leaseRevokeJson(r: LeaseRevokeResponse): GoJson {
  return { header: headerJson(r.header) };
}

export function leaseKeepAliveJson(r: LeaseKeepAliveResponse): GoJson {
  return { ...headerFields(r.header), ID: r.id, TTL: r.ttl };
}

/** clientv3.LeaseTimeToLiveResponse: "keys" is null unless the keys were asked for (and there are some). */
export function leaseTimeToLiveJson(r: LeaseTimeToLiveResponse): GoJson {
  return {
    ...headerFields(r.header),
    id: r.id,
    ttl: r.ttl,
    'granted-ttl': r.grantedTtl,
    keys: r.keys.length === 0 ? null : r.keys.map((k) => k.toString('base64')),
  };
}

export function leaseLeasesJson(r: LeaseLeasesResponse): GoJson {
  return { ...headerFields(r.header), leases: r.leases.map((l) => ({ id: l.id })) };
}

/** Keel differs: etcdctl prints "compacted revision N" whatever -w says; Keel prints the response. */
export function compactionJson(r: CompactionResponse): GoJson {
  return { header: headerJson(r.header) };
}
