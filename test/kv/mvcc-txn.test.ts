// Transactions: etcd's compare semantics, op order and visibility, one revision per txn, the duplicate-key
// and op-count rules, refusals that change nothing, nested txns, and readTxn.

import t from 'tap';
import { MAX_TXN_OPS, type Compare, type RequestOp, type TxnResponse } from '../../src/kv/api';
import { checkTxnShape } from '../../src/kv/mvcc/txn-check';
import type { CommandResult } from '../../src/kv/state-machine';
import { Log, ZERO, b, errorOf, get, openStore, opDel, opGet, opPut, put, run, show, txn } from './fixtures/mvcc';

const cmp = (key: string, rest: Omit<Compare, 'key'> & Record<string, unknown>): Compare => ({ key: b(key), ...rest }) as Compare;

function txnOf(r: CommandResult): TxnResponse {
  if (r.op !== 'txn') throw new Error(`expected a txn result, got ${JSON.stringify(r)}`);
  return r.txn;
}

t.test('compares on a missing key: zeros, and VALUE always fails', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const succeeded = async (c: Compare): Promise<boolean> => txnOf(await run(s, log, txn([c], []))).succeeded;
  t.ok(await succeeded(cmp('nope', { target: 'VERSION', result: 'EQUAL', version: 0 })));
  t.ok(await succeeded(cmp('nope', { target: 'CREATE', result: 'EQUAL', createRevision: 0 })));
  t.ok(await succeeded(cmp('nope', { target: 'MOD', result: 'LESS', modRevision: 1 })));
  t.ok(await succeeded(cmp('nope', { target: 'LEASE', result: 'EQUAL', lease: 0 })));
  for (const result of ['EQUAL', 'NOT_EQUAL', 'LESS', 'GREATER'] as const) {
    t.notOk(await succeeded(cmp('nope', { target: 'VALUE', result, value: b('') })), `VALUE ${result} on a missing key`);
  }
  await run(s, log, put('k', 'm'));
  t.ok(await succeeded(cmp('k', { target: 'VALUE', result: 'GREATER', value: b('a') })));
  t.ok(await succeeded(cmp('k', { target: 'VALUE', result: 'LESS', value: b('mm') })));
  t.ok(await succeeded(cmp('k', { target: 'VALUE', result: 'NOT_EQUAL', value: b('M') })));
  t.ok(await succeeded(cmp('k', { target: 'VERSION', result: 'EQUAL', version: 1 })));
  t.ok(await succeeded(cmp('k', { target: 'MOD', result: 'EQUAL', modRevision: 2 })));
  t.notOk(await succeeded(cmp('k', { target: 'CREATE', result: 'GREATER', createRevision: 2 })));
  t.equal(s.revision(), 2, 'txns without writes make no revision');
});

t.test('compares over a range hold for every key; an empty range compares as a missing key', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await s.apply([log.entry(put('p/1', 'x')), log.entry(put('p/2', 'x')), log.entry(put('p/2', 'y'))]);
  const succeeded = async (c: Compare): Promise<boolean> => txnOf(await run(s, log, txn([c], []))).succeeded;
  t.ok(await succeeded(cmp('p/', { rangeEnd: b('p0'), target: 'CREATE', result: 'GREATER', createRevision: 0 })));
  t.notOk(await succeeded(cmp('p/', { rangeEnd: b('p0'), target: 'VERSION', result: 'EQUAL', version: 1 })));
  t.ok(await succeeded(cmp('p/', { rangeEnd: ZERO, target: 'VERSION', result: 'LESS', version: 3 })));
  t.ok(await succeeded(cmp('q/', { rangeEnd: b('q0'), target: 'VERSION', result: 'EQUAL', version: 0 })));
  t.notOk(await succeeded(cmp('q/', { rangeEnd: b('q0'), target: 'VALUE', result: 'NOT_EQUAL', value: b('x') })));
  t.ok(await succeeded(cmp('z', { rangeEnd: b('a'), target: 'MOD', result: 'EQUAL', modRevision: 0 })), 'inverted');
});

