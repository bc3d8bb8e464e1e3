// The membership and alarm routes of the gateway (/v3/cluster/member/list|add|remove|promote,
// /v3/maintenance/alarm): the translation and the checks against a recording fake, then etcd's behaviour
// through the real client server and KeelHttpClient against the fake member registry.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { KeelHttpClient } from '../../src/client/http-client';
import { Errors, GrpcCode, KvError, type MemberInfo } from '../../src/kv/api';
import { createClientServer } from '../../src/server/http-gateway';
import type { RpcObserver } from '../../src/server/metrics/rpc-observer';
import { FakeMember, FakeStore } from './fixtures/fake-kv-service';
import { HEADER_JSON, header, startGateway as start } from './fixtures/gateway-recorder';

const n1: MemberInfo = {
  id: '8e9e05c52164694d',
  name: 'n1',
  peerUrls: ['http://127.0.0.1:2380'],
  clientUrls: ['http://127.0.0.1:2379'],
  isLearner: false,
};
const N1_JSON = { ID: '10276657743932975437', name: 'n1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'] };

t.test('member list: request to the member, exact answer', async (t) => {
  const { svc, post } = await start(t);
  svc.memberListResp = { header, members: [n1] };
  const r = await post('/v3/cluster/member/list', { linearizable: true });
  t.equal(r.status, 200);
  t.equal(r.text, JSON.stringify({ header: HEADER_JSON, members: [N1_JSON] }));
  const plain = await post('/v3/cluster/member/list', '');
  t.equal(plain.status, 200, 'an empty body is the empty request');
  t.same(
    svc.calls.map((c) => [c.method, c.req]),
    [
      ['memberList', { linearizable: true }],
      ['memberList', {}],
    ],
  );
  const bad = await post('/v3/cluster/member/list', { linearizable: 1 });
  t.equal(bad.status, 400);
  t.same(bad.json, { error: 'linearizable: expected true or false', code: 3, message: 'linearizable: expected true or false' });
});

t.test('member add / remove / promote: checked before the member sees them', async (t) => {
  const { svc, post } = await start(t);
  const added: MemberInfo = { id: '00000000000004d2', name: 'n4', peerUrls: ['http://127.0.0.1:2386'], clientUrls: [], isLearner: true };
  svc.memberAddResp = { header, member: added, members: [n1, added] };
  const ok = await post('/v3/cluster/member/add', { peerURLs: ['http://127.0.0.1:2386'], isLearner: true, name: 'n4' });
  t.equal(ok.status, 200);
  const ADDED_JSON = { ID: '1234', name: 'n4', peerURLs: ['http://127.0.0.1:2386'], isLearner: true };
  t.same(ok.json, { header: HEADER_JSON, member: ADDED_JSON, members: [N1_JSON, ADDED_JSON] });
  t.same(svc.calls[0], { method: 'memberAdd', req: { peerUrls: ['http://127.0.0.1:2386'], isLearner: true, name: 'n4' } });

  for (const body of [
    { peerURLs: [] },
    { peerURLs: ['http://127.0.0.1:2386', 'http://127.0.0.1:2388'] },
    { peerURLs: ['127.0.0.1:2386'] },
    { peerURLs: ['http://127.0.0.1:2386/x'] },
  ]) {
    const r = await post('/v3/cluster/member/add', body);
    t.equal(r.status, 400, JSON.stringify(body));
    t.same(r.json, { error: 'etcdserver: given member URLs are invalid', code: 3, message: 'etcdserver: given member URLs are invalid' });
  }
  const badName = await post('/v3/cluster/member/add', { peerURLs: ['http://127.0.0.1:2386'], name: 'n 4' });
  t.equal(badName.status, 400);
  t.match(badName.json, { code: 3, message: 'etcdserver: invalid member name "n 4" (must be printable, without spaces)' });
  const unknown = await post('/v3/cluster/member/add', { peerUrls: ['http://127.0.0.1:2386'] });
  t.match(unknown.json, { code: 3, message: 'peerUrls: unknown field' }, 'etcd\'s spelling is peerURLs');

  svc.memberRemoveResp = { header, members: [n1] };
  const removed = await post('/v3/cluster/member/remove', { ID: '1234' });
  t.equal(removed.status, 200);
  t.same(removed.json, { header: HEADER_JSON, members: [N1_JSON] });
  svc.memberPromoteResp = { header, members: [n1] };
  const promoted = await post('/v3/cluster/member/promote', { ID: '10276657743932975437' });
  t.equal(promoted.status, 200);
  t.same(promoted.json, { header: HEADER_JSON, members: [N1_JSON] });
  for (const path of ['/v3/cluster/member/remove', '/v3/cluster/member/promote']) {
    for (const ID of ['0', 'abc', '18446744073709551616', undefined]) {
      const r = await post(path, ID === undefined ? {} : { ID });
      t.equal(r.status, 400, `${path} ${String(ID)}`);
      t.match(r.json, { code: 3, message: /^ID: / });
    }
  }
  t.same(
    svc.calls.map((c) => [c.method, c.req]),
    [
      ['memberAdd', { peerUrls: ['http://127.0.0.1:2386'], isLearner: true, name: 'n4' }],
      ['memberRemove', { id: '00000000000004d2' }],
      ['memberPromote', { id: '8e9e05c52164694d' }],
    ],
    'no bad request reached the member',
  );

  svc.fail = Errors.memberNotFound();
  const notFound = await post('/v3/cluster/member/remove', { ID: '99' });
  t.equal(notFound.status, 404);
  t.same(notFound.json, { error: 'etcdserver: member not found', code: 5, message: 'etcdserver: member not found' });
});

