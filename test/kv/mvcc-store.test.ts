// The MVCC store's basics: puts, deletes and ranges with etcd's options and errors, the applied index, one
// LevelDB batch per apply() call, malformed entries, persistence, snapshot and restore.

import path from 'node:path';
import t from 'tap';
import { Level } from 'level';
import { Packr } from 'msgpackr';
import { INITIAL_REVISION, MvccStore, decodeSnapshotData } from '../../src/kv/mvcc/mvcc-store';
import type { ApplyOutput } from '../../src/kv/state-machine';
import { EntryType } from '../../src/raft/core/types';
import { Log, ZERO, b, del, errorOf, get, openStore, put, run, seed, show, tempDir } from './fixtures/mvcc';

t.test('put, get and overwrite: versions and revisions', async (t) => {
  const s = await openStore(t);
  t.equal(s.revision(), INITIAL_REVISION);
  t.equal(s.compactRevision(), 0);
  t.equal(s.appliedIndex(), 0);
  t.same(await get(s, 'foo'), { kvs: [], more: false, count: 0, revision: 1 });

  const log = new Log();
  const first = await s.apply([log.entry(put('foo', 'bar'))]);
  t.same([...first.results], [[1, { id: 'm-1', result: { op: 'put', revision: 2 } }]]);
  t.same(await get(s, 'foo'), {
    kvs: [{ key: 'foo', value: 'bar', c: 2, m: 2, v: 1, lease: 0 }],
    more: false,
    count: 1,
    revision: 2,
  });

  await run(s, log, put('other', 'x'));
  t.same(await run(s, log, put('foo', 'baz', { prevKv: true })), {
    op: 'put',
    revision: 4,
    prevKv: { key: b('foo'), value: b('bar'), createRevision: 2, modRevision: 2, version: 1, lease: 0 },
  });
  t.same((await get(s, 'foo')).kvs, [{ key: 'foo', value: 'baz', c: 2, m: 4, v: 2, lease: 0 }]);
  t.same([s.revision(), s.appliedIndex()], [4, 3]);
});

t.test('commands in one apply() call see each other', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const res = await s.apply([
    log.entry(put('k', 'one')),
    log.entry(put('k', 'two', { prevKv: true })),
    log.entry(put('j', 'x')),
    log.entry(del('a', ZERO, true)),
    log.entry(put('k', 'three')),
  ]);
  t.same(res.results.get(2)?.result, {
    op: 'put',
    revision: 3,
    prevKv: { key: b('k'), value: b('one'), createRevision: 2, modRevision: 2, version: 1, lease: 0 },
  });
  const d = res.results.get(4)?.result;
  t.ok(d?.op === 'delete' && d.deleted === 2 && d.revision === 5);
  if (d?.op === 'delete') {
    t.same(show(d.prevKvs), [
      { key: 'j', value: 'x', c: 4, m: 4, v: 1, lease: 0 },
      { key: 'k', value: 'two', c: 2, m: 3, v: 2, lease: 0 },
    ]);
  }
  // Deleted then created again within the call: a new key, version 1.
  t.same((await get(s, 'k')).kvs, [{ key: 'k', value: 'three', c: 6, m: 6, v: 1, lease: 0 }]);
  t.equal((await get(s, 'j')).count, 0);
  t.same(
    res.changes.map((c) => [c.revision, c.events.map((e) => `${e.type} ${e.kv.key}`)]),
    [
      [2, ['PUT k']],
      [3, ['PUT k']],
      [4, ['PUT j']],
      [5, ['DELETE j', 'DELETE k']],
      [6, ['PUT k']],
    ],
  );
  t.same([s.revision(), s.appliedIndex()], [6, 5]);
});

