import t from 'tap';
import { crc32c } from '../../src/util/crc32c';

// A bit-at-a-time reference, independent of the tables under test.
function reference(buf: Uint8Array, prev = 0): number {
  let c = ~prev >>> 0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

t.test('known vectors', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
  t.equal(crc32c(Buffer.alloc(32, 0xff)), 0x62a8ab43);
  t.equal(crc32c(new Uint8Array(0)), 0);
});

t.test('matches the bitwise reference at every length around the 8-byte stride', async (t) => {
  const buf = Buffer.alloc(300);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;
  for (let n = 0; n <= buf.length; n++) {
    const a = crc32c(buf.subarray(0, n));
    if (a !== reference(buf.subarray(0, n))) t.fail(`length ${n}`);
  }
  t.pass('all lengths');
});

t.test('chaining: crc32c(b, crc32c(a)) === crc32c(a + b)', async (t) => {
  const all = Buffer.from('The quick brown fox jumps over the lazy dog, twice over, to cross strides.');
  for (let cut = 0; cut <= all.length; cut++) {
    const chained = crc32c(all.subarray(cut), crc32c(all.subarray(0, cut)));
    if (chained !== crc32c(all)) t.fail(`cut at ${cut}`);
  }
  t.pass('every split point');
});
