// etcd's KV service over gRPC against a fake member: requests translated to the internal form, answers in
// etcd's messages (uint64 ids as decimal strings, int64 as strings with longs: String), etcd's errors with
// their gRPC codes, and every call counted under etcd's method names.

import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { GrpcCode, KvError, MAX_REQUEST_BYTES, type TxnRequest } from '../../src/kv/api';
import { unavailable } from '../server/fixtures/fake-kv-service';
import { RecordingObserver, call, callError, startGrpcFake } from './fixtures/grpc';

const b = (s: string): Buffer => Buffer.from(s);
const HEADER = { cluster_id: '170', member_id: '187', raft_term: '2' };

t.test('Put and Range: header, key-values, prev_kv, and the range options passed on', async (t) => {
  const f = await startGrpcFake(t);
  const kv = f.clients.KV;
  const p1 = await call(kv, 'Put', { key: b('a/1'), value: b('one') });
  t.same(p1.header, { ...HEADER, revision: '2' }, 'header: cluster and member ids as decimal uint64');
  t.equal(p1.prev_kv, null);
  const p2 = await call(kv, 'Put', { key: b('a/1'), value: b('uno'), prev_kv: true, lease: '0' });
  t.match(p2.prev_kv, { key: b('a/1'), value: b('one'), create_revision: '2', mod_revision: '2', version: '1', lease: '0' });
  await call(kv, 'Put', { key: b('a/2'), value: b('two') });

  const r = await call<{ header: unknown; kvs: Record<string, unknown>[]; count: string; more: boolean }>(kv, 'Range', {
    key: b('a/'),
    range_end: b('a0'),
    limit: '10',
    sort_order: 'DESCEND',
    sort_target: 'MOD',
    serializable: true,
    min_mod_revision: 2,
  });
  t.same(r.header, { ...HEADER, revision: '4' });
  t.equal(r.count, '2');
  t.equal(r.more, false);
  t.same(
    r.kvs.map((x) => [String(x.key), String(x.value), x.create_revision, x.mod_revision, x.version]),
    [
      ['a/1', 'uno', '2', '3', '2'],
      ['a/2', 'two', '4', '4', '1'],
    ],
  );
  t.same(f.member.callsOf('range')[0], {
    key: b('a/'),
    rangeEnd: b('a0'),
    limit: 10,
    sortOrder: 'DESCEND',
    sortTarget: 'MOD',
    serializable: true,
    minModRevision: 2,
  }, 'defaults left out, the rest in internal form');
  t.same(f.member.callsOf('put')[1], { key: b('a/1'), value: b('uno'), prevKv: true });
});

t.test('DeleteRange: a range with prev_kv', async (t) => {
  const f = await startGrpcFake(t);
  const kv = f.clients.KV;
  for (const k of ['x/1', 'x/2', 'y']) await call(kv, 'Put', { key: b(k), value: b('v') });
  const d = await call<{ deleted: string; prev_kvs: { key: Buffer }[]; header: { revision: string } }>(kv, 'DeleteRange', {
    key: b('x/'),
    range_end: b('x0'),
    prev_kv: true,
  });
  t.equal(d.deleted, '2');
  t.same(d.prev_kvs.map((x) => String(x.key)), ['x/1', 'x/2']);
  t.equal(d.header.revision, '5');
  t.same(f.member.callsOf('deleteRange')[0], { key: b('x/'), rangeEnd: b('x0'), prevKv: true });
});

