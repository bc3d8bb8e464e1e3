import t from 'tap';
import {
  GrpcCode,
  KvError,
  MAX_LEASE_TTL,
  MAX_REQUEST_BYTES,
  MAX_TXN_OPS,
  type RequestOp,
  type TxnRequest,
} from '../../src/kv/api';
import {
  WATCH_RANGE_EMPTY,
  validateCompaction,
  validateDelete,
  validateLeaseGrant,
  validateLeaseKeepAlive,
  validateLeaseRevoke,
  validateLeaseTimeToLive,
  validatePut,
  validateRange,
  validateTxn,
  validateWatchCreate,
  watchCreateCancelReason,
} from '../../src/kv/validate';

const k = Buffer.from('k');
const b = (s: string): Buffer => Buffer.from(s);

function code(fn: () => void): [GrpcCode, string] | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof KvError)) throw err;
    return [err.code, err.message];
  }
}

const invalid = (message: string): [GrpcCode, string] => [GrpcCode.InvalidArgument, message];
const EMPTY_KEY = invalid('etcdserver: key is not provided');
const TOO_LARGE = invalid('etcdserver: request is too large');
const TOO_MANY = invalid('etcdserver: too many operations in txn request');
const DUPLICATE = invalid('etcdserver: duplicate key given in txn request');

const put = (key: string): RequestOp => ({ type: 'put', put: { key: b(key), value: b('v') } });
const del = (key: string, end?: string | Buffer): RequestOp => ({
  type: 'deleteRange',
  deleteRange: { key: b(key), rangeEnd: typeof end === 'string' ? b(end) : end },
});
const range = (key: string): RequestOp => ({ type: 'range', range: { key: b(key) } });
const txn = (success: RequestOp[], failure: RequestOp[] = []): RequestOp => ({
  type: 'txn',
  txn: { compare: [], success, failure },
});
const top = (success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({ compare: [], success, failure });

t.test('empty keys', async (t) => {
  t.same(code(() => validatePut({ key: Buffer.alloc(0), value: k })), EMPTY_KEY);
  t.same(code(() => validateRange({ key: Buffer.alloc(0) })), EMPTY_KEY);
  t.same(code(() => validateDelete({ key: Buffer.alloc(0), rangeEnd: Buffer.from([0]) })), EMPTY_KEY);
  t.same(code(() => validateTxn({ compare: [{ key: Buffer.alloc(0), result: 'EQUAL', target: 'VERSION', version: 1 }], success: [], failure: [] })), EMPTY_KEY);
  t.same(code(() => validateTxn(top([txn([], [range('')])]))), EMPTY_KEY, 'nested, in a failure branch');
  t.equal(code(() => validatePut({ key: k, value: Buffer.alloc(0) })), undefined, 'an empty value is fine');
  t.equal(code(() => validateRange({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) })), undefined);
  t.same(code(() => validatePut({ key: 'k' as unknown as Buffer, value: k })), invalid('etcdserver: invalid key (must be bytes)'));
});

t.test('inverted ranges are not errors for range and deleteRange (they hold no key), as in etcd', async (t) => {
  t.equal(code(() => validateRange({ key: b('z'), rangeEnd: b('a') })), undefined);
  t.equal(code(() => validateDelete({ key: b('z'), rangeEnd: b('a') })), undefined);
});

t.test('request size limit, measured on the bytes the request carries', async (t) => {
  const at = Buffer.alloc(MAX_REQUEST_BYTES - 1);
  t.equal(code(() => validatePut({ key: k, value: at })), undefined, 'key + value at the limit');
  t.same(code(() => validatePut({ key: Buffer.from('kk'), value: at })), TOO_LARGE);
  t.same(code(() => validateRange({ key: k, rangeEnd: Buffer.alloc(MAX_REQUEST_BYTES) })), TOO_LARGE);
  t.same(code(() => validateDelete({ key: Buffer.alloc(MAX_REQUEST_BYTES + 1) })), TOO_LARGE);
  const half = Buffer.alloc(MAX_REQUEST_BYTES / 2);
  const bigTxn = top([{ type: 'put', put: { key: b('a'), value: half } }], [txn([{ type: 'put', put: { key: b('b'), value: half } }])]);
  t.same(code(() => validateTxn(bigTxn)), TOO_LARGE, 'a txn counts every branch, nested ones too');
  t.same(code(() => validateWatchCreate({ key: Buffer.alloc(MAX_REQUEST_BYTES + 1) })), TOO_LARGE);
});

