// A member restarts from its newest snapshot plus the WAL after it: keys written before and after the
// snapshot are all there, and the compacted log stays compacted.

import t from 'tap';
import { ProcCluster, putMany } from './fixtures/proc-cluster';

t.test('restart after local snapshots: snapshot + WAL replay give back every key', async (t) => {
  const c = await ProcCluster.start(1, { snapshotCount: 500, snapshotCatchupEntries: 100 });
  t.teardown(async () => {
    await c.stopAll();
    c.cleanup();
  });
  await c.waitForLeader(15_000);
  await putMany(c.client(), 'rs/', 2300, 16);
  const before = await c.status(0);
  t.ok((before?.snapshotIndex ?? 0) >= 2000, `snapshot taken at ${before?.snapshotIndex}`);
  t.ok((before?.firstIndex ?? 0) > 1000, `log compacted: first index ${before?.firstIndex}`);

  await c.kill(0, 'SIGKILL');
  c.startMember(0);
  await c.waitForLeader(15_000);
  const after = await c.status(0);
  t.ok((after?.raftAppliedIndex ?? 0) >= (before?.raftAppliedIndex ?? 0), 'applied index restored');
  t.equal(after?.snapshotIndex, before?.snapshotIndex, 'the same newest snapshot');
  t.equal(after?.firstIndex, before?.firstIndex, 'and the same retained tail of the log in memory');
  const got = await c.client().get('rs/', { prefix: true });
  t.equal(got.count, 2300, 'all 2300 keys after the restart');
  t.equal(got.kvs[2299]?.value.toString(), 'v2299', 'the last key written after the snapshot');
  t.equal(got.kvs[0]?.version, 1, 'each key written once: no entry applied twice');
  await c.client().put('rs/after', 'x');
  t.equal((await c.client().get('rs/after')).count, 1, 'and it takes new writes');
});