t.test('Txn: compares of every target, nested txns, both branches', async (t) => {
  const f = await startGrpcFake(t);
  f.member.evaluateCompares = true;
  const kv = f.clients.KV;
  await call(kv, 'Put', { key: b('k'), value: b('v1') });
  const compare = [
    { key: b('k'), target: 'VALUE', result: 'EQUAL', value: b('v1') },
    { key: b('k'), target: 'VERSION', result: 'GREATER', version: '0' },
    { key: b('k'), target: 'CREATE', result: 'EQUAL', create_revision: '2' },
    { key: b('k'), target: 'MOD', result: 'LESS', mod_revision: '3' },
    { key: b('k'), target: 'LEASE', result: 'NOT_EQUAL', lease: '7' },
    { key: b('a'), range_end: b('b'), target: 'VERSION', result: 'EQUAL', version: 0 },
  ];
  const req = {
    compare,
    success: [
      { request_put: { key: b('k'), value: b('v2') } },
      { request_range: { key: b('k') } },
      {
        request_txn: {
          compare: [],
          success: [{ request_delete_range: { key: b('gone') } }],
          failure: [],
        },
      },
    ],
    failure: [{ request_range: { key: b('k'), serializable: true } }],
  };
  const r = await call<{ succeeded: boolean; responses: Record<string, unknown>[]; header: { revision: string } }>(
    kv,
    'Txn',
    req,
  );
  t.equal(r.succeeded, true);
  t.equal(r.header.revision, '3');
  t.same(r.responses.map((x) => x.response), ['response_put', 'response_range', 'response_txn']);
  t.match(r.responses[1], { response_range: { kvs: [{ key: b('k'), value: b('v2') }], count: '1' } });

  const expected: TxnRequest = {
    compare: [
      { key: b('k'), result: 'EQUAL', target: 'VALUE', value: b('v1') },
      { key: b('k'), result: 'GREATER', target: 'VERSION', version: 0 },
      { key: b('k'), result: 'EQUAL', target: 'CREATE', createRevision: 2 },
      { key: b('k'), result: 'LESS', target: 'MOD', modRevision: 3 },
      { key: b('k'), result: 'NOT_EQUAL', target: 'LEASE', lease: 7 },
      { key: b('a'), result: 'EQUAL', target: 'VERSION', version: 0, rangeEnd: b('b') },
    ],
    success: [
      { type: 'put', put: { key: b('k'), value: b('v2') } },
      { type: 'range', range: { key: b('k') } },
      { type: 'txn', txn: { compare: [], success: [{ type: 'deleteRange', deleteRange: { key: b('gone') } }], failure: [] } },
    ],
    failure: [{ type: 'range', range: { key: b('k'), serializable: true } }],
  };
  t.same(f.member.callsOf('txn')[0], expected, 'the member got the txn in internal form');

  // The value is now v2: the first compare fails and the failure branch runs.
  const r2 = await call<{ succeeded: boolean; responses: Record<string, unknown>[] }>(kv, 'Txn', req);
  t.equal(r2.succeeded, false);
  t.match(r2.responses, [{ response: 'response_range', response_range: { kvs: [{ value: b('v2') }] } }]);

  // A read-only txn whose ranges are all serializable is served locally (etcd's isTxnSerializable).
  await call(kv, 'Txn', { compare: [], success: [{ request_range: { key: b('k'), serializable: true } }], failure: [] });
  t.equal((f.member.callsOf('txn')[2] as TxnRequest).serializable, true);
});

t.test('Compact, then a read below the compact revision: OutOfRange, etcd message', async (t) => {
  const f = await startGrpcFake(t);
  const kv = f.clients.KV;
  for (let i = 0; i < 4; i++) await call(kv, 'Put', { key: b('k'), value: b(`v${i}`) });
  const c = await call<{ header: { revision: string } }>(kv, 'Compact', { revision: '4', physical: true });
  t.equal(c.header.revision, '5');
  t.same(f.member.callsOf('compact')[0], { revision: 4, physical: true });
  const err = await callError(kv, 'Range', { key: b('k'), revision: '2' });
  t.equal(err.code, grpc.status.OUT_OF_RANGE);
  t.equal(err.details, 'etcdserver: mvcc: required revision has been compacted');
  const again = await callError(kv, 'Compact', { revision: '4' });
  t.equal(again.details, 'etcdserver: mvcc: required revision has been compacted');
  const zero = await callError(kv, 'Compact', { revision: '0' });
  t.equal(zero.code, grpc.status.INVALID_ARGUMENT, 'revision 0 refused before the member');
});

