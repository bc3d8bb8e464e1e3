// KeelHttpClient against tiny HTTP servers that play members: request encoding, response decoding, and
// the endpoint choice (connection errors fail over for everything; timeouts, dropped connections and 503s
// fail over for reads only; every endpoint at most once per call).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { KeelHttpClient } from '../../src/client/http-client';
import { OutcomeUnknownError } from '../../src/client/kv-client';
import { GrpcCode, KvError } from '../../src/kv/api';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const HEADER = { cluster_id: '18446744073709551615', member_id: '255', revision: '7', raft_term: '2' };

interface Seen {
  path: string;
  method: string;
  body: unknown;
}

type Reply =
  | { status: number; body: unknown }
  /** Never answer (the client times out). */
  | 'hang'
  /** Cut the connection once the request has arrived. */
  | 'reset';

interface FakeMember {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

async function fakeMember(reply: (s: Seen) => Reply): Promise<FakeMember> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const s: Seen = {
        path: req.url ?? '',
        method: req.method ?? '',
        body: text === '' ? undefined : JSON.parse(text),
      };
      seen.push(s);
      const r = reply(s);
      if (r === 'hang') return;
      if (r === 'reset') {
        req.socket.destroy();
        return;
      }
      res.writeHead(r.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(r.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A URL on which nothing listens (connection refused). */
async function refusingUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const ok = (body: unknown): Reply => ({ status: 200, body });
const unavailable = (msg = 'etcdserver: no leader'): Reply => ({
  status: 503,
  body: { error: msg, code: 14, message: msg },
});

/** A member that answers every KV request the same way. */
function answering(s: Seen): Reply {
  if (s.path === '/v3/kv/put') return ok({ header: HEADER });
  if (s.path === '/v3/kv/deleterange') return ok({ header: HEADER, deleted: '1' });
  if (s.path === '/v3/kv/range') {
    return ok({
      header: HEADER,
      kvs: [{ key: b64('foo'), create_revision: '3', mod_revision: '7', version: '2', value: b64('bar') }],
      count: '1',
    });
  }
  return { status: 404, body: { error: 'Not Found', code: 5, message: 'Not Found' } };
}

async function members(t: Test, ...replies: ((s: Seen) => Reply)[]): Promise<FakeMember[]> {
  const ms = await Promise.all(replies.map((r) => fakeMember(r)));
  t.teardown(() => Promise.all(ms.map((m) => m.close())).then(() => undefined));
  return ms;
}

t.test('requests are encoded as the gateway wants and answers decoded', async (t) => {
  const [m] = await members(t, (s) =>
    s.path === '/v3/kv/put'
      ? ok({ header: HEADER, prev_kv: { key: b64('k'), value: b64('old'), mod_revision: '5' } })
      : answering(s),
  );
  const c = new KeelHttpClient({ endpoints: [m.url] });
  const put = await c.put('k', Buffer.from('v'), { prevKv: true });
  t.same(m.seen[0], { path: '/v3/kv/put', method: 'POST', body: { key: b64('k'), value: b64('v'), prev_kv: true } });
  t.equal(put.header.revision, 7);
  t.equal(put.header.memberId, '00000000000000ff');
  t.equal(put.header.clusterId, 'ffffffffffffffff');
  t.equal(put.prevKv?.value.toString(), 'old');
  t.equal(put.prevKv?.modRevision, 5);

  const r = await c.get('foo', { prefix: true, limit: 10, serializable: true, keysOnly: true });
  t.same(m.seen[1].body, {
    key: b64('foo'),
    range_end: b64('fop'),
    limit: '10',
    serializable: true,
    keys_only: true,
  });
  t.equal(r.count, 1);
  t.equal(r.more, false);
  t.equal(r.kvs[0].key.toString(), 'foo');
  t.equal(r.kvs[0].value.toString(), 'bar');
  t.equal(r.kvs[0].createRevision, 3);
  t.equal(r.kvs[0].version, 2);

  const d = await c.delete('', { prefix: true, prevKv: true });
  t.same(m.seen[2], {
    path: '/v3/kv/deleterange',
    method: 'POST',
    body: { key: b64('\0'), range_end: b64('\0'), prev_kv: true },
  });
  t.equal(d.deleted, 1);
  t.same(d.prevKvs, []);

  const d2 = await c.deleteRange({ key: Buffer.from('x') });
  t.same(m.seen[3].body, { key: b64('x') });
  t.equal(d2.deleted, 1);
});

t.test('a refused connection moves to the next endpoint, for reads and writes, and sticks there', async (t) => {
  const refused = await refusingUrl();
  const [b] = await members(t, answering);
  const c = new KeelHttpClient({ endpoints: [refused, b.url] });
  t.equal(c.currentEndpoint, refused);
  await c.put('k', 'v');
  t.equal(b.seen.length, 1, 'the write went to the second endpoint');
  t.equal(c.currentEndpoint, b.url, 'and the client sticks to it');
  const r = await c.range({ key: Buffer.from('foo') });
  t.equal(r.kvs.length, 1);
  t.equal(b.seen.length, 2);
});

t.test('a read fails over on 503, a write does not', async (t) => {
  const [a, b] = await members(t, () => unavailable(), answering);
  const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const r = await c.get('foo');
  t.equal(r.kvs[0].value.toString(), 'bar', 'the read was answered by the second member');
  t.equal(a.seen.length, 1);
  t.equal(b.seen.length, 1);
  t.equal(c.currentEndpoint, b.url, 'sticks to the member that answered');

  const c2 = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const err = await c2.put('k', 'v').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof KvError, 'a KvError');
  t.equal((err as KvError).code, GrpcCode.Unavailable);
  t.equal((err as KvError).message, 'etcdserver: no leader', "the server's message, verbatim");
  t.equal(a.seen.length, 2);
  t.equal(b.seen.length, 1, 'the write was not sent to the second member');
});

t.test('a read fails over on a timeout, a write does not', async (t) => {
  const [a, b] = await members(t, () => 'hang', answering);
  const c = new KeelHttpClient({ endpoints: [a.url, b.url], requestTimeoutMs: 300 });
  const r = await c.get('foo');
  t.equal(r.kvs.length, 1);
  t.equal(b.seen.length, 1);

  const c2 = new KeelHttpClient({ endpoints: [a.url, b.url], requestTimeoutMs: 300 });
  const err = await c2.put('k', 'v').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof OutcomeUnknownError, 'the outcome of the write is unknown');
  t.match((err as Error).message, /timed out after 300 ms \(the write may or may not have been applied\)/);
  const cause = (err as OutcomeUnknownError).cause;
  t.ok(cause instanceof KvError);
  t.equal((cause as KvError).code, GrpcCode.DeadlineExceeded);
  t.equal(b.seen.length, 1, 'the write was not retried');
});

t.test('a read fails over when the connection drops mid-request, a write does not', async (t) => {
  const [a, b] = await members(t, () => 'reset', answering);
  const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const r = await c.get('foo');
  t.equal(r.kvs.length, 1);
  const c2 = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const err = await c2.deleteRange({ key: Buffer.from('k') }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof OutcomeUnknownError);
  t.match((err as Error).message, /^connection to .* failed during the request: .* \(the write may or may not have been applied\)$/);
  t.equal(((err as OutcomeUnknownError).cause as KvError).code, GrpcCode.Unavailable);
  t.equal(b.seen.length, 1, 'only the read reached the second member');
});

t.test("a member's definite error is not retried elsewhere", async (t) => {
  const msg = 'etcdserver: key is not provided';
  const [a, b] = await members(t, () => ({ status: 400, body: { error: msg, code: 3, message: msg } }), answering);
  const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const err = await c.get('').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof KvError);
  t.equal((err as KvError).code, GrpcCode.InvalidArgument);
  t.equal((err as KvError).message, msg);
  t.equal(b.seen.length, 0);
});