t.test('ops run in order at one revision, each seeing the ones before it', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await s.apply([log.entry(put('a', '1')), log.entry(put('b', '1'))]); // revisions 2, 3
  const e = log.entry(
    txn(
      [cmp('a', { target: 'VALUE', result: 'EQUAL', value: b('1') })],
      [
        opGet('a'),
        opPut('a', '2', { prevKv: true }),
        opGet('a'),
        opGet('a', { revision: 3 }),
        opDel('b'),
        opGet('a', { rangeEnd: ZERO }),
        opPut('c', '3'),
        opDel('zz'),
      ],
    ),
  );
  const out = await s.apply([e]);
  const r = txnOf(out.results.get(e.index)?.result as CommandResult);
  t.ok(r.succeeded);
  t.equal(r.header.revision, 4);
  const [g1, p1, g2, g3, d1, g4, p2, d2] = r.responses;
  t.ok(g1.type === 'range' && g1.range.header.revision === 3 && show(g1.range.kvs)[0].value === '1', 'before the put');
  t.ok(p1.type === 'put' && p1.put.header.revision === 4 && p1.put.prevKv?.value.toString() === '1');
  t.ok(g2.type === 'range' && g2.range.header.revision === 4, 'after the put: the txn revision');
  if (g2.type === 'range') t.same(show(g2.range.kvs), [{ key: 'a', value: '2', c: 2, m: 4, v: 2, lease: 0 }]);
  if (g3.type === 'range') t.same(show(g3.range.kvs), [{ key: 'a', value: '1', c: 2, m: 2, v: 1, lease: 0 }], 'at revision 3');
  t.ok(d1.type === 'deleteRange' && d1.deleteRange.deleted === 1 && d1.deleteRange.header.revision === 4);
  if (g4.type === 'range') t.same(g4.range.kvs.map((kv) => kv.key.toString()), ['a'], 'b deleted, c not yet put');
  t.ok(p2.type === 'put' && p2.put.header.revision === 4);
  t.ok(d2.type === 'deleteRange' && d2.deleteRange.deleted === 0);
  t.same(
    out.changes.map((c) => [c.revision, c.events.map((ev) => `${ev.type} ${ev.kv.key}`)]),
    [[4, ['PUT a', 'DELETE b', 'PUT c']]],
    'one revision, events in op order',
  );
  t.same(s.revision(), 4);
  t.same((await get(s, 'a', { rangeEnd: ZERO })).kvs.map((kv) => `${kv.key}=${kv.value}@${kv.m}`), ['a=2@4', 'c=3@4']);
  t.same(txnOf(await run(s, log, txn([cmp('a', { target: 'VERSION', result: 'EQUAL', version: 9 })], [opPut('x', '1')], [opGet('c')]))).succeeded, false);
  t.same(s.revision(), 4, 'the failure branch ran: only a read');
});

t.test('nested txns: compares are all decided on the state before the txn (as etcd)', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const nested: RequestOp = {
    type: 'txn',
    txn: {
      compare: [cmp('k', { target: 'VERSION', result: 'EQUAL', version: 0 })],
      success: [opPut('seen-missing', 'yes'), opGet('k')],
      failure: [opPut('seen-present', 'yes')],
    },
  };
  const r = txnOf(await run(s, log, txn([], [opPut('k', 'v'), nested])));
  t.ok(r.succeeded);
  const inner = r.responses[1];
  t.ok(inner.type === 'txn' && inner.txn.succeeded, 'the nested compare saw k missing although the put ran first');
  if (inner.type === 'txn') {
    const g = inner.txn.responses[1];
    t.ok(g.type === 'range' && g.range.kvs.length === 1, 'but its range sees the put');
  }
  t.same((await get(s, 'seen-missing')).count, 1);
  t.same((await get(s, 'seen-present')).count, 0);
  t.equal(s.revision(), 2);
});

