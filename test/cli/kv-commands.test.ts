// keel put / get / del: what they send and what they print (etcdctl's simple format, and etcdctl's -w json),
// first through the real HTTP gateway and client in front of an in-memory member, then against a scripted
// client for every flag.

import t from 'tap';
import { fakeMember, keel, MemoryKv, unusedPort } from './fixtures/helpers';
import { FakeClient, HEADER, keelWith, kv } from './fixtures/fake-client';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const B = (s: string): Buffer => Buffer.from(s);
const ID = '00000000000000ff';

t.test('put, get, del print what etcdctl prints', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  const ep = ['--endpoints', m.url, '--transport', 'http'];

  t.same(await keel(['put', 'foo', 'bar', ...ep]), { code: 0, stdout: 'OK\n', stderr: '' });
  t.same(await keel(['put', 'foo', 'baz', '--prev-kv', ...ep]), { code: 0, stdout: 'OK\nfoo\nbar\n', stderr: '' });
  t.equal((await keel(['put', 'foo2', '123', ...ep])).code, 0, 'a number-like value stays a string');
  t.equal((await keel(['put', 'fop', '-1', ...ep])).code, 0, 'a value starting with a dash');
  t.same(await keel(['get', 'foo', ...ep]), { code: 0, stdout: 'foo\nbaz\n', stderr: '' });
  t.equal((await keel(['get', 'foo', '--prefix', ...ep])).stdout, 'foo\nbaz\nfoo2\n123\n');
  t.equal((await keel(['get', 'foo', '--prefix', '--print-value-only', ...ep])).stdout, 'baz\n123\n');
  t.equal((await keel(['get', 'foo', '--prefix', '--keys-only', ...ep])).stdout, 'foo\n\nfoo2\n\n', 'keys with empty values, as etcdctl');
  t.equal((await keel(['get', 'foo', '--prefix', '--count-only', ...ep])).stdout, '2\n');
  t.equal((await keel(['get', 'foo', '--prefix', '--limit', '1', ...ep])).stdout, 'foo\nbaz\n');
  t.equal((await keel(['get', 'foo', 'fop', ...ep])).stdout, 'foo\nbaz\nfoo2\n123\n', 'a range [foo, fop)');
  t.equal((await keel(['get', '', '--prefix', '--print-value-only', ...ep])).stdout, 'baz\n123\n-1\n', 'empty prefix: all');
  t.equal((await keel(['get', 'foo2', '--from-key', '--print-value-only', ...ep])).stdout, '123\n-1\n');
  t.equal((await keel(['get', 'fop', ...ep])).stdout, 'fop\n-1\n');
  t.equal((await keel(['get', 'nothing', ...ep])).stdout, '', 'a missing key prints nothing');

  t.same(await keel(['del', 'foo', '--prefix', '--prev-kv', ...ep]), {
    code: 0,
    stdout: '2\nfoo\nbaz\nfoo2\n123\n',
    stderr: '',
  });
  t.same(await keel(['del', 'nothing', ...ep]), { code: 0, stdout: '0\n', stderr: '' });
  t.equal((await keel(['del', '', '--from-key', ...ep])).stdout, '1\n');
  t.equal((await keel(['get', '', '--prefix', '--count-only', ...ep])).stdout, '0\n');
});

t.test('the requests carry the flags (through the HTTP gateway)', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  const ep = ['--endpoints', m.url, '--transport', 'http'];
  await keel(['get', 'a', '--prefix', '--limit', '5', '--consistency', 's', '--keys-only', ...ep]);
  t.same(m.kv.requests[0], { key: B('a'), rangeEnd: B('b'), limit: 5, serializable: true, keysOnly: true });
  await keel(['get', 'a', ...ep]);
  t.same(m.kv.requests[1], { key: B('a') }, 'linearizable by default, no range end');
  await keel(['del', '', '--prefix', ...ep]);
  t.same(m.kv.requests[2], { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
});

t.test('-w json and --json print etcdctl\'s JSON', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  const ep = ['--endpoints', m.url, '--transport', 'http'];
  const header = '{"cluster_id":170,"member_id":255,"revision":2,"raft_term":3}';
  t.same(await keel(['put', 'k', 'v', '--json', ...ep]), { code: 0, stdout: `{"header":${header}}\n`, stderr: '' });
  const kvJson = `{"key":"${b64('k')}","create_revision":2,"mod_revision":2,"version":1,"value":"${b64('v')}"}`;
  t.equal((await keel(['get', 'k', '-w', 'json', ...ep])).stdout, `{"header":${header},"kvs":[${kvJson}],"count":1}\n`);
  t.equal((await keel(['get', 'k', '--write-out=json', ...ep])).stdout, `{"header":${header},"kvs":[${kvJson}],"count":1}\n`);
  const del = await keel(['del', 'k', '--prev-kv', '-w', 'json', ...ep]);
  t.equal(del.stdout, `{"header":{"cluster_id":170,"member_id":255,"revision":3,"raft_term":3},"deleted":1,"prev_kvs":[${kvJson}]}\n`);
  const bad = await keel(['get', 'k', '-w', 'table', ...ep]);
  t.equal(bad.code, 2, 'a format Keel does not have is a usage error');
  t.match(bad.stderr, /Invalid values:[\s\S]*write-out/);
});

