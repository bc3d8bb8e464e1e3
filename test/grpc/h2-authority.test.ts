// The :authority repair of the protocol mux (src/server/grpc/h2-authority.ts): HPACK's Huffman code against
// RFC 7541's examples, the repaired values, and hand-made HTTP/2 frames (padding, priority, CONTINUATION,
// a table-indexed authority) run through it into a real node:http2 server.

import http2 from 'node:http2';
import net from 'node:net';
import t, { type Test } from 'tap';
import {
  AuthorityRepair,
  authorityAcceptable,
  huffmanDecode,
  repairAuthority,
} from '../../src/server/grpc/h2-authority';
import { HTTP2_PREFACE } from '../../src/server/grpc/protocol-mux';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s/g, ''), 'hex');

t.test('Huffman decoding: RFC 7541 C.4 and C.6', async (t) => {
  t.equal(huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f4ff')).toString(), 'www.example.com');
  t.equal(huffmanDecode(hex('a8eb 1064 9cbf')).toString(), 'no-cache');
  t.equal(huffmanDecode(hex('25a8 49e9 5ba9 7d7f')).toString(), 'custom-key');
  t.equal(huffmanDecode(hex('25a8 49e9 5bb8 e8b4 bf')).toString(), 'custom-value');
  t.equal(huffmanDecode(hex('6402')).toString(), '302');
  t.equal(huffmanDecode(hex('aec3 771a 4b')).toString(), 'private');
  t.equal(huffmanDecode(hex('d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff')).toString(), 'Mon, 21 Oct 2013 20:13:21 GMT');
  t.equal(huffmanDecode(hex('9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3')).toString(), 'https://www.example.com');
  t.equal(huffmanDecode(Buffer.alloc(0)).length, 0);
  t.throws(() => huffmanDecode(hex('f1e3 c2e5 f23a 6ba0 ab90 f400')), /padding/, 'padding that is not EOS');
  t.throws(() => huffmanDecode(hex('ffff ffff')), /Huffman/, 'EOS itself');
});

t.test('repaired values: same length, accepted by nghttp2', async (t) => {
  for (const [bad, good] of [
    ['http://127.0.0.1:2379', '------@127.0.0.1:2379'],
    ['https://[::1]:2379', '-------@[::1]:2379'],
    ['unix:///tmp/etcd.sock', 'unix:---tmp-etcd.sock'],
    ['a b', 'a-b'],
  ]) {
    t.equal(authorityAcceptable(bad), false, bad);
    t.equal(repairAuthority(bad), good);
    t.equal(repairAuthority(bad).length, bad.length);
    t.equal(authorityAcceptable(repairAuthority(bad)), true);
  }
  for (const ok of ['127.0.0.1:2379', 'localhost', '[::1]:2379', 'user@host:1', '']) t.equal(authorityAcceptable(ok), true, ok);
});

// ---- hand-made HTTP/2 ------------------------------------------------------------------------------------

function int(firstBits: number, prefix: number, v: number): Buffer {
  const max = (1 << prefix) - 1;
  if (v < max) return Buffer.from([firstBits | v]);
  const out = [firstBits | max];
  let rest = v - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}
const str = (s: string): Buffer => Buffer.concat([int(0, 7, Buffer.byteLength(s)), Buffer.from(s)]);

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

const SETTINGS = frame(4, 0, 0, Buffer.alloc(0));
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY = 0x20;

/** Runs `bytes` (after the preface) through the repair into a node:http2 server; the requests it saw. */
async function throughRepair(t: Test, bytes: Buffer[]): Promise<{ requests: http2.IncomingHttpHeaders[]; repair: AuthorityRepair }> {
  const requests: http2.IncomingHttpHeaders[] = [];
  const server = http2.createServer();
  // The raw client below is cut at the end of the test: resets are expected on the server's side.
  server.on('sessionError', () => undefined);
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    requests.push(headers);
    stream.respond({ ':status': 200 });
    stream.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const socket = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  t.teardown(() => socket.destroy());
  socket.on('data', () => undefined);
  socket.on('error', () => undefined);
  const repair = new AuthorityRepair();
  socket.write(HTTP2_PREFACE);
  repair.pipe(socket);
  for (const b of bytes) repair.write(b);
  const t0 = Date.now();
  while (requests.length < 2 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
  return { requests, repair };
}

t.test('HEADERS with padding and priority, split over CONTINUATION, then a table-indexed authority', async (t) => {
  const big = 'b'.repeat(20_000);
  const block1 = Buffer.concat([
    int(0x40, 6, 1), // :authority, literal with incremental indexing, static name
    str('http://h:1'),
    Buffer.from([0x83, 0x86]), // :method POST, :scheme http
    int(0x00, 4, 4), // :path, literal without indexing
    str('/a'),
    Buffer.from([0x00]), // a new name, literal without indexing
    str('x-big'),
    str(big),
  ]);
  const pad = 3;
  const first = Buffer.concat([Buffer.from([pad]), Buffer.from([0, 0, 0, 0, 15]), block1.subarray(0, 10_000), Buffer.alloc(pad)]);
  const bytes = [
    SETTINGS,
    frame(1, PADDED | PRIORITY, 1, first),
    frame(9, 0, 1, block1.subarray(10_000, 16_000)),
    frame(9, END_HEADERS | END_STREAM, 1, block1.subarray(16_000)),
  ];
  // Second request: the authority by its dynamic table index (62), as an HPACK encoder does.
  const block2 = Buffer.concat([Buffer.from([0xbe, 0x83, 0x86]), int(0x00, 4, 4), str('/b')]);
  bytes.push(frame(1, END_HEADERS | END_STREAM, 3, block2));
  // Feed it in awkward pieces.
  const all = Buffer.concat(bytes);
  const pieces = [all.subarray(0, 5), all.subarray(5, 9000), all.subarray(9000, 9001), all.subarray(9001)];
  const { requests, repair } = await throughRepair(t, pieces);
  t.equal(requests.length, 2, 'both requests reached the server');
  t.same(requests.map((h) => [h[':authority'], h[':path'], h[':method']]), [
    ['------@h:1', '/a', 'POST'],
    ['------@h:1', '/b', 'POST'],
  ]);
  t.equal(requests[0]['x-big'], big, 'the rest of the block intact');
  t.equal(repair.passingThrough, false, 'still looking: the literal may come again');
});

t.test('an acceptable authority: bytes unchanged, and the connection is passed through from then on', async (t) => {
  const block = Buffer.concat([int(0x40, 6, 1), str('127.0.0.1:2379'), Buffer.from([0x83, 0x86]), int(0x00, 4, 4), str('/ok')]);
  const input = Buffer.concat([SETTINGS, frame(1, END_HEADERS | END_STREAM, 1, block)]);
  const repair = new AuthorityRepair();
  const out: Buffer[] = [];
  repair.on('data', (c: Buffer) => out.push(c));
  repair.write(input);
  repair.write(Buffer.from('anything at all'));
  await new Promise((r) => setImmediate(r));
  t.same(Buffer.concat(out), Buffer.concat([input, Buffer.from('anything at all')]));
  t.equal(repair.passingThrough, true);
});

t.test('bytes that are not HTTP/2 as it reads them are passed on for the server to judge', async (t) => {
  const broken = frame(1, END_HEADERS, 1, Buffer.from([0x80])); // indexed field 0: an HPACK error
  const repair = new AuthorityRepair();
  const out: Buffer[] = [];
  repair.on('data', (c: Buffer) => out.push(c));
  repair.write(Buffer.concat([SETTINGS, broken, Buffer.from('tail')]));
  await new Promise((r) => setImmediate(r));
  t.same(Buffer.concat(out), Buffer.concat([SETTINGS, broken, Buffer.from('tail')]));
  t.equal(repair.passingThrough, true);
});
