// MemberMetrics on its own: every etcd metric the issue lists is there with etcd's type, labels, help text
// and buckets, in text that a strict Prometheus parser accepts; gauges follow their sources at each scrape
// (and survive a source that fails); leader changes are counted as etcd counts them; two members in one
// process keep their own values; GET /metrics answers Prometheus text through the gateway. The request
// counters through real listeners: metrics-requests.test.ts; the WAL, store and transport hooks:
// metrics-storage.test.ts.

import t from 'tap';
import { GrpcCode } from '../../src/kv/api';
import { NONE } from '../../src/raft/core/types';
import type { PeerStats } from '../../src/raft/transport';
import { MemberMetrics, type MemberMetricSources } from '../../src/server/metrics';
import { etcdIdLabel } from '../../src/server/metrics/labels';
import { RPCS, grpcCodeName } from '../../src/server/metrics/rpc-names';
import { startGateway } from './fixtures/gateway-recorder';
import { parsePrometheusText, sampleValue, type Family, type MetricType } from './fixtures/prom-text';

const SELF = '00000000000000a1';
const PEER = '0b00000000000002';

function peerStats(over: Partial<PeerStats>): PeerStats {
  return {
    url: 'http://127.0.0.1:1',
    connected: false,
    inboundConnected: false,
    queuedMessages: 0,
    queuedBytes: 0,
    socketBufferedBytes: 0,
    dropped: 0,
    drops: { queueFull: 0, disconnected: 0, backpressure: 0, tooLarge: 0, encodeError: 0 },
    sentMessages: 0,
    sentFrames: 0,
    sentBytes: 0,
    receivedMessages: 0,
    receivedFrames: 0,
    receivedBytes: 0,
    dials: 0,
    ...over,
  };
}

async function scrape(m: MemberMetrics): Promise<Map<string, Family>> {
  return parsePrometheusText(await m.text());
}

/** The label names of a family's samples (le left out of histogram buckets), each set once, sorted. */
function labelSets(f: Family): string[] {
  const sets = new Set<string>();
  for (const s of f.samples) sets.add(Object.keys(s.labels).filter((k) => k !== 'le').sort().join(','));
  return [...sets].sort();
}

/** Bucket bounds of a histogram family's first series, as printed. */
function bucketBounds(f: Family): string[] {
  const first = f.samples.find((s) => s.name.endsWith('_bucket'));
  const rest = (l: Record<string, string>) => JSON.stringify(Object.entries(l).filter(([k]) => k !== 'le'));
  return f.samples
    .filter((s) => s.name.endsWith('_bucket') && first !== undefined && rest(s.labels) === rest(first.labels))
    .map((s) => s.labels.le);
}

const etcdBuckets = (start: number, count: number): string[] => {
  const out: string[] = [];
  for (let i = 0, b = start; i < count; i++, b *= 2) out.push(String(b));
  return [...out, '+Inf'];
};

