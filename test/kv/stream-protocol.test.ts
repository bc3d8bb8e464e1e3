// The native stream's frames (src/kv/stream-protocol.ts): what goes in comes out with the same types
// (Buffers as Buffers, absent fields absent), and every malformed frame is refused with a message naming
// the field and the problem — with the request id when there is one to answer.

import { Packr } from 'msgpackr';
import t, { type Test } from 'tap';
import { GrpcCode, type TxnRequest, type WatchResponse } from '../../src/kv/api';
import {
  decodeClientFrame,
  decodeResult,
  decodeServerFrame,
  encodeClientHello,
  encodeError,
  encodeRequest,
  encodeResult,
  encodeServerHello,
  encodeWatch,
  FrameError,
  peekRequestId,
  STREAM_PROTOCOL_VERSION,
} from '../../src/kv/stream-protocol';
import { MAX_TXN_DEPTH } from '../../src/kv/stream-schemas';

const raw = new Packr({ useRecords: false });
const pack = (v: unknown): Buffer => raw.pack(v);
const header = { clusterId: '00000000000000aa', memberId: '00000000000000bb', revision: 7, raftTerm: 2 };

/** The FrameError a client frame gets, or a failure if it is accepted. */
function refusal(t: Test, data: Buffer): FrameError {
  try {
    const f = decodeClientFrame(data);
    t.fail(`accepted: ${JSON.stringify(f)}`);
    return new FrameError('accepted');
  } catch (err) {
    if (!(err instanceof FrameError)) throw err;
    return err;
  }
}

t.test('hello frames round-trip', async (t) => {
  t.same(decodeClientFrame(encodeClientHello()), { hello: { version: STREAM_PROTOCOL_VERSION } });
  t.same(decodeServerFrame(encodeServerHello({ maxFrameBytes: 100, maxInFlight: 3 })), {
    hello: { version: STREAM_PROTOCOL_VERSION, maxFrameBytes: 100, maxInFlight: 3 },
  });
  // A later version may add fields to its hello; the version still reads.
  t.same(decodeClientFrame(pack({ hello: { version: 9, extra: true } })), { hello: { version: 9 } });
});

t.test('requests round-trip with Buffers and without absent fields', async (t) => {
  const put = encodeRequest(1, 'put', {
    key: Buffer.from('k'),
    value: Buffer.from([0, 255, 1]),
    lease: undefined,
    prevKv: true,
    requestId: { client: '0123456789abcdef', seq: 2 ** 53 - 1 },
  });
  const f = decodeClientFrame(put);
  t.same(f, {
    id: 1,
    method: 'put',
    params: { key: Buffer.from('k'), value: Buffer.from([0, 255, 1]), prevKv: true, requestId: { client: '0123456789abcdef', seq: 2 ** 53 - 1 } },
  });
  if ('params' in f && f.method === 'put') {
    t.ok(Buffer.isBuffer(f.params.key) && Buffer.isBuffer(f.params.value), 'bin decodes to Buffer');
    t.notOk('lease' in f.params, 'an undefined field does not travel');
  }

  const txn: TxnRequest = {
    compare: [
      { key: Buffer.from('a'), result: 'EQUAL', target: 'VERSION', version: 0 },
      { key: Buffer.from('a'), rangeEnd: Buffer.from('b'), result: 'GREATER', target: 'MOD', modRevision: 3 },
      { key: Buffer.from('v'), result: 'NOT_EQUAL', target: 'VALUE', value: Buffer.from('x') },
    ],
    success: [
      { type: 'put', put: { key: Buffer.from('a'), value: Buffer.from('1') } },
      { type: 'txn', txn: { compare: [], success: [{ type: 'range', range: { key: Buffer.from('a') } }], failure: [] } },
    ],
    failure: [{ type: 'deleteRange', deleteRange: { key: Buffer.from('a'), rangeEnd: Buffer.from([0]) } }],
    requestId: { client: 'c', seq: 1 },
  };
  t.same(decodeClientFrame(encodeRequest(9, 'txn', txn)), { id: 9, method: 'txn', params: txn });
  t.same(decodeClientFrame(encodeRequest(3, 'status', {})), { id: 3, method: 'status', params: {} });
  // nil is how other MessagePack encoders write "absent".
  t.same(decodeClientFrame(pack({ id: 4, method: 'range', params: { key: Buffer.from('k'), limit: null } })), {
    id: 4,
    method: 'range',
    params: { key: Buffer.from('k') },
  });
});

