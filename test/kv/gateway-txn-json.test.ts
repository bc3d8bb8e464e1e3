// Txn in the gateway's JSON: etcd's own documented requests and answers, every compare target, nesting,
// and the errors of a malformed txn.

import t from 'tap';
import { GrpcCode, KvError, MAX_TXN_OPS, type Compare, type TxnRequest, type TxnResponse } from '../../src/kv/api';
import {
  decodeTxnResponse,
  parseTxnRequest,
  txnRequestToJson,
  txnResponseToJson,
} from '../../src/kv/gateway-json';

const wire = (o: unknown): unknown => JSON.parse(JSON.stringify(o));
const b = (s: string): Buffer => Buffer.from(s);

t.test("etcd's documented txn requests parse, and its answers are what Keel writes, byte for byte", async (t) => {
  // From etcd's Documentation/dev-guide/api_grpc_gateway.md (v3.4): note the JSON names (createRevision,
  // requestPut) and the left-out defaults (result EQUAL).
  const req1 = parseTxnRequest(
    JSON.parse(
      '{"compare":[{"target":"CREATE","key":"Zm9v","createRevision":"2"}],"success":[{"requestPut":{"key":"Zm9v","value":"YmFy"}}]}',
    ),
  );
  t.same(req1, {
    compare: [{ key: b('foo'), result: 'EQUAL', target: 'CREATE', createRevision: 2 }],
    success: [{ type: 'put', put: { key: b('foo'), value: b('bar') } }],
    failure: [],
  });
  const resp1 =
    '{"header":{"cluster_id":"12585971608760269493","member_id":"13847567121247652255","revision":"3","raft_term":"2"},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"3"}}}]}';
  const decoded1 = decodeTxnResponse(JSON.parse(resp1));
  t.equal(decoded1.succeeded, true);
  t.same(decoded1.responses[0], {
    type: 'put',
    put: { header: { clusterId: '', memberId: '', revision: 3, raftTerm: 0 } },
  });
  t.equal(JSON.stringify(txnResponseToJson(decoded1)), resp1);

  const req2 = parseTxnRequest(
    JSON.parse('{"compare":[{"version":"4","result":"EQUAL","target":"VERSION","key":"Zm9v"}],"success":[{"requestRange":{"key":"Zm9v"}}]}'),
  );
  t.same(req2, {
    compare: [{ key: b('foo'), result: 'EQUAL', target: 'VERSION', version: 4 }],
    success: [{ type: 'range', range: { key: b('foo') } }],
    failure: [],
  });
  const resp2 =
    '{"header":{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"6","raft_term":"3"},"succeeded":true,"responses":[{"response_range":{"header":{"revision":"6"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"6","version":"4","value":"YmF6"}],"count":"1"}}]}';
  const decoded2 = decodeTxnResponse(JSON.parse(resp2));
  t.equal(decoded2.header.memberId, '8e9e05c52164694d');
  const op = decoded2.responses[0];
  t.equal(op.type, 'range');
  if (op.type === 'range') t.equal(op.range.kvs[0].value.toString(), 'baz');
  t.equal(JSON.stringify(txnResponseToJson(decoded2)), resp2);
});

t.test('every compare target and result round-trips; the target_union member is written even at 0', async (t) => {
  const compares: Compare[] = [
    { key: b('a'), result: 'EQUAL', target: 'VERSION', version: 0 },
    { key: b('b'), result: 'GREATER', target: 'CREATE', createRevision: 5 },
    { key: b('c'), rangeEnd: b('d'), result: 'LESS', target: 'MOD', modRevision: 9 },
    { key: b('e'), result: 'NOT_EQUAL', target: 'VALUE', value: Buffer.alloc(0) },
    { key: b('f'), result: 'EQUAL', target: 'LEASE', lease: 7587 },
  ];
  const req: TxnRequest = { compare: compares, success: [], failure: [] };
  const json = txnRequestToJson(req);
  t.same(json.compare, [
    { key: 'YQ==', version: '0' },
    { result: 'GREATER', target: 'CREATE', key: 'Yg==', create_revision: '5' },
    { result: 'LESS', target: 'MOD', key: 'Yw==', range_end: 'ZA==', mod_revision: '9' },
    { result: 'NOT_EQUAL', target: 'VALUE', key: 'ZQ==', value: '' },
    { target: 'LEASE', key: 'Zg==', lease: '7587' },
  ]);
  // A txn with no operations is a read that etcd serves like a serializable one.
  t.same(parseTxnRequest(wire(json)), { ...req, serializable: true });
  t.same(
    parseTxnRequest({ compare: [{ key: 'YQ==', target: 3, result: 1 }] }).compare[0],
    { key: b('a'), result: 'GREATER', target: 'VALUE', value: Buffer.alloc(0) },
    'enums by number; an absent operand is its zero value',
  );
});