t.test('KEEL_ENDPOINTS is the default of --endpoints; host:port is taken as http://', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  t.equal((await keel(['put', 'a', '1', '--transport', 'http'], { KEEL_ENDPOINTS: m.url })).code, 0);
  const bare = m.url.replace('http://', '');
  t.equal((await keel(['get', 'a', '--endpoints', bare, '--transport', 'http'])).stdout, 'a\n1\n');
  const dead = `http://127.0.0.1:${await unusedPort()}`;
  t.equal((await keel(['get', 'a', '--endpoints', `${dead},${m.url}`, '--transport', 'http'])).stdout, 'a\n1\n', 'fails over');
});

t.test('errors: exit 1 with the message on stderr', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  const empty = await keel(['put', '', 'v', '--endpoints', m.url, '--transport', 'http']);
  t.equal(empty.code, 1);
  t.equal(empty.stdout, '');
  t.equal(empty.stderr, 'Error: etcdserver: key is not provided\n');
  const dead = `http://127.0.0.1:${await unusedPort()}`;
  const r = await keel(['get', 'a', '--endpoints', dead, '--transport', 'http']);
  t.equal(r.code, 1);
  t.match(r.stderr, `Error: no member reachable at ${dead}: connect ECONNREFUSED`);
});

// ---- against a scripted client -------------------------------------------------------------------------------

const okRange = (kvs = [kv('foo', 'bar')]) => async () => ({ header: HEADER, kvs, more: false, count: kvs.length });

t.test('get: every flag goes into the range request', async (t) => {
  const cases: [string[], object][] = [
    [['get', 'k'], { key: B('k') }],
    [['get', 'a', 'c'], { key: B('a'), rangeEnd: B('c') }],
    [['get', 'a', '--prefix'], { key: B('a'), rangeEnd: B('b') }],
    [['get', 'a\xff', '--prefix'], { key: B('a\xff'), rangeEnd: Buffer.concat([B('a\xff').subarray(0, -1), Buffer.from([0xc0])]) }],
    [['get', '', '--from-key'], { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) }],
    [['get', 'k', '--rev', '12', '--limit', '3'], { key: B('k'), revision: 12, limit: 3 }],
    [['get', 'k', '--consistency', 's'], { key: B('k'), serializable: true }],
    [['get', 'k', '--sort-by', 'MODIFY'], { key: B('k'), sortTarget: 'MOD' }],
    [['get', 'k', '--sort-by', 'value', '--order', 'descend'], { key: B('k'), sortTarget: 'VALUE', sortOrder: 'DESCEND' }],
    [['get', 'k', '--order', 'DESCEND'], { key: B('k'), sortTarget: 'KEY', sortOrder: 'DESCEND' }],
    [['get', 'k', '--sort-by', 'KEY', '--order', 'ASCEND'], { key: B('k') }, ],
    [['get', 'k', '--sort-by', 'create', '--order', 'ascend'], { key: B('k'), sortTarget: 'CREATE', sortOrder: 'ASCEND' }],
    [['get', 'k', '--keys-only'], { key: B('k'), keysOnly: true }],
    [['get', 'k', '--count-only'], { key: B('k'), countOnly: true }],
  ];
  for (const [args, want] of cases) {
    const c = new FakeClient({ range: okRange() });
    const r = await keelWith(c, args);
    t.equal(r.code, 0, args.join(' '));
    t.same(c.calls, [{ method: 'range', args: [want] }], args.join(' '));
    t.equal(c.closed, 1, 'the client is closed');
  }
});

t.test('get: output options', async (t) => {
  const kvs = [kv('a', '1'), kv('b', '2')];
  const run = (args: string[]) => keelWith(new FakeClient({ range: okRange(kvs) }), ['get', 'a', '--prefix', ...args]);
  t.equal((await run([])).stdout, 'a\n1\nb\n2\n');
  t.equal((await run(['--print-value-only'])).stdout, '1\n2\n');
  t.equal((await run(['--count-only'])).stdout, '2\n');
  const bad = await run(['--print-value-only', '-w', 'json']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, '--print-value-only is only for the simple output format');
});

t.test('get, put, del: bad flags are usage errors, and no request is sent', async (t) => {
  const cases: [string[], string][] = [
    [['get', 'k', '--keys-only', '--count-only'], '--keys-only and --count-only cannot be used together'],
    [['get', 'k', '--rev', '-1'], '--rev must be a non-negative integer (got -1)'],
    [['get', 'k', '--sort-by', 'size'], '--sort-by: bad sort target "size" (expected CREATE, KEY, MODIFY, VALUE or VERSION)'],
    [['get', 'k', '--order', 'up'], '--order: bad sort order "up" (expected ASCEND or DESCEND)'],
    [['get', 'a', 'b', '--prefix'], 'a range end cannot be given with --prefix or --from-key'],
    [['del', 'a', 'b', '--from-key'], 'a range end cannot be given with --prefix or --from-key'],
    [['put', 'k', 'v', '--lease', 'xyz'], 'bad lease ID "xyz" (--lease), expecting ID in Hex'],
    [['put', 'k', 'v', '--ignore-value'], "put command needs only 1 argument when 'ignore-value' is set"],
    [['put', 'k'], 'put command needs 1 argument and input from stdin or 2 arguments'],
    [['get', 'k', '--transport', 'carrier-pigeon'], 'Invalid values'],
  ];
  for (const [args, msg] of cases) {
    const c = new FakeClient();
    const r = await keelWith(c, args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, msg, args.join(' '));
    t.same(c.calls, [], 'nothing sent');
  }
});

