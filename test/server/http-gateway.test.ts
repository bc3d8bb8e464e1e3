// The gateway's unary routes, end to end over HTTP, against a recording fake of the member: the thing under
// test is the translation and the checks, not the store. The streaming routes: http-gateway-streams.test.ts.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import t from 'tap';
import { Errors, GrpcCode, KvError, MAX_LEASE_TTL, MAX_REQUEST_BYTES, type KeyValue } from '../../src/kv/api';
import { createClientServer } from '../../src/server/http-gateway';
import { MAX_BODY_BYTES, sendJson } from '../../src/server/json';
import { HEADER_JSON, RecordingService, header, startGateway as start, type Reply } from './fixtures/gateway-recorder';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

const kv = (key: string, value: string, c: number, m: number, v: number, lease = 0): KeyValue => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  createRevision: c,
  modRevision: m,
  version: v,
  lease,
});

/** The requests the member received, in order. */
const reqs = (svc: RecordingService): unknown[] => svc.calls.map((c) => c.req);

t.test('put: request decoding and exact response JSON', async (t) => {
  const { svc, post } = await start(t);
  svc.putResp = { header, prevKv: kv('foo', 'bar', 2, 4, 3) };
  const r = await post('/v3/kv/put', { key: b64('foo'), value: b64('baz'), prev_kv: true });
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^application\/json/);
  t.same(reqs(svc), [{ key: Buffer.from('foo'), value: Buffer.from('baz'), prevKv: true }]);
  t.equal(
    r.text,
    JSON.stringify({
      header: HEADER_JSON,
      prev_kv: { key: 'Zm9v', create_revision: '2', mod_revision: '4', version: '3', value: 'YmFy' },
    }),
    'int64 as strings, bytes as base64, lease 0 left out',
  );

  svc.putResp = { header: { clusterId: '', memberId: '', revision: 0, raftTerm: 0 } };
  const bare = await post('/v3/kv/put', { key: b64('k') });
  t.equal(bare.text, '{"header":{}}', 'defaults omitted everywhere; an absent value is empty');
  t.same(reqs(svc)[1], { key: Buffer.from('k'), value: Buffer.alloc(0) });

  // URL-safe base64 without padding, and the lowerCamelCase names, as protobuf JSON parsers accept.
  await post('/v3/kv/put', { key: '-_8', value: 'YQ', prevKv: false });
  t.same(reqs(svc)[2], { key: Buffer.from([0xfb, 0xff]), value: Buffer.from('a') });
});

t.test('range: request fields and response shapes', async (t) => {
  const { svc, post } = await start(t);
  svc.rangeResp = { header, kvs: [kv('a', 'x', 2, 2, 1, 7), kv('b', '', 3, 6, 2)], more: true, count: 3 };
  const r = await post('/v3/kv/range', {
    key: b64('a'),
    range_end: b64('c'),
    limit: '2',
    keys_only: true,
    count_only: false,
    serializable: true,
  });
  t.equal(r.status, 200);
  t.same(reqs(svc)[0], {
    key: Buffer.from('a'),
    rangeEnd: Buffer.from('c'),
    limit: 2,
    keysOnly: true,
    serializable: true,
  });
  t.same(r.json, {
    header: HEADER_JSON,
    kvs: [
      { key: 'YQ==', create_revision: '2', mod_revision: '2', version: '1', value: 'eA==', lease: '7' },
      { key: 'Yg==', create_revision: '3', mod_revision: '6', version: '2' },
    ],
    more: true,
    count: '3',
  });

  await post('/v3/kv/range', { key: b64('a'), limit: 5, range_end: 'AA==' });
  t.same(reqs(svc)[1], { key: Buffer.from('a'), rangeEnd: Buffer.from([0]), limit: 5 }, 'numbers accepted too');

  svc.rangeResp = { header, kvs: [], more: false, count: 0 };
  const empty = await post('/v3/kv/range', { key: b64('nothing') });
  t.same(empty.json, { header: HEADER_JSON }, 'no kvs, more or count when they are defaults');

  const noBody = await post('/v3/kv/range');
  t.equal(noBody.status, 400, 'an empty body is an empty request, whose empty key is refused here');
  t.same(noBody.json, { error: 'etcdserver: key is not provided', code: 3, message: 'etcdserver: key is not provided' });
  t.equal(reqs(svc).length, 3, 'it never reached the member');
});

