import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { CheckerPool, checkLinearizable, combine, formatResult, type CheckOptions } from '../../jepsen/checker/linearizable';
import { compileModel, prepareKey } from '../../jepsen/checker/models';
import { runTask } from '../../jepsen/checker/task';
import { wgl } from '../../jepsen/checker/wgl';
import {
  HistoryError,
  HistoryWriter,
  formatEvent,
  formatHistory,
  pairHistory,
  parseJsonLines,
  type HistoryEvent,
} from '../../jepsen/history';
import { bruteForce, genKv, genRegister, H, prng } from './fixtures/histories';

// in this thread unless a test says otherwise: the search is the same, and no worker start-up per check
const check = (events: HistoryEvent[], opts: CheckOptions = {}) => checkLinearizable(pairHistory(events), { workers: 0, ...opts });
const verdict = async (h: H, opts: CheckOptions = {}) => (await check(h.events, opts)).verdict;

t.test('a sequential history is valid, and the checker returns a linearization', async (t) => {
  const h = new H().invoke(0, 'read').ok(0, null).invoke(0, 'write', 1).ok(0).invoke(1, 'read').ok(1, 1);
  h.invoke(1, 'cas', [1, 2]).ok(1).invoke(0, 'read').ok(0, 2);
  const r = await check(h.events);
  t.equal(r.verdict, 'valid');
  t.same(r.counts, { valid: 1, invalid: 0, unknown: 0 });
  const ops = pairHistory(h.events);
  const res = runTask({ id: 0, key: 'k', model: 'register', ops: prepareKey('register', ops).ops, budgetMs: 1000 });
  t.same(res.linearization, [0, 1, 2, 3, 4]);
});

t.test('concurrent operations may take effect in either order', async (t) => {
  // the read overlaps the write: it may see the old value or the new one
  t.equal(await verdict(new H().invoke(0, 'write', 1).invoke(1, 'read').ok(1, null).ok(0)), 'valid');
  t.equal(await verdict(new H().invoke(0, 'write', 1).invoke(1, 'read').ok(1, 1).ok(0)), 'valid');
  // ...but two reads after it must agree with a single order
  const h = new H().invoke(0, 'write', 1).invoke(1, 'read').ok(1, 1).invoke(1, 'read').ok(1, null).ok(0);
  t.equal(await verdict(h), 'invalid', 'the value cannot go back to null while the write is in flight');
});

t.test('a stale read is invalid, and the report names it', async (t) => {
  const h = new H().invoke(0, 'write', 1).ok(0).invoke(0, 'write', 2).ok(0).invoke(1, 'read').ok(1, 1);
  const r = await check(h.events);
  t.equal(r.verdict, 'invalid');
  const f = r.smallestFailing!;
  t.equal(f.key, 'k');
  t.equal(f.history!.length, 3);
  t.same(
    f.longest!.map((x) => x.value),
    [1, 2],
    'the longest linearizable prefix: both writes',
  );
  t.equal(f.stuck!.f, 'read');
  t.equal(f.stuck!.output, 1);
  const text = formatResult(r);
  t.match(text, /^invalid: 1 key \(0 valid, 1 invalid, 0 unknown\)/);
  t.match(text, /smallest failing key: "k", 3 operations/);
  t.match(text, /process 1: read -> 1 {2}\[ok; time 5-6\]/);
});

t.test('a lost write is invalid', async (t) => {
  // the write of 2 was acknowledged, yet a later read sees the value before it
  const h = new H().invoke(0, 'write', 1).ok(0).invoke(1, 'write', 2).ok(1).invoke(0, 'read').ok(0, 2).invoke(0, 'read').ok(0, 1);
  t.equal(await verdict(h), 'invalid');
  // and an acknowledged write that no read ever sees
  const h2 = new H().invoke(0, 'write', 1).ok(0).invoke(1, 'read').ok(1, null);
  t.equal(await verdict(h2), 'invalid');
});

