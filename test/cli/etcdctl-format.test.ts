// The output of the store commands against etcdctl's printers: simple (printer_simple.go) byte for byte,
// and -w json (Go's encoding/json of the client's structs, printer_json.go).

import t from 'tap';
import type { Event, ResponseHeader, TxnResponse } from '../../src/kv/api';
import * as S from '../../src/cli/etcdctl-simple';
import * as J from '../../src/cli/etcdctl-json';

const B = (s: string): Buffer => Buffer.from(s);
const text = (lines: S.Line[]): string => Buffer.concat(lines.map((l) => Buffer.concat([B(''), typeof l === 'string' ? B(l) : l, B('\n')]))).toString();

// The ids of etcd's documentation example ("reading from etcd": cluster_id 289318470931837780,
// member_id 14947050114012957595), both written in full although they exceed 2^53.
const H: ResponseHeader = { clusterId: '0403dd9dced9f354', memberId: 'cf6e96e2c5b44b9b', revision: 3, raftTerm: 4 };
const HJSON = '{"cluster_id":289318470931837780,"member_id":14947050114012957595,"revision":3,"raft_term":4}';
const kv = (k: string, v: string, over = {}) => ({ key: B(k), value: B(v), createRevision: 2, modRevision: 3, version: 2, lease: 0, ...over });

t.test('simple: get, put, del', async (t) => {
  const r = { header: H, kvs: [kv('foo', 'Hello World!'), kv('foo2', '')], more: false, count: 2 };
  t.equal(text(S.getLines(r)), 'foo\nHello World!\nfoo2\n\n', 'key, value; an empty value is an empty line');
  t.equal(text(S.getLines(r, { valueOnly: true })), 'Hello World!\n\n');
  t.equal(text(S.getLines({ header: H, kvs: [], more: false, count: 0 })), '', 'nothing for no key');
  t.equal(text(S.putLines({ header: H })), 'OK\n');
  t.equal(text(S.putLines({ header: H, prevKv: kv('foo', 'bar') })), 'OK\nfoo\nbar\n');
  t.equal(text(S.delLines({ header: H, deleted: 0, prevKvs: [] })), '0\n');
  t.equal(text(S.delLines({ header: H, deleted: 2, prevKvs: [kv('a', '1'), kv('b', '2')] })), '2\na\n1\nb\n2\n');
  const raw = S.getLines({ header: H, kvs: [kv('\xff', '')].map((x) => ({ ...x, key: Buffer.from([0xff, 0x00]) })), more: false, count: 1 });
  t.same(raw[0], Buffer.from([0xff, 0x00]), 'keys are written as raw bytes');
});

t.test('simple: txn', async (t) => {
  const r: TxnResponse = {
    header: H,
    succeeded: true,
    responses: [
      { type: 'put', put: { header: H } },
      { type: 'range', range: { header: H, kvs: [kv('key1', 'value1')], more: false, count: 1 } },
      { type: 'deleteRange', deleteRange: { header: H, deleted: 1, prevKvs: [] } },
      { type: 'range', range: { header: H, kvs: [], more: false, count: 0 } },
    ],
  };
  t.equal(text(S.txnLines(r)), 'SUCCESS\n\nOK\n\nkey1\nvalue1\n\n1\n\n');
  t.equal(text(S.txnLines({ header: H, succeeded: false, responses: [] })), 'FAILURE\n');
});

t.test('simple: watch events', async (t) => {
  const events: Event[] = [
    { type: 'PUT', kv: kv('foo', 'bar') },
    { type: 'DELETE', kv: { key: B('foo'), value: B(''), createRevision: 0, modRevision: 5, version: 0, lease: 0 }, prevKv: kv('foo', 'bar') },
  ];
  t.equal(text(S.watchEventLines(events)), 'PUT\nfoo\nbar\nDELETE\nfoo\nbar\nfoo\n\n', 'type, [prev key, prev value,] key, value');
  t.equal(S.progressLine(42), 'progress notify: 42');
  t.equal(S.watchCanceledLine('etcdserver: mvcc: required revision has been compacted'), 'watch was canceled (etcdserver: mvcc: required revision has been compacted)');
});

t.test('simple: leases and compaction', async (t) => {
  const id = 0x1234abcd5678;
  t.equal(S.leaseHex(id), '00001234abcd5678', '%016x');
  t.equal(S.leaseGrantLine({ header: H, id, ttl: 10 }), 'lease 00001234abcd5678 granted with TTL(10s)');
  t.equal(S.leaseRevokeLine(id), 'lease 00001234abcd5678 revoked');
  t.equal(S.leaseKeepAliveLine({ header: H, id, ttl: 10 }), 'lease 00001234abcd5678 keepalived with TTL(10)');
  t.equal(S.leaseExpiredOrRevokedLine(id), 'lease 00001234abcd5678 expired or revoked.');
  const ttl = { header: H, id, ttl: 7, grantedTtl: 10, keys: [B('k1'), B('k2')] };
  t.equal(S.leaseTimeToLiveLine(ttl, false).toString(), 'lease 00001234abcd5678 granted with TTL(10s), remaining(7s)');
  t.equal(
    S.leaseTimeToLiveLine(ttl, true).toString(),
    'lease 00001234abcd5678 granted with TTL(10s), remaining(7s), attached keys([k1 k2])',
  );
  t.equal(S.leaseTimeToLiveLine({ ...ttl, keys: [] }, true).toString(), 'lease 00001234abcd5678 granted with TTL(10s), remaining(7s), attached keys([])');
  t.equal(S.leaseTimeToLiveLine({ header: H, id, ttl: -1, grantedTtl: 0, keys: [] }, true).toString(), 'lease 00001234abcd5678 already expired');
  t.same(S.leaseListLines({ header: H, leases: [{ id }, { id: 1 }] }), ['found 2 leases', '00001234abcd5678', '0000000000000001']);
  t.same(S.leaseListLines({ header: H, leases: [] }), ['found 0 leases']);
  t.equal(S.compactionLine(12), 'compacted revision 12');
});

