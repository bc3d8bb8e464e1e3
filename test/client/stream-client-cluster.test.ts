// KeelClient against 3 real `keel node` processes: request deduplication (one request id sent to two
// members applies once; puts in flight through a member killed with SIGKILL are retried elsewhere and each
// applied once), and a watch that resumes across a SIGKILL of the member it was on, with no gap and no
// duplicate.

import t from 'tap';
import type { Event, TxnRequest } from '../../src/kv/api';
import { KeelClient } from '../../src/client/stream-client';
import { ProcCluster, sleep } from '../process/fixtures/proc-cluster';

const TIMEOUT_MS = 15_000;

t.test('native stream client on a 3-member cluster', async (t) => {
  const c = await ProcCluster.start(3);
  const clients: KeelClient[] = [];
  const newClient = (endpoints: string[]): KeelClient => {
    const cl = new KeelClient({ endpoints, requestTimeoutMs: TIMEOUT_MS });
    clients.push(cl);
    return cl;
  };
  t.teardown(async () => {
    for (const cl of clients) await cl.close().catch(() => undefined);
    await c.stopAll();
    c.cleanup();
  });
  const leader = await c.waitForLeader(15_000);
  const followers = [0, 1, 2].filter((i) => i !== leader);

  await t.test('one request id sent to two members applies once', async (t) => {
    const a = newClient([c.endpoints[followers[0]]]);
    const b = newClient([c.endpoints[followers[1]]]);
    const req: TxnRequest = {
      compare: [],
      success: [{ type: 'put', put: { key: Buffer.from('dedup/k'), value: Buffer.from('v') } }],
      failure: [],
      requestId: { client: 'e2e0000000000001', seq: 1 },
    };
    const first = await a.txn(req);
    const second = await b.txn(req);
    t.equal(second.header.revision, first.header.revision, 'the repeat is answered with the first application');
    const got = await a.get('dedup/k');
    t.equal(got.kvs[0].version, 1, 'the key was written once');
    t.equal(got.kvs[0].modRevision, first.header.revision);
  });

  await t.test('a watch resumes across a SIGKILL of its member; puts through it apply once', async (t) => {
    // The watcher and one writer sit on the same follower, which is killed mid-run; a second writer uses
    // the other members.
    const victim = followers[0];
    const others = [0, 1, 2].filter((i) => i !== victim).map((i) => c.endpoints[i]);
    const watcher = newClient([c.endpoints[victim], ...others]);
    const onVictim = newClient([c.endpoints[victim], ...others]);
    const elsewhere = newClient(others);

    const start = await elsewhere.put('e2e/start', 'x');
    const from = start.header.revision + 1;
    const got: { revision: number; events: Event[] }[] = [];
    const watch = watcher.watch('e2e/', { prefix: true, startRevision: from }, {
      onEvents: (events, revision) => got.push({ revision, events }),
    });
    await watch.created;

    // revision -> "key=value" the writers were acknowledged for.
    const acked = new Map<number, string>();
    const failures: string[] = [];
    let stop = false;
    const writer = async (cl: KeelClient, name: string): Promise<void> => {
      for (let i = 0; !stop && i < 2000; i++) {
        const key = `e2e/${name}/${i}`;
        try {
          const r = await cl.put(key, `${name}${i}`);
          acked.set(r.header.revision, `${key}=${name}${i}`);
        } catch (err) {
          failures.push(`${key}: ${(err as Error).message}`);
        }
      }
    };
    // Several puts in flight on the victim's connection when it dies.
    const writers = [
      ...Array.from({ length: 8 }, (_v, w) => writer(onVictim, `v${w}`)),
      writer(elsewhere, 'o'),
    ];
    const t0 = Date.now();
    while (Date.now() - t0 < 10_000 && acked.size < 300) await sleep(20);
    await c.kill(victim, 'SIGKILL');
    const killedAtAcks = acked.size;
    const t1 = Date.now();
    while (Date.now() - t1 < 20_000 && acked.size < killedAtAcks + 300) await sleep(20);
    stop = true;
    await Promise.all(writers);
    t.same(failures, [], 'every put succeeded across the kill');
    t.ok(onVictim.retries >= 1, `puts in flight on the killed member were retried (${onVictim.retries})`);
    t.ok(acked.size >= killedAtAcks + 300, `writes went on after the kill (${killedAtAcks} before, ${acked.size} in all)`);

    const last = Math.max(...acked.keys());
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && watch.lastRevision < last) await sleep(50);
    const revs = got.map((d) => d.revision);
    t.equal(watch.lastRevision, last, 'the watch caught up');
    t.ok(revs.every((r, i) => r === from + i), `revisions ${from}..${revs[revs.length - 1]}: each once, in order, no gap`);
    const seen = new Map(got.map((d) => [d.revision, d.events.map((e) => `${e.kv.key.toString()}=${e.kv.value.toString()}`).join(',')]));
    const wrong = [...acked].filter(([rev, kv]) => seen.get(rev) !== kv);
    t.same(wrong.slice(0, 5), [], 'every acknowledged put was delivered at its revision');

    // A put applied twice would have made version 2 (each key is put once) and a revision nobody was told.
    const all = await elsewhere.get('e2e/', { prefix: true });
    const twice = all.kvs.filter((kv) => kv.version !== 1).map((kv) => kv.key.toString());
    t.same(twice, [], 'no put applied twice');
    t.equal(revs.length, acked.size, 'no revision beyond the acknowledged puts');
    await watch.cancel();
  });
});
