// Leases and watch in the gateway's JSON: the .proto's field names ("ID", "TTL", "grantedTTL"), etcd's
// documented watch stream lines, the PUT event type left out as the enum's default.

import t from 'tap';
import { GrpcCode, type KvError, type WatchResponse } from '../../src/kv/api';
import {
  decodeLeaseGrantResponse,
  decodeLeaseKeepAliveResponse,
  decodeLeaseLeasesResponse,
  decodeLeaseTimeToLiveResponse,
  decodeWatchResponse,
  leaseGrantRequestToJson,
  leaseGrantResponseToJson,
  leaseIdRequestToJson,
  leaseKeepAliveResponseToJson,
  leaseLeasesResponseToJson,
  leaseTimeToLiveRequestToJson,
  leaseTimeToLiveResponseToJson,
  parseLeaseGrantRequest,
  parseLeaseKeepAliveRequest,
  parseLeaseLeasesRequest,
  parseLeaseRevokeRequest,
  parseLeaseTimeToLiveRequest,
  parseWatchRequest,
  watchCancelRequestToJson,
  watchCreateRequestToJson,
  watchProgressRequestToJson,
  watchResponseToJson,
} from '../../src/kv/gateway-json';

const wire = (o: unknown): unknown => JSON.parse(JSON.stringify(o));
const header = { clusterId: '00000000000000aa', memberId: '00000000000000bb', revision: 4, raftTerm: 2 };
const HEADER_JSON = { cluster_id: '170', member_id: '187', revision: '4', raft_term: '2' };

