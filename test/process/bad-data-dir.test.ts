// A member refuses, with an error that names the problem, to start on a data dir of another cluster or on a
// WAL with a corrupt record in the middle; the data is left as it was.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { ProcCluster, putMany } from './fixtures/proc-cluster';

const MAIN = path.resolve(__dirname, '../../dist/cli/main.js');

function runNode(args: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [MAIN, 'node', ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

t.test('bad data dirs are refused with a clear error', async (t) => {
  const c = await ProcCluster.start(1);
  t.teardown(async () => {
    await c.stopAll();
    c.cleanup();
  });
  await c.waitForLeader(15_000);
  await putMany(c.client(), 'bd/', 200, 4);
  await c.kill(0, 'SIGTERM');
  const m = c.members[0];

  // The same data dir, but flags that describe another cluster (another token).
  const other = runNode([
    '--name', m.name, '--data-dir', m.dataDir,
    '--listen-client-urls', m.clientUrl, '--listen-peer-urls', m.peerUrl,
    '--initial-cluster', `${m.name}=${m.peerUrl}`, '--initial-cluster-token', 'another-cluster',
  ]);
  t.equal(other.status, 1, 'exit code 1');
  t.match(other.stderr + other.stdout, /belongs to cluster [0-9a-f]{16}.*refusing to start/, 'names the other cluster');

  // A flipped byte in the middle of the WAL: refused with the file and the offset.
  const walDir = path.join(m.dataDir, 'wal');
  const seg = fs.readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort()[0];
  const file = path.join(walDir, seg);
  const before = fs.readFileSync(file);
  const buf = Buffer.from(before);
  // Find the used length (the rest is preallocated zeros) and corrupt a byte a third of the way in.
  let used = buf.length;
  while (used > 0 && buf[used - 1] === 0) used--;
  const at = Math.floor(used / 3);
  buf[at] ^= 0x40;
  fs.writeFileSync(file, buf);
  const corrupt = runNode([
    '--name', m.name, '--data-dir', m.dataDir,
    '--listen-client-urls', m.clientUrl, '--listen-peer-urls', m.peerUrl,
    '--initial-cluster', `${m.name}=${m.peerUrl}`,
  ]);
  t.equal(corrupt.status, 1, 'exit code 1');
  t.match(corrupt.stderr + corrupt.stdout, new RegExp(`corrupt record in .*${seg} at offset \\d+`), 'names the file and offset');
  t.same(fs.readFileSync(file), buf, 'the WAL was not modified by the refused start');

  // Restored to its good bytes, the member starts and still has every key.
  fs.writeFileSync(file, before);
  c.startMember(0);
  await c.waitForLeader(15_000);
  const got = await c.client().get('bd/', { prefix: true, countOnly: true });
  t.equal(got.count, 200, 'all 200 keys are there after the good WAL is back');
});
