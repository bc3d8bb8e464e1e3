// Watch guarantees across a SIGKILL of the leader, on real processes: three watchers (one on the leader)
// follow a prefix while a writer puts, deletes and runs two-key txns; the leader is killed mid-way. Every
// watcher must see every revision of the run exactly once, in order, each revision's events together
// (a txn's two puts in one delivery), with the values the writer was acknowledged for.

import t from 'tap';
import type { Event } from '../../src/kv/api';
import { KeelClient } from '../../src/client/stream-client';
import type { ClientWatch } from '../../src/client/kv-client';
import { ProcCluster, sleep } from './fixtures/proc-cluster';

interface Delivery {
  revision: number;
  events: Event[];
}

t.test('watchers see an ordered, gap-free, duplicate-free, atomic history across a leader kill', async (t) => {
  const c = await ProcCluster.start(3);
  const clients: KeelClient[] = [];
  t.teardown(async () => {
    for (const cl of clients) await cl.close().catch(() => undefined);
    await c.stopAll();
    c.cleanup();
  });
  const leader = await c.waitForLeader(15_000);
  const writer = new KeelClient({ endpoints: c.endpoints, requestTimeoutMs: 15_000 });
  clients.push(writer);
  const start = await writer.put('w/start', 'x');
  const fromRev = start.header.revision + 1;

  // Watcher 0 sits on the leader (the member about to be killed); the others on the followers.
  const order = [leader, ...[0, 1, 2].filter((i) => i !== leader)];
  const deliveries: Delivery[][] = [];
  const watches: ClientWatch[] = [];
  for (let w = 0; w < 3; w++) {
    const first = order[w];
    const eps = [c.endpoints[first], ...c.endpoints.filter((_e, i) => i !== first)];
    const cl = new KeelClient({ endpoints: eps, requestTimeoutMs: 15_000 });
    clients.push(cl);
    const got: Delivery[] = [];
    deliveries.push(got);
    const watch = cl.watch('w/', { prefix: true, startRevision: fromRev, prevKv: true }, {
      onEvents: (events, revision) => got.push({ revision, events }),
    });
    watches.push(watch);
    await watch.created;
  }

  // What the writer was told: revision -> expected events (key, type, value).
  const acked = new Map<number, string[]>();
  const describe = (evs: Event[]): string[] =>
    evs.map((e) => `${e.type} ${e.kv.key.toString()} ${e.type === 'PUT' ? e.kv.value.toString() : ''}`);
  let killed = false;
  for (let i = 0; i < 300; i++) {
    if (i === 150) {
      await c.kill(leader, 'SIGKILL');
      killed = true;
    }
    try {
      if (i % 10 === 3) {
        const k1 = `w/t${i}a`;
        const k2 = `w/t${i}b`;
        const r = await writer.txn({
          compare: [],
          success: [
            { type: 'put', put: { key: Buffer.from(k1), value: Buffer.from(`v${i}`) } },
            { type: 'put', put: { key: Buffer.from(k2), value: Buffer.from(`v${i}`) } },
          ],
          failure: [],
        });
        acked.set(r.header.revision, [`PUT ${k1} v${i}`, `PUT ${k2} v${i}`]);
      } else if (i % 10 === 7) {
        const r = await writer.delete(`w/k${(i - 1) % 20}`);
        if (r.deleted > 0) acked.set(r.header.revision, [`DELETE w/k${(i - 1) % 20} `]);
      } else {
        const r = await writer.put(`w/k${i % 20}`, `v${i}`);
        acked.set(r.header.revision, [`PUT w/k${i % 20} v${i}`]);
      }
    } catch (err) {
      // With request ids, the client retries writes through the failover; anything left is a test failure,
      // and the rest of the run is not worth waiting for (each write would wait its whole timeout).
      t.fail(`write ${i} failed: ${(err as Error).message}`);
      break;
    }
  }
  t.ok(killed);
  const last = Math.max(...acked.keys());

  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && watches.some((w) => w.lastRevision < last)) await sleep(50);
  for (let w = 0; w < 3; w++) {
    const got = deliveries[w];
    t.equal(watches[w].lastRevision >= last, true, `watcher ${w} reached revision ${last}`);
    const revs = got.map((d) => d.revision);
    const contiguous = revs.every((r, i) => r === fromRev + i);
    t.ok(contiguous, `watcher ${w}: revisions ${fromRev}..${revs[revs.length - 1]} each once, in order, no gap`);
    let wrong = 0;
    for (const d of got) {
      if (!d.events.every((e) => e.kv.modRevision === d.revision)) wrong++;
      const want = acked.get(d.revision);
      if (want !== undefined && JSON.stringify(describe(d.events)) !== JSON.stringify(want)) wrong++;
    }
    t.equal(wrong, 0, `watcher ${w}: every acknowledged revision delivered whole with the acknowledged events`);
    const missing = [...acked.keys()].filter((r) => !revs.includes(r));
    t.same(missing, [], `watcher ${w}: no acknowledged revision missing`);
  }
  for (const w of watches) await w.cancel();
});
