import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Packr } from 'msgpackr';
import type { KeyValue, RangeRequest } from '../../src/kv/api';
import type { AppliedCommand, Command } from '../../src/kv/state-machine';
import {
  INITIAL_REVISION,
  KvStore,
  decodeProposal,
  decodeSnapshotData,
  encodeProposal,
} from '../../src/kv/store';
import { EntryType, type Entry } from '../../src/raft/core/types';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const ZERO = Buffer.from([0]);

async function tempDir(t: Tap): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'keel-kv-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
type Tap = Test;

async function openStore(t: Tap, dir?: string): Promise<KvStore> {
  const d = dir ?? path.join(await tempDir(t), 'db');
  const s = await KvStore.open(d);
  t.teardown(() => s.close());
  return s;
}

/** Feeds commands to a store as consecutive log entries, one apply() call per list. */
class Log {
  index: number;
  private n = 0;
  constructor(start = 0) {
    this.index = start;
  }
  entry(cmd: Command): Entry {
    this.index += 1;
    this.n += 1;
    return { term: 1, index: this.index, type: EntryType.Normal, data: encodeProposal({ id: `m-${this.n}`, cmd }) };
  }
  raw(data: Uint8Array, type: EntryType = EntryType.Normal): Entry {
    this.index += 1;
    return { term: 1, index: this.index, type, data };
  }
}

const put = (key: string, value: string, prevKv?: boolean): Command =>
  prevKv ? { op: 'put', key: b(key), value: b(value), prevKv } : { op: 'put', key: b(key), value: b(value) };
const del = (key: string, rangeEnd?: Buffer, prevKv?: boolean): Command => {
  const c: Command = { op: 'delete', key: b(key) };
  if (rangeEnd !== undefined) c.rangeEnd = rangeEnd;
  if (prevKv) c.prevKv = true;
  return c;
};

/** Plain objects, so that t.same shows readable strings instead of Buffers. */
const show = (kvs: KeyValue[]) =>
  kvs.map((kv) => ({
    key: kv.key.toString('latin1'),
    value: kv.value.toString(),
    c: kv.createRevision,
    m: kv.modRevision,
    v: kv.version,
    lease: kv.lease,
  }));

async function get(s: KvStore, key: string, req: Partial<RangeRequest> = {}) {
  const r = await s.range({ key: b(key), ...req });
  return { ...r, kvs: show(r.kvs) };
}

async function seed(s: KvStore, log: Log, keys: string[]): Promise<void> {
  await s.apply(keys.map((k) => log.entry(put(k, `v-${k}`))));
}

t.test('proposal encoding round-trips and rejects malformed data', async (t) => {
  const p = { id: 'abc-1', cmd: { op: 'delete', key: b('a'), rangeEnd: b('b'), prevKv: true } } as const;
  t.same(decodeProposal(encodeProposal(p)), p);
  const q = { id: 'abc-2', cmd: { op: 'put', key: b('k'), value: Buffer.alloc(0) } } as const;
  t.same(decodeProposal(encodeProposal(q)), q);
  const packr = new Packr({ useRecords: false });
  const bad: unknown[] = [
    'string',
    { id: 1, cmd: { op: 'put', key: b('k'), value: b('v') } },
    { id: 'x', cmd: { op: 'put', key: 'k', value: b('v') } },
    { id: 'x', cmd: { op: 'put', key: b(''), value: b('v') } },
    { id: 'x', cmd: { op: 'put', key: b('k') } },
    { id: 'x', cmd: { op: 'put', key: b('k'), value: b('v'), prevKv: 'yes' } },
    { id: 'x', cmd: { op: 'delete', key: b('k'), rangeEnd: 5 } },
    { id: 'x', cmd: { op: 'txn', key: b('k') } },
    { id: 'x', cmd: 7 },
  ];
  for (const v of bad) t.throws(() => decodeProposal(packr.pack(v)), { name: 'MalformedProposalError' });
  t.throws(() => decodeProposal(Buffer.from([0x92, 0x01])), { name: 'MalformedProposalError' });
});

