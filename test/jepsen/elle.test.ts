// The list-append checker (jepsen/checker/append.ts): one hand-made history per anomaly class, valid histories
// that must pass, random histories of a simulated serializable store (valid) and of stores that lose writes or
// read stale state (caught), malformed histories refused, and the scale the append workload needs.

import t from 'tap';
import { checkAppend, type AppendDetails } from '../../jepsen/checker/append';
import type { Anomaly, AnomalyType } from '../../jepsen/checker/elle/anomaly';
import { HistoryError } from '../../jepsen/history';
import { a, r, simulateAppend, TxnHistory } from './fixtures/append-histories';

function details(res: { details?: unknown }): AppendDetails {
  return res.details as AppendDetails;
}

function types(res: { details?: unknown }): AnomalyType[] {
  return Object.keys(details(res).anomalies) as AnomalyType[];
}

function example(res: { details?: unknown }, type: AnomalyType): Anomaly | undefined {
  return details(res).examples.find((x) => x.type === type);
}

t.test('valid serializable histories pass', async (t) => {
  const h = new TxnHistory()
    .ok(0, a('x', 1), a('y', 1))
    .ok(1, r('x', [1]), a('x', 2))
    .ok(0, r('x', [1, 2]), r('y', [1]), a('y', 2))
    .ok(2, r('y', [1, 2]));
  const res = checkAppend(h.events);
  t.equal(res.verdict, 'valid', res.summary);
  t.match(res.summary, /^valid: no anomaly in 4 txns \(4 ok, 0 info, 0 fail\) on 2 keys/);
  t.same(details(res).edges, { ww: 2, wr: 4, rw: 0, realtime: 0 });

  // concurrent transactions that serialize in an order other than their invocation order; an info append seen
  // by a later read (it committed), an info one never seen, and a failed one never seen
  const c = new TxnHistory()
    .begin(0, [r('x', [2]), a('y', 1)])
    .begin(1, [a('x', 2)])
    .end(1)
    .end(0)
    .info(2, a('x', 3))
    .fail(3, a('x', 4))
    .info(4, a('y', 9))
    .ok(5, r('x', [2, 3]), r('y', [1]));
  const cr = checkAppend(c.events);
  t.equal(cr.verdict, 'valid', cr.summary);
  t.same(details(cr).txns, { total: 6, ok: 3, info: 2, fail: 1 });

  // a transaction reading its own appends, before and after reading the key
  const own = new TxnHistory().ok(0, a('x', 1), r('x', [1]), a('x', 2), r('x', [1, 2])).ok(1, a('x', 3), r('x', [1, 2, 3]));
  t.equal(checkAppend(own.events).verdict, 'valid');
});

t.test('G0: a write cycle', async (t) => {
  const h = new TxnHistory().ok(0, a('x', 1), a('y', 1)).ok(1, a('x', 2), a('y', 2)).ok(2, r('x', [1, 2]), r('y', [2, 1]));
  const res = checkAppend(h.events);
  t.equal(res.verdict, 'invalid');
  t.ok(types(res).includes('G0'), res.summary);
  const g0 = example(res, 'G0')!;
  t.same(
    g0.cycle!.map((s) => s.kind),
    ['ww', 'ww'],
  );
  t.same(new Set(g0.txns.map((x) => x.index)), new Set([0, 1]));
  t.match(g0.explain, /^cycle T[01] -> T[01] -> T[01] \(ww, ww\)$/);
  t.match(g0.cycle![0].explain, /T[01] appended [12] to "[xy]", then T[01] appended [12]/);
});

t.test('G1a: an aborted read', async (t) => {
  const h = new TxnHistory().fail(0, a('x', 1)).ok(1, r('x', [1]));
  const res = checkAppend(h.events);
  t.equal(res.verdict, 'invalid');
  t.same(types(res), ['G1a']);
  t.match(example(res, 'G1a')!.explain, 'T1 read "x" = [1], which holds 1, appended by T0, which failed');
});

t.test('G1b: an intermediate read', async (t) => {
  const h = new TxnHistory().ok(0, a('x', 1), a('x', 2)).ok(1, r('x', [1])).ok(2, r('x', [1, 2]));
  const res = checkAppend(h.events);
  t.equal(res.verdict, 'invalid');
  t.ok(types(res).includes('G1b'), res.summary);
  t.match(example(res, 'G1b')!.explain, /an intermediate append of T0/);
});