t.test('numbers: negatives and non-integers are refused, naming the field', async (t) => {
  t.equal(code(() => validateRange({ key: k, limit: 0, revision: 0 })), undefined);
  t.equal(code(() => validateRange({ key: k, limit: 10, revision: 3, minModRevision: 1, maxCreateRevision: 9 })), undefined);
  t.same(code(() => validateRange({ key: k, limit: -1 })), invalid('etcdserver: invalid limit -1 (must be >= 0)'));
  t.same(code(() => validateRange({ key: k, limit: 1.5 })), invalid('etcdserver: invalid limit 1.5 (must be an integer of at most 2^53-1 in magnitude)'));
  t.same(code(() => validateRange({ key: k, revision: -3 })), invalid('etcdserver: invalid revision -3 (must be >= 0)'));
  t.same(code(() => validateRange({ key: k, minModRevision: -1 })), invalid('etcdserver: invalid min_mod_revision -1 (must be >= 0)'));
  t.same(code(() => validateRange({ key: k, maxCreateRevision: -1 })), invalid('etcdserver: invalid max_create_revision -1 (must be >= 0)'));
  t.same(
    code(() => validateRange({ key: k, sortOrder: 'UP' as 'NONE' })),
    invalid('etcdserver: invalid sort_order "UP" (must be one of NONE, ASCEND, DESCEND)'),
  );
  t.same(
    code(() => validateRange({ key: k, sortTarget: 'SIZE' as 'KEY' })),
    invalid('etcdserver: invalid sort_target "SIZE" (must be one of KEY, VERSION, CREATE, MOD, VALUE)'),
  );
  t.same(
    code(() => validateTxn(top([{ type: 'range', range: { key: k, limit: -2 } }]))),
    invalid('etcdserver: invalid success[0].request_range.limit -2 (must be >= 0)'),
    'inside a txn, with the path',
  );
  t.same(
    code(() => validateTxn({ compare: [{ key: k, result: 'LESS', target: 'MOD', modRevision: -1 }], success: [], failure: [] })),
    invalid('etcdserver: invalid compare[0].mod_revision -1 (must be >= 0)'),
  );
  t.same(
    code(() => validateTxn({ compare: [{ key: k, result: 'SAME' as 'EQUAL', target: 'VERSION', version: 1 }], success: [], failure: [] })),
    invalid('etcdserver: invalid compare[0].result "SAME" (must be one of EQUAL, GREATER, LESS, NOT_EQUAL)'),
  );
});

t.test('put: lease, ignore_value, ignore_lease (etcd checkPutRequest)', async (t) => {
  t.equal(code(() => validatePut({ key: k, value: Buffer.alloc(0), ignoreValue: true, lease: 5 })), undefined);
  t.equal(code(() => validatePut({ key: k, value: b('v'), ignoreLease: true })), undefined);
  t.same(code(() => validatePut({ key: k, value: b('v'), ignoreValue: true })), invalid('etcdserver: value is provided'));
  t.same(code(() => validatePut({ key: k, value: b('v'), ignoreLease: true, lease: 3 })), invalid('etcdserver: lease is provided'));
  t.same(
    code(() => validatePut({ key: k, value: b('v'), lease: -1 })),
    invalid('etcdserver: invalid lease -1 (a lease id is between 0 and 9007199254740991)'),
  );
  t.same(
    code(() => validateTxn(top([{ type: 'put', put: { key: k, value: b('v'), ignoreValue: true } }]))),
    invalid('etcdserver: value is provided'),
  );
});

