// Which user keys a request covers, with etcd's conventions for range_end.

/** A single key, [start, end) (end null: every key >= start), or nothing. */
export type Span =
  | { kind: 'single'; key: Buffer }
  | { kind: 'range'; start: Buffer; end: Buffer | null }
  | { kind: 'empty' };

/** rangeEnd absent or empty: just `key`; "\0": every key >= key; otherwise [key, rangeEnd). etcd answers an
 *  inverted or empty interval with nothing rather than an error, and so do we. */
export function spanOf(key: Buffer, rangeEnd: Buffer | undefined): Span {
  if (rangeEnd === undefined || rangeEnd.length === 0) return { kind: 'single', key };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { kind: 'range', start: key, end: null };
  if (Buffer.compare(key, rangeEnd) >= 0) return { kind: 'empty' };
  return { kind: 'range', start: key, end: rangeEnd };
}

export function inSpan(s: Span, k: Buffer): boolean {
  switch (s.kind) {
    case 'single':
      return k.equals(s.key);
    case 'range':
      return Buffer.compare(k, s.start) >= 0 && (s.end === null || Buffer.compare(k, s.end) < 0);
    case 'empty':
      return false;
  }
}