t.test('deleterange', async (t) => {
  const { svc, post } = await start(t);
  svc.deleteResp = { header, deleted: 2, prevKvs: [kv('a', '1', 2, 2, 1), kv('b', '2', 3, 3, 1)] };
  const r = await post('/v3/kv/deleterange', { key: b64('a'), range_end: b64('c'), prev_kv: true });
  t.same(reqs(svc)[0], { key: Buffer.from('a'), rangeEnd: Buffer.from('c'), prevKv: true });
  t.same(r.json, {
    header: HEADER_JSON,
    deleted: '2',
    prev_kvs: [
      { key: 'YQ==', create_revision: '2', mod_revision: '2', version: '1', value: 'MQ==' },
      { key: 'Yg==', create_revision: '3', mod_revision: '3', version: '1', value: 'Mg==' },
    ],
  });
  svc.deleteResp = { header, deleted: 0, prevKvs: [] };
  t.same((await post('/v3/kv/deleterange', { key: b64('zz') })).json, { header: HEADER_JSON });
});

t.test('maintenance status', async (t) => {
  const { svc, post } = await start(t);
  const r = await post('/v3/maintenance/status', {});
  t.equal(r.status, 200);
  t.same(r.json, {
    header: HEADER_JSON,
    version: '3.4.0-keel',
    dbSize: '20480',
    leader: '255',
    raftIndex: '12',
    raftTerm: '2',
    raftAppliedIndex: '11',
    firstIndex: '1',
    name: 'n1',
  });
  svc.statusResp = { ...svc.statusResp, leader: '', isLearner: true, errors: ['NOSPACE'], snapshotIndex: 10 };
  const r2 = await post('/v3/maintenance/status', '');
  t.same(r2.json, {
    header: HEADER_JSON,
    version: '3.4.0-keel',
    dbSize: '20480',
    raftIndex: '12',
    raftTerm: '2',
    raftAppliedIndex: '11',
    errors: ['NOSPACE'],
    isLearner: true,
    snapshotIndex: '10',
    firstIndex: '1',
    name: 'n1',
  });
  t.equal((await post('/v3/maintenance/status', '[1]')).status, 400);
});

t.test('malformed requests are 400 with code 3', async (t) => {
  const { svc, post } = await start(t);
  const cases: [string, string | object, RegExp][] = [
    ['/v3/kv/put', { key: 'not base64!', value: b64('v') }, /key: illegal base64/],
    ['/v3/kv/put', { key: 'abcde', value: b64('v') }, /key: illegal base64/],
    ['/v3/kv/put', { key: b64('k'), value: 5 }, /value: expected a base64 string/],
    ['/v3/kv/put', { key: b64('k'), prev_kv: 'true' }, /prev_kv: expected true or false/],
    ['/v3/kv/range', { key: b64('k'), limit: 'ten' }, /limit: expected an integer/],
    ['/v3/kv/range', { key: b64('k'), limit: 1.5 }, /limit: 1.5 is not an integer/],
    ['/v3/kv/range', { key: b64('k'), keys_only: 1 }, /keys_only: expected true or false/],
    ['/v3/kv/range', '{"key": ', /invalid JSON body/],
    ['/v3/kv/range', '"just a string"', /expected a JSON object/],
    ['/v3/kv/deleterange', { key: b64('k'), range_end: ['x'] }, /range_end: expected a base64 string/],
  ];
  for (const [path, body, message] of cases) {
    const r = await post(path, body);
    t.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
    t.match(r.json, { error: message, message, code: 3 });
    const e = r.json as { error: string; message: string };
    t.equal(e.error, e.message);
  }
  t.equal(reqs(svc).length, 0, 'nothing reached the member');
});