/** Name, type and label names of every metric the issue (and etcd's dashboards) need. */
const EXPECTED: [string, MetricType, string][] = [
  ['etcd_server_has_leader', 'gauge', ''],
  ['etcd_server_is_leader', 'gauge', ''],
  ['etcd_server_is_learner', 'gauge', ''],
  ['etcd_server_quota_backend_bytes', 'gauge', ''],
  ['etcd_server_leader_changes_seen_total', 'counter', ''],
  ['etcd_server_proposals_committed_total', 'gauge', ''],
  ['etcd_server_proposals_applied_total', 'gauge', ''],
  ['etcd_server_proposals_pending', 'gauge', ''],
  ['etcd_server_proposals_failed_total', 'counter', ''],
  ['etcd_server_learner_promote_successes', 'counter', ''],
  ['etcd_server_learner_promote_failures', 'counter', 'Reason'],
  ['etcd_server_id', 'gauge', 'server_id'],
  ['etcd_server_version', 'gauge', 'server_version'],
  ['etcd_disk_wal_fsync_duration_seconds', 'histogram', ''],
  ['etcd_disk_backend_commit_duration_seconds', 'histogram', ''],
  ['etcd_debugging_snap_save_total_duration_seconds', 'histogram', ''],
  ['etcd_snap_db_save_total_duration_seconds', 'histogram', ''],
  ['etcd_mvcc_db_total_size_in_bytes', 'gauge', ''],
  ['etcd_debugging_mvcc_current_revision', 'gauge', ''],
  ['etcd_debugging_mvcc_compact_revision', 'gauge', ''],
  ['etcd_network_peer_round_trip_time_seconds', 'histogram', 'To'],
  ['etcd_network_peer_sent_bytes_total', 'counter', 'To'],
  ['etcd_network_peer_received_bytes_total', 'counter', 'From'],
  ['etcd_network_peer_sent_failures_total', 'counter', 'To'],
  ['etcd_network_active_peers', 'gauge', 'Local,Remote'],
  ['grpc_server_started_total', 'counter', 'grpc_method,grpc_service,grpc_type'],
  ['grpc_server_handled_total', 'counter', 'grpc_code,grpc_method,grpc_service,grpc_type'],
  ['grpc_server_handling_seconds', 'histogram', 'grpc_method,grpc_service,grpc_type'],
  // Node's process metrics (prom-client's defaults).
  ['process_cpu_user_seconds_total', 'counter', ''],
  ['process_resident_memory_bytes', 'gauge', ''],
  ['process_start_time_seconds', 'gauge', ''],
  ['nodejs_eventloop_lag_seconds', 'gauge', ''],
  ['nodejs_heap_size_used_bytes', 'gauge', ''],
];

t.test('the test parser refuses what Prometheus refuses', async (t) => {
  const good = '# HELP a_total A thing.\n# TYPE a_total counter\na_total{x="1"} 3\na_total{x="q\\"\\\\"} 4\n';
  const f = parsePrometheusText(good);
  t.equal(f.get('a_total')?.type, 'counter');
  t.equal(sampleValue(f, 'a_total', { x: 'q"\\' }), 4, 'escapes decoded');
  const hist = (lines: string[]) => `# TYPE h histogram\n${lines.join('\n')}\n`;
  const okHist = ['h_bucket{le="1"} 1', 'h_bucket{le="+Inf"} 2', 'h_sum 3', 'h_count 2'];
  t.ok(parsePrometheusText(hist(okHist)).get('h'));
  const bad: [string, string][] = [
    ['no final newline', 'a 1'],
    ['bad metric name', '1a 1\n'],
    ['bad value', 'a x\n'],
    ['unquoted label value', 'a{x=1} 1\n'],
    ['bad label escape', 'a{x="\\t"} 1\n'],
    ['label given twice', 'a{x="1",x="2"} 1\n'],
    ['duplicate series', 'a{x="1"} 1\na{x="1"} 2\n'],
    ['TYPE after samples', 'a 1\n# TYPE a counter\n'],
    ['TYPE twice', '# TYPE a counter\n# TYPE a counter\n'],
    ['unknown type', '# TYPE a meter\n'],
    ['family split', '# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x="1"} 2\n'],
    ['buckets not cumulative', hist(['h_bucket{le="1"} 2', 'h_bucket{le="+Inf"} 1', 'h_sum 3', 'h_count 1'])],
    ['no +Inf bucket', hist(['h_bucket{le="1"} 1', 'h_sum 3', 'h_count 1'])],
    ['+Inf unlike _count', hist(['h_bucket{le="+Inf"} 2', 'h_sum 3', 'h_count 3'])],
    ['no _sum', hist(['h_bucket{le="+Inf"} 2', 'h_count 2'])],
  ];
  for (const [what, text] of bad) t.throws(() => parsePrometheusText(text), what);
});

