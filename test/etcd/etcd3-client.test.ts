// The `etcd3` npm client (gRPC) against a 3-member Keel cluster, and the same test body against a real etcd
// 3.4 cluster, so that any difference is Keel's: put / get / delete, prefix reads, a prefix watch, leases
// (grant, attached key, keep-alive, revoke deletes the key), its lock helper (contenders mutually exclusive)
// and its election helper (campaign, observe the leader, hand-over on resign). Every call is bounded.
//
// The etcd run is skipped (with a message) where /usr/bin/etcd is missing. Needs `npm run build`.

import t, { type Test } from 'tap';
import { Etcd3, EtcdLockFailedError, type IOptions } from 'etcd3';
import { EtcdCluster, etcdMissing } from './fixtures/etcd-cluster';
import { ProcCluster, sleep } from '../process/fixtures/proc-cluster';

/**
 * The TTL of the leases behind locks and campaigns: short, because etcd3 1.1.2 can restart a lease's
 * keep-alive timeout (one TTL) after the lease was released, when a keep-alive answer was in flight, which
 * keeps the process alive for up to three TTLs after the last test. etcd's minimum with a 1 s election
 * timeout is 2 s.
 */
const LOCK_TTL = 2;

/** Rejects after ms: no step may hang the suite (etcd3 retries and reconnects on its own). */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** Waits (bounded) until cond() holds. */
async function until(ms: number, what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

function client(hosts: string[]): Etcd3 {
  const opts: IOptions = {
    hosts,
    dialTimeout: 3000,
    // Unary calls get a deadline; streams (watch, keep-alive) must not.
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: new Date(Date.now() + 5000) }),
  };
  return new Etcd3(opts);
}

