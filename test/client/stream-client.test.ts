// KeelClient's requests against fake members (real stream servers over one in-memory store): finding a
// healthy member, failing over, and the retry rules — reads retried after anything but a final answer;
// writes with a request id retried with the SAME id (and applied once); writes without one never sent twice
// (OutcomeUnknownError); a timeout never guessed; final answers thrown at once. Also the lease keep-alive
// helper and close().

import t, { type Test } from 'tap';
import { Errors, GrpcCode, KvError, type ClientRequestId, type PutRequest, type PutResponse } from '../../src/kv/api';
import { OutcomeUnknownError } from '../../src/client/kv-client';
import { KeelClient, type KeelClientOptions } from '../../src/client/stream-client';
import {
  refusingUrl,
  sleep,
  startFakeCluster,
  unavailable,
  type RunningFake,
} from '../server/fixtures/fake-kv-service';

function client(t: Test, endpoints: string[], opts: Partial<KeelClientOptions> = {}): KeelClient {
  const c = new KeelClient({ endpoints, requestTimeoutMs: 2000, dialTimeoutMs: 500, ...opts });
  t.teardown(() => c.close());
  return c;
}

const idOf = (params: unknown): ClientRequestId | undefined => (params as { requestId?: ClientRequestId }).requestId;

/** Makes `member.put` apply the write and then cut every connection before the answer leaves. */
function applyThenDie(fake: RunningFake): void {
  const member = fake.member;
  const orig = member.put.bind(member);
  member.put = async (req: PutRequest): Promise<PutResponse> => {
    const r = await orig(req);
    await fake.kill();
    return r;
  };
}

t.test('the basic calls, and what they send', async (t) => {
  const { endpoints, fakes, store } = await startFakeCluster(t, 1);
  const c = client(t, endpoints);
  const m = fakes[0].member;
  const p1 = await c.put('a/1', 'one', { prevKv: true });
  const p2 = await c.put(Buffer.from('a/2'), Buffer.from([0, 1, 2]));
  t.equal(p2.header.revision, p1.header.revision + 1);
  const ids = m.callsOf('put').map(idOf);
  t.match(ids[0], { client: /^[0-9a-f]{16}$/, seq: 1 }, 'a put carries {client: 16 hex, seq}');
  t.same(ids[1], { client: ids[0]!.client, seq: 2 }, 'seq increases; the client half stays');

  const got = await c.get('a/', { prefix: true, serializable: true, limit: 10 });
  t.same(got.kvs.map((kv) => kv.key.toString()), ['a/1', 'a/2']);
  t.same(got.kvs[1].value, Buffer.from([0, 1, 2]), 'values come back as Buffers');
  t.same(m.callsOf('range')[0], { key: Buffer.from('a/'), rangeEnd: Buffer.from('a0'), limit: 10, serializable: true });

  const del = await c.delete('a/1', { prevKv: true });
  t.equal(del.deleted, 1);
  t.match(idOf(m.callsOf('deleteRange')[0]), { seq: 3 }, 'deletes carry request ids too');

  await c.txn({ compare: [], success: [{ type: 'range', range: { key: Buffer.from('a/2') } }], failure: [] });
  t.equal(idOf(m.callsOf('txn')[0]), undefined, 'a read-only txn has no request id');
  await c.txn({ compare: [], success: [{ type: 'put', put: { key: Buffer.from('t'), value: Buffer.from('v') } }], failure: [] });
  t.match(idOf(m.callsOf('txn')[1]), { seq: 4 }, 'a writing txn has one');

  const g = await c.leaseGrant(30);
  t.equal(g.ttl, 30);
  t.same((await c.leaseLeases()).leases, [{ id: g.id }]);
  t.equal((await c.leaseTimeToLive(g.id, { keys: true })).ttl, 30);
  t.equal((await c.leaseKeepAliveOnce(g.id)).ttl, 30);
  await c.leaseRevoke(g.id);
  t.equal((await c.leaseTimeToLive(g.id)).ttl, -1);
  await c.compact(store.revision, { physical: true });
  t.same(m.callsOf('compact'), [{ revision: store.revision, physical: true }]);
  t.equal((await c.status(endpoints[0])).name, 'm1');
  t.same(await c.health(endpoints[0]), { health: true, reason: '' });
});