t.test('put, get and overwrite: versions and revisions', async (t) => {
  const s = await openStore(t);
  t.equal(s.revision(), INITIAL_REVISION);
  t.equal(s.appliedIndex(), 0);
  t.same(await get(s, 'foo'), { kvs: [], more: false, count: 0, revision: 1 });

  const log = new Log();
  const r1 = await s.apply([log.entry(put('foo', 'bar'))]);
  t.same([...r1], [[1, { id: 'm-1', result: { op: 'put', revision: 2 } }]]);
  t.same(await get(s, 'foo'), {
    kvs: [{ key: 'foo', value: 'bar', c: 2, m: 2, v: 1, lease: 0 }],
    more: false,
    count: 1,
    revision: 2,
  });

  await s.apply([log.entry(put('other', 'x'))]);
  const r3 = await s.apply([log.entry(put('foo', 'baz', true))]);
  t.same(r3.get(3), {
    id: 'm-3',
    result: {
      op: 'put',
      revision: 4,
      prevKv: { key: b('foo'), value: b('bar'), createRevision: 2, modRevision: 2, version: 1, lease: 0 },
    },
  });
  t.same((await get(s, 'foo')).kvs, [{ key: 'foo', value: 'baz', c: 2, m: 4, v: 2, lease: 0 }]);
  t.equal(s.revision(), 4);
  t.equal(s.appliedIndex(), 3);
});

t.test('commands in one batch see each other', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const res = await s.apply([
    log.entry(put('k', 'one')),
    log.entry(put('k', 'two', true)),
    log.entry(put('j', 'x')),
    log.entry(del('a', ZERO, true)),
    log.entry(put('k', 'three')),
  ]);
  t.same(res.get(2)?.result, {
    op: 'put',
    revision: 3,
    prevKv: { key: b('k'), value: b('one'), createRevision: 2, modRevision: 2, version: 1, lease: 0 },
  });
  const d = res.get(4)?.result;
  t.ok(d && d.op === 'delete');
  if (d && d.op === 'delete') {
    t.equal(d.deleted, 2);
    t.equal(d.revision, 5);
    t.same(show(d.prevKvs), [
      { key: 'j', value: 'x', c: 4, m: 4, v: 1, lease: 0 },
      { key: 'k', value: 'two', c: 2, m: 3, v: 2, lease: 0 },
    ]);
  }
  // Deleted then recreated within the batch: a new key, version 1.
  t.same((await get(s, 'k')).kvs, [{ key: 'k', value: 'three', c: 6, m: 6, v: 1, lease: 0 }]);
  t.same((await get(s, 'j')).count, 0);
  t.equal(s.revision(), 6);
  t.equal(s.appliedIndex(), 5);
});

t.test('delete: single key, range, "\\0" and no match', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await seed(s, log, ['a', 'b', 'c', 'd', 'e']);
  t.equal(s.revision(), 6);

  const none = await s.apply([log.entry(del('zz'))]);
  t.same(none.get(6)?.result, { op: 'delete', revision: 6, deleted: 0, prevKvs: [] }, 'no bump');
  t.equal(s.revision(), 6);
  t.equal(s.appliedIndex(), 6, 'applied advances even without a change');

  const one = await s.apply([log.entry(del('a'))]);
  t.same(one.get(7)?.result, { op: 'delete', revision: 7, deleted: 1, prevKvs: [] });

  const inverted = await s.apply([log.entry(del('d', b('b')))]);
  t.same(inverted.get(8)?.result, { op: 'delete', revision: 7, deleted: 0, prevKvs: [] });

  const mid = await s.apply([log.entry(del('b', b('d'), true))]);
  const r = mid.get(9)?.result;
  t.ok(r && r.op === 'delete' && r.deleted === 2 && r.revision === 8);
  if (r && r.op === 'delete') t.same(r.prevKvs.map((kv) => kv.key.toString()), ['b', 'c']);
  t.same((await get(s, 'a', { rangeEnd: ZERO })).kvs.map((kv) => kv.key), ['d', 'e']);

  await s.apply([log.entry(del('e', ZERO))]);
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

  const coSingle = await get(s, 'q', { countOnly: true });
  t.same([coSingle.kvs, coSingle.count], [[], 1]);

  const ko = await get(s, 'p/1', { keysOnly: true });
  t.same(ko.kvs, [{ key: 'p/1', value: '', c: 3, m: 3, v: 1, lease: 0 }]);

  const fromKey = await get(s, 'p0', { rangeEnd: ZERO });
  t.same(fromKey.kvs.map((kv) => kv.key), ['p0', 'q']);

  const everything = await s.range({ key: ZERO, rangeEnd: ZERO, limit: 3 });
  t.same([everything.kvs.length, everything.count, everything.more], [3, 7, true]);

  const inverted = await get(s, 'q', { rangeEnd: b('a') });
  t.same([inverted.kvs, inverted.count], [[], 0]);

  // Byte order, not string order: 0xff sorts after every ASCII byte.
  const bin = await s.range({ key: Buffer.from([0x70, 0x2f, 0xfe]), rangeEnd: Buffer.from([0x70, 0x2f, 0xff, 0x00]) });
  t.same(bin.kvs.map((kv) => kv.key.toString('latin1')), ['p/\xff']);
});