t.test('alarm: request, answer, checks; NOSPACE refusals are HTTP 429', async (t) => {
  const { svc, post } = await start(t);
  svc.alarmResp = { header, alarms: [{ memberId: '8e9e05c52164694d', alarm: 'NOSPACE' }] };
  const r = await post('/v3/maintenance/alarm', { action: 'GET' });
  t.equal(r.status, 200);
  t.equal(r.text, JSON.stringify({ header: HEADER_JSON, alarms: [{ memberID: '10276657743932975437', alarm: 'NOSPACE' }] }));
  await post('/v3/maintenance/alarm', { action: 2, memberID: '10276657743932975437', alarm: 1 });
  t.same(
    svc.calls.map((c) => c.req),
    [{ action: 'GET' }, { action: 'DEACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NOSPACE' }],
  );
  const noMember = await post('/v3/maintenance/alarm', { action: 'ACTIVATE', alarm: 'NOSPACE' });
  t.equal(noMember.status, 400);
  t.match(noMember.json, { code: 3, message: /^etcdserver: invalid alarm memberID/ });
  const noAlarm = await post('/v3/maintenance/alarm', { action: 'ACTIVATE', memberID: '1' });
  t.match(noAlarm.json, { code: 3, message: /^etcdserver: invalid alarm NONE/ });
  const badEnum = await post('/v3/maintenance/alarm', { action: 'RAISE' });
  t.match(badEnum.json, { code: 3, message: /^action: unknown value "RAISE"/ });
  t.equal(svc.calls.length, 2, 'the refused requests did not reach the member');

  svc.alarmResp = { header, alarms: [] };
  t.equal((await post('/v3/maintenance/alarm', {})).text, JSON.stringify({ header: HEADER_JSON }), 'no alarm: left out');

  svc.fail = Errors.noSpace();
  const full = await post('/v3/kv/put', { key: 'aw==', value: 'dg==' });
  t.equal(full.status, 429);
  t.same(full.json, { error: 'etcdserver: mvcc: database space exceeded', code: 8, message: 'etcdserver: mvcc: database space exceeded' });
});

t.test('the routes are counted as etcd counts its gRPC methods', async (t) => {
  const seen: string[] = [];
  const rpcMetrics: RpcObserver = {
    begin: (rpc) => (code) => seen.push(`${rpc.service}/${rpc.method} ${code}`),
  };
  const { svc, post } = await start(t, { rpcMetrics });
  await post('/v3/cluster/member/list', {});
  await post('/v3/cluster/member/add', { peerURLs: ['bad'] });
  await post('/v3/cluster/member/remove', { ID: '1' });
  await post('/v3/cluster/member/promote', { ID: '1' });
  await post('/v3/maintenance/alarm', {});
  svc.fail = Errors.memberNotLearner();
  await post('/v3/cluster/member/promote', { ID: '1' });
  // 'close' fires after the answer; give the last one a moment.
  await new Promise((r) => setTimeout(r, 20));
  t.same(seen, [
    `etcdserverpb.Cluster/MemberList ${GrpcCode.OK}`,
    `etcdserverpb.Cluster/MemberAdd ${GrpcCode.InvalidArgument}`,
    `etcdserverpb.Cluster/MemberRemove ${GrpcCode.OK}`,
    `etcdserverpb.Cluster/MemberPromote ${GrpcCode.OK}`,
    `etcdserverpb.Maintenance/Alarm ${GrpcCode.OK}`,
    `etcdserverpb.Cluster/MemberPromote ${GrpcCode.FailedPrecondition}`,
  ]);
});