t.test('an unreachable endpoint and an unhealthy member are skipped', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 2);
  fakes[0].member.healthy = false;
  const c = client(t, [await refusingUrl(), ...endpoints]);
  await c.put('k', 'v');
  t.equal(fakes[0].member.callsOf('put').length, 0, 'nothing written through the member without leader');
  t.equal(fakes[0].member.callsOf('health').length, 1, 'it was asked');
  t.equal(fakes[1].member.callsOf('put').length, 1, 'the healthy member took the write');
});

t.test('a read is retried on another member after an Unavailable answer', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 2);
  fakes[0].member.hook = (method) => {
    if (method === 'range') throw unavailable();
  };
  const c = client(t, endpoints);
  await c.put('k', 'v');
  const r = await c.get('k');
  t.equal(r.kvs[0].value.toString(), 'v');
  t.equal(fakes[0].member.callsOf('range').length, 1);
  t.equal(fakes[1].member.callsOf('range').length, 1, 'answered by the other member');
});

t.test('a put whose answer is lost is retried with the same request id and applied once', async (t) => {
  const { fakes, endpoints, store } = await startFakeCluster(t, 2);
  applyThenDie(fakes[0]);
  const c = client(t, endpoints);
  const before = store.revision;
  const r = await c.put('once', 'v');
  const first = idOf(fakes[0].member.callsOf('put')[0]);
  const retry = idOf(fakes[1].member.callsOf('put')[0]);
  t.ok(first !== undefined, 'the first member got the put');
  t.same(retry, first, 'the retry carries the same request id');
  t.equal(store.revision, before + 1, 'one revision: applied once');
  t.equal(r.header.revision, before + 1, 'the retry is answered with the first application');
  t.same([...store.applications.values()], [1]);
  t.equal(c.retries, 1, 'counted as one retry');
});

t.test('many writes in flight through a member that dies are each applied once', async (t) => {
  const { fakes, endpoints, store } = await startFakeCluster(t, 3);
  const c = client(t, endpoints, { requestTimeoutMs: 5000 });
  await c.put('warm', 'up');
  const gate = new Promise<void>((resolve) => setTimeout(resolve, 100));
  fakes[0].member.hook = async (method) => {
    if (method === 'put') await gate; // hold them until the member dies
  };
  const puts = Array.from({ length: 40 }, (_v, i) => c.put(`many/${i}`, `v${i}`));
  await sleep(50);
  await fakes[0].kill();
  const results = await Promise.allSettled(puts);
  t.equal(results.filter((r) => r.status === 'rejected').length, 0, 'every put succeeded through the failover');
  t.equal(store.range({ key: Buffer.from('many/'), rangeEnd: Buffer.from('many0') }).length, 40);
  t.ok([...store.applications.values()].every((n) => n === 1), 'none applied twice');
});

t.test('a put answered Unavailable is retried with the same id on another member', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 2);
  fakes[0].member.hook = (method) => {
    if (method === 'put') throw Errors.timeout();
  };
  const c = client(t, endpoints);
  await c.put('k', 'v');
  t.same(idOf(fakes[1].member.callsOf('put')[0]), idOf(fakes[0].member.callsOf('put')[0]));
});

t.test('writes without request id are never sent twice: OutcomeUnknownError', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 3);
  fakes[0].member.hook = async (method) => {
    if (method === 'leaseGrant') {
      await fakes[0].kill(); // the connection drops after the grant arrived
      await new Promise(() => undefined);
    }
  };
  for (const f of fakes.slice(1)) {
    f.member.hook = (method) => {
      if (method === 'leaseRevoke' || method === 'compact') throw unavailable();
    };
  }
  const c = client(t, endpoints);
  await c.put('k', 'v'); // on the first member
  const err = await c.leaseGrant(10).catch((e: unknown) => e);
  t.type(err, OutcomeUnknownError, 'a lost connection during a grant');
  t.match((err as Error).message, /^leaseGrant: connection to .* closed .*; it may or may not have been applied$/);
  t.equal(fakes[1].member.callsOf('leaseGrant').length + fakes[2].member.callsOf('leaseGrant').length, 0, 'not sent again elsewhere');

  await t.rejects(c.leaseRevoke(5), OutcomeUnknownError, 'an Unavailable answer to a revoke (now on the second member)');
  t.equal(fakes[1].member.callsOf('leaseRevoke').length, 1);
  t.equal(fakes[2].member.callsOf('leaseRevoke').length, 0, 'not sent to the third member');
  await t.rejects(c.compact(1), OutcomeUnknownError, 'nor a compaction');
  t.equal(fakes[1].member.callsOf('compact').length + fakes[2].member.callsOf('compact').length, 1, 'sent once');
});

