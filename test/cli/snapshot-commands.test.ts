// keel snapshot save | status | restore, in process, against the real HTTP gateway with the snapshot route in
// front of a real MvccStore (and against members that serve broken backups): etcdctl's output, the checks,
// and that a failed save never leaves FILE (or FILE.part) behind.

import { createHash } from 'node:crypto';
import { existsSync, promises as fsp } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { Errors, type ResponseHeader } from '../../src/kv/api';
import type { MvccStore } from '../../src/kv/mvcc/mvcc-store';
import { humanBytes } from '../../src/cli/format';
import { parseBackup, readBackupFile } from '../../src/server/backup-file';
import { createClientServer, type ExtraRoute } from '../../src/server/http-gateway';
import { clusterIdOf, memberIdOf } from '../../src/server/ids';
import { maintenanceSnapshotRoute, SNAPSHOT_PATH } from '../../src/server/maintenance-snapshot';
import { readIdentity } from '../../src/server/member-dir';
import { sendKvError } from '../../src/server/json';
import { crc32c } from '../../src/util/crc32c';
import { keel, MemoryKv, unusedPort } from './fixtures/helpers';
import { Log, del, openStore, put, run, tempDir } from '../kv/fixtures/mvcc';

const ID = '00000000000000bb';

async function sampleStore(t: Test): Promise<MvccStore> {
  const store = await openStore(t);
  const log = new Log();
  await run(store, log, put('a', '1'));
  await run(store, log, put('b', '2'));
  await run(store, log, put('a', '3'));
  await run(store, log, del('b'));
  await run(store, log, put('c', '4'));
  return store;
}

