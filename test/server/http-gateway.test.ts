// The gateway's JSON translation, end to end over HTTP, against an in-memory fake of the member: the thing
// under test is the translation, not the store.

import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import {
  Errors,
  GrpcCode,
  KvError,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type HealthResponse,
  type KeyValue,
  type KvService,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
} from '../../src/kv/api';
import { createClientServer, type ClientServerOptions } from '../../src/server/http-gateway';
import { MAX_BODY_BYTES, sendJson } from '../../src/server/json';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const header: ResponseHeader = {
  clusterId: 'ffffffffffffffff',
  memberId: '00000000000000ff',
  revision: 5,
  raftTerm: 2,
};
/** uint64 ids beyond 2^53: printed exactly, which a JS number could not do. */
const HEADER_JSON = { cluster_id: '18446744073709551615', member_id: '255', revision: '5', raft_term: '2' };

const kv = (key: string, value: string, c: number, m: number, v: number, lease = 0): KeyValue => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  createRevision: c,
  modRevision: m,
  version: v,
  lease,
});

/** Records what the gateway hands to the member and answers what the test tells it to. */
class FakeService implements KvService {
  calls: (RangeRequest | PutRequest | DeleteRangeRequest)[] = [];
  fail: Error | undefined;
  rangeResp: RangeResponse = { header, kvs: [], more: false, count: 0 };
  putResp: PutResponse = { header };
  deleteResp: DeleteRangeResponse = { header, deleted: 0, prevKvs: [] };
  statusResp: StatusResponse = {
    header,
    version: '3.4.0-keel',
    dbSize: 20480,
    leader: '00000000000000ff',
    raftIndex: 12,
    raftTerm: 2,
    raftAppliedIndex: 11,
    snapshotIndex: 0,
    firstIndex: 1,
    isLearner: false,
    errors: [],
    name: 'n1',
  };
  healthResp: HealthResponse | Error = { health: true, reason: '' };

  private answer<T>(req: RangeRequest | PutRequest | DeleteRangeRequest | undefined, resp: T): Promise<T> {
    if (req !== undefined) this.calls.push(req);
    return this.fail === undefined ? Promise.resolve(resp) : Promise.reject(this.fail);
  }
  range(req: RangeRequest) {
    return this.answer(req, this.rangeResp);
  }
  put(req: PutRequest) {
    return this.answer(req, this.putResp);
  }
  deleteRange(req: DeleteRangeRequest) {
    return this.answer(req, this.deleteResp);
  }
  status() {
    return this.answer(undefined, this.statusResp);
  }
  health() {
    const h = this.healthResp;
    return h instanceof Error ? Promise.reject(h) : Promise.resolve(h);
  }
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: unknown;
}

async function start(t: Test, opts: ClientServerOptions = {}) {
  const svc = new FakeService();
  const server = createClientServer(svc, opts);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;

  const call = (
    method: string,
    path: string,
    body?: string | object,
    headers: http.OutgoingHttpHeaders = {},
  ): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
      const req = http.request(
        { host: '127.0.0.1', port, method, path, agent: false, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let json: unknown;
            try {
              json = JSON.parse(text);
            } catch {
              json = undefined;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  const post = (path: string, body?: string | object) => call('POST', path, body);
  return { svc, call, post, port };
}

t.test('put: request decoding and exact response JSON', async (t) => {
  const { svc, post } = await start(t);
  svc.putResp = { header, prevKv: kv('foo', 'bar', 2, 4, 3) };
  const r = await post('/v3/kv/put', { key: b64('foo'), value: b64('baz'), prev_kv: true });
  t.equal(r.status, 200);
  t.match(r.headers['content-type'], /^application\/json/);
  t.same(svc.calls, [{ key: Buffer.from('foo'), value: Buffer.from('baz'), prevKv: true }]);
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
  t.same(svc.calls[1], { key: Buffer.from('k'), value: Buffer.alloc(0) });

  // URL-safe base64 without padding, and the lowerCamelCase names, as protobuf JSON parsers accept.
  await post('/v3/kv/put', { key: '-_8', value: 'YQ', prevKv: false });
  t.same(svc.calls[2], { key: Buffer.from([0xfb, 0xff]), value: Buffer.from('a') });
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
  t.same(svc.calls[0], {
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
  t.same(svc.calls[1], { key: Buffer.from('a'), rangeEnd: Buffer.from([0]), limit: 5 }, 'numbers accepted too');

  svc.rangeResp = { header, kvs: [], more: false, count: 0 };
  const empty = await post('/v3/kv/range', { key: b64('nothing') });
  t.same(empty.json, { header: HEADER_JSON }, 'no kvs, more or count when they are defaults');

  const noBody = await post('/v3/kv/range');
  t.equal(noBody.status, 200, 'an empty body is an empty request (the member then refuses the empty key)');
  t.same(svc.calls[3], { key: Buffer.alloc(0) });
});

t.test('deleterange', async (t) => {
  const { svc, post } = await start(t);
  svc.deleteResp = { header, deleted: 2, prevKvs: [kv('a', '1', 2, 2, 1), kv('b', '2', 3, 3, 1)] };
  const r = await post('/v3/kv/deleterange', { key: b64('a'), range_end: b64('c'), prev_kv: true });
  t.same(svc.calls[0], { key: Buffer.from('a'), rangeEnd: Buffer.from('c'), prevKv: true });
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
  t.equal(svc.calls.length, 0, 'nothing reached the member');
});

t.test('fields Keel does not implement are refused, not ignored', async (t) => {
  const { svc, post } = await start(t);
  const r = await post('/v3/kv/range', { key: b64('k'), revision: '3' });
  t.equal(r.status, 501);
  t.same(r.json, {
    error: 'keel: range field "revision" is not supported yet',
    code: 12,
    message: 'keel: range field "revision" is not supported yet',
  });
  t.equal((await post('/v3/kv/put', { key: b64('k'), lease: '12' })).status, 501);
  t.equal((await post('/v3/kv/range', { key: b64('k'), sort_order: 'DESCEND' })).status, 501);
  // Their defaults (and ascending by key, the order Keel answers in) are fine.
  const ok = await post('/v3/kv/range', { key: b64('k'), revision: 0, sort_order: 'ASCEND', sort_target: 'KEY' });
  t.equal(ok.status, 200);
  t.equal(svc.calls.length, 1);
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
        path: '/v3/lease/grant',
        handle: async () => {
          throw Errors.noLeader();
        },
      },
    ],
  });
  t.same((await call('GET', '/metrics')).json, { ok: true });
  const failed = await call('POST', '/v3/lease/grant', {});
  t.equal(failed.status, 503);
  t.match(failed.json, { code: 14, message: 'etcdserver: no leader' });

  t.throws(
    () =>
      createClientServer(new FakeService(), {
        extraRoutes: [{ method: 'POST', path: '/v3/kv/put', handle: () => undefined }],
      }),
    /route POST \/v3\/kv\/put is defined twice/,
  );
});
