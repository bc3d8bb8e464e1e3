// The compiled `keel` binary end to end: a real 3-member cluster (cluster up --detach), put/get through
// it, endpoint status, cluster status, restart of a killed member, cluster down; `keel node` on a port in
// use; and a 1-member cluster in the foreground stopped by SIGTERM. Every member pid is killed at the end.

import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { pidExists } from '../../src/cli/procs';
import { freePortRange, unusedPort } from './fixtures/helpers';

const ROOT = path.resolve(__dirname, '../..');
const MAIN = path.join(ROOT, 'dist/cli/main.js');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** Compiles the project when dist/ is missing or older than src/ (`npm test` compiles first anyway). */
function ensureBuilt(t: Test): void {
  if (fs.existsSync(MAIN) && fs.statSync(MAIN).mtimeMs >= newestMtime(path.join(ROOT, 'src'))) return;
  const r = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', ROOT], {
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (r.status !== 0) t.comment(`tsc exited with ${r.status}:\n${r.stdout}${r.stderr}`);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function keelBin(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

interface ClusterJson {
  members: { name: string; pid: number | null; clientUrl: string; peerUrl: string; dataDir: string }[];
  endpoints: string;
}

function readCluster(dir: string): ClusterJson {
  return JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as ClusterJson;
}

/** Kills (SIGKILL) every pid this test saw in cluster.json, at the end, whatever happened. */
function trackPids(t: Test, dir: string): (pids: (number | null)[]) => void {
  const seen = new Set<number>();
  t.teardown(() => {
    try {
      for (const m of readCluster(dir).members) if (m.pid !== null) seen.add(m.pid);
    } catch {
      // no cluster.json
    }
    for (const pid of seen) {
      if (pidExists(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
    }
  });
  return (pids) => {
    for (const p of pids) if (p !== null) seen.add(p);
  };
}

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-cluster-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('a 3-member cluster through the keel binary', async (t) => {
  ensureBuilt(t);
  const dir = tempDir(t);
  const track = trackPids(t, dir);
  const base = await freePortRange(6);

  const up = await keelBin(['cluster', 'up', '--nodes', '3', '--dir', dir, '--base-port', String(base), '--detach']);
  if (fs.existsSync(path.join(dir, 'cluster.json'))) track(readCluster(dir).members.map((m) => m.pid));
  t.equal(up.code, 0, up.stderr);
  const urls = [0, 1, 2].map((i) => `http://127.0.0.1:${base + 2 * i}`);
  t.match(up.stdout, new RegExp(`^ENDPOINTS=${urls.join(',')}\n`));
  t.match(up.stdout, /leader: n[123]\n/);
  const cf = readCluster(dir);
  t.same(
    cf.members.map((m) => [m.name, m.clientUrl, m.peerUrl, m.dataDir]),
    [0, 1, 2].map((i) => [`n${i + 1}`, urls[i], `http://127.0.0.1:${base + 2 * i + 1}`, path.join(dir, `n${i + 1}`)]),
  );
  t.equal(cf.endpoints, urls.join(','));
  for (const m of cf.members) {
    t.ok(m.pid !== null && pidExists(m.pid), `${m.name} runs`);
    t.ok(fs.existsSync(path.join(dir, `${m.name}.log`)), `${m.name} has its log`);
  }

  const ep = { KEEL_ENDPOINTS: cf.endpoints };
  t.same(await keelBin(['put', 'greeting', 'hello'], ep), { code: 0, stdout: 'OK\n', stderr: '' });
  t.same(await keelBin(['put', 'greeting', 'hi', '--prev-kv'], ep), {
    code: 0,
    stdout: 'OK\ngreeting\nhello\n',
    stderr: '',
  });
  t.equal(
    (await keelBin(['get', 'greeting', '--endpoints', urls[2]])).stdout,
    'greeting\nhi\n',
    'a follower or the leader answers',
  );
  t.equal((await keelBin(['get', 'gr', '--prefix', '--print-value-only', '--endpoints', urls[1]])).stdout, 'hi\n');

  const st = await keelBin(['endpoint', 'status', '--json'], ep);
  t.equal(st.code, 0, st.stderr);
  const statuses = JSON.parse(st.stdout) as {
    Endpoint: string;
    Status: { header: { member_id: string }; leader: string; name: string; raftTerm: string; raftIndex: string };
  }[];
  t.same(
    statuses.map((s) => [s.Endpoint, s.Status.name]),
    urls.map((u, i) => [u, `n${i + 1}`]),
  );
  const leaders = statuses.filter((s) => s.Status.leader === s.Status.header.member_id);
  t.equal(leaders.length, 1, 'exactly one leader');
  t.equal(new Set(statuses.map((s) => s.Status.leader)).size, 1, 'every member knows the same leader');
  t.equal((await keelBin(['endpoint', 'health'], ep)).code, 0);
  const table = await keelBin(['endpoint', 'status'], ep);
  t.match(table.stdout, /ENDPOINT .*\| DB SIZE \| ERRORS \|/);

  const cs = await keelBin(['cluster', 'status', '--dir', dir, '--json']);
  t.equal(cs.code, 0, cs.stderr);
  const rows = JSON.parse(cs.stdout) as { name: string; alive: boolean; isLeader?: boolean; raftIndex?: number }[];
  t.same(
    rows.map((r) => [r.name, r.alive]),
    [
      ['n1', true],
      ['n2', true],
      ['n3', true],
    ],
  );
  t.equal(rows.filter((r) => r.isLeader === true).length, 1);
  const csTable = await keelBin(['cluster', 'status', '--dir', dir]);
  t.match(csTable.stdout, /\| NAME \| +PID +\| ALIVE \|/);

  // `keel node` on a port that a member holds: a clear error, exit 1.
  const clash = await keelBin([
    'node',
    '--name',
    'x',
    '--data-dir',
    path.join(dir, 'x'),
    '--listen-client-urls',
    urls[0],
    '--listen-peer-urls',
    `http://127.0.0.1:${await unusedPort()}`,
  ]);
  t.equal(clash.code, 1);
  t.match(clash.stderr, `Error: client URL ${urls[0]}: port ${base} is already in use`);

  // A killed member: cluster status sees it, cluster up restarts only it, on its old data.
  const n2 = readCluster(dir).members[1];
  const oldPid = n2.pid as number;
  process.kill(oldPid, 'SIGKILL');
  await until('n2 to die', 10_000, async () => (pidExists(oldPid) ? undefined : true));
  const cs2 = JSON.parse((await keelBin(['cluster', 'status', '--dir', dir, '--json'])).stdout) as { alive: boolean }[];
  t.same(
    cs2.map((r) => r.alive),
    [true, false, true],
  );
  const again = await keelBin(['cluster', 'up', '--dir', dir, '--nodes', '5', '--detach']);
  track(readCluster(dir).members.map((m) => m.pid));
  t.equal(again.code, 0, again.stderr);
  t.match(again.stderr, /ignoring --nodes 5/);
  t.match(again.stderr, /already running: n1 \(pid \d+\), n3 \(pid \d+\); starting n2/);
  const after = readCluster(dir);
  t.not(after.members[1].pid, oldPid, 'n2 has a new pid');
  t.equal(after.members[0].pid, cf.members[0].pid, 'n1 untouched');
  t.equal(after.members[2].pid, cf.members[2].pid, 'n3 untouched');
  const local = await until('n2 to serve the old data', 15_000, async () => {
    const r = await keelBin(['get', 'greeting', '--consistency', 's', '--endpoints', urls[1]]);
    return r.stdout === 'greeting\nhi\n' ? r : undefined;
  });
  t.equal(local.code, 0);

  const pids = readCluster(dir).members.map((m) => m.pid as number);
  const down = await keelBin(['cluster', 'down', '--dir', dir]);
  t.equal(down.code, 0, down.stderr);
  for (const [i, pid] of pids.entries()) t.match(down.stdout, `stopped n${i + 1} (pid ${pid})`);
  for (const pid of pids) t.notOk(pidExists(pid), `pid ${pid} is gone`);
  t.same(
    readCluster(dir).members.map((m) => m.pid),
    [null, null, null],
  );
  const cs3 = JSON.parse((await keelBin(['cluster', 'status', '--dir', dir, '--json'])).stdout) as {
    alive: boolean;
    error: string;
  }[];
  t.same(
    cs3.map((r) => [r.alive, r.error]),
    [
      [false, 'not running'],
      [false, 'not running'],
      [false, 'not running'],
    ],
  );
  const downAgain = await keelBin(['cluster', 'down', '--dir', dir]);
  t.equal(downAgain.code, 0);
  t.match(downAgain.stdout, 'no member is running');
});

t.test('cluster up in the foreground: reports a member that dies, stops the rest on SIGTERM', async (t) => {
  ensureBuilt(t);
  const dir = tempDir(t);
  const track = trackPids(t, dir);
  const base = await freePortRange(6);
  const cli = spawn(
    process.execPath,
    [MAIN, 'cluster', 'up', '--nodes', '3', '--dir', dir, '--base-port', String(base)],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  t.teardown(() => {
    if (cli.exitCode === null && cli.signalCode === null) cli.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  cli.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  cli.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
  await until('the cluster to be up', 30_000, async () => {
    if (cli.exitCode !== null) throw new Error(`cluster up exited: ${stderr}`);
    return stderr.includes('runs in the foreground') ? true : undefined;
  });
  const cf = readCluster(dir);
  track(cf.members.map((m) => m.pid));
  t.match(stdout, `ENDPOINTS=${cf.endpoints}\n`);
  const pids = cf.members.map((m) => m.pid as number);
  for (const pid of pids) t.ok(pidExists(pid));

  process.kill(pids[1], 'SIGKILL');
  await until('the death of n2 to be reported', 10_000, async () =>
    stderr.includes(
      `member n2 (pid ${pids[1]}) was killed by SIGKILL; see ${path.join(dir, 'n2.log')}; 2 members still running`,
    )
      ? true
      : undefined,
  );
  t.same(
    readCluster(dir).members.map((m) => m.pid),
    [pids[0], null, pids[2]],
  );
  t.same(await keelBin(['put', 'a', 'b', '--endpoints', cf.endpoints]), { code: 0, stdout: 'OK\n', stderr: '' });

  cli.kill('SIGTERM');
  t.equal(await exited, 0, stderr);
  t.match(stderr, /SIGTERM received: stopping 2 members/);
  for (const pid of pids) t.notOk(pidExists(pid), `pid ${pid} is gone`);
  t.same(
    readCluster(dir).members.map((m) => m.pid),
    [null, null, null],
  );
});