t.test('a timeout is an OutcomeUnknownError for a write, a DeadlineExceeded for a read', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 2);
  for (const f of fakes) {
    f.member.hook = async (method) => {
      if (method === 'put' || method === 'range') await new Promise(() => undefined);
    };
  }
  const c = client(t, endpoints, { requestTimeoutMs: 600 });
  const t0 = Date.now();
  const err = await c.put('k', 'v').catch((e: unknown) => e);
  const took = Date.now() - t0;
  t.type(err, OutcomeUnknownError);
  t.match((err as Error).message, /^put: no answer within 600 ms; it may or may not have been applied$/);
  t.ok(took >= 550 && took < 1500, `gave up at the deadline (${took} ms)`);
  const sent = fakes.flatMap((f) => f.member.callsOf('put').map(idOf));
  t.ok(sent.length >= 1, `sent ${sent.length} times`);
  t.ok(sent.every((id) => JSON.stringify(id) === JSON.stringify(sent[0])), 'always with the same request id');

  const rerr = await c.get('k').catch((e: unknown) => e);
  t.type(rerr, KvError);
  t.notOk(rerr instanceof OutcomeUnknownError);
  t.equal((rerr as KvError).code, GrpcCode.DeadlineExceeded);
});

t.test('a final answer is thrown at once, without trying another member', async (t) => {
  const { fakes, endpoints, store } = await startFakeCluster(t, 2);
  const c = client(t, endpoints);
  await c.put('k', 'v');
  store.compactRevision = store.revision;
  await t.rejects(c.get('k', { revision: 1 }), { code: GrpcCode.OutOfRange, message: 'etcdserver: mvcc: required revision has been compacted' });
  await t.rejects(c.put('', 'v'), { code: GrpcCode.InvalidArgument, message: 'etcdserver: key is not provided' });
  t.equal(fakes[1].member.callsOf('range').length + fakes[1].member.callsOf('put').length, 0, 'the second member saw none');
});

t.test('answers that say "not served" and "cannot tell"', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 2);
  fakes[0].member.hook = (method) => {
    if (method === 'leaseGrant') throw Errors.starting();
    if (method === 'put') throw Errors.requestIdExpired();
  };
  const c = client(t, endpoints);
  await c.get('k', { serializable: true }); // on the first member
  const g = await c.leaseGrant(5);
  t.equal(g.ttl, 5, 'a grant refused by a starting member was not served: sent elsewhere');
  t.equal(fakes[1].member.callsOf('leaseGrant').length, 1);
  const c2 = client(t, endpoints);
  const err = await c2.put('k', 'v').catch((e: unknown) => e);
  t.type(err, OutcomeUnknownError, 'a request id beyond the deduplication window: outcome unknown');
  t.equal(fakes[1].member.callsOf('put').length, 0, 'and not sent again');
});

t.test('a request above the frame limit is refused before it is sent', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 1);
  const c = client(t, endpoints);
  await t.rejects(c.put('big', Buffer.alloc(2 * 1024 * 1024)), { code: GrpcCode.InvalidArgument, message: 'etcdserver: request is too large' });
  t.equal(fakes[0].member.callsOf('put').length, 0);
});

t.test('no reachable member: a write fails as not sent, not as unknown', async (t) => {
  const c = client(t, [await refusingUrl(), await refusingUrl()], { requestTimeoutMs: 400 });
  const err = await c.put('k', 'v').catch((e: unknown) => e);
  t.type(err, KvError);
  t.notOk(err instanceof OutcomeUnknownError);
  t.equal((err as KvError).code, GrpcCode.Unavailable);
  t.match((err as Error).message, /^put \(not sent, so not applied\): no healthy member among .* ECONNREFUSED/);
});

