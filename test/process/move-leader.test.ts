// Leadership transfer on real processes: `keel move-leader ID` under a steady write load moves leadership to
// the named member with a short pause in writes, and a leader stopped with SIGTERM hands over before it
// exits, so the cluster has a new leader well before an election timeout.

import t from 'tap';
import { KeelClient } from '../../src/client/stream-client';
import { keel } from '../cli/fixtures/helpers';
import { ProcCluster, sleep } from './fixtures/proc-cluster';

const ELECTION_MS = 1000;

t.test('move-leader and hand-over on SIGTERM', async (t) => {
  const c = await ProcCluster.start(3, { electionTimeoutMs: ELECTION_MS });
  const client = new KeelClient({ endpoints: c.endpoints, requestTimeoutMs: 15_000 });
  t.teardown(async () => {
    await client.close();
    await c.stopAll();
    c.cleanup();
  });
  const leader = await c.waitForLeader(15_000);
  const target = (leader + 1) % 3;
  const targetId = (await c.status(target))?.header.memberId ?? '';
  t.not(targetId, '', 'target id known');

  // A steady load: the longest gap between two acknowledged writes is the unavailability.
  let stop = false;
  let lastAck = Date.now();
  let maxGap = 0;
  let writes = 0;
  const load = (async () => {
    while (!stop) {
      await client.put('ml/k', String(writes));
      const now = Date.now();
      maxGap = Math.max(maxGap, now - lastAck);
      lastAck = now;
      writes++;
    }
  })();
  await sleep(500);
  maxGap = 0;
  const r = await keel(['move-leader', targetId, '--endpoints', c.endpoints.join(',')]);
  t.equal(r.code, 0, `move-leader succeeded: ${r.stderr}`);
  t.match(r.stdout, /^Leadership transferred from [0-9a-f]+ to [0-9a-f]+\n$/);
  t.equal(await c.waitForLeader(5000), target, 'the named member leads');
  await sleep(500);
  stop = true;
  await load;
  t.ok(maxGap < ELECTION_MS, `writes paused at most ${maxGap} ms during the transfer (< one election timeout)`);
  t.ok(writes > 20, `${writes} writes acknowledged meanwhile`);

  const bad = await keel(['move-leader', 'ffff', '--endpoints', c.endpoints.join(',')]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /bad leader transferee/, 'an unknown member is refused with etcd\'s message');

  // SIGTERM to the leader: it hands over, then exits; a new leader is agreed quickly.
  const before = Date.now();
  await c.kill(target, 'SIGTERM');
  const next = await c.waitForLeader(10_000, [target]);
  const took = Date.now() - before;
  t.not(next, target);
  t.ok(took < ELECTION_MS + 500, `new leader ${took} ms after SIGTERM to the old one (an election would take >= ${ELECTION_MS} ms)`);
  t.match(c.logOf(target), /leadership handed over before stopping/);
});
