// The request counters (grpc_server_*) through both real client listeners: the HTTP gateway in front of a
// recording fake of the member, and the native stream in front of a fake member, driven by the real
// KeelClient. Every request counts as the etcd gRPC call it stands for, with the code it ended with; watch
// and keep-alive streams count once per stream, ended when the client goes away.

import http from 'node:http';
import t, { type Test } from 'tap';
import { Errors } from '../../src/kv/api';
import { KeelClient } from '../../src/client/stream-client';
import { MemberMetrics } from '../../src/server/metrics';
import { FakeMember, FakeStore, startFake } from './fixtures/fake-kv-service';
import { startGateway } from './fixtures/gateway-recorder';
import { parsePrometheusText, sampleValue } from './fixtures/prom-text';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

type Labels = { grpc_type: string; grpc_service: string; grpc_method: string };
const call = (service: string, method: string, type = 'unary'): Labels => ({
  grpc_type: type,
  grpc_service: `etcdserverpb.${service}`,
  grpc_method: method,
});
const PUT = call('KV', 'Put');
const RANGE = call('KV', 'Range');
const TXN = call('KV', 'Txn');
const WATCH = call('Watch', 'Watch', 'bidi_stream');
const KEEPALIVE = call('Lease', 'LeaseKeepAlive', 'bidi_stream');
const REVOKE = call('Lease', 'LeaseRevoke');

/** The request counters of a member, read through its own /metrics text. */
class Counters {
  constructor(private readonly m: MemberMetrics) {}
  async started(l: Labels): Promise<number> {
    return sampleValue(parsePrometheusText(await this.m.text()), 'grpc_server_started_total', l) ?? 0;
  }
  async handled(l: Labels, code: string): Promise<number> {
    const f = parsePrometheusText(await this.m.text());
    return sampleValue(f, 'grpc_server_handled_total', { ...l, grpc_code: code }) ?? 0;
  }
  /** Every started and handled series with a non-zero value, as "name method code=value" lines, sorted. */
  async nonZero(): Promise<string[]> {
    const f = parsePrometheusText(await this.m.text());
    const out: string[] = [];
    for (const name of ['grpc_server_started_total', 'grpc_server_handled_total']) {
      for (const s of f.get(name)?.samples ?? []) {
        if (s.value === 0) continue;
        const code = s.labels.grpc_code === undefined ? '' : ` ${s.labels.grpc_code}`;
        const what = name.replace('grpc_server_', '').replace('_total', '');
        out.push(`${what} ${s.labels.grpc_service}/${s.labels.grpc_method}${code}=${s.value}`);
      }
    }
    return out.sort();
  }
  /** Waits (bounded) until `l` has `n` calls handled with `code`. */
  async waitHandled(t: Test, l: Labels, code: string, n: number): Promise<void> {
    const deadline = Date.now() + 5000;
    for (let i = 0; i < 1000 && Date.now() < deadline; i++) {
      if ((await this.handled(l, code)) >= n) return;
      await new Promise((r) => setTimeout(r, 10));
    }
    t.fail(`${l.grpc_method} never reached ${n} handled with ${code}`);
  }
}

t.test('gateway: unary routes count as their etcd calls, with the code they ended with', async (t) => {
  const m = new MemberMetrics({ memberId: '01' });
  const c = new Counters(m);
  const { svc, post, call: request } = await startGateway(t, { rpcMetrics: m.rpc, extraRoutes: [m.route] });

  t.equal((await post('/v3/kv/put', { key: b64('a'), value: b64('1') })).status, 200);
  t.equal((await post('/v3/kv/range', { key: b64('a') })).status, 200);
  t.equal((await post('/v3/kv/range', '{not json')).status, 400, 'refused before the member sees it');
  t.equal((await post('/v3/kv/txn', { compare: [], success: [], failure: [], extra: 1 })).status, 400);
  svc.fail = Errors.compacted();
  t.equal((await post('/v3/kv/range', { key: b64('a'), revision: '1' })).status, 400);
  svc.fail = new Error('a bug');
  t.equal((await post('/v3/lease/revoke', { ID: '5' })).status, 500);
  svc.fail = undefined;
  // An alias counts as the method it stands for.
  t.equal((await post('/v3/kv/lease/revoke', { ID: '5' })).status, 200);
  // Not calls of etcd's gRPC API: not counted.
  await request('GET', '/health');
  await request('GET', '/version');
  await request('GET', '/metrics');
  t.equal((await post('/v3/nothing', {})).status, 404);
  t.equal((await request('GET', '/v3/kv/put')).status, 405);

  // The handled series appear once 'close' has fired on each answer, just after the client read it.
  await c.waitHandled(t, REVOKE, 'OK', 1);
  t.same(await c.nonZero(), [
    'handled etcdserverpb.KV/Put OK=1',
    'handled etcdserverpb.KV/Range InvalidArgument=1',
    'handled etcdserverpb.KV/Range OK=1',
    'handled etcdserverpb.KV/Range OutOfRange=1',
    'handled etcdserverpb.KV/Txn InvalidArgument=1',
    'handled etcdserverpb.Lease/LeaseRevoke OK=1',
    'handled etcdserverpb.Lease/LeaseRevoke Unknown=1',
    'started etcdserverpb.KV/Put=1',
    'started etcdserverpb.KV/Range=3',
    'started etcdserverpb.KV/Txn=1',
    'started etcdserverpb.Lease/LeaseRevoke=2',
  ]);
  const f = parsePrometheusText(await m.text());
  t.equal(sampleValue(f, 'grpc_server_handling_seconds_count', RANGE), 3, 'one latency sample per call');
  t.equal(sampleValue(f, 'grpc_server_handling_seconds_count', TXN), 1);
});