t.test('nested txns and every operation, both ways', async (t) => {
  const req: TxnRequest = {
    compare: [{ key: b('k'), result: 'EQUAL', target: 'MOD', modRevision: 3 }],
    success: [
      { type: 'put', put: { key: b('k'), value: b('v'), prevKv: true, lease: 12 } },
      { type: 'deleteRange', deleteRange: { key: b('x'), rangeEnd: b('y'), prevKv: true } },
      {
        type: 'txn',
        txn: {
          compare: [],
          success: [{ type: 'range', range: { key: b('k'), limit: 1, serializable: true } }],
          failure: [{ type: 'put', put: { key: b('z'), value: b('1') } }],
        },
      },
    ],
    failure: [{ type: 'range', range: { key: b('k'), sortOrder: 'DESCEND', sortTarget: 'VERSION' } }],
  };
  const json = txnRequestToJson(req);
  t.same(json.success?.[2], {
    request_txn: {
      success: [{ request_range: { key: 'aw==', limit: '1', serializable: true } }],
      failure: [{ request_put: { key: 'eg==', value: 'MQ==' } }],
    },
  });
  t.same(parseTxnRequest(wire(json)), req, 'a txn that writes is never served as serializable');

  const h = (revision: number) => ({ clusterId: '', memberId: '', revision, raftTerm: 0 });
  const resp: TxnResponse = {
    header: { clusterId: '00000000000000aa', memberId: '00000000000000bb', revision: 8, raftTerm: 2 },
    succeeded: true,
    responses: [
      { type: 'put', put: { header: h(8), prevKv: { key: b('k'), value: b('old'), createRevision: 2, modRevision: 3, version: 1, lease: 0 } } },
      { type: 'deleteRange', deleteRange: { header: h(8), deleted: 0, prevKvs: [] } },
      {
        type: 'txn',
        txn: {
          header: h(8),
          succeeded: false,
          responses: [{ type: 'range', range: { header: h(8), kvs: [], more: false, count: 0 } }],
        },
      },
    ],
  };
  const out = wire(txnResponseToJson(resp));
  t.same((out as { responses: unknown[] }).responses[2], {
    response_txn: { header: { revision: '8' }, responses: [{ response_range: { header: { revision: '8' } } }] },
  });
  t.same(decodeTxnResponse(out), resp);
});

t.test('serializable is derived as etcd does: every operation a serializable range', async (t) => {
  const r = (serializable: boolean) => ({ request_range: { key: 'YQ==', serializable } });
  t.equal(parseTxnRequest({ success: [r(true)], failure: [r(true)] }).serializable, true);
  t.equal(parseTxnRequest({ success: [r(true)], failure: [r(false)] }).serializable, undefined);
  t.equal(
    parseTxnRequest({ success: [{ request_txn: { success: [r(true)] } }] }).serializable,
    undefined,
    'a nested txn is not (etcd looks at the top-level operations only)',
  );
});

t.test('malformed txns are refused with the path of the problem', async (t) => {
  const cases: [unknown, string][] = [
    [{ compare: [{ key: 'YQ==', version: '1', mod_revision: '2' }] }, 'compare[0]: target_union holds one field, got version and mod_revision'],
    [{ compare: [{ key: 'YQ==', target: 'MOD', version: '1' }] }, 'compare[0]: target MOD compares mod_revision, but version was given'],
    [{ compare: [{ key: 'YQ==', target: 'SIZE' }] }, 'compare[0].target: unknown value "SIZE" (expected one of VERSION, CREATE, MOD, VALUE, LEASE, or 0-4)'],
    [{ compare: [{ key: 'YQ==', result: 'LESS_EQUAL' }] }, 'compare[0].result: unknown value "LESS_EQUAL" (expected one of EQUAL, GREATER, LESS, NOT_EQUAL, or 0-3)'],
    [{ success: [{}] }, 'success[0]: empty operation (expected one of request_range, request_put, request_delete_range, request_txn)'],
    [
      { failure: [{ request_put: { key: 'YQ==' }, request_range: { key: 'YQ==' } }] },
      'failure[0]: one operation per entry, got request_range and request_put',
    ],
    [{ success: [{ request_txn: { success: [{ request_put: { key: 'YQ==', lease_id: '1' } }] } }] }, 'success[0].request_txn.success[0].request_put.lease_id: unknown field'],
    [{ success: [{ request_put: { key: 'YQ==', value: 'x!' } }] }, 'success[0].request_put.value: illegal base64 data'],
    [{ compares: [] }, 'compares: unknown field'],
    [{ success: {} }, 'success: expected a list'],
    [{ success: ['put'] }, 'success[0]: expected a JSON object'],
  ];
  for (const [body, message] of cases) {
    const err = t.throws(() => parseTxnRequest(body), { message }) as KvError;
    t.equal(err.code, GrpcCode.InvalidArgument);
  }
});

t.test('a txn nested deeper than the op limit allows is refused without recursing through it', async (t) => {
  let body: unknown = { success: [{ request_range: { key: 'YQ==' } }] };
  for (let i = 0; i < MAX_TXN_OPS + 5; i++) body = { success: [{ request_txn: body }] };
  t.throws(() => parseTxnRequest(body), { message: 'etcdserver: too many operations in txn request' });
});