t.test('concurrent cas: at most one of two cas from the same value succeeds', async (t) => {
  const base = () => new H().invoke(0, 'write', 0).ok(0).invoke(1, 'cas', [0, 1]).invoke(2, 'cas', [0, 2]);
  t.equal(await verdict(base().ok(1).fail(2).invoke(0, 'read').ok(0, 1)), 'valid');
  t.equal(await verdict(base().fail(1).ok(2).invoke(0, 'read').ok(0, 2)), 'valid');
  t.equal(await verdict(base().ok(1).ok(2).invoke(0, 'read').ok(0, 2)), 'invalid', 'both succeeded from 0');
  // chained: 0 -> 1 -> 2 is fine when the second cas is from 1
  const chain = new H().invoke(0, 'write', 0).ok(0).invoke(1, 'cas', [0, 1]).invoke(2, 'cas', [1, 2]).ok(2).ok(1);
  t.equal(await verdict(chain.invoke(0, 'read').ok(0, 2)), 'valid');
  // a cas that returns ok while the value is something else
  t.equal(await verdict(new H().invoke(0, 'write', 3).ok(0).invoke(1, 'cas', [0, 1]).ok(1)), 'invalid');
});

t.test('an info write may take effect long after its invocation', async (t) => {
  const h = new H().invoke(0, 'write', 0).ok(0).invoke(1, 'write', 7).info(1);
  h.invoke(0, 'read').ok(0, 0).invoke(0, 'read').ok(0, 0).invoke(0, 'write', 5).ok(0).invoke(0, 'read').ok(0, 7);
  t.equal(await verdict(h), 'valid', 'it took effect after the write of 5');
  // still, once seen it stays (nothing else writes 0 again)
  h.invoke(0, 'read').ok(0, 0);
  t.equal(await verdict(h), 'invalid');
});

t.test('an info write may never take effect', async (t) => {
  const h = new H().invoke(0, 'write', 0).ok(0).invoke(1, 'write', 7).info(1);
  for (let i = 0; i < 5; i++) h.invoke(0, 'read').ok(0, 0);
  t.equal(await verdict(h), 'valid');
  // an invocation without completion at the end of the history is indeterminate too
  const h2 = new H().invoke(0, 'write', 0).ok(0).invoke(1, 'write', 7).invoke(0, 'read').ok(0, 0).invoke(0, 'read').ok(0, 7);
  t.equal(await verdict(h2), 'valid');
  const ops = pairHistory(h2.events);
  t.equal(ops[1].type, 'info');
  t.equal(ops[1].completeTime, Infinity);
  // but it cannot take effect before it was invoked
  const h3 = new H().invoke(0, 'write', 0).ok(0).invoke(0, 'read').ok(0, 7).invoke(1, 'write', 7).info(1);
  t.equal(await verdict(h3), 'invalid');
});

t.test('an info cas takes effect only if its comparison holds', async (t) => {
  const h = new H().invoke(0, 'write', 1).ok(0).invoke(1, 'cas', [0, 9]).info(1).invoke(0, 'read').ok(0, 9);
  t.equal(await verdict(h), 'invalid', 'the value was never 0');
  const h2 = new H().invoke(0, 'write', 0).ok(0).invoke(1, 'cas', [0, 9]).info(1).invoke(0, 'read').ok(0, 9);
  t.equal(await verdict(h2), 'valid');
});

t.test('a failed operation had no effect and is left out', async (t) => {
  const h = new H().invoke(0, 'write', 0).ok(0).invoke(1, 'cas', [0, 1]).fail(1).invoke(0, 'read').ok(0, 0);
  const r = await check(h.events);
  t.equal(r.verdict, 'valid');
  t.equal(r.keys[0].dropped, 1);
  t.equal(r.keys[0].operations, 2);
  // so a read that sees the failed cas's value is invalid
  const h2 = new H().invoke(0, 'write', 0).ok(0).invoke(1, 'cas', [0, 1]).fail(1).invoke(0, 'read').ok(0, 1);
  t.equal(await verdict(h2), 'invalid');
  // failed writes and reads, and unanswered reads, likewise
  const h3 = new H().invoke(0, 'write', 5).fail(0).invoke(0, 'read').fail(0).invoke(1, 'read').info(1).invoke(0, 'read').ok(0, null);
  const r3 = await check(h3.events);
  t.equal(r3.verdict, 'valid');
  t.equal(r3.keys[0].dropped, 3);
});