t.test('two writes to one key are refused (etcd checkIntervals)', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  const dup = 'etcdserver: duplicate key given in txn request';
  const nestedPut = (key: string, where: 'success' | 'failure' = 'success'): RequestOp => ({
    type: 'txn',
    txn: { compare: [], success: where === 'success' ? [opPut(key, 'n')] : [], failure: where === 'failure' ? [opPut(key, 'n')] : [] },
  });
  t.equal(errorOf(await run(s, log, txn([], [opPut('a', '1'), opPut('a', '2')]))), dup, 'two puts');
  t.equal(errorOf(await run(s, log, txn([], [opPut('b', '1'), opDel('a', 'c')]))), dup, 'a put in a deleted range');
  t.equal(errorOf(await run(s, log, txn([], [opDel('a'), opPut('a', '1')]))), dup, 'a put of a deleted key');
  t.equal(errorOf(await run(s, log, txn([], [opPut('a', '1'), nestedPut('a')]))), dup, 'nested put of the same key');
  t.equal(errorOf(await run(s, log, txn([], [nestedPut('a'), nestedPut('a')]))), dup, 'two nested txns');
  t.equal(errorOf(await run(s, log, txn([], [opDel('a', 'b'), nestedPut('a', 'failure')]))), dup, 'nested put in a deleted range');
  t.equal(s.revision(), 1, 'nothing applied');

  // Allowed: the same key in both branches of one nested txn, in success and failure of the top level, and
  // overlapping deletes.
  const both: RequestOp = { type: 'txn', txn: { compare: [], success: [opPut('a', 's')], failure: [opPut('a', 'f')] } };
  t.equal(errorOf(await run(s, log, txn([], [both]))), undefined);
  t.equal(errorOf(await run(s, log, txn([], [opPut('a', '1')], [opPut('a', '2')]))), undefined);
  t.equal(errorOf(await run(s, log, txn([], [opDel('a', 'c'), opDel('b', 'd')]))), undefined);
  // etcd takes a from-key range end ("\0") literally in this check, so it never conflicts: kept for
  // compatibility, and the store applies both changes in op order at one revision.
  await run(s, log, put('x', 'old'));
  t.equal(errorOf(await run(s, log, txn([], [opDel('a', ZERO), opPut('x', 'new')]))), undefined);
  t.same((await get(s, 'x')).kvs.map((kv) => [kv.value, kv.v]), [['new', 1]]);
  const rev = s.revision();
  t.same((await s.events(rev, rev, 1))[0].events.map((e) => `${e.type} ${e.kv.key}`), ['DELETE x', 'PUT x']);
  // A put then a delete of the same key in one revision: every change stays in events() even once that
  // revision is the compact revision.
  t.equal(errorOf(await run(s, log, txn([], [opPut('y', '1'), opDel('x', ZERO)]))), undefined);
  const last = s.revision();
  const before = (await s.events(last, last, 1))[0].events.map((e) => `${e.type} ${e.kv.key}`);
  t.same(before, ['PUT y', 'DELETE x', 'DELETE y']);
  await run(s, log, { op: 'compact', req: { revision: last } });
  await s.compacted(last);
  t.same((await s.events(last, last, 1))[0].events.map((e) => `${e.type} ${e.kv.key}`), before);
  t.same((await get(s, 'x', { rangeEnd: ZERO, revision: last })).count, 0);
});

