// Leases across failover, on real processes. A lease kept alive survives three leader changes (its key stays);
// an abandoned lease, even with a leader change right after its grant, is revoked within TTL + one election
// timeout (+ the leader's 500 ms expiry check and the time to notice the dead leader).

import t from 'tap';
import { KeelClient } from '../../src/client/stream-client';
import { ProcCluster, sleep } from './fixtures/proc-cluster';

const ELECTION_MS = 1000;

t.test('a kept-alive lease survives three leader changes; an abandoned one expires in time', async (t) => {
  const c = await ProcCluster.start(3, { electionTimeoutMs: ELECTION_MS });
  const clients: KeelClient[] = [];
  t.teardown(async () => {
    for (const cl of clients) await cl.close().catch(() => undefined);
    await c.stopAll();
    c.cleanup();
  });
  let leader = await c.waitForLeader(15_000);
  const client = new KeelClient({ endpoints: c.endpoints, requestTimeoutMs: 15_000 });
  clients.push(client);

  const kept = await client.leaseGrant(4);
  t.equal(kept.ttl, 4);
  await client.put('l/kept', 'alive', { lease: kept.id });
  let keepAliveErrors = 0;
  let stop = false;
  // The holder's loop: a keep-alive every TTL/4, across the failovers (the client fails over by itself).
  const loop = (async () => {
    while (!stop) {
      try {
        const r = await client.leaseKeepAliveOnce(kept.id);
        if (r.ttl === 0) throw new Error('lease lost');
      } catch (err) {
        keepAliveErrors++;
        if ((err as Error).message === 'lease lost') throw err;
      }
      await sleep(1000);
    }
  })();

  for (let round = 0; round < 3; round++) {
    await c.kill(leader, 'SIGKILL');
    const next = await c.waitForLeader(15_000, [leader]);
    c.startMember(leader);
    leader = next;
    // Longer than the TTL between two leader changes: only keep-alives can keep the lease.
    await sleep(4500);
    const r = await client.get('l/kept');
    t.equal(r.count, 1, `after leader change ${round + 1}, the kept-alive lease's key is still there`);
  }
  stop = true;
  await loop;
  t.ok(keepAliveErrors <= 6, `keep-alives failed ${keepAliveErrors} times around the failovers`);
  const ttl = await client.leaseTimeToLive(kept.id, { keys: true });
  t.ok(ttl.ttl > 0, `lease still alive, ${ttl.ttl} s left`);
  t.same(ttl.keys.map((k) => k.toString()), ['l/kept']);

  // The abandoned lease: granted, a key attached, never kept alive; its leader is killed at once.
  await c.waitForLeader(15_000);
  const abandoned = await client.leaseGrant(3);
  const grantedAt = Date.now();
  await client.put('l/abandoned', 'x', { lease: abandoned.id });
  await c.kill(leader, 'SIGKILL');
  let goneAt = 0;
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      const r = await client.get('l/abandoned');
      if (r.count === 0) {
        goneAt = Date.now();
        break;
      }
    } catch {
      // no leader yet: keep polling
    }
    await sleep(100);
  }
  t.ok(goneAt > 0, 'the abandoned lease was revoked');
  const after = goneAt - grantedAt;
  // TTL + one election timeout, plus what a leader change costs to notice (one more election timeout at most
  // with pre-vote) and the 500 ms expiry check.
  const bound = 3000 + ELECTION_MS + ELECTION_MS + 500 + 1000;
  t.ok(after <= bound, `abandoned lease's key gone ${after} ms after the grant (bound ${bound} ms)`);
  t.ok(after >= 3000, `not before its TTL (${after} ms)`);
  const gone = await client.leaseTimeToLive(abandoned.id);
  t.equal(gone.ttl, -1, 'time-to-live of a revoked lease is -1');
});
