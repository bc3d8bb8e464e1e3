// keel txn against a scripted client: stdin in etcdctl's format, the request, SUCCESS/FAILURE and each
// response as etcdctl prints them, --interactive prompts, input errors.

import t from 'tap';
import type { TxnRequest, TxnResponse } from '../../src/kv/api';
import { FakeClient, HEADER, keelWith, kv } from './fixtures/fake-client';

const B = (s: string): Buffer => Buffer.from(s);

const INPUT = 'mod("key1") > "0"\n\nput key1 "overwrote-key1"\nget key --prefix\ndel key2 --prev-kv\n\nput key1 "created-key1"\n\n';

const answered = (succeeded: boolean): TxnResponse => ({
  header: HEADER,
  succeeded,
  responses: succeeded
    ? [
        { type: 'put', put: { header: HEADER } },
        { type: 'range', range: { header: HEADER, kvs: [kv('key', 'v'), kv('key1', 'overwrote-key1')], more: false, count: 2 } },
        { type: 'deleteRange', deleteRange: { header: HEADER, deleted: 1, prevKvs: [kv('key2', 'old')] } },
      ]
    : [{ type: 'put', put: { header: HEADER } }],
});

t.test('the txn sent and etcdctl\'s output', async (t) => {
  const c = new FakeClient({ txn: async () => answered(true) });
  const r = await keelWith(c, ['txn'], { stdin: INPUT });
  t.equal(r.code, 0);
  t.equal(r.stdout, 'SUCCESS\n\nOK\n\nkey\nv\nkey1\noverwrote-key1\n\n1\nkey2\nold\n');
  t.equal(r.stderr, '');
  const want: TxnRequest = {
    compare: [{ key: B('key1'), result: 'GREATER', target: 'MOD', modRevision: 0 }],
    success: [
      { type: 'put', put: { key: B('key1'), value: B('overwrote-key1') } },
      { type: 'range', range: { key: B('key'), rangeEnd: B('kez') } },
      { type: 'deleteRange', deleteRange: { key: B('key2'), prevKv: true } },
    ],
    failure: [{ type: 'put', put: { key: B('key1'), value: B('created-key1') } }],
  };
  t.same(c.calls, [{ method: 'txn', args: [want] }]);
  t.equal(c.closed, 1);

  const f = await keelWith(new FakeClient({ txn: async () => answered(false) }), ['txn'], { stdin: INPUT });
  t.equal(f.stdout, 'FAILURE\n\nOK\n');
});

t.test('--interactive prints etcdctl\'s prompts', async (t) => {
  const r = await keelWith(new FakeClient({ txn: async () => answered(false) }), ['txn', '-i'], { stdin: INPUT });
  t.equal(r.stdout, 'compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\nFAILURE\n\nOK\n');
});

t.test('-w json', async (t) => {
  const r = await keelWith(new FakeClient({ txn: async () => answered(false) }), ['txn', '-w', 'json'], { stdin: INPUT });
  const h = '{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2}';
  t.equal(r.stdout, `{"header":${h},"responses":[{"Response":{"response_put":{"header":${h}}}}]}\n`);
});

t.test('input errors: exit 1, the line and the problem, nothing sent', async (t) => {
  const c = new FakeClient();
  const r = await keelWith(c, ['txn'], { stdin: 'mod("key1") > "0"\n\nput key1\n\n' });
  t.equal(r.code, 1);
  t.equal(r.stderr, 'Error: txn input line 3: invalid txn request (put takes KEY and VALUE): put key1\n');
  t.same(c.calls, []);
  const r2 = await keelWith(c, ['txn'], { stdin: 'mod(key1) > 0\n' });
  t.match(r2.stderr, /^Error: txn input line 1: malformed comparison \(expected the key in double quotes\): mod\(key1\) > 0\n$/);
  const none = await keelWith(c, ['txn']);
  t.equal(none.code, 2);
  t.match(none.stderr, 'txn reads the transaction from stdin, and there is none');
  const extra = await keelWith(c, ['txn', 'extra']);
  t.equal(extra.code, 2, 'no positional arguments');
  t.same(c.calls, []);
});

t.test('a server error: exit 1 with etcd\'s message', async (t) => {
  const { Errors } = await import('../../src/kv/api');
  const c = new FakeClient({ txn: async () => { throw Errors.duplicateKey(); } });
  const r = await keelWith(c, ['txn'], { stdin: '\nput a 1\nput a 2\n\n' });
  t.same([r.code, r.stderr], [1, 'Error: etcdserver: duplicate key given in txn request\n']);
});