t.test('request ids: well formed, and only on the top-level request', async (t) => {
  t.equal(code(() => validatePut({ key: k, value: k, requestId: { client: '0123456789abcdef', seq: 1 } })), undefined);
  t.same(
    code(() => validatePut({ key: k, value: k, requestId: { client: '', seq: 1 } })),
    invalid('etcdserver: invalid request id client (must be a non-empty string of at most 64 characters)'),
  );
  t.same(
    code(() => validateDelete({ key: k, requestId: { client: 'c', seq: -1 } })),
    invalid('etcdserver: invalid request id seq -1 (must be >= 0)'),
  );
  t.same(
    code(() => validateTxn(top([{ type: 'put', put: { key: k, value: k, requestId: { client: 'c', seq: 1 } } }]))),
    invalid('etcdserver: invalid success[0].request_put.request id (only the top-level request carries one)'),
  );
  t.equal(code(() => validateTxn({ ...top([put('a')]), requestId: { client: 'c', seq: 2 } })), undefined);
});

t.test('txn operation limit, counted as etcd does (nested txns get what is left)', async (t) => {
  const many = (n: number, op: (i: number) => RequestOp): RequestOp[] => Array.from({ length: n }, (_, i) => op(i));
  t.equal(code(() => validateTxn(top(many(MAX_TXN_OPS, (i) => put(`k${i}`))))), undefined, '128 is fine');
  t.same(code(() => validateTxn(top(many(MAX_TXN_OPS + 1, (i) => put(`k${i}`))))), TOO_MANY);
  t.same(code(() => validateTxn(top([], many(MAX_TXN_OPS + 1, (i) => range(`k${i}`))))), TOO_MANY, 'failure too');
  const compares = many(MAX_TXN_OPS + 1, () => range('x')).map(() => ({ key: k, result: 'EQUAL' as const, target: 'VERSION' as const, version: 1 }));
  t.same(code(() => validateTxn({ compare: compares, success: [], failure: [] })), TOO_MANY, 'compares count too');
  // 64 at the top leaves 64 for a nested txn.
  const outer = (inner: number): TxnRequest => top([txn(many(inner, (i) => range(`n${i}`))), ...many(63, (i) => range(`o${i}`))]);
  t.equal(code(() => validateTxn(outer(64))), undefined);
  t.same(code(() => validateTxn(outer(65))), TOO_MANY);
  t.same(code(() => validateTxn(top([{ type: 'get' } as unknown as RequestOp]))), invalid('etcdserver: invalid success[0].type "get" (must be range, put, deleteRange or txn)'));
});

t.test('a key written twice in one txn is refused (etcd checkIntervals, and the cases it misses)', async (t) => {
  const cases: [string, TxnRequest, boolean][] = [
    ['two puts of a key', top([put('a'), put('a')]), true],
    ['puts of a key in success and failure', top([put('a')], [put('a')]), false],
    ['a put and a read of a key', top([put('a'), range('a')]), false],
    ['a put inside a delete range', top([del('a', 'c'), put('b')]), true],
    ['a put before the delete that covers it', top([put('b'), del('a', 'c')]), true],
    ['a put at the (exclusive) end of a delete range', top([del('a', 'c'), put('c')]), false],
    ['a put of the deleted key', top([del('b'), put('b')]), true],
    ['a put next to a single-key delete', top([del('b'), put('ba')]), false],
    ['a put under a delete of every key >= (range_end "\\0")', top([del('a', Buffer.from([0])), put('zzz')]), true],
    ['a put under an inverted delete (deletes nothing)', top([del('c', 'a'), put('b')]), false],
    ['overlapping deletes', top([del('a', 'm'), del('c', 'z')]), false],
    ['a nested put under an outer delete', top([del('a', 'c'), txn([put('b')])]), true],
    ['an outer put under a nested delete', top([put('b'), txn([], [del('a', 'c')])]), true],
    ['puts of a key in the two branches of a nested txn', top([txn([put('a')], [put('a')])]), false],
    ['a put and a delete in the two branches of a nested txn', top([txn([put('b')], [del('a', 'c')])]), false],
    ['a put in one nested txn under a delete in a later one (etcd misses it)', top([txn([put('b')]), txn([del('a', 'c')])]), true],
    ['puts of a key in two nested txns', top([txn([put('a')]), txn([], [put('a')])]), true],
    ['deep nesting', top([txn([txn([txn([put('q')])])]), del('q')]), true],
  ];
  for (const [name, req, duplicate] of cases) {
    t.same(code(() => validateTxn(req)), duplicate ? DUPLICATE : undefined, name);
  }
});

