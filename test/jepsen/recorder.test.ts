// The recorder (jepsen/recorder.ts): the history contract enforced at the source, the file written as events
// happen, monotonic times; and the error classification of the workloads' client (jepsen/client/kv.ts).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { pairHistory, parseJsonLines } from '../../jepsen/history';
import { createRecorder } from '../../jepsen/recorder';
import { classify, connectKv, prefixEnd, type KvCallError } from '../../jepsen/client/kv';

function tmpFile(tt: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-recorder-'));
  tt.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'history.jsonl');
}

t.test('events go to the file as they happen, equal to the ones kept in memory', async (tt) => {
  const file = tmpFile(tt);
  const rec = createRecorder({ file });
  const p = rec.nextProcess();
  const w = rec.invoke(p, 'write', 'k', 3);
  // the invocation is on disk before the operation completes: a crash here keeps it
  tt.equal(parseJsonLines(fs.readFileSync(file, 'utf8')).length, 1);
  w.ok(3);
  rec.invoke(p, 'read', 'k', null).ok(3);
  rec.invoke(p, 'cas', 'k', [3, 4]).fail('compare failed');
  rec.nemesis({ f: 'start-kill', value: { nodes: ['n1'] } }, 'start');
  rec.invoke(p, 'write', 'k', 5).info('DEADLINE_EXCEEDED: deadline');
  rec.close();

  const fromFile = parseJsonLines(fs.readFileSync(file, 'utf8')).map(({ line: _l, ...ev }) => ev);
  tt.same(fromFile, rec.events());
  tt.equal(fromFile.length, 9);
  tt.same(
    fromFile.map((e) => [e.process, e.type, e.f, e.value]),
    [
      [p, 'invoke', 'write', 3],
      [p, 'ok', 'write', 3],
      [p, 'invoke', 'read', null],
      [p, 'ok', 'read', 3],
      [p, 'invoke', 'cas', [3, 4]],
      [p, 'fail', 'cas', [3, 4]],
      ['nemesis', 'info', 'start-kill', { nodes: ['n1'] }],
      [p, 'invoke', 'write', 5],
      [p, 'info', 'write', 5],
    ],
  );
  tt.equal(fromFile[5].error, 'compare failed');
  tt.same(fromFile[6].extra, { phase: 'start' });
  // what it wrote is a valid history
  const ops = pairHistory(fromFile);
  tt.same(
    ops.map((o) => o.type),
    ['ok', 'ok', 'fail', 'info'],
  );
  tt.throws(() => rec.invoke(rec.nextProcess(), 'read', 'k', null), /closed/, 'a closed recorder refuses events');
});

t.test('times are monotonic nanoseconds from the start', async (tt) => {
  const rec = createRecorder({});
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 200; i++) rec.invoke(i % 4, 'read', 'k', null).ok(null);
  const elapsed = Number(process.hrtime.bigint() - t0);
  const times = rec.events().map((e) => e.time);
  for (let i = 1; i < times.length; i++) tt.ok(times[i] >= times[i - 1], `event ${i} not earlier than ${i - 1}`);
  tt.ok(times.every((x) => Number.isSafeInteger(x) && x >= 0));
  tt.ok(times[times.length - 1] - times[0] <= elapsed, 'spans no more than the real time taken');
  await new Promise((r) => setTimeout(r, 20));
  const c = rec.invoke(9, 'read', 'k', null);
  const after = rec.events().at(-1)!.time;
  tt.ok(after - times[times.length - 1] >= 15e6, 'a 20 ms sleep shows up as at least 15 ms of nanoseconds');
  c.ok(null);
});