t.test('malformed client frames are refused with the problem named', async (t) => {
  const cases: { name: string; data: Buffer; id?: number; match: RegExp }[] = [
    { name: 'not msgpack', data: Buffer.from([0xc1]), match: /expected a map/ },
    { name: 'truncated', data: Buffer.from([0x81, 0xa1]), match: /not a MessagePack value/ },
    { name: 'an array', data: pack([1, 2]), match: /expected a map, got an array/ },
    { name: 'no id', data: pack({ method: 'range', params: {} }), match: /hello frame or a request frame/ },
    { name: 'negative id', data: pack({ id: -1, method: 'range', params: {} }), match: /id: expected a non-negative integer/ },
    { name: 'id beyond 2^53', data: Buffer.concat([Buffer.from([0x83, 0xa2, 0x69, 0x64, 0xcf]), Buffer.from('0020000000000001', 'hex'), pack('method').subarray(0), pack('range'), pack('params'), pack({})]), match: /beyond 2\^53/ },
    { name: 'unknown method', data: pack({ id: 5, method: 'launch', params: {} }), id: 5, match: /method: expected one of "range"/ },
    { name: 'extra frame field', data: pack({ id: 6, method: 'status', params: {}, x: 1 }), id: 6, match: /unknown field "x" in a request frame/ },
    { name: 'key as string', data: pack({ id: 7, method: 'range', params: { key: 'k' } }), id: 7, match: /^params\.key: expected binary, got a string$/ },
    { name: 'missing value', data: pack({ id: 8, method: 'put', params: { key: Buffer.from('k') } }), id: 8, match: /params\.value: expected binary, got nothing/ },
    { name: 'unknown param', data: pack({ id: 9, method: 'range', params: { key: Buffer.from('k'), limt: 1 } }), id: 9, match: /params: unknown field "limt"/ },
    { name: 'float limit', data: pack({ id: 10, method: 'range', params: { key: Buffer.from('k'), limit: 1.5 } }), id: 10, match: /params\.limit: expected a non-negative integer below 2\^53, got the number 1.5/ },
    { name: 'bad sort order', data: pack({ id: 11, method: 'range', params: { key: Buffer.from('k'), sortOrder: 'UP' } }), id: 11, match: /params\.sortOrder: expected one of "NONE", "ASCEND", "DESCEND", got "UP"/ },
    { name: 'params on status', data: pack({ id: 12, method: 'status', params: { verbose: true } }), id: 12, match: /takes no parameters/ },
    {
      name: 'compare field of another target',
      data: pack({ id: 13, method: 'txn', params: { compare: [{ key: Buffer.from('a'), result: 'EQUAL', target: 'VERSION', value: Buffer.from('x') }], success: [], failure: [] } }),
      id: 13,
      match: /params\.compare\[0\]: unknown field "value" \(target VERSION compares version\)/,
    },
    {
      name: 'op body of another type',
      data: pack({ id: 14, method: 'txn', params: { compare: [], success: [{ type: 'put', range: { key: Buffer.from('a') } }], failure: [] } }),
      id: 14,
      match: /params\.success\[0\]: unknown field "range"/,
    },
    {
      name: 'nested put without key',
      data: pack({ id: 15, method: 'txn', params: { compare: [], success: [], failure: [{ type: 'txn', txn: { compare: [], success: [{ type: 'put', put: { value: Buffer.from('v') } }], failure: [] } }] } }),
      id: 15,
      match: /params\.failure\[0\]\.txn\.success\[0\]\.put\.key: expected binary/,
    },
    { name: 'watch id below -1', data: pack({ id: 16, method: 'watchCreate', params: { key: Buffer.from('a'), watchId: -2 } }), id: 16, match: /params\.watchId: expected -1/ },
    { name: 'bad filter', data: pack({ id: 17, method: 'watchCreate', params: { key: Buffer.from('a'), filters: ['NOPE'] } }), id: 17, match: /params\.filters\[0\]: expected one of "NOPUT", "NODELETE"/ },
    { name: 'empty request id client', data: pack({ id: 18, method: 'deleteRange', params: { key: Buffer.from('a'), requestId: { client: '', seq: 1 } } }), id: 18, match: /params\.requestId\.client: expected 1 to 64 characters/ },
    { name: 'a date for a key', data: pack({ id: 19, method: 'range', params: { key: new Date(0) } }), id: 19, match: /params\.key: expected binary, got a map/ },
    { name: 'hello plus more', data: pack({ hello: { version: 1 }, id: 1 }), match: /unknown field "id" in a hello frame/ },
  ];
  for (const c of cases) {
    const err = refusal(t, c.data);
    t.match(err.message, c.match, `${c.name}: ${err.message}`);
    t.equal(err.requestId, c.id, `${c.name}: request id ${String(c.id)}`);
  }
  const answer = refusal(t, pack({ id: 7, method: 'range', params: { key: 'k' } })).toKvError();
  t.equal(answer.code, GrpcCode.InvalidArgument);
  t.equal(answer.message, 'etcdserver: malformed range request: params.key: expected binary, got a string');
});

