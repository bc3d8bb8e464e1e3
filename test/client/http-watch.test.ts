// KeelHttpClient.watch against scripted members speaking the gateway's streaming watch route: delivery per
// revision, resumption on another member from the last revision + 1 with no gap and no duplicate, the
// ends of a watch (cancel, compaction, a refused request, a throwing handler).

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { KeelHttpClient } from '../../src/client/http-client';
import type { WatchEndError } from '../../src/client/kv-client';
import { GrpcCode, KvError, type Event } from '../../src/kv/api';
import { header as gatewayHeader, startGateway } from '../server/fixtures/gateway-recorder';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const HEADER = { cluster_id: '170', member_id: '187', raft_term: '2' };

/** One watch request a member received, and the way to answer it. */
interface Session {
  body: { create_request?: Record<string, unknown> };
  send(result: object): void;
  error(grpcCode: number, message: string): void;
  /** Cut the connection. */
  drop(): void;
  /** Resolves when the client closed the connection. */
  closed: Promise<void>;
}

interface ScriptedMember {
  url: string;
  sessions: Session[];
  close(): Promise<void>;
}

/** A member whose /v3/watch answers are written by `script` (a refusal: return a status and body). */
async function member(
  t: Test,
  script: (s: Session, n: number) => void | { status: number; body: object },
): Promise<ScriptedMember> {
  const sessions: Session[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let markClosed!: () => void;
      const open = (): void => {
        if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/json' });
      };
      const s: Session = {
        body: JSON.parse(Buffer.concat(chunks).toString()) as Session['body'],
        send: (result) => {
          open();
          res.write(JSON.stringify({ result: { header: HEADER, ...result } }) + '\n');
        },
        error: (grpc_code, message) => {
          open();
          res.end(JSON.stringify({ error: { grpc_code, http_code: 503, message, http_status: 'x' } }) + '\n');
        },
        drop: () => req.socket.destroy(),
        closed: new Promise<void>((resolve) => (markClosed = resolve)),
      };
      res.on('close', markClosed);
      sessions.push(s);
      const refusal = script(s, sessions.length);
      if (refusal !== undefined) {
        res.writeHead(refusal.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(refusal.body));
        return;
      }
      open();
      res.flushHeaders();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const m: ScriptedMember = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    sessions,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  t.teardown(() => m.close());
  return m;
}

async function refusingUrl(): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

const put = (key: string, rev: number, value = `v${rev}`) => ({
  kv: { key: b64(key), create_revision: '2', mod_revision: String(rev), version: '1', value: b64(value) },
});
const revision = (rev: number) => ({ header: { ...HEADER, revision: String(rev) } });

async function until(t: Test, what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for ${what}`);
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Records what the handlers get. */
function recorder() {
  const calls: { revision: number; keys: string[]; types: Event['type'][] }[] = [];
  const progress: number[] = [];
  return {
    calls,
    progress,
    handlers: {
      onEvents: (events: Event[], rev: number) =>
        calls.push({ revision: rev, keys: events.map((e) => e.kv.key.toString()), types: events.map((e) => e.type) }),
      onProgress: (rev: number) => progress.push(rev),
    },
  };
}

t.test('events are delivered one call per revision; progress notifications move lastRevision', async (t) => {
  const m = await member(t, (s) => {
    s.send({ ...revision(10), created: true });
    // Two revisions in one response (etcd batches), the first with two events.
    s.send({ ...revision(12), events: [put('a', 11), { type: 'DELETE', kv: { key: b64('b'), mod_revision: '11' } }, put('a', 12)] });
    s.send({ ...revision(12), watch_id: '-1' }); // progress at 12: nothing new
    s.send({ ...revision(15), watch_id: '-1' });
    s.send({ ...revision(16), fragment: true, events: [put('c', 16)] });
    s.send({ ...revision(16), events: [put('d', 16)] });
  });
  const c = new KeelHttpClient({ endpoints: [m.url] });
  const r = recorder();
  const w = c.watch('a', { prefix: true, prevKv: true, filters: ['NOPUT'], progressNotify: true }, r.handlers);
  await w.created;
  t.same(m.sessions[0].body, {
    create_request: { key: b64('a'), range_end: b64('b'), progress_notify: true, filters: ['NOPUT'], prev_kv: true },
  });
  await until(t, 'revision 16', () => w.lastRevision === 16);
  t.same(r.calls, [
    { revision: 11, keys: ['a', 'b'], types: ['PUT', 'DELETE'] },
    { revision: 12, keys: ['a'], types: ['PUT'] },
    { revision: 16, keys: ['c', 'd'], types: ['PUT', 'PUT'] },
  ], 'fragments are put back together');
  t.same(r.progress, [15]);
  await w.cancel();
  t.equal(await w.done, undefined, 'done: undefined after cancel()');
  await m.sessions[0].closed;
  t.pass('the member saw the connection close');
});

t.test('a dropped stream resumes on the next member from lastRevision + 1: no gap, no duplicate', async (t) => {
  const a = await member(t, (s) => {
    s.send({ ...revision(10), created: true });
    s.send({ ...revision(11), events: [put('k', 11)] });
    s.send({ ...revision(12), events: [put('k', 12)] });
    setTimeout(() => s.drop(), 20);
  });
  const b = await member(t, (s) => {
    s.send({ ...revision(14), created: true });
    // A member that is ahead replays from the start revision asked for; one event it repeats is dropped.
    s.send({ ...revision(14), events: [put('k', 12), put('k', 13)] });
    s.send({ ...revision(14), events: [put('k', 14)] });
  });
  const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const r = recorder();
  const w = c.watch('k', {}, r.handlers);
  await until(t, 'revision 14', () => w.lastRevision === 14);
  t.same(b.sessions[0].body, { create_request: { key: b64('k'), start_revision: '13' } });
  t.same(r.calls.map((x) => x.revision), [11, 12, 13, 14]);
  t.equal(c.currentEndpoint, b.url, 'the client sticks to the member that serves');
  await c.close();
  t.equal(await w.done, undefined, 'close() cancels the watch');
});

t.test('a watch "from now" dropped before any event resumes after the revision it was created at', async (t) => {
  const a = await member(t, (s) => {
    s.send({ ...revision(20), created: true });
    setTimeout(() => s.drop(), 20);
  });
  const b = await member(t, (s) => s.send({ ...revision(25), created: true }));
  const c = new KeelHttpClient({ endpoints: [a.url, b.url] });
  const w = c.watch('k', {}, recorder().handlers);
  await until(t, 'the second member', () => b.sessions.length === 1);
  t.same(b.sessions[0].body, { create_request: { key: b64('k'), start_revision: '21' } });
  t.equal(w.lastRevision, 0, 'nothing delivered yet');
  await w.cancel();
});

t.test('a member that cannot serve now (refused, 503, an error chunk) is passed over, with a pause per round', async (t) => {
  const refused = await refusingUrl();
  const a = await member(t, (s, n) => {
    if (n <= 2) return { status: 503, body: { error: 'etcdserver: no leader', code: 14, message: 'etcdserver: no leader' } };
    if (n === 3) {
      s.send({ ...revision(3), created: true });
      s.error(14, 'etcdserver: no leader');
      return undefined;
    }
    s.send({ ...revision(3), created: true });
    s.send({ ...revision(4), events: [put('k', 4)] });
    return undefined;
  });
  const c = new KeelHttpClient({ endpoints: [refused, a.url] });
  const r = recorder();
  const started = Date.now();
  const w = c.watch('k', { startRevision: 2 }, r.handlers);
  await w.created;
  await until(t, 'revision 4', () => w.lastRevision === 4, 10_000);
  t.equal(a.sessions.length, 4);
  t.same(
    a.sessions.map((s) => s.body.create_request?.start_revision),
    ['2', '2', '2', '2'],
    'nothing delivered before: the same start each time',
  );
  // Rounds 1 and 2 ended in 503: 100 ms, then 200 ms of pause.
  t.ok(Date.now() - started >= 250, `paused between rounds (${Date.now() - started} ms)`);
  t.same(r.calls.map((x) => x.revision), [4]);
  await w.cancel();
});

t.test('the ends of a watch', async (t) => {
  t.test('compacted: done gives etcd\'s error with the compact revision', async (t) => {
    const m = await member(t, (s) => s.send({ ...revision(9), created: true, canceled: true, compact_revision: '5' }));
    const c = new KeelHttpClient({ endpoints: [m.url] });
    const w = c.watch('k', { startRevision: 2 }, recorder().handlers);
    const err = (await w.done) as WatchEndError;
    t.ok(err instanceof KvError);
    t.equal(err.code, GrpcCode.OutOfRange);
    t.equal(err.message, 'etcdserver: mvcc: required revision has been compacted');
    t.equal(err.compactRevision, 5);
    await w.created;
    t.pass('it had been created');
  });

  t.test('canceled with a reason', async (t) => {
    const m = await member(t, (s) => s.send({ ...revision(9), created: true, canceled: true, cancel_reason: 'mvcc: watcher range is empty' }));
    const c = new KeelHttpClient({ endpoints: [m.url] });
    const w = c.watch('z', { rangeEnd: 'a' }, recorder().handlers);
    const err = (await w.done) as WatchEndError;
    t.same([err.code, err.message, err.compactRevision], [GrpcCode.FailedPrecondition, 'mvcc: watcher range is empty', undefined]);
  });

  t.test('a request the member refuses for good: done and created fail with its error, no retry', async (t) => {
    const msg = 'etcdserver: invalid start_revision -1 (must be >= 0)';
    const m = await member(t, () => ({ status: 400, body: { error: msg, code: 3, message: msg } }));
    const c = new KeelHttpClient({ endpoints: [m.url] });
    const w = c.watch('k', {}, recorder().handlers);
    const err = await w.done;
    t.same([err?.code, err?.message], [GrpcCode.InvalidArgument, msg]);
    await t.rejects(w.created, { message: msg });
    t.equal(m.sessions.length, 1);
  });

  t.test('a handler that throws ends the watch with that error', async (t) => {
    const m = await member(t, (s) => {
      s.send({ ...revision(1), created: true });
      s.send({ ...revision(2), events: [put('k', 2)] });
      s.send({ ...revision(3), events: [put('k', 3)] });
    });
    const c = new KeelHttpClient({ endpoints: [m.url] });
    const seen: number[] = [];
    const w = c.watch('k', {}, {
      onEvents: (_e, rev) => {
        seen.push(rev);
        throw new Error('disk full');
      },
    });
    const err = await w.done;
    t.same([err?.code, err?.message], [GrpcCode.Unknown, 'watch handler threw: disk full']);
    t.same(seen, [2], 'nothing after the throw');
  });

  t.test('cancel before creation', async (t) => {
    const m = await member(t, () => undefined); // opens the stream, never answers
    const c = new KeelHttpClient({ endpoints: [m.url] });
    const w = c.watch('k', {}, recorder().handlers);
    await until(t, 'the request', () => m.sessions.length === 1);
    await w.cancel();
    t.equal(await w.done, undefined);
    await t.rejects(w.created, { message: 'watch canceled before a member created it' });
  });
});

t.test('end to end through two real gateways: a watch moves from one to the other when its stream drops', async (t) => {
  const a = await startGateway(t);
  const b = await startGateway(t);
  const c = new KeelHttpClient({ endpoints: [`http://127.0.0.1:${a.port}`, `http://127.0.0.1:${b.port}`] });
  const r = recorder();
  const w = c.watch('job/', { prefix: true, prevKv: true }, r.handlers);
  await until(t, 'the stream on the first gateway', () => a.svc.streams.length === 1 && a.svc.streams[0].creates.length === 1);
  const sa = a.svc.streams[0];
  t.same(sa.creates[0], { key: Buffer.from('job/'), rangeEnd: Buffer.from('job0'), prevKv: true });
  const hdr = (revision: number) => ({ ...gatewayHeader, revision });
  const kv = (key: string, rev: number) => ({
    key: Buffer.from(key),
    value: Buffer.from(`v${rev}`),
    createRevision: 2,
    modRevision: rev,
    version: 1,
    lease: 0,
  });
  sa.sink({ header: hdr(4), watchId: 0, created: true, events: [] });
  sa.sink({ header: hdr(5), watchId: 0, events: [{ type: 'PUT', kv: kv('job/1', 5) }] });
  sa.sink({ header: hdr(6), watchId: 0, events: [{ type: 'PUT', kv: kv('job/2', 6), prevKv: kv('job/2', 3) }] });
  await w.created;
  await until(t, 'revision 6', () => w.lastRevision === 6);

  a.server.closeAllConnections();
  await until(t, 'the first stream closed', () => sa.closed);
  await until(t, 'the stream on the second gateway', () => b.svc.streams.length === 1 && b.svc.streams[0].creates.length === 1);
  const sb = b.svc.streams[0];
  t.same(sb.creates[0], { key: Buffer.from('job/'), rangeEnd: Buffer.from('job0'), prevKv: true, startRevision: 7 });
  sb.sink({ header: hdr(7), watchId: 0, created: true, events: [] });
  sb.sink({ header: hdr(7), watchId: 0, events: [{ type: 'DELETE', kv: { ...kv('job/1', 7), value: Buffer.alloc(0) } }] });
  await until(t, 'revision 7', () => w.lastRevision === 7);
  t.same(r.calls, [
    { revision: 5, keys: ['job/1'], types: ['PUT'] },
    { revision: 6, keys: ['job/2'], types: ['PUT'] },
    { revision: 7, keys: ['job/1'], types: ['DELETE'] },
  ]);
  await w.cancel();
  await until(t, 'the second stream closed', () => sb.closed);
});
