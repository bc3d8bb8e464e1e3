// etcd's Lease service over gRPC against a fake member: grant, revoke, time-to-live, list, and the keep-alive
// stream (answered in order, TTL 0 for an unknown lease, ended by the member's errors).

import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { GrpcCode } from '../../src/kv/api';
import { sleep, unavailable } from '../server/fixtures/fake-kv-service';
import { RecordingObserver, call, callError, startGrpcFake, until } from './fixtures/grpc';

interface KeepAliveResp {
  header: { revision: string };
  ID: string;
  TTL: string;
}

function keepAliveCall(client: grpc.Client): {
  stream: grpc.ClientDuplexStream<object, KeepAliveResp>;
  responses: KeepAliveResp[];
  done: Promise<grpc.ServiceError | undefined>;
} {
  const stream = (client as unknown as { LeaseKeepAlive(): grpc.ClientDuplexStream<object, KeepAliveResp> }).LeaseKeepAlive();
  const responses: KeepAliveResp[] = [];
  stream.on('data', (r: KeepAliveResp) => responses.push(r));
  const done = new Promise<grpc.ServiceError | undefined>((resolve) => {
    stream.on('error', (e: grpc.ServiceError) => resolve(e));
    stream.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) resolve(undefined);
    });
  });
  return { stream, responses, done };
}

t.test('grant, time-to-live, list, revoke', async (t) => {
  const f = await startGrpcFake(t);
  const lease = f.clients.Lease;
  const g = await call<{ ID: string; TTL: string; error: string; header: { member_id: string } }>(lease, 'LeaseGrant', { TTL: '30' });
  t.same([g.ID, g.TTL, g.error, g.header.member_id], ['1000', '30', '', '187']);
  const chosen = await call<{ ID: string }>(lease, 'LeaseGrant', { TTL: 60, ID: '7587' });
  t.equal(chosen.ID, '7587');
  t.same(f.member.callsOf('leaseGrant'), [{ ttl: 30 }, { ttl: 60, id: 7587 }]);

  const ttl = await call<{ ID: string; TTL: string; grantedTTL: string; keys: Buffer[] }>(lease, 'LeaseTimeToLive', { ID: '7587', keys: true });
  t.same([ttl.ID, ttl.TTL, ttl.grantedTTL, ttl.keys], ['7587', '60', '60', []]);
  t.same(f.member.callsOf('leaseTimeToLive')[0], { id: 7587, keys: true });
  const gone = await call<{ TTL: string }>(lease, 'LeaseTimeToLive', { ID: '99' });
  t.equal(gone.TTL, '-1', 'an unknown lease: TTL -1, as etcd');

  const list = await call<{ leases: { ID: string }[] }>(lease, 'LeaseLeases', {});
  t.same(list.leases.map((l) => l.ID).sort(), ['1000', '7587']);

  await call(lease, 'LeaseRevoke', { ID: '1000' });
  const notFound = await callError(lease, 'LeaseRevoke', { ID: '1000' });
  t.equal(notFound.code, grpc.status.NOT_FOUND);
  t.equal(notFound.details, 'etcdserver: requested lease not found');
});

t.test('grant errors: lease exists, TTL checks', async (t) => {
  const f = await startGrpcFake(t);
  const lease = f.clients.Lease;
  await call(lease, 'LeaseGrant', { TTL: '5', ID: '9' });
  const exists = await callError(lease, 'LeaseGrant', { TTL: '5', ID: '9' });
  t.same([exists.code, exists.details], [grpc.status.FAILED_PRECONDITION, 'etcdserver: lease already exists']);
  const tooLong = await callError(lease, 'LeaseGrant', { TTL: '9000000001' });
  t.same([tooLong.code, tooLong.details], [grpc.status.OUT_OF_RANGE, 'etcdserver: too large lease TTL']);
  const zero = await callError(lease, 'LeaseGrant', { TTL: '0' });
  t.equal(zero.code, grpc.status.INVALID_ARGUMENT);
  const negative = await callError(lease, 'LeaseRevoke', { ID: '-3' });
  t.equal(negative.code, grpc.status.INVALID_ARGUMENT);
  t.equal(f.member.callsOf('leaseGrant').length, 2, 'the refused grants did not reach the member');
});