t.test('delete: single key, range, "\\0", inverted range and no match', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await seed(s, log, ['a', 'b', 'c', 'd', 'e']);
  t.equal(s.revision(), 6);

  t.same(await run(s, log, del('zz')), { op: 'delete', revision: 6, deleted: 0, prevKvs: [] }, 'no bump');
  t.same([s.revision(), s.appliedIndex()], [6, 6], 'applied advances even without a change');
  t.same(await run(s, log, del('a')), { op: 'delete', revision: 7, deleted: 1, prevKvs: [] });
  t.same(await run(s, log, del('d', 'b')), { op: 'delete', revision: 7, deleted: 0, prevKvs: [] }, 'inverted');
  const mid = await run(s, log, del('b', 'd', true));
  t.ok(mid.op === 'delete' && mid.deleted === 2 && mid.revision === 8);
  if (mid.op === 'delete') t.same(mid.prevKvs.map((kv) => kv.key.toString()), ['b', 'c']);
  t.same((await get(s, 'a', { rangeEnd: ZERO })).kvs.map((kv) => kv.key), ['d', 'e']);
  await run(s, log, del('e', ZERO));
  t.same((await get(s, 'a', { rangeEnd: ZERO })).kvs.map((kv) => kv.key), ['d']);
  t.equal(s.revision(), 9);
});

t.test('range: prefix, limit/more/count, countOnly, keysOnly, byte order', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await seed(s, log, ['p/3', 'p/1', 'p/2', 'q', 'o', 'p/\xff', 'p0']);
  const prefix = { rangeEnd: b('p0') };

  const all = await get(s, 'p/', prefix);
  t.same(all.kvs.map((kv) => kv.key), ['p/1', 'p/2', 'p/3', 'p/\xff']);
  t.same([all.more, all.count, all.revision], [false, 4, 8]);

  const lim = await get(s, 'p/', { ...prefix, limit: 2 });
  t.same(lim.kvs.map((kv) => kv.key), ['p/1', 'p/2']);
  t.same([lim.more, lim.count], [true, 4]);

  const exact = await get(s, 'p/', { ...prefix, limit: 4 });
  t.same([exact.kvs.length, exact.more, exact.count], [4, false, 4]);

  const co = await get(s, 'p/', { ...prefix, countOnly: true, limit: 1 });
  t.same([co.kvs, co.more, co.count], [[], false, 4]);
  t.same([(await get(s, 'q', { countOnly: true })).count, (await get(s, 'nope', { countOnly: true })).count], [1, 0]);

  t.same((await get(s, 'p/1', { keysOnly: true })).kvs, [{ key: 'p/1', value: '', c: 3, m: 3, v: 1, lease: 0 }]);
  t.same((await get(s, 'p0', { rangeEnd: ZERO })).kvs.map((kv) => kv.key), ['p0', 'q']);
  const everything = await s.range({ key: ZERO, rangeEnd: ZERO, limit: 3 });
  t.same([everything.kvs.length, everything.count, everything.more], [3, 7, true]);
  const inverted = await get(s, 'q', { rangeEnd: b('a') });
  t.same([inverted.kvs, inverted.count], [[], 0]);
  // Byte order, not string order: 0xff sorts after every ASCII byte.
  const bin = await s.range({ key: Buffer.from([0x70, 0x2f, 0xfe]), rangeEnd: Buffer.from([0x70, 0x2f, 0xff, 0x00]) });
  t.same(bin.kvs.map((kv) => kv.key.toString('latin1')), ['p/\xff']);
});