t.test('keys are checked independently; the smallest failing key is reported', async (t) => {
  const h = new H();
  h.invoke(0, 'write', 1, 'a').ok(0).invoke(0, 'read', null, 'b').ok(0, 1); // b never written: invalid
  h.invoke(1, 'write', 1, 'c').ok(1).invoke(1, 'write', 2, 'c').ok(1).invoke(1, 'read', null, 'c').ok(1, 1); // invalid, 3 ops
  h.invoke(2, 'write', 4, 'd').ok(2).invoke(2, 'read', null, 'd').ok(2, 4);
  const r = await check(h.events);
  t.equal(r.verdict, 'invalid');
  t.same(
    r.keys.map((k) => [k.key, k.verdict]),
    [
      ['a', 'valid'],
      ['b', 'invalid'],
      ['c', 'invalid'],
      ['d', 'valid'],
    ],
  );
  t.equal(r.smallestFailing!.key, 'b');
  t.equal(r.operations, 7);
  // the same through two worker threads
  const rw = await check(h.events, { workers: 2 });
  t.same(
    rw.keys.map((k) => [k.key, k.verdict]),
    r.keys.map((k) => [k.key, k.verdict]),
  );
  t.equal(rw.smallestFailing!.key, 'b');
});

t.test('combine: invalid beats unknown beats valid', async (t) => {
  t.equal(combine([]), 'valid');
  t.equal(combine(['valid', 'valid']), 'valid');
  t.equal(combine(['valid', 'unknown']), 'unknown');
  t.equal(combine(['unknown', 'invalid', 'valid']), 'invalid');
});

/**
 * 22 writes of distinct values all in flight together, then a read of one of them and a read of another:
 * invalid, but only after trying every subset of the writes (the last one written decides what the read sees).
 */
function adversarial(writes = 22): H {
  const h = new H();
  for (let p = 0; p < writes; p++) h.invoke(p, 'write', p);
  for (let p = 0; p < writes; p++) h.ok(p);
  return h.invoke(0, 'read').ok(0, 3).invoke(0, 'read').ok(0, 4);
}

t.test('an exhausted budget gives unknown, never valid', async (t) => {
  const small = await check(adversarial(8).events, { budgetMs: 10_000 });
  t.equal(small.verdict, 'invalid', 'with 8 writes the search finishes');
  const r = await check(adversarial().events, { budgetMs: 50 });
  t.equal(r.verdict, 'unknown');
  t.equal(r.keys[0].verdict, 'unknown');
  t.match(r.keys[0].reason, /time budget exhausted/);
  t.ok(r.keys[0].elapsedMs < 2000, `stopped soon after its budget (${r.keys[0].elapsedMs.toFixed(0)} ms)`);
  t.match(formatResult(r), /^unknown: .*\nunknown: key "k" \(24 operations\): time budget exhausted/);
  // an unknown key beside a valid one: unknown overall; beside an invalid one: invalid
  const mixed = adversarial();
  mixed.invoke(30, 'write', 1, 'other').ok(30);
  t.equal((await check(mixed.events, { budgetMs: 50 })).verdict, 'unknown');
  mixed.invoke(30, 'read', null, 'other').ok(30, 2);
  t.equal((await check(mixed.events, { budgetMs: 50 })).verdict, 'invalid');
  // the memory cap, too
  const m = await check(adversarial().events, { budgetMs: 60_000, maxCacheBytes: 1 << 20 });
  t.equal(m.verdict, 'unknown');
  t.match(m.keys[0].reason, /cache memory limit/);
});

