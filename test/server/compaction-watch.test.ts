// Compaction while watches are active, on a real member: a watch that is following keeps receiving every
// revision without a gap; a watch (or a read) below the compact revision gets etcd's compacted answer with
// the compact revision; history at and above it is still served.

import t from 'tap';
import type { Event } from '../../src/kv/api';
import { KeelClient } from '../../src/client/stream-client';
import { sleep } from '../process/fixtures/proc-cluster';
import { startOneMember } from './fixtures/one-member';

t.test('compaction with active watches', async (t) => {
  const m = await startOneMember();
  const client = new KeelClient({ endpoints: [m.clientUrl], requestTimeoutMs: 10_000 });
  t.teardown(async () => {
    await client.close();
    await m.stop();
  });
  // A leader first (the one member elects itself).
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if ((await client.health(m.clientUrl).catch(() => undefined))?.health) break;
    await sleep(50);
  }
  const first = await client.put('c/a', '0');
  const startRev = first.header.revision;
  const seen: { revision: number; events: Event[] }[] = [];
  const live = client.watch('c/', { prefix: true, startRevision: startRev }, {
    onEvents: (events, revision) => seen.push({ revision, events }),
  });
  await live.created;

  for (let i = 1; i <= 200; i++) {
    await client.put(`c/${String.fromCharCode(97 + (i % 5))}`, String(i));
    if (i === 100) {
      const r = await client.compact(startRev + 50, { physical: true });
      t.ok(r.header.revision >= startRev + 100, 'compaction answered with the current revision');
    }
  }
  const last = startRev + 200;
  const until = Date.now() + 10_000;
  while (Date.now() < until && live.lastRevision < last) await sleep(20);
  const revs = seen.map((s) => s.revision);
  t.same(revs, Array.from({ length: 201 }, (_v, i) => startRev + i), 'the live watch saw every revision once, in order');

  // Reads below the compact revision: etcd's error; at it and above: served.
  await t.rejects(client.get('c/a', { revision: startRev + 10 }), {
    message: 'etcdserver: mvcc: required revision has been compacted',
  });
  const at = await client.get('c/', { prefix: true, revision: startRev + 50 });
  t.ok(at.count >= 1, `a read at the compact revision still works (${at.count} keys)`);

  // A new watch from below the compact revision is canceled with it.
  const old = client.watch('c/', { prefix: true, startRevision: startRev + 1 }, { onEvents: () => undefined });
  const ended = await Promise.race([old.done, sleep(10_000).then(() => 'timeout' as const)]);
  t.not(ended, 'timeout', 'the watch from a compacted revision ended');
  t.not(ended, undefined, 'with an error');
  if (ended !== 'timeout' && ended !== undefined) {
    t.equal(ended.compactRevision, startRev + 50, 'carrying the compact revision');
    t.match(ended.message, /required revision has been compacted/);
  }

  // A watch from exactly the compact revision works and replays history from there.
  const replay: number[] = [];
  const fromCompact = client.watch('c/', { prefix: true, startRevision: startRev + 50 }, {
    onEvents: (_e, revision) => replay.push(revision),
  });
  const until2 = Date.now() + 10_000;
  while (Date.now() < until2 && fromCompact.lastRevision < last) await sleep(20);
  t.same(replay, Array.from({ length: 151 }, (_v, i) => startRev + 50 + i), 'replay from the compact revision');
  await fromCompact.cancel();
  await live.cancel();
});