t.test('range: sort, filters and old revisions as etcd does them', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  // c: versions 3, a: 1, b: 2; values chosen so that value order differs from key order.
  await s.apply([
    log.entry(put('c', 'z')),
    log.entry(put('a', 'y')),
    log.entry(put('b', 'x')),
    log.entry(put('c', 'w')),
    log.entry(put('b', 'v')),
    log.entry(put('c', 'u')),
  ]);
  const keys = async (req: Record<string, unknown>) =>
    (await get(s, 'a', { rangeEnd: ZERO, ...req })).kvs.map((kv) => kv.key).join('');
  t.equal(await keys({ sortTarget: 'KEY', sortOrder: 'DESCEND' }), 'cba');
  t.equal(await keys({ sortTarget: 'VERSION', sortOrder: 'DESCEND' }), 'cba');
  t.equal(await keys({ sortTarget: 'VERSION' }), 'abc', 'a target without an order sorts ascending');
  t.equal(await keys({ sortTarget: 'CREATE', sortOrder: 'ASCEND' }), 'cab');
  t.equal(await keys({ sortTarget: 'MOD', sortOrder: 'DESCEND' }), 'cba');
  t.equal(await keys({ sortTarget: 'VALUE', sortOrder: 'ASCEND' }), 'cba');
  t.equal(await keys({ sortOrder: 'DESCEND', limit: 2 }), 'cb', 'sorted before the limit');
  // etcd pushes the limit down when no order is given, then sorts what it fetched (limit + 1 keys).
  t.equal(await keys({ sortTarget: 'VERSION', limit: 1 }), 'a');
  t.equal(await keys({ sortTarget: 'VERSION', sortOrder: 'DESCEND', limit: 1 }), 'c');
  // Filters apply before the limit; count is the range's, before the filters.
  const f = await get(s, 'a', { rangeEnd: ZERO, minModRevision: 5, limit: 1 });
  t.same([f.kvs.map((kv) => kv.key), f.more, f.count], [['b'], true, 3]);
  const g = await get(s, 'a', { rangeEnd: ZERO, maxCreateRevision: 3 });
  t.same(g.kvs.map((kv) => kv.key), ['a', 'c']);

  // Old revisions: the key space as it was, and the header carries the current revision.
  t.same(await get(s, 'a', { rangeEnd: ZERO, revision: 3 }), {
    kvs: [{ key: 'a', value: 'y', c: 3, m: 3, v: 1, lease: 0 }, { key: 'c', value: 'z', c: 2, m: 2, v: 1, lease: 0 }],
    more: false,
    count: 2,
    revision: 7,
  });
  t.same((await get(s, 'c', { revision: 5 })).kvs, [{ key: 'c', value: 'w', c: 2, m: 5, v: 2, lease: 0 }]);
  t.same((await get(s, 'b', { revision: 3 })).kvs, []);
  const limited = await get(s, 'a', { rangeEnd: ZERO, revision: 6, limit: 1 });
  t.same([limited.kvs.map((kv) => kv.key), limited.more, limited.count], [['a'], true, 3]);
  await t.rejects(s.range({ key: b('a'), revision: 8 }), { message: 'etcdserver: mvcc: required revision is a future revision' });
});

t.test('put checks: leases, ignore_value, ignore_lease, empty keys', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  t.equal(errorOf(await run(s, log, put('k', 'v', { lease: 5 }))), 'etcdserver: requested lease not found');
  const ignoreValue = { op: 'put' as const, req: { key: b('k'), value: Buffer.alloc(0), ignoreValue: true } };
  t.equal(errorOf(await run(s, log, ignoreValue)), 'etcdserver: key not found');
  t.equal(s.revision(), 1, 'refusals change nothing');
  await run(s, log, { op: 'leaseGrant', id: 5, ttl: 60 });
  await run(s, log, put('k', 'v', { lease: 5 }));
  t.same(await run(s, log, ignoreValue), { op: 'put', revision: 3 });
  t.same((await get(s, 'k')).kvs, [{ key: 'k', value: 'v', c: 2, m: 3, v: 2, lease: 0 }], 'value kept, lease dropped');
  await run(s, log, put('k', 'v2', { lease: 5 }));
  await run(s, log, { op: 'put', req: { key: b('k'), value: b('v3'), ignoreLease: true } });
  t.same((await get(s, 'k')).kvs, [{ key: 'k', value: 'v3', c: 2, m: 5, v: 4, lease: 5 }], 'lease kept');
  t.equal(
    errorOf(await run(s, log, { op: 'put', req: { key: b('k'), value: b('x'), ignoreValue: true } })),
    'etcdserver: value is provided',
  );
  t.equal(
    errorOf(await run(s, log, { op: 'put', req: { key: b('k'), value: b(''), lease: 5, ignoreLease: true } })),
    'etcdserver: lease is provided',
  );
  t.equal(errorOf(await run(s, log, put('', 'x'))), 'etcdserver: key is not provided');
  t.equal(errorOf(await run(s, log, del(''))), 'etcdserver: key is not provided');
  const refused = await run(s, log, put('k', 'v', { lease: 9 }));
  t.same(refused.revision, 5, 'an error result carries the current revision');
});