/** The real client server in front of a FakeMember (its store's registry: one voter, m1). */
async function fakeBehindGateway(t: Test): Promise<{ store: FakeStore; client: KeelHttpClient; url: string }> {
  const store = new FakeStore();
  const server = createClientServer(new FakeMember(store, 'm1'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const client = new KeelHttpClient({ endpoints: [url] });
  t.teardown(async () => {
    await client.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { store, client, url };
}

t.test('KeelHttpClient through the gateway: membership as etcd answers it', async (t) => {
  const { store, client } = await fakeBehindGateway(t);
  const m1 = store.membership.members[0];

  t.same((await client.memberList()).members, [m1]);
  t.same((await client.memberList({ linearizable: false })).members, [m1]);

  store.membership.nextIds.push('8e9e05c52164694d');
  const added = await client.memberAdd({ peerUrls: ['http://127.0.0.1:2386'], isLearner: true, name: 'n4' });
  const n4: MemberInfo = { id: '8e9e05c52164694d', name: 'n4', peerUrls: ['http://127.0.0.1:2386'], clientUrls: [], isLearner: true };
  t.same(added.member, n4, 'a new id, beyond 2^53, exact through the decimal JSON');
  t.same(added.members, [m1, n4]);
  t.same(added.header, store.header());

  const again = await client.memberAdd({ peerUrls: ['http://127.0.0.1:2386'] }).catch((e: unknown) => e);
  t.ok(again instanceof KvError);
  t.same([(again as KvError).code, (again as KvError).message], [GrpcCode.FailedPrecondition, 'etcdserver: Peer URLs already exists']);

  const voter = await client.memberPromote({ id: m1.id }).catch((e: unknown) => e);
  t.same([(voter as KvError).code, (voter as KvError).message], [GrpcCode.FailedPrecondition, 'etcdserver: can only promote a learner member']);
  const promoted = await client.memberPromote({ id: n4.id });
  t.same(promoted.members, [m1, { ...n4, isLearner: false }]);

  const unknown = await client.memberRemove({ id: '00000000000000ff' }).catch((e: unknown) => e);
  t.same([(unknown as KvError).code, (unknown as KvError).message], [GrpcCode.NotFound, 'etcdserver: member not found']);
  const unknownPromote = await client.memberPromote({ id: '00000000000000ff' }).catch((e: unknown) => e);
  t.equal((unknownPromote as KvError).message, 'etcdserver: member not found');
  t.same((await client.memberRemove({ id: n4.id })).members, [m1]);
  t.same((await client.memberList()).members, [m1]);

  const badUrl = await client.memberAdd({ peerUrls: ['http://127.0.0.1:2386/'] }).catch((e: unknown) => e);
  t.equal((badUrl as KvError).message, 'etcdserver: given member URLs are invalid');
});

t.test('KeelHttpClient through the gateway: alarms', async (t) => {
  const { store, client } = await fakeBehindGateway(t);
  t.same((await client.alarm({ action: 'GET' })).alarms, []);
  const raised = await client.alarm({ action: 'ACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NOSPACE' });
  t.same(raised.alarms, [{ memberId: '8e9e05c52164694d', alarm: 'NOSPACE' }]);
  await client.alarm({ action: 'ACTIVATE', memberId: '00000000000000bb', alarm: 'CORRUPT' });
  t.same((await client.alarm({ action: 'GET' })).alarms, store.membership.alarms);
  t.same((await client.alarm({ action: 'GET', alarm: 'CORRUPT' })).alarms, [{ memberId: '00000000000000bb', alarm: 'CORRUPT' }]);
  const off = await client.alarm({ action: 'DEACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NOSPACE' });
  t.same(off.alarms, [{ memberId: '8e9e05c52164694d', alarm: 'NOSPACE' }]);
  const twice = await client.alarm({ action: 'DEACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NOSPACE' });
  t.same(twice.alarms, [], 'nothing to deactivate: an empty answer, as etcd');
  const e = await client.alarm({ action: 'ACTIVATE', alarm: 'NOSPACE' }).catch((x: unknown) => x);
  t.equal((e as KvError).code, GrpcCode.InvalidArgument);
});

t.test('KeelHttpClient: list fails over, add is not sent twice', async (t) => {
  const { store, url } = await fakeBehindGateway(t);
  // A member that answers 503 "no leader" to everything.
  const down = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: 'etcdserver: no leader', code: 14, message: 'etcdserver: no leader' }));
    });
  });
  await new Promise<void>((resolve) => down.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => down.close(() => resolve())));
  const downUrl = `http://127.0.0.1:${(down.address() as AddressInfo).port}`;
  const client = new KeelHttpClient({ endpoints: [downUrl, url] });
  t.teardown(() => client.close());
  t.same((await client.memberList()).members, store.membership.members, 'a read goes on to the next member');
  const client2 = new KeelHttpClient({ endpoints: [downUrl, url] });
  t.teardown(() => client2.close());
  const add = await client2.memberAdd({ peerUrls: ['http://127.0.0.1:2390'] }).catch((e: unknown) => e);
  t.match(add, { code: GrpcCode.Unavailable, message: 'etcdserver: no leader' }, 'a refused write is not retried elsewhere');
  t.equal(store.membership.members.length, 1);
});