t.test('put: flags, the value from stdin, prev kv', async (t) => {
  const put = async () => ({ header: HEADER, prevKv: kv('k', 'old') });
  let c = new FakeClient({ put });
  let r = await keelWith(c, ['put', 'k', 'v', '--lease', '1234abcd', '--prev-kv', '--ignore-lease']);
  t.same(r.stdout, 'OK\nk\nold\n');
  t.same(c.calls[0].args, [B('k'), B('v'), { lease: 0x1234abcd, prevKv: true, ignoreValue: undefined, ignoreLease: true }]);

  c = new FakeClient({ put: async () => ({ header: HEADER }) });
  r = await keelWith(c, ['put', 'k'], { stdin: 'line 1\nline 2\n' });
  t.equal(r.stdout, 'OK\n');
  t.same(c.calls[0].args[1], B('line 1\nline 2\n'), 'all of stdin, trailing newline included (as etcdctl)');

  c = new FakeClient({ put: async () => ({ header: HEADER }) });
  r = await keelWith(c, ['put', 'k', '--ignore-value'], { stdin: 'not read' });
  t.equal(r.code, 0);
  t.same(c.calls[0].args, [B('k'), B(''), { lease: undefined, prevKv: undefined, ignoreValue: true, ignoreLease: undefined }]);

  c = new FakeClient();
  r = await keelWith(c, ['put', 'k'], { stdin: '' });
  t.equal(r.code, 2, 'an empty stdin is no value');
  t.match(r.stderr, 'put command needs 1 argument and input from stdin or 2 arguments');

  c = new FakeClient({ put: async () => ({ header: HEADER }) });
  r = await keelWith(c, ['put', 'k', 'v', '--lease', '0']);
  t.same(c.calls[0].args[2], { lease: undefined, prevKv: undefined, ignoreValue: undefined, ignoreLease: undefined }, 'lease 0: none');
});

t.test('del: flags and output', async (t) => {
  const c = new FakeClient({ delete: async () => ({ header: HEADER, deleted: 2, prevKvs: [kv('a', '1'), kv('ab', '2')] }) });
  const r = await keelWith(c, ['del', 'a', '--prefix', '--prev-kv']);
  t.equal(r.stdout, '2\na\n1\nab\n2\n');
  t.same(c.calls[0].args, [B('a'), { rangeEnd: B('b'), prevKv: true }]);
  const c2 = new FakeClient({ delete: async () => ({ header: HEADER, deleted: 0, prevKvs: [] }) });
  await keelWith(c2, ['del', 'a', 'z']);
  t.same(c2.calls[0].args, [B('a'), { rangeEnd: B('z'), prevKv: undefined }]);
});

t.test('the global flags reach the client factory', async (t) => {
  const c = new FakeClient({ range: okRange() });
  const r = await keelWith(c, ['get', 'k', '--endpoints', '127.0.0.1:1,http://127.0.0.1:2', '--command-timeout', '700', '--transport', 'http']);
  t.same(r.clients, [{ transport: 'http', opts: { endpoints: ['http://127.0.0.1:1', 'http://127.0.0.1:2'], requestTimeoutMs: 700 } }]);
  const d = await keelWith(new FakeClient({ range: okRange() }), ['get', 'k']);
  t.same(d.clients, [{ transport: 'stream', opts: { endpoints: ['http://127.0.0.1:2379'], requestTimeoutMs: 5000 } }], 'defaults');
});

t.test('errors from the client: exit 1, "Error: ..." on stderr; outcome unknown says so; the client is closed', async (t) => {
  const { OutcomeUnknownError } = await import('../../src/client/kv-client');
  const { Errors } = await import('../../src/kv/api');
  let c = new FakeClient({ range: async () => { throw Errors.compacted(); } });
  let r = await keelWith(c, ['get', 'k', '--rev', '2']);
  t.same({ code: r.code, stdout: r.stdout, stderr: r.stderr }, {
    code: 1,
    stdout: '',
    stderr: 'Error: etcdserver: mvcc: required revision has been compacted\n',
  });
  t.equal(c.closed, 1);
  c = new FakeClient({ put: async () => { throw new OutcomeUnknownError('request timed out after 5000 ms'); } });
  r = await keelWith(c, ['put', 'k', 'v']);
  t.equal(r.code, 1);
  t.equal(r.stderr, 'Error: outcome unknown, the request may or may not have been applied: request timed out after 5000 ms\n');
  t.equal(c.closed, 1);
});