t.test('applied index, revision and data persist across close and reopen', async (t) => {
  const dir = path.join(await tempDir(t), 'db');
  const s1 = await MvccStore.open(dir);
  const log = new Log();
  await s1.apply([log.entry(put('a', '1')), log.raw(new Uint8Array(0)), log.entry(put('b', '2'))]);
  await s1.apply([log.entry({ op: 'leaseGrant', id: 3, ttl: 10 }), log.entry(put('a', '3', { lease: 3 }))]);
  await s1.close();
  await s1.close(); // idempotent
  await t.rejects(s1.range({ key: b('a') }), /closed/);
  await t.rejects(s1.apply([log.entry(put('c', '3'))]), /closed/);

  const s2 = await openStore(t, dir);
  t.same([s2.appliedIndex(), s2.revision()], [5, 4]);
  t.same((await get(s2, 'a', { rangeEnd: ZERO })).kvs, [
    { key: 'a', value: '3', c: 2, m: 4, v: 2, lease: 3 },
    { key: 'b', value: '2', c: 3, m: 3, v: 1, lease: 0 },
  ]);
  t.same((await get(s2, 'a', { revision: 2 })).kvs, [{ key: 'a', value: '1', c: 2, m: 2, v: 1, lease: 0 }]);
  t.same(s2.leases(), [{ id: 3, ttl: 10, remainingTtl: 10 }]);
  t.same(await s2.leaseKeys(3), [b('a')]);
});

t.test('one LevelDB batch per apply() call, holding the data and the state record', async (t) => {
  const s = await openStore(t);
  // Spy on the store's LevelDB handle: every write method counts.
  const db = (s as unknown as { db: Record<string, unknown> }).db;
  const writes: string[] = [];
  const ops: { type: string; key: Buffer }[][] = [];
  for (const m of ['put', 'del', 'batch', 'clear']) {
    const orig = db[m] as (...args: unknown[]) => unknown;
    db[m] = (...args: unknown[]) => {
      writes.push(m);
      if (m === 'batch' && Array.isArray(args[0])) ops.push(args[0] as { type: string; key: Buffer }[]);
      return orig.apply(db, args);
    };
  }
  const log = new Log();
  await s.apply([log.entry(put('a', '1')), log.entry(put('b', '2')), log.entry(del('a'))]);
  t.same(writes, ['batch']);
  const keys = ops[0].map((o) => `${o.type} ${o.key[0]}`);
  t.ok(keys.includes('put 0'), 'the state record');
  t.ok(keys.includes('put 1') && keys.includes('del 1'), 'the Latest table');
  t.equal(keys.filter((k) => k === 'put 2').length, 3, 'three History versions');
  t.equal(keys.filter((k) => k === 'put 3').length, 3, 'three events');
  await s.apply([]);
  await s.apply([{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) }]);
  t.same(writes, ['batch'], 'nothing new to apply: nothing written');
  await s.restore({ meta: { index: 3, term: 1, voters: [] }, data: await s.snapshot() });
  t.same(writes, ['batch', 'batch'], 'restore is one batch too');
});

t.test('entries at or below the applied index are skipped; a gap is refused', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const batch = [log.entry(put('a', '1')), log.entry(put('a', '2'))];
  t.equal((await s.apply(batch)).results.size, 2);
  t.equal((await s.apply(batch)).results.size, 0, 'nothing applied the second time');
  t.same((await get(s, 'a')).kvs, [{ key: 'a', value: '2', c: 2, m: 3, v: 2, lease: 0 }]);
  const next = log.entry(put('a', '3'));
  t.same([...(await s.apply([...batch, next])).results.keys()], [3], 'only the new part of a straddling call');
  log.index += 1;
  await t.rejects(s.apply([log.entry(put('z', 'z'))]), /entry 5 cannot follow applied index 3/);
  t.equal(s.appliedIndex(), 3);
  t.equal((await get(s, 'z')).count, 0);
});

t.test('malformed entries, leader no-ops and conf changes only advance the applied index', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const packr = new Packr({ useRecords: false });
  const res = await s.apply([
    log.raw(Buffer.from('definitely not msgpack of a proposal')),
    log.raw(new Uint8Array(0)),
    log.raw(Buffer.from([1, 2, 3]), EntryType.ConfChange),
    log.raw(packr.pack({ id: 'x', cmd: { op: 'put', req: { key: 'str', value: 1 } } })),
    log.raw(packr.pack({ id: 'y', cmd: { op: 'txn', req: { compare: 'no' } } })),
    log.entry(put('ok', 'yes')),
  ]);
  t.same([...res.results.keys()], [6]);
  t.same([s.appliedIndex(), s.revision()], [6, 2]);
  t.equal((await get(s, 'ok')).count, 1);
});

