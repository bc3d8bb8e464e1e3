// The `etcd3` npm package, a real etcd client with its own copy of etcd's .proto files, against a fake member
// behind Keel's gRPC server and protocol mux: if it works unchanged, the wire format is etcd's.

import t from 'tap';
import { Etcd3, type IKeyValue } from 'etcd3';
import { startMuxFake, until } from './fixtures/grpc';

async function client(t: { teardown(fn: () => void): void }): Promise<{ c: Etcd3; f: Awaited<ReturnType<typeof startMuxFake>> }> {
  const f = await startMuxFake(t);
  const c = new Etcd3({ hosts: f.url });
  t.teardown(() => c.close());
  return { c, f };
}

t.test('put, get, prefix, count, delete', async (t) => {
  const { c, f } = await client(t);
  await c.put('app/a').value('1');
  await c.put('app/b').value('2');
  await c.put('other').value('3');
  t.equal(await c.get('app/a').string(), '1');
  t.equal(await c.get('missing').string(), null);
  t.same(await c.getAll().prefix('app/').strings(), { 'app/a': '1', 'app/b': '2' });
  t.equal(await c.getAll().prefix('app/').count(), 2);
  t.same(await c.getAll().prefix('app/').keys(), ['app/a', 'app/b']);
  const prev = await c.put('app/a').value('1b').getPrevious();
  t.equal(prev?.value.toString(), '1');
  const del = await c.delete().prefix('app/').getPrevious();
  t.same(del.map((kv: IKeyValue) => kv.key.toString()), ['app/a', 'app/b']);
  t.same(await c.getAll().prefix('app/').strings(), {});
  t.same(f.member.callsOf('deleteRange')[0], { key: Buffer.from('app/'), rangeEnd: Buffer.from('app0'), prevKv: true });
});

t.test('watch a prefix: puts and deletes, in order; then cancel', async (t) => {
  const { c, f } = await client(t);
  const w = await c.watch().prefix('w/').withPreviousKV().create();
  const seen: string[] = [];
  w.on('put', (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
  w.on('delete', (kv, prev) => seen.push(`delete ${kv.key.toString()} (was ${prev?.value.toString()})`));
  await c.put('w/1').value('a');
  await c.put('x').value('not watched');
  await c.put('w/2').value('b');
  await c.delete().key('w/1');
  await until(() => seen.length === 3);
  t.same(seen, ['put w/1=a', 'put w/2=b', 'delete w/1 (was a)']);
  const stream = [...f.member.streams][0];
  await w.cancel();
  await until(() => stream.watchers.size === 0, 5000, 'the watch to be canceled on the member');
  t.pass('canceled');
});

t.test('two watchers on one client share one stream; history from a revision', async (t) => {
  const { c, f } = await client(t);
  await c.put('h').value('old');
  const a: string[] = [];
  const b: string[] = [];
  const wa = await c.watch().key('h').startRevision('2').create();
  wa.on('put', (kv) => a.push(kv.value.toString()));
  const wb = await c.watch().key('g').create();
  wb.on('put', (kv) => b.push(kv.value.toString()));
  await c.put('h').value('new');
  await c.put('g').value('gee');
  await until(() => a.length === 2 && b.length === 1);
  t.same(a, ['old', 'new']);
  t.same(b, ['gee']);
  t.equal(f.member.streams.size, 1, 'one Watch call for both');
  await wa.cancel();
  await wb.cancel();
});

t.test('leases: grant, attach, keep-alive, time-to-live, revoke; an unknown lease', async (t) => {
  const { c, f } = await client(t);
  const lease = c.lease(30, { autoKeepAlive: false });
  const id = await lease.grant();
  t.equal(id, '1000');
  await lease.put('leased').value('v');
  t.same(f.member.callsOf('put')[0], { key: Buffer.from('leased'), value: Buffer.from('v'), lease: 1000 });
  const ka = await lease.keepaliveOnce();
  t.equal(ka.TTL, '30');
  const ttl = await c.leaseClient.leaseTimeToLive({ ID: id, keys: true });
  t.same([ttl.TTL, ttl.grantedTTL], ['30', '30']);
  t.same((await c.leaseClient.leaseLeases()).leases.map((l) => l.ID), ['1000']);
  await lease.revoke();
  t.equal(f.store.leases.has(1000), false);

  const stranger = c.lease(10, { autoKeepAlive: false });
  await stranger.grant();
  f.store.leases.clear();
  // (etcd3's error classes are compiled so that instanceof does not see them: matched by message.)
  await t.rejects(stranger.keepaliveOnce(), /Lease 1001 is expired or revoked/, 'TTL 0 from the keep-alive stream: the lease is gone');
  const revoke = await c.leaseClient.leaseRevoke({ ID: '1001' }).catch((e: unknown) => e);
  t.match((revoke as Error).message, /etcdserver: requested lease not found/);
});

t.test('txn: compares on value, version, mod revision; both branches', async (t) => {
  const { c, f } = await client(t);
  f.member.evaluateCompares = true;
  await c.put('cfg').value('v1');
  const r1 = await c.if('cfg', 'Value', '==', 'v1').and('cfg', 'Version', '>', 0).then(c.put('cfg').value('v2')).else(c.get('cfg')).commit();
  t.equal(r1.succeeded, true);
  t.equal(await c.get('cfg').string(), 'v2');
  const r2 = await c.if('cfg', 'Mod', '<', 2).then(c.put('cfg').value('never')).else(c.get('cfg')).commit();
  t.equal(r2.succeeded, false);
  t.equal(r2.responses[0].response_range?.kvs[0].value.toString(), 'v2');
  t.equal(await c.get('cfg').string(), 'v2');
});

t.test('errors arrive as etcd errors', async (t) => {
  const { c, f } = await client(t);
  for (let i = 0; i < 3; i++) await c.put('k').value(String(i));
  await f.member.compact({ revision: 3 });
  const err = await c.get('k').revision(2).string().catch((e: unknown) => e);
  t.match((err as Error).message, /OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted/);
});

t.test('maintenance and cluster calls', async (t) => {
  const { c } = await client(t);
  const status = await c.maintenance.status();
  t.equal(status.version, '3.4.0-keel');
  t.equal(status.leader, '187');
  const members = await c.cluster.memberList({});
  t.same(members.members.map((m) => [m.ID, m.name]), [['187', 'm1']]);
  const alarms = await c.maintenance.alarm({ action: 'Get' as never });
  t.same(alarms.alarms, []);
});
