// keel put / get / del against an in-memory member behind the real HTTP gateway: what they send and
// what they print (etcdctl's simple format, and the gateway's JSON with --json).

import t from 'tap';
import { fakeMember, keel, MemoryKv, unusedPort } from './fixtures/helpers';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const ID = '00000000000000ff';

t.test('put, get, del print what etcdctl prints', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  const ep = ['--endpoints', m.url];

  t.same(await keel(['put', 'foo', 'bar', ...ep]), { code: 0, stdout: 'OK\n', stderr: '' });
  t.same(await keel(['put', 'foo', 'baz', '--prev-kv', ...ep]), { code: 0, stdout: 'OK\nfoo\nbar\n', stderr: '' });
  t.equal((await keel(['put', 'foo2', '123', ...ep])).code, 0, 'a number-like value stays a string');
  t.equal((await keel(['put', 'fop', '-1', ...ep])).code, 0, 'a value starting with a dash');
  t.same(await keel(['get', 'foo', ...ep]), { code: 0, stdout: 'foo\nbaz\n', stderr: '' });
  t.equal((await keel(['get', 'foo', '--prefix', ...ep])).stdout, 'foo\nbaz\nfoo2\n123\n');
  t.equal((await keel(['get', 'foo', '--prefix', '--print-value-only', ...ep])).stdout, 'baz\n123\n');
  t.equal((await keel(['get', 'foo', '--prefix', '--keys-only', ...ep])).stdout, 'foo\nfoo2\n');
  t.equal((await keel(['get', 'foo', '--prefix', '--count-only', ...ep])).stdout, '2\n');
  t.equal((await keel(['get', 'foo', '--prefix', '--limit', '1', ...ep])).stdout, 'foo\nbaz\n');
  t.equal((await keel(['get', '', '--prefix', '--keys-only', ...ep])).stdout, 'foo\nfoo2\nfop\n', 'empty prefix: all');
  t.equal((await keel(['get', 'foo2', '--from-key', '--keys-only', ...ep])).stdout, 'foo2\nfop\n');
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

t.test('the requests carry the flags', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  await keel(['get', 'a', '--prefix', '--limit', '5', '--consistency', 's', '--keys-only', '--endpoints', m.url]);
  t.same(m.kv.requests[0], {
    key: Buffer.from('a'),
    rangeEnd: Buffer.from('b'),
    limit: 5,
    serializable: true,
    keysOnly: true,
  });
  await keel(['get', 'a', '--endpoints', m.url]);
  t.same(m.kv.requests[1], { key: Buffer.from('a') }, 'linearizable by default, no range end');
  await keel(['del', '', '--prefix', '--endpoints', m.url]);
  t.same(m.kv.requests[2], { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) });
});

t.test('--json prints the gateway shape', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  const ep = ['--endpoints', m.url, '--json'];
  const put = await keel(['put', 'k', 'v', ...ep]);
  t.same(JSON.parse(put.stdout), { header: { cluster_id: '170', member_id: '255', revision: '2', raft_term: '3' } });
  const get = await keel(['get', 'k', ...ep]);
  t.same(JSON.parse(get.stdout), {
    header: { cluster_id: '170', member_id: '255', revision: '2', raft_term: '3' },
    kvs: [{ key: b64('k'), create_revision: '2', mod_revision: '2', version: '1', value: b64('v') }],
    count: '1',
  });
  const del = await keel(['del', 'k', '--prev-kv', ...ep]);
  t.same(JSON.parse(del.stdout), {
    header: { cluster_id: '170', member_id: '255', revision: '3', raft_term: '3' },
    deleted: '1',
    prev_kvs: [{ key: b64('k'), create_revision: '2', mod_revision: '2', version: '1', value: b64('v') }],
  });
});

t.test('KEEL_ENDPOINTS is the default of --endpoints; host:port is taken as http://', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  t.equal((await keel(['put', 'a', '1'], { KEEL_ENDPOINTS: m.url })).code, 0);
  const bare = m.url.replace('http://', '');
  t.equal((await keel(['get', 'a', '--endpoints', bare])).stdout, 'a\n1\n');
  const dead = `http://127.0.0.1:${await unusedPort()}`;
  t.equal((await keel(['get', 'a', '--endpoints', `${dead},${m.url}`])).stdout, 'a\n1\n', 'fails over');
});

t.test('errors: exit 1 with the message on stderr', async (t) => {
  const m = await fakeMember(new MemoryKv(ID, 'n1', ID));
  t.teardown(() => m.close());
  const empty = await keel(['put', '', 'v', '--endpoints', m.url]);
  t.equal(empty.code, 1);
  t.equal(empty.stdout, '');
  t.match(empty.stderr, /^Error: /);
  const dead = `http://127.0.0.1:${await unusedPort()}`;
  const r = await keel(['get', 'a', '--endpoints', dead]);
  t.equal(r.code, 1);
  t.match(r.stderr, `Error: no member reachable at ${dead}: connect ECONNREFUSED`);
});