t.test('snapshot and restore', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await seed(s, log, ['a', 'b', 'c', 'd']);
  await s.apply([log.entry(put('b', 'B')), log.entry(del('c')), log.entry({ op: 'leaseGrant', id: 8, ttl: 30 })]);
  await s.apply([log.entry(put('e', 'E', { lease: 8 })), log.entry({ op: 'compact', req: { revision: 4 } })]);
  await s.compacted(4);
  const data = await s.snapshot();
  const summary = decodeSnapshotData(data);
  t.match(summary, { format: 'keel-mvcc/1', applied: 9, revision: 8, compactRevision: 4, keys: 4, leases: 1 });
  t.same(summary.compaction, { done: 4, cursor: { rev: 4, sub: 0 } });

  const fresh = await openStore(t);
  await fresh.restore({ meta: { index: 9, term: 2, voters: ['a'] }, data });
  t.same([fresh.appliedIndex(), fresh.revision(), fresh.compactRevision()], [9, 8, 4]);
  for (const rev of [4, 5, 6, 7, 8]) {
    const all = { rangeEnd: ZERO, revision: rev };
    t.same(await get(fresh, '\0', all), await get(s, '\0', all), `revision ${rev}`);
  }
  t.same(await fresh.events(4, 8, 10), await s.events(4, 8, 10));
  t.same(fresh.leases(), s.leases());
  t.same(await fresh.leaseKeys(8), [b('e')]);

  // Over existing data: everything old goes, and the restored store goes on applying from the snapshot.
  const other = await openStore(t);
  const olog = new Log();
  await seed(other, olog, ['stale', 'a', 'zz', 'y', 'x', 'w', 'v', 'u', 't', 's', 'r']);
  await other.apply([olog.entry({ op: 'leaseGrant', id: 1, ttl: 5 })]);
  await other.restore({ meta: { index: 9, term: 2, voters: ['a'] }, data });
  t.same(await get(other, '\0', { rangeEnd: ZERO }), await get(s, '\0', { rangeEnd: ZERO }));
  t.same(other.leases(), [{ id: 8, ttl: 30, remainingTtl: 30 }]);
  const cont = new Log(9);
  await other.apply([cont.entry(put('a', 'again'))]);
  t.same((await get(other, 'a')).kvs, [{ key: 'a', value: 'again', c: 2, m: 9, v: 2, lease: 0 }]);
});