t.test('G1c: circular information flow', async (t) => {
  const h = new TxnHistory().ok(0, a('x', 1), r('y', [1])).ok(1, a('y', 1), r('x', [1]));
  const res = checkAppend(h.events);
  t.equal(res.verdict, 'invalid');
  t.same(types(res), ['G1c']);
  t.same(
    example(res, 'G1c')!.cycle!.map((s) => s.kind),
    ['wr', 'wr'],
  );
});

t.test('G-single: read skew', async (t) => {
  // T0 sees y after T1 but x before it
  const h = new TxnHistory().ok(0, r('x', []), r('y', [1])).ok(1, a('x', 1), a('y', 1)).ok(2, r('x', [1]));
  const res = checkAppend(h.events);
  t.equal(res.verdict, 'invalid');
  t.same(types(res), ['G-single']);
  const c = example(res, 'G-single')!;
  t.same(c.cycle!.map((s) => s.kind).sort(), ['rw', 'wr']);
  t.match(c.cycle!.find((s) => s.kind === 'rw')!.explain, 'T0 read "x" = [], without 1, which T1 appended next');
});

t.test('G2: write skew, two anti-dependencies', async (t) => {
  const h = new TxnHistory()
    .begin(0, [r('x', []), a('y', 1)])
    .begin(1, [r('y', []), a('x', 1)])
    .end(0)
    .end(1)
    .ok(2, r('x', [1]), r('y', [1]));
  const res = checkAppend(h.events);
  t.equal(res.verdict, 'invalid');
  t.same(types(res), ['G2']);
  t.same(
    example(res, 'G2')!.cycle!.map((s) => s.kind),
    ['rw', 'rw'],
  );
});

t.test('lost update: two committed read-modify-writes of one version', async (t) => {
  const h = new TxnHistory().ok(0, r('x', []), a('x', 1)).ok(1, r('x', []), a('x', 2)).ok(2, r('x', [1, 2]));
  const res = checkAppend(h.events);
  t.equal(res.verdict, 'invalid');
  t.ok(types(res).includes('lost-update'), res.summary);
  t.same(example(res, 'lost-update')!.txns.map((x) => x.index), [0, 1]);
  t.ok(types(res).includes('G-single'), 'the same anomaly as a cycle');
});

t.test('incompatible orders, duplicates, garbage and internal inconsistency', async (t) => {
  const inc = checkAppend(new TxnHistory().ok(0, a('x', 1)).ok(1, a('x', 2)).ok(2, r('x', [1, 2])).ok(3, r('x', [2])).events);
  t.equal(inc.verdict, 'invalid');
  t.same(types(inc), ['incompatible-order']);
  t.match(example(inc, 'incompatible-order')!.explain, 'T3 read "x" = [2] and T2 read [1,2]: neither is a prefix of the other (they differ at position 0)');
  t.same(details(inc).excludedKeys.map((k) => k.key), ['x']);

  const dup = checkAppend(new TxnHistory().ok(0, a('x', 1)).ok(1, r('x', [1, 1])).events);
  t.ok(types(dup).includes('duplicate-elements'), dup.summary);

  const garbage = checkAppend(new TxnHistory().ok(0, a('x', 1)).ok(1, r('x', [1, 7])).events);
  t.same(types(garbage), ['garbage']);
  t.match(example(garbage, 'garbage')!.explain, 'which holds 7, which no transaction appended');
  const notList = new TxnHistory().ok(0, a('x', 1));
  notList.events.push(
    { process: 1, type: 'invoke', f: 'txn', value: [['r', 'x', null]], time: 1000 },
    { process: 1, type: 'ok', f: 'txn', value: [['r', 'x', 'corrupt!']], time: 1001 },
  );
  const nl = checkAppend(notList.events);
  t.same(types(nl), ['garbage']);
  t.match(example(nl, 'garbage')!.explain, '"corrupt!", which is not a list of integers');

  const internal = checkAppend(new TxnHistory().ok(0, a('x', 1)).ok(1, r('x', [1]), a('x', 2), r('x', [1])).events);
  t.same(types(internal), ['internal']);
  t.match(example(internal, 'internal')!.explain, 'should have seen exactly [1,2]');
  const internal2 = checkAppend(new TxnHistory().ok(0, a('x', 1), r('x', [])).events);
  t.same(types(internal2), ['internal']);
});

t.test('realtime: a stale read is serializable but not strict serializable', async (t) => {
  const h = new TxnHistory().ok(0, a('x', 1)).ok(1, r('x', [])).ok(2, r('x', [1]));
  t.equal(checkAppend(h.events).verdict, 'valid');
  const strict = checkAppend(h.events, { realtime: true });
  t.equal(strict.verdict, 'invalid');
  t.equal(strict.checker, 'append (strict serializable)');
  t.same(types(strict), ['G-single-realtime']);
  t.same(
    example(strict, 'G-single-realtime')!.cycle!.map((s) => s.kind).sort(),
    ['realtime', 'rw'],
  );
});

