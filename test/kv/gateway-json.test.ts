import t from 'tap';
import {
  GrpcCode,
  KvError,
  type DeleteRangeResponse,
  type KeyValue,
  type PutResponse,
  type RangeResponse,
  type StatusResponse,
} from '../../src/kv/api';
import {
  GatewayResponseError,
  compactionRequestToJson,
  compactionResponseToJson,
  decodeCompactionResponse,
  decodeDeleteRangeResponse,
  decodeHealthResponse,
  decodePutResponse,
  decodeRangeResponse,
  decodeStatusResponse,
  deleteRangeRequestToJson,
  deleteRangeResponseToJson,
  errorFromJson,
  headerToJson,
  healthToJson,
  httpStatusFromCode,
  idFromJson,
  idToJson,
  parseCompactionRequest,
  parseDeleteRangeRequest,
  parsePutRequest,
  parseRangeRequest,
  putRequestToJson,
  putResponseToJson,
  rangeRequestToJson,
  rangeResponseToJson,
  statusResponseToJson,
  streamErrorToJson,
} from '../../src/kv/gateway-json';

const header = { clusterId: 'cdf818194e3a8c32', memberId: '8e9e05c52164694d', revision: 9007199254740991, raftTerm: 3 };
const kv = (key: string, value: string, lease = 0): KeyValue => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  createRevision: 2,
  modRevision: 4,
  version: 3,
  lease,
});

/** Through real JSON text, as a client receives it. */
const wire = (o: unknown): unknown => JSON.parse(JSON.stringify(o));

t.test('ids: 16 hex digits <-> decimal uint64', async (t) => {
  t.equal(idToJson('8e9e05c52164694d'), '10276657743932975437', "etcd's default member id");
  t.equal(idFromJson('10276657743932975437'), '8e9e05c52164694d');
  t.equal(idToJson('00000000000000ff'), '255');
  t.equal(idFromJson('255'), '00000000000000ff');
  t.equal(idToJson(''), undefined);
  t.equal(idFromJson('0'), '');
  t.throws(() => idToJson('not-hex'));
});

t.test('responses round-trip through JSON', async (t) => {
  const range: RangeResponse = { header, kvs: [kv('a', '1', 5), kv('\u00ff\u0000', '')], more: true, count: 10 };
  t.same(decodeRangeResponse(wire(rangeResponseToJson(range))), range);
  const emptyRange: RangeResponse = { header, kvs: [], more: false, count: 0 };
  t.same(decodeRangeResponse(wire(rangeResponseToJson(emptyRange))), emptyRange);

  const put: PutResponse = { header, prevKv: kv('k', 'v') };
  t.same(decodePutResponse(wire(putResponseToJson(put))), put);
  t.same(decodePutResponse(wire(putResponseToJson({ header }))), { header });

  const del: DeleteRangeResponse = { header, deleted: 2, prevKvs: [kv('a', 'x'), kv('b', 'y')] };
  t.same(decodeDeleteRangeResponse(wire(deleteRangeResponseToJson(del))), del);

  const status: StatusResponse = {
    header,
    version: '3.4.0-keel',
    dbSize: 4096,
    leader: '8e9e05c52164694d',
    raftIndex: 7,
    raftTerm: 3,
    raftAppliedIndex: 7,
    snapshotIndex: 5,
    firstIndex: 3,
    isLearner: true,
    errors: ['a', 'b'],
    name: 'n2',
  };
  t.same(decodeStatusResponse(wire(statusResponseToJson(status))), status);
  const idle: StatusResponse = {
    header: { clusterId: '', memberId: '', revision: 0, raftTerm: 0 },
    version: '',
    dbSize: 0,
    leader: '',
    raftIndex: 0,
    raftTerm: 0,
    raftAppliedIndex: 0,
    snapshotIndex: 0,
    firstIndex: 0,
    isLearner: false,
    errors: [],
    name: '',
  };
  t.same(statusResponseToJson(idle), { header: {} });
  t.same(decodeStatusResponse({}), idle, 'missing fields are defaults');

  t.same(decodeHealthResponse(wire(healthToJson({ health: false, reason: 'x' }))), { health: false, reason: 'x' });
});

t.test('decoders accept what etcd itself sends', async (t) => {
  // From etcd's own documentation of the gateway.
  const r = decodeRangeResponse({
    header: { cluster_id: '12585971608760269493', member_id: '13847567121247652255', revision: '2', raft_term: '3' },
    kvs: [{ key: 'Zm9v', create_revision: '2', mod_revision: '2', version: '1', value: 'YmFy' }],
    count: '1',
  });
  t.equal(r.header.clusterId, 'aeaa5a7ead4ebab5');
  t.equal(r.header.memberId, 'c02c70ede158499f');
  t.equal(r.header.revision, 2);
  t.same(r.kvs.map((x) => [x.key.toString(), x.value.toString(), x.version, x.lease]), [['foo', 'bar', 1, 0]]);
  t.same([r.more, r.count], [false, 1]);
});

