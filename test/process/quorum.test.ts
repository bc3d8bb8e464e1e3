// A 5-member cluster of real processes serves writes with 2 members killed, and acknowledges none with 3
// killed: the client gets etcd's clear timeout error, as an "outcome unknown" error, instead of a false success.

import t from 'tap';
import { OutcomeUnknownError } from '../../src/client/kv-client';
import { KvError } from '../../src/kv/api';
import { ProcCluster } from './fixtures/proc-cluster';

t.test('5 members: writes with 2 down, none acknowledged with 3 down', async (t) => {
  const c = await ProcCluster.start(5);
  t.teardown(async () => {
    await c.stopAll();
    c.cleanup();
  });
  const leader = await c.waitForLeader(15_000);
  await c.client().put('q/before', 'x');

  // Kill the leader and one follower: 3 of 5 remain, a quorum.
  const follower = (leader + 1) % 5;
  await c.kill(leader);
  await c.kill(follower);
  const down = [leader, follower];
  await c.waitForLeader(10_000, down);
  const live = c.members.map((_m, i) => i).filter((i) => !down.includes(i));
  const client = c.client(live.map((i) => c.members[i].clientUrl));
  for (let i = 0; i < 20; i++) await client.put(`q/k${i}`, `v${i}`);
  const got = await client.get('q/', { prefix: true, countOnly: true });
  t.equal(got.count, 21, 'writes acknowledged and readable with 2 of 5 members down');

  // A third member down: 2 of 5, no quorum.
  await c.kill(live[0]);
  const rest = live.slice(1);
  const minority = c.client(rest.map((i) => c.members[i].clientUrl), 15_000);
  const started = Date.now();
  let error: unknown;
  try {
    await minority.put('q/lost', 'never');
  } catch (err) {
    error = err;
  }
  const took = Date.now() - started;
  // A timed-out write may still be applied later: the client says so (OutcomeUnknownError) rather than
  // calling it failed; "no leader" before the request went anywhere is a plain KvError.
  t.ok(
    error instanceof OutcomeUnknownError || error instanceof KvError,
    `the put failed (${String(error)}) after ${took} ms`,
  );
  t.match((error as Error).message, /etcdserver: (request timed out|no leader)/, 'with etcd\'s timeout or no-leader message');
  t.ok(took < 15_000, 'within a bounded time');

  // Bring one member back: a quorum again, and writes flow. (The timed-out put is indeterminate, as in
  // Jepsen: a leader may still hold it and commit it now, so nothing is asserted about it.)
  c.startMember(live[0]);
  await c.waitForLeader(15_000, down);
  const again = c.client([c.members[live[0]].clientUrl, ...rest.map((i) => c.members[i].clientUrl)]);
  await again.put('q/after', 'y');
  t.equal((await again.get('q/after')).kvs[0]?.value.toString(), 'y', 'writes succeed once a quorum is back');
});