t.test('nested transactions deeper than the limit are refused, not walked', async (t) => {
  let txn: TxnRequest = { compare: [], success: [], failure: [] };
  for (let i = 0; i < MAX_TXN_DEPTH - 1; i++) txn = { compare: [], success: [{ type: 'txn', txn }], failure: [] };
  t.ok(decodeClientFrame(encodeRequest(1, 'txn', txn)), `${MAX_TXN_DEPTH} levels are fine`);
  txn = { compare: [], success: [{ type: 'txn', txn }], failure: [] };
  t.match(refusal(t, encodeRequest(2, 'txn', txn)).message, /nested deeper than 16 levels/);
  // Far deeper than any decoder stack: refused as undecodable, never a crash.
  const deep = Buffer.alloc(200_000, 0x91);
  t.match(refusal(t, deep).message, /not a MessagePack value/);
});

t.test('peekRequestId reads the id of a frame it does not check', async (t) => {
  t.equal(peekRequestId(pack({ id: 42, method: 'nonsense' })), 42);
  t.equal(peekRequestId(pack({ method: 'range' })), undefined);
  t.equal(peekRequestId(Buffer.from([0xc1])), undefined);
});

t.test('answers and watch frames round-trip; unknown answer fields are ignored', async (t) => {
  const kv = { key: Buffer.from('k'), value: Buffer.from('v'), createRevision: 2, modRevision: 3, version: 2, lease: 0 };
  const range = { header, kvs: [kv], more: false, count: 1 };
  const f = decodeServerFrame(encodeResult(5, range));
  t.ok('result' in f);
  if ('result' in f) {
    const r = decodeResult('range', f.id, f.result);
    t.same(r, range);
    t.ok(Buffer.isBuffer(r.kvs[0].key), 'keys come back as Buffers');
  }
  // A newer member's extra field is dropped, not refused.
  const extra = decodeResult('health', 1, { health: true, reason: '', uptime: 5 });
  t.same(extra, { health: true, reason: '' });

  const err = decodeServerFrame(encodeError(6, { code: GrpcCode.OutOfRange, message: 'etcdserver: mvcc: required revision has been compacted' }));
  t.same(err, { id: 6, error: { code: GrpcCode.OutOfRange, message: 'etcdserver: mvcc: required revision has been compacted' } });

  const watch: WatchResponse = {
    header,
    watchId: 3,
    events: [{ type: 'DELETE', kv: { ...kv, value: Buffer.alloc(0), version: 0, createRevision: 0 }, prevKv: kv }],
  };
  t.same(decodeServerFrame(encodeWatch(watch)), { watch });
  const progress: WatchResponse = { header, watchId: -1, events: [] };
  t.same(decodeServerFrame(encodeWatch(progress)), { watch: progress });

  const txn = {
    header,
    succeeded: true,
    responses: [
      { type: 'put', put: { header, prevKv: kv } },
      { type: 'txn', txn: { header, succeeded: false, responses: [{ type: 'deleteRange', deleteRange: { header, deleted: 1, prevKvs: [] } }] } },
    ],
  };
  t.same(decodeResult('txn', 1, txn), txn);
});

t.test('malformed answers are refused', async (t) => {
  t.throws(() => decodeResult('range', 1, { header, kvs: [{ key: 'k' }], more: false, count: 1 }), /result\.kvs\[0\]\.key: expected binary/);
  t.throws(() => decodeResult('leaseKeepAlive', 1, { header, id: 1 }), /result\.ttl: expected an integer/);
  t.throws(() => decodeResult('status', 1, { header: { ...header, revision: -1 } }), /result\.header\.revision: expected a non-negative integer/);
  t.throws(() => decodeServerFrame(pack({ id: 1, error: { code: 99, message: 'x' } })), /error\.code: expected a gRPC status code/);
  t.throws(() => decodeServerFrame(pack({ id: 1 })), /answer 1 has neither result nor error/);
  t.throws(() => decodeServerFrame(pack({ watch: { header, watchId: 1, events: [{ type: 'PUTT' }] } })), /watch\.events\[0\]\.type/);
  t.throws(() => decodeServerFrame(pack({ hello: { version: 1 } })), /hello\.maxFrameBytes/);
});