t.test('errors from the member map to grpc-gateway statuses', async (t) => {
  const { svc, post } = await start(t);
  const cases: [Error, number, number, string][] = [
    [Errors.noLeader(), 503, 14, 'etcdserver: no leader'],
    [Errors.timeout(), 503, 14, 'etcdserver: request timed out'],
    [Errors.emptyKey(), 400, 3, 'etcdserver: key is not provided'],
    [new KvError(GrpcCode.DeadlineExceeded, 'context deadline exceeded'), 504, 4, 'context deadline exceeded'],
    [new KvError(GrpcCode.FailedPrecondition, 'fp'), 400, 9, 'fp'],
    [new KvError(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision is a future revision'), 400, 11, 'etcdserver: mvcc: required revision is a future revision'],
    [new KvError(GrpcCode.NotFound, 'nf'), 404, 5, 'nf'],
    [new KvError(GrpcCode.Unimplemented, 'ni'), 501, 12, 'ni'],
    [new KvError(GrpcCode.Internal, 'int'), 500, 13, 'int'],
    [new Error('disk on fire'), 500, 2, 'disk on fire'],
  ];
  for (const [err, status, code, message] of cases) {
    svc.fail = err;
    const r = await post('/v3/kv/put', { key: b64('k'), value: b64('v') });
    t.equal(r.status, status, message);
    t.same(r.json, { error: message, code, message });
  }
  svc.fail = Errors.noLeader();
  t.equal((await post('/v3/maintenance/status', {})).status, 503);
});

t.test('unknown paths, wrong methods, oversized bodies', async (t) => {
  const { call, port } = await start(t);
  const nf = await call('POST', '/v3/kv/nope', {});
  t.equal(nf.status, 404);
  t.same(nf.json, { error: 'Not Found', code: 5, message: 'Not Found' });
  t.equal((await call('GET', '/')).status, 404);

  const wrong = await call('GET', '/v3/kv/put');
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.allow, 'POST');
  t.same(wrong.json, { error: 'Method Not Allowed', code: 12, message: 'Method Not Allowed' });
  t.equal((await call('POST', '/health')).status, 405);

  // Declared too large: refused from the headers alone, before a byte of the body is sent.
  const declared = await new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v3/kv/put',
        agent: false,
        headers: { 'content-length': MAX_BODY_BYTES + 1 },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: JSON.parse(text) });
          req.destroy();
        });
      },
    );
    req.on('error', reject);
    req.flushHeaders();
  });
  t.equal(declared.status, 413);
  t.same(declared.json, {
    error: 'etcdserver: request is too large',
    code: 3,
    message: 'etcdserver: request is too large',
  });

  // Chunked (no length declared): refused once the limit is crossed.
  const big = await call('POST', '/v3/kv/put', 'x'.repeat(MAX_BODY_BYTES + 10), { 'transfer-encoding': 'chunked' });
  t.equal(big.status, 413);
  t.match(big.json, { message: 'etcdserver: request is too large' });
});

t.test('health and version', async (t) => {
  const { svc, call } = await start(t);
  const ok = await call('GET', '/health');
  t.equal(ok.status, 200);
  t.equal(ok.text, '{"health":"true","reason":""}');

  svc.healthResp = { health: false, reason: 'RAFT NO LEADER' };
  const bad = await call('GET', '/health');
  t.equal(bad.status, 503);
  t.equal(bad.text, '{"health":"false","reason":"RAFT NO LEADER"}');

  svc.healthResp = new Error('member stopped');
  const thrown = await call('GET', '/health?serializable=true');
  t.equal(thrown.status, 503, 'query strings do not change the route');
  t.same(thrown.json, { health: 'false', reason: 'member stopped' });

  const v = await call('GET', '/version');
  t.equal(v.status, 200);
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  t.same(v.json, { etcdserver: '3.4.0-keel', etcdcluster: '3.4.0', keel: pkg.version });
});

