// A peer that accepts the stream but stops reading: the socket buffer stays within the bound (messages are
// dropped instead), and with no answer to pings the stream is declared dead and redialed. Also: RTT.

import type http from 'node:http';
import type { Duplex } from 'node:stream';
import t from 'tap';
import { WebSocketServer } from 'ws';
import { EntryType } from '../../src/raft/core/types';
import { A, B, WARN, appMsg, cluster, listen, member, urlOf, waitFor } from './fixtures/harness';

/** A fake peer listener that completes the handshake and then never reads from the socket again. */
async function stalledPeer(): Promise<{ server: http.Server; accepted: () => number; close(): Promise<void> }> {
  const server = await listen(0);
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const sockets: Duplex[] = [];
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, () => {
      sockets.push(socket);
      socket.pause(); // stop reading: the kernel buffers fill, then the sender's
    });
  });
  return {
    server,
    accepted: () => sockets.length,
    async close(): Promise<void> {
      for (const s of sockets) s.destroy();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

t.test('backpressure: a peer that stops reading gets drops, not unbounded buffering', async (t) => {
  const peer = await stalledPeer();
  const aServer = await listen(0);
  const maxQueueBytes = 1024 * 1024;
  const a = member(A, aServer, new Map([[B, urlOf(peer.server)]]), { maxQueueBytes, pongTimeoutMs: 60_000 });
  t.teardown(async () => {
    await a.close();
    await peer.close();
  });
  await waitFor(() => a.transport.isActive(B), 'stream up');

  const data = new Uint8Array(256 * 1024);
  let maxBuffered = 0;
  let maxQueued = 0;
  // At most ~200 MiB offered; loopback buffers hold a few MiB, so drops must start well before that.
  for (let i = 0; i < 800; i++) {
    const m = appMsg(A, B, i);
    m.entries = [{ term: 3, index: i + 1, type: EntryType.Normal, data }];
    a.transport.send([m]);
    await new Promise((r) => setImmediate(r)); // let the flush run
    const s = a.transport.stats().get(B);
    maxBuffered = Math.max(maxBuffered, s?.socketBufferedBytes ?? 0);
    maxQueued = Math.max(maxQueued, s?.queuedBytes ?? 0);
    if ((s?.drops.backpressure ?? 0) >= 10) break;
  }
  const s = a.transport.stats().get(B);
  t.ok((s?.drops.backpressure ?? 0) >= 10, `dropped under backpressure (${s?.drops.backpressure ?? 0})`);
  t.ok(maxBuffered <= maxQueueBytes, `socket buffer stayed <= ${maxQueueBytes} (max ${maxBuffered})`);
  t.ok(maxQueued <= maxQueueBytes, `queue stayed <= ${maxQueueBytes} (max ${maxQueued})`);
  t.ok(a.lines.some((l) => l.level >= WARN && /not keeping up/.test(l.msg)), 'warned');
  t.ok(s?.connected, 'a slow peer is not disconnected for being slow');
});

t.test('liveness: no pong within the timeout, the stream is dropped and redialed', async (t) => {
  const peer = await stalledPeer();
  const aServer = await listen(0);
  const a = member(A, aServer, new Map([[B, urlOf(peer.server)]]), {
    pingIntervalMs: 20,
    pongTimeoutMs: 150,
    backoffMinMs: 10,
    backoffMaxMs: 50,
  });
  t.teardown(async () => {
    await a.close();
    await peer.close();
  });
  await waitFor(() => a.transport.isActive(B), 'stream up');
  await waitFor(() => a.lines.some((l) => l.msg === 'peer became inactive'), 'declared dead', 3000);
  const line = a.lines.find((l) => l.msg === 'peer became inactive');
  t.match(String(line?.reason), /no answer to ping/, 'the reason says why');
  await waitFor(() => peer.accepted() >= 2, 'redialed', 3000);
  t.pass('redialed after the dead stream');
});

t.test('RTT is measured on a live stream', async (t) => {
  const [a, b] = await cluster([A, B], { pingIntervalMs: 20 });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await waitFor(() => a.transport.stats().get(B)?.rttMs !== undefined, 'an RTT sample', 3000);
  const rtt = a.transport.stats().get(B)?.rttMs ?? -1;
  t.ok(rtt >= 0 && rtt < 1000, `rtt ${rtt.toFixed(2)} ms`);
  t.ok(a.transport.stats().get(B)?.connected, 'a live stream is not dropped by the liveness check');
});
