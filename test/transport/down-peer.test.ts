// A peer that is down costs bounded memory and never makes send() throw; when it comes up, messages flow.

import t from 'tap';
import { EntryType } from '../../src/raft/core/types';
import { A, B, FAST, WARN, appMsg, freePort, listen, member, sleep, urlOf, waitFor } from './fixtures/harness';

t.test('down peer: bounded queue, drops counted, reconnect when it comes up', async (t) => {
  const port = await freePort();
  const aServer = await listen(0);
  const maxQueueMessages = 8;
  const maxQueueBytes = 8 * 1024;
  const a = member(A, aServer, new Map([[B, `http://127.0.0.1:${port}`]]), {
    ...FAST,
    maxQueueMessages,
    maxQueueBytes,
  });
  t.teardown(() => a.close());

  // Hammer the dead peer for a while: every send must return, and the queue must stay within its bounds.
  let sent = 0;
  let maxQueued = 0;
  let maxQueuedBytes = 0;
  const big = appMsg(A, B, 0);
  big.entries = [{ term: 3, index: 1, type: EntryType.Normal, data: new Uint8Array(3000) }];
  for (let round = 0; round < 100; round++) {
    const batch = [];
    for (let i = 0; i < 50; i++) batch.push(i % 10 === 0 ? big : appMsg(A, B, sent + i));
    try {
      a.transport.send(batch);
    } catch (err) {
      t.fail(`send threw: ${String(err)}`);
    }
    sent += batch.length;
    const s = a.transport.stats().get(B);
    if (s === undefined) throw new Error('no stats for B');
    maxQueued = Math.max(maxQueued, s.queuedMessages);
    maxQueuedBytes = Math.max(maxQueuedBytes, s.queuedBytes);
    // Every message is either still queued or counted as dropped: none vanishes, none is kept beyond bounds.
    if (s.queuedMessages + s.dropped !== sent) t.fail(`accounting: ${s.queuedMessages} + ${s.dropped} != ${sent}`);
    await sleep(round % 10 === 0 ? 20 : 1); // let dials fail and back-offs run meanwhile
  }
  const s = a.transport.stats().get(B);
  t.ok(s !== undefined, 'stats for B');
  if (s === undefined) return;
  t.ok(maxQueued <= maxQueueMessages, `queue length stayed <= ${maxQueueMessages} (max seen ${maxQueued})`);
  t.ok(maxQueuedBytes <= maxQueueBytes, `queue bytes stayed <= ${maxQueueBytes} (max seen ${maxQueuedBytes})`);
  t.equal(s.connected, false, 'not connected');
  t.equal(s.sentMessages, 0, 'nothing sent');
  t.ok(s.dropped >= sent - maxQueueMessages, `drops counted (${s.dropped} of ${sent})`);
  t.ok(s.drops.queueFull > 0, 'the bound was reached (while dialing) and enforced by dropping');
  t.ok(s.drops.disconnected > 0, 'dropped at once while backing off');
  t.ok(s.dials > 1, `redialed (${s.dials} dials)`);
  t.notOk(a.transport.isActive(B, 10_000), 'a dead peer is not active');
  const unreachable = a.lines.filter((l) => l.level >= WARN && l.peer === B && /cannot reach peer/.test(l.msg));
  t.equal(unreachable.length, 1, 'unreachable peer warned about once, not per retry');

  // The peer comes up on its URL: the stream is established and new messages flow.
  const bServer = await listen(port);
  const b = member(B, bServer, new Map([[A, urlOf(aServer)]]), FAST);
  t.teardown(() => b.close());
  await waitFor(() => a.transport.isActive(B), 'A reconnected to B', 3000);
  a.transport.send([appMsg(A, B, 1001), appMsg(A, B, 1002)]);
  await waitFor(() => b.received.length >= 2, 'new messages delivered');
  t.strictSame(b.received.map((m) => m.index), [1001, 1002], 'exactly the new messages, in order');
  const active = a.lines.filter((l) => l.peer === B && l.msg === 'peer became active');
  t.equal(active.length, 1, 'became active logged once');
});

t.test('a message larger than the queue bound is dropped as too large', async (t) => {
  const [aServer, bServer] = [await listen(0), await listen(0)];
  const a = member(A, aServer, new Map([[B, urlOf(bServer)]]), { maxQueueBytes: 1024 });
  const b = member(B, bServer, new Map([[A, urlOf(aServer)]]));
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await waitFor(() => a.transport.isActive(B), 'stream up');
  const huge = appMsg(A, B, 1);
  huge.entries = [{ term: 1, index: 2, type: EntryType.Normal, data: new Uint8Array(2048) }];
  a.transport.send([huge, appMsg(A, B, 2)]);
  await waitFor(() => b.received.length === 1, 'the small one');
  t.equal(b.received[0].index, 2, 'only the small one');
  t.equal(a.transport.stats().get(B)?.drops.tooLarge, 1, 'counted as too large');
});