t.test('extra routes', async (t) => {
  const { call } = await start(t, {
    extraRoutes: [
      { method: 'GET', path: '/metrics', handle: (_req, res) => sendJson(res, 200, { ok: true }) },
      {
        method: 'POST',
        path: '/v3/cluster/member/update',
        handle: async () => {
          throw Errors.noLeader();
        },
      },
    ],
  });
  t.same((await call('GET', '/metrics')).json, { ok: true });
  const failed = await call('POST', '/v3/cluster/member/update', {});
  t.equal(failed.status, 503);
  t.match(failed.json, { code: 14, message: 'etcdserver: no leader' });

  t.throws(
    () =>
      createClientServer(new RecordingService(), {
        extraRoutes: [{ method: 'POST', path: '/v3/kv/put', handle: () => undefined }],
      }),
    /route POST \/v3\/kv\/put is defined twice/,
  );
});

t.test('range, put: the fields added for issue 3 reach the member', async (t) => {
  const { svc, post } = await start(t);
  await post('/v3/kv/range', {
    key: b64('a'),
    range_end: 'AA==',
    revision: '4',
    sort_order: 'DESCEND',
    sort_target: 'MOD',
    min_mod_revision: '2',
    max_create_revision: 9,
  });
  t.same(reqs(svc)[0], {
    key: Buffer.from('a'),
    rangeEnd: Buffer.from([0]),
    revision: 4,
    sortOrder: 'DESCEND',
    sortTarget: 'MOD',
    minModRevision: 2,
    maxCreateRevision: 9,
  });
  await post('/v3/kv/put', { key: b64('k'), lease: '7587', ignore_value: true });
  t.same(reqs(svc)[1], { key: Buffer.from('k'), value: Buffer.alloc(0), lease: 7587, ignoreValue: true });
});

t.test('txn: nested request in, exact JSON out', async (t) => {
  const { svc, post } = await start(t);
  const h = { clusterId: '', memberId: '', revision: 5, raftTerm: 0 };
  svc.txnResp = {
    header,
    succeeded: true,
    responses: [
      { type: 'put', put: { header: h } },
      { type: 'range', range: { header: h, kvs: [kv('a', 'x', 2, 5, 1)], more: false, count: 1 } },
      { type: 'deleteRange', deleteRange: { header: h, deleted: 1, prevKvs: [] } },
    ],
  };
  const r = await post('/v3/kv/txn', {
    compare: [{ key: b64('a'), target: 'MOD', result: 'LESS', mod_revision: '5' }],
    success: [
      { request_put: { key: b64('a'), value: b64('x') } },
      { request_range: { key: b64('a') } },
      { request_delete_range: { key: b64('b') } },
    ],
    failure: [{ request_txn: { success: [{ request_range: { key: b64('a'), serializable: true } }] } }],
  });
  t.equal(r.status, 200);
  t.same(reqs(svc)[0], {
    compare: [{ key: Buffer.from('a'), result: 'LESS', target: 'MOD', modRevision: 5 }],
    success: [
      { type: 'put', put: { key: Buffer.from('a'), value: Buffer.from('x') } },
      { type: 'range', range: { key: Buffer.from('a') } },
      { type: 'deleteRange', deleteRange: { key: Buffer.from('b') } },
    ],
    failure: [
      {
        type: 'txn',
        txn: { compare: [], success: [{ type: 'range', range: { key: Buffer.from('a'), serializable: true } }], failure: [] },
      },
    ],
  });
  t.equal(
    r.text,
    JSON.stringify({
      header: HEADER_JSON,
      succeeded: true,
      responses: [
        { response_put: { header: { revision: '5' } } },
        {
          response_range: {
            header: { revision: '5' },
            kvs: [{ key: 'YQ==', create_revision: '2', mod_revision: '5', version: '1', value: 'eA==' }],
            count: '1',
          },
        },
        { response_delete_range: { header: { revision: '5' }, deleted: '1' } },
      ],
    }),
  );
  svc.txnResp = { header, succeeded: false, responses: [] };
  const read = await post('/v3/kv/txn', { success: [{ request_range: { key: b64('a'), serializable: true } }] });
  t.same(read.json, { header: HEADER_JSON }, 'succeeded false and no responses: both left out');
  t.same(reqs(svc)[1], {
    compare: [],
    success: [{ type: 'range', range: { key: Buffer.from('a'), serializable: true } }],
    failure: [],
    serializable: true,
  });
});