t.test("an error body that is not the gateway's still gives a KvError", async (t) => {
  const server = http.createServer((_req, res) => {
    res.writeHead(502, { 'content-type': 'text/plain' });
    res.end('bad gateway from a proxy');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const c = new KeelHttpClient({ endpoints: [`http://127.0.0.1:${(server.address() as AddressInfo).port}`] });
  const err = await c.get('x').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof KvError);
  t.match((err as KvError).message, /HTTP 502: bad gateway from a proxy/);
});

t.test('each endpoint is tried at most once; the last answer is what the caller sees', async (t) => {
  const [a, b] = await members(
    t,
    () => unavailable('etcdserver: request timed out'),
    () => unavailable(),
  );
  const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const err = await c.get('foo').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof KvError);
  t.equal((err as KvError).message, 'etcdserver: no leader');
  t.equal(a.seen.length, 1);
  t.equal(b.seen.length, 1);
});

t.test('no member reachable', async (t) => {
  const u1 = await refusingUrl();
  const u2 = await refusingUrl();
  const c = new KeelHttpClient({ endpoints: [u1, u2] });
  const err = await c.put('k', 'v').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof Error);
  t.notOk(err instanceof KvError, 'not a KvError: no member answered');
  t.match((err as Error).message, `no member reachable at ${u1},${u2}: `);
  t.match((err as Error).message, /ECONNREFUSED/);
  const single = new KeelHttpClient({ endpoints: [u1] });
  const err1 = await single.get('k').then(
    () => undefined,
    (e: unknown) => e,
  );
  t.match((err1 as Error).message, new RegExp(`^no member reachable at ${u1}: connect ECONNREFUSED`));
});