t.test('restore survives a reopen and refuses bad snapshots with a clear message', async (t) => {
  const src = await openStore(t);
  const log = new Log();
  await seed(src, log, ['k1', 'k2']);
  const data = Buffer.from(await src.snapshot());

  const dir = path.join(await tempDir(t), 'db');
  const dst = await MvccStore.open(dir);
  await seed(dst, new Log(), ['old']);
  await dst.restore({ meta: { index: 2, term: 1, voters: [] }, data });
  await dst.close();
  const again = await openStore(t, dir);
  t.same((await get(again, '\0', { rangeEnd: ZERO })).kvs.map((kv) => kv.key), ['k1', 'k2']);
  t.same([again.appliedIndex(), again.revision()], [2, 3]);

  const meta = { index: 2, term: 1, voters: [] };
  await t.rejects(again.restore({ meta: { ...meta, index: 3 }, data }), /at index 2 but its metadata says 3/);

  // Frame helpers to build corrupt variants of the real data.
  const pairs: [Buffer, Buffer][] = [];
  let off = 20;
  for (let i = 0; i < data.readUInt32BE(16); i++) {
    const kl = data.readUInt32BE(off);
    const k = data.subarray(off + 4, off + 4 + kl);
    off += 4 + kl;
    const vl = data.readUInt32BE(off);
    pairs.push([k, data.subarray(off + 4, off + 4 + vl)]);
    off += 4 + vl;
  }
  const frame = (ps: [Buffer, Buffer][]): Buffer => {
    const head = Buffer.alloc(20);
    head.write('KEELMVCC', 0, 'latin1');
    head.writeUInt32BE(1, 8);
    head.writeUInt32BE(ps.length, 16);
    const parts: Buffer[] = [head];
    for (const [k, v] of ps) {
      const kl = Buffer.alloc(4);
      kl.writeUInt32BE(k.length);
      const vl = Buffer.alloc(4);
      vl.writeUInt32BE(v.length);
      parts.push(kl, k, vl, v);
    }
    return Buffer.concat(parts);
  };
  t.same(frame(pairs), data, 'the frame helper rebuilds the real data');
  const withValue = (first: number, v: Buffer): [Buffer, Buffer][] => pairs.map(([k, x]) => [k, k[0] === first ? v : x]);
  const bad: [string, Buffer, RegExp][] = [
    ['bad magic', Buffer.from('not a snapshot at all'), /bad magic/],
    ['truncated', data.subarray(0, data.length - 3), /runs past the end/],
    ['trailing bytes', Buffer.concat([data, Buffer.from([1])]), /1 bytes after the last pair/],
    ['keys out of order', frame([...pairs.slice(0, -2), pairs[pairs.length - 1], pairs[pairs.length - 2]]), /is not above the one before it/],
    ['no state record', frame(pairs.filter(([k]) => !k.equals(Buffer.from('\x00state', 'latin1')))), /state record/],
    ['a corrupt Latest record', frame(withValue(1, Buffer.from([1, 2, 3]))), /corrupt latest-version record.*bad header/],
    ['a corrupt History record', frame(withValue(2, Buffer.from([7]))), /corrupt history record/],
    ['an unknown table', frame([...pairs, [Buffer.from([0x42, 1]), Buffer.alloc(0)]]), /unknown table/],
    [
      'another format',
      frame(pairs.map(([k, v]) => [k, k.equals(Buffer.from('\x00format', 'latin1')) ? Buffer.from('keel-kv/1') : v])),
      /format "keel-kv\/1", expected "keel-mvcc\/1"/,
    ],
  ];
  for (const [what, d, msg] of bad) {
    await t.rejects(again.restore({ meta, data: d }), { message: /^mvcc store: invalid snapshot data: / }, what);
    await t.rejects(again.restore({ meta, data: d }), { message: msg }, what);
    t.throws(() => decodeSnapshotData(d), { message: msg }, `${what} (decodeSnapshotData)`);
  }
  // Nothing changed.
  t.same([again.appliedIndex(), again.revision()], [2, 3]);
  t.equal((await get(again, 'k1')).count, 1);
});

t.test('range reads one point in time while apply runs', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await seed(s, log, ['a']);
  const writes: Promise<ApplyOutput>[] = [];
  const reads: ReturnType<MvccStore['range']>[] = [];
  for (let i = 0; i < 50; i++) {
    writes.push(s.apply([log.entry(put('a', `v${i}`))]));
    reads.push(s.range({ key: b('a') }));
  }
  await Promise.all(writes);
  for (const r of await Promise.all(reads)) {
    t.ok(r.kvs[0].modRevision <= r.revision, 'no key newer than the revision the answer carries');
  }
  t.equal(s.revision(), 52);
});

t.test('dbSize counts the files of the LevelDB directory', async (t) => {
  const s = await openStore(t);
  const before = await s.dbSize();
  t.ok(before > 0);
  await s.apply([new Log().entry(put('big', 'x'.repeat(100_000)))]);
  t.ok((await s.dbSize()) > before + 50_000);
});

t.test('a LevelDB dir of the foundation store or of something else is refused', async (t) => {
  const root = await tempDir(t);
  const legacy = new Level<Buffer, Buffer>(path.join(root, 'legacy'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await legacy.put(Buffer.from('\x00applied', 'latin1'), Buffer.alloc(8));
  await legacy.close();
  await t.rejects(MvccStore.open(path.join(root, 'legacy')), /written by the foundation's store \(keel-kv\/1/);
  const other = new Level<Buffer, Buffer>(path.join(root, 'other'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await other.put(b('hello'), b('world'));
  await other.close();
  await t.rejects(MvccStore.open(path.join(root, 'other')), /is not empty and holds no keel-mvcc\/1 format record/);
  await t.rejects(MvccStore.open(path.join(root, 'x'), undefined, { compactionBatchKeys: 0 }), /compactionBatchKeys must be a positive integer/);
});
