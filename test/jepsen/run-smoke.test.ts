// The smoke run of issue 7: 3 Keel members, 20 s of the register workload under partitions and kills, checked
// valid, with the run directory complete. Plus the run's flag validation (cheap, no cluster).

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { main } from '../../jepsen/cli';
import { parseHistory } from '../../jepsen/formats';
import { defaultRunName, parseRunArgs } from '../../jepsen/run/options';
import { formatSummary, runJepsen, type RunRecord } from '../../jepsen/run/runner';

const dir = mkdtempSync(join(tmpdir(), 'keel-jepsen-run-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

t.test('run flags: defaults, values, and a clear error for each bad one', async (t) => {
  const d = parseRunArgs([], 1234);
  t.match(d, { target: 'keel', nodes: 3, workload: 'register', nemeses: ['partition', 'kill'], timeLimitS: 60, concurrency: 10, intervalS: 5, faultS: 5, seed: 1234, opTimeoutMs: 2000 });
  const o = parseRunArgs(['--target=etcd', '--nodes', '5', '--workload', 'set', '--nemesis', 'kill,pause,kill', '--time-limit', '2.5', '--seed', '9', '--out', '/x']);
  t.match(o, { target: 'etcd', nodes: 5, workload: 'set', nemeses: ['kill', 'pause'], timeLimitS: 2.5, seed: 9, out: '/x' });
  t.same(parseRunArgs(['--nemesis', 'none']).nemeses, []);
  t.match(defaultRunName(o, new Date(Date.UTC(2026, 0, 2, 3, 4, 5))), /^20260102T030405Z-set-kill\+pause$/);

  const bad: [string[], RegExp][] = [
    [['--nodes', '4'], /--nodes must be 3, 5 or 7, got "4"/],
    [['--target', 'zk'], /--target must be keel or etcd, got "zk"/],
    [['--workload', 'queue'], /--workload must be one of register, .*, got "queue"/],
    [['--nemesis', 'kill,flood'], /--nemesis: unknown nemesis "flood"/],
    [['--time-limit', '0'], /--time-limit needs a number of seconds between 1 and 86400, got "0"/],
    [['--concurrency', '2.5'], /--concurrency needs an integer between 1 and 1000, got "2.5"/],
    [['--seed', '-1'], /--seed needs an integer between 0 and 4294967295, got "-1"/],
    [['--seed', 'abc'], /--seed needs an integer between 0 and 4294967295, got "abc"/],
    [['--op-timeout', '5'], /--op-timeout needs an integer of ms between 10 and 600000, got "5"/],
    [['--broken', 'typo'], /--broken must be one of stale-reads, ack-before-fsync, commit-by-counting, got "typo"/],
    [['--broken', 'stale-reads', '--target', 'etcd'], /--broken stale-reads is a Keel build: it needs --target keel/],
    [['--nodes', '3', '--nodes', '5'], /--nodes is given twice/],
    [['--interval'], /--interval needs a value/],
    [['--frobnicate'], /unknown option --frobnicate/],
  ];
  for (const [args, message] of bad) {
    t.throws(() => parseRunArgs(args), message, args.join(' '));
    let err = '';
    const code = await main(['run', ...args], { out: () => {}, err: (s) => (err += s) });
    t.equal(code, 2, `exit 2 for ${args.join(' ')}`);
    t.match(err, message);
  }
});

t.test('smoke: 3 Keel members, 20 s of register under partition and kill, valid', async (t) => {
  const out = join(dir, 'smoke');
  const progress: string[] = [];
  const opts = parseRunArgs([
    '--nodes', '3', '--time-limit', '20', '--nemesis', 'partition,kill', '--workload', 'register',
    '--interval', '2', '--fault', '4', '--seed', '42', '--concurrency', '8', '--out', out,
  ]);
  const r = await runJepsen(opts, { progress: (l) => progress.push(l), handleSigint: false });
  t.comment(formatSummary(r));
  t.equal(r.error, undefined, 'no error');
  t.equal(r.verdict, 'valid');
  t.equal(r.exitCode, 0);
  t.ok((r.counts.total?.ok ?? 0) > 100, `operations happened (${r.counts.total?.ok} ok)`);
  t.ok(r.nemesis.length >= 2, `faults were injected (${r.nemesis.map((n) => n.kind).join(', ')})`);
  t.ok(r.nemesis.every((n) => n.stopNs !== undefined), 'every fault was repaired');

  for (const f of ['history.jsonl', 'results.json', 'report.html', 'jepsen.log', 'n1.log', 'n2.log', 'n3.log']) {
    t.ok(existsSync(join(out, f)), `${f} in the run directory`);
  }
  const record = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as RunRecord;
  t.equal(record.verdict, 'valid');
  t.equal(record.seed, 42);
  t.same(record.verdicts.map((v) => [v.checker, v.verdict]), [['linearizable', 'valid']]);
  t.equal(record.options.timeLimitS, 20);
  t.ok(record.durationsMs.workload! >= 19_000, `the workload ran its time (${record.durationsMs.workload} ms)`);
  t.equal(record.nodes.length, 3);
  t.ok(record.nodes.every((n) => !existsSync(n.dataDir)), 'a valid run leaves no member data behind');

  const events = parseHistory(readFileSync(join(out, 'history.jsonl'), 'utf8'), 'jsonl');
  t.ok(events.some((e) => e.process === 'nemesis' && /^start-(partition|kill)$/.test(e.f)), 'faults in the history');
  t.equal(record.ops.total!.ok + record.ops.total!.fail + record.ops.total!.info, events.filter((e) => e.type === 'invoke').length);
  const html = readFileSync(join(out, 'report.html'), 'utf8');
  t.match(html, /<g class="nemesis" data-kind="(partition|kill)"/);
  t.match(html, /<circle class="op ok"/);
  t.match(readFileSync(join(out, 'n1.log'), 'utf8'), /"msg"/, 'the member logged');

  // the saved history checks valid through `check` too
  const code = await main(['check', '--workload', 'register', '--history', join(out, 'history.jsonl'), '--workers', '1'], { out: () => {}, err: () => {} });
  t.equal(code, 0);
});
