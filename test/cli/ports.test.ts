// Port checks and pid checks of `keel cluster`: a port taken by someone else stops `cluster up` before
// it starts anything; a recorded pid counts as a member only if it runs `keel node` with that name and dir.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { checkPort, isMemberProcess, pidExists, processArgs, stopProcesses } from '../../src/cli/procs';
import { writeClusterFile } from '../../src/cli/cluster-file';
import { planMembers } from '../../src/cli/cluster-commands';
import { freePortRange, keel, occupy } from './fixtures/helpers';

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-ports-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('checkPort sees a port in use', async (t) => {
  const base = await freePortRange(1);
  t.equal(await checkPort(base), 'free');
  const held = await occupy(base);
  t.equal(await checkPort(base), 'in-use');
  await held.close();
  t.equal(await checkPort(base), 'free', 'and free again once released');
});

t.test('cluster up names the port in use and starts nothing', async (t) => {
  const dir = tempDir(t);
  const base = await freePortRange(6);
  const held = await occupy(base + 3); // the peer port of n2
  t.teardown(() => held.close());
  const r = await keel([
    'cluster',
    'up',
    '--nodes',
    '3',
    '--dir',
    path.join(dir, 'c'),
    '--base-port',
    String(base),
    '--detach',
  ]);
  t.equal(r.code, 1);
  t.equal(r.stderr, `Error: port ${base + 3} (peer URL of n2) is in use; nothing was started\n`);
  t.equal(r.stdout, '');
  t.notOk(fs.existsSync(path.join(dir, 'c')), 'no directory, no cluster.json, no member');
});

t.test('an even size warns, then the port check still applies', async (t) => {
  const dir = tempDir(t);
  const base = await freePortRange(4);
  const held = await occupy(base);
  t.teardown(() => held.close());
  const r = await keel(['cluster', 'up', '--nodes', '2', '--dir', dir, '--base-port', String(base)]);
  t.equal(r.code, 1);
  t.match(
    r.stderr,
    /^warning: a cluster of 2 members tolerates 0 failures, no more than one of 1, and needs a larger quorum/,
  );
  t.match(r.stderr, `Error: port ${base} (client URL of n1) is in use; nothing was started`);
  t.notOk(fs.existsSync(path.join(dir, 'cluster.json')));
});

t.test('a recorded pid is a member only if it runs keel node with that name and data dir', async (t) => {
  const dir = tempDir(t);
  const dataDir = path.join(dir, 'n1');
  // A stand-in with the arguments cluster up gives a member (node -e ignores the rest).
  const child = spawn(
    process.execPath,
    ['-e', 'setTimeout(() => {}, 60000)', 'node', '--name', 'n1', '--data-dir', dataDir],
    {
      stdio: 'ignore',
    },
  );
  const pid = child.pid as number;
  t.teardown(() => {
    if (pidExists(pid)) process.kill(pid, 'SIGKILL');
  });
  await new Promise((resolve) => child.once('spawn', resolve));
  t.ok(pidExists(pid));
  t.same(processArgs(pid)?.slice(-5), ['node', '--name', 'n1', '--data-dir', dataDir]);
  t.ok(isMemberProcess(pid, { name: 'n1', dataDir }));
  t.notOk(isMemberProcess(pid, { name: 'n2', dataDir }), 'another name');
  t.notOk(isMemberProcess(pid, { name: 'n1', dataDir: '/elsewhere/n1' }), 'another data dir');
  t.notOk(isMemberProcess(process.pid, { name: 'n1', dataDir }), 'this test process is no member');

  // cluster status/down trust only such a pid; a recycled pid (here: this test) is left alone.
  const m = planMembers(dir, 2, 3000);
  writeClusterFile(dir, [
    { ...m[0], pid },
    { ...m[1], pid: process.pid },
  ]);
  const status = await keel(['cluster', 'status', '--dir', dir, '--json', '--command-timeout', '500']);
  t.equal(status.code, 0);
  const rows = JSON.parse(status.stdout) as { name: string; alive: boolean; error?: string }[];
  t.equal(rows[0].alive, true);
  t.match(rows[0].error, /no member reachable/, 'alive, but nothing serves its client URL');
  t.same([rows[1].alive, rows[1].error], [false, 'not running']);

  const exited = new Promise((resolve) => child.once('exit', resolve));
  const down = await keel(['cluster', 'down', '--dir', dir]);
  t.equal(down.code, 0);
  t.match(down.stdout, `stopped n1 (pid ${pid})`);
  t.match(down.stdout, `n2 was not running (pid ${process.pid} is gone)`);
  await exited;
  t.notOk(pidExists(pid));
  const after = JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as {
    members: { pid: number | null }[];
  };
  t.same(
    after.members.map((x) => x.pid),
    [null, null],
  );
});

t.test('stopProcesses escalates to SIGKILL after the timeout', async (t) => {
  const child = spawn(
    process.execPath,
    ['-e', 'process.on("SIGTERM", () => {}); process.stdout.write("ready\\n"); setTimeout(() => {}, 60000)'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const pid = child.pid as number;
  t.teardown(() => {
    if (pidExists(pid)) process.kill(pid, 'SIGKILL');
  });
  await new Promise((resolve) => child.stdout?.once('data', resolve)); // its SIGTERM handler is installed
  const killed = await stopProcesses([pid], 500);
  t.same(killed, [pid]);
  t.notOk(pidExists(pid));
});
