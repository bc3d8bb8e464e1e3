import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID, main } from '../../jepsen/cli';
import { JEPSEN_LOG_KEY, parseEdnValue, parseJepsenLog, parseKvEdn } from '../../jepsen/formats';
import { formatHistory, pairHistory } from '../../jepsen/history';
import { H } from './fixtures/histories';

const FIX = join(__dirname, '..', 'fixtures', 'linearizability');
const dir = mkdtempSync(join(tmpdir(), 'keel-jepsen-cli-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
function file(text: string): string {
  const p = join(dir, `h${n++}.jsonl`);
  writeFileSync(p, text);
  return p;
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (s) => (out += s + '\n'), err: (s) => (err += s + '\n') });
  return { code, out, err };
}

t.test('exit 0 for a valid history', async (t) => {
  const h = new H().invoke(0, 'write', 1).ok(0).invoke(1, 'read').ok(1, 1);
  h.invoke(0, 'write', 2, 'other').ok(0).invoke(1, 'cas', [2, 3], 'other').ok(1);
  const r = await run('check', '--workload', 'register', '--history', file(formatHistory(h.events)), '--workers', '0');
  t.equal(r.code, EXIT_VALID);
  t.match(r.out, /^valid: 2 keys \(2 valid, 0 invalid, 0 unknown\), 4 operations, register model/);
  t.equal(r.err, '');
});

t.test('exit 1 for an invalid history, printing the smallest failing key and its operations', async (t) => {
  const h = new H();
  h.invoke(0, 'write', 1, 'big').ok(0).invoke(0, 'write', 2, 'big').ok(0).invoke(1, 'read', null, 'big').ok(1, 1).invoke(1, 'read', null, 'big').ok(1, 2);
  h.invoke(2, 'write', 5, 'small').ok(2).invoke(2, 'read', null, 'small').ok(2, 6);
  h.invoke(3, 'write', 5, 'fine').ok(3);
  const path = file(formatHistory(h.events));
  const r = await run('check', '--workload=register', `--history=${path}`, '--workers=1');
  t.equal(r.code, EXIT_INVALID);
  t.match(r.out, /^invalid: 3 keys \(1 valid, 2 invalid, 0 unknown\)/);
  t.match(r.out, /smallest failing key: "small", 2 operations/);
  t.match(r.out, /process 2: write 5 {2}\[ok; lines 9-10\]/);
  t.match(r.out, /process 2: read -> 6 {2}\[ok; lines 11-12\]/);
  t.match(r.out, /longest linearizable prefix found: 1 of 2 operations\n {2}1\. process 2: write 5 .* => 5\n/);
  t.notMatch(r.out, /process 0:/, 'the other failing key is not printed');
  // --max-ops shortens the listing; --json gives the whole result
  const short = await run('check', '--workload', 'register', '--history', path, '--workers', '0', '--max-ops', '1');
  t.match(short.out, /\.\.\. 1 more/);
  const json = await run('check', '--workload', 'register', '--history', path, '--workers', '0', '--json');
  t.equal(json.code, EXIT_INVALID);
  const parsed = JSON.parse(json.out);
  t.equal(parsed.verdict, 'invalid');
  t.equal(parsed.smallestFailing.key, 'small');
  t.same(
    parsed.keys.map((k: { key: string; verdict: string }) => [k.key, k.verdict]),
    [
      ['big', 'invalid'],
      ['fine', 'valid'],
      ['small', 'invalid'],
    ],
  );
});

t.test('exit 2 when the budget runs out (unknown)', async (t) => {
  const h = new H();
  for (let p = 0; p < 22; p++) h.invoke(p, 'write', p);
  for (let p = 0; p < 22; p++) h.ok(p);
  h.invoke(0, 'read').ok(0, 3).invoke(0, 'read').ok(0, 4);
  const r = await run('check', '--workload', 'register', '--history', file(formatHistory(h.events)), '--budget-ms', '30', '--workers', '0');
  t.equal(r.code, EXIT_UNKNOWN);
  t.match(r.out, /^unknown: 1 key \(0 valid, 0 invalid, 1 unknown\)/);
  t.match(r.out, /unknown: key "k" \(24 operations\): time budget exhausted/);
});

t.test('exit 2 with a message for errors', async (t) => {
  const bad = file('{"process":0,"type":"invoke","f":"write","key":"k","value":1,"time":1}\n{"process":0,"type":"ok"\n');
  let r = await run('check', '--workload', 'register', '--history', bad);
  t.equal(r.code, EXIT_UNKNOWN);
  t.match(r.err, new RegExp(`^error: malformed history: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: not valid JSON`));
  t.equal(r.out, '');

  r = await run('check', '--workload', 'register', '--history', join(dir, 'missing.jsonl'));
  t.equal(r.code, EXIT_UNKNOWN);
  t.match(r.err, /^error: cannot read .*missing\.jsonl/);

  const add = file('{"process":0,"type":"invoke","f":"add","key":"k","value":1,"time":1}\n');
  r = await run('check', '--workload', 'register', '--history', add, '--workers', '0');
  t.equal(r.code, EXIT_UNKNOWN);
  t.match(r.err, /h\d+\.jsonl:1: the register workload has read, write and cas; got "add"/);

  for (const [args, message] of [
    [['check', '--history', add], /--workload is required/],
    [['check', '--workload', 'register'], /--history FILE is required/],
    [['check', '--workload', 'queue', '--history', add], /--workload must be one of register, set, .*; got queue/],
    [['check', '--workload', 'register', '--history', add, '--format', 'edn'], /--format must be one of jsonl, jepsen-log, kv-edn/],
    [['check', '--workload', 'register', '--history', add, '--format', 'kv-edn'], /kv-edn histories hold get\/put\/append: use --workload kv/],
    [['check', '--workload', 'register', '--history', add, '--budget-ms', '0'], /--budget-ms needs an integer >= 1, got 0/],
    [['check', '--workload', 'register', '--history', add, '--budget-ms'], /--budget-ms needs a value/],
    [['check', '--workload', 'register', '--history', add, '--bogus'], /unknown option --bogus/],
    [['frobnicate'], /unknown command frobnicate/],
  ] as const) {
    r = await run(...args);
    t.equal(r.code, EXIT_UNKNOWN, args.join(' '));
    t.match(r.err, message);
    t.match(r.err, /usage:/);
  }
  r = await run('run', '--nodes', '4');
  t.equal(r.code, EXIT_UNKNOWN);
  t.match(r.err, /--nodes must be 3, 5 or 7, got "4"/);
  r = await run();
  t.equal(r.code, EXIT_UNKNOWN);
  t.match(r.out, /usage:/);
  r = await run('--help');
  t.equal(r.code, EXIT_VALID);
});