t.test('misuse is a harness bug and throws', async (tt) => {
  const rec = createRecorder({});
  const a = rec.nextProcess();
  const b = rec.nextProcess();
  tt.not(a, b, 'fresh numbers');
  const c = rec.invoke(a, 'write', 'k', 1);
  tt.throws(() => rec.invoke(a, 'read', 'k', null), /still in flight/, 'two operations in flight on one process');
  c.ok(1);
  tt.throws(() => c.ok(1), /completed twice/, 'a second completion');
  tt.throws(() => c.fail('x'), /completed twice/);
  rec.invoke(a, 'write', 'k', 2).info('timeout');
  tt.throws(() => rec.invoke(a, 'read', 'k', null), /retired/, 'a process retired by info');
  tt.throws(() => rec.invoke(-1, 'read', 'k', null), /non-negative integer/);
  // numbers used directly are never handed out again
  rec.invoke(50, 'read', 'k', null).ok(null);
  tt.ok(rec.nextProcess() > 50);
  // the refused calls recorded nothing
  tt.equal(rec.events().length, 6);
  tt.doesNotThrow(() => pairHistory(rec.events()));
});

const err = (code: number, details: string): KvCallError => Object.assign(new Error(details), { code, details });

t.test('classify: only a definite refusal makes a write fail; any read error is a fail', async (tt) => {
  const S = grpc.status;
  const table: [KvCallError | Error, 'fail' | 'info'][] = [
    [err(S.INVALID_ARGUMENT, 'etcdserver: key is not provided'), 'fail'],
    [err(S.FAILED_PRECONDITION, 'etcdserver: mvcc: required revision has been compacted'), 'fail'],
    [err(S.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'), 'fail'],
    [err(S.NOT_FOUND, 'etcdserver: requested lease not found'), 'fail'],
    [err(S.ALREADY_EXISTS, 'etcdserver: member ID already exist'), 'fail'],
    [err(S.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'), 'fail'],
    [err(S.RESOURCE_EXHAUSTED, 'Received message larger than max (5000000 vs. 4194304)'), 'info'],
    [err(S.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 127.0.0.1:1'), 'fail'],
    [err(S.UNAVAILABLE, 'etcdserver: leader changed'), 'info'],
    [err(S.UNAVAILABLE, 'etcdserver: request timed out'), 'info'],
    [err(S.UNAVAILABLE, 'Connection dropped'), 'info'],
    [err(S.DEADLINE_EXCEEDED, 'Deadline exceeded'), 'info'],
    [err(S.CANCELLED, 'Cancelled on client'), 'info'],
    [err(S.UNKNOWN, 'whatever'), 'info'],
    [err(S.INTERNAL, 'Received RST_STREAM'), 'info'],
    [new Error('no code at all'), 'info'],
  ];
  for (const [e, want] of table) {
    tt.equal(classify(e, 'write'), want, `write: ${(e as KvCallError).code ?? '-'} ${e.message}`);
    tt.equal(classify(e), want, 'write is the default');
    tt.equal(classify(e, 'read'), 'fail', `read: ${e.message}`);
  }
});

t.test('prefixEnd and bad URLs', async (tt) => {
  tt.equal(prefixEnd('set/').toString(), 'set0');
  tt.same([...prefixEnd('a\u00ff')], [0x61, 0xc3, 0xc0], 'the last byte of the UTF-8 encoding is incremented');
  tt.throws(() => connectKv('not a url'), /not a URL/);
  tt.throws(() => connectKv('https://127.0.0.1:1'), /expected http:\/\/host:port/);
});

t.test('a call to a port nobody listens on is a definite fail for writes', async (tt) => {
  // a port from the probe range that is (almost certainly) closed: the picker refuses before sending
  const conn = connectKv('http://127.0.0.1:1', { timeoutMs: 2000 });
  tt.teardown(() => conn.close());
  const e = await conn.put('k', 'v').then(
    () => undefined,
    (x: unknown) => x,
  );
  tt.ok(e, 'the put failed');
  tt.equal(classify(e, 'write'), 'fail', `classified fail: ${(e as Error).message}`);
});

t.test('a second recorder on the same file appends to it (a restarted harness keeps the first part)', async (tt) => {
  const file = tmpFile(tt);
  for (let i = 0; i < 2; i++) {
    const rec = createRecorder({ file });
    rec.invoke(0, 'read', 'k', null).ok(null);
    rec.close();
  }
  tt.equal(parseJsonLines(fs.readFileSync(file, 'utf8')).length, 4);
});
