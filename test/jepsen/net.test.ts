// The link proxies of jepsen/net over real TCP on 127.0.0.1: echo servers stand in for the members behind
// the proxies, and test clients dial the proxies the way peers do (an HTTP request head naming the sender).

import net, { type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import t, { type Test } from 'tap';
import { LinkTable } from '../../jepsen/net/links';
import { createNet } from '../../jepsen/net/net';
import { HEAD_TIMEOUT_MS } from '../../jepsen/net/proxied-connection';
import { senderIdOf } from '../../jepsen/net/sender';
import { createRng } from '../../jepsen/rng';
import type { Net, NodeInfo } from '../../jepsen/types';
import { freePorts } from '../process/fixtures/proc-cluster';

const NAMES = ['n1', 'n2', 'n3'];
/** member ids as the handshake headers write them: 16 digits with leading zeros */
const HEADER_ID: Record<string, string> = { n1: '00000000000000a1', n2: '00000000000000a2', n3: '00000000000000a3' };
const WAIT_MS = 5_000;

interface Env {
  net: Net;
  nodes: Record<string, NodeInfo>;
  /** every socket a test opened, destroyed at teardown */
  sockets: Set<Socket>;
  backends: Server[];
}

/** A raw TCP server that echoes every byte back: the member behind a proxy. */
async function echoServer(sockets: Set<Socket>): Promise<{ server: Server; port: number }> {
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port };
}

async function setup(t: Test): Promise<Env> {
  const sockets = new Set<Socket>();
  const ports = await freePorts(NAMES.length);
  const logs: string[] = [];
  const netw = createNet({ log: (m) => logs.push(m), rng: createRng(7) });
  const nodes: Record<string, NodeInfo> = {};
  const backends: Server[] = [];
  for (const [i, name] of NAMES.entries()) {
    const { server, port } = await echoServer(sockets);
    backends.push(server);
    nodes[name] = {
      name,
      clientUrl: 'http://127.0.0.1:1',
      peerUrl: `http://127.0.0.1:${ports[i]}`,
      listenPeerUrl: `http://127.0.0.1:${port}`,
      dataDir: '/nonexistent',
      logFile: '/nonexistent',
    };
    await netw.addNode(nodes[name]!);
    // identified without the leading zeros the headers carry: compared as numbers
    netw.identify(name, HEADER_ID[name]!.replace(/^0+/, ''));
  }
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await netw.close();
    await Promise.all(backends.map((b) => new Promise((r) => b.close(r))));
  });
  return { net: netw, nodes, sockets, backends };
}

function head(from: string | undefined): string {
  const sender = from === undefined ? '' : `X-Keel-From: ${HEADER_ID[from]}\r\n`;
  return `GET /raft/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n${sender}\r\n`;
}

/** A peer connection as `from` would dial it to `to`'s proxy, with its request head sent. */
async function dial(env: Env, from: string | undefined, to: string, rawHead?: string): Promise<Socket> {
  const port = Number(new URL(env.nodes[to]!.peerUrl).port);
  const s = net.connect(port, '127.0.0.1');
  env.sockets.add(s);
  s.on('error', () => {}); // a cut or reset link shows up as 'close', asserted where it matters
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  s.write(rawHead ?? head(from));
  return s;
}

/** Reads from `s` until `text` has arrived (after anything already expected), or fails after WAIT_MS. */
function receive(s: Socket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => finish(new Error(`timed out waiting for ${JSON.stringify(text)}, got ${JSON.stringify(got)}`)), WAIT_MS);
    const onData = (b: Buffer): void => {
      got += b.toString('latin1');
      if (got.includes(text)) finish();
    };
    const onClose = (): void => finish(new Error(`closed while waiting for ${JSON.stringify(text)}, got ${JSON.stringify(got)}`));
    function finish(err?: Error): void {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('close', onClose);
      if (err) reject(err);
      else resolve(got);
    }
    s.on('data', onData);
    s.once('close', onClose);
  });
}

