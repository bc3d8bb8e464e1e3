// The gateway's streaming routes over real HTTP: POST /v3/watch (the test plays the watch hub through the
// sink the gateway hands to watch()) and POST /v3/lease/keepalive.

import http from 'node:http';
import t, { type Test } from 'tap';
import { Errors, MAX_REQUEST_BYTES, type WatchResponse } from '../../src/kv/api';
import { HEADER_JSON, header, startGateway, type RecordedWatchStream, type RecordingService } from './fixtures/gateway-recorder';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

/** Waits for `cond`, polling; fails the test after `ms`. */
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

/** A streaming request: the body can be written over time, the answer is read as it comes. */
interface Streaming {
  req: http.ClientRequest;
  status: Promise<number>;
  res: Promise<http.IncomingMessage>;
  /** Text of the answer so far. */
  text(): string;
  /** The complete lines so far, parsed. */
  lines(): unknown[];
  ended: Promise<void>;
  /** Stop reading the answer (the socket fills up). */
  pause(): void;
  resume(): void;
}

function stream(port: number, path: string, firstBody?: string): Streaming {
  const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false });
  let text = '';
  let paused = false;
  let response: http.IncomingMessage | undefined;
  let markEnded!: () => void;
  // Listened for in the 'response' handler itself: a short answer can end before a promise callback runs.
  const ended = new Promise<void>((resolve) => (markEnded = resolve));
  const res = new Promise<http.IncomingMessage>((resolve, reject) => {
    req.on('response', (r) => {
      response = r;
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', markEnded).on('close', markEnded);
      if (paused) r.pause();
      resolve(r);
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  if (firstBody !== undefined) req.write(firstBody);
  return {
    req,
    res,
    status: res.then((r) => r.statusCode ?? 0),
    text: () => text,
    lines: () =>
      text
        .split('\n')
        .slice(0, -1)
        .map((l) => JSON.parse(l) as unknown),
    ended,
    pause: () => {
      paused = true;
      response?.pause();
    },
    resume: () => {
      paused = false;
      response?.resume();
    },
  };
}

async function openWatch(t: Test, svc: RecordingService, port: number, body: object) {
  const s = stream(port, '/v3/watch', JSON.stringify(body));
  t.teardown(() => s.req.destroy());
  t.equal(await s.status, 200);
  await until(t, 'the watch stream', () => svc.streams.length === 1);
  return { s, ws: svc.streams[0] as RecordedWatchStream };
}

t.test("watch: etcd's documented exchange, line by line", async (t) => {
  const { svc, port } = await startGateway(t);
  const { s, ws } = await openWatch(t, svc, port, { create_request: { key: 'Zm9v' } });
  t.same(ws.creates, [{ key: Buffer.from('foo') }]);
  t.match((await s.res).headers['content-type'], /^application\/json/);

  t.equal(ws.sink({ header: { ...header, revision: 1 }, watchId: 0, created: true, events: [] }), true);
  const putEvent: WatchResponse = {
    header: { ...header, revision: 2 },
    watchId: 0,
    events: [
      {
        type: 'PUT',
        kv: { key: Buffer.from('foo'), value: Buffer.from('bar'), createRevision: 2, modRevision: 2, version: 1, lease: 0 },
      },
    ],
  };
  ws.sink(putEvent);
  await until(t, 'two lines', () => s.lines().length === 2);
  t.equal(
    s.text(),
    `{"result":{"header":${JSON.stringify({ ...HEADER_JSON, revision: '1' })},"created":true}}\n` +
      `{"result":{"header":${JSON.stringify({ ...HEADER_JSON, revision: '2' })},"events":[{"kv":{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}}]}}\n`,
  );

  // A delete, and a progress notification (watch id -1).
  ws.sink({
    header: { ...header, revision: 3 },
    watchId: 0,
    events: [{ type: 'DELETE', kv: { key: Buffer.from('foo'), value: Buffer.alloc(0), createRevision: 0, modRevision: 3, version: 0, lease: 0 } }],
  });
  ws.sink({ header: { ...header, revision: 3 }, watchId: -1, events: [] });
  await until(t, 'four lines', () => s.lines().length === 4);
  t.same(s.lines().slice(2), [
    { result: { header: { ...HEADER_JSON, revision: '3' }, events: [{ type: 'DELETE', kv: { key: 'Zm9v', mod_revision: '3' } }] } },
    { result: { header: { ...HEADER_JSON, revision: '3' }, watch_id: '-1' } },
  ]);
  t.equal(ws.closed, false, 'the request body has ended, the watch goes on');
});

t.test('watch: more requests on the same body (create, cancel, progress)', async (t) => {
  const { svc, port } = await startGateway(t);
  const { s, ws } = await openWatch(t, svc, port, {
    create_request: { key: b64('a'), range_end: b64('b'), start_revision: '4', prev_kv: true, filters: ['NOPUT'], watch_id: '3' },
  });
  s.req.write('\n{"create_request": {"key": "Yg==", "range_end": "AA=="}}');
  s.req.write('{"progress_request": {}}\n{"cancel_');
  s.req.write('request": {"watch_id": "3"}}');
  await until(t, 'the cancel', () => ws.cancels.length === 1);
  t.same(ws.creates, [
    { key: Buffer.from('a'), rangeEnd: Buffer.from('b'), startRevision: 4, prevKv: true, filters: ['NOPUT'], watchId: 3 },
    { key: Buffer.from('b'), rangeEnd: Buffer.from([0]) },
  ]);
  t.equal(ws.progressRequests, 1);
  t.same(ws.cancels, [3]);
  t.equal(svc.streams.length, 1, 'one stream for the whole body');
  s.req.end();
});

t.test('watch: the stream is closed when the client disconnects', async (t) => {
  const { svc, port } = await startGateway(t);
  const { s, ws } = await openWatch(t, svc, port, { create_request: { key: b64('k') } });
  ws.sink({ header, watchId: 0, created: true, events: [] });
  await until(t, 'the created line', () => s.lines().length === 1);
  t.equal(ws.closed, false);
  s.req.destroy();
  await until(t, 'close() of the stream', () => ws.closed);
  t.equal(ws.sink({ header, watchId: 0, events: [] }), false, 'the sink refuses what comes after');
});

t.test('watch: a client that does not read does not make the server buffer without bound', async (t) => {
  const { svc, port } = await startGateway(t);
  const { s, ws } = await openWatch(t, svc, port, { create_request: { key: b64('k') } });
  s.pause();
  // Small responses (1 KiB), so that the sink says "backed up" only once the socket buffers (kernel and
  // Node) are full; it must say so long before 64 MiB are pushed at a client that reads nothing.
  const value = Buffer.alloc(1024, 'v');
  const response = (rev: number): WatchResponse => ({
    header: { ...header, revision: rev },
    watchId: 0,
    events: [{ type: 'PUT', kv: { key: Buffer.from('k'), value, createRevision: 2, modRevision: rev, version: rev, lease: 0 } }],
  });
  const limit = 64 * 1024;
  let pushed = 0;
  let accepted = true;
  const deadline = Date.now() + 30_000;
  while (pushed < limit && Date.now() < deadline) {
    const resumesBefore = ws.resumes;
    accepted = ws.sink(response(++pushed));
    if (!accepted) {
      // Play the hub: hold on until resume() (the socket took what was buffered); when it does not come
      // within 300 ms, the client's and the server's socket buffers are full.
      const until = Date.now() + 300;
      while (ws.resumes === resumesBefore && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
      if (ws.resumes === resumesBefore) break;
    } else if (pushed % 64 === 0) {
      await new Promise((r) => setImmediate(r));
    }
  }
  t.equal(accepted, false, `the sink said "backed up" after ${pushed} responses (~${pushed} KiB)`);
  t.ok(pushed < limit, 'well before 64 MiB');
  t.ok(pushed > 16, 'not before the socket had taken some (the sink is not always "backed up")');
  const resumesWhilePaused = ws.resumes;
  await new Promise((r) => setTimeout(r, 200));
  t.equal(ws.resumes, resumesWhilePaused, 'not resumed while the client does not read');

  // The hub holds the rest; the client reads again: the stream is resumed, nothing is lost or reordered.
  s.resume();
  await until(t, 'resume()', () => ws.resumes > resumesWhilePaused, 20_000);
  await until(t, 'every line', () => s.lines().length === pushed, 20_000);
  const revs = s.lines().map((l) => Number((l as { result: { header: { revision: string } } }).result.header.revision));
  t.same(revs, Array.from({ length: pushed }, (_, i) => i + 1));
});

t.test('watch: a bad first request is a plain error answer and no stream is opened', async (t) => {
  const { svc, post } = await startGateway(t);
  const cases: [unknown, number, number, string][] = [
    [{ create_request: { key: 'Zm9v', start_revision: '-1' } }, 400, 3, 'etcdserver: invalid start_revision -1 (must be >= 0)'],
    [{ create_request: { key: 'Zm9v', watch_id: '-2' } }, 400, 3, 'etcdserver: invalid watch_id -2 (must be >= -1)'],
    [{ create_request: { key: 'Zm9v', filters: ['NOPUT', 'NOTHING'] } }, 400, 3, 'create_request.filters[1]: unknown value "NOTHING" (expected one of NOPUT, NODELETE, or 0-1)'],
    [{ create_request: { key: 'Zm9v!' } }, 400, 3, 'create_request.key: illegal base64 data'],
    [{ create_request: { key: 'Zm9v', prefix: true } }, 400, 3, 'create_request.prefix: unknown field'],
    [{ create: { key: 'Zm9v' } }, 400, 3, 'create: unknown field'],
    [{ create_request: { key: b64('x'.repeat(MAX_REQUEST_BYTES + 1)) } }, 400, 3, 'etcdserver: request is too large'],
    ['[1]', 400, 3, 'invalid JSON body: expected a JSON object, got "["'],
    ['{"create_request": ', 400, 3, 'invalid JSON body: unexpected end of JSON input'],
    ['', 400, 3, 'empty request body (expected {"create_request": {"key": "<base64>"}})'],
  ];
  for (const [body, status, code, message] of cases) {
    const r = await post('/v3/watch', typeof body === 'string' ? body : (body as object));
    t.equal(r.status, status, message);
    t.same(r.json, { error: message, code, message });
  }
  t.same(svc.calls, [], 'nothing reached the member');

  svc.watchFail = Errors.starting();
  const starting = await post('/v3/watch', { create_request: { key: 'Zm9v' } });
  t.equal(starting.status, 503);
  t.same(starting.json, { error: Errors.starting().message, code: 14, message: Errors.starting().message });
});

t.test('watch: an inverted range is for the hub to answer (created and canceled), as etcd does', async (t) => {
  const { svc, port } = await startGateway(t);
  const { ws } = await openWatch(t, svc, port, { create_request: { key: b64('z'), range_end: b64('a') } });
  t.same(ws.creates, [{ key: Buffer.from('z'), rangeEnd: Buffer.from('a') }]);
});

t.test('watch: a bad later request ends the stream with the error chunk', async (t) => {
  const { svc, port } = await startGateway(t);
  const { s, ws } = await openWatch(t, svc, port, { create_request: { key: b64('k') } });
  ws.sink({ header, watchId: 0, created: true, events: [] });
  s.req.write('{"cancel_request": {"watch_id": "x"}}');
  await s.ended;
  t.same(s.lines(), [
    { result: { header: HEADER_JSON, created: true } },
    {
      error: {
        grpc_code: 3,
        http_code: 400,
        message: 'cancel_request.watch_id: expected an integer (number or decimal string)',
        http_status: 'Bad Request',
      },
    },
  ]);
  t.equal(ws.closed, true);
});

t.test('lease keep-alive: one answer line per request, in order, then the end', async (t) => {
  const { svc, port, post } = await startGateway(t);
  const one = await post('/v3/lease/keepalive', { ID: '7587' });
  t.equal(one.status, 200);
  t.equal(one.text, `{"result":{"header":${JSON.stringify(HEADER_JSON)},"ID":"7587","TTL":"30"}}\n`);

  // The first keep-alive is answered last by the member; the lines still come in request order.
  svc.keepAlive = (req) =>
    new Promise((resolve) => setTimeout(() => resolve({ header, id: req.id, ttl: req.id === 2 ? 0 : 30 }), req.id === 1 ? 60 : 5));
  const s = stream(port, '/v3/lease/keepalive', '{"ID": 1}\n{"ID": "2"}');
  s.req.end('{"ID": 3}');
  await s.ended;
  t.same(s.lines(), [
    { result: { header: HEADER_JSON, ID: '1', TTL: '30' } },
    { result: { header: HEADER_JSON, ID: '2' } },
    { result: { header: HEADER_JSON, ID: '3', TTL: '30' } },
  ], 'TTL 0 (lease gone) is left out, as etcd does');
});

t.test('lease keep-alive: errors', async (t) => {
  const { svc, port, post } = await startGateway(t);
  const cases: [unknown, string][] = [
    [{ ID: '-3' }, 'etcdserver: invalid lease ID -3 (a lease id is between 0 and 9007199254740991)'],
    [{ id: '3' }, 'id: unknown field'],
    [{ ID: '18446744073709551615' }, 'ID: 18446744073709551615 is out of the range Keel supports (at most 9007199254740991 = 2^53-1 in magnitude)'],
    ['', 'empty request body (expected {"ID": "<lease id>"})'],
  ];
  for (const [body, message] of cases) {
    const r = await post('/v3/lease/keepalive', typeof body === 'string' ? body : (body as object));
    t.equal(r.status, 400, message);
    t.same(r.json, { error: message, code: 3, message });
  }
  t.same(svc.calls, [], 'nothing reached the member');

  // A bad second request: the first is answered, then the stream ends with the error chunk.
  const s = stream(port, '/v3/lease/keepalive', '{"ID": 1}{"ID": true}');
  s.req.end();
  await s.ended;
  t.same(s.lines(), [
    { result: { header: HEADER_JSON, ID: '1', TTL: '30' } },
    { error: { grpc_code: 3, http_code: 400, message: 'ID: expected an integer (number or decimal string)', http_status: 'Bad Request' } },
  ]);

  // The member fails before anything was written: the status is the error's, the body the error chunk.
  svc.fail = Errors.noLeader();
  const r = await post('/v3/lease/keepalive', { ID: '1' });
  t.equal(r.status, 503);
  t.equal(r.text, '{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader","http_status":"Service Unavailable"}}\n');
});