t.test('the budget holds in a worker thread too', async (t) => {
  const pool = new CheckerPool(1);
  t.teardown(() => pool.close());
  const r = await checkLinearizable(pairHistory(adversarial().events), { pool, budgetMs: 100 });
  t.equal(r.verdict, 'unknown');
  t.match(r.keys[0].reason, /time budget exhausted/);
  // the pool stays usable
  const ok = await checkLinearizable(pairHistory(new H().invoke(0, 'write', 1).ok(0).events), { pool });
  t.equal(ok.verdict, 'valid');
});

const VARIANTS = [
  { reducePure: true, prune: true },
  { reducePure: false, prune: true },
  { reducePure: true, prune: false },
  { reducePure: false, prune: false },
];

/** Checks one key's events with every variant of the search; returns the brute-force answer, or a failure text. */
function crossCheck(events: HistoryEvent[], model: 'register' | 'kv'): boolean | string {
  const ops = pairHistory(events);
  const expected = bruteForce(ops, model);
  const prepared = prepareKey(model, ops).ops;
  const call = prepared.map((o) => o.call);
  const ret = prepared.map((o) => o.ret);
  for (const v of VARIANTS) {
    const m = compileModel(model, prepared);
    const r = wgl({ n: prepared.length, call, ret, model: m, deadline: performance.now() + 10_000, ...v });
    if (r.verdict !== (expected ? 'valid' : 'invalid')) return `${JSON.stringify(v)}: ${r.verdict}, brute force says ${expected}`;
    if (r.verdict === 'valid') {
      // the linearization returned must replay in the model, in real-time order
      let s = m.init;
      const done = new Set<number>();
      for (const i of r.linearization!) {
        s = m.step(s, i);
        if (s < 0) return `${JSON.stringify(v)}: linearization refused by the model at ${i}`;
        for (let j = 0; j < prepared.length; j++) {
          if (!done.has(j) && j !== i && prepared[j].ret < prepared[i].call) return `${JSON.stringify(v)}: ${j} returned before ${i} was called`;
        }
        done.add(i);
      }
    }
  }
  return expected;
}

t.test('random register histories: the search agrees with brute force, with and without its reductions', async (t) => {
  let valid = 0;
  let invalid = 0;
  for (let seed = 1; seed <= 600; seed++) {
    const rnd = prng(seed * 7919);
    const events = genRegister({ seed, processes: 2 + (seed % 3), ops: 4 + (seed % 7), values: 3, pInfo: 0.15 });
    // corrupt half of them: change what a read returned, or turn a fail into an ok
    if (seed % 2 === 0) {
      const done = events.filter((e) => e.type !== 'invoke' && (e.f === 'read' || e.type === 'fail'));
      if (done.length > 0) {
        const e = done[Math.floor(rnd() * done.length)];
        if (e.f === 'read') e.value = Math.floor(rnd() * 3);
        else e.type = 'ok';
      }
    }
    const r = crossCheck(events, 'register');
    if (typeof r === 'string') {
      t.fail(`seed ${seed}: ${r}`, { events });
      return;
    }
    if (r) valid++;
    else invalid++;
  }
  t.ok(valid > 150 && invalid > 80, `both answers exercised (${valid} valid, ${invalid} invalid)`);
});

t.test('random kv histories: the search agrees with brute force, with and without its reductions', async (t) => {
  let valid = 0;
  let invalid = 0;
  for (let seed = 1; seed <= 600; seed++) {
    const rnd = prng(seed * 104729);
    const events = genKv({ seed, processes: 2 + (seed % 3), ops: 4 + (seed % 7) });
    if (seed % 2 === 0) {
      const gets = events.filter((e) => e.type === 'ok' && e.f === 'get');
      if (gets.length > 0) gets[Math.floor(rnd() * gets.length)].value = ['', 'a', 'ab', 'ba', 'b', 'aab'][Math.floor(rnd() * 6)];
    }
    const r = crossCheck(events, 'kv');
    if (typeof r === 'string') {
      t.fail(`seed ${seed}: ${r}`, { events });
      return;
    }
    if (r) valid++;
    else invalid++;
  }
  t.ok(valid > 150 && invalid > 80, `both answers exercised (${valid} valid, ${invalid} invalid)`);
});

