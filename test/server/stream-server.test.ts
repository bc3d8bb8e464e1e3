// The native stream's server side (src/server/stream-server.ts, stream-session.ts) against a fake
// KvService, through a raw WebSocket speaking the frames by hand: hellos, many requests in flight answered
// in completion order, the in-flight bound, watches multiplexed on one connection, backpressure from a
// client that stops reading, malformed frames (answered or closed, never a crash), the frame size limit,
// and close().

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { GrpcCode, KvError, type WatchResponse } from '../../src/kv/api';
import {
  decodeResult,
  decodeServerFrame,
  encodeClientHello,
  encodeRequest,
  STREAM_PATH,
  type DecodedServerFrame,
  type ParamsOf,
  type StreamMethod,
} from '../../src/kv/stream-protocol';
import type { StreamServerOptions } from '../../src/server/stream-server';
import { deferred, FakeMember, FakeStore, sleep, startFake, type RunningFake } from './fixtures/fake-kv-service';

/** A WebSocket that speaks the frames by hand and keeps what arrives. */
class RawClient {
  readonly frames: DecodedServerFrame[] = [];
  private wake: (() => void) | undefined;
  readonly closed: Promise<{ code: number; reason: string }>;
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(decodeServerFrame(data as Buffer));
      this.wake?.();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(url: string, hello = true): Promise<RawClient> {
    const ws = new WebSocket(url.replace('http:', 'ws:') + STREAM_PATH, { perMessageDeflate: false });
    const c = new RawClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const first = await c.next((f) => 'hello' in f);
    if (!('hello' in first) || first.hello.version !== 1) throw new Error('no hello');
    if (hello) ws.send(encodeClientHello());
    return c;
  }

  request<M extends StreamMethod>(method: M, params: ParamsOf<M>, id = this.nextId++): number {
    this.ws.send(encodeRequest(id, method, params));
    return id;
  }

