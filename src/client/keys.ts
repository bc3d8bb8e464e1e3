// Key ranges the way etcd's clientv3 builds them (WithPrefix, WithFromKey, getPrefix).

/** etcd's "every key >= key" range end. */
export const FROM_KEY_END: Buffer = Buffer.from([0]);

/** The smallest key greater than every key that starts with `prefix` (etcd's getPrefix): the prefix with
 *  its last byte below 0xff incremented and the rest cut off; "\0" (every key from the prefix on) when
 *  there is no such byte, as for a prefix of only 0xff bytes or the empty prefix. */
export function prefixEnd(prefix: Buffer): Buffer {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] < 0xff) {
      const end = Buffer.from(prefix.subarray(0, i + 1));
      end[i] = prefix[i] + 1;
      return end;
    }
  }
  return Buffer.from(FROM_KEY_END);
}

export interface RangeSpec {
  /** Every key starting with the key (the empty key: every key). */
  prefix?: boolean;
  /** Every key >= the key (the empty key: every key). */
  fromKey?: boolean;
  /** An explicit end, exclusive; ignored with prefix or fromKey. */
  rangeEnd?: Buffer | string;
}

export function toBuffer(b: Buffer | string): Buffer {
  return typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
}

/** The key and range end of a request, as etcd's clientv3 sets them. */
export function keyRange(key: Buffer | string, spec: RangeSpec = {}): { key: Buffer; rangeEnd?: Buffer } {
  const k = toBuffer(key);
  if (spec.prefix === true && spec.fromKey === true) {
    throw new Error('prefix and fromKey cannot be used together');
  }
  if (spec.prefix === true) {
    if (k.length === 0) return { key: Buffer.from([0]), rangeEnd: Buffer.from(FROM_KEY_END) };
    return { key: k, rangeEnd: prefixEnd(k) };
  }
  if (spec.fromKey === true) {
    return { key: k.length === 0 ? Buffer.from([0]) : k, rangeEnd: Buffer.from(FROM_KEY_END) };
  }
  if (spec.rangeEnd !== undefined) return { key: k, rangeEnd: toBuffer(spec.rangeEnd) };
  return { key: k };
}
