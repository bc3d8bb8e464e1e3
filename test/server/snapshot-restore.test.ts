// Backup and restore on the member side: POST /v3/maintenance/snapshot in front of a real MvccStore (the
// backup file it streams, chunking, backpressure and a client that leaves), the backup format's checks, and
// restore.ts building a data dir that a real member starts from and serves the same data.

import { decodeMembers } from '../../src/kv/mvcc/cluster-records';
import { readSnapshotData } from '../../src/kv/mvcc/snapshot-data';
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import t, { type Test } from 'tap';
import { KeelHttpClient } from '../../src/client/http-client';
import { Errors, type ResponseHeader } from '../../src/kv/api';
import { MvccStore } from '../../src/kv/mvcc/mvcc-store';
import { EntryType } from '../../src/raft/core/types';
import { Snapshotter } from '../../src/raft/snapshot/snapshotter';
import { Wal } from '../../src/raft/wal/wal';
import {
  BackupVerifier,
  checkBackup,
  encodeBackupPrefix,
  parseBackup,
  readBackupFile,
  type BackupHeader,
} from '../../src/server/backup-file';
import { createClientServer } from '../../src/server/http-gateway';
import { clusterIdOf, memberIdOf } from '../../src/server/ids';
import { maintenanceSnapshotRoute, SNAPSHOT_PATH, type SnapshotSource } from '../../src/server/maintenance-snapshot';
import { startMember } from '../../src/server/member';
import { readIdentity } from '../../src/server/member-dir';
import { DEFAULT_MEMBER_OPTIONS } from '../../src/server/options';
import { restoreDataDir, restoredIdentity } from '../../src/server/restore';
import { MemoryKv, unusedPort } from '../cli/fixtures/helpers';
import { Log, del, openStore, put, run, tempDir } from '../kv/fixtures/mvcc';

const CLUSTER = '00000000000000aa';
const MEMBER = '00000000000000bb';

function sourceOf(store: MvccStore): SnapshotSource {
  return {
    snapshot: () => store.snapshot(),
    header: (revision): ResponseHeader => ({ clusterId: CLUSTER, memberId: MEMBER, revision, raftTerm: 4 }),
  };
}

/** A store with history, a deletion, a lease with a key and a compaction. */
async function sampleStore(t: Test): Promise<{ store: MvccStore; log: Log }> {
  const store = await openStore(t);
  const log = new Log();
  await run(store, log, put('a', '1')); // rev 2
  await run(store, log, put('b', '2')); // rev 3
  await run(store, log, put('a', '3')); // rev 4
  await run(store, log, del('b')); // rev 5
  await run(store, log, { op: 'leaseGrant', id: 7, ttl: 100 }); // rev 5 (no key change)
  await run(store, log, put('c', 'leased', { lease: 7 })); // rev 6
  await run(store, log, { op: 'compact', req: { revision: 3 } });
  await store.compacted(3);
  // An entry that proposes nothing still moves the applied index.
  log.index += 1;
  await store.apply([{ term: 2, index: log.index, type: EntryType.Normal, data: new Uint8Array() }]);
  return { store, log };
}

