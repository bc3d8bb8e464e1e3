// A member whose disk fills up (simulated: its WAL or backend writes fail with ENOSPC): it stops serving and
// reopens its storage until it can write again, a NOSPACE alarm is raised cluster-wide and writes are
// refused with etcd's error, nothing acknowledged is lost, and once space is back and the alarm is disarmed
// the cluster takes writes again. Also etcd's quota: a backend above --quota-backend-bytes raises NOSPACE.

import t from 'tap';
import { KeelClient } from '../../src/client/stream-client';
import { KeelHttpClient } from '../../src/client/http-client';
import { Errors } from '../../src/kv/api';
import { sleep } from '../process/fixtures/proc-cluster';
import { startInProcessCluster } from './fixtures/in-process-cluster';
import { startOneMember } from './fixtures/one-member';

function enospc(): Error {
  const e = new Error('ENOSPC: no space left on device, write') as NodeJS.ErrnoException;
  e.code = 'ENOSPC';
  return e;
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms`);
}

for (const where of ['wal', 'backend'] as const) {
  t.test(`the leader's ${where} runs out of space`, async (t) => {
    const full = [false, false, false];
    const c = await startInProcessCluster(3, (i) => ({
      faults: { [where]: () => (full[i] ? enospc() : undefined) },
    }));
    const client = new KeelClient({ endpoints: c.endpoints, requestTimeoutMs: 15_000 });
    const http = new KeelHttpClient({ endpoints: c.endpoints, requestTimeoutMs: 5000 });
    t.teardown(async () => {
      await client.close();
      await c.stop();
    });
    const leaderIndex = async (): Promise<number> => {
      for (let i = 0; i < 3; i++) {
        const s = await http.status(c.endpoints[i]).catch(() => undefined);
        if (s && s.leader !== '' && s.leader === s.header.memberId) return i;
      }
      return -1;
    };
    await until('a leader', async () => (await leaderIndex()) >= 0, 10_000);
    const acked: string[] = [];
    for (let k = 0; k < 50; k++) {
      await client.put(`d/${k}`, 'v');
      acked.push(`d/${k}`);
    }
    const victim = await leaderIndex();
    full[victim] = true;

    // Writes keep going until the alarm is raised; then they are refused with etcd's error.
    let refused: Error | undefined;
    for (let k = 50; k < 2000 && refused === undefined; k++) {
      try {
        await client.put(`d/${k}`, 'v');
        acked.push(`d/${k}`);
      } catch (err) {
        refused = err as Error;
      }
    }
    t.equal(refused?.message, Errors.noSpace().message, 'writes are refused once NOSPACE is raised');
    const alarms = await http.alarm({ action: 'GET' });
    t.same(alarms.alarms, [{ memberId: c.members[victim].memberId, alarm: 'NOSPACE' }], 'the alarm names the member');
    const h = await http.health(c.endpoints[(victim + 1) % 3]);
    t.same([h.health, h.reason], [false, 'ALARM NOSPACE'], '/health says so on every member');
    await t.rejects(http.health(c.endpoints[victim]).then((x) => (x.health ? 'healthy' : Promise.reject(new Error(x.reason)))));
    t.ok(await client.get('d/0').then((r) => r.count === 1), 'reads still work');
    await client.delete('d/0'); // deletes too: they free space
    acked.shift();

    // Space is back: the member writes again, catches up; the operator disarms; writes work.
    full[victim] = false;
    await until(
      'the full member recovered',
      async () => (await http.health(c.endpoints[victim])).reason === 'ALARM NOSPACE' && (await http.status(c.endpoints[victim])).errors.every((e) => !e.startsWith('disk write failed')),
      20_000,
    );
    const disarmed = await http.alarm({ action: 'DEACTIVATE', memberId: c.members[victim].memberId, alarm: 'NOSPACE' });
    t.equal(disarmed.alarms.length, 1, 'disarmed');
    await until('healthy again', async () => (await http.health(c.endpoints[victim])).health, 10_000);
    await client.put('d/after', 'v');
    acked.push('d/after');

    // Nothing acknowledged was lost, on any member, the full one included.
    const last = (await http.status(c.endpoints[(victim + 1) % 3])).raftAppliedIndex;
    for (let i = 0; i < 3; i++) {
      await until(`member ${i} caught up`, async () => (await http.status(c.endpoints[i])).raftAppliedIndex >= last, 10_000);
      const one = new KeelHttpClient({ endpoints: [c.endpoints[i]], requestTimeoutMs: 5000 });
      const r = await one.get('d/', { prefix: true, keysOnly: true, serializable: true });
      const have = new Set(r.kvs.map((kv) => kv.key.toString()));
      t.same(acked.filter((k) => !have.has(k)), [], `member ${i} has all ${acked.length} acknowledged keys`);
    }
  });
}

t.test('a backend above --quota-backend-bytes raises NOSPACE', async (t) => {
  const m = await startOneMember({ quotaBackendBytes: 64 * 1024 });
  const http = new KeelHttpClient({ endpoints: [m.clientUrl], requestTimeoutMs: 5000 });
  t.teardown(() => m.stop());
  await until('a leader', async () => (await http.health(m.clientUrl)).health, 10_000);
  const big = 'x'.repeat(16 * 1024);
  let refused: Error | undefined;
  for (let k = 0; k < 500 && refused === undefined; k++) {
    try {
      await http.put(`q/${k}`, big);
    } catch (err) {
      refused = err as Error;
    }
    if (k % 20 === 0) await sleep(1100); // the member measures its backend once a second
  }
  t.equal(refused?.message, Errors.noSpace().message, 'refused with etcd\'s message');
  await until('the alarm', async () => (await http.alarm({ action: 'GET' })).alarms.length === 1, 5000);
  await t.rejects(http.leaseGrant(60), { message: Errors.noSpace().message }, 'lease grants too');
  const del = await http.delete('q/', { prefix: true });
  t.ok(del.deleted > 0, 'deletes are allowed');
});
