// A 3-member cluster of real processes: 1000 acknowledged puts, SIGKILL of the leader, a new leader within
// 3 s, every acknowledged key read back, and the killed member, restarted, catches up.

import t from 'tap';
import { ProcCluster, putMany } from './fixtures/proc-cluster';

t.test('leader killed with SIGKILL: no acknowledged write lost, killed member catches up', async (t) => {
  const c = await ProcCluster.start(3);
  t.teardown(async () => {
    await c.stopAll();
    c.cleanup();
  });
  const leader = await c.waitForLeader(15_000);
  const client = c.client();

  const acked = await putMany(client, 'fo/', 1000, 16);
  t.equal(acked, 1000, 'all 1000 puts acknowledged');

  await c.kill(leader, 'SIGKILL');
  const killedAt = Date.now();
  // A put sent at once to a follower, which still believes in the dead leader: it must wait for the new
  // leader rather than vanish into the dead leader's stream.
  const followers = c.members.map((m) => m.clientUrl).filter((_u, i) => i !== leader);
  const during = c.client(followers, 10_000).put('fo/during', 'x').then(
    () => undefined,
    (err: Error) => err.message,
  );
  const newLeader = await c.waitForLeader(10_000, [leader]);
  const electionMs = Date.now() - killedAt;
  t.equal(await during, undefined, 'the put sent right after the kill succeeded');
  const duringMs = Date.now() - killedAt;
  t.ok(duringMs < 5000, `a put sent right after the kill was acknowledged after ${duringMs} ms`);
  t.not(newLeader, leader, 'another member leads');
  t.ok(electionMs < 3000, `new leader elected in ${electionMs} ms (< 3000)`);

  const live = c.members.map((m) => m.clientUrl).filter((_u, i) => i !== leader);
  const reader = c.client(live);
  const all = await reader.get('fo/', { prefix: true });
  t.equal(all.count, 1001, 'linearizable read after failover sees all 1000 keys and the one put during it');
  const missing = [];
  const byKey = new Map(all.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]));
  for (let i = 0; i < 1000; i++) {
    const k = `fo/${String(i).padStart(6, '0')}`;
    if (byKey.get(k) !== `v${i}`) missing.push(k);
  }
  t.same(missing, [], 'every acknowledged key holds its value');

  // More writes while the old leader is down, then bring it back.
  await putMany(reader, 'fo2/', 200, 8);
  const target = (await c.status(newLeader))?.raftAppliedIndex ?? 0;
  c.startMember(leader);
  const st = await c.waitForApplied(leader, target, 20_000);
  t.ok(st.raftAppliedIndex >= target, `restarted member applied ${st.raftAppliedIndex} >= ${target}`);
  const local = await c.client([c.members[leader].clientUrl]).get('fo', { prefix: true, serializable: true, countOnly: true });
  t.equal(local.count, 1201, 'restarted member serves all 1201 keys from its own state');
});
