import t from 'tap';
import { GrpcCode, KvError, MAX_REQUEST_BYTES } from '../../src/kv/api';
import { validateDelete, validatePut, validateRange } from '../../src/kv/validate';

const k = Buffer.from('k');

function code(fn: () => void): [GrpcCode, string] | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!(err instanceof KvError)) throw err;
    return [err.code, err.message];
  }
}

t.test('empty keys', async (t) => {
  const empty = [GrpcCode.InvalidArgument, 'etcdserver: key is not provided'];
  t.same(code(() => validatePut({ key: Buffer.alloc(0), value: k })), empty);
  t.same(code(() => validateRange({ key: Buffer.alloc(0) })), empty);
  t.same(code(() => validateDelete({ key: Buffer.alloc(0), rangeEnd: Buffer.from([0]) })), empty);
  t.equal(code(() => validatePut({ key: k, value: Buffer.alloc(0) })), undefined, 'an empty value is fine');
  t.equal(code(() => validateRange({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]) })), undefined);
});

t.test('request size limit', async (t) => {
  const tooLarge = [GrpcCode.InvalidArgument, 'etcdserver: request is too large'];
  const at = Buffer.alloc(MAX_REQUEST_BYTES - 1);
  t.equal(code(() => validatePut({ key: k, value: at })), undefined, 'key + value at the limit');
  t.same(code(() => validatePut({ key: Buffer.from('kk'), value: at })), tooLarge);
  t.same(code(() => validateRange({ key: k, rangeEnd: Buffer.alloc(MAX_REQUEST_BYTES) })), tooLarge);
  t.same(code(() => validateDelete({ key: Buffer.alloc(MAX_REQUEST_BYTES + 1) })), tooLarge);
});

t.test('range limit', async (t) => {
  t.equal(code(() => validateRange({ key: k, limit: 0 })), undefined);
  t.equal(code(() => validateRange({ key: k, limit: 10 })), undefined);
  t.match(code(() => validateRange({ key: k, limit: -1 })), [GrpcCode.InvalidArgument, /limit -1/]);
  t.match(code(() => validateRange({ key: k, limit: 1.5 })), [GrpcCode.InvalidArgument, /limit 1.5/]);
});