/** The rule by brute force: two writes can both run unless they sit in different branches of one txn. */
function bruteForceDuplicate(req: TxnRequest): boolean {
  interface W {
    op: RequestOp;
    path: string[]; // branch choices from the top, e.g. ["s", "0s", ...]
  }
  const writes: W[] = [];
  const walk = (ops: RequestOp[], path: string[]): void =>
    ops.forEach((op, i) => {
      if (op.type === 'txn') {
        walk(op.txn.success, [...path, `${i}s`]);
        walk(op.txn.failure, [...path, `${i}f`]);
      } else if (op.type !== 'range') writes.push({ op, path });
    });
  walk(req.success, ['s']);
  walk(req.failure, ['f']);
  const together = (a: W, b: W): boolean => {
    for (let i = 0; i < Math.min(a.path.length, b.path.length); i++) {
      if (a.path[i] === b.path[i]) continue;
      // Same txn (same op index), different branch: exclusive. Different ops of one list: both run.
      return a.path[i].slice(0, -1) !== b.path[i].slice(0, -1);
    }
    return true;
  };
  const covers = (d: RequestOp, key: Buffer): boolean => {
    if (d.type !== 'deleteRange') return false;
    const { key: start, rangeEnd: end } = d.deleteRange;
    if (end === undefined || end.length === 0) return start.equals(key);
    if (Buffer.compare(key, start) < 0) return false;
    return (end.length === 1 && end[0] === 0) || Buffer.compare(key, end) < 0;
  };
  for (let i = 0; i < writes.length; i++) {
    for (let j = i + 1; j < writes.length; j++) {
      const [a, b] = [writes[i], writes[j]];
      if (!together(a, b)) continue;
      if (a.op.type === 'put' && b.op.type === 'put' && a.op.put.key.equals(b.op.put.key)) return true;
      if (a.op.type === 'put' && covers(b.op, a.op.put.key)) return true;
      if (b.op.type === 'put' && covers(a.op, b.op.put.key)) return true;
    }
  }
  return false;
}

t.test('the overlap rule agrees with a brute-force model on random txns', async (t) => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const keys = ['a', 'b', 'c', 'd', 'e'];
  const randomOps = (depth: number): RequestOp[] =>
    Array.from({ length: 1 + rand(3) }, () => {
      const r = rand(depth > 0 ? 5 : 4);
      if (r === 0) return put(keys[rand(keys.length)]);
      if (r === 1) return del(keys[rand(keys.length)]);
      if (r === 2) {
        const [x, y] = [rand(keys.length), rand(keys.length + 1)];
        return del(keys[x], y === keys.length ? Buffer.from([0]) : keys[y]);
      }
      if (r === 3) return range(keys[rand(keys.length)]);
      return txn(randomOps(depth - 1), randomOps(depth - 1));
    });
  let refused = 0;
  const trials = 3000;
  for (let i = 0; i < trials; i++) {
    const req = top(randomOps(2), randomOps(2));
    const expected = bruteForceDuplicate(req);
    const got = code(() => validateTxn(req));
    if ((got !== undefined) !== expected || (got !== undefined && got[1] !== DUPLICATE[1])) {
      t.fail(`trial ${i}: expected ${expected ? 'a duplicate' : 'no error'}, got ${JSON.stringify(got)}`);
      return;
    }
    if (expected) refused++;
  }
  t.ok(refused > trials / 10 && refused < (trials * 9) / 10, `both outcomes are exercised (${refused} refused of ${trials})`);
});