t.test('gateway: streams count once each, ended when the client leaves or the answer ends', async (t) => {
  const m = new MemberMetrics({ memberId: '01' });
  const c = new Counters(m);
  const { svc, port, post } = await startGateway(t, { rpcMetrics: m.rpc });

  // A watch: open while the client stays, Canceled once it goes away (as etcd's watch streams end).
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v3/watch', agent: false });
  req.on('error', () => undefined);
  const res = new Promise<http.IncomingMessage>((resolve) => req.on('response', resolve));
  req.write(JSON.stringify({ create_request: { key: b64('k') } }));
  t.equal((await res).statusCode, 200);
  t.equal(svc.streams.length, 1);
  t.equal(await c.started(WATCH), 1);
  t.equal(await c.handled(WATCH, 'Canceled'), 0, 'not ended while the client is there');
  req.destroy();
  await c.waitHandled(t, WATCH, 'Canceled', 1);

  // Keep-alives: one stream for the whole body, OK when every keep-alive is answered.
  const ka = await post('/v3/lease/keepalive', '{"ID":"7"}{"ID":"8"}');
  t.equal(ka.status, 200);
  t.equal(ka.text.split('\n').length - 1, 2, 'two answers');
  await c.waitHandled(t, KEEPALIVE, 'OK', 1);
  t.equal(await c.started(KEEPALIVE), 1, 'one stream, not one call per keep-alive');

  // A stream refused at its first message: the code of the error answer.
  t.equal((await post('/v3/watch', { create_request: { key: b64('k'), start_revision: '-1' } })).status, 400);
  await c.waitHandled(t, WATCH, 'InvalidArgument', 1);
  svc.watchFail = Errors.starting();
  t.equal((await post('/v3/watch', { create_request: { key: b64('k') } })).status, 503);
  await c.waitHandled(t, WATCH, 'Unavailable', 1);
  t.equal(await c.started(WATCH), 3);
});

t.test('native stream: unary frames are calls; watch and keep-alive frames share one stream each', async (t) => {
  const m = new MemberMetrics({ memberId: '01' });
  const c = new Counters(m);
  const fake = await startFake(new FakeMember(new FakeStore(), 'm1'), { rpcMetrics: m.rpc });
  t.teardown(() => fake.stop());
  const client = new KeelClient({ endpoints: [fake.url] });
  t.teardown(() => client.close());

  await client.put('a', '1');
  await client.put('b', '2');
  await client.get('a');
  await t.rejects(client.leaseRevoke(424242), { message: 'etcdserver: requested lease not found' });
  const lease = await client.leaseGrant(30);
  await client.leaseKeepAliveOnce(lease.id);
  await client.leaseKeepAliveOnce(lease.id);
  const w1 = client.watch('a', {}, { onEvents: () => undefined });
  const w2 = client.watch('b', {}, { onEvents: () => undefined });
  await Promise.all([w1.created, w2.created]);

  t.equal(await c.handled(PUT, 'OK'), 2);
  t.equal(await c.handled(RANGE, 'OK'), 1);
  t.equal(await c.handled(REVOKE, 'NotFound'), 1);
  t.equal(await c.started(KEEPALIVE), 1, 'two keep-alives, one stream');
  t.equal(await c.started(WATCH), 1, 'two watches, one stream');
  t.equal(await c.handled(WATCH, 'Canceled'), 0, 'open while the connection is');
  // The client's own health checks may add to this one: at least one.
  await client.health(fake.url);
  const check = { grpc_type: 'unary', grpc_service: 'grpc.health.v1.Health', grpc_method: 'Check' };
  t.ok((await c.handled(check, 'OK')) >= 1, "health is gRPC's health check");

  await client.close();
  await c.waitHandled(t, WATCH, 'Canceled', 1);
  await c.waitHandled(t, KEEPALIVE, 'Canceled', 1);

  // A connection this member closes (shutting down): its streams end Unavailable.
  const second = new KeelClient({ endpoints: [fake.url], requestTimeoutMs: 1000 });
  t.teardown(() => second.close());
  const w3 = second.watch('a', {}, { onEvents: () => undefined });
  await w3.created;
  t.equal(await c.started(WATCH), 2);
  await fake.stop();
  await c.waitHandled(t, WATCH, 'Unavailable', 1);
});
