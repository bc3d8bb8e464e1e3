// A member stopped during 25,000 puts comes back and catches up through a snapshot, because the leader has
// compacted its log past what the member holds (first retained index past 10,000, with etcd's defaults:
// a snapshot every 10,000 entries, 5,000 kept behind it).

import t from 'tap';
import { ProcCluster, putMany, sleep } from './fixtures/proc-cluster';

t.test('a stopped member catches up through a snapshot', async (t) => {
  const c = await ProcCluster.start(3);
  t.teardown(async () => {
    await c.stopAll();
    c.cleanup();
  });
  const leader = await c.waitForLeader(15_000);
  const lagger = (leader + 1) % 3;
  const live = [0, 1, 2].filter((i) => i !== lagger).map((i) => c.members[i].clientUrl);
  const client = c.client(live);

  await putMany(client, 'sc/', 1000, 32);
  await c.kill(lagger, 'SIGKILL');
  await putMany(client, 'sc/', 24_000, 64, { start: 1000 });

  const ls = await c.status(leader);
  t.ok(ls, 'leader status');
  t.ok((ls?.firstIndex ?? 0) > 10_000, `leader's first retained log index ${ls?.firstIndex} is past 10,000`);
  t.ok((ls?.snapshotIndex ?? 0) >= 20_000, `leader snapshot index ${ls?.snapshotIndex}`);

  c.startMember(lagger);
  const target = ls?.raftAppliedIndex ?? 0;
  const st = await c.waitForApplied(lagger, target, 60_000);
  t.ok(st.snapshotIndex >= 20_000, `the restarted member installed a snapshot (snapshot index ${st.snapshotIndex})`);
  t.match(c.logOf(lagger), /installed snapshot from the leader/, 'its log says it installed a snapshot');
  // Its own state, read locally, holds every key.
  let count = 0;
  for (let i = 0; i < 50 && count !== 25_000; i++) {
    count = (await c.client([c.members[lagger].clientUrl]).get('sc/', { prefix: true, countOnly: true, serializable: true })).count;
    if (count !== 25_000) await sleep(100);
  }
  t.equal(count, 25_000, 'the caught-up member serves all 25,000 keys from its own state');
  const sample = await c.client([c.members[lagger].clientUrl]).get('sc/024999', { serializable: true });
  t.equal(sample.kvs[0]?.value.toString(), 'v24999', 'with the right values');

  // Restarted again, the member comes back from the snapshot it received (the WAL marker voids its old log).
  await c.kill(lagger, 'SIGKILL');
  c.startMember(lagger);
  await c.waitForApplied(lagger, target, 30_000);
  const again = await c.client([c.members[lagger].clientUrl]).get('sc/', { prefix: true, countOnly: true, serializable: true });
  t.equal(again.count, 25_000, 'after another SIGKILL and restart it still serves all 25,000 keys');
});
