// The Watch service in etcd's gateway JSON. POST /v3/watch carries a stream of WatchRequest objects in the
// request body ({"create_request": {...}}, {"cancel_request": {"watch_id": "1"}}, {"progress_request": {}})
// and answers a stream of {"result": WatchResponse} lines. An Event's type is an enum whose default is PUT,
// so protobuf JSON leaves "type" out of PUT events and writes "type":"DELETE" for deletes.

import type { Event, WatchCreateRequest, WatchFilter, WatchResponse } from '../api';
import { Fields, bytes, compact, enumName, flag, int64 } from './fields';
import { decodeHeader, decodeKeyValue, headerToJson, kvToJson, type HeaderJson, type KeyValueJson } from './kv-json';

export const WATCH_FILTERS: readonly WatchFilter[] = ['NOPUT', 'NODELETE'];
export const EVENT_TYPES: readonly Event['type'][] = ['PUT', 'DELETE'];

/** One message of the request stream (etcd's WatchRequest, a oneof). */
export type WatchRequest =
  | { type: 'create'; create: WatchCreateRequest }
  | { type: 'cancel'; watchId: number }
  | { type: 'progress' };

// ---- JSON shapes ---------------------------------------------------------------------------------------

export interface WatchCreateRequestJson {
  key?: string;
  range_end?: string;
  start_revision?: string;
  progress_notify?: boolean;
  filters?: WatchFilter[];
  prev_kv?: boolean;
  watch_id?: string;
  fragment?: boolean;
}

export interface WatchRequestJson {
  create_request?: WatchCreateRequestJson;
  cancel_request?: { watch_id?: string };
  progress_request?: Record<string, never>;
}

export interface EventJson {
  type?: 'DELETE';
  kv?: KeyValueJson;
  prev_kv?: KeyValueJson;
}

export interface WatchResponseJson {
  header: HeaderJson;
  watch_id?: string;
  created?: boolean;
  canceled?: boolean;
  compact_revision?: string;
  cancel_reason?: string;
  fragment?: boolean;
  events?: EventJson[];
}

// ---- server --------------------------------------------------------------------------------------------

export function eventToJson(e: Event): EventJson {
  return compact({
    type: enumName(e.type, EVENT_TYPES) as 'DELETE' | undefined,
    kv: kvToJson(e.kv),
    prev_kv: e.prevKv === undefined ? undefined : kvToJson(e.prevKv),
  });
}

export function watchResponseToJson(r: WatchResponse): WatchResponseJson {
  return compact({
    header: headerToJson(r.header),
    watch_id: int64(r.watchId),
    created: flag(r.created),
    canceled: flag(r.canceled),
    compact_revision: int64(r.compactRevision ?? 0),
    cancel_reason: r.cancelReason === undefined || r.cancelReason === '' ? undefined : r.cancelReason,
    fragment: flag(r.fragment),
    events: r.events.length === 0 ? undefined : r.events.map(eventToJson),
  });
}

const CREATE_FIELDS = [
  'key',
  'range_end',
  'start_revision',
  'progress_notify',
  'filters',
  'prev_kv',
  'watch_id',
  'fragment',
];

function parseCreate(body: unknown, where: string): WatchCreateRequest {
  const f = Fields.request(body, where, CREATE_FIELDS);
  const key = f.bytes('key');
  // As etcd's watch server does: an empty key is "\0", the smallest key (so that key "" with range_end
  // "\0" watches everything).
  const r: WatchCreateRequest = { key: key === undefined || key.length === 0 ? Buffer.from([0]) : key };
  const rangeEnd = f.bytes('range_end');
  if (rangeEnd !== undefined && rangeEnd.length > 0) r.rangeEnd = rangeEnd;
  const start = f.int('start_revision');
  if (start !== undefined && start !== 0) r.startRevision = start;
  if (f.bool('progress_notify') === true) r.progressNotify = true;
  const filters = f.enumList('filters', WATCH_FILTERS);
  if (filters.length > 0) r.filters = filters;
  if (f.bool('prev_kv') === true) r.prevKv = true;
  // 0 is protobuf's "not set", which etcd reads as "pick one".
  const id = f.int('watch_id');
  if (id !== undefined && id !== 0) r.watchId = id;
  if (f.bool('fragment') === true) r.fragment = true;
  return r;
}

const REQUEST_FIELDS = ['create_request', 'cancel_request', 'progress_request'];

export function parseWatchRequest(body: unknown): WatchRequest {
  const f = Fields.request(body, '', REQUEST_FIELDS);
  const given = REQUEST_FIELDS.filter((x) => f.has(x));
  if (given.length !== 1) {
    throw f.fail(
      given.length === 0
        ? `watch request: expected one of ${REQUEST_FIELDS.join(', ')}`
        : `watch request: one request per message, got ${given.join(' and ')}`,
    );
  }
  switch (given[0]) {
    case 'create_request':
      return { type: 'create', create: parseCreate(f.obj('create_request'), 'create_request') };
    case 'cancel_request': {
      const c = Fields.request(f.obj('cancel_request'), 'cancel_request', ['watch_id']);
      return { type: 'cancel', watchId: c.int('watch_id') ?? 0 };
    }
    default:
      Fields.request(f.obj('progress_request'), 'progress_request', []);
      return { type: 'progress' };
  }
}

// ---- client --------------------------------------------------------------------------------------------

export function watchCreateRequestToJson(r: WatchCreateRequest): WatchRequestJson {
  return {
    create_request: compact({
      key: bytes(r.key),
      range_end: bytes(r.rangeEnd),
      start_revision: int64(r.startRevision ?? 0),
      progress_notify: flag(r.progressNotify),
      filters: r.filters === undefined || r.filters.length === 0 ? undefined : [...r.filters],
      prev_kv: flag(r.prevKv),
      watch_id: r.watchId === undefined || r.watchId === -1 ? undefined : int64(r.watchId),
      fragment: flag(r.fragment),
    }),
  };
}

export function watchCancelRequestToJson(watchId: number): WatchRequestJson {
  return { cancel_request: compact({ watch_id: int64(watchId) }) };
}

export function watchProgressRequestToJson(): WatchRequestJson {
  return { progress_request: {} };
}

function decodeEvent(json: unknown, where: string): Event {
  const f = Fields.response(json, where);
  const e: Event = {
    type: f.enumValue('type', EVENT_TYPES) ?? 'PUT',
    kv: decodeKeyValue(f.obj('kv'), f.name('kv')),
  };
  const prev = f.obj('prev_kv');
  if (prev !== undefined) e.prevKv = decodeKeyValue(prev, f.name('prev_kv'));
  return e;
}

export function decodeWatchResponse(json: unknown): WatchResponse {
  const f = Fields.response(json, 'result');
  const r: WatchResponse = {
    header: decodeHeader(f.obj('header'), f.name('header')),
    watchId: f.int('watch_id') ?? 0,
    events: f.list('events').map((e, i) => decodeEvent(e, `${f.name('events')}[${i}]`)),
  };
  if (f.bool('created') === true) r.created = true;
  if (f.bool('canceled') === true) r.canceled = true;
  const compactRevision = f.int('compact_revision');
  if (compactRevision !== undefined && compactRevision !== 0) r.compactRevision = compactRevision;
  const reason = f.str('cancel_reason');
  if (reason !== undefined && reason !== '') r.cancelReason = reason;
  if (f.bool('fragment') === true) r.fragment = true;
  return r;
}
