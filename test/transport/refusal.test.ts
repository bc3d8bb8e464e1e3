// The handshake refuses streams from another cluster, to another member, from unknown members and of other
// protocol versions; nothing is delivered and both sides say clearly what does not match, once.

import type { IncomingMessage } from 'node:http';
import t from 'tap';
import WebSocket from 'ws';
import {
  A, B, C, CLUSTER, FAST, OTHER_CLUSTER, WARN, appMsg, closeServer, listen, member, sleep, urlOf, waitFor,
} from './fixtures/harness';

t.test('a peer of another cluster is refused, and both sides say so once', async (t) => {
  const [aServer, bServer] = [await listen(0), await listen(0)];
  const a = member(A, aServer, new Map([[B, urlOf(bServer)]]), FAST);
  const b = member(B, bServer, new Map([[A, urlOf(aServer)]]), { ...FAST, clusterId: OTHER_CLUSTER });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  // Keep trying for a while: several dials each way, all refused.
  for (let i = 0; i < 12; i++) {
    a.transport.send([appMsg(A, B, i)]);
    b.transport.send([appMsg(B, A, i)]);
    await sleep(50);
  }
  await waitFor(() => (a.transport.stats().get(B)?.dials ?? 0) >= 3, 'A retried');
  t.equal(b.received.length, 0, 'nothing delivered to B');
  t.equal(a.received.length, 0, 'nothing delivered to A');
  t.notOk(a.transport.isActive(B, 10_000), 'B not active for A');
  t.notOk(b.transport.isActive(A, 10_000), 'A not active for B');

  // Each member both dials and accepts, so each logs both the dialer's and the acceptor's view.
  const dialerSide = a.lines.filter(
    (l) => l.level >= WARN && l.msg.includes(`at ${urlOf(bServer)} belongs to cluster`),
  );
  t.equal(dialerSide.length, 1, 'dialer warned once, not per retry');
  t.equal(dialerSide[0]?.msg,
    `peer ${B} at ${urlOf(bServer)} belongs to cluster ${OTHER_CLUSTER}, we are cluster ${CLUSTER}`,
    'dialer names both clusters');
  const acceptorSide = b.lines.filter((l) => l.level >= WARN && l.msg.includes(`peer ${A} connecting from`));
  t.equal(acceptorSide.length, 1, 'acceptor warned once');
  t.match(acceptorSide[0]?.msg,
    new RegExp(`^peer ${A} connecting from 127\\.0\\.0\\.1:\\d+ belongs to cluster ${CLUSTER}, ` +
      `we are cluster ${OTHER_CLUSTER}$`),
    'acceptor names both clusters');
});

t.test('a member replaced at a URL is refused (wrong x-keel-to)', async (t) => {
  const [aServer, bServer] = [await listen(0), await listen(0)];
  // A believes C lives at B's URL.
  const a = member(A, aServer, new Map([[C, urlOf(bServer)]]), FAST);
  const b = member(B, bServer, new Map([[A, urlOf(aServer)]]), FAST);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  a.transport.send([appMsg(A, C, 1)]);
  await waitFor(() => a.lines.some((l) => l.level >= WARN && l.msg.includes('replaced')), 'dialer warning');
  await sleep(100);
  a.transport.send([appMsg(A, C, 2)]);
  t.equal(b.received.length, 0, 'nothing delivered');
  const expected = `the member at ${urlOf(bServer)} is ${B}, not ${C} (was the member replaced at that URL?)`;
  t.ok(a.lines.some((l) => l.msg === expected), 'dialer names the member it found');
  t.ok(b.lines.some((l) => l.level >= WARN && l.msg.includes(`dialed member ${C}, but this is member ${B}`)),
    'acceptor names both ids');
});

interface Answer {
  status: number;
  reason: string | undefined;
  body: string;
}

/** Dials a raw WebSocket with the given headers and reports the refusal (or status 101 if accepted). */
function rawDial(url: string, headers: Record<string, string>, path = '/raft/stream'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http:', 'ws:')}${path}`, { headers, handshakeTimeout: 2000 });
    ws.on('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const r = res.headers['x-keel-reject-reason'];
        resolve({ status: res.statusCode ?? 0, reason: typeof r === 'string' ? r : undefined, body });
        ws.terminate();
      });
    });
    ws.on('open', () => {
      resolve({ status: 101, reason: undefined, body: '' });
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
  });
}

t.test('handshake refusals, as HTTP answers', async (t) => {
  const server = await listen(0);
  const b = member(B, server, new Map([[A, 'http://127.0.0.1:1']]), FAST);
  // Another API's upgrade on the same listener must be left alone by the transport.
  server.on('upgrade', (req, socket) => {
    if (req.url !== '/other') return;
    socket.end('HTTP/1.1 418 I am a teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  t.teardown(() => b.close());
  const url = urlOf(server);
  const good = { 'x-keel-transport-version': '1', 'x-keel-cluster-id': CLUSTER, 'x-keel-from': A, 'x-keel-to': B };

  const missing = await rawDial(url, { 'x-keel-transport-version': '1' });
  t.equal(missing.status, 400, 'missing headers: 400');
  t.equal(missing.reason, 'bad-request');

  const version = await rawDial(url, { ...good, 'x-keel-transport-version': '99' });
  t.equal(version.status, 412, 'other protocol version: 412');
  t.equal(version.reason, 'version-mismatch');

  const cluster = await rawDial(url, { ...good, 'x-keel-cluster-id': OTHER_CLUSTER });
  t.equal(cluster.status, 412, 'other cluster: 412');
  t.equal(cluster.reason, 'cluster-mismatch');
  t.match(cluster.body, `belongs to cluster ${OTHER_CLUSTER}, we are cluster ${CLUSTER}`, 'body explains');

  const unknown = await rawDial(url, { ...good, 'x-keel-from': C });
  t.equal(unknown.status, 412, 'unknown member: 412');
  t.equal(unknown.reason, 'unknown-member');

  const self = await rawDial(url, { ...good, 'x-keel-from': B });
  t.equal(self.reason, 'unknown-member', 'a stream claiming to come from the member itself is refused');

  const ok = await rawDial(url, good);
  t.equal(ok.status, 101, 'a correct handshake is accepted');

  const other = await rawDial(url, good, '/other');
  t.equal(other.status, 418, "another path's upgrade is left to its own listener");

  await b.transport.close();
  t.equal(server.listenerCount('upgrade'), 1, 'close() detaches the transport from the server');
  await closeServer(server);
});