t.test('every metric is there, with etcd type, labels, help and buckets', async (t) => {
  const m = new MemberMetrics({
    memberId: SELF,
    sources: {
      leader: () => PEER,
      isLeader: () => false,
      peers: () => new Map([[PEER, peerStats({ connected: true, sentBytes: 10, receivedBytes: 20, dropped: 1 })]]),
    },
  });
  // Give the labelled metrics a series each, so that their label names can be checked.
  m.onLearnerPromoteFailed('etcdserver: can only promote a learner member which is in sync with leader');
  m.observePeerRoundTrip(PEER, 0.0004);
  m.rpc.begin(RPCS.put)(GrpcCode.OK);
  const text = await m.text();
  const families = parsePrometheusText(text);
  for (const [name, type, labels] of EXPECTED) {
    const f = families.get(name);
    if (f === undefined) {
      t.fail(`${name} is missing`);
      continue;
    }
    t.equal(f.type, type, `${name} is a ${type}`);
    t.ok(f.help !== undefined && f.help.length > 0, `${name} has a HELP line`);
    t.ok(f.samples.length > 0, `${name} has samples`);
    t.same(labelSets(f), [labels], `${name} labels: ${labels || '(none)'}`);
  }
  // etcd's help texts, verbatim, for the ones dashboards show.
  t.equal(families.get('etcd_server_has_leader')?.help, 'Whether or not a leader exists. 1 is existence, 0 is not.');
  t.equal(
    families.get('etcd_disk_wal_fsync_duration_seconds')?.help,
    'The latency distributions of fsync called by WAL.',
  );
  t.equal(
    families.get('etcd_mvcc_db_total_size_in_bytes')?.help,
    'Total size of the underlying database physically allocated in bytes.',
  );
  // etcd's buckets.
  const bounds = (name: string) => bucketBounds(families.get(name) as Family);
  t.same(bounds('etcd_disk_wal_fsync_duration_seconds'), etcdBuckets(0.001, 14));
  t.same(bounds('etcd_disk_backend_commit_duration_seconds'), etcdBuckets(0.001, 14));
  t.same(bounds('etcd_debugging_snap_save_total_duration_seconds'), etcdBuckets(0.001, 14));
  t.same(bounds('etcd_snap_db_save_total_duration_seconds'), etcdBuckets(0.1, 10));
  t.same(bounds('etcd_network_peer_round_trip_time_seconds'), etcdBuckets(0.0001, 16));
  t.equal(bounds('etcd_network_peer_round_trip_time_seconds').at(-2), '3.2768', 'highest rtt bucket as etcd prints it');
  t.same(
    bounds('grpc_server_handling_seconds'),
    ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf'],
  );
  // Ids as etcd prints them (hex without leading zeros).
  t.equal(sampleValue(families, 'etcd_server_id', { server_id: 'a1' }), 1);
  t.equal(sampleValue(families, 'etcd_network_peer_sent_bytes_total', { To: 'b00000000000002' }), 10);
  t.equal(sampleValue(families, 'etcd_network_active_peers', { Local: 'a1', Remote: 'b00000000000002' }), 1);
  t.equal(m.contentType, 'text/plain; version=0.0.4; charset=utf-8');
});

t.test('gauges follow their sources at each scrape; a failing source leaves its value', async (t) => {
  const state = { lead: NONE as string, leader: false, commit: 0, applied: 0, pending: 0, rev: 1, compact: 0, db: 0 };
  let failing = false;
  const sources: MemberMetricSources = {
    leader: () => state.lead,
    isLeader: () => state.leader,
    isLearner: () => false,
    committedIndex: () => state.commit,
    appliedIndex: () => state.applied,
    pendingProposals: () => state.pending,
    revision: () => state.rev,
    compactRevision: () => state.compact,
    quotaBackendBytes: () => 2 ** 31,
    dbSize: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      if (failing) throw new Error('store closed');
      return state.db;
    },
  };
  const m = new MemberMetrics({ memberId: SELF, sources });
  const v = async (name: string) => sampleValue(await scrape(m), name);
  t.equal(await v('etcd_server_has_leader'), 0, 'no leader');
  Object.assign(state, { lead: SELF, leader: true, commit: 12, applied: 11, pending: 3, rev: 40, compact: 20 });
  state.db = 4096;
  const f = await scrape(m);
  const expect: [string, number][] = [
    ['etcd_server_has_leader', 1],
    ['etcd_server_is_leader', 1],
    ['etcd_server_is_learner', 0],
    ['etcd_server_proposals_committed_total', 12],
    ['etcd_server_proposals_applied_total', 11],
    ['etcd_server_proposals_pending', 3],
    ['etcd_debugging_mvcc_current_revision', 40],
    ['etcd_debugging_mvcc_compact_revision', 20],
    ['etcd_mvcc_db_total_size_in_bytes', 4096],
    ['etcd_server_quota_backend_bytes', 2 ** 31],
  ];
  for (const [name, value] of expect) t.equal(sampleValue(f, name), value, name);
  failing = true;
  state.applied = 15;
  const after = await scrape(m);
  t.equal(sampleValue(after, 'etcd_mvcc_db_total_size_in_bytes'), 4096, 'a failing source keeps the last value');
  t.equal(sampleValue(after, 'etcd_server_proposals_applied_total'), 15, 'and does not stop the others');
});

