// Key ranges as etcd's clientv3 builds them (getPrefix, WithPrefix, WithFromKey).

import t from 'tap';
import { FROM_KEY_END, keyRange, prefixEnd } from '../../src/client/keys';

const hex = (b: Buffer | undefined): string | undefined => b?.toString('hex');

t.test('prefixEnd increments the last byte below 0xff and cuts the rest', async (t) => {
  t.equal(prefixEnd(Buffer.from('abc')).toString(), 'abd');
  t.equal(prefixEnd(Buffer.from('a')).toString(), 'b');
  t.equal(hex(prefixEnd(Buffer.from([0x61, 0xff]))), '62');
  t.equal(hex(prefixEnd(Buffer.from([0x61, 0xff, 0xff]))), '62');
  t.equal(hex(prefixEnd(Buffer.from([0x00]))), '01');
  t.equal(hex(prefixEnd(Buffer.from([0xfe, 0xff]))), 'ff');
});

t.test('prefixEnd of only 0xff bytes or nothing is "\\0" (every key from there on)', async (t) => {
  t.equal(hex(prefixEnd(Buffer.from([0xff]))), '00');
  t.equal(hex(prefixEnd(Buffer.from([0xff, 0xff]))), '00');
  t.equal(hex(prefixEnd(Buffer.alloc(0))), '00');
  t.equal(hex(FROM_KEY_END), '00');
});

t.test('prefixEnd does not modify its argument', async (t) => {
  const k = Buffer.from('abc');
  prefixEnd(k);
  t.equal(k.toString(), 'abc');
});

t.test('keyRange', async (t) => {
  t.same(keyRange('foo'), { key: Buffer.from('foo') }, 'one key: no range end');
  const p = keyRange('foo', { prefix: true });
  t.equal(p.key.toString(), 'foo');
  t.equal(p.rangeEnd?.toString(), 'fop');
  const all = keyRange('', { prefix: true });
  t.equal(hex(all.key), '00', 'empty prefix: key "\\0"');
  t.equal(hex(all.rangeEnd), '00', 'empty prefix: range end "\\0" (all keys)');
  const from = keyRange('m', { fromKey: true });
  t.equal(from.key.toString(), 'm');
  t.equal(hex(from.rangeEnd), '00');
  const fromEmpty = keyRange('', { fromKey: true });
  t.equal(hex(fromEmpty.key), '00');
  t.equal(hex(fromEmpty.rangeEnd), '00');
  const explicit = keyRange('a', { rangeEnd: 'c' });
  t.equal(explicit.rangeEnd?.toString(), 'c');
  t.equal(keyRange(Buffer.from([1, 2]), { prefix: true }).rangeEnd?.toString('hex'), '0103');
  t.throws(() => keyRange('a', { prefix: true, fromKey: true }), /together/);
});
