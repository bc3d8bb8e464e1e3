// The Lease service in etcd's gateway JSON. The .proto names these fields "ID", "TTL" and "grantedTTL",
// and the gateway keeps the .proto's names, so that is what goes on the wire (not "id"/"ttl").

import type {
  LeaseGrantRequest,
  LeaseGrantResponse,
  LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
} from '../api';
import { Fields, compact, decodeBase64, flag, int64 } from './fields';
import { decodeHeader, headerToJson, type HeaderJson } from './kv-json';

// ---- JSON shapes ---------------------------------------------------------------------------------------

export interface LeaseGrantRequestJson {
  TTL?: string;
  ID?: string;
}

export interface LeaseGrantResponseJson {
  header: HeaderJson;
  ID?: string;
  TTL?: string;
  /** In etcd's .proto, never set by etcd 3.4's server. */
  error?: string;
}

export interface LeaseIdRequestJson {
  ID?: string;
}

export interface LeaseRevokeResponseJson {
  header: HeaderJson;
}

export interface LeaseKeepAliveResponseJson {
  header: HeaderJson;
  ID?: string;
  TTL?: string;
}

export interface LeaseTimeToLiveRequestJson {
  ID?: string;
  keys?: boolean;
}

export interface LeaseTimeToLiveResponseJson {
  header: HeaderJson;
  ID?: string;
  TTL?: string;
  grantedTTL?: string;
  keys?: string[];
}

export interface LeaseLeasesResponseJson {
  header: HeaderJson;
  leases?: { ID?: string }[];
}

// ---- encoding responses (server) -----------------------------------------------------------------------

export function leaseGrantResponseToJson(r: LeaseGrantResponse): LeaseGrantResponseJson {
  return compact({ header: headerToJson(r.header), ID: int64(r.id), TTL: int64(r.ttl) });
}

export function leaseRevokeResponseToJson(r: LeaseRevokeResponse): LeaseRevokeResponseJson {
  return { header: headerToJson(r.header) };
}

/** TTL 0 (left out) is etcd's answer for a lease that does not exist. */
export function leaseKeepAliveResponseToJson(r: LeaseKeepAliveResponse): LeaseKeepAliveResponseJson {
  return compact({ header: headerToJson(r.header), ID: int64(r.id), TTL: int64(r.ttl) });
}

/** TTL -1 is etcd's answer for a lease that does not exist. */
export function leaseTimeToLiveResponseToJson(r: LeaseTimeToLiveResponse): LeaseTimeToLiveResponseJson {
  return compact({
    header: headerToJson(r.header),
    ID: int64(r.id),
    TTL: int64(r.ttl),
    grantedTTL: int64(r.grantedTtl),
    keys: r.keys.length === 0 ? undefined : r.keys.map((k) => k.toString('base64')),
  });
}

export function leaseLeasesResponseToJson(r: LeaseLeasesResponse): LeaseLeasesResponseJson {
  return compact({
    header: headerToJson(r.header),
    leases: r.leases.length === 0 ? undefined : r.leases.map((l) => compact({ ID: int64(l.id) })),
  });
}

// ---- encoding requests (client) ------------------------------------------------------------------------

export function leaseGrantRequestToJson(r: LeaseGrantRequest): LeaseGrantRequestJson {
  return compact({ TTL: int64(r.ttl), ID: int64(r.id ?? 0) });
}

export function leaseIdRequestToJson(r: LeaseRevokeRequest | LeaseKeepAliveRequest): LeaseIdRequestJson {
  return compact({ ID: int64(r.id) });
}

export function leaseTimeToLiveRequestToJson(r: LeaseTimeToLiveRequest): LeaseTimeToLiveRequestJson {
  return compact({ ID: int64(r.id), keys: flag(r.keys) });
}

// ---- decoding requests (server) ------------------------------------------------------------------------

export function parseLeaseGrantRequest(body: unknown): LeaseGrantRequest {
  const f = Fields.request(body, '', ['TTL', 'ID']);
  const r: LeaseGrantRequest = { ttl: f.int('TTL') ?? 0 };
  const id = f.int('ID');
  if (id !== undefined && id !== 0) r.id = id;
  return r;
}

export function parseLeaseRevokeRequest(body: unknown): LeaseRevokeRequest {
  return { id: Fields.request(body, '', ['ID']).int('ID') ?? 0 };
}

export function parseLeaseKeepAliveRequest(body: unknown): LeaseKeepAliveRequest {
  return { id: Fields.request(body, '', ['ID']).int('ID') ?? 0 };
}

export function parseLeaseTimeToLiveRequest(body: unknown): LeaseTimeToLiveRequest {
  const f = Fields.request(body, '', ['ID', 'keys']);
  const r: LeaseTimeToLiveRequest = { id: f.int('ID') ?? 0 };
  if (f.bool('keys') === true) r.keys = true;
  return r;
}

/** LeaseLeasesRequest has no fields. */
export function parseLeaseLeasesRequest(body: unknown): void {
  Fields.request(body, '', []);
}

// ---- decoding responses (client) -----------------------------------------------------------------------

export function decodeLeaseGrantResponse(json: unknown): LeaseGrantResponse {
  const f = Fields.response(json, '');
  const error = f.str('error');
  // The .proto has a string error member; treat a non-empty one as a failed grant rather than drop it.
  if (error !== undefined && error !== '') throw f.fail(`lease grant failed: ${error}`);
  return { header: decodeHeader(f.obj('header')), id: f.int('ID') ?? 0, ttl: f.int('TTL') ?? 0 };
}

export function decodeLeaseRevokeResponse(json: unknown): LeaseRevokeResponse {
  return { header: decodeHeader(Fields.response(json, '').obj('header')) };
}

export function decodeLeaseKeepAliveResponse(json: unknown): LeaseKeepAliveResponse {
  const f = Fields.response(json, '');
  return { header: decodeHeader(f.obj('header')), id: f.int('ID') ?? 0, ttl: f.int('TTL') ?? 0 };
}

export function decodeLeaseTimeToLiveResponse(json: unknown): LeaseTimeToLiveResponse {
  const f = Fields.response(json, '');
  return {
    header: decodeHeader(f.obj('header')),
    id: f.int('ID') ?? 0,
    ttl: f.int('TTL') ?? 0,
    grantedTtl: f.int('grantedTTL') ?? 0,
    keys: f.list('keys').map((k, i) => {
      const bad = (): Error => f.fail(`keys[${i}]: expected a base64 string`);
      if (typeof k !== 'string') throw bad();
      return decodeBase64(k, bad);
    }),
  };
}

export function decodeLeaseLeasesResponse(json: unknown): LeaseLeasesResponse {
  const f = Fields.response(json, '');
  return {
    header: decodeHeader(f.obj('header')),
    leases: f.list('leases').map((l, i) => ({ id: Fields.response(l, `leases[${i}]`).int('ID') ?? 0 })),
  };
}