t.test('decoders refuse what is not the gateway JSON', async (t) => {
  const bad: unknown[] = [
    [],
    'x',
    { header: 'x' },
    { kvs: {} },
    { kvs: [{ key: 5 }] },
    { kvs: [{ key: 'a!b' }] },
    { count: 'many' },
    { more: 'yes' },
    { header: { revision: '1.5' } },
    { header: { cluster_id: '-1' } },
    { header: { member_id: '18446744073709551616' } },
  ];
  for (const b of bad) t.throws(() => decodeRangeResponse(b), GatewayResponseError, JSON.stringify(b));
  t.throws(() => decodeStatusResponse({ errors: [1] }), GatewayResponseError);
  t.throws(() => decodeHealthResponse({ health: true }), GatewayResponseError);
});

t.test('requests round-trip: client encoding, server parsing', async (t) => {
  const range = { key: Buffer.from('a'), rangeEnd: Buffer.from([0]), limit: 3, keysOnly: true, countOnly: true, serializable: true };
  t.same(parseRangeRequest(wire(rangeRequestToJson(range))), range);
  t.same(rangeRequestToJson({ key: Buffer.from('a') }), { key: 'YQ==' });
  t.same(rangeRequestToJson({ key: Buffer.from('a'), limit: 3 }), { key: 'YQ==', limit: '3' });
  const put = { key: Buffer.from('k'), value: Buffer.from('v'), prevKv: true };
  t.same(parsePutRequest(wire(putRequestToJson(put))), put);
  const del = { key: Buffer.from('k'), rangeEnd: Buffer.from('l'), prevKv: true };
  t.same(parseDeleteRangeRequest(wire(deleteRangeRequestToJson(del))), del);
  t.same(parseDeleteRangeRequest(null), { key: Buffer.alloc(0) }, 'null is the empty request');
  t.same(parseRangeRequest({ key: 'YQ==', limit: null, range_end: '' }), { key: Buffer.from('a') }, 'null and "" are defaults');
  t.same(parseRangeRequest({ key: 'YQ==', limit: '-1' }).limit, -1, 'negative limits are for validate.ts to refuse');
});

t.test('range: revision, sort and the mod/create filters, enums by name or number', async (t) => {
  const full = {
    key: Buffer.from('a'),
    rangeEnd: Buffer.from('b'),
    revision: 7,
    sortOrder: 'DESCEND' as const,
    sortTarget: 'MOD' as const,
    minModRevision: 1,
    maxModRevision: 9,
    minCreateRevision: 2,
    maxCreateRevision: 8,
  };
  const json = rangeRequestToJson(full);
  t.same(json, {
    key: 'YQ==',
    range_end: 'Yg==',
    revision: '7',
    sort_order: 'DESCEND',
    sort_target: 'MOD',
    min_mod_revision: '1',
    max_mod_revision: '9',
    min_create_revision: '2',
    max_create_revision: '8',
  });
  t.same(parseRangeRequest(wire(json)), full);
  t.same(parseRangeRequest({ key: 'YQ==', sort_order: 2, sort_target: 4 }), {
    key: Buffer.from('a'),
    sortOrder: 'DESCEND',
    sortTarget: 'VALUE',
  });
  t.same(
    parseRangeRequest({ key: 'YQ==', sortOrder: 'NONE', sortTarget: 'KEY', minModRevision: '0' }),
    { key: Buffer.from('a') },
    'JSON names; enum defaults are left out like every default',
  );
  t.same(rangeRequestToJson({ key: Buffer.from('a'), sortOrder: 'NONE', sortTarget: 'KEY' }), { key: 'YQ==' });
  t.throws(() => parseRangeRequest({ key: 'YQ==', sort_order: 'DOWN' }), {
    message: 'sort_order: unknown value "DOWN" (expected one of NONE, ASCEND, DESCEND, or 0-2)',
  });
  t.throws(() => parseRangeRequest({ key: 'YQ==', sort_target: 5 }), /^sort_target: unknown value 5/);
  t.throws(() => parseRangeRequest({ key: 'YQ==', sort_target: 'mod' }), /^sort_target: unknown value "mod"/);
});

t.test('put: lease, ignore_value, ignore_lease', async (t) => {
  const put = { key: Buffer.from('k'), value: Buffer.alloc(0), lease: 7587, ignoreValue: true, ignoreLease: true };
  t.same(putRequestToJson(put), { key: 'aw==', lease: '7587', ignore_value: true, ignore_lease: true });
  t.same(parsePutRequest(wire(putRequestToJson(put))), put);
  t.same(parsePutRequest({ key: 'aw==', ignoreValue: true }), { key: Buffer.from('k'), value: Buffer.alloc(0), ignoreValue: true });
});