  /** The next frame matching `pred` (taken out of `frames`). */
  async next(pred: (f: DecodedServerFrame) => boolean, timeoutMs = 3000): Promise<DecodedServerFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; have ${JSON.stringify(this.frames).slice(0, 300)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  answer(id: number): Promise<DecodedServerFrame> {
    return this.next((f) => 'id' in f && f.id === id);
  }

  watchFrame(watchId: number): Promise<DecodedServerFrame> {
    return this.next((f) => 'watch' in f && f.watch.watchId === watchId);
  }

  close(): void {
    this.ws.terminate();
  }
}

async function setup(t: Test, opts: StreamServerOptions = {}): Promise<{ fake: RunningFake; store: FakeStore }> {
  const store = new FakeStore();
  const fake = await startFake(new FakeMember(store, 'm1'), opts);
  t.teardown(() => fake.stop());
  return { fake, store };
}

const key = (s: string): Buffer => Buffer.from(s);

function errorOf(f: DecodedServerFrame): { code: number; message: string } {
  if (!('error' in f)) throw new Error(`expected an error answer, got ${JSON.stringify(f)}`);
  return f.error;
}

function resultOf<M extends StreamMethod>(method: M, f: DecodedServerFrame): ReturnType<typeof decodeResult<M>> {
  if (!('result' in f)) throw new Error(`expected a result, got ${JSON.stringify(f)}`);
  return decodeResult(method, f.id, f.result);
}

t.test('many requests in flight are answered in completion order, matched by id', async (t) => {
  const { fake, store } = await setup(t);
  store.write([{ put: { key: key('a'), value: key('1') } }, { put: { key: key('b'), value: key('2') } }, { put: { key: key('c'), value: key('3') } }]);
  const gates = new Map<string, ReturnType<typeof deferred<void>>>();
  for (const k of ['a', 'b', 'c']) gates.set(k, deferred());
  fake.member.hook = async (method, params) => {
    if (method === 'range') await gates.get((params as { key: Buffer }).key.toString())!.promise;
  };
  const c = await RawClient.connect(fake.url);
  t.teardown(() => c.close());
  const ids = ['a', 'b', 'c'].map((k) => c.request('range', { key: key(k) }));
  await sleep(50);
  t.equal(c.frames.length, 0, 'nothing answered while the service holds them');
  for (const k of ['c', 'a', 'b']) gates.get(k)!.resolve();
  const order: number[] = [];
  for (let i = 0; i < 3; i++) {
    const f = await c.next((x) => 'id' in x);
    if ('id' in f) order.push(f.id);
    const r = resultOf('range', f);
    t.equal(r.kvs[0].key.toString(), ['a', 'b', 'c'][ids.indexOf((f as { id: number }).id)], 'the answer carries its own request');
  }
  t.same(order, [ids[2], ids[0], ids[1]], 'answers leave as the service completes them');
});

t.test('beyond maxInFlight a request is answered "too many requests" without being served', async (t) => {
  const { fake } = await setup(t, { maxInFlight: 3 });
  const gate = deferred();
  fake.member.hook = async (method) => {
    if (method === 'range') await gate.promise;
  };
  const c = await RawClient.connect(fake.url);
  t.teardown(() => c.close());
  const ids = [1, 2, 3, 4, 5].map(() => c.request('range', { key: key('k') }));
  const e4 = errorOf(await c.answer(ids[3]));
  const e5 = errorOf(await c.answer(ids[4]));
  t.same(e4, { code: GrpcCode.Unavailable, message: 'etcdserver: too many requests' });
  t.same(e5, e4);
  t.equal(fake.member.callsOf('range').length, 3, 'only three reached the service');
  gate.resolve();
  for (const id of ids.slice(0, 3)) t.ok('result' in (await c.answer(id)), `request ${id} answered`);
  t.ok('result' in (await c.answer(c.request('range', { key: key('k') }))), 'slots are free again');
});

t.test('hello rules: version, hello first, one hello', async (t) => {
  const { fake } = await setup(t);
  const v2 = await RawClient.connect(fake.url, false);
  v2.ws.send(Buffer.from([0x81, 0xa5, ...Buffer.from('hello'), 0x81, 0xa7, ...Buffer.from('version'), 0x02]));
  t.same(await v2.closed, { code: 1002, reason: 'protocol version 2 is not supported; this member speaks version 1' });

  const noHello = await RawClient.connect(fake.url, false);
  noHello.request('status', {});
  t.same(await noHello.closed, { code: 1002, reason: 'the first frame must be a hello' });

  const twice = await RawClient.connect(fake.url);
  twice.ws.send(encodeClientHello());
  t.same(await twice.closed, { code: 1002, reason: 'a second hello frame' });
  t.equal(fake.member.calls.length, 0, 'none of them reached the service');
});

t.test('malformed frames: answered when they have an id, the connection closed when not; never a crash', async (t) => {
  const { fake } = await setup(t);
  const c = await RawClient.connect(fake.url);
  c.ws.send(encodeRequest(7, 'range', { key: 'k' } as unknown as ParamsOf<'range'>));
  t.same(errorOf(await c.answer(7)), {
    code: GrpcCode.InvalidArgument,
    message: 'etcdserver: malformed range request: params.key: expected binary, got a string',
  });
  c.ws.send(encodeRequest(8, 'launch' as StreamMethod, {} as ParamsOf<'status'>));
  t.match(errorOf(await c.answer(8)).message, /^etcdserver: malformed request: method: expected one of "range"/);
  t.ok('result' in (await c.answer(c.request('status', {}, 9))), 'the connection still serves');

  // The same id twice in flight: the client has lost track, answering would be ambiguous.
  const gate = deferred();
  fake.member.hook = async (m) => {
    if (m === 'range') await gate.promise;
  };
  c.request('range', { key: key('a') }, 20);
  c.request('range', { key: key('a') }, 20);
  t.same(await c.closed, { code: 1002, reason: 'request id 20 is already in flight' });
  gate.resolve();
  fake.member.hook = undefined;

  const noId = await RawClient.connect(fake.url);
  noId.ws.send(Buffer.from([0x81, 0xa6, ...Buffer.from('method'), 0xa5, ...Buffer.from('range')]));
  const closed = await noId.closed;
  t.equal(closed.code, 1007);
  t.match(closed.reason, /^malformed frame: expected a hello frame or a request frame/);

  const garbage = await RawClient.connect(fake.url);
  garbage.ws.send(Buffer.from([0x92, 0x01]));
  t.equal((await garbage.closed).code, 1007, 'undecodable bytes close with 1007');

  const text = await RawClient.connect(fake.url);
  text.ws.send('{"id":1}');
  t.same(await text.closed, { code: 1003, reason: 'text message: the stream speaks binary MessagePack frames' });

  const after = await RawClient.connect(fake.url);
  t.teardown(() => after.close());
  t.ok('result' in (await after.answer(after.request('health', {}))), 'the member serves new connections afterwards');
});

t.test('errors of the service travel with their code; unexpected ones as Unknown', async (t) => {
  const { fake } = await setup(t);
  fake.member.hook = (method) => {
    if (method === 'leaseRevoke') throw new KvError(GrpcCode.NotFound, 'etcdserver: requested lease not found');
    if (method === 'compact') throw new TypeError('boom');
  };
  const c = await RawClient.connect(fake.url);
  t.teardown(() => c.close());
  t.same(errorOf(await c.answer(c.request('leaseRevoke', { id: 5 }))), {
    code: GrpcCode.NotFound,
    message: 'etcdserver: requested lease not found',
  });
  t.same(errorOf(await c.answer(c.request('compact', { revision: 1 }))), { code: GrpcCode.Unknown, message: 'boom' });
  // health answers "unhealthy, because" rather than an error, as GET /health does.
  fake.member.hook = (method) => {
    if (method === 'health') throw new KvError(GrpcCode.Unavailable, 'etcdserver: member is starting (opening its data dir)');
  };
  t.same(resultOf('health', await c.answer(c.request('health', {}))), {
    health: false,
    reason: 'etcdserver: member is starting (opening its data dir)',
  });
});

t.test('a request frame above maxFrameBytes is answered "too large"; far above, the connection closes', async (t) => {
  const { fake } = await setup(t, { maxFrameBytes: 1024 });
  const c = await RawClient.connect(fake.url);
  const big = c.request('put', { key: key('k'), value: Buffer.alloc(1500) });
  t.same(errorOf(await c.answer(big)), { code: GrpcCode.InvalidArgument, message: 'etcdserver: request is too large' });
  t.equal(fake.member.callsOf('put').length, 0, 'not served');
  t.ok('result' in (await c.answer(c.request('put', { key: key('k'), value: Buffer.alloc(500) }))), 'a smaller one is');
  c.request('put', { key: key('k'), value: Buffer.alloc(3000) });
  t.equal((await c.closed).code, 1009, 'above twice the limit the frame is not even read');
});

t.test('watches are multiplexed by id on one connection', async (t) => {
  const { fake, store } = await setup(t);
  const c = await RawClient.connect(fake.url);
  t.teardown(() => c.close());
  const w5 = resultOf('watchCreate', await c.answer(c.request('watchCreate', { key: key('a'), watchId: 5 })));
  t.same({ id: w5.watchId, created: w5.created }, { id: 5, created: true }, 'the answer is the created response');
  resultOf('watchCreate', await c.answer(c.request('watchCreate', { key: key('b'), watchId: 7 })));
  const picked = resultOf('watchCreate', await c.answer(c.request('watchCreate', { key: key('c') })));
  t.ok(picked.watchId >= 0 && picked.watchId !== 5 && picked.watchId !== 7, `the member picked free id ${picked.watchId}`);

  store.write([{ put: { key: key('a'), value: key('1') } }]);
  store.write([{ put: { key: key('b'), value: key('2') } }, { put: { key: key('c'), value: key('3') } }]);
  const fa = await c.watchFrame(5);
  const fb = await c.watchFrame(7);
  const fc = await c.watchFrame(picked.watchId);
  t.same((fa as { watch: WatchResponse }).watch.events.map((e) => e.kv.key.toString()), ['a']);
  t.same((fb as { watch: WatchResponse }).watch.events.map((e) => e.kv.key.toString()), ['b']);
  t.same((fc as { watch: WatchResponse }).watch.events.map((e) => e.kv.value.toString()), ['3']);

  t.match(errorOf(await c.answer(c.request('watchCreate', { key: key('x'), watchId: 7 }))), {
    code: GrpcCode.InvalidArgument,
    message: 'etcdserver: watch id 7 is already in use on this stream',
  });
  const canceled = resultOf('watchCancel', await c.answer(c.request('watchCancel', { watchId: 5 })));
  t.same({ id: canceled.watchId, canceled: canceled.canceled }, { id: 5, canceled: true }, 'cancel is answered by the canceled response');
  t.same(errorOf(await c.answer(c.request('watchCancel', { watchId: 5 }))), {
    code: GrpcCode.NotFound,
    message: 'etcdserver: no watch with id 5 on this stream',
  });
  store.write([{ put: { key: key('a'), value: key('again') } }, { put: { key: key('b'), value: key('again') } }]);
  await c.watchFrame(7);
  await sleep(30);
  t.notOk(c.frames.some((f) => 'watch' in f && f.watch.watchId === 5), 'nothing more for the canceled watch');

  // The hub refuses a create with watch id -1 (as etcd): that answers the create.
  const refused = resultOf('watchCreate', await c.answer(c.request('watchCreate', { key: key('z'), rangeEnd: key('a'), watchId: 9 })));
  t.same({ canceled: refused.canceled, reason: refused.cancelReason }, { canceled: true, reason: 'mvcc: watcher range is empty' });
  resultOf('watchCreate', await c.answer(c.request('watchCreate', { key: key('y'), watchId: 9 })));

  t.same(resultOf('watchProgress', await c.answer(c.request('watchProgress', {}))), {});
  const p = await c.watchFrame(-1);
  t.equal((p as { watch: WatchResponse }).watch.header.revision, store.revision, 'the progress notification follows as a watch frame');
});

t.test('a client that stops reading backs the watch up, and gets everything in order when it reads again', async (t) => {
  const { fake, store } = await setup(t, { highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024 });
  const c = await RawClient.connect(fake.url);
  t.teardown(() => c.close());
  resultOf('watchCreate', await c.answer(c.request('watchCreate', { key: key('k/'), rangeEnd: key('k0'), watchId: 1 })));
  const hub = [...fake.member.streams][0];
  c.ws.pause(); // stop reading: the member's socket buffer fills
  const first = store.revision + 1;
  const n = 300;
  for (let i = 0; i < n; i++) {
    store.write([{ put: { key: key(`k/${i}`), value: Buffer.alloc(16 * 1024, i % 256) } }]);
    if (i % 20 === 0) await sleep(1); // let the socket move what it can
  }
  await sleep(100);
  t.ok(hub.falseReturns >= 1, `the sink said "backed up" (${hub.falseReturns} times)`);
  t.ok(hub.held.length > 0, `the hub holds ${hub.held.length} responses instead of the member buffering them`);
  c.ws.resume();
  const revs: number[] = [];
  const deadline = Date.now() + 10_000;
  while (revs.length < n && Date.now() < deadline) {
    const f = await c.watchFrame(1);
    if ('watch' in f) for (const e of f.watch.events) revs.push(e.kv.modRevision);
  }
  t.same(revs, Array.from({ length: n }, (_v, i) => first + i), 'every event, once, in order');
  t.ok(hub.resumes >= 1, 'the hub was told to resume');
  t.equal(hub.held.length, 0, 'nothing left held');
});

t.test('close() closes every connection with 1001 and frees its watches', async (t) => {
  const store = new FakeStore();
  const fake = await startFake(new FakeMember(store, 'm1'));
  const a = await RawClient.connect(fake.url);
  const b = await RawClient.connect(fake.url);
  resultOf('watchCreate', await a.answer(a.request('watchCreate', { key: key('k'), watchId: 1 })));
  t.equal(fake.stream.connections, 2);
  await fake.stream.close();
  t.same(await a.closed, { code: 1001, reason: 'member shutting down' });
  t.same(await b.closed, { code: 1001, reason: 'member shutting down' });
  t.equal(fake.stream.connections, 0);
  t.equal(fake.member.streams.size, 0, 'the watch stream was closed');
  await fake.stop();
});

t.test('a client that does not answer pings is cut, and its watches freed', async (t) => {
  const { fake } = await setup(t, { pingIntervalMs: 50 });
  const ws = new WebSocket(fake.url.replace('http:', 'ws:') + STREAM_PATH, { autoPong: false });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve) => ws.once('message', () => resolve()));
  ws.send(encodeClientHello());
  ws.send(encodeRequest(1, 'watchCreate', { key: key('k'), watchId: 1 }));
  await sleep(30);
  t.equal(fake.member.streams.size, 1, 'the watch is open');
  t.equal(await closed, 1006, 'cut without a close frame');
  t.ok(await (async () => {
    for (let i = 0; i < 100 && fake.stream.connections > 0; i++) await sleep(10);
    return fake.stream.connections === 0;
  })(), 'the connection is gone');
  t.equal(fake.member.streams.size, 0, 'and its watch stream closed');
});

t.test('an upgrade to another path is answered 404', async (t) => {
  const server = http.createServer();
  const { attachStreamServer } = await import('../../src/server/stream-server');
  const ss = attachStreamServer(server, new FakeMember(new FakeStore(), 'm'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    await ss.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v3/other`);
  const status = await new Promise<number | undefined>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.on('error', () => resolve(undefined));
  });
  t.equal(status, 404);
});