t.test('compaction', async (t) => {
  t.equal(code(() => validateCompaction({ revision: 1 })), undefined);
  t.same(code(() => validateCompaction({ revision: 0 })), invalid('etcdserver: invalid compaction revision 0 (must be >= 1)'));
  t.same(code(() => validateCompaction({ revision: -4 })), invalid('etcdserver: invalid compaction revision -4 (must be >= 1)'));
});

t.test('leases', async (t) => {
  t.equal(code(() => validateLeaseGrant({ ttl: 1 })), undefined);
  t.equal(code(() => validateLeaseGrant({ ttl: MAX_LEASE_TTL, id: Number.MAX_SAFE_INTEGER })), undefined);
  t.same(code(() => validateLeaseGrant({ ttl: MAX_LEASE_TTL + 1 })), [GrpcCode.OutOfRange, 'etcdserver: too large lease TTL']);
  t.same(code(() => validateLeaseGrant({ ttl: 0 })), invalid('etcdserver: invalid lease TTL 0 (must be > 0 seconds)'));
  t.same(code(() => validateLeaseGrant({ ttl: -5 })), invalid('etcdserver: invalid lease TTL -5 (must be > 0 seconds)'));
  t.same(code(() => validateLeaseGrant({ ttl: 2.5 })), invalid('etcdserver: invalid lease TTL 2.5 (must be an integer)'));
  const badId = (id: number) => invalid(`etcdserver: invalid lease ID ${id} (a lease id is between 0 and 9007199254740991)`);
  t.same(code(() => validateLeaseGrant({ ttl: 5, id: -1 })), badId(-1));
  t.same(code(() => validateLeaseRevoke({ id: -1 })), badId(-1));
  t.same(code(() => validateLeaseKeepAlive({ id: 2 ** 53 })), badId(2 ** 53));
  t.same(code(() => validateLeaseTimeToLive({ id: 0.5 })), badId(0.5));
  t.equal(code(() => validateLeaseRevoke({ id: 0 })), undefined, 'lease 0 is for the member to answer "not found"');
});

t.test('watch create', async (t) => {
  t.equal(code(() => validateWatchCreate({ key: b('a'), rangeEnd: b('b'), startRevision: 3, watchId: 0, filters: ['NOPUT'] })), undefined);
  t.equal(code(() => validateWatchCreate({ key: Buffer.alloc(0), watchId: -1 })), undefined, 'empty key ("\\0") and auto id');
  t.same(code(() => validateWatchCreate({ key: k, startRevision: -1 })), invalid('etcdserver: invalid start_revision -1 (must be >= 0)'));
  t.same(code(() => validateWatchCreate({ key: k, watchId: -2 })), invalid('etcdserver: invalid watch_id -2 (must be >= -1)'));
  t.same(
    code(() => validateWatchCreate({ key: k, filters: ['NOPUT', 'NOTHING' as 'NOPUT'] })),
    invalid('etcdserver: invalid filters[1] "NOTHING" (must be one of NOPUT, NODELETE)'),
  );
  t.equal(watchCreateCancelReason({ key: b('a'), rangeEnd: b('b') }), undefined);
  t.equal(watchCreateCancelReason({ key: b('a') }), undefined);
  t.equal(watchCreateCancelReason({ key: b('a'), rangeEnd: Buffer.from([0]) }), undefined, 'every key >= a');
  t.equal(watchCreateCancelReason({ key: b('b'), rangeEnd: b('a') }), WATCH_RANGE_EMPTY, 'inverted');
  t.equal(watchCreateCancelReason({ key: b('a'), rangeEnd: b('a') }), WATCH_RANGE_EMPTY, 'empty');
  t.equal(WATCH_RANGE_EMPTY, 'mvcc: watcher range is empty');
});