t.test('medium random histories (several bitset words): the reductions agree with the plain search', async (t) => {
  let valid = 0;
  let invalid = 0;
  for (let seed = 1; seed <= 240; seed++) {
    const model = seed % 2 ? 'register' : 'kv';
    const rnd = prng(seed * 17);
    const n = 30 + (seed % 90);
    const events =
      model === 'register'
        ? genRegister({ seed, processes: 3 + (seed % 6), ops: n, values: 2 + (seed % 4), pInfo: 0.05 })
        : genKv({ seed, processes: 2 + (seed % 4), ops: n });
    const reads = events.filter((e) => e.type === 'ok' && (e.f === 'read' || e.f === 'get'));
    if (seed % 3 !== 0 && reads.length > 0) {
      reads[Math.floor(rnd() * reads.length)].value = model === 'kv' ? ['', 'a', 'ab', 'ba', 'b'][Math.floor(rnd() * 5)] : Math.floor(rnd() * 3);
    }
    const p = prepareKey(model, pairHistory(events)).ops;
    const [fast, plain] = [{}, { reducePure: false, prune: false }].map(
      (v) =>
        wgl({ n: p.length, call: p.map((o) => o.call), ret: p.map((o) => o.ret), model: compileModel(model, p), deadline: performance.now() + 5000, ...v })
          .verdict,
    );
    if (fast !== plain || fast === 'unknown') {
      t.fail(`seed ${seed} (${model}, ${n} operations): ${fast} with the reductions, ${plain} without`);
      return;
    }
    if (fast === 'valid') valid++;
    else invalid++;
  }
  t.ok(valid > 50 && invalid > 50, `both answers exercised (${valid} valid, ${invalid} invalid)`);
});

t.test('larger random linearizable histories are valid, over several keys, quickly', async (t) => {
  for (const seed of [1, 2, 3]) {
    const events = genRegister({ seed, processes: 8, ops: 3000, values: 5, keys: 4, pInfo: 0.05 });
    const start = performance.now();
    const r = await check(events, { budgetMs: 20_000 });
    t.equal(r.verdict, 'valid', `seed ${seed}: ${r.keys.map((k) => `${k.key}:${k.operations}`).join(' ')}`);
    t.ok(performance.now() - start < 10_000, `seed ${seed} in ${(performance.now() - start).toFixed(0)} ms`);
  }
});

t.test('the kv model: get / put / append, every key starting as ""', async (t) => {
  const kv = (h: H) => check(h.events, { model: 'kv' }).then((r) => r.verdict);
  t.equal(await kv(new H().invoke(0, 'get').ok(0, '').invoke(0, 'append', 'a').ok(0).invoke(0, 'append', 'b').ok(0).invoke(0, 'get').ok(0, 'ab')), 'valid');
  t.equal(await kv(new H().invoke(0, 'append', 'a').ok(0).invoke(0, 'append', 'b').ok(0).invoke(0, 'get').ok(0, 'ba')), 'invalid');
  t.equal(await kv(new H().invoke(0, 'append', 'a').invoke(1, 'append', 'b').ok(0).ok(1).invoke(0, 'get').ok(0, 'ba')), 'valid');
  t.equal(await kv(new H().invoke(0, 'append', 'a').ok(0).invoke(0, 'put', 'x').ok(0).invoke(0, 'append', 'y').ok(0).invoke(0, 'get').ok(0, 'xy')), 'valid');
  t.equal(await kv(new H().invoke(0, 'put', 'x').ok(0).invoke(0, 'get').ok(0, '')), 'invalid');
  // a stale get of the initial value long after appends: pruned without walking the whole history
  const h = new H().invoke(0, 'append', 'a').ok(0);
  for (let i = 0; i < 50; i++) h.invoke(i % 3, 'append', 'z').invoke(3, 'get').ok(3, 'a' + 'z'.repeat(i)).ok(i % 3);
  t.equal(await kv(h), 'valid');
  h.invoke(3, 'get').ok(3, '');
  t.equal(await kv(h), 'invalid');
  await t.rejects(kv(new H().invoke(0, 'append', 3).ok(0)), { name: 'HistoryError', message: /an append needs a string value/ });
});