async function serve(t: Test, source: SnapshotSource, opts: { chunkBytes?: number; logger?: pino.Logger } = {}) {
  const server = createClientServer(new MemoryKv(MEMBER, 'n1', MEMBER), {
    extraRoutes: [maintenanceSnapshotRoute(source, opts)],
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function fetchBackup(url: string, body = '{}'): Promise<{ status: number; type: string | null; length: string | null; bytes: Buffer }> {
  const res = await fetch(url + SNAPSHOT_PATH, { method: 'POST', body, signal: AbortSignal.timeout(10_000) });
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    length: res.headers.get('content-length'),
    bytes: Buffer.from(await res.arrayBuffer()),
  };
}

/** A backup with the given header and dump, hashed correctly. */
function buildBackup(header: BackupHeader, data: Buffer): Buffer {
  const head = Buffer.concat([encodeBackupPrefix(header), data]);
  return Buffer.concat([head, createHash('sha256').update(head).digest()]);
}

t.test('the route streams the store dump with a header and a sha256', async (t) => {
  const { store } = await sampleStore(t);
  const url = await serve(t, sourceOf(store), { chunkBytes: 7 });
  const before = new Date().toISOString();
  const r = await fetchBackup(url);
  t.equal(r.status, 200);
  t.equal(r.type, 'application/octet-stream');
  t.equal(Number(r.length), r.bytes.length, 'Content-Length is the whole backup');

  const { header, data, summary } = checkBackup(r.bytes);
  t.same(data, Buffer.from(await store.snapshot()), 'the dump is the state machine snapshot, byte for byte');
  t.match(header, {
    appliedIndex: store.appliedIndex(),
    revision: 6,
    compactRevision: 3,
    dataBytes: data.length,
    clusterId: CLUSTER,
    memberId: MEMBER,
    raftTerm: 4,
  });
  t.ok(header.createdAt >= before, 'createdAt is the time of the request');
  t.equal(summary.keys, 2, 'a and c are live');
  t.equal(summary.leases, 1);
  const digest = createHash('sha256').update(r.bytes.subarray(0, r.bytes.length - 32)).digest();
  t.same(r.bytes.subarray(r.bytes.length - 32), digest, 'the last 32 bytes are the sha256 of the rest');
  t.equal((await fetchBackup(url, '')).status, 200, 'an empty body is an empty SnapshotRequest');
});

t.test('bad requests and a member that cannot serve get the gateway error', async (t) => {
  const { store } = await sampleStore(t);
  const url = await serve(t, sourceOf(store));
  const bad = await fetchBackup(url, '{"revision":"1"}');
  t.equal(bad.status, 400);
  t.match(JSON.parse(bad.bytes.toString()), { code: 3, message: /revision: unknown field/ });
  const notJson = await fetchBackup(url, '{');
  t.equal(notJson.status, 400);
  const get = await fetch(url + SNAPSHOT_PATH);
  t.equal(get.status, 405, 'GET is not a route');
  await get.arrayBuffer();

  const starting = await serve(t, {
    snapshot: () => Promise.reject(Errors.starting()),
    header: () => {
      throw new Error('not reached');
    },
  });
  const r = await fetchBackup(starting);
  t.equal(r.status, 503);
  t.equal(JSON.parse(r.bytes.toString()).message, Errors.starting().message);
});

t.test('a client that stops reading holds the stream; one that leaves stops it', async (t) => {
  const store = await openStore(t);
  const log = new Log();
  // 16 MiB: more than loopback socket buffers hold, so the member must wait for the reader.
  const value = 'x'.repeat(4096);
  for (let batch = 0; batch < 8; batch++) {
    const entries = Array.from({ length: 512 }, (_v, i) => log.entry(put(`k/${batch}/${i}`, value)));
    await store.apply(entries);
  }
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
      cb();
    },
  });
  const url = await serve(t, sourceOf(store), { chunkBytes: 64 * 1024, logger: pino({ level: 'info' }, sink) });

  let received = 0;
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(url + SNAPSHOT_PATH, { method: 'POST' }, resolve);
    req.on('error', reject);
    req.end();
  });
  res.once('data', (c: Buffer) => {
    received += c.length;
    res.pause();
  });
  const total = Number(res.headers['content-length']);
  t.ok(total > 16 * 1024 * 1024, `the backup is ${total} bytes`);
  const deadline = Date.now() + 5000;
  // Wait until the member is blocked on the paused reader (its log says it started, and never finished).
  while (Date.now() < deadline && !lines.some((l) => l.msg === 'sending database snapshot to client')) {
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 200));
  t.notOk(lines.some((l) => l.msg === 'sent database snapshot to client'), 'not finished while the reader is paused');
  t.ok(received > 0, 'the first bytes arrived');
  res.destroy();
  let canceled: Record<string, unknown> | undefined;
  while (Date.now() < deadline + 5000 && canceled === undefined) {
    canceled = lines.find((l) => l.msg === 'snapshot stream canceled: the client disconnected');
    await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(canceled, 'the member noticed the client left');
  // What was sent is what the socket buffers took before the reader paused (a few MiB), not the rest.
  t.ok(Number(canceled?.sent) < total / 2, `and stopped after ${String(canceled?.sent)} of ${total} bytes`);
});

