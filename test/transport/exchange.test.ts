// Three members exchange messages of every shape: content round-trips exactly (byte fields as bytes), order
// is preserved per sender, and batches travel as fewer frames than messages.

import t from 'tap';
import { EntryType, MessageType } from '../../src/raft/core/types';
import type { Message, NodeId } from '../../src/raft/core/types';
import { PeerTransport } from '../../src/raft/transport';
import { A, B, C, appMsg, canon, cluster, waitFor } from './fixtures/harness';

/** Messages of every kind of field, for `from` -> `to`, the i-th of the batch first. */
function variety(from: NodeId, to: NodeId): Message[] {
  return [
    appMsg(from, to, 0),
    {
      type: MessageType.App, from, to, term: 5, index: 10, logTerm: 4, commit: 9,
      entries: [
        { term: 5, index: 11, type: EntryType.Normal, data: new Uint8Array(0) }, // a leader's no-op
        { term: 5, index: 12, type: EntryType.ConfChange, data: Buffer.from('conf change') },
        { term: 5, index: 13, type: EntryType.Normal, data: Uint8Array.from([0, 255, 128, 1]) },
      ],
    },
    { type: MessageType.AppResp, from, to, term: 5, index: 7, logTerm: 0, reject: true, rejectHint: 6, hintTerm: 4 },
    { type: MessageType.Heartbeat, from, to, term: 5, index: 0, logTerm: 0, commit: 12, context: Buffer.from('ctx-1') },
    {
      type: MessageType.Snap, from, to, term: 6, index: 100, logTerm: 6,
      snapshot: { index: 100, term: 6, voters: [A, B, C] }, offset: 0, chunk: Uint8Array.from([9, 8, 7]), done: false,
    },
    { type: MessageType.SnapResp, from, to, term: 6, index: 100, logTerm: 0, offset: 3, reject: false },
    { type: MessageType.ReadIndex, from, to, term: 6, index: 0, logTerm: 0, context: new Uint8Array([1, 2, 3]) },
    { type: MessageType.TimeoutNow, from, to, term: 6, index: 0, logTerm: 0, commit: undefined },
  ];
}

t.test('three members: content round-trips, order per sender, batching', async (t) => {
  const members = await cluster([A, B, C]);
  t.teardown(() => Promise.all(members.map((m) => m.close())));

  const N = 300;
  const sent = new Map<string, Message[]>(); // "from>to" -> messages in send order
  for (const src of members) {
    for (const dst of members) {
      if (src === dst) continue;
      const msgs = [...variety(src.id, dst.id)];
      for (let i = 1; i <= N; i++) msgs.push(appMsg(src.id, dst.id, i));
      sent.set(`${src.id}>${dst.id}`, msgs);
    }
  }
  // Wait until the streams are up so that nothing is dropped while dialing would be a flake, not a bug.
  await waitFor(() => members.every((m) => members.every((p) => p === m || m.transport.isActive(p.id))), 'streams up');
  for (const src of members) {
    // One send() per member, with the messages for both peers interleaved, as a Ready would hand them out.
    const mine = [...sent].filter(([k]) => k.startsWith(`${src.id}>`)).map(([, v]) => v);
    const interleaved: Message[] = [];
    for (let i = 0; i < mine[0].length; i++) for (const list of mine) interleaved.push(list[i]);
    src.transport.send(interleaved);
  }
  const perPeer = variety(A, B).length + N;
  await waitFor(() => members.every((m) => m.received.length === 2 * perPeer), 'all messages delivered');

  for (const dst of members) {
    for (const src of members) {
      if (src === dst) continue;
      const got = dst.received.filter((m) => m.from === src.id);
      const want = sent.get(`${src.id}>${dst.id}`) ?? [];
      t.strictSame(got.map(canon), want.map(canon), `${src.id} -> ${dst.id}: same messages, same order`);
    }
  }
  // Byte fields must come back as bytes, not as arrays or objects.
  const snap = members[1].received.find((m) => m.type === MessageType.Snap);
  t.ok(snap?.chunk instanceof Uint8Array, 'chunk is a Uint8Array');
  const app = members[1].received.find((m) => m.entries !== undefined && m.entries.length === 3);
  t.ok(app?.entries?.every((e) => e.data instanceof Uint8Array), 'entry data are Uint8Arrays');
  t.equal(app?.entries?.[0].data.length, 0, 'empty entry data stays empty');
  const hb = members[1].received.find((m) => m.type === MessageType.Heartbeat);
  t.ok(hb?.context instanceof Uint8Array, 'context is a Uint8Array');
  const tn = members[1].received.find((m) => m.type === MessageType.TimeoutNow);
  t.notOk(tn !== undefined && 'commit' in tn, 'undefined fields are not sent');

  const stats = members[0].transport.stats();
  const toB = stats.get(B);
  t.ok(toB !== undefined, 'stats for a peer');
  if (toB !== undefined) {
    t.equal(toB.sentMessages, perPeer, 'every message counted as sent');
    t.ok(toB.sentFrames < toB.sentMessages / 10, `batched: ${toB.sentMessages} messages in ${toB.sentFrames} frames`);
    t.equal(toB.dropped, 0, 'nothing dropped');
    t.equal(toB.queuedMessages, 0, 'queue drained');
    t.equal(toB.receivedMessages, perPeer, 'received counted');
    t.ok(toB.receivedBytes > 0 && toB.sentBytes > 0, 'bytes counted');
    t.ok(toB.connected && toB.inboundConnected, 'both streams up');
  }
  t.notOk(stats.has(A), 'no stats for self');
  t.ok(members[0].transport.isActive(B, 1000), 'active');
  t.notOk(members[0].transport.isActive('ffffffffffffffff'), 'an unknown peer is not active');
});

