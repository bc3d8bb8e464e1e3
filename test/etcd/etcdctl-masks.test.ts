// The differential test's own machinery, without any cluster: masks, table and JSON normalization, and the
// line diff with its allowlist (so that the differential test can fail, and fails only where it should).

import t from 'tap';
import {
  diffLines,
  Masker,
  normalizeEndpointStatusLines,
  normalizeTables,
  resultLines,
  sortJsonArray,
  splitJsonLine,
} from './fixtures/etcdctl';

t.test('ids, URLs and leases become role placeholders in every form', async (t) => {
  const m = new Masker();
  m.url('http://127.0.0.1:32379', 'client-1');
  m.id(BigInt('14590032085621120027'), 'id-n1');
  m.id(BigInt('4691270838897183303'), 'cluster-id');
  m.learnLeases('lease 1c1ba20157aab416 granted with TTL(60s)\n');
  m.lease('00000000001bbd84'); // zero-padded hex is the same id as its bare form
  t.equal(m.mask('ca7a34e16cff9c1b, started, n1, http://127.0.0.1:32380, http://127.0.0.1:32379, false'),
    '<id-n1>, started, n1, http://127.0.0.1:32380, http://<client-1>, false');
  t.equal(m.mask('{"cluster_id":4691270838897183303,"member_id":14590032085621120027,"raft_term":7}'),
    '{"cluster_id":<cluster-id>,"member_id":<id-n1>,"raft_term":<term>}');
  t.equal(m.mask('Member ca7a34e16cff9c1b added to cluster 411abdf8f99d8a47'), 'Member <id-n1> added to cluster <cluster-id>');
  m.id('e20af66fcc976b7', 'id-new');
  t.equal(m.mask('Member  e20af66fcc976b7 removed from cluster 411abdf8f99d8a47'), 'Member <id-new> removed from cluster <cluster-id>', 'etcdctl\'s %16x padding');
  t.equal(m.mask('lease 1c1ba20157aab416 revoked; lease 1bbd84 too'), 'lease <lease-1> revoked; lease <lease-2> too');
  t.equal(m.mask('"ID":2025390584082641942'), '"ID":<lease-1>');
  t.equal(m.mask('lease 000000001234abcd already expired'), 'lease 000000001234abcd already expired', 'an unknown id stays');
  t.equal(m.mask('"target":"endpoint://client-6529d741-7887-47f5-8426-b8918ba65d6b/127.0.0.1:32379"'),
    '"target":"endpoint://client-<uuid>/<client-1>"');
  t.equal(m.mask('"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2}]'),
    '"kvs":[{"key":"Zm9v","create_revision":2,"mod_revision":3,"version":2}]', 'revisions and key versions are compared');
  t.equal(m.mask('"version":"3.4.23","dbSize":20480,"ts":1795318915.33,"took":"1.2ms","ttl":59,"hash":1234'),
    '"version":<version>,"dbSize":<db-size>,"ts":<time>,"took":<took>,"ttl":<remaining>,"hash":<hash>');
  t.equal(m.mask('granted with TTL(60s), remaining(59s)'), 'granted with TTL(60s), remaining(<remaining>s)');
  t.equal(m.mask('granted with TTL(60s), remaining(-1s)'), 'granted with TTL(60s), remaining(-1s)', 'an implausible TTL shows');
  t.equal(m.mask('"ttl":0,'), '"ttl":0,');
});

t.test('tables: widths dropped, run-dependent columns masked, rows sorted on request', async (t) => {
  const table = [
    '+------------------+---------+---------+',
    '|     ENDPOINT     | VERSION | DB SIZE |',
    '+------------------+---------+---------+',
    '| http://b         |  3.4.23 |   20 kB |',
    '| http://a         |  3.4.23 |  115 kB |',
    '+------------------+---------+---------+',
  ].join('\n');
  t.equal(normalizeTables(table), ['+-+', '| ENDPOINT | VERSION | DB SIZE |', '+-+', '| http://b | <version> | <db-size> |', '| http://a | <version> | <db-size> |', '+-+'].join('\n'));
  t.match(normalizeTables(table, true), /http:\/\/a.*\n.*http:\/\/b/);
  t.equal(normalizeEndpointStatusLines('http://a, 1f, 3.4.23, 20 kB, true, false, 2, 33, 33, '), 'http://a, 1f, <version>, <db-size>, true, false, <term>, <index>, <index>, ');
});

t.test('JSON: arrays sorted by a field, lines split per field', async (t) => {
  const text = '{"header":{"x":1},"members":[{"ID":<id-n2>,"name":"n2"},{"ID":<id-n1>,"name":"n1","u":["a,b"]}]}\n';
  const sorted = sortJsonArray(text, (o) => o.match(/"name":"([^"]*)"/)?.[1] ?? '', 'members');
  t.equal(sorted, '{"header":{"x":1},"members":[{"ID":<id-n1>,"name":"n1","u":["a,b"]},{"ID":<id-n2>,"name":"n2"}]}\n');
  t.same(splitJsonLine('{"a":{"b":1,"c":"x,}"},"d":[],"e":[2]}'), ['{', '  "a":{', '    "b":1,', '    "c":"x,}"', '  },', '  "d":[],', '  "e":[', '    2', '  ]', '}']);
  t.same(splitJsonLine('OK'), ['OK']);
});

t.test('the diff aligns lines, and only the allowlist excuses a difference', async (t) => {
  const etcd = resultLines({ code: 0, stdout: 'a\nb\nc\n', stderr: '', timedOut: false });
  const keel = resultLines({ code: 0, stdout: 'a\nB\nc\nd\n', stderr: 'warn\n', timedOut: false });
  const diffs = diffLines('step', etcd, keel, []);
  t.same(diffs.map((d) => [d.etcd, d.keel]), [['out| b', 'out| B'], [undefined, 'out| d'], [undefined, 'err| warn']]);
  t.ok(diffs.every((d) => d.allowedBy === undefined));
  const allow = [
    { step: 'step', etcd: /^out\| b$/, keel: /^out\| B$/, reason: 'case' },
    { step: /^other/, keel: /^out\| d$/, reason: 'another step only' },
    { step: 'step', keel: /^err\| warn$/, reason: 'an extra line' },
  ];
  const again = diffLines('step', etcd, keel, allow);
  t.same(again.map((d) => d.allowedBy?.reason), ['case', undefined, 'an extra line']);
  t.same(diffLines('step', etcd, etcd, []), [], 'the same output: no difference');
  t.same(resultLines({ code: null, stdout: '', stderr: '', timedOut: true }), ['exit: timed out']);
});