t.test('compaction', async (t) => {
  const { svc, post } = await start(t);
  const r = await post('/v3/kv/compaction', { revision: '3', physical: true });
  t.equal(r.status, 200);
  t.same(r.json, { header: HEADER_JSON });
  t.same(reqs(svc), [{ revision: 3, physical: true }]);
  svc.fail = Errors.compacted();
  const old = await post('/v3/kv/compaction', { revision: '2' });
  t.equal(old.status, 400);
  t.same(old.json, {
    error: 'etcdserver: mvcc: required revision has been compacted',
    code: 11,
    message: 'etcdserver: mvcc: required revision has been compacted',
  });
});

t.test("leases, with etcd 3.4's /v3/kv/lease/ aliases", async (t) => {
  const { svc, post } = await start(t);
  const grant = await post('/v3/lease/grant', { TTL: '30' });
  t.equal(grant.text, JSON.stringify({ header: HEADER_JSON, ID: '7587', TTL: '30' }));
  t.same(reqs(svc).pop(), { ttl: 30 });
  await post('/v3/lease/grant', { TTL: 30, ID: '99' });
  t.same(reqs(svc).pop(), { ttl: 30, id: 99 });

  for (const p of ['/v3/lease/revoke', '/v3/kv/lease/revoke']) {
    const r = await post(p, { ID: '7587' });
    t.equal(r.text, JSON.stringify({ header: HEADER_JSON }), p);
    t.same(svc.calls[svc.calls.length - 1], { method: 'leaseRevoke', req: { id: 7587 } });
  }
  svc.timeToLiveResp = { header, id: 7587, ttl: 20, grantedTtl: 30, keys: [Buffer.from('foo')] };
  for (const p of ['/v3/lease/timetolive', '/v3/kv/lease/timetolive']) {
    const r = await post(p, { ID: '7587', keys: true });
    t.same(r.json, { header: HEADER_JSON, ID: '7587', TTL: '20', grantedTTL: '30', keys: ['Zm9v'] }, p);
    t.same(svc.calls[svc.calls.length - 1], { method: 'leaseTimeToLive', req: { id: 7587, keys: true } });
  }
  svc.leasesResp = { header, leases: [{ id: 1 }, { id: 7587 }] };
  for (const p of ['/v3/lease/leases', '/v3/kv/lease/leases']) {
    const r = await post(p, {});
    t.same(r.json, { header: HEADER_JSON, leases: [{ ID: '1' }, { ID: '7587' }] }, p);
  }
  svc.fail = Errors.leaseNotFound();
  const missing = await post('/v3/lease/revoke', { ID: '5' });
  t.equal(missing.status, 404);
  t.same(missing.json, {
    error: 'etcdserver: requested lease not found',
    code: 5,
    message: 'etcdserver: requested lease not found',
  });
});