t.test('operations a model does not know are refused, naming the line', async (t) => {
  const withLines = (h: H): HistoryEvent[] => h.events.map((e, i) => ({ ...e, line: i + 1 }));
  await t.rejects(
    checkLinearizable(pairHistory(withLines(new H().invoke(0, 'write', 1).ok(0).invoke(0, 'add', 3).ok(0))), { workers: 0 }),
    { name: 'HistoryError', message: 'line 3: the register workload has read, write and cas; got "add"' },
  );
  await t.rejects(
    checkLinearizable(pairHistory(withLines(new H().invoke(0, 'cas', [1]).ok(0))), { workers: 0, source: 'h.jsonl' }),
    { message: "h.jsonl:1: a cas's value must be [from, to], got [1]" },
  );
  t.ok(new HistoryError('x', 3) instanceof Error);
});

t.test('operations with the same value under different JSON types differ', async (t) => {
  t.equal(await verdict(new H().invoke(0, 'write', 1).ok(0).invoke(0, 'read').ok(0, '1')), 'invalid');
  t.equal(await verdict(new H().invoke(0, 'write', { a: 1, b: [2] }).ok(0).invoke(0, 'read').ok(0, { b: [2], a: 1 })), 'valid');
});

t.test('the JSON-lines parser refuses malformed lines, naming them', async (t) => {
  const good = '{"process":0,"type":"invoke","f":"write","key":"k","value":1,"time":10}';
  const refuse = (line: string, message: RegExp | string, source?: string) => {
    const text = `${good}\n\n${line}\n`;
    t.throws(() => parseJsonLines(text, source), { name: 'HistoryError', message, line: 3 }, `refuses ${line}`);
  };
  refuse('{"process":0,', /^line 3: not valid JSON/);
  refuse('[1,2]', 'line 3: an event must be a JSON object');
  refuse('null', 'line 3: an event must be a JSON object');
  refuse('{"type":"ok","f":"write","value":1,"time":11}', 'line 3: missing "process"');
  refuse('{"process":-1,"type":"ok","f":"write","value":1,"time":11}', 'line 3: "process" must be a non-negative integer or "nemesis", got -1');
  refuse('{"process":"p1","type":"ok","f":"write","value":1,"time":11}', /"process" must be/);
  refuse('{"process":0,"f":"write","value":1,"time":11}', 'line 3: missing "type"');
  refuse('{"process":0,"type":"done","f":"write","value":1,"time":11}', 'line 3: "type" must be one of invoke, ok, fail, info, got "done"');
  refuse('{"process":0,"type":"ok","value":1,"time":11}', 'line 3: missing "f"');
  refuse('{"process":0,"type":"ok","f":"","value":1,"time":11}', /"f" must be a non-empty string/);
  refuse('{"process":0,"type":"ok","f":"write","key":7,"value":1,"time":11}', 'line 3: "key" must be a string, got 7');
  refuse('{"process":0,"type":"ok","f":"write","value":1}', 'line 3: missing "time"');
  refuse('{"process":0,"type":"ok","f":"write","value":1,"time":1.5}', /"time" must be a non-negative integer \(nanoseconds\), got 1.5/);
  refuse('{"process":0,"type":"ok","f":"write","value":1,"time":"11"}', /"time" must be/);
  refuse('{"process":0,"type":"ok","f":"write","time":11}', 'line 3: missing "value" (use null when there is none)');
  refuse('{"process":0,"type":"ok","f":"write","value":1,"time":11,"error":5}', /"error" must be a string/);
  refuse('{"process":0,"type":"ok","f":"write","value":1,"time":11', 'h.jsonl:3: not valid JSON', 'h.jsonl');
  // CRLF line ends and blank lines are fine
  t.equal(parseJsonLines(`${good}\r\n\r\n${good.replace('10', '11')}\r\n`).length, 2);
});

