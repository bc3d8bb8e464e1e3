// GET /metrics of a real member: Prometheus text that parses, with etcd's metric names fed by the member's
// real Raft loop, WAL, store and request paths.

import t from 'tap';
import { KeelClient } from '../../src/client/stream-client';
import { sleep } from '../process/fixtures/proc-cluster';
import { startOneMember } from './fixtures/one-member';
import { parsePrometheusText, sampleValue } from './fixtures/prom-text';

const NAMES = [
  'etcd_server_has_leader',
  'etcd_server_is_leader',
  'etcd_server_leader_changes_seen_total',
  'etcd_server_proposals_committed_total',
  'etcd_server_proposals_applied_total',
  'etcd_server_proposals_pending',
  'etcd_server_proposals_failed_total',
  'etcd_disk_wal_fsync_duration_seconds',
  'etcd_disk_backend_commit_duration_seconds',
  'etcd_debugging_snap_save_total_duration_seconds',
  'etcd_mvcc_db_total_size_in_bytes',
  'etcd_network_peer_round_trip_time_seconds',
  'etcd_network_peer_sent_bytes_total',
  'etcd_network_peer_received_bytes_total',
  'grpc_server_started_total',
  'grpc_server_handled_total',
  'process_cpu_seconds_total',
  'process_resident_memory_bytes',
];

t.test('a member exports etcd metrics that follow what it does', async (t) => {
  // A snapshot every 20 entries, so that the snapshot histogram gets samples too.
  const m = await startOneMember({ snapshotCount: 20, snapshotCatchupEntries: 5 });
  const client = new KeelClient({ endpoints: [m.clientUrl], requestTimeoutMs: 10_000 });
  t.teardown(async () => {
    await client.close();
    await m.stop();
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !(await client.health(m.clientUrl).catch(() => undefined))?.health) await sleep(50);
  for (let i = 0; i < 50; i++) await client.put(`m/${i}`, 'v');
  await client.get('m/', { prefix: true });
  await t.rejects(client.get('m/1', { revision: 10_000 }));
  await sleep(300);

  const res = await fetch(`${m.clientUrl}/metrics`);
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const families = parsePrometheusText(await res.text());
  for (const name of NAMES) t.ok(families.has(name), `${name} is exported`);

  t.equal(sampleValue(families, 'etcd_server_has_leader'), 1, 'has a leader');
  t.equal(sampleValue(families, 'etcd_server_is_leader'), 1, 'is the leader');
  t.ok((sampleValue(families, 'etcd_server_leader_changes_seen_total') ?? 0) >= 1, 'saw a leader change');
  const applied = sampleValue(families, 'etcd_server_proposals_applied_total') ?? 0;
  t.ok(applied >= 50, `applied ${applied} >= the 50 puts`);
  const fsyncs = sampleValue(families, 'etcd_disk_wal_fsync_duration_seconds_count') ?? 0;
  t.ok(fsyncs >= 50, `${fsyncs} WAL fsyncs observed for 50 sequential puts`);
  const commits = sampleValue(families, 'etcd_disk_backend_commit_duration_seconds_count') ?? 0;
  t.ok(commits >= 50, `${commits} backend commits observed`);
  const snaps = sampleValue(families, 'etcd_debugging_snap_save_total_duration_seconds_count') ?? 0;
  t.ok(snaps >= 1, `${snaps} snapshot saves observed`);
  t.ok((sampleValue(families, 'etcd_mvcc_db_total_size_in_bytes') ?? 0) > 0, 'db size');
  const puts = sampleValue(families, 'grpc_server_handled_total', {
    grpc_type: 'unary',
    grpc_service: 'etcdserverpb.KV',
    grpc_method: 'Put',
    grpc_code: 'OK',
  });
  t.equal(puts, 50, 'every put counted as an OK KV/Put');
  const outOfRange = sampleValue(families, 'grpc_server_handled_total', {
    grpc_type: 'unary',
    grpc_service: 'etcdserverpb.KV',
    grpc_method: 'Range',
    grpc_code: 'OutOfRange',
  });
  t.equal(outOfRange, 1, 'the read of a future revision counted with its code');
});