t.test('a member without sources yet (starting) still answers every metric', async (t) => {
  const f = await scrape(new MemberMetrics({ memberId: SELF }));
  for (const [name] of EXPECTED) t.ok(f.has(name), name);
  t.equal(sampleValue(f, 'etcd_server_has_leader'), 0);
  t.equal(sampleValue(f, 'etcd_mvcc_db_total_size_in_bytes'), 0);
});

t.test('leader changes are counted as etcd counts them', async (t) => {
  const m = new MemberMetrics({ memberId: SELF });
  // A leader appears, is reported twice, is lost, comes back, another takes over: three leaders seen.
  for (const lead of [PEER, PEER, NONE, PEER, SELF, NONE, NONE]) m.onLeaderChange(lead);
  m.onProposalFailed();
  m.onProposalFailed();
  m.onLearnerPromoted();
  const f = await scrape(m);
  t.equal(sampleValue(f, 'etcd_server_leader_changes_seen_total'), 3);
  t.equal(sampleValue(f, 'etcd_server_proposals_failed_total'), 2);
  t.equal(sampleValue(f, 'etcd_server_learner_promote_successes'), 1);
});

t.test('durations land in their histograms', async (t) => {
  const m = new MemberMetrics({ memberId: SELF });
  m.observeWalFsync(0.0015);
  m.observeWalFsync(0.5);
  m.observeBackendCommit(0.003);
  m.observeSnapshotSave(2);
  m.observeReceivedSnapshotSave(0.15);
  const f = await scrape(m);
  t.equal(sampleValue(f, 'etcd_disk_wal_fsync_duration_seconds_count'), 2);
  t.equal(sampleValue(f, 'etcd_disk_wal_fsync_duration_seconds_bucket', { le: '0.002' }), 1);
  t.equal(sampleValue(f, 'etcd_disk_wal_fsync_duration_seconds_bucket', { le: '0.512' }), 2);
  t.equal(sampleValue(f, 'etcd_disk_wal_fsync_duration_seconds_sum'), 0.5015);
  t.equal(sampleValue(f, 'etcd_disk_backend_commit_duration_seconds_bucket', { le: '0.002' }), 0);
  t.equal(sampleValue(f, 'etcd_disk_backend_commit_duration_seconds_bucket', { le: '0.004' }), 1);
  t.equal(sampleValue(f, 'etcd_debugging_snap_save_total_duration_seconds_bucket', { le: '2.048' }), 1);
  t.equal(sampleValue(f, 'etcd_debugging_snap_save_total_duration_seconds_bucket', { le: '1.024' }), 0);
  t.equal(sampleValue(f, 'etcd_snap_db_save_total_duration_seconds_bucket', { le: '0.2' }), 1);
});

t.test('peer counters mirror the transport totals; a removed peer goes away', async (t) => {
  const peers = new Map<string, PeerStats>([
    [PEER, peerStats({ sentBytes: 100, receivedBytes: 7, dropped: 0, connected: true })],
    ['c000000000000003', peerStats({ sentBytes: 5, receivedBytes: 0, dropped: 9 })],
  ]);
  const m = new MemberMetrics({ memberId: SELF, sources: { peers: () => peers } });
  let f = await scrape(m);
  t.equal(sampleValue(f, 'etcd_network_peer_sent_bytes_total', { To: 'b00000000000002' }), 100);
  t.equal(sampleValue(f, 'etcd_network_peer_received_bytes_total', { From: 'b00000000000002' }), 7);
  t.equal(sampleValue(f, 'etcd_network_peer_sent_failures_total', { To: 'c000000000000003' }), 9);
  t.equal(sampleValue(f, 'etcd_network_active_peers', { Local: 'a1', Remote: 'c000000000000003' }), 0);
  peers.set(PEER, peerStats({ sentBytes: 250, receivedBytes: 7, connected: true }));
  peers.delete('c000000000000003');
  f = await scrape(m);
  t.equal(sampleValue(f, 'etcd_network_peer_sent_bytes_total', { To: 'b00000000000002' }), 250, 'not added twice');
  t.equal(sampleValue(f, 'etcd_network_peer_sent_bytes_total', { To: 'c000000000000003' }), undefined);
});