t.test('keep-alive stream: answered in order, TTL 0 for an unknown lease, ends OK after the client ends', async (t) => {
  const observer = new RecordingObserver();
  const f = await startGrpcFake(t, { rpcMetrics: observer });
  await call(f.clients.Lease, 'LeaseGrant', { TTL: '20', ID: '1' });
  await call(f.clients.Lease, 'LeaseGrant', { TTL: '40', ID: '2' });
  // Answers take varying times: they must still come back in request order.
  f.member.hook = async (method, params) => {
    if (method === 'leaseKeepAlive') await sleep((params as { id: number }).id === 1 ? 30 : 1);
  };
  const ka = keepAliveCall(f.clients.Lease);
  for (const id of ['1', '77', '2', '1']) ka.stream.write({ ID: id });
  ka.stream.end();
  t.equal(await ka.done, undefined, 'ended with OK');
  t.same(
    ka.responses.map((r) => [r.ID, r.TTL]),
    [
      ['1', '20'],
      ['77', '0'],
      ['2', '40'],
      ['1', '20'],
    ],
  );
  t.equal(ka.responses[0].header.revision, '1');
  t.same(observer.of('etcdserverpb.Lease/LeaseKeepAlive'), [
    { name: 'etcdserverpb.Lease/LeaseKeepAlive', type: 'bidi_stream', code: GrpcCode.OK },
  ]);
});

t.test('keep-alive stream: many requests in flight, read with backpressure, all answered in order', async (t) => {
  const f = await startGrpcFake(t);
  await call(f.clients.Lease, 'LeaseGrant', { TTL: '20', ID: '5' });
  let inFlight = 0;
  let most = 0;
  f.member.hook = async (method) => {
    if (method !== 'leaseKeepAlive') return;
    inFlight++;
    most = Math.max(most, inFlight);
    await sleep(0);
    inFlight--;
  };
  const ka = keepAliveCall(f.clients.Lease);
  const N = 300;
  for (let i = 0; i < N; i++) ka.stream.write({ ID: '5' });
  ka.stream.end();
  t.equal(await ka.done, undefined);
  t.equal(ka.responses.length, N);
  t.ok(ka.responses.every((r) => r.ID === '5' && r.TTL === '20'));
  t.equal(most, 1, 'served one at a time, in order');
});

t.test('keep-alive stream: a member error ends the stream with it; a bad id too', async (t) => {
  const f = await startGrpcFake(t);
  await call(f.clients.Lease, 'LeaseGrant', { TTL: '20', ID: '1' });
  f.member.hook = (method) => {
    if (method === 'leaseKeepAlive' && f.member.callsOf('leaseKeepAlive').length > 1) throw unavailable();
  };
  const ka = keepAliveCall(f.clients.Lease);
  ka.stream.write({ ID: '1' });
  ka.stream.write({ ID: '1' });
  const err = await ka.done;
  t.same([err?.code, err?.details], [grpc.status.UNAVAILABLE, 'etcdserver: no leader']);
  t.same(ka.responses.map((r) => r.TTL), ['20'], 'the first was answered');

  f.member.hook = undefined;
  const bad = keepAliveCall(f.clients.Lease);
  bad.stream.write({ ID: '1' });
  bad.stream.write({ ID: '-1' });
  const badErr = await bad.done;
  t.equal(badErr?.code, grpc.status.INVALID_ARGUMENT);
  t.match(badErr?.details, /invalid lease ID -1/);
  t.same(bad.responses.map((r) => r.ID), ['1'], 'answered up to the bad request');
});

t.test('keep-alive stream canceled by the client: counted as Canceled, nothing more served', async (t) => {
  const observer = new RecordingObserver();
  const f = await startGrpcFake(t, { rpcMetrics: observer });
  await call(f.clients.Lease, 'LeaseGrant', { TTL: '20', ID: '1' });
  const ka = keepAliveCall(f.clients.Lease);
  ka.stream.on('error', () => undefined);
  ka.stream.write({ ID: '1' });
  await until(() => ka.responses.length === 1);
  // The next keep-alive is still being served when the client goes away.
  f.member.hook = () => sleep(300);
  ka.stream.write({ ID: '1' });
  await until(() => f.member.callsOf('leaseKeepAlive').length === 2);
  ka.stream.cancel();
  await until(() => observer.of('etcdserverpb.Lease/LeaseKeepAlive')[0]?.code !== undefined);
  t.equal(observer.of('etcdserverpb.Lease/LeaseKeepAlive')[0].code, GrpcCode.Canceled);
  await sleep(400);
  t.equal(ka.responses.length, 1, 'the answer after the cancel was not sent');
});