/** Sends `msg` and waits for its echo. */
async function roundTrip(s: Socket, msg: string): Promise<void> {
  const got = receive(s, msg);
  s.write(msg);
  await got;
}

/** Resolves once `s` is closed; fails if it is still open after WAIT_MS. */
function closed(s: Socket): Promise<void> {
  if (s.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the connection is still open')), WAIT_MS);
    s.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** An echo through a fresh connection on the link, proving the link is open. */
async function linkWorks(env: Env, from: string, to: string): Promise<void> {
  const s = await dial(env, from, to);
  await receive(s, '\r\n\r\n'); // the head, echoed
  await roundTrip(s, `hello ${from}->${to}`);
  s.destroy();
}

t.test('senderIdOf reads either header, any case, and only from the head', async (t) => {
  t.equal(senderIdOf(Buffer.from('GET /raft/stream HTTP/1.1\r\nx-keel-from: 00ff\r\n\r\n')), 255n);
  t.equal(senderIdOf(Buffer.from('POST /raft HTTP/1.1\r\nX-Server-From: 8e9e05c52164694d\r\n\r\n')), 0x8e9e05c52164694dn);
  t.equal(senderIdOf(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\nx-keel-from: 1\r\n')), undefined, 'a body line is no header');
  t.equal(senderIdOf(Buffer.from('GET / HTTP/1.1\r\nx-keel-from: zz\r\n\r\n')), undefined, 'not hex');
});

t.test('bytes pass both ways, large or split, head replayed first', async (t) => {
  const env = await setup(t);
  const s = await dial(env, 'n1', 'n2');
  const echoedHead = await receive(s, '\r\n\r\n');
  t.equal(echoedHead, head('n1'), 'the head read by the proxy reaches the member unchanged');
  const big = 'x'.repeat(1024 * 1024) + 'END';
  await roundTrip(s, big);
  // A head split across packets is still read whole.
  const s2 = net.connect(Number(new URL(env.nodes.n3!.peerUrl).port), '127.0.0.1');
  env.sockets.add(s2);
  s2.on('error', () => {});
  const h = head('n2');
  s2.write(h.slice(0, 20));
  await new Promise((r) => setTimeout(r, 50));
  const echoed = receive(s2, '\r\n\r\n');
  s2.write(h.slice(20));
  t.equal(await echoed, h);
  env.net.setLink('n2', 'n3', { block: true });
  await closed(s2);
  t.pass('the split head identified n2 (its link block cut the connection)');
});

t.test('block cuts open connections of that link only and refuses new ones; heal restores', async (t) => {
  const env = await setup(t);
  const c12 = await dial(env, 'n1', 'n2');
  const c21 = await dial(env, 'n2', 'n1');
  const c13 = await dial(env, 'n1', 'n3');
  for (const c of [c12, c21, c13]) await receive(c, '\r\n\r\n');
  env.net.setLink('n1', 'n2', { block: true });
  t.equal(env.net.describe(), 'n1 -> n2 blocked');
  await closed(c12);
  await roundTrip(c21, 'still there');
  await roundTrip(c13, 'also there');
  const fresh = await dial(env, 'n1', 'n2');
  await closed(fresh);
  t.pass('a new n1 -> n2 connection is closed at once');
  await linkWorks(env, 'n2', 'n1');
  env.net.heal();
  t.equal(env.net.describe(), 'healthy');
  await linkWorks(env, 'n1', 'n2');
});

t.test('delay holds every chunk, both directions, in order', async (t) => {
  const env = await setup(t);
  const c = await dial(env, 'n1', 'n2');
  await receive(c, '\r\n\r\n');
  env.net.setLink('n1', 'n2', { delayMs: 150, jitterMs: 100 });
  t.match(env.net.describe(), /^delay n1->n2 150±100ms$/);
  const started = performance.now();
  await roundTrip(c, 'ping');
  const rtt = performance.now() - started;
  t.ok(rtt >= 290, `a round trip takes both delays (${rtt.toFixed(0)} ms >= 300 ms less timer slack)`);
  // Many small writes with jitter: the echo must come back in the order sent.
  const parts = Array.from({ length: 40 }, (_, i) => `<${i}>`);
  const all = receive(c, parts.join(''));
  for (const p of parts) {
    c.write(p);
    await new Promise((r) => setImmediate(r));
  }
  t.ok((await all).endsWith(parts.join('')), 'no chunk overtook another');
  const other = performance.now();
  await linkWorks(env, 'n2', 'n1');
  t.ok(performance.now() - other < 1_000, 'the other direction is not delayed');
  env.net.setLink('n1', 'n2', undefined);
  const healed = performance.now();
  await roundTrip(c, 'fast again');
  t.ok(performance.now() - healed < 280, 'healing a delay applies to the open connection');
});

t.test('drop probability 1 resets the connection on its next chunk', async (t) => {
  const env = await setup(t);
  const c = await dial(env, 'n3', 'n1');
  await receive(c, '\r\n\r\n');
  env.net.setLink('n3', 'n1', { dropProbability: 1 });
  t.equal(env.net.describe(), 'drop n3->n1 100%');
  let code: string | undefined;
  c.on('error', (e: NodeJS.ErrnoException) => (code = e.code));
  c.write('doomed');
  await closed(c);
  t.equal(code, 'ECONNRESET', 'the dialer sees a reset, as after a lost stream');
  await linkWorks(env, 'n1', 'n3');
});

t.test('partition: groups cut both directions; nodes in no group are cut off from all', async (t) => {
  const env = await setup(t);
  const c23 = await dial(env, 'n2', 'n3');
  const c12 = await dial(env, 'n1', 'n2');
  const c31 = await dial(env, 'n3', 'n1');
  for (const c of [c23, c12, c31]) await receive(c, '\r\n\r\n');
  env.net.partition([['n1'], ['n2', 'n3']]);
  t.equal(env.net.describe(), 'n1 -x- n2,n3');
  await closed(c12);
  await closed(c31);
  await roundTrip(c23, 'same side');
  await linkWorks(env, 'n3', 'n2');
  env.net.partition([['n1', 'n2']]);
  t.equal(env.net.describe(), 'n1 -x- n3 | n2 -x- n3', 'n3, in no group, is alone');
  await linkWorks(env, 'n2', 'n1');
  await closed(await dial(env, 'n2', 'n3'));
  t.throws(() => env.net.partition([['n1'], ['n1', 'n2']]), /n1.*more than one partition group/);
  t.throws(() => env.net.partition([['n9']]), /unknown node "n9"/);
  t.throws(() => env.net.setLink('n1', 'n1', { block: true }), /two different nodes/);
  t.throws(() => env.net.setLink('n1', 'n2', { dropProbability: 2 }), /dropProbability must be in \[0, 1\]/);
  t.throws(() => env.net.identify('n1', 'xyz'), /1 to 16 hex digits/);
});

t.test('an unknown sender passes unharmed', async (t) => {
  const env = await setup(t);
  env.net.partition([]); // everyone cut off from everyone
  t.equal(env.net.describe(), 'n1 -x- n2,n3 | n2 -x- n3');
  const anonymous = await dial(env, undefined, 'n2');
  await receive(anonymous, '\r\n\r\n');
  await roundTrip(anonymous, 'no header');
  const stranger = await dial(env, undefined, 'n2', 'GET /raft/stream HTTP/1.1\r\nx-keel-from: 00000000000000ff\r\n\r\n');
  await receive(stranger, '\r\n\r\n');
  await roundTrip(stranger, 'unidentified id');
  // Identified later, the sender's link now applies to its open connection.
  env.net.identify('n3', 'ff');
  await closed(stranger);
  t.pass('identifying the sender put its open connection on its (blocked) link');
});

t.test('a dialer that sends no request head passes after HEAD_TIMEOUT_MS', async (t) => {
  const env = await setup(t);
  const silent = await dial(env, undefined, 'n1', '');
  const began = performance.now();
  await roundTrip(silent, 'not http at all');
  const waited = performance.now() - began;
  t.ok(waited >= HEAD_TIMEOUT_MS - 50 && waited < HEAD_TIMEOUT_MS + 2_000, `forwarded after the head timeout (${waited.toFixed(0)} ms)`);
});

t.test('a connection first used without a sender header is put on its link by a later request', async (t) => {
  const env = await setup(t);
  env.net.setLink('n1', 'n3', { block: true });
  // Like etcd's prober: GET /raft/probing names no sender; its pipeline then reuses the idle connection.
  const reused = await dial(env, undefined, 'n3', 'GET /raft/probing HTTP/1.1\r\nHost: x\r\n\r\n');
  await receive(reused, '\r\n\r\n');
  await roundTrip(reused, 'POST /raft HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n');
  t.notOk(reused.destroyed, 'no sender named yet: it passes');
  reused.write('X-Server-');
  await new Promise((r) => setTimeout(r, 30));
  reused.write(`From: ${HEADER_ID.n1}\r\n\r\n`); // the header line split across two packets
  await closed(reused);
  t.pass('the request naming n1 put the connection on the blocked n1 -> n3 link');
});

t.test('a refused backend closes the client side; close() cuts everything; bad nodes are refused', async (t) => {
  const env = await setup(t);
  const [front, dead] = await freePorts(2);
  await env.net.addNode({ ...env.nodes.n1!, name: 'n4', peerUrl: `http://127.0.0.1:${front}`, listenPeerUrl: `http://127.0.0.1:${dead}` });
  const env4: Env = { ...env, nodes: { ...env.nodes, n4: { ...env.nodes.n1!, peerUrl: `http://127.0.0.1:${front}` } } };
  await closed(await dial(env4, 'n1', 'n4'));
  t.pass('nothing behind n4: the dialer is closed, not left hanging');
  await t.rejects(env.net.addNode(env.nodes.n1!), /already on the network/);
  await t.rejects(env.net.addNode({ ...env.nodes.n1!, name: 'n5', peerUrl: 'http://127.0.0.1' }), /must name its port/);
  await t.rejects(
    env.net.addNode({ ...env.nodes.n1!, name: 'n5', peerUrl: env.nodes.n2!.peerUrl, listenPeerUrl: `http://127.0.0.1:${dead}` }),
    /cannot listen on 127\.0\.0\.1:\d+: .*EADDRINUSE/,
  );
  const open = await dial(env, 'n2', 'n3');
  await receive(open, '\r\n\r\n');
  await env.net.close();
  await closed(open);
  await t.rejects(env.net.addNode({ ...env.nodes.n1!, name: 'n6' }), /network is closed/);
});

t.test('LinkTable keeps delays through a partition and describes one-way blocks', async (t) => {
  const links = new LinkTable();
  for (const n of ['a', 'b', 'c']) links.addName(n);
  links.set('a', 'b', { delayMs: 10 });
  links.partition([['a', 'b'], ['c']]);
  t.same(links.get('a', 'b'), { delayMs: 10, block: false });
  t.equal(links.get('a', 'c')?.block, true);
  t.equal(links.describe(), 'a -x- c | b -x- c | delay a->b 10±0ms');
  links.heal();
  links.set('c', 'a', { block: true });
  links.set('c', 'b', { block: true });
  t.equal(links.describe(), 'c -> a,b blocked');
  links.set('c', 'a', { block: false });
  t.equal(links.get('c', 'a'), undefined, 'a harmless fault is no fault');
});