/** The test body, the same for both systems. */
async function clientSuite(t: Test, hosts: string[]): Promise<void> {
  const c1 = client(hosts);
  // A second client that prefers another member.
  const c2 = client([...hosts.slice(1), hosts[0]]);
  t.teardown(() => {
    c1.close();
    c2.close();
  });

  try {
    await within(10_000, 'first put', c1.put('probe').value('x').exec());
  } catch (e) {
    t.fail(`the etcd3 client cannot talk to ${hosts.join(',')}: ${(e as Error).message}`);
    return;
  }

  await t.test('put, get, delete', async (t) => {
    await within(5000, 'put', c1.put('kv/a').value('1').exec());
    t.equal(await within(5000, 'get', c1.get('kv/a').string()), '1');
    t.equal(await within(5000, 'get from another member', c2.get('kv/a').string()), '1');
    const put = await within(5000, 'put --prev-kv', c1.put('kv/a').value('2').getPrevious());
    t.equal(put?.value.toString(), '1', 'the previous value');
    const del = await within(5000, 'delete', c1.delete().key('kv/a').exec());
    t.equal(del.deleted, '1', 'one key deleted');
    t.equal(await within(5000, 'get a deleted key', c1.get('kv/a').string()), null);
    const again = await within(5000, 'delete again', c1.delete().key('kv/a').exec());
    t.equal(again.deleted, '0');
  });

  await t.test('prefix get', async (t) => {
    for (const [k, v] of [['p/1', 'one'], ['p/2', 'two'], ['p/3', 'three'], ['q/1', 'other']]) {
      await within(5000, `put ${k}`, c1.put(k).value(v).exec());
    }
    t.same(await within(5000, 'getAll prefix', c1.getAll().prefix('p/').strings()), { 'p/1': 'one', 'p/2': 'two', 'p/3': 'three' });
    t.same(await within(5000, 'keys', c2.getAll().prefix('p/').keys()), ['p/1', 'p/2', 'p/3']);
    t.equal(await within(5000, 'count', c1.getAll().prefix('p/').count()), 3);
    t.same(await within(5000, 'limit + sort', c1.getAll().prefix('p/').sort('Key', 'Descend').limit(2).keys()), ['p/3', 'p/2']);
    const gone = await within(5000, 'delete prefix', c1.delete().prefix('p/').exec());
    t.equal(gone.deleted, '3');
  });

  await t.test('a prefix watcher receives puts and deletes', async (t) => {
    const w = await within(5000, 'watch', c2.watch().prefix('w/').create());
    const seen: string[] = [];
    w.on('put', (kv) => seen.push(`put ${kv.key.toString()}=${kv.value.toString()}`));
    w.on('delete', (kv) => seen.push(`delete ${kv.key.toString()}`));
    await within(5000, 'put w/1', c1.put('w/1').value('a').exec());
    await within(5000, 'put w/2', c1.put('w/2').value('b').exec());
    await within(5000, 'put elsewhere', c1.put('x/1').value('not watched').exec());
    await within(5000, 'delete w/1', c1.delete().key('w/1').exec());
    await until(5000, 'watch events', () => seen.length >= 3);
    await sleep(100);
    t.same(seen, ['put w/1=a', 'put w/2=b', 'delete w/1'], 'every event, in order, none from outside the prefix');
    await within(5000, 'cancel', w.cancel());
  });

  await t.test('leases', async (t) => {
    const lease = c1.lease(5, { autoKeepAlive: false });
    const id = await within(5000, 'grant', lease.grant());
    t.match(id, /^[1-9]\d*$/, 'a lease id');
    await within(5000, 'put with the lease', lease.put('l/k').value('v').exec());
    const kv = await within(5000, 'get', c2.get('l/k').exec());
    t.equal(kv.kvs[0]?.lease, id, 'the key is attached to the lease');
    const ka = await within(5000, 'keepalive once', lease.keepaliveOnce());
    t.equal(ka.ID, id);
    t.equal(ka.TTL, '5', 'renewed with its TTL');
    const ttl = await within(5000, 'timetolive', c1.leaseClient.leaseTimeToLive({ ID: id, keys: true }));
    t.equal(ttl.grantedTTL, '5');
    t.same(ttl.keys.map((k) => k.toString()), ['l/k'], 'attached keys');
    await within(5000, 'revoke', lease.revoke());
    t.equal(await within(5000, 'get after revoke', c1.get('l/k').string()), null, 'revoking the lease removed its key');

    // Automatic keep-alive (every TTL / 3) keeps the key past its TTL; releasing lets it expire.
    const auto = c1.lease(2);
    let renewals = 0;
    auto.on('keepaliveSucceeded', () => renewals++);
    await within(5000, 'grant (auto)', auto.grant());
    await within(5000, 'put (auto)', auto.put('l/auto').value('v').exec());
    await sleep(3000);
    t.ok(renewals >= 2, `renewed ${renewals} times in 3 s`);
    t.equal(await within(5000, 'get (auto)', c1.get('l/auto').string()), 'v', 'still there after its TTL');
    await within(5000, 'revoke (auto)', auto.revoke());
    t.equal(await within(5000, 'get after revoke (auto)', c1.get('l/auto').string()), null);
  });

  await t.test('lock: two contenders are mutually exclusive', async (t) => {
    let inside = 0;
    let overlaps = 0;
    let done = 0;
    let refused = 0;
    const contender = async (c: Etcd3, rounds: number): Promise<void> => {
      const deadline = Date.now() + 15_000;
      for (let i = 0; i < rounds; ) {
        if (Date.now() > deadline) throw new Error('lock: contender starved for 15 s');
        try {
          await within(5000, 'lock.do', c.lock('the-lock').ttl(LOCK_TTL).do(async () => {
            inside++;
            if (inside > 1) overlaps++;
            await sleep(30);
            inside--;
          }));
          i++;
          done++;
        } catch (e) {
          if (!(e instanceof EtcdLockFailedError)) throw e;
          refused++;
          await sleep(5 + Math.random() * 20);
        }
      }
    };
    await Promise.all([contender(c1, 5), contender(c2, 5)]);
    t.equal(done, 10, 'both contenders ran their rounds');
    t.equal(overlaps, 0, 'never two holders at once');
    t.ok(refused > 0, `the lock was refused ${refused} times while held`);
    t.same(await within(5000, 'lock keys', c1.getAll().prefix('the-lock').keys()), [], 'no lock key left');

    // Held by one: the other is refused until it is released.
    const held = await within(5000, 'acquire', c1.lock('held').ttl(LOCK_TTL).acquire());
    const second = await within(5000, 'second acquire', c2.lock('held').ttl(LOCK_TTL).acquire()).then(
      () => 'acquired',
      (e: unknown) => (e instanceof EtcdLockFailedError ? 'refused' : String(e)),
    );
    t.equal(second, 'refused', 'a second holder is refused while the lock is held');
    await within(5000, 'release', held.release());
    const next = await within(5000, 'acquire after release', c2.lock('held').ttl(LOCK_TTL).acquire());
    await within(5000, 'release', next.release());
  });

  await t.test('election: campaign, observe the leader, resign', async (t) => {
    const e1 = c1.election('e', LOCK_TTL);
    const e2 = c2.election('e', LOCK_TTL);
    const a = e1.campaign('a');
    await within(5000, 'a elected', a.wait());
    t.equal(await within(5000, 'leader', e2.leader()), 'a');
    const observer = await within(5000, 'observe', e2.observe());
    t.teardown(() => observer.cancel());
    const changes: (string | undefined)[] = [];
    observer.on('change', (leader) => changes.push(leader));
    t.equal(observer.leader(), 'a', 'the observer sees a');

    const b = e2.campaign('b');
    let bElected = false;
    b.on('elected', () => (bElected = true));
    b.on('error', (err) => t.fail(`campaign b: ${err.message}`));
    await sleep(500);
    t.notOk(bElected, 'b waits while a leads');

    await within(5000, 'a resigns', a.resign());
    await until(5000, 'b elected', () => bElected);
    await until(5000, 'observer sees b', () => observer.leader() === 'b');
    t.same(changes.filter((c) => c !== undefined), ['b'], 'the observer saw the hand-over to b');
    t.equal(await within(5000, 'leader', e1.leader()), 'b');

    await within(5000, 'proclaim', b.proclaim('b2'));
    await until(5000, 'observer sees b2', () => observer.leader() === 'b2');
    await within(5000, 'b resigns', b.resign());
    t.equal(await within(5000, 'no leader', e1.leader()), undefined);
    await within(5000, 'cancel observer', observer.cancel());
  });
}

t.test('etcd3 client against Keel', async (t) => {
  const c = await ProcCluster.start(3);
  t.teardown(async () => {
    await c.stopAll();
    c.cleanup();
  });
  await c.waitForLeader(20_000);
  await clientSuite(t, c.endpoints);
});

t.test('etcd3 client against etcd 3.4 (the reference)', { skip: etcdMissing() }, async (t) => {
  const c = await EtcdCluster.start(3);
  t.teardown(async () => {
    await c.stopAll();
    c.cleanup();
  });
  await c.waitHealthy(20_000);
  await clientSuite(t, c.endpoints);
});