t.test('the fixtures formats through the CLI', async (t) => {
  let r = await run('check', '--workload', 'register', '--format', 'jepsen-log', '--history', join(FIX, 'jepsen-etcd', 'etcd_002.log'));
  t.equal(r.code, EXIT_VALID, 'etcd_002 is linearizable');
  r = await run('check', '--workload', 'register', '--format', 'jepsen-log', '--history', join(FIX, 'jepsen-etcd', 'etcd_000.log'), '--workers', '0');
  t.equal(r.code, EXIT_INVALID, 'etcd_000 is not');
  t.match(r.out, /smallest failing key: "register"/);
  r = await run('check', '--format', 'kv-edn', '--history', join(FIX, 'kv', 'c01-bad.txt'), '--workers', '0');
  t.equal(r.code, EXIT_INVALID);
  t.match(r.out, /kv model/);
  r = await run('check', '--workload', 'kv', '--format', 'kv-edn', '--history', join(FIX, 'kv', 'c10-ok.txt'), '--workers', '0');
  t.equal(r.code, EXIT_VALID);
});

t.test('the jepsen-log reader', async (t) => {
  const log = [
    'INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]',
    'INFO  jepsen.util - 1   :invoke :read   nil',
    'INFO  jepsen.util - 3\t:fail\t:cas\t[1 2]',
    'INFO  jepsen.util - 1\t:fail\t:read\t:timed-out',
    'INFO  jepsen.util - 4\t:invoke\t:write\t4',
    'INFO  jepsen.util - :nemesis\t:info\t:start\tnil',
    'INFO  jepsen.util - 4\t:info\t:write\t:timed-out',
    '',
  ].join('\n');
  const ev = parseJepsenLog(log);
  t.equal(ev.length, 7);
  t.same(ev[0], { process: 3, type: 'invoke', f: 'cas', key: JEPSEN_LOG_KEY, value: [1, 2], time: 1, line: 1 });
  t.same(ev[3], { process: 1, type: 'fail', f: 'read', key: JEPSEN_LOG_KEY, value: null, time: 4, line: 4, error: 'timed-out' });
  t.equal(ev[5].process, 'nemesis');
  const ops = pairHistory(ev);
  t.same(
    ops.map((o) => [o.process, o.f, o.type]),
    [
      [3, 'cas', 'fail'],
      [1, 'read', 'fail'],
      [4, 'write', 'info'],
    ],
  );
  t.throws(() => parseJepsenLog('INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2]\nhello\n', 'x.log'), {
    name: 'HistoryError',
    message: /^x\.log:2: not a Jepsen operation line/,
  });
  t.throws(() => parseJepsenLog('INFO  jepsen.util - 3\t:invoke\t:cas\t[1 2'), { message: /line 1: missing \]/ });
  t.throws(() => parseJepsenLog('INFO  jepsen.util - 3\t:done\t:cas\t[1 2]'), { message: /line 1: unknown type :done/ });
  t.throws(() => parseJepsenLog('INFO  jepsen.util - 3\t:ok\t:read\t:timed-out'), { message: /an ok cannot carry the keyword :timed-out/ });
});

t.test('the kv-edn reader', async (t) => {
  const text = [
    '{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}',
    '{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}',
    '{:process 1, :type :invoke, :f :get, :key "0", :value nil}',
    '{:process 1, :type :ok, :f :get, :key "0", :value "a \\"quoted\\" value"}',
  ].join('\n');
  const ev = parseKvEdn(text);
  t.same(ev[0], { process: 0, type: 'invoke', f: 'append', key: '0', value: 'x 0 0 y', time: 1, line: 1 });
  t.equal(ev[3].value, 'a "quoted" value');
  t.throws(() => parseKvEdn('{:process 0, :type :invoke, :f :get, :key 0, :value nil}'), { message: /line 1: :key must be a string, got 0/ });
  t.throws(() => parseKvEdn('{:process 0, :type :invoke, :f :get, :key "0", :value nil'), { message: /line 1: missing \}/ });
  t.throws(() => parseKvEdn('{:process 0, :type "ok", :f :get, :key "0", :value nil}'), { message: /:type must be a keyword/ });
  t.throws(() => parseKvEdn('[1 2]'), { message: /must be a map/ });
  t.throws(() => parseKvEdn('{:process 0, :process 1}'), { message: /duplicate map key :process/ });
  t.same(parseEdnValue('[1 -2 nil true [:a "b"]]'), [1, -2, null, true, [{ name: 'a' }, 'b']]);
  t.throws(() => parseEdnValue('[1 2] 3'), /trailing characters/);
  t.throws(() => parseEdnValue('#{1}'), /cannot read/);
});
