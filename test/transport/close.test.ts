// close() releases everything: no socket, server handle or timer of the transport is left behind, so a
// process that closed its transport can exit.

import t from 'tap';
import { A, B, C, FAST, appMsg, cluster, sleep, waitFor } from './fixtures/harness';

function handles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
  return counts;
}

t.test('close() leaves no sockets or timers behind', async (t) => {
  await sleep(50); // let tap's own start-up settle
  const before = handles();
  // Three members, one of which goes away early so that the others are mid back-off when closed; pings on.
  const [a, b, c] = await cluster([A, B, C], { ...FAST, pingIntervalMs: 10 });
  await waitFor(() => a.transport.isActive(B) && a.transport.isActive(C) && b.transport.isActive(A), 'streams up');
  a.transport.send([appMsg(A, B, 1), appMsg(A, C, 1)]);
  await waitFor(() => b.received.length === 1 && c.received.length === 1, 'delivered');
  await c.close();
  await sleep(30);
  a.transport.send([appMsg(A, B, 2), appMsg(A, C, 2)]); // one flush pending, one dial or back-off pending
  await Promise.all([a.close(), b.close()]);
  await a.transport.close(); // idempotent
  await sleep(20);
  const after = handles();
  for (const kind of ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'Immediate']) {
    t.equal(after.get(kind) ?? 0, before.get(kind) ?? 0, `${kind}: as many as before the transports existed`);
  }
  t.doesNotThrow(() => a.transport.send([appMsg(A, B, 3)]), 'send after close is a no-op');
});
