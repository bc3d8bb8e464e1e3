import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { BUG_NAMES, BUG_SWITCHES, brokenBugsJs, prepareBrokenDist, repoRoot } from '../../jepsen/broken/build';
import { parseRunArgs } from '../../jepsen/run/options';
import { formatSummary, runJepsen } from '../../jepsen/run/runner';

const root = repoRoot();
const dir = mkdtempSync(join(tmpdir(), 'keel-jepsen-broken-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** BUGS and the other exports of a bugs.js, loaded in a fresh node process (no require cache shared with us). */
function loadBugs(file: string): Record<string, unknown> {
  const r = spawnSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(file)})))`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`loading ${file}: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

t.test('each broken build turns on its one switch in a copy; the production dist is untouched', async (t) => {
  const prodBugs = join(root, 'dist', 'bugs.js');
  const before = readFileSync(prodBugs, 'utf8');
  const mtime = statSync(prodBugs).mtimeMs;
  const production = loadBugs(prodBugs);
  t.same(production.BUGS, { readsWithoutReadIndex: false, ackBeforeFsync: false, commitByCounting: false });

  for (const bug of BUG_NAMES) {
    const runDir = join(dir, bug);
    mkdirSync(runDir);
    const dist = prepareBrokenDist(bug, runDir);
    t.equal(dist, join(runDir, 'dist-broken', 'dist'));
    t.ok(existsSync(join(dist, 'cli', 'main.js')), 'the whole dist is copied');
    const broken = loadBugs(join(dist, 'bugs.js'));
    const want = { readsWithoutReadIndex: false, ackBeforeFsync: false, commitByCounting: false, [BUG_SWITCHES[bug]]: true };
    t.same(broken.BUGS, want, `${bug}: only ${BUG_SWITCHES[bug]} is on`);
    t.equal(broken.LAZY_WAL_MS, production.LAZY_WAL_MS, 'the other exports are carried over');
    // the copy runs: its modules, proto files and package.json are found through the links next to it
    const r = spawnSync(process.execPath, [join(dist, 'cli', 'main.js'), '--help'], { encoding: 'utf8', timeout: 20_000 });
    t.equal(r.status, 0, `${bug}: the broken build starts (${r.stderr.slice(0, 300)})`);
  }
  t.equal(readFileSync(prodBugs, 'utf8'), before, 'production bugs.js unchanged');
  t.equal(statSync(prodBugs).mtimeMs, mtime);
});

t.test('a dist/ reached through a symlink is copied, never written through', async (t) => {
  // The repository root of a checkout whose dist/ is a link (as a tool or a person may set one up): the
  // broken build must be a real copy, and the dist the link points to must keep its bugs.js.
  const real = join(dir, 'real-dist');
  cpSync(join(root, 'dist'), real, { recursive: true });
  const linkedRoot = join(dir, 'linked-root');
  mkdirSync(linkedRoot);
  for (const n of ['node_modules', 'proto', 'package.json']) symlinkSync(join(root, n), join(linkedRoot, n));
  symlinkSync(real, join(linkedRoot, 'dist'));
  const before = readFileSync(join(real, 'bugs.js'), 'utf8');
  const dist = prepareBrokenDist('ack-before-fsync', join(dir, 'linked-run'), linkedRoot);
  t.notOk(lstatSync(dist).isSymbolicLink(), 'the copy is a directory, not the link');
  t.equal(readFileSync(join(real, 'bugs.js'), 'utf8'), before, 'the linked dist is untouched');
  t.match(loadBugs(join(dist, 'bugs.js')).BUGS, { ackBeforeFsync: true });
  t.throws(() => prepareBrokenDist('stale-reads', join(real, 'inside'), linkedRoot), /must not overlap the production dist/);
  t.notOk(existsSync(join(real, 'inside')), 'nothing created inside the production dist');
  t.throws(() => prepareBrokenDist('stale-reads', join(linkedRoot, 'dist', 'inside'), linkedRoot), /must not overlap the production dist/);
  t.notOk(existsSync(join(real, 'inside')), 'nor through the link');
  t.equal(readFileSync(join(real, 'bugs.js'), 'utf8'), before);
});

t.test('bad inputs are refused with a message naming the problem', async (t) => {
  t.throws(() => prepareBrokenDist('no-such-bug' as never, dir), /unknown bug "no-such-bug": valid names are stale-reads, ack-before-fsync, commit-by-counting/);
  const fakeRoot = join(dir, 'fake-root');
  mkdirSync(join(fakeRoot, 'dist'), { recursive: true });
  t.throws(() => prepareBrokenDist('stale-reads', join(dir, 'x'), fakeRoot), /dist\/bugs\.js does not exist: run `npm run build` first/);
  writeFileSync(join(fakeRoot, 'dist', 'bugs.js'), 'exports.BUGS = { somethingElse: false };');
  t.throws(() => prepareBrokenDist('stale-reads', join(dir, 'x'), fakeRoot), /has no switch readsWithoutReadIndex \(for --broken stale-reads\); it has somethingElse/);
  t.throws(() => brokenBugsJs('exports.NOPE = 1;', 'stale-reads'), /exports no BUGS object/);
  t.throws(() => brokenBugsJs('exports.BUGS = { readsWithoutReadIndex: false }; exports.f = function () {};', 'stale-reads'), /export f is a function/);
});

t.test('the stale-reads build is caught by a short seeded run, with reads on every member', async (t) => {
  // Seconds are enough: without ReadIndex, a follower that has not yet applied the leader's latest write
  // answers with the value before it, and the partitions and pauses make such windows long.
  const out = join(dir, 'stale-reads-run');
  const opts = parseRunArgs([
    '--broken', 'stale-reads', '--workload', 'register', '--nemesis', 'partition,pause',
    '--time-limit', '12', '--interval', '1', '--fault', '5', '--seed', '1', '--concurrency', '12', '--out', out,
  ]);
  const r = await runJepsen(opts, { progress: () => {}, handleSigint: false });
  t.comment(formatSummary(r));
  t.equal(r.error, undefined);
  t.equal(r.verdict, 'invalid', 'caught');
  t.equal(r.exitCode, 1);
  const log = readFileSync(join(out, 'n1.log'), 'utf8');
  t.match(log, new RegExp(`harness: starting n1: \\S+ ${join(out, 'dist-broken', 'dist', 'cli', 'main.js').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `), 'the members ran the broken copy');
  t.match(readFileSync(join(out, 'report.html'), 'utf8'), /Overall: <span class="invalid">invalid<\/span>/);
  t.ok(existsSync(join(out, 'n1')), 'an invalid run keeps the member data as evidence');
});
