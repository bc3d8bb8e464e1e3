// keel watch against a scripted client: the request, etcdctl's event lines, progress, -w json, stopping
// (signal, --max-events), and a watch the server cancels.

import t from 'tap';
import type { WatchEndError, WatchHandlers, WatchOptions } from '../../src/client/kv-client';
import { Errors, type Event } from '../../src/kv/api';
import { FakeClient, FakeWatch, keelWith, kv, type FakeRun } from './fixtures/fake-client';

const B = (s: string): Buffer => Buffer.from(s);
const put = (k: string, v: string, rev: number): Event => ({ type: 'PUT', kv: kv(k, v, { modRevision: rev }) });
const del = (k: string, rev: number, prev?: string): Event => ({
  type: 'DELETE',
  kv: { key: B(k), value: B(''), createRevision: 0, modRevision: rev, version: 0, lease: 0 },
  ...(prev !== undefined ? { prevKv: kv(k, prev) } : {}),
});

interface Started {
  client: FakeClient;
  watch: FakeWatch;
  ac: AbortController;
  result: Promise<FakeRun>;
}

/** Starts `keel watch ...` and waits until the command has asked for the watch (bounded: 2 s). */
async function startWatch(args: string[], opts: { createError?: Error } = {}): Promise<Started> {
  let watch: FakeWatch | undefined;
  const client = new FakeClient({
    watch: (_key: Buffer, _o: WatchOptions, handlers: WatchHandlers) => (watch = new FakeWatch(handlers, opts)),
  });
  const ac = new AbortController();
  const result = keelWith(client, ['watch', ...args], { signal: ac.signal });
  const deadline = Date.now() + 2000;
  while (watch === undefined) {
    if (Date.now() > deadline) throw new Error('the command did not start a watch within 2 s');
    await new Promise((r) => setTimeout(r, 5));
  }
  await watch.created.catch(() => {});
  return { client, watch, ac, result };
}

t.test('the watch request carries the flags', async (t) => {
  const cases: [string[], [Buffer, WatchOptions]][] = [
    [['k'], [B('k'), { rangeEnd: undefined, startRevision: 0, prevKv: false, progressNotify: false }]],
    [['a', 'c', '--rev', '4'], [B('a'), { rangeEnd: B('c'), startRevision: 4, prevKv: false, progressNotify: false }]],
    [['a', '--prefix', '--prev-kv', '--progress-notify'], [B('a'), { rangeEnd: B('b'), startRevision: 0, prevKv: true, progressNotify: true }]],
    [['', '--prefix'], [Buffer.from([0]), { rangeEnd: Buffer.from([0]), startRevision: 0, prevKv: false, progressNotify: false }]],
  ];
  for (const [args, want] of cases) {
    const s = await startWatch(args);
    s.ac.abort();
    const r = await s.result;
    t.equal(r.code, 0, `watch ${args.join(' ')}: a stop exits 0`);
    t.same(s.client.calls, [{ method: 'watch', args: want }], args.join(' '));
    t.equal(s.watch.canceled, 1, 'the watch is canceled');
    t.equal(s.client.closed, 1, 'the client is closed');
  }
});

t.test('events print as etcdctl prints them, until stopped', async (t) => {
  const s = await startWatch(['foo', '--prefix', '--prev-kv']);
  s.watch.emit([put('foo', 'bar', 5)], 5);
  s.watch.emit([put('foo1', 'x', 6), del('foo', 6, 'bar')], 6);
  s.watch.progress(9);
  s.ac.abort();
  const r = await s.result;
  t.equal(r.code, 0);
  t.equal(r.stdout, 'PUT\nfoo\nbar\nPUT\nfoo1\nx\nDELETE\nfoo\nbar\nfoo\n\nprogress notify: 9\n');
  t.equal(r.stderr, '');
});

t.test('--max-events stops after N events (mid-revision if need be)', async (t) => {
  const s = await startWatch(['foo', '--max-events', '2']);
  s.watch.emit([put('foo', '1', 5)], 5);
  s.watch.emit([put('foo', '2', 6), put('foo', '3', 6)], 6);
  const r = await s.result;
  t.equal(r.code, 0);
  t.equal(r.stdout, 'PUT\nfoo\n1\nPUT\nfoo\n2\n');
  t.equal(s.watch.canceled, 1);
  const bad = await keelWith(new FakeClient(), ['watch', 'k', '--max-events', '0']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, '--max-events must be at least 1');
});

t.test('-w json: one JSON document per response', async (t) => {
  const s = await startWatch(['foo', '-w', 'json']);
  s.watch.emit([put('foo', 'bar', 5), del('foo', 5)], 5);
  s.watch.progress(7);
  s.ac.abort();
  const r = await s.result;
  t.equal(
    r.stdout,
    '{"Header":{"revision":5},"Events":[{"kv":{"key":"Zm9v","create_revision":2,"mod_revision":5,"version":2,"value":"YmFy"}},' +
      '{"type":1,"kv":{"key":"Zm9v","mod_revision":5}}],"CompactRevision":0,"Canceled":false,"Created":false}\n' +
      '{"Header":{"revision":7},"Events":null,"CompactRevision":0,"Canceled":false,"Created":false}\n',
  );
});

t.test('a watch the server cancels: etcdctl\'s two messages, exit 1', async (t) => {
  const s = await startWatch(['foo', '--rev', '2']);
  const err: WatchEndError = Object.assign(Errors.compacted(), { compactRevision: 4 });
  s.watch.end(err);
  const r = await s.result;
  t.same(
    { code: r.code, stdout: r.stdout, stderr: r.stderr },
    {
      code: 1,
      stdout: '',
      stderr:
        'watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n',
    },
  );
  t.equal(s.watch.canceled, 0, 'nothing to cancel');
  t.equal(s.client.closed, 1);

  const j = await startWatch(['foo', '--rev', '2', '-w', 'json']);
  j.watch.end(err);
  const rj = await j.result;
  t.equal(rj.code, 1);
  t.equal(rj.stdout, '{"Header":{},"Events":null,"CompactRevision":4,"Canceled":true,"Created":false}\n');
});

t.test('a watch that cannot be created: the reason, exit 1', async (t) => {
  const s = await startWatch(['foo'], { createError: new Error('no member reachable at http://127.0.0.1:1') });
  const r = await s.result;
  t.equal(r.code, 1);
  t.equal(r.stderr, 'Error: no member reachable at http://127.0.0.1:1\n');
  t.equal(s.client.closed, 1);
});

t.test('bad flags: usage errors', async (t) => {
  const cases: [string[], string][] = [
    [['watch', 'a', 'b', '--prefix'], '`range_end` and `--prefix` are mutually exclusive'],
    [['watch', 'a', '--rev', '-3'], '--rev must be a non-negative integer (got -3)'],
    [['watch'], 'Not enough non-option arguments'],
  ];
  for (const [args, msg] of cases) {
    const c = new FakeClient();
    const r = await keelWith(c, args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, msg);
    t.same(c.calls, []);
  }
});