t.test('status and health of one endpoint', async (t) => {
  let healthy = true;
  const [m] = await members(t, (s) => {
    if (s.path === '/v3/maintenance/status') {
      return ok({
        header: HEADER,
        version: '3.4.0-keel',
        dbSize: '24576',
        leader: '255',
        raftIndex: '12',
        raftTerm: '2',
        raftAppliedIndex: '11',
        snapshotIndex: '10',
        firstIndex: '6',
        name: 'n1',
      });
    }
    if (s.path === '/health') {
      return healthy
        ? { status: 200, body: { health: 'true', reason: '' } }
        : { status: 503, body: { health: 'false', reason: 'RAFT NO LEADER' } };
    }
    return answering(s);
  });
  const c = new KeelHttpClient({ endpoints: [m.url] });
  const s = await c.status(m.url);
  t.same(m.seen[0], { path: '/v3/maintenance/status', method: 'POST', body: {} });
  t.equal(s.leader, '00000000000000ff');
  t.equal(s.header.memberId, '00000000000000ff');
  t.equal(s.dbSize, 24576);
  t.equal(s.raftIndex, 12);
  t.equal(s.raftAppliedIndex, 11);
  t.equal(s.snapshotIndex, 10);
  t.equal(s.firstIndex, 6);
  t.equal(s.name, 'n1');
  t.same(await c.health(m.url), { health: true, reason: '' });
  t.equal(m.seen[1].method, 'GET');
  healthy = false;
  t.same(await c.health(m.url), { health: false, reason: 'RAFT NO LEADER' }, 'a 503 is an answer');
  const refused = await refusingUrl();
  await t.rejects(c.health(refused), /no member reachable at/);
  await t.rejects(c.status(refused), /no member reachable at/);
});

t.test('bad options', async (t) => {
  t.throws(() => new KeelHttpClient({ endpoints: [] }), /no endpoints/);
  t.throws(() => new KeelHttpClient({ endpoints: ['ftp://x:1'] }), /http/);
  t.throws(() => new KeelHttpClient({ endpoints: ['http://127.0.0.1:1'], requestTimeoutMs: 0 }), /requestTimeoutMs/);
});

t.test("the member's own 'request timed out' / 'leader changed' to a write: outcome unknown, not retried", async (t) => {
  for (const msg of ['etcdserver: request timed out', 'etcdserver: leader changed', 'etcdserver: server stopped']) {
    const [a, b] = await members(t, () => unavailable(msg), answering);
    const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
    const err = await c.put('k', 'v').then(
      () => undefined,
      (e: unknown) => e,
    );
    t.ok(err instanceof OutcomeUnknownError, msg);
    t.equal((err as Error).message, `${msg} (the write may or may not have been applied)`);
    t.equal(((err as OutcomeUnknownError).cause as KvError).message, msg, 'the member\'s error is the cause');
    t.equal(b.seen.length, 0);
    const r = await c.get('foo');
    t.equal(r.kvs.length, 1, 'a read after it goes on to the next member');
  }
});

t.test('txn: a read-only txn fails over like a read, one that writes does not', async (t) => {
  const txnAnswer = (s: Seen): Reply =>
    s.path === '/v3/kv/txn'
      ? ok({ header: HEADER, succeeded: true, responses: [{ response_range: { header: { revision: '7' }, count: '0' } }] })
      : answering(s);
  const [a, b] = await members(t, () => unavailable(), txnAnswer);
  const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const readOnly = {
    compare: [{ key: Buffer.from('k'), result: 'GREATER' as const, target: 'MOD' as const, modRevision: 3 }],
    success: [{ type: 'range' as const, range: { key: Buffer.from('k'), serializable: true } }],
    failure: [{ type: 'txn' as const, txn: { compare: [], success: [], failure: [{ type: 'range' as const, range: { key: Buffer.from('j') } }] } }],
  };
  const r = await c.txn(readOnly);
  t.equal(r.succeeded, true);
  t.equal(r.responses[0].type, 'range');
  t.same(b.seen[0].body, {
    compare: [{ result: 'GREATER', target: 'MOD', key: b64('k'), mod_revision: '3' }],
    success: [{ request_range: { key: b64('k'), serializable: true } }],
    failure: [{ request_txn: { failure: [{ request_range: { key: b64('j') } }] } }],
  });

  const c2 = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const writes = { ...readOnly, failure: [{ type: 'txn' as const, txn: { compare: [], success: [], failure: [{ type: 'put' as const, put: { key: Buffer.from('j'), value: Buffer.from('1') } }] } }] };
  await t.rejects(c2.txn(writes), { message: 'etcdserver: no leader' });
  t.equal(b.seen.length, 1, 'the txn that writes (in a nested failure branch) was not sent again');
});

