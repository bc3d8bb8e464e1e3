// Backup and restore with real processes: a 3-member cluster with history (versions, a deletion, a lease, a
// compaction); `keel snapshot save` from a follower; `keel snapshot status`; `keel snapshot restore` into three
// new data dirs; a new 3-member cluster started on them serves the same keys, revisions, history and lease,
// under a new cluster id, and takes writes. A damaged copy of the file is refused by status and restore.

import { existsSync, promises as fsp } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parseBackup } from '../../src/server/backup-file';
import { keel } from '../cli/fixtures/helpers';
import { ProcCluster, putMany } from './fixtures/proc-cluster';

const TOKEN = 'restored-cluster';

t.test('save from a follower, restore into a new 3-member cluster that serves the same data', async (t) => {
  const old = await ProcCluster.start(3);
  t.teardown(async () => {
    await old.stopAll();
    old.cleanup();
  });
  const leader = await old.waitForLeader(15_000);
  const client = old.client();
  await putMany(client, 'br/', 200, 8);
  const first = await client.put('br/x', 'one');
  const compactTo = first.header.revision;
  await client.put('br/x', 'two');
  await client.delete('br/000007');
  const lease = await client.leaseGrant(600);
  await client.put('br/leased', 'with a lease', { lease: lease.id });
  await client.compact(compactTo);
  const last = await client.put('br/last', 'z');
  const all = await client.get('br/', { prefix: true });
  t.equal(all.count, 202, '199 + x + leased + last');
  const atFirst = await client.get('br/x', { revision: first.header.revision });

  // A follower's applied state is its own: wait until it has everything, then back it up.
  const follower = [0, 1, 2].find((i) => i !== leader) ?? 0;
  const leaderIndex = (await old.status(leader))?.raftAppliedIndex ?? 0;
  const followerStatus = await old.waitForApplied(follower, leaderIndex, 10_000);
  const file = path.join(old.dir, 'backup.db');
  const save = await keel(['snapshot', 'save', file, '--endpoints', old.members[follower].clientUrl]);
  t.same(save, { code: 0, stdout: `Snapshot saved at ${file}\n`, stderr: '' });
  const { header } = parseBackup(await fsp.readFile(file));
  t.equal(header.memberId, followerStatus.header.memberId, 'the snapshot was taken by the follower');
  t.equal(header.revision, last.header.revision);

  const status = await keel(['snapshot', 'status', file, '-w', 'json']);
  t.equal(status.code, 0);
  t.match(JSON.parse(status.stdout), { revision: last.header.revision, totalKey: 202 });
  await old.stopAll();

  // Restore into the data dirs of a new cluster on new ports, with a new token.
  const neu = await ProcCluster.create(3, { extraFlags: { 'initial-cluster-token': TOKEN } });
  t.teardown(async () => {
    await neu.stopAll();
    neu.cleanup();
  });
  const initialCluster = neu.members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
  for (const m of neu.members) {
    const r = await keel([
      'snapshot', 'restore', file, '--name', m.name, '--initial-cluster', initialCluster,
      '--initial-cluster-token', TOKEN, '--data-dir', m.dataDir,
    ]);
    t.equal(r.code, 0, `restored ${m.name}`);
    t.equal(r.stderr, '');
  }
  neu.startAll();
  await neu.waitForLeader(15_000);
  const nc = neu.client();
  const got = await nc.get('br/', { prefix: true });
  t.same(got.kvs, all.kvs, 'the same keys, values, create and mod revisions, versions and leases');
  t.equal(got.header.revision, last.header.revision, 'the same revision');
  t.not(got.header.clusterId, all.header.clusterId, 'a new cluster id');
  t.same((await nc.get('br/x', { revision: first.header.revision })).kvs, atFirst.kvs, 'an old revision reads the same');
  await t.rejects(nc.get('br/x', { revision: compactTo - 1 }), /required revision has been compacted/, 'and the compaction holds');
  t.ok((await nc.leaseLeases()).leases.some((l) => l.id === lease.id), 'the lease is there');
  const ttl = await nc.leaseTimeToLive(lease.id, { keys: true });
  t.same(ttl.keys.map((k) => k.toString()), ['br/leased'], 'with its key');
  const p = await nc.put('br/after', 'restore');
  t.equal(p.header.revision, last.header.revision + 1, 'a write takes the next revision');
  // Every member applies the log from the restored snapshot on: each serves every key from its own state.
  const index = Math.max(...(await Promise.all([0, 1, 2].map(async (i) => (await neu.status(i))?.raftAppliedIndex ?? 0))));
  for (let i = 0; i < 3; i++) {
    await neu.waitForApplied(i, index, 10_000);
    const local = await neu.client([neu.members[i].clientUrl]).get('br/', { prefix: true, serializable: true, countOnly: true });
    t.equal(local.count, 203, `${neu.members[i].name} holds every key`);
  }

  // A damaged copy is refused by status and by restore, which builds nothing.
  const damaged = path.join(neu.dir, 'damaged.db');
  const bytes = await fsp.readFile(file);
  bytes[Math.floor(bytes.length / 2)] ^= 0x04;
  await fsp.writeFile(damaged, bytes);
  const st = await keel(['snapshot', 'status', damaged]);
  t.equal(st.code, 1);
  t.match(st.stderr, /sha256 mismatch: .*\(the file is corrupt\)/);
  const target = path.join(neu.dir, 'never');
  const rr = await keel([
    'snapshot', 'restore', damaged, '--name', 'n1', '--initial-cluster', initialCluster,
    '--initial-cluster-token', TOKEN, '--data-dir', target,
  ]);
  t.equal(rr.code, 1);
  t.match(rr.stderr, /sha256 mismatch/);
  t.notOk(existsSync(target), 'no data dir built from a damaged file');
});