t.test('compaction', async (t) => {
  t.same(compactionRequestToJson({ revision: 12, physical: true }), { revision: '12', physical: true });
  t.same(parseCompactionRequest({ revision: '12', physical: true }), { revision: 12, physical: true });
  t.same(parseCompactionRequest({}), { revision: 0 }, 'validate.ts refuses revision 0');
  t.equal(JSON.stringify(compactionResponseToJson({ header })), JSON.stringify({ header: headerToJson(header) }));
  t.same(decodeCompactionResponse({ header: { revision: '12' } }).header.revision, 12);
});

t.test('unknown request fields are refused, naming the field (etcd ignores them; issue 3 wants an error)', async (t) => {
  const cases: [() => unknown, string][] = [
    [() => parsePutRequest({ key: 'aw==', prevKV: true }), 'prevKV: unknown field'],
    [() => parseRangeRequest({ key: 'aw==', Limit: 1 }), 'Limit: unknown field'],
    [() => parseDeleteRangeRequest({ key: 'aw==', prev_kvs: true }), 'prev_kvs: unknown field'],
    [() => parseCompactionRequest({ revision: '1', physicall: true }), 'physicall: unknown field'],
    [() => parseRangeRequest({ key: 'aw==', range_end: 'bA==', rangeEnd: 'bA==' }), 'range_end: given twice (as range_end and rangeEnd)'],
  ];
  for (const [fn, message] of cases) {
    const err = t.throws(fn, { message }) as KvError;
    t.equal(err.code, GrpcCode.InvalidArgument, message);
  }
  t.same(parseRangeRequest({ key: 'aw==', keysOnly: null }), { key: Buffer.from('k') }, 'null is the default, not an error');
});

t.test('responses are read leniently: unknown members are ignored', async (t) => {
  const r = decodePutResponse({ header: { revision: '3', future_field: 1 }, something_new: [1, 2] });
  t.equal(r.header.revision, 3);
});

t.test('request parse errors are InvalidArgument KvErrors', async (t) => {
  const err = t.throws(() => parsePutRequest({ key: '%%%' })) as KvError;
  t.ok(err instanceof KvError);
  t.equal(err.code, GrpcCode.InvalidArgument);
  t.equal(err.message, 'key: illegal base64 data');
  t.throws(
    () => parseRangeRequest({ key: 'YQ==', limit: '99999999999999999999' }),
    /^limit: 99999999999999999999 is out of the range Keel supports/,
  );
  t.throws(() => parseRangeRequest({ key: 'YQ=' }), /illegal base64/, 'padding must complete a quantum');
});

t.test('error answers and status mapping', async (t) => {
  const e = errorFromJson(503, { error: 'etcdserver: no leader', code: 14, message: 'etcdserver: no leader' });
  t.same([e.code, e.message], [GrpcCode.Unavailable, 'etcdserver: no leader']);
  const plain = errorFromJson(404, 'Not Found');
  t.same([plain.code, plain.message], [GrpcCode.NotFound, 'HTTP 404']);
  const noCode = errorFromJson(504, { error: 'took too long' });
  t.same([noCode.code, noCode.message], [GrpcCode.DeadlineExceeded, 'took too long']);
  // The error chunk of a streaming route (grpc-gateway v1's StreamError).
  const chunk = errorFromJson(200, {
    error: { grpc_code: 14, http_code: 503, message: 'etcdserver: no leader', http_status: 'Service Unavailable' },
  });
  t.same([chunk.code, chunk.message], [GrpcCode.Unavailable, 'etcdserver: no leader']);
  t.same(streamErrorToJson(GrpcCode.OutOfRange, 'etcdserver: mvcc: required revision has been compacted'), {
    error: {
      grpc_code: 11,
      http_code: 400,
      message: 'etcdserver: mvcc: required revision has been compacted',
      http_status: 'Bad Request',
    },
  });
  const table: [GrpcCode, number][] = [
    [GrpcCode.InvalidArgument, 400],
    [GrpcCode.NotFound, 404],
    [GrpcCode.FailedPrecondition, 400],
    [GrpcCode.OutOfRange, 400],
    [GrpcCode.Unavailable, 503],
    [GrpcCode.DeadlineExceeded, 504],
    [GrpcCode.Unimplemented, 501],
    [GrpcCode.Internal, 500],
    [GrpcCode.Unknown, 500],
  ];
  for (const [code, status] of table) t.equal(httpStatusFromCode(code), status, `code ${code}`);
});