t.test('compaction and leases: requests and answers in etcd\'s JSON', async (t) => {
  const [m] = await members(t, (s) => {
    switch (s.path) {
      case '/v3/kv/compaction':
        return ok({ header: HEADER });
      case '/v3/lease/grant':
        return ok({ header: HEADER, ID: '7587', TTL: '30' });
      case '/v3/lease/revoke':
        return ok({ header: HEADER });
      case '/v3/lease/keepalive':
        // A streaming route: one {"result": ...} line per request.
        return { status: 200, body: { result: { header: HEADER, ID: '7587', TTL: '30' } } };
      case '/v3/lease/timetolive':
        return ok({ header: HEADER, ID: '7587', TTL: '-1' });
      case '/v3/lease/leases':
        return ok({ header: HEADER, leases: [{ ID: '7587' }, { ID: '1' }] });
      default:
        return answering(s);
    }
  });
  const c = new KeelHttpClient({ endpoints: [m.url] });
  t.same((await c.compact(12, { physical: true })).header.revision, 7);
  t.same(m.seen.at(-1)?.body, { revision: '12', physical: true });
  t.same(await c.leaseGrant(30), { header: (await c.leaseRevoke(1)).header, id: 7587, ttl: 30 });
  t.same(m.seen.at(-2)?.body, { TTL: '30' });
  t.same(m.seen.at(-1)?.body, { ID: '1' });
  await c.leaseGrant(30, 99);
  t.same(m.seen.at(-1)?.body, { TTL: '30', ID: '99' });
  const ka = await c.leaseKeepAliveOnce(7587);
  t.same([ka.id, ka.ttl], [7587, 30]);
  t.same(m.seen.at(-1), { path: '/v3/lease/keepalive', method: 'POST', body: { ID: '7587' } });
  const ttl = await c.leaseTimeToLive(7587, { keys: true });
  t.same([ttl.id, ttl.ttl, ttl.grantedTtl, ttl.keys], [7587, -1, 0, []], 'TTL -1: the lease does not exist');
  t.same(m.seen.at(-1)?.body, { ID: '7587', keys: true });
  t.same((await c.leaseLeases()).leases, [{ id: 7587 }, { id: 1 }]);
  t.same(m.seen.at(-1)?.body, {});
  const get = await c.get('a', { revision: 4, sortOrder: 'DESCEND', sortTarget: 'CREATE', countOnly: true });
  t.equal(get.count, 1);
  t.same(m.seen.at(-1)?.body, { key: b64('a'), revision: '4', sort_order: 'DESCEND', sort_target: 'CREATE', count_only: true });
  await c.put('k', '', { lease: 7587, ignoreValue: true, ignoreLease: false });
  t.same(m.seen.at(-1)?.body, { key: b64('k'), lease: '7587', ignore_value: true });
});

t.test('lease keep-alive: retried elsewhere (renewing twice is renewing); a stream error chunk is an error', async (t) => {
  const [a, b] = await members(
    t,
    () => 'reset',
    () => ({ status: 200, body: { error: { grpc_code: 5, http_code: 404, message: 'etcdserver: requested lease not found', http_status: 'Not Found' } } }),
  );
  const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const err = await c.leaseKeepAliveOnce(5).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof KvError);
  t.same([(err as KvError).code, (err as KvError).message], [GrpcCode.NotFound, 'etcdserver: requested lease not found']);
  t.equal(b.seen.length, 1, 'sent again to the second member');
});

t.test('a closed client refuses calls', async (t) => {
  const [m] = await members(t, answering);
  const c = new KeelHttpClient({ endpoints: [m.url] });
  await c.close();
  await t.rejects(c.get('a'), { message: 'KeelHttpClient: closed' });
  t.throws(() => c.watch('a', {}, { onEvents: () => undefined }), { message: 'KeelHttpClient: closed' });
  t.equal(m.seen.length, 0);
});