t.test('lease requests: the .proto names, numbers or strings', async (t) => {
  t.same(leaseGrantRequestToJson({ ttl: 30 }), { TTL: '30' });
  t.same(leaseGrantRequestToJson({ ttl: 30, id: 7587 }), { TTL: '30', ID: '7587' });
  t.same(parseLeaseGrantRequest({ TTL: 30, ID: '7587' }), { ttl: 30, id: 7587 });
  t.same(parseLeaseGrantRequest({ TTL: '30', ID: 0 }), { ttl: 30 }, 'ID 0: the member picks one');
  t.same(parseLeaseRevokeRequest(wire(leaseIdRequestToJson({ id: 9 }))), { id: 9 });
  t.same(parseLeaseKeepAliveRequest({ ID: '9' }), { id: 9 });
  t.same(leaseTimeToLiveRequestToJson({ id: 9, keys: true }), { ID: '9', keys: true });
  t.same(parseLeaseTimeToLiveRequest({ ID: '9', keys: true }), { id: 9, keys: true });
  t.same(parseLeaseTimeToLiveRequest({ ID: '9', keys: false }), { id: 9 });
  t.doesNotThrow(() => parseLeaseLeasesRequest({}));

  const unknown = t.throws(() => parseLeaseGrantRequest({ ttl: 30 })) as KvError;
  t.equal(unknown.message, 'ttl: unknown field', 'the field is "TTL", as in etcd');
  t.equal(unknown.code, GrpcCode.InvalidArgument);
  t.throws(() => parseLeaseRevokeRequest({ id: 1 }), { message: 'id: unknown field' });
  t.throws(() => parseLeaseLeasesRequest({ keys: true }), { message: 'keys: unknown field' });
  // etcd's lease ids are int64; Keel's stop at 2^53-1, and one beyond is refused by name, not rounded.
  t.throws(() => parseLeaseRevokeRequest({ ID: '7587822882194199413' }), {
    message: /^ID: 7587822882194199413 is out of the range Keel supports \(at most 9007199254740991/,
  });
  t.throws(() => parseLeaseKeepAliveRequest({ ID: 9007199254740993 }), { message: /^ID: 9007199254740992 is out of the range/ });
  t.same(parseLeaseKeepAliveRequest({ ID: '9007199254740991' }), { id: 9007199254740991 });
});

t.test('lease responses', async (t) => {
  const grant = { header, id: 7587, ttl: 30 };
  t.same(wire(leaseGrantResponseToJson(grant)), { header: HEADER_JSON, ID: '7587', TTL: '30' });
  t.same(decodeLeaseGrantResponse(wire(leaseGrantResponseToJson(grant))), grant);
  t.throws(() => decodeLeaseGrantResponse({ header: HEADER_JSON, error: 'lessor: no space' }), /lease grant failed: lessor: no space/);

  const gone = { header, id: 7587, ttl: 0 };
  t.same(wire(leaseKeepAliveResponseToJson(gone)), { header: HEADER_JSON, ID: '7587' }, 'TTL 0 (gone) is left out');
  t.same(decodeLeaseKeepAliveResponse(wire(leaseKeepAliveResponseToJson(gone))), gone);

  const ttl = { header, id: 7587, ttl: 12, grantedTtl: 30, keys: [Buffer.from('foo'), Buffer.from([0xff])] };
  t.same(wire(leaseTimeToLiveResponseToJson(ttl)), {
    header: HEADER_JSON,
    ID: '7587',
    TTL: '12',
    grantedTTL: '30',
    keys: ['Zm9v', '/w=='],
  });
  t.same(decodeLeaseTimeToLiveResponse(wire(leaseTimeToLiveResponseToJson(ttl))), ttl);
  const missing = { header, id: 7587, ttl: -1, grantedTtl: 0, keys: [] };
  t.same(wire(leaseTimeToLiveResponseToJson(missing)), { header: HEADER_JSON, ID: '7587', TTL: '-1' });
  t.same(decodeLeaseTimeToLiveResponse(wire(leaseTimeToLiveResponseToJson(missing))), missing);
  t.throws(() => decodeLeaseTimeToLiveResponse({ keys: [5] }), /keys\[0\]: expected a base64 string/);

  const leases = { header, leases: [{ id: 1 }, { id: 7587 }] };
  t.same(wire(leaseLeasesResponseToJson(leases)), { header: HEADER_JSON, leases: [{ ID: '1' }, { ID: '7587' }] });
  t.same(decodeLeaseLeasesResponse(wire(leaseLeasesResponseToJson(leases))), leases);
  t.same(wire(leaseLeasesResponseToJson({ header, leases: [] })), { header: HEADER_JSON });
});

t.test("etcd's documented watch lines decode, and Keel writes them byte for byte", async (t) => {
  // From etcd's Documentation/dev-guide/api_grpc_gateway.md (v3.4), the "result" of each line.
  const created =
    '{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"1","raft_term":"2"},"created":true}';
  const c = decodeWatchResponse(JSON.parse(created));
  t.same([c.created, c.watchId, c.events], [true, 0, []]);
  t.equal(JSON.stringify(watchResponseToJson(c)), created);

  const put =
    '{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"2","raft_term":"2"},"events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}}]}';
  const p = decodeWatchResponse(JSON.parse(put));
  t.equal(p.events.length, 1);
  t.equal(p.events[0].type, 'PUT', 'no "type": PUT, the enum default');
  t.equal(p.events[0].kv.value.toString(), 'bar');
  t.equal(JSON.stringify(watchResponseToJson(p)), put);
});

t.test('watch responses: deletes, prev_kv, cancel, compaction, progress', async (t) => {
  const kv = (key: string, mod: number, value = '') => ({
    key: Buffer.from(key),
    value: Buffer.from(value),
    createRevision: value === '' ? 0 : 2,
    modRevision: mod,
    version: value === '' ? 0 : 1,
    lease: 0,
  });
  const events: WatchResponse = {
    header,
    watchId: 3,
    events: [
      { type: 'DELETE', kv: kv('a', 4), prevKv: kv('a', 2, 'x') },
      { type: 'PUT', kv: kv('b', 4, 'y') },
    ],
  };
  t.same(wire(watchResponseToJson(events)), {
    header: HEADER_JSON,
    watch_id: '3',
    events: [
      { type: 'DELETE', kv: { key: 'YQ==', mod_revision: '4' }, prev_kv: { key: 'YQ==', create_revision: '2', mod_revision: '2', version: '1', value: 'eA==' } },
      { kv: { key: 'Yg==', create_revision: '2', mod_revision: '4', version: '1', value: 'eQ==' } },
    ],
  });
  t.same(decodeWatchResponse(wire(watchResponseToJson(events))), events);

  const canceled: WatchResponse = {
    header,
    watchId: 3,
    created: true,
    canceled: true,
    compactRevision: 3,
    cancelReason: 'etcdserver: mvcc: required revision has been compacted',
    events: [],
  };
  t.same(wire(watchResponseToJson(canceled)), {
    header: HEADER_JSON,
    watch_id: '3',
    created: true,
    canceled: true,
    compact_revision: '3',
    cancel_reason: 'etcdserver: mvcc: required revision has been compacted',
  });
  t.same(decodeWatchResponse(wire(watchResponseToJson(canceled))), canceled);

  const progress: WatchResponse = { header, watchId: -1, events: [] };
  t.same(wire(watchResponseToJson(progress)), { header: HEADER_JSON, watch_id: '-1' });
  t.same(decodeWatchResponse(wire(watchResponseToJson(progress))), progress);
  const fragment: WatchResponse = { header, watchId: 0, fragment: true, events: [] };
  t.same(decodeWatchResponse(wire(watchResponseToJson(fragment))), fragment);
  t.same(decodeWatchResponse({ events: [{ type: 1, kv: { key: 'YQ==' } }] }).events[0].type, 'DELETE', 'enum by number');
  t.throws(() => decodeWatchResponse({ events: [{ type: 'EXPIRE' }] }), /result\.events\[0\]\.type: unknown value "EXPIRE"/);
});

t.test('watch requests: create, cancel, progress', async (t) => {
  const create = {
    key: Buffer.from('foo'),
    rangeEnd: Buffer.from('fop'),
    startRevision: 5,
    progressNotify: true,
    filters: ['NODELETE' as const],
    prevKv: true,
    watchId: 7,
    fragment: true,
  };
  const json = watchCreateRequestToJson(create);
  t.same(json, {
    create_request: {
      key: 'Zm9v',
      range_end: 'Zm9w',
      start_revision: '5',
      progress_notify: true,
      filters: ['NODELETE'],
      prev_kv: true,
      watch_id: '7',
      fragment: true,
    },
  });
  t.same(parseWatchRequest(wire(json)), { type: 'create', create });
  t.same(watchCreateRequestToJson({ key: Buffer.from('a'), watchId: -1 }), { create_request: { key: 'YQ==' } });
  t.same(
    parseWatchRequest({ create_request: { key: 'Zm9v' } }),
    { type: 'create', create: { key: Buffer.from('foo') } },
    "etcd's documented request",
  );
  t.same(
    parseWatchRequest({ createRequest: { rangeEnd: 'AA==', filters: [0, 'NODELETE'], watchId: '0' } }),
    { type: 'create', create: { key: Buffer.from([0]), rangeEnd: Buffer.from([0]), filters: ['NOPUT', 'NODELETE'] } },
    'an empty key is "\\0", as etcd makes it; watch_id 0 is "pick one"',
  );
  t.same(parseWatchRequest(wire(watchCancelRequestToJson(7))), { type: 'cancel', watchId: 7 });
  t.same(parseWatchRequest(wire(watchProgressRequestToJson())), { type: 'progress' });

  const bad: [unknown, string][] = [
    [{}, 'watch request: expected one of create_request, cancel_request, progress_request'],
    [{ create_request: {}, progress_request: {} }, 'watch request: one request per message, got create_request and progress_request'],
    [{ create_request: { key: 'Zm9v', filters: ['NOPUTS'] } }, 'create_request.filters[0]: unknown value "NOPUTS" (expected one of NOPUT, NODELETE, or 0-1)'],
    [{ create_request: { key: 'Zm9v', start_rev: '3' } }, 'create_request.start_rev: unknown field'],
    [{ cancel_request: { id: '3' } }, 'cancel_request.id: unknown field'],
    [{ progress_request: { now: true } }, 'progress_request.now: unknown field'],
    [{ create_request: { key: 'Zm9v', filters: 'NOPUT' } }, 'create_request.filters: expected a list'],
  ];
  for (const [body, message] of bad) t.throws(() => parseWatchRequest(body), { message }, message);
});