t.test('without a healthy member, serializable reads are served by a reachable one; the rest waits', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 2);
  for (const f of fakes) f.member.healthy = false;
  const c = client(t, endpoints, { requestTimeoutMs: 500 });
  const r = await c.get('k', { serializable: true });
  t.equal(r.count, 0, 'a serializable read is answered');
  await t.rejects(c.get('k'), { code: GrpcCode.Unavailable, message: /no healthy member .*unhealthy: RAFT NO LEADER/ });
  t.equal(fakes[0].member.callsOf('range').length + fakes[1].member.callsOf('range').length, 1, 'the linearizable read was not sent');
  fakes[1].member.healthy = true;
  await c.put('k', 'v');
  t.equal(fakes[1].member.callsOf('put').length, 1, 'once a member is healthy again, it is found');
});

t.test('status and health ask the member named, not the current one', async (t) => {
  const { endpoints } = await startFakeCluster(t, 2);
  const c = client(t, endpoints);
  await c.put('k', 'v');
  t.equal((await c.status(endpoints[1])).name, 'm2');
  t.equal((await c.status(endpoints[0])).name, 'm1');
  const dead = await refusingUrl();
  await t.rejects(c.health(dead), { code: GrpcCode.Unavailable, message: /^no member reachable at / });
});

t.test('keepAlive: every TTL/3, and reports a lost lease', async (t) => {
  const { fakes, endpoints, store } = await startFakeCluster(t, 1);
  const c = client(t, endpoints);
  const g = await c.leaseGrant(1);
  const ka = c.keepAlive(g.id, { ttl: 1 });
  await sleep(1100);
  const n = fakes[0].member.callsOf('leaseKeepAlive').length;
  t.ok(n >= 3 && n <= 5, `${n} keep-alives in 1.1 s for a TTL of 1 s`);
  store.leases.delete(g.id);
  const lost = await Promise.race([ka.lost, sleep(2000).then(() => undefined)]);
  t.match(lost, { message: 'etcdserver: requested lease not found' }, 'a TTL 0 answer: the lease is gone');
  const after = fakes[0].member.callsOf('leaseKeepAlive').length;
  await sleep(500);
  t.equal(fakes[0].member.callsOf('leaseKeepAlive').length, after, 'no keep-alives after the loss');

  const g2 = await c.leaseGrant(1);
  fakes[0].member.hook = (method) => {
    if (method === 'leaseKeepAlive') throw unavailable();
  };
  const failing = c.keepAlive(g2.id, { ttl: 1 });
  const t0 = Date.now();
  const why = await Promise.race([failing.lost, sleep(3000).then(() => undefined)]);
  t.match(why, { message: /^lease \d+: no successful keep-alive within its TTL \(1 s\); last error: leaseKeepAlive: / });
  t.ok(Date.now() - t0 < 1500, 'reported once the TTL ran out');
  fakes[0].member.hook = undefined;

  const g3 = await c.leaseGrant(1);
  const stopped = c.keepAlive(g3.id);
  await sleep(50);
  stopped.stop();
  const count = fakes[0].member.callsOf('leaseKeepAlive').length;
  await sleep(500);
  t.equal(fakes[0].member.callsOf('leaseKeepAlive').length, count, 'stop() stops');
});

t.test('close() fails what is in flight and refuses new calls', async (t) => {
  const { fakes, endpoints } = await startFakeCluster(t, 1);
  fakes[0].member.hook = async (method) => {
    if (method === 'range') await new Promise(() => undefined);
  };
  const c = new KeelClient({ endpoints, requestTimeoutMs: 5000 });
  await c.put('k', 'v');
  const pending = c.get('k').catch((e: unknown) => e);
  await sleep(50);
  await c.close();
  t.match(await pending, { message: /KeelClient is closed/ });
  t.throws(() => c.watch('k', {}, { onEvents: () => undefined }), /KeelClient is closed/);
  await t.rejects(c.put('k', 'v'), /KeelClient is closed/);
});