t.test('bad requests: etcd errors and codes, nothing reaches the member', async (t) => {
  const f = await startGrpcFake(t);
  const kv = f.clients.KV;
  const cases: [string, string, object, number, string | RegExp][] = [
    ['empty key', 'Put', { key: b(''), value: b('v') }, grpc.status.INVALID_ARGUMENT, 'etcdserver: key is not provided'],
    ['empty range key', 'Range', { key: b('') }, grpc.status.INVALID_ARGUMENT, 'etcdserver: key is not provided'],
    [
      'too large',
      'Put',
      { key: b('k'), value: Buffer.alloc(MAX_REQUEST_BYTES + 1) },
      grpc.status.INVALID_ARGUMENT,
      'etcdserver: request is too large',
    ],
    [
      'too many txn ops',
      'Txn',
      { compare: Array.from({ length: 129 }, () => ({ key: b('k'), target: 'VERSION', version: 0 })) },
      grpc.status.INVALID_ARGUMENT,
      'etcdserver: too many operations in txn request',
    ],
    [
      'a key written twice in a txn',
      'Txn',
      { success: [{ request_put: { key: b('k'), value: b('1') } }, { request_put: { key: b('k'), value: b('2') } }] },
      grpc.status.INVALID_ARGUMENT,
      'etcdserver: duplicate key given in txn request',
    ],
    [
      'a compare operand that is not its target',
      'Txn',
      { compare: [{ key: b('k'), target: 'MOD', version: '3' }] },
      grpc.status.INVALID_ARGUMENT,
      /target MOD compares mod_revision, but version was given/,
    ],
    [
      'an empty RequestOp',
      'Txn',
      { success: [{}] },
      grpc.status.INVALID_ARGUMENT,
      /invalid success\[0\] \(an empty operation/,
    ],
    [
      'an int64 beyond 2^53',
      'Range',
      { key: b('k'), limit: '9007199254740993' },
      grpc.status.INVALID_ARGUMENT,
      'etcdserver: invalid limit 9007199254740993 (must be an integer of at most 2^53-1 in magnitude)',
    ],
    [
      'a negative revision',
      'Range',
      { key: b('k'), revision: '-1' },
      grpc.status.INVALID_ARGUMENT,
      'etcdserver: invalid revision -1 (must be >= 0)',
    ],
    [
      'ignore_value with a value',
      'Put',
      { key: b('k'), value: b('v'), ignore_value: true },
      grpc.status.INVALID_ARGUMENT,
      'etcdserver: value is provided',
    ],
    [
      'an enum number the .proto does not know',
      'Range',
      { key: b('k'), sort_target: 9 },
      grpc.status.INVALID_ARGUMENT,
      /invalid sort_target 9/,
    ],
  ];
  for (const [what, method, req, code, message] of cases) {
    const err = await callError(kv, method, req);
    t.equal(err.code, code, `${what}: code`);
    if (typeof message === 'string') t.equal(err.details, message, `${what}: message`);
    else t.match(err.details, message, `${what}: message`);
  }
  t.same(f.member.calls, [], 'nothing reached the member');
});

t.test('a message above max-request-bytes + 512 KiB is refused by gRPC itself', async (t) => {
  const f = await startGrpcFake(t);
  const err = await callError(f.clients.KV, 'Put', { key: b('k'), value: Buffer.alloc(MAX_REQUEST_BYTES + 600 * 1024) });
  t.equal(err.code, grpc.status.RESOURCE_EXHAUSTED);
  // Between the two limits: etcd's own message (the check above), so the boundary is the overhead.
  const ok = await callError(f.clients.KV, 'Put', { key: b('k'), value: Buffer.alloc(MAX_REQUEST_BYTES + 400 * 1024) });
  t.equal(ok.details, 'etcdserver: request is too large');
});

t.test('member errors: the KvError code and message; anything else Internal', async (t) => {
  const f = await startGrpcFake(t);
  const kv = f.clients.KV;
  f.member.hook = () => {
    throw unavailable();
  };
  const noLeader = await callError(kv, 'Put', { key: b('k'), value: b('v') });
  t.equal(noLeader.code, grpc.status.UNAVAILABLE);
  t.equal(noLeader.details, 'etcdserver: no leader');
  f.member.hook = () => {
    throw new KvError(GrpcCode.FailedPrecondition, 'etcdserver: request id is older than the deduplication window');
  };
  t.equal((await callError(kv, 'Txn', {})).code, grpc.status.FAILED_PRECONDITION);
  f.member.hook = () => {
    throw new TypeError('boom');
  };
  const internal = await callError(kv, 'Range', { key: b('k') });
  t.equal(internal.code, grpc.status.INTERNAL);
  t.equal(internal.details, 'boom');
});

t.test('every call counted under etcd names, with the code it ended with', async (t) => {
  const observer = new RecordingObserver();
  const f = await startGrpcFake(t, { rpcMetrics: observer });
  const kv = f.clients.KV;
  await call(kv, 'Put', { key: b('k'), value: b('v') });
  await call(kv, 'Range', { key: b('k') });
  await callError(kv, 'Range', { key: b('') });
  await call(kv, 'DeleteRange', { key: b('k') });
  await call(kv, 'Txn', {});
  await callError(kv, 'Compact', { revision: '99' });
  t.same(
    observer.calls.map((c) => [c.name, c.type, c.code]),
    [
      ['etcdserverpb.KV/Put', 'unary', GrpcCode.OK],
      ['etcdserverpb.KV/Range', 'unary', GrpcCode.OK],
      ['etcdserverpb.KV/Range', 'unary', GrpcCode.InvalidArgument],
      ['etcdserverpb.KV/DeleteRange', 'unary', GrpcCode.OK],
      ['etcdserverpb.KV/Txn', 'unary', GrpcCode.OK],
      ['etcdserverpb.KV/Compact', 'unary', GrpcCode.OutOfRange],
    ],
  );
});