/** The real gateway with `route` at the snapshot path; `kv` answers /health. */
async function member(t: Test, route: ExtraRoute, kv = new MemoryKv(ID, 'n1', ID)): Promise<string> {
  const server = createClientServer(kv, { extraRoutes: [route] });
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

function storeRoute(store: MvccStore): ExtraRoute {
  return maintenanceSnapshotRoute({
    snapshot: () => store.snapshot(),
    header: (revision): ResponseHeader => ({ clusterId: '00000000000000aa', memberId: ID, revision, raftTerm: 2 }),
  });
}

/** A member whose snapshot route answers with `bytes` as they are (and then does `end`). */
function rawRoute(bytes: Buffer, end: 'end' | 'cut' = 'end', declaredLength = bytes.length): ExtraRoute {
  return {
    method: 'POST',
    path: SNAPSHOT_PATH,
    handle: (req, res) => {
      req.resume();
      res.setHeader('Content-Type', 'application/octet-stream');
      res.setHeader('Content-Length', declaredLength);
      if (end === 'end') res.end(bytes);
      else res.write(bytes, () => res.destroy());
    },
  };
}

/** The backup a good member serves. */
async function goodBackup(t: Test, store: MvccStore): Promise<Buffer> {
  const url = await member(t, storeRoute(store));
  const res = await fetch(url + SNAPSHOT_PATH, { method: 'POST', body: '{}' });
  return Buffer.from(await res.arrayBuffer());
}

t.test('save writes a verified backup and prints etcdctl\'s line', async (t) => {
  const store = await sampleStore(t);
  const url = await member(t, storeRoute(store));
  const dir = await tempDir(t);
  const file = path.join(dir, 'snap.db');
  const r = await keel(['snapshot', 'save', file, '--endpoints', url]);
  t.same(r, { code: 0, stdout: `Snapshot saved at ${file}\n`, stderr: '' });
  t.notOk(existsSync(`${file}.part`), 'no .part left');
  const { header, data } = parseBackup(await fsp.readFile(file));
  t.same(data, Buffer.from(await store.snapshot()), 'the file holds the store dump');
  t.equal(header.revision, store.revision());
  t.equal(((await fsp.stat(file)).mode & 0o777).toString(8), '600', 'readable by its owner only, as etcdctl');

  // A dead endpoint first: the first healthy one is used.
  const dead = `http://127.0.0.1:${await unusedPort()}`;
  const again = await keel(['snapshot', 'save', file, '--endpoints', `${dead},${url}`]);
  t.same(again, { code: 0, stdout: `Snapshot saved at ${file}\n`, stderr: '' }, 'an existing FILE is replaced');
});

t.test('save prefers a healthy member, falls back to one without a leader, fails without any', async (t) => {
  const store = await sampleStore(t);
  const sick = new MemoryKv(ID, 'n1', ID);
  sick.health_ = { health: false, reason: 'RAFT NO LEADER' };
  const sickUrl = await member(t, rawRoute(Buffer.from('not served')), sick);
  const goodUrl = await member(t, storeRoute(store));
  const dir = await tempDir(t);
  const file = path.join(dir, 'snap.db');
  const r = await keel(['snapshot', 'save', file, '--endpoints', `${sickUrl},${goodUrl}`]);
  t.equal(r.code, 0, 'the healthy member second in the list is chosen');
  t.equal(r.stderr, '');

  const sickStore = await sampleStore(t);
  const sickWithData = await member(t, storeRoute(sickStore), sick);
  const alone = await keel(['snapshot', 'save', file, '--endpoints', sickWithData]);
  t.equal(alone.code, 0, 'a member without a leader can still be backed up');
  t.match(alone.stderr, /Warning: no endpoint is healthy; saving the snapshot of .* \(RAFT NO LEADER\), which may be stale/);

  const dead = `http://127.0.0.1:${await unusedPort()}`;
  const none = await keel(['snapshot', 'save', path.join(dir, 'none.db'), '--endpoints', dead]);
  t.equal(none.code, 1);
  t.match(none.stderr, /^Error: no member reachable to take a snapshot from: http:\/\/127\.0\.0\.1:\d+: /);
  t.notOk(existsSync(path.join(dir, 'none.db')));
});

t.test('a corrupt, truncated or cut download is refused and leaves no FILE', async (t) => {
  const store = await sampleStore(t);
  const good = await goodBackup(t, store);
  const dir = await tempDir(t);
  const flipped = Buffer.from(good);
  flipped[flipped.length - 40] ^= 0x80;
  const longer = Buffer.concat([good, Buffer.from('extra')]);
  const cases: { name: string; route: ExtraRoute; error: RegExp }[] = [
    { name: 'a flipped bit', route: rawRoute(flipped), error: /is not intact: sha256 mismatch: .*\(the file is corrupt\)/ },
    {
      name: 'a short answer that says so',
      route: rawRoute(good.subarray(0, good.length - 100)),
      error: /is not intact: truncated: \d+ bytes of the \d+ its header announces/,
    },
    { name: 'bytes after the end', route: rawRoute(longer), error: /is not intact: more than the \d+ bytes its header announces/ },
    {
      name: 'a connection cut midway',
      route: rawRoute(good.subarray(0, 200), 'cut', good.length),
      // How much of it arrives before the close is seen depends on timing.
      error: /the download from .* broke off after \d+ bytes: the member closed the connection/,
    },
    { name: 'not a backup', route: rawRoute(Buffer.from('<html>hello</html>')), error: /is not intact: not a Keel backup \(bad magic/ },
  ];
  for (const c of cases) {
    const url = await member(t, c.route);
    const file = path.join(dir, `${c.name.replace(/ /g, '-')}.db`);
    const r = await keel(['snapshot', 'save', file, '--endpoints', url]);
    t.equal(r.code, 1, `${c.name}: exit 1`);
    t.match(r.stderr, c.error, `${c.name}: says why`);
    t.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} was not written`));
    t.equal(r.stdout, '');
    t.notOk(existsSync(file), `${c.name}: no FILE`);
    t.notOk(existsSync(`${file}.part`), `${c.name}: no FILE.part`);
  }

  // An older backup at FILE survives a failed save.
  const file = path.join(dir, 'kept.db');
  await fsp.writeFile(file, good);
  const r = await keel(['snapshot', 'save', file, '--endpoints', await member(t, rawRoute(flipped))]);
  t.equal(r.code, 1);
  t.same(await fsp.readFile(file), good, 'the previous FILE is untouched');
});

t.test('save reports the member\'s refusal and a member that stops sending', async (t) => {
  const dir = await tempDir(t);
  const refusing = await member(t, {
    method: 'POST',
    path: SNAPSHOT_PATH,
    handle: (req, res) => {
      req.resume();
      sendKvError(res, Errors.starting());
    },
  });
  const r = await keel(['snapshot', 'save', path.join(dir, 'x.db'), '--endpoints', refusing]);
  t.equal(r.code, 1);
  t.equal(r.stderr, `Error: snapshot from ${refusing} refused: ${Errors.starting().message}\n`);

  const silent: http.ServerResponse[] = [];
  const stalled = await member(t, {
    method: 'POST',
    path: SNAPSHOT_PATH,
    handle: (req, res) => {
      req.resume();
      res.setHeader('Content-Length', 1000);
      res.write(Buffer.from('KEELBKUP'));
      silent.push(res); // and never another byte
    },
  });
  const started = Date.now();
  const s = await keel(['snapshot', 'save', path.join(dir, 'y.db'), '--endpoints', stalled, '--command-timeout', '300']);
  t.equal(s.code, 1);
  t.match(s.stderr, /broke off after 8 bytes: .* sent nothing for 300 ms \(--command-timeout\)/);
  t.ok(Date.now() - started < 5000, 'given up after the idle timeout');
  t.notOk(existsSync(path.join(dir, 'y.db.part')));
  for (const res of silent) res.destroy();
});

t.test('status prints etcdctl\'s hash, revision, total keys and total size', async (t) => {
  const store = await sampleStore(t);
  const good = await goodBackup(t, store);
  const dir = await tempDir(t);
  const file = path.join(dir, 'snap.db');
  await fsp.writeFile(file, good);
  const { data } = parseBackup(good);
  const hash = crc32c(data).toString(16);
  const size = humanBytes(data.length);

  const simple = await keel(['snapshot', 'status', file]);
  t.same(simple, { code: 0, stdout: `${hash}, 6, 2, ${size}\n`, stderr: '' }, 'revision 6, live keys a and c');
  const json = await keel(['snapshot', 'status', file, '-w', 'json']);
  t.same(JSON.parse(json.stdout), { hash: crc32c(data), revision: 6, totalKey: 2, totalSize: data.length });
  t.equal((await keel(['snapshot', 'status', file, '--json'])).stdout, json.stdout);
  const table = await keel(['snapshot', 'status', file, '-w', 'table']);
  const widths = [Math.max(4, hash.length), 8, 10, Math.max(10, size.length)];
  const rule = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  t.equal(table.stdout.split('\n')[0], rule);
  t.match(table.stdout, /\| +HASH +\| REVISION \| TOTAL KEYS \| +TOTAL SIZE +\|/);
  t.match(table.stdout, new RegExp(`\\| ${hash} +\\| +6 \\| +2 \\| +${size} \\|`));
  const badFormat = await keel(['snapshot', 'status', file, '-w', 'yaml']);
  t.equal(badFormat.code, 2);
  t.match(badFormat.stderr, /Invalid values:[\s\S]*write-out/);
});

t.test('status and restore refuse a damaged or missing file', async (t) => {
  const store = await sampleStore(t);
  const good = await goodBackup(t, store);
  const dir = await tempDir(t);
  const flipped = Buffer.from(good);
  flipped[good.length - 100] ^= 0x01;
  const bad = path.join(dir, 'flipped.db');
  await fsp.writeFile(bad, flipped);
  const inHeader = Buffer.from(good);
  inHeader[good.indexOf('"revision"') + 1] ^= 0x20;
  const badHeader = path.join(dir, 'header.db');
  await fsp.writeFile(badHeader, inHeader);
  const short = path.join(dir, 'short.db');
  await fsp.writeFile(short, good.subarray(0, good.length - 1));
  // Intact framing, hashed correctly, around a dump that is not one.
  const forged = Buffer.from(good);
  forged.write('XEELMVCC', good.indexOf('KEELMVCC'), 'latin1');
  const rehashed = Buffer.concat([
    forged.subarray(0, forged.length - 32),
    createHash('sha256').update(forged.subarray(0, forged.length - 32)).digest(),
  ]);
  const notDump = path.join(dir, 'notdump.db');
  await fsp.writeFile(notDump, rehashed);

  const cases: [string, RegExp][] = [
    [bad, /sha256 mismatch: .* \(the file is corrupt\)/],
    [badHeader, /sha256 mismatch: .* \(the file is corrupt; header field revision is undefined/],
    [short, /truncated: \d+ bytes of the \d+ its header announces/],
    [notDump, /the store dump inside is invalid: mvcc store: invalid snapshot data: not a keel-mvcc snapshot/],
    [path.join(dir, 'missing.db'), /does not exist/],
  ];
  for (const [file, why] of cases) {
    const s = await keel(['snapshot', 'status', file]);
    t.equal(s.code, 1, `status ${path.basename(file)}`);
    t.match(s.stderr, new RegExp(`^Error: snapshot file ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[: ]`), 'names the file');
    t.match(s.stderr, why);
    t.equal(s.stdout, '');
    const target = path.join(dir, `restored-${path.basename(file)}`);
    const r = await keel(['snapshot', 'restore', file, '--name', 'n1', '--initial-cluster', 'n1=http://127.0.0.1:7001', '--data-dir', target]);
    t.equal(r.code, 1, `restore ${path.basename(file)}`);
    t.match(r.stderr, why);
    t.notOk(existsSync(target), 'no data dir made');
  }
});

t.test('restore builds a data dir per member of the new cluster', async (t) => {
  const store = await sampleStore(t);
  const dir = await tempDir(t);
  const file = path.join(dir, 'snap.db');
  await fsp.writeFile(file, await goodBackup(t, store));
  const cluster = 'n1=http://127.0.0.1:7001,n2=http://127.0.0.1:7002';
  const members = [
    { name: 'n1', peerUrl: 'http://127.0.0.1:7001' },
    { name: 'n2', peerUrl: 'http://127.0.0.1:7002' },
  ];
  const clusterId = clusterIdOf(members, 'new-token');

  const d1 = path.join(dir, 'd1');
  const r1 = await keel(['snapshot', 'restore', file, '--name', 'n1', '--initial-cluster', cluster, '--initial-cluster-token', 'new-token', '--data-dir', d1]);
  t.same(r1, {
    code: 0,
    stdout:
      `Restored snapshot ${file} to ${d1}: member n1 (${memberIdOf(members[0].peerUrl, 'new-token')}) of new cluster ` +
      `${clusterId}, revision 6, raft index ${store.appliedIndex()}\n`,
    stderr: '',
  });
  const d2 = path.join(dir, 'd2');
  const r2 = await keel([
    'snapshot', 'restore', file, '--name', 'n2', '--initial-cluster', cluster, '--initial-cluster-token', 'new-token',
    '--initial-advertise-peer-urls', 'http://127.0.0.1:7002', '--data-dir', d2, '-w', 'json',
  ]);
  t.equal(r2.code, 0);
  t.same(JSON.parse(r2.stdout), {
    dataDir: d2,
    name: 'n2',
    memberId: memberIdOf(members[1].peerUrl, 'new-token'),
    clusterId,
    revision: 6,
    raftIndex: store.appliedIndex(),
    raftTerm: 1,
  });
  t.equal((await readIdentity(d1))?.clusterId, clusterId);
  t.equal((await readIdentity(d2))?.clusterId, clusterId, 'both members are of one new cluster');
  t.equal((await readBackupFile(file)).header.revision, 6, 'the file is only read');

  // A one-member cluster from --initial-advertise-peer-urls alone, with the default token.
  const d3 = path.join(dir, 'd3');
  const r3 = await keel(['snapshot', 'restore', file, '--name', 'solo', '--initial-advertise-peer-urls', 'http://127.0.0.1:7009', '--data-dir', d3]);
  t.equal(r3.code, 0);
  t.same((await readIdentity(d3))?.initialCluster.map((m) => m.peerUrl), ['http://127.0.0.1:7009']);

  const again = await keel(['snapshot', 'restore', file, '--name', 'n1', '--initial-cluster', cluster, '--data-dir', d1]);
  t.equal(again.code, 1);
  t.match(again.stderr, /^Error: data dir .*d1 exists and is not empty/);
});

t.test('restore: bad flags are usage errors', async (t) => {
  const cases: [string[], RegExp][] = [
    [['--name', 'n1', '--data-dir', 'd'], /needs --initial-cluster \(or --initial-advertise-peer-urls/],
    [['--name', 'n3', '--initial-cluster', 'n1=http://127.0.0.1:7001', '--data-dir', 'd'], /--initial-cluster does not name this member "n3" \(it has n1\)/],
    [['--name', 'n1', '--initial-cluster', 'n1=127.0.0.1:7001', '--data-dir', 'd'], /--initial-cluster: "127\.0\.0\.1:7001" is not a URL|must use http/],
    [['--name', 'n1', '--initial-cluster', 'n1:http://127.0.0.1:7001', '--data-dir', 'd'], /is not NAME=PEER-URL/],
    [
      ['--name', 'n1', '--initial-cluster', 'n1=http://127.0.0.1:7001', '--initial-advertise-peer-urls', 'http://127.0.0.1:7002', '--data-dir', 'd'],
      /--initial-cluster gives "n1" the peer URL http:\/\/127\.0\.0\.1:7001, but --initial-advertise-peer-urls is http:\/\/127\.0\.0\.1:7002/,
    ],
    [['--name', 'n 1', '--initial-cluster', 'n1=http://127.0.0.1:7001', '--data-dir', 'd'], /--name "n 1" must not contain/],
    [['--name', 'n1', '--initial-cluster', 'n1=http://127.0.0.1:7001', '--initial-cluster-token', '', '--data-dir', 'd'], /token must not be empty|Not enough arguments/],
    [['--name', 'n1', '--initial-cluster', 'n1=http://127.0.0.1:7001'], /Missing required argument: data-dir/],
    [['--name', 'n1', '--initial-cluster', 'n1=http://127.0.0.1:7001', '--data-dir', ' '], /--data-dir must not be empty/],
  ];
  for (const [flags, why] of cases) {
    const r = await keel(['snapshot', 'restore', '/nonexistent/snap.db', ...flags]);
    t.equal(r.code, 2, flags.join(' '));
    t.match(r.stderr, why);
  }
  const noFile = await keel(['snapshot', 'status']);
  t.equal(noFile.code, 2);
  t.match(noFile.stderr, /Not enough non-option arguments/);
  const empty = await keel(['snapshot', 'save', '']);
  t.equal(empty.code, 2);
  t.match(empty.stderr, /the snapshot file name must not be empty/);
});