t.test('applied index and revision persist across close and reopen', async (t) => {
  const dir = path.join(await tempDir(t), 'db');
  const s1 = await KvStore.open(dir);
  const log = new Log();
  await s1.apply([log.entry(put('a', '1')), log.raw(new Uint8Array(0)), log.entry(put('b', '2'))]);
  t.equal(s1.appliedIndex(), 3);
  await s1.close();
  await s1.close(); // idempotent
  await t.rejects(s1.range({ key: b('a') }), /closed/);
  await t.rejects(s1.apply([log.entry(put('c', '3'))]), /closed/);

  const s2 = await openStore(t, dir);
  t.equal(s2.appliedIndex(), 3);
  t.equal(s2.revision(), 3);
  t.same((await get(s2, 'b')).kvs, [{ key: 'b', value: '2', c: 3, m: 3, v: 1, lease: 0 }]);
});

t.test('one LevelDB batch per apply() call, holding the data and the applied index', async (t) => {
  const s = await openStore(t);
  // Spy on the store's LevelDB handle: every write method counts.
  const db = (s as unknown as { db: Record<string, unknown> }).db;
  const writes: string[] = [];
  const ops: { type: string; key: Buffer }[][] = [];
  for (const m of ['put', 'del', 'batch', 'clear']) {
    const orig = db[m] as (...args: unknown[]) => unknown;
    db[m] = (...args: unknown[]) => {
      writes.push(m);
      if (m === 'batch') ops.push(args[0] as { type: string; key: Buffer }[]);
      return orig.apply(db, args);
    };
  }
  const log = new Log();
  await s.apply([log.entry(put('a', '1')), log.entry(put('b', '2')), log.entry(del('a'))]);
  t.same(writes, ['batch']);
  t.same(
    ops[0].map((o) => [o.type, o.key.toString('latin1')]),
    [
      ['del', '\x01a'],
      ['put', '\x01b'],
      ['put', '\x00applied'],
      ['put', '\x00revision'],
    ],
  );
  await s.apply([]);
  await s.apply([{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) }]);
  t.same(writes, ['batch'], 'nothing new to apply: nothing written');
  await s.restore({ meta: { index: 3, term: 1, voters: [] }, data: await s.snapshot() });
  t.same(writes, ['batch', 'batch'], 'restore is one batch too');
});

t.test('entries at or below the applied index are skipped', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const batch = [log.entry(put('a', '1')), log.entry(put('a', '2'))];
  const first = await s.apply(batch);
  t.equal(first.size, 2);
  const again = await s.apply(batch);
  t.equal(again.size, 0, 'nothing applied the second time');
  t.same((await get(s, 'a')).kvs, [{ key: 'a', value: '2', c: 2, m: 3, v: 2, lease: 0 }]);
  t.equal(s.revision(), 3);

  // A batch that straddles the applied index: only the new part counts.
  const next = log.entry(put('a', '3'));
  const straddle = await s.apply([...batch, next]);
  t.same([...straddle.keys()], [3]);
  t.equal((await get(s, 'a')).kvs[0].v, 3);

  // A gap would silently skip commands: refused, and nothing of the call is written.
  log.index += 1;
  await t.rejects(s.apply([log.entry(put('z', 'z'))]), /cannot follow applied index 3/);
  t.equal(s.appliedIndex(), 3);
  t.equal((await get(s, 'z')).count, 0);
});