t.test('pairing refuses histories that break the one-operation-per-process rule', async (t) => {
  const ev = (process: number, type: string, f: string, time: number, extra = '') =>
    `{"process":${process},"type":"${type}","f":"${f}","key":"k","value":null,"time":${time}${extra}}`;
  const refuse = (lines: string[], message: RegExp | string) =>
    t.throws(() => pairHistory(parseJsonLines(lines.join('\n')), undefined), { name: 'HistoryError', message });
  refuse([ev(0, 'ok', 'read', 1)], 'line 1: ok for process 0, which has no operation in flight');
  refuse([ev(0, 'invoke', 'read', 1), ev(0, 'invoke', 'read', 2)], 'line 2: process 0 invokes read while its read from line 1 is still in flight');
  refuse(
    [ev(0, 'invoke', 'write', 1), ev(0, 'info', 'write', 2), ev(0, 'invoke', 'read', 3)],
    /^line 3: process 0 invokes again after its info at line 2/,
  );
  refuse([ev(0, 'invoke', 'write', 1), ev(0, 'info', 'write', 2), ev(0, 'ok', 'write', 3)], 'line 3: process 0 completes (ok) after its info at line 2');
  refuse([ev(0, 'invoke', 'write', 1), ev(0, 'ok', 'read', 2)], 'line 2: process 0 completes read but invoked write at line 1');
  refuse(
    [ev(0, 'invoke', 'write', 1), ev(0, 'ok', 'write', 2).replace('"key":"k"', '"key":"j"')],
    'line 2: process 0 completes on key "j" but invoked on "k" at line 1',
  );
  refuse([ev(0, 'invoke', 'write', 5), ev(0, 'ok', 'write', 4)], 'line 2: completion at time 4 is earlier than its invocation at 5');
  // nemesis events are not operations of any process
  const ops = pairHistory(
    parseJsonLines(
      [
        '{"process":"nemesis","type":"info","f":"partition","value":"majority","time":1}',
        ev(0, 'invoke', 'read', 2),
        '{"process":"nemesis","type":"info","f":"partition","value":null,"time":3}',
        ev(0, 'ok', 'read', 4, ',"node":"n1"'),
      ].join('\n'),
    ),
  );
  t.equal(ops.length, 1);
  t.match(ops[0], { process: 0, f: 'read', type: 'ok', invokeTime: 2, completeTime: 4, invokeLine: 2, completeLine: 4 });
});

t.test('the writer and the parser round-trip', async (t) => {
  const events: HistoryEvent[] = [
    { process: 0, type: 'invoke', f: 'cas', key: 'k', value: [1, 2], time: 5 },
    { process: 0, type: 'info', f: 'cas', key: 'k', value: [1, 2], time: 9, error: 'timeout' },
    { process: 'nemesis', type: 'info', f: 'kill', value: ['n1'], time: 10 },
    { process: 1, type: 'invoke', f: 'read', key: 'k', value: null, time: 11, extra: { node: 'n2' } },
    { process: 1, type: 'ok', f: 'read', key: 'k', value: { nested: [true, null] }, time: 12 },
  ];
  const text = formatHistory(events);
  t.equal(text.split('\n')[0], '{"process":0,"type":"invoke","f":"cas","key":"k","value":[1,2],"time":5}');
  t.equal(text.split('\n')[3], '{"process":1,"type":"invoke","f":"read","key":"k","value":null,"time":11,"node":"n2"}');
  const back = parseJsonLines(text).map(({ line, ...e }) => (t.type(line, 'number'), e));
  t.same(back, events);
  t.equal(formatHistory(parseJsonLines(text)), text);
  t.equal(formatEvent({ process: 0, type: 'invoke', f: 'read', key: 'k', value: undefined, time: 1 }), '{"process":0,"type":"invoke","f":"read","key":"k","value":null,"time":1}');

  const dir = mkdtempSync(join(tmpdir(), 'keel-history-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const w = new HistoryWriter(join(dir, 'history.jsonl'), 100);
  for (const e of events) w.write(e);
  w.close();
  w.close();
  t.equal(readFileSync(join(dir, 'history.jsonl'), 'utf8'), text);
  t.throws(() => w.write(events[0]), /closed/);
});