t.test('two members in one process keep their own values and share the process metrics', async (t) => {
  const a = new MemberMetrics({ memberId: 'a' });
  const b = new MemberMetrics({ memberId: 'b' });
  a.onLeaderChange('a');
  a.rpc.begin(RPCS.range)(GrpcCode.OK);
  const [fa, fb] = await Promise.all([scrape(a), scrape(b)]);
  t.equal(sampleValue(fa, 'etcd_server_leader_changes_seen_total'), 1);
  t.equal(sampleValue(fb, 'etcd_server_leader_changes_seen_total'), 0);
  const range = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Range' };
  t.equal(sampleValue(fa, 'grpc_server_started_total', range), 1);
  t.equal(sampleValue(fb, 'grpc_server_started_total', range), 0);
  t.ok(fa.has('process_cpu_user_seconds_total') && fb.has('process_cpu_user_seconds_total'));
  t.equal(sampleValue(fb, 'etcd_server_id', { server_id: 'b' }), 1, 'an id that is not hex is left as it is');
});

t.test('gRPC call counting: zero from the start, one end per call, gRPC code names', async (t) => {
  const m = new MemberMetrics({ memberId: SELF });
  const put = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put' };
  const watch = { grpc_type: 'bidi_stream', grpc_service: 'etcdserverpb.Watch', grpc_method: 'Watch' };
  let f = await scrape(m);
  t.equal(sampleValue(f, 'grpc_server_started_total', watch), 0, 'every method present before its first call');
  t.equal(sampleValue(f, 'grpc_server_handled_total', { ...put, grpc_code: 'OK' }), 0);
  const end = m.rpc.begin(RPCS.put);
  m.rpc.begin(RPCS.watch);
  f = await scrape(m);
  t.equal(sampleValue(f, 'grpc_server_started_total', put), 1);
  t.equal(sampleValue(f, 'grpc_server_handled_total', { ...put, grpc_code: 'OK' }), 0, 'not handled before its end');
  end(GrpcCode.Unavailable);
  end(GrpcCode.OK);
  f = await scrape(m);
  t.equal(sampleValue(f, 'grpc_server_handled_total', { ...put, grpc_code: 'Unavailable' }), 1);
  t.equal(sampleValue(f, 'grpc_server_handled_total', { ...put, grpc_code: 'OK' }), 0, 'a second end is ignored');
  t.equal(sampleValue(f, 'grpc_server_handling_seconds_count', put), 1);
  t.equal(sampleValue(f, 'grpc_server_started_total', watch), 1);
  t.same(
    [0, 1, 2, 3, 4, 5, 8, 9, 11, 12, 13, 14, 16, 17, -1].map(grpcCodeName),
    ['OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'ResourceExhausted',
      'FailedPrecondition', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable', 'Unauthenticated', 'Unknown',
      'Unknown'],
  );
  t.same(
    ['00000000000000a1', '8e9e05c52164694d', '0', 'not-hex'].map(etcdIdLabel),
    ['a1', '8e9e05c52164694d', '0', 'not-hex'],
  );
});

t.test('GET /metrics through the gateway: Prometheus text 0.0.4, not a counted call', async (t) => {
  const m = new MemberMetrics({ memberId: SELF, sources: { leader: () => SELF } });
  const { call } = await startGateway(t, { extraRoutes: [m.route], rpcMetrics: m.rpc });
  const r = await call('GET', '/metrics');
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  const f = parsePrometheusText(r.text);
  t.equal(sampleValue(f, 'etcd_server_has_leader'), 1);
  const started = f.get('grpc_server_started_total') as Family;
  t.ok(started.samples.length > 0 && started.samples.every((s) => s.value === 0), 'no call counted for a scrape');
  t.equal((await call('POST', '/metrics')).status, 405, 'GET only');
});