t.test('malformed entries, leader no-ops and conf changes only advance the applied index', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const res = await s.apply([
    log.raw(Buffer.from('definitely not msgpack of a proposal')),
    log.raw(new Uint8Array(0)),
    log.raw(Buffer.from([1, 2, 3]), EntryType.ConfChange),
    log.raw(new Packr({ useRecords: false }).pack({ id: 'x', cmd: { op: 'put', key: 'str', value: 1 } })),
    log.entry(put('ok', 'yes')),
  ]);
  t.same([...res.keys()], [5]);
  t.equal(s.appliedIndex(), 5);
  t.equal(s.revision(), 2);
  t.equal((await get(s, 'ok')).count, 1);
});

t.test('snapshot and restore', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await seed(s, log, ['a', 'b', 'c', 'd']);
  await s.apply([log.entry(put('b', 'B')), log.entry(del('c'))]);
  const data = await s.snapshot();
  const decoded = decodeSnapshotData(data);
  t.same([decoded.format, decoded.applied, decoded.revision], ['keel-kv/1', 6, 7]);

  const fresh = await openStore(t);
  await fresh.restore({ meta: { index: 6, term: 2, voters: ['a'] }, data });
  t.equal(fresh.appliedIndex(), 6);
  t.equal(fresh.revision(), 7);
  const everything = { rangeEnd: ZERO };
  t.same(await get(fresh, 'a', everything), await get(s, 'a', everything));
  t.same(await get(fresh, 'b'), await get(s, 'b'));

  // Over existing data: stale keys and meta go, and the restored store keeps applying from the snapshot.
  const other = await openStore(t);
  const olog = new Log();
  await seed(other, olog, ['stale', 'a', 'zz', 'y', 'x', 'w', 'v', 'u']);
  await other.restore({ meta: { index: 6, term: 2, voters: ['a'] }, data });
  t.same(await get(other, '\0', everything), await get(s, '\0', everything));
  t.equal(other.appliedIndex(), 6);
  const cont = new Log(6);
  await other.apply([cont.entry(put('a', 'again'))]);
  t.same((await get(other, 'a')).kvs, [{ key: 'a', value: 'again', c: 2, m: 8, v: 2, lease: 0 }]);
});

t.test('restore survives a reopen and refuses bad snapshots', async (t) => {
  const src = await openStore(t);
  const log = new Log();
  await seed(src, log, ['k1', 'k2']);
  const data = await src.snapshot();

  const dir = path.join(await tempDir(t), 'db');
  const dst = await KvStore.open(dir);
  await seed(dst, new Log(), ['old']);
  await dst.restore({ meta: { index: 2, term: 1, voters: [] }, data });
  await dst.close();
  const again = await openStore(t, dir);
  t.same((await get(again, '\0', { rangeEnd: ZERO })).kvs.map((kv) => kv.key), ['k1', 'k2']);
  t.same([again.appliedIndex(), again.revision()], [2, 3]);

  const meta = { index: 2, term: 1, voters: [] };
  await t.rejects(again.restore({ meta: { ...meta, index: 3 }, data }), /at index 2 but its metadata says 3/);
  const packr = new Packr({ useRecords: false });
  const bad: unknown[] = [
    'nope',
    { format: 'other', applied: 2, revision: 3, kvs: [] },
    { format: 'keel-kv/1', applied: -1, revision: 3, kvs: [] },
    { format: 'keel-kv/1', applied: 2, revision: 3, kvs: 'x' },
    { format: 'keel-kv/1', applied: 2, revision: 3, kvs: [[b('k'), b('v'), 2, 2, 1]] },
    { format: 'keel-kv/1', applied: 2, revision: 3, kvs: [[b('k'), b('v'), 2, 9, 1, 0]] },
    { format: 'keel-kv/1', applied: 2, revision: 3, kvs: [[b('k'), b('v'), 2, 2, 1, 0], [b('k'), b('v'), 2, 2, 1, 0]] },
  ];
  for (const v of bad) {
    await t.rejects(again.restore({ meta, data: packr.pack(v) }), /invalid snapshot data/);
  }
  await t.rejects(again.restore({ meta, data: Buffer.from([0xc1, 0xc1]) }), /invalid snapshot data/);
  // Nothing changed.
  t.same([again.appliedIndex(), again.revision()], [2, 3]);
  t.equal((await get(again, 'k1')).count, 1);
});

t.test('range reads one point in time while apply runs', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await seed(s, log, ['a']);
  const writes: Promise<Map<number, AppliedCommand>>[] = [];
  const reads: ReturnType<KvStore['range']>[] = [];
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