t.test('no transaction completed: unknown', async (t) => {
  const res = checkAppend(new TxnHistory().info(0, a('x', 1)).fail(1, a('x', 2)).events);
  t.equal(res.verdict, 'unknown');
  t.equal(checkAppend([]).verdict, 'unknown');
});

t.test('malformed histories are refused with the line', async (t) => {
  const line = (events: ReturnType<typeof lines>): ReturnType<typeof lines> => events;
  function lines(h: TxnHistory) {
    return h.events.map((e, i) => ({ ...e, line: i + 1 }));
  }
  t.throws(() => checkAppend(line(lines(new TxnHistory().ok(0, a('x', 1))).map((e) => ({ ...e, f: 'add' })))), {
    name: 'HistoryError',
    message: /^line 1: the append checker reads only f "txn" operations, got "add"/,
  });
  const bad = lines(new TxnHistory().ok(0, a('x', 1)));
  bad[0].value = [['put', 'x', 1]];
  t.throws(() => checkAppend(bad), { message: /^line 1: txn micro-op 0: f must be "append" or "r", got "put"/ });
  const notInt = lines(new TxnHistory().ok(0, a('x', 1)));
  notInt[0].value = [['append', 'x', 'one']];
  t.throws(() => checkAppend(notInt), { message: /an append's value must be an integer, got "one"/ });
  const mismatch = lines(new TxnHistory().ok(0, a('x', 1)));
  mismatch[1].value = [['append', 'y', 1]];
  t.throws(() => checkAppend(mismatch), { message: /^line 2: ok txn micro-op 0 is \["append","y",1\], but the invocation has \["append","x",1\]/ });
  const missing = lines(new TxnHistory().ok(0, a('x', 1)));
  missing[1].value = null;
  t.throws(() => checkAppend(missing), { message: /must carry its micro-ops with the reads filled in, got null/ });
  t.throws(() => checkAppend(new TxnHistory().ok(0, a('x', 1)).ok(1, a('x', 1)).events), HistoryError);
  t.throws(() => checkAppend(new TxnHistory().ok(0, a('x', 1)).ok(1, a('x', 1)).events), { message: /appends 1 to "x", which T0 .* appends too/ });
});

t.test('random histories of a serializable store are valid, also strict serializable', async (t) => {
  for (let seed = 1; seed <= 30; seed++) {
    const events = simulateAppend({ seed, txns: 300, processes: 1 + (seed % 8), keys: 3 + (seed % 4), pInfo: 0.05, pFail: 0.05 });
    for (const realtime of [false, true]) {
      const res = checkAppend(events, { realtime });
      if (res.verdict !== 'valid') {
        t.fail(`seed ${seed} realtime ${realtime}: ${res.summary}`, { examples: details(res).examples.slice(0, 2) });
        return;
      }
    }
  }
  t.pass('30 seeds valid');
});

t.test('a store that loses acknowledged writes is caught', async (t) => {
  let caught = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const res = checkAppend(simulateAppend({ seed, txns: 300, processes: 5, keys: 3, bug: 'lose', pBug: 0.05 }));
    if (res.verdict === 'invalid') caught++;
    if (seed === 1) t.ok(types(res).includes('incompatible-order'), res.summary);
  }
  t.equal(caught, 10, 'every seed caught');
});

t.test('a store that reads stale state is caught', async (t) => {
  let caught = 0;
  for (let seed = 1; seed <= 10; seed++) {
    const res = checkAppend(simulateAppend({ seed, txns: 300, processes: 5, keys: 3, bug: 'stale', pBug: 0.05 }));
    if (res.verdict === 'invalid') caught++;
    if (seed === 1) t.ok(types(res).some((x) => ['G-single', 'G2', 'lost-update'].includes(x)), res.summary);
  }
  t.equal(caught, 10, 'every seed caught');
});

t.test('20,000 transactions in seconds', async (t) => {
  const events = simulateAppend({ seed: 7, txns: 20_000, processes: 20, keys: 8, pInfo: 0.02, pFail: 0.02 });
  const started = performance.now();
  const res = checkAppend(events, { realtime: true });
  const ms = performance.now() - started;
  t.equal(res.verdict, 'valid', res.summary);
  t.ok(ms < 10_000, `checked in ${Math.round(ms)} ms`);
  t.comment(`20k txns: ${Math.round(ms)} ms, ${JSON.stringify(details(res).edges)}`);
});