t.test('json: Go encoding of the protobuf structs', async (t) => {
  const j = (v: J.GoJson): string => J.goJson(v);
  t.equal(
    j(J.rangeJson({ header: H, kvs: [kv('foo', 'Hello World!')], more: false, count: 1 })),
    `{"header":${HJSON},"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2,"value":"SGVsbG8gV29ybGQh"}],"count":1}`,
  );
  t.equal(
    j(J.rangeJson({ header: { ...H, clusterId: '0000000000000000', raftTerm: 0 }, kvs: [], more: true, count: 0 })),
    '{"header":{"member_id":14947050114012957595,"revision":3},"more":true}',
    'zero, false and empty fields are left out (omitempty)',
  );
  t.equal(j(J.kvJson(kv('k', '', { lease: 0x1234abcd5678 }))), '{"key":"aw==","create_revision":2,"mod_revision":3,"version":2,"lease":20017429960312}');
  t.equal(j(J.putJson({ header: H })), `{"header":${HJSON}}`);
  t.equal(j(J.putJson({ header: H, prevKv: kv('a', 'b') })), `{"header":${HJSON},"prev_kv":{"key":"YQ==","create_revision":2,"mod_revision":3,"version":2,"value":"Yg=="}}`);
  t.equal(j(J.deleteJson({ header: H, deleted: 1, prevKvs: [] })), `{"header":${HJSON},"deleted":1}`);
  t.equal(
    j(
      J.txnJson({
        header: H,
        succeeded: true,
        responses: [
          { type: 'put', put: { header: { clusterId: '', memberId: '', revision: 3, raftTerm: 0 } } },
          { type: 'range', range: { header: H, kvs: [], more: false, count: 0 } },
          { type: 'deleteRange', deleteRange: { header: H, deleted: 0, prevKvs: [] } },
        ],
      }),
    ),
    `{"header":${HJSON},"succeeded":true,"responses":[{"Response":{"response_put":{"header":{"revision":3}}}},` +
      `{"Response":{"response_range":{"header":${HJSON}}}},{"Response":{"response_delete_range":{"header":${HJSON}}}}]}`,
    'a txn response: the oneof under "Response"',
  );
  t.equal(j(J.txnJson({ header: H, succeeded: false, responses: [] })), `{"header":${HJSON}}`, 'a failed txn: succeeded left out');
});

t.test('json: watch responses as the Go client\'s WatchResponse', async (t) => {
  const del: Event = { type: 'DELETE', kv: { key: B('foo'), value: B(''), createRevision: 0, modRevision: 5, version: 0, lease: 0 } };
  t.equal(
    J.goJson(J.watchJson({ revision: 5, events: [{ type: 'PUT', kv: kv('foo', 'bar') }, del] })),
    '{"Header":{"revision":5},"Events":[{"kv":{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2,"value":"YmFy"}},' +
      '{"type":1,"kv":{"key":"Zm9v","mod_revision":5}}],"CompactRevision":0,"Canceled":false,"Created":false}',
    'PUT (0) has no "type"; DELETE is 1',
  );
  t.equal(
    J.goJson(J.watchJson({ revision: 0, events: [], canceled: true, compactRevision: 4 })),
    '{"Header":{},"Events":null,"CompactRevision":4,"Canceled":true,"Created":false}',
  );
});

t.test('json: leases as the Go client\'s structs (header fields at the top level)', async (t) => {
  const id = 0x1234abcd5678;
  const top = HJSON.slice(1, -1);
  t.equal(J.goJson(J.leaseGrantJson({ header: H, id, ttl: 10 })), `{${top},"ID":20017429960312,"TTL":10,"Error":""}`);
  t.equal(J.goJson(J.leaseKeepAliveJson({ header: H, id, ttl: 10 })), `{${top},"ID":20017429960312,"TTL":10}`);
  t.equal(J.goJson(J.leaseRevokeJson({ header: H })), `{"header":${HJSON}}`);
  t.equal(
    J.goJson(J.leaseTimeToLiveJson({ header: H, id, ttl: 7, grantedTtl: 10, keys: [B('k1')] })),
    `{${top},"id":20017429960312,"ttl":7,"granted-ttl":10,"keys":["azE="]}`,
  );
  t.equal(
    J.goJson(J.leaseTimeToLiveJson({ header: H, id, ttl: -1, grantedTtl: 0, keys: [] })),
    `{${top},"id":20017429960312,"ttl":-1,"granted-ttl":0,"keys":null}`,
  );
  t.equal(J.goJson(J.leaseLeasesJson({ header: H, leases: [{ id }] })), `{${top},"leases":[{"id":20017429960312}]}`);
  t.equal(J.goJson(J.leaseLeasesJson({ header: H, leases: [] })), `{${top},"leases":[]}`);
  t.equal(J.goJson(J.compactionJson({ header: H })), `{"header":${HJSON}}`);
});

t.test('goJson writes what JSON.parse reads back (apart from the big ids)', async (t) => {
  const v: J.GoJson = { a: 'x"y\n', b: [1, -2, true, null], c: undefined, d: { e: 12345678901234567890n } };
  const s = J.goJson(v);
  t.equal(s, '{"a":"x\\"y\\n","b":[1,-2,true,null],"d":{"e":12345678901234567890}}');
  t.same(JSON.parse(s.replace('12345678901234567890', '0')), { a: 'x"y\n', b: [1, -2, true, null], d: { e: 0 } });
  t.throws(() => J.goJson(NaN), /cannot write NaN/);
});