t.test('sending to self, to an unknown peer, or a malformed message is dropped, not thrown', async (t) => {
  const members = await cluster([A, B]);
  t.teardown(() => Promise.all(members.map((m) => m.close())));
  const [a, b] = members;
  await waitFor(() => a.transport.isActive(B), 'stream up');
  const bad = { ...appMsg(A, B, 1), entries: [{ term: 1, index: 2, type: EntryType.Normal, data: 'not bytes' }] };
  t.doesNotThrow(() => {
    a.transport.send([appMsg(A, A, 1), appMsg(A, 'ffffffffffffffff', 1), appMsg(B, B, 1)]);
    a.transport.send([bad as unknown as Message]);
    a.transport.send([appMsg(A, B, 42)]);
  });
  await waitFor(() => b.received.length === 1, 'the valid message');
  t.equal(b.received[0].index, 42, 'only the valid message arrived');
  t.equal(a.transport.stats().get(B)?.drops.encodeError, 2, 'invalid messages for B counted (forged from, bad data)');
  t.ok(a.transport.stats().get(B)?.connected, 'the stream survived');
});

t.test('onMessage throwing does not break the stream', async (t) => {
  const members = await cluster([A, B]);
  t.teardown(() => Promise.all(members.map((m) => m.close())));
  const [a, b] = members;
  // Replace B's transport by one whose handler throws on odd indices.
  await b.transport.close();
  const got: number[] = [];
  const tb = new PeerTransport({
    selfId: B,
    clusterId: '0123456789ABCDEF', // upper case is the same cluster
    peers: new Map([[A, `http://127.0.0.1:1`]]),
    onMessage: (m) => {
      got.push(m.index);
      if (m.index % 2 === 1) throw new Error('handler bug');
    },
  });
  t.teardown(() => tb.close());
  tb.attach(b.server);
  await waitFor(() => a.transport.isActive(B), 'A redialed B');
  a.transport.send([1, 2, 3, 4].map((i) => appMsg(A, B, i)));
  await waitFor(() => got.length === 4, 'all four handed to onMessage');
  t.strictSame(got, [1, 2, 3, 4]);
});
