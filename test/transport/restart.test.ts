// A peer restarts (its server closed and re-opened on the same port): the stream comes back within a
// bounded time, in both directions, and the transitions are logged once each.

import { performance } from 'node:perf_hooks';
import t from 'tap';
import { A, B, FAST, appMsg, closeServer, cluster, listen, member, portOf, urlOf, waitFor } from './fixtures/harness';

t.test('peer restart: stream re-established within a bounded time', async (t) => {
  const [a, b] = await cluster([A, B], FAST);
  t.teardown(() => a.close());
  await waitFor(() => a.transport.isActive(B) && b.transport.isActive(A), 'streams up');
  a.transport.send([appMsg(A, B, 1)]);
  await waitFor(() => b.received.length === 1, 'first message');

  const port = portOf(b.server);
  await b.close();
  await waitFor(() => !a.transport.isActive(B), 'A notices B is gone', 3000);
  t.equal(a.transport.stats().get(B)?.connected, false, 'disconnected');
  // Sent while B is down: dropped (or at most queued while a dial is in flight), never an error.
  t.doesNotThrow(() => a.transport.send([appMsg(A, B, 2)]));

  // B comes back on the same port after a while (long enough for A's back-off to reach its maximum).
  await new Promise((r) => setTimeout(r, 300));
  const bServer2 = await listen(port);
  const b2 = member(B, bServer2, new Map([[A, urlOf(a.server)]]), FAST);
  t.teardown(() => b2.close());
  const upAt = performance.now();
  // Bound: one maximal back-off (100 ms) plus a dial, with a wide margin for a loaded machine.
  await waitFor(() => a.transport.isActive(B), 'A reconnected to restarted B', 2000);
  const took = performance.now() - upAt;
  t.ok(took < 2000, `reconnected ${Math.round(took)} ms after B came back`);

  a.transport.send([appMsg(A, B, 3)]);
  b2.transport.send([appMsg(B, A, 4)]);
  await waitFor(() => b2.received.length === 1 && a.received.length === 1, 'messages both ways');
  t.equal(b2.received[0].index, 3, 'A -> restarted B');
  t.equal(a.received[0].index, 4, 'restarted B -> A');
  t.ok(a.transport.stats().get(B)?.inboundConnected, "B's new stream to A accepted");

  const transitions = a.lines.filter((l) => l.peer === B && /^peer became (in)?active$/.test(l.msg)).map((l) => l.msg);
  t.strictSame(transitions, ['peer became active', 'peer became inactive', 'peer became active'],
    'each transition logged once, no per-retry noise');
});

t.test('setPeer to a new URL redials there; removePeer cuts and refuses the peer', async (t) => {
  const [a, b] = await cluster([A, B], FAST);
  const moved = await listen(0); // B's second listener
  t.teardown(async () => {
    await a.close();
    await b.close();
    await closeServer(moved);
  });
  await waitFor(() => a.transport.isActive(B), 'stream up');

  // B moves to another listener (same transport, second server).
  b.transport.attach(moved);
  a.transport.setPeer(B, urlOf(moved));
  t.equal(a.transport.stats().get(B)?.url, urlOf(moved), 'URL changed');
  await waitFor(() => a.transport.isActive(B), 'redialed at the new URL');
  a.transport.send([appMsg(A, B, 7)]);
  await waitFor(() => b.received.length === 1, 'delivered');
  const onMoved = await new Promise<number>((r) => moved.getConnections((_e, n) => r(n)));
  t.ok(onMoved >= 1, 'the stream goes to the new listener');
  t.throws(() => a.transport.setPeer(B, 'not a url'), 'an invalid URL throws');

  // B removes A: A's stream to B is cut and refused from then on, and B forgets A's stats.
  b.transport.removePeer(A);
  t.notOk(b.transport.stats().has(A), 'B forgot A');
  await waitFor(() => !a.transport.isActive(B), 'A lost its stream to B');
  await waitFor(() => a.lines.some((l) => /does not know us/.test(l.msg)), 'A told why it is refused');
  a.transport.send([appMsg(A, B, 8)]);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(b.received.length, 1, 'nothing more delivered from a removed peer');
});
