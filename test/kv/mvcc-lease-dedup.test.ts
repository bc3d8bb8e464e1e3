// The replicated lease table (grant, revoke deleting the attached keys at one revision, keep-alive,
// checkpoint) and request deduplication (a retried write applies once; expiry by log index, the same
// however the entries are batched).

import path from 'node:path';
import t from 'tap';
import { MAX_LEASE_TTL } from '../../src/kv/api';
import { MvccStore, decodeSnapshotData } from '../../src/kv/mvcc/mvcc-store';
import type { Command, CommandResult } from '../../src/kv/state-machine';
import { Log, ZERO, del, errorOf, get, openStore, opGet, opPut, put, run, tempDir, txn } from './fixtures/mvcc';

const grant = (id: number, ttl = 60): Command => ({ op: 'leaseGrant', id, ttl });
const revoke = (id: number): Command => ({ op: 'leaseRevoke', id });

t.test('lease grant, keep-alive and checkpoint', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const out = await s.apply([log.entry(grant(7, 30)), log.entry(grant(7, 50)), log.entry(grant(8, MAX_LEASE_TTL + 1))]);
  t.same(out.results.get(1)?.result, { op: 'leaseGrant', revision: 1, id: 7, ttl: 30 });
  t.equal(errorOf(out.results.get(2)?.result as CommandResult), 'etcdserver: lease already exists');
  t.equal(errorOf(out.results.get(3)?.result as CommandResult), 'etcdserver: too large lease TTL');
  t.same(out.leases, { upserted: [{ id: 7, ttl: 30, remainingTtl: 30 }], removed: [] });
  t.equal(s.revision(), 1, 'leases make no revision');

  const cp = await s.apply([log.entry({ op: 'leaseCheckpoint', checkpoints: [{ id: 7, remainingTtl: 12 }, { id: 99, remainingTtl: 5 }] })]);
  t.same(cp.leases.upserted, [{ id: 7, ttl: 30, remainingTtl: 12 }], 'unknown ids are ignored');
  t.same(s.leases(), [{ id: 7, ttl: 30, remainingTtl: 12 }]);
  t.same(await run(s, log, { op: 'leaseKeepAlive', id: 7 }), { op: 'leaseKeepAlive', revision: 1, id: 7, ttl: 30 });
  t.same(s.leases(), [{ id: 7, ttl: 30, remainingTtl: 30 }], 'a keep-alive resets the remaining TTL');
  t.same(await run(s, log, { op: 'leaseKeepAlive', id: 9 }), { op: 'leaseKeepAlive', revision: 1, id: 9, ttl: 0 });
});

t.test('keys follow their lease; a revoke deletes them at one revision', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await s.apply([log.entry(grant(1)), log.entry(grant(2)), log.entry(grant(3))]);
  await s.apply([
    log.entry(put('k3', 'v', { lease: 1 })),
    log.entry(put('k1', 'v', { lease: 1 })),
    log.entry(put('k2', 'v', { lease: 1 })),
    log.entry(put('k2', 'v')), // detached: a put without a lease
    log.entry(put('k4', 'v', { lease: 2 })),
    log.entry(put('k4', 'v', { lease: 1 })), // moved from lease 2 to lease 1
    log.entry(txn([], [opPut('k5', 'v', { lease: 1 }), opGet('k5')])),
  ]);
  t.same((await s.leaseKeys(1)).map(String), ['k1', 'k3', 'k4', 'k5']);
  t.same(await s.leaseKeys(2), []);
  const rev = s.revision();

  const out = await s.apply([log.entry(revoke(1))]);
  t.same(out.results.get(log.index)?.result, { op: 'leaseRevoke', revision: rev + 1 });
  t.same(
    out.changes.map((c) => [c.revision, c.events.map((e) => `${e.type} ${e.kv.key} ${e.kv.modRevision}`)]),
    [[rev + 1, ['DELETE k1 ' + (rev + 1), 'DELETE k3 ' + (rev + 1), 'DELETE k4 ' + (rev + 1), 'DELETE k5 ' + (rev + 1)]]],
  );
  t.ok(out.changes[0].events.every((e) => e.prevKv?.lease === 1), 'prevKv carries the lease');
  t.same(out.leases, { upserted: [], removed: [1] });
  t.same(s.leases().map((l) => l.id), [2, 3]);
  t.same((await get(s, 'k', { rangeEnd: ZERO })).kvs.map((kv) => kv.key), ['k2']);
  t.same(await s.leaseKeys(1), []);

  t.equal(errorOf(await run(s, log, revoke(1))), 'etcdserver: requested lease not found');
  t.same(await run(s, log, revoke(3)), { op: 'leaseRevoke', revision: rev + 1 }, 'no keys: no revision');
  // A deleted key leaves its lease.
  await s.apply([log.entry(put('x', 'v', { lease: 2 })), log.entry(del('x'))]);
  t.same(await s.leaseKeys(2), []);
});