t.test('every bad input is refused with its status and message, and nothing reaches the member', async (t) => {
  const { svc, post } = await start(t);
  const big = b64('x'.repeat(MAX_REQUEST_BYTES));
  const ops = (n: number) => Array.from({ length: n }, (_, i) => ({ request_put: { key: b64(`k${i}`) } }));
  const cases: [string, string, unknown, number, number, string][] = [
    ['over 1.5 MiB', '/v3/kv/put', { key: b64('k'), value: big }, 400, 3, 'etcdserver: request is too large'],
    ['over 1.5 MiB in a txn', '/v3/kv/txn', { success: [{ request_put: { key: b64('k'), value: big } }] }, 400, 3, 'etcdserver: request is too large'],
    ['bad base64', '/v3/kv/put', { key: 'a=b', value: b64('v') }, 400, 3, 'key: illegal base64 data'],
    ['unknown field', '/v3/kv/range', { key: b64('k'), prefix: true }, 400, 3, 'prefix: unknown field'],
    ['unknown field in a txn', '/v3/kv/txn', { success: [{ request_range: { key: b64('k'), rev: 1 } }] }, 400, 3, 'success[0].request_range.rev: unknown field'],
    ['empty key', '/v3/kv/put', { value: b64('v') }, 400, 3, 'etcdserver: key is not provided'],
    ['empty key (delete)', '/v3/kv/deleterange', {}, 400, 3, 'etcdserver: key is not provided'],
    ['negative limit', '/v3/kv/range', { key: b64('k'), limit: '-1' }, 400, 3, 'etcdserver: invalid limit -1 (must be >= 0)'],
    ['negative revision', '/v3/kv/range', { key: b64('k'), revision: -2 }, 400, 3, 'etcdserver: invalid revision -2 (must be >= 0)'],
    ['bad enum name', '/v3/kv/range', { key: b64('k'), sort_order: 'DOWN' }, 400, 3, 'sort_order: unknown value "DOWN" (expected one of NONE, ASCEND, DESCEND, or 0-2)'],
    ['txn of 129 operations', '/v3/kv/txn', { success: ops(129) }, 400, 3, 'etcdserver: too many operations in txn request'],
    ['a key twice in a txn', '/v3/kv/txn', { success: [...ops(2), ...ops(1)] }, 400, 3, 'etcdserver: duplicate key given in txn request'],
    [
      'a put inside a delete of the same txn',
      '/v3/kv/txn',
      { success: [{ request_delete_range: { key: b64('a'), range_end: b64('z') } }, { request_put: { key: b64('m') } }] },
      400,
      3,
      'etcdserver: duplicate key given in txn request',
    ],
    ['ignore_value with a value', '/v3/kv/put', { key: b64('k'), value: b64('v'), ignore_value: true }, 400, 3, 'etcdserver: value is provided'],
    ['ignore_lease with a lease', '/v3/kv/put', { key: b64('k'), lease: '5', ignore_lease: true }, 400, 3, 'etcdserver: lease is provided'],
    ['negative lease on a put', '/v3/kv/put', { key: b64('k'), lease: '-5' }, 400, 3, 'etcdserver: invalid lease -5 (a lease id is between 0 and 9007199254740991)'],
    ['lease TTL 0', '/v3/lease/grant', { TTL: '0' }, 400, 3, 'etcdserver: invalid lease TTL 0 (must be > 0 seconds)'],
    ['lease TTL negative', '/v3/lease/grant', { TTL: -10 }, 400, 3, 'etcdserver: invalid lease TTL -10 (must be > 0 seconds)'],
    ['lease TTL too large', '/v3/lease/grant', { TTL: String(MAX_LEASE_TTL + 1) }, 400, 11, 'etcdserver: too large lease TTL'],
    ['negative lease id', '/v3/lease/revoke', { ID: '-1' }, 400, 3, 'etcdserver: invalid lease ID -1 (a lease id is between 0 and 9007199254740991)'],
    [
      'lease id beyond 2^53-1',
      '/v3/lease/timetolive',
      { ID: '9223372036854775807' },
      400,
      3,
      'ID: 9223372036854775807 is out of the range Keel supports (at most 9007199254740991 = 2^53-1 in magnitude)',
    ],
    ['compaction at 0', '/v3/kv/compaction', { revision: '0' }, 400, 3, 'etcdserver: invalid compaction revision 0 (must be >= 1)'],
    ['compaction field misspelt', '/v3/kv/compaction', { rev: '5' }, 400, 3, 'rev: unknown field'],
    ['a field for status', '/v3/maintenance/status', { verbose: true }, 400, 3, 'verbose: unknown field'],
  ];
  for (const [name, path, body, status, code, message] of cases) {
    const r = await post(path, body as object);
    t.equal(r.status, status, `${name}: status`);
    t.same(r.json, { error: message, code, message }, name);
  }
  t.same(svc.calls, [], 'nothing reached the member');
});

t.test('a body just over the byte limit is still read, so the member-side limit gets its own message', async (t) => {
  // JSON carries base64 (4/3 of the bytes): a 1.5 MiB value is ~2 MiB of body, under MAX_BODY_BYTES.
  t.ok(Math.ceil((MAX_REQUEST_BYTES + 1) / 3) * 4 < MAX_BODY_BYTES);
});