t.test('the backup format refuses every kind of damage with a clear message', async (t) => {
  const { store } = await sampleStore(t);
  const data = Buffer.from(await store.snapshot());
  const header: BackupHeader = {
    appliedIndex: store.appliedIndex(),
    revision: store.revision(),
    compactRevision: 3,
    dataBytes: data.length,
    clusterId: CLUSTER,
    memberId: MEMBER,
    raftTerm: 1,
    createdAt: new Date().toISOString(),
  };
  const good = buildBackup(header, data);
  t.same(parseBackup(good).header, header);

  const flipped = Buffer.from(good);
  flipped[Math.floor(flipped.length / 2)] ^= 0x01;
  t.throws(() => parseBackup(flipped), /sha256 mismatch: .* \(the file is corrupt\)/);
  t.throws(() => parseBackup(good.subarray(0, good.length - 1)), /truncated: \d+ bytes of the \d+ its header announces/);
  t.throws(() => parseBackup(good.subarray(0, 10)), /truncated: 10 bytes, too short/);
  t.throws(() => parseBackup(good.subarray(0, 30)), /truncated: 30 bytes, the header is not complete/);
  t.throws(() => parseBackup(Buffer.concat([good, Buffer.from('x')])), /more than the \d+ bytes its header announces/);
  t.throws(() => parseBackup(Buffer.from('SQLite format 3\0 and more')), /bad magic/);
  const v2 = Buffer.from(good);
  v2.writeUInt32BE(2, 8);
  t.throws(() => parseBackup(v2), /format version 2 is not supported/);
  const huge = Buffer.from(good);
  huge.writeUInt32BE(1 << 30, 12);
  t.throws(() => parseBackup(huge), /header length \d+ is implausible/);
  t.throws(() => parseBackup(buildBackup({ ...header, memberId: 'n1' }, data)), /memberId is "n1", not 16 hex digits/);
  t.throws(() => parseBackup(buildBackup({ ...header, revision: -1 }, data)), /revision is -1, not a non-negative integer/);

  // Intact framing around a dump that disagrees with its header, or is not a dump.
  t.throws(() => checkBackup(buildBackup({ ...header, revision: 5 }, data)), /header says applied index \d+, revision 5, but the dump holds/);
  const junk = Buffer.from('KEELMVCC not really');
  t.throws(() => checkBackup(buildBackup({ ...header, dataBytes: junk.length }, junk)), /the store dump inside is invalid: mvcc store: invalid snapshot data/);

  // The verifier takes the bytes in any chunking.
  const v = new BackupVerifier();
  for (let off = 0; off < good.length; off += 5) v.push(good.subarray(off, off + 5));
  t.same(v.finish(), header);

  const dir = await tempDir(t);
  const file = path.join(dir, 'bad.db');
  await fsp.writeFile(file, flipped);
  await t.rejects(readBackupFile(file), new RegExp(`snapshot file ${file}: sha256 mismatch`));
  await t.rejects(readBackupFile(path.join(dir, 'none.db')), /snapshot file .*none\.db does not exist/);
  await t.rejects(readBackupFile(dir), /is a directory/);
});

/** The backup of the sample store, written to a file; read back checked. */
async function sampleBackupFile(t: Test): Promise<{ file: string; store: MvccStore; dir: string }> {
  const { store } = await sampleStore(t);
  const url = await serve(t, sourceOf(store));
  const dir = await tempDir(t);
  const file = path.join(dir, 'backup.db');
  await fsp.writeFile(file, (await fetchBackup(url)).bytes);
  return { file, store, dir };
}

