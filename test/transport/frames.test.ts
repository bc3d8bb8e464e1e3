// Frame format and robustness: large messages, batches of any size, and malformed frames from a peer
// (logged, that stream closed, the member unharmed).

import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Packr, unpack } from 'msgpackr';
import WebSocket from 'ws';
import { MessageType } from '../../src/raft/core/types';
import type { Message } from '../../src/raft/core/types';
import { FrameError, decodeFrame, encodeFrame, encodeMessage } from '../../src/raft/transport/codec';
import { A, B, C, CLUSTER, WARN, appMsg, canon, cluster, listen, member, urlOf, waitFor } from './fixtures/harness';

const MiB = 1024 * 1024;

function snapChunk(i: number, bytes: number): Message {
  return {
    type: MessageType.Snap, from: A, to: B, term: 2, index: 500, logTerm: 2,
    snapshot: { index: 500, term: 2, voters: [A, B] }, offset: i * bytes, chunk: randomBytes(bytes), done: false,
  };
}

t.test('a 2 MiB snapshot chunk goes through intact, also several in one batch', async (t) => {
  const [a, b] = await cluster([A, B]);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  await waitFor(() => a.transport.isActive(B), 'stream up');

  const one = snapChunk(0, 2 * MiB);
  a.transport.send([one]);
  await waitFor(() => b.received.length === 1, 'the 2 MiB chunk', 10_000);
  const got = b.received[0].chunk;
  t.ok(got instanceof Uint8Array, 'chunk is bytes');
  t.ok(got !== undefined && Buffer.compare(Buffer.from(got), Buffer.from(one.chunk ?? [])) === 0, 'identical bytes');
  t.equal(got?.length, 2 * MiB, 'full length');

  // Three chunks with small messages between them: more than one frame's worth, split into several
  // frames, order kept.
  const batch: Message[] = [];
  for (let i = 1; i <= 3; i++) batch.push(snapChunk(i, 2 * MiB), appMsg(A, B, i));
  a.transport.send(batch);
  await waitFor(() => b.received.length === 7, 'the batch', 10_000);
  t.strictSame(b.received.slice(1).map(canon), batch.map(canon), 'batch content and order');
  const s = a.transport.stats().get(B);
  t.ok(s !== undefined && s.sentFrames >= 3, `split into frames (${s?.sentFrames ?? 0} frames so far)`);
  t.equal(s?.dropped, 0, 'nothing dropped');
});

t.test('frame encoding: array headers of every size decode with plain msgpackr', async (t) => {
  for (const n of [1, 15, 16, 300, 65535, 65536]) {
    const msgs: Message[] = [];
    for (let i = 0; i < n; i++) msgs.push(appMsg(A, B, i));
    const parts = msgs.map(encodeMessage);
    const frame = encodeFrame(parts, parts.reduce((s, p) => s + p.length, 0));
    const plain: unknown = unpack(frame);
    t.ok(Array.isArray(plain) && plain.length === n, `${n}: a plain MessagePack array of ${n}`);
    const decoded = decodeFrame(frame, A, B);
    t.equal(decoded.length, n, `${n}: decoded`);
    t.strictSame(canon(decoded[n - 1]), canon(msgs[n - 1]), `${n}: last message intact`);
  }
  // Encoded messages share the packer's buffer; an earlier one must not be overwritten by later ones.
  const first = encodeMessage(appMsg(A, B, 1));
  const copy = Buffer.from(first);
  for (let i = 0; i < 1000; i++) encodeMessage(appMsg(A, B, i + 2));
  t.ok(first.equals(copy), 'an encoded message stays intact');

  const frame = encodeFrame([encodeMessage(appMsg(A, B, 1))], encodeMessage(appMsg(A, B, 1)).length);
  t.throws(() => decodeFrame(frame, C, B), FrameError, 'sender other than the stream peer refused');
  t.throws(() => decodeFrame(frame, A, C), FrameError, 'recipient other than this member refused');
  // Decoded byte fields own their memory (not views of the frame, which could pin it).
  const msg = decodeFrame(frame, A, B)[0];
  t.not(msg.entries?.[0].data.buffer, frame.buffer, 'entry data copied out of the frame');
});

/** Opens a raw stream to `url` posing as member A, sends one frame, and reports the close code. */
function sendRaw(url: string, frame: Buffer | string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace('http:', 'ws:')}/raft/stream`, {
      headers: { 'x-keel-transport-version': '1', 'x-keel-cluster-id': CLUSTER, 'x-keel-from': A, 'x-keel-to': B },
    });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error('the acceptor did not close the stream'));
    }, 3000);
    ws.on('open', () => ws.send(frame, { binary: typeof frame !== 'string' }));
    ws.on('error', () => undefined); // the close code is what matters
    ws.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

t.test('malformed frames: logged, that stream closed with 1007, nothing delivered, member fine', async (t) => {
  const server = await listen(0);
  const b = member(B, server, new Map([[A, 'http://127.0.0.1:1']]));
  t.teardown(() => b.close());
  const url = urlOf(server);
  const packr = new Packr({ useRecords: false });
  const valid = appMsg(A, B, 1);
  const cases: [string, Buffer | string][] = [
    ['not MessagePack', Buffer.from('definitely not msgpack')],
    ['truncated', encodeFrame([encodeMessage(valid)], encodeMessage(valid).length).subarray(0, 10)],
    ['not an array', packr.pack({ hello: 'world' })],
    ['empty array', packr.pack([])],
    ['a message without a term', packr.pack([{ ...valid, term: 'three' }])],
    ['entry data not bytes', packr.pack([{ ...valid, entries: [{ term: 1, index: 2, type: 0, data: 'str' }] }])],
    ['negative index', packr.pack([{ ...valid, index: -1 }])],
    ['unknown message type', packr.pack([{ ...valid, type: 99 }])],
    ['forged sender', packr.pack([{ ...valid, from: C }])],
    ['a text frame', 'hello'],
  ];
  for (const [name, frame] of cases) {
    const code = await sendRaw(url, frame);
    t.equal(code, 1007, `${name}: stream closed as invalid payload`);
  }
  t.equal(b.received.length, 0, 'nothing delivered');
  const warnings = b.lines.filter((l) => l.level >= WARN && l.msg === 'malformed frame from peer; closing its stream');
  t.equal(warnings.length, cases.length, 'each logged');

  // The member still works: a real peer connects and is heard.
  const aServer = await listen(0);
  const a = member(A, aServer, new Map([[B, url]]));
  t.teardown(() => a.close());
  b.transport.setPeer(A, urlOf(aServer));
  a.transport.send([appMsg(A, B, 5)]);
  await waitFor(() => b.received.length === 1, 'a good message after the bad ones');
  t.equal(b.received[0].index, 5, 'delivered');
});