t.test('op budget: etcd counts the longest list per level, nested txns get what is left', async (t) => {
  const many = (n: number): RequestOp[] => Array.from({ length: n }, (_, i) => opGet(`k${i}`));
  t.equal(checkTxnShape({ compare: [], success: many(MAX_TXN_OPS), failure: many(MAX_TXN_OPS) }), undefined);
  t.equal(checkTxnShape({ compare: [], success: many(MAX_TXN_OPS + 1), failure: [] })?.message, 'etcdserver: too many operations in txn request');
  const compares = Array.from({ length: MAX_TXN_OPS + 1 }, () => cmp('a', { target: 'VERSION', result: 'EQUAL', version: 0 }));
  t.ok(checkTxnShape({ compare: compares, success: [], failure: [] }));
  // A nested txn of 100 ops inside a level of 29: 128 - 29 = 99 left, so refused; inside 28, accepted.
  const nested: RequestOp = { type: 'txn', txn: { compare: [], success: many(100), failure: [] } };
  t.ok(checkTxnShape({ compare: [], success: [nested, ...many(28)], failure: [] }));
  t.equal(checkTxnShape({ compare: [], success: [nested, ...many(27)], failure: [] }), undefined);
  t.equal(checkTxnShape({ compare: [cmp('', { target: 'VERSION', result: 'EQUAL', version: 0 })], success: [], failure: [] })?.message, 'etcdserver: key is not provided');

  const s = await openStore(t);
  const log = new Log();
  t.equal(errorOf(await run(s, log, txn([], many(MAX_TXN_OPS + 1)))), 'etcdserver: too many operations in txn request');
  const r = await run(s, log, txn([], many(MAX_TXN_OPS)));
  t.equal(r.op === 'txn' && r.txn.responses.length, MAX_TXN_OPS);
});

t.test('a txn the state refuses changes nothing', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await run(s, log, put('a', '1'));
  const cases: [string, RequestOp[], string][] = [
    ['unknown lease', [opPut('b', '1'), opPut('c', '1', { lease: 99 })], 'etcdserver: requested lease not found'],
    ['ignore_value on a missing key', [opPut('b', '1'), opPut('c', '', { ignoreValue: true })], 'etcdserver: key not found'],
    ['future revision', [opPut('b', '1'), opGet('a', { revision: 3 })], 'etcdserver: mvcc: required revision is a future revision'],
  ];
  for (const [what, ops, msg] of cases) {
    const out = await s.apply([log.entry(txn([], ops))]);
    t.equal(errorOf(out.results.get(log.index)?.result as CommandResult), msg, what);
    t.same(out.changes, [], `${what}: no events`);
    t.equal(s.revision(), 2, `${what}: no revision`);
    t.equal((await get(s, 'b')).count, 0, `${what}: no write`);
  }
  // The refusal depends on the branch taken: the failure branch's bad op is not looked at.
  const ok = await run(s, log, txn([], [opPut('b', '1')], [opPut('c', '1', { lease: 99 })]));
  t.equal(errorOf(ok), undefined);
  // A range below the compact revision in a txn.
  await s.apply([log.entry(put('a', '2')), log.entry({ op: 'compact', req: { revision: 4 } })]);
  t.equal(errorOf(await run(s, log, txn([], [opGet('a', { revision: 3 })]))), 'etcdserver: mvcc: required revision has been compacted');
});

t.test('readTxn evaluates a txn without writes at one point in time', async (t) => {
  const s = await openStore(t);
  const log = new Log();
  await s.apply([log.entry(put('a', '1')), log.entry(put('b', '2'))]);
  const r = await s.readTxn({
    compare: [cmp('a', { target: 'VALUE', result: 'EQUAL', value: b('1') })],
    success: [opGet('a', { rangeEnd: ZERO }), { type: 'txn', txn: { compare: [], success: [opGet('b')], failure: [] } }],
    failure: [],
  });
  t.equal(r.revision, 3);
  t.ok(r.txn.succeeded);
  const [all, nested] = r.txn.responses;
  t.ok(all.type === 'range' && all.range.count === 2 && all.range.header.revision === 3);
  t.ok(nested.type === 'txn' && nested.txn.responses[0].type === 'range');
  await t.rejects(s.readTxn({ compare: [], success: [], failure: [opPut('x', 'y')] }), /must go through the log/);
  await t.rejects(s.readTxn({ compare: [], success: [opGet('a', { revision: 9 })], failure: [] }), {
    message: 'etcdserver: mvcc: required revision is a future revision',
  });
  await t.rejects(s.readTxn({ compare: [], success: Array.from({ length: 129 }, () => opGet('a')), failure: [] }), {
    message: 'etcdserver: too many operations in txn request',
  });
  t.equal(s.revision(), 3);
});