t.test('restore builds a data dir: store, snapshot, WAL and identity agree', async (t) => {
  const { file, store, dir } = await sampleBackupFile(t);
  const backup = await readBackupFile(file);
  const initialCluster = [
    { name: 'r1', peerUrl: 'http://127.0.0.1:7001' },
    { name: 'r2', peerUrl: 'http://127.0.0.1:7002' },
    { name: 'r3', peerUrl: 'http://127.0.0.1:7003' },
  ];
  const dataDir = path.join(dir, 'r2');
  const r = await restoreDataDir({ backup, name: 'r2', initialCluster, initialClusterToken: 'tok', dataDir });
  const ids = initialCluster.map((m) => memberIdOf(m.peerUrl, 'tok'));
  t.same(r, {
    dataDir,
    name: 'r2',
    memberId: ids[1],
    clusterId: clusterIdOf(initialCluster, 'tok'),
    index: store.appliedIndex(),
    term: 1,
    revision: 6,
  });
  t.not(r.clusterId, CLUSTER);

  t.same(await readIdentity(dataDir), restoredIdentity('r2', initialCluster, 'tok'), 'member.json');
  const snap = await new Snapshotter(path.join(dataDir, 'snap')).loadNewest();
  t.same(snap?.meta, { index: store.appliedIndex(), term: 1, voters: ids }, 'the snapshot has the new voters');
  // The dump is the backup's with the new cluster's member registry (and no alarms) in place of the old.
  const dumped = new Map<string, Buffer>();
  readSnapshotData(snap?.data ?? new Uint8Array(), (k, v) => dumped.set(k.toString('latin1'), Buffer.from(v)));
  const backedUp = new Map<string, Buffer>();
  readSnapshotData(backup.data, (k, v) => backedUp.set(k.toString('latin1'), Buffer.from(v)));
  const registry = '\x00members';
  t.same(
    decodeMembers(dumped.get(registry) ?? Buffer.alloc(0)).map((m) => [m.id, m.name, m.peerUrls]),
    initialCluster.map((m, i) => [ids[i], m.name, [m.peerUrl]]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    'the dump holds the new member registry',
  );
  dumped.delete(registry);
  dumped.delete('\x00alarms');
  backedUp.delete(registry);
  backedUp.delete('\x00alarms');
  t.same([...dumped], [...backedUp], 'and otherwise the backup');
  const { wal, contents } = await Wal.open(path.join(dataDir, 'wal'));
  await wal.close();
  t.same(contents.hardState, { term: 1, vote: '', commit: store.appliedIndex() }, 'the hard state commits the snapshot');
  t.same(contents.snapshot, { index: store.appliedIndex(), term: 1 }, 'the WAL starts at the snapshot');
  t.same(contents.entries, []);

  const restored = await MvccStore.open(path.join(dataDir, 'db'));
  t.teardown(() => restored.close());
  t.equal(restored.appliedIndex(), store.appliedIndex());
  t.equal(restored.revision(), 6);
  t.equal(restored.compactRevision(), 3);
  t.same(restored.leases(), store.leases());
  const all = { key: Buffer.from('\0'), rangeEnd: Buffer.from('\0') };
  t.same((await restored.range(all)).kvs, (await store.range(all)).kvs, 'the same keys, values and revisions');
  const old = { key: Buffer.from('a'), revision: 3 };
  t.same((await restored.range(old)).kvs, (await store.range(old)).kvs, 'and the same history');
});

t.test('restore refuses a used data dir, a name not in the cluster, an empty store; a failure leaves nothing', async (t) => {
  const { file, dir } = await sampleBackupFile(t);
  const backup = await readBackupFile(file);
  const initialCluster = [{ name: 'r1', peerUrl: 'http://127.0.0.1:7001' }];
  const opts = { backup, name: 'r1', initialCluster, initialClusterToken: 'tok' };

  const used = path.join(dir, 'used');
  await fsp.mkdir(used);
  await fsp.writeFile(path.join(used, 'keep.txt'), 'mine');
  await t.rejects(restoreDataDir({ ...opts, dataDir: used }), /data dir .*used exists and is not empty \(keep\.txt\)/);
  t.same(await fsp.readdir(used), ['keep.txt'], 'left untouched');
  await t.rejects(restoreDataDir({ ...opts, dataDir: file }), /exists and is not a directory/);

  const missing = path.join(dir, 'missing');
  await t.rejects(restoreDataDir({ ...opts, name: 'r9', dataDir: missing }), /member name "r9" is not in the initial cluster \(it has r1\)/);
  await t.rejects(restoreDataDir({ ...opts, initialClusterToken: ' ', dataDir: missing }), /token must not be empty/);

  const fresh = await openStore(t);
  const emptyBackup = checkBackup(
    buildBackup(
      {
        appliedIndex: 0,
        revision: 1,
        compactRevision: 0,
        dataBytes: (await fresh.snapshot()).length,
        clusterId: CLUSTER,
        memberId: MEMBER,
        raftTerm: 0,
        createdAt: new Date().toISOString(),
      },
      Buffer.from(await fresh.snapshot()),
    ),
  );
  await t.rejects(restoreDataDir({ ...opts, backup: emptyBackup, dataDir: missing }), /never applied an entry/);
  await t.rejects(fsp.stat(missing), { code: 'ENOENT' }, 'no data dir made by refused restores');

  // The store refuses a dump whose applied index is not the snapshot's: everything written so far goes.
  const lying = { ...backup, summary: { ...backup.summary, applied: backup.summary.applied + 1 } };
  await t.rejects(restoreDataDir({ ...opts, backup: lying, dataDir: missing }), /snapshot data is at index/);
  await t.rejects(fsp.stat(missing), { code: 'ENOENT' }, 'a data dir it created is removed');
  const empty = path.join(dir, 'empty');
  await fsp.mkdir(empty);
  await t.rejects(restoreDataDir({ ...opts, backup: lying, dataDir: empty }), /snapshot data is at index/);
  t.same(await fsp.readdir(empty), [], 'an empty data dir it was given is emptied again');
});

t.test('a member starts from a restored data dir and serves the same data in a new cluster', async (t) => {
  const { file, store, dir } = await sampleBackupFile(t);
  const peerUrl = `http://127.0.0.1:${await unusedPort()}`;
  const clientUrl = `http://127.0.0.1:${await unusedPort()}`;
  const initialCluster = [{ name: 'solo', peerUrl }];
  const dataDir = path.join(dir, 'solo');
  const r = await restoreDataDir({
    backup: await readBackupFile(file),
    name: 'solo',
    initialCluster,
    initialClusterToken: 'restored',
    dataDir,
  });
  const member = await startMember(
    {
      ...DEFAULT_MEMBER_OPTIONS,
      name: 'solo',
      dataDir,
      listenClientUrl: clientUrl,
      listenPeerUrl: peerUrl,
      initialCluster,
      initialClusterToken: 'restored',
      heartbeatIntervalMs: 20,
      electionTimeoutMs: 200,
    },
    pino({ level: 'silent' }),
  );
  t.teardown(() => member.close());
  t.equal(member.clusterId, r.clusterId, 'the member accepts the data dir as its own');
  const client = new KeelHttpClient({ endpoints: [clientUrl], requestTimeoutMs: 5000 });
  t.teardown(() => client.close());
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !(await client.health(clientUrl).catch(() => ({ health: false }))).health) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const got = await client.get('\0', { rangeEnd: '\0' });
  const want = await store.range({ key: Buffer.from('\0'), rangeEnd: Buffer.from('\0') });
  t.same(got.kvs, want.kvs, 'the same keys, values, revisions and leases');
  t.equal(got.header.revision, 6);
  t.equal(got.header.clusterId, r.clusterId);
  t.same((await client.get('a', { revision: 3 })).kvs.map((kv) => kv.value.toString()), ['1'], 'history kept');
  await t.rejects(client.get('a', { revision: 2 }), /required revision has been compacted/, 'and the compaction');
  t.same((await client.leaseLeases()).leases, [{ id: 7 }], 'the lease');
  const p = await client.put('new', 'write');
  t.equal(p.header.revision, 7, 'a write gets the next revision');
});