t.test('a retried request applies once and gets the first result', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const id = { client: 'c0ffee0000000001', seq: 1 };
  const first = await run(s, log, put('k', 'v1', { prevKv: true }), id);
  t.same(first, { op: 'put', revision: 2 });
  await run(s, log, put('k', 'other'));
  const again = await s.apply([log.entry(put('k', 'v1', { prevKv: true }), id)]);
  t.same(again.results.get(log.index)?.result, first, 'the stored result');
  t.same(again.changes, [], 'no events');
  t.equal(s.revision(), 3, 'no revision');
  t.same((await get(s, 'k')).kvs.map((kv) => kv.value), ['other']);

  // Twice in one apply() call, and a txn (with a range in it).
  const tid = { client: 'c0ffee0000000001', seq: 2 };
  const tx = txn([], [opPut('t', '1'), opGet('k')]);
  const both = await s.apply([log.entry(tx, tid), log.entry(tx, tid)]);
  t.same(both.results.get(log.index)?.result, both.results.get(log.index - 1)?.result);
  t.equal(both.changes.length, 1);
  t.equal(s.revision(), 4);

  // A refusal is a result too: the retry gets it even though the lease exists by then.
  const eid = { client: 'c0ffee0000000001', seq: 3 };
  t.equal(errorOf(await run(s, log, put('l', 'v', { lease: 5 }), eid)), 'etcdserver: requested lease not found');
  await run(s, log, grant(5));
  t.equal(errorOf(await run(s, log, put('l', 'v', { lease: 5 }), eid)), 'etcdserver: requested lease not found');
  t.equal((await get(s, 'l')).count, 0);

  // Another client with the same seq is another request; lease commands are not deduplicated.
  t.same(await run(s, log, put('k', 'v9'), { client: 'c0ffee0000000002', seq: 1 }), { op: 'put', revision: 5 });
  t.same(await run(s, log, { op: 'leaseKeepAlive', id: 5 }, id), { op: 'leaseKeepAlive', revision: 5, id: 5, ttl: 60 });

  // Records survive a snapshot and restore.
  const copy = await openStore(t);
  await copy.restore({ meta: { index: log.index, term: 1, voters: [] }, data: await s.snapshot() });
  const replay = new Log(log.index);
  t.same(await run(copy, replay, put('k', 'v1', { prevKv: true }), id), first);
  t.equal(decodeSnapshotData(await copy.snapshot()).dedupRecords, 4, 'client 1: seq 1, 2, 3; client 2: seq 1');
});

t.test('records expire by log index: an older retry is refused, a forgotten client starts afresh', async (t) => {
  const dir = path.join(await tempDir(t), 'db');
  const s1 = await MvccStore.open(dir, undefined, { dedupWindowEntries: 5 });
  const log = new Log();
  const A = 'aaaaaaaaaaaaaaaa';
  const expired = 'etcdserver: request id is older than the deduplication window; its outcome is unknown';
  const first = await run(s1, log, put('a', '1'), { client: A, seq: 1 }); // entry 1
  await s1.apply([log.entry(put('x', '1')), log.entry(put('x', '2'))]); // entries 2, 3
  const second = await run(s1, log, put('a', '2'), { client: A, seq: 2 }); // entry 4
  await run(s1, log, put('x', '3')); // entry 5
  // Entry 6 drops the record of entry 1 (6 - 5); the client still has seq 2's, so seq 1 is known to be old.
  const rev = s1.revision();
  t.equal(errorOf(await run(s1, log, put('a', '1'), { client: A, seq: 1 })), expired);
  t.equal(s1.revision(), rev, 'not applied again');
  t.same(await run(s1, log, put('a', '2'), { client: A, seq: 2 }), second, 'entry 7: seq 2 is still there');
  t.notSame(first, second);
  await s1.close();

  const s2 = await openStore(t, dir, { dedupWindowEntries: 5 });
  t.equal(errorOf(await run(s2, log, put('a', '1'), { client: A, seq: 1 })), expired, 'entry 8, after a restart');
  // Entry 9 drops seq 2's record, the client's last: the client is forgotten (documented: the window must
  // outlast any client's retries), and an old retry from it would be applied as new.
  await run(s2, log, put('y', '1'));
  t.equal(decodeSnapshotData(await s2.snapshot()).dedupRecords, 0);
  const r = await run(s2, log, put('a', '1'), { client: A, seq: 1 });
  t.same(r, { op: 'put', revision: s2.revision() }, 'applied as new');
});

t.test('what deduplication decides does not depend on how entries are batched', async (t) => {
  const opts = { dedupWindowEntries: 3 };
  const one = await openStore(t, undefined, opts);
  const many = await openStore(t, undefined, opts);
  const log = new Log();
  const entries = [];
  const ids = [1, 2, 1, 3, 2, 4, 1, 5, 3, 6, 6, 2];
  for (const seq of ids) entries.push(log.entry(put(`k${seq}`, `v${entries.length}`), { client: 'batching', seq }));
  entries.push(log.entry(put('z', 'z')));
  const together = await one.apply(entries);
  const separate = [];
  for (const e of entries) separate.push(...(await many.apply([e])).results);
  t.same([...together.results], separate);
  t.same(Buffer.from(await one.snapshot()), Buffer.from(await many.snapshot()), 'the same state, byte for byte');
  const expired = separate.filter(([, r]) => errorOf(r.result)?.includes('deduplication window')).map(([i]) => i);
  // Entry 5 (seq 2): entry 2's record went at entry 5; entry 7 (seq 1): below seq 3, whose record (entry 4)
  // went at entry 7; entry 9 (seq 3) and entry 12 (seq 2): below seq 4 and seq 5, dropped before them.
  t.same(expired, [5, 7, 9, 12]);
});
