// The observer hooks of the storage and network layers, with real parts, feeding a member's metrics: a
// real WAL in a temp dir (etcd_disk_wal_fsync_duration_seconds: one sample per fdatasync), a real MVCC
// store (etcd_disk_backend_commit_duration_seconds: one per apply batch), and two real peer transports
// (bytes each way equal to what the transports counted, round trips observed, drops to an unreachable peer
// counted as send failures).

import t from 'tap';
import { MemberMetrics } from '../../src/server/metrics';
import { etcdIdLabel } from '../../src/server/metrics/labels';
import { Wal } from '../../src/raft/wal/wal';
import { A, B, C, appMsg, freePort, listen, member, urlOf, waitFor } from '../transport/fixtures/harness';
import { Log, openStore, put } from '../kv/fixtures/mvcc';
import { ents, tmpDir } from '../wal/fixtures/helpers';
import { parsePrometheusText, sampleValue } from './fixtures/prom-text';

async function value(m: MemberMetrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return sampleValue(parsePrometheusText(await m.text()), name, labels);
}

t.test('WAL: every fdatasync is one fsync duration sample', async (t) => {
  const m = new MemberMetrics({ memberId: A });
  const seen: number[] = [];
  const onFsync = (s: number): void => {
    seen.push(s);
    m.observeWalFsync(s);
  };
  const dir = tmpDir(t);
  const wal = await Wal.create(dir, { onFsync, segmentSize: 64 * 1024 });
  t.equal(seen.length, 1, 'the first segment, synced before it is renamed into place');
  await wal.save({ term: 1, vote: '', commit: 0 }, ents(1, 3, 1), true);
  t.equal(seen.length, 2, 'one per synced batch');
  await wal.save(undefined, ents(4, 5, 1), false);
  t.equal(seen.length, 2, 'none for a batch that is not synced');
  await wal.save(undefined, ents(6, 6, 1), true);
  t.equal(seen.length, 3);
  t.equal(wal.stats().fsyncs, 2, "the WAL's own count, which leaves out create()'s sync");
  await wal.save(undefined, ents(7, 7, 1), false);
  await wal.close();
  t.equal(seen.length, 4, 'close syncs what was written');
  t.ok(seen.every((s) => s >= 0 && s < 10), 'durations in seconds');

  t.equal(await value(m, 'etcd_disk_wal_fsync_duration_seconds_count'), seen.length);
  const sum = (await value(m, 'etcd_disk_wal_fsync_duration_seconds_sum')) ?? NaN;
  t.ok(Math.abs(sum - seen.reduce((a, b) => a + b, 0)) < 1e-9, '_sum is the sum of the durations');

  // Opened again (the hook given to open()), a batch larger than the rest of the segment cuts it: the old
  // segment and the new one are synced too.
  const reopened: number[] = [];
  const { wal: again } = await Wal.open(dir, { onFsync: (s) => reopened.push(s), segmentSize: 64 * 1024 });
  await again.save(undefined, ents(8, 8, 1, 80 * 1024), true);
  t.equal(reopened.length, 3, 'cut: old segment, new segment, then the batch');
  await again.close();
  t.equal(reopened.length, 3, 'nothing left to sync at close');
});

t.test('store: every apply batch is one backend commit sample', async (t) => {
  const m = new MemberMetrics({ memberId: A });
  const seen: number[] = [];
  const s = await openStore(t, undefined, {
    onCommit: (sec) => {
      seen.push(sec);
      m.observeBackendCommit(sec);
    },
  });
  const log = new Log();
  await s.apply([log.entry(put('a', '1')), log.entry(put('b', '2'))]);
  t.equal(seen.length, 1, 'one LevelDB batch for the whole apply call');
  const e = log.entry(put('c', '3'));
  await s.apply([e]);
  await s.apply([e]);
  t.equal(seen.length, 2, 'nothing written (already applied): no commit');
  await s.range({ key: Buffer.from('a') });
  t.equal(seen.length, 2, 'reads do not commit');
  t.equal(await value(m, 'etcd_disk_backend_commit_duration_seconds_count'), 2);
});

t.test('transport: peer bytes, failures and round trips, as the transports counted them', async (t) => {
  const ma = new MemberMetrics({ memberId: A, sources: { peers: () => a.transport.stats() } });
  const mb = new MemberMetrics({ memberId: B, sources: { peers: () => b.transport.stats() } });
  const [sa, sb] = await Promise.all([listen(0), listen(0)]);
  // C never answers: messages for it are dropped, which etcd counts as send failures.
  const deadUrl = `http://127.0.0.1:${await freePort()}`;
  const fast = { pingIntervalMs: 20, backoffMinMs: 10, backoffMaxMs: 50, dialTimeoutMs: 200 };
  const a = member(A, sa, new Map([[B, urlOf(sb)], [C, deadUrl]]), { ...fast, onRoundTrip: ma.observePeerRoundTrip });
  const b = member(B, sb, new Map([[A, urlOf(sa)]]), { ...fast, onRoundTrip: mb.observePeerRoundTrip });
  t.teardown(() => Promise.all([a.close(), b.close()]));

  await waitFor(() => a.transport.isActive(B) && b.transport.isActive(A), 'streams up');
  const N = 50;
  a.transport.send(Array.from({ length: N }, (_, i) => appMsg(A, B, i)));
  b.transport.send([appMsg(B, A, 0)]);
  await waitFor(() => b.received.length === N && a.received.length === 1, 'messages delivered');
  // Some messages for the dead peer, dropped while it cannot be reached.
  await waitFor(() => (a.transport.stats().get(C)?.dials ?? 0) >= 1 && !a.transport.isActive(C), 'C tried');
  a.transport.send([appMsg(A, C, 0), appMsg(A, C, 1)]);
  await waitFor(() => (a.transport.stats().get(C)?.dropped ?? 0) >= 1, 'a drop for C');
  // Round trips: pings every 20 ms on each outgoing stream.
  const bLabel = etcdIdLabel(B);
  const deadline = Date.now() + 5000;
  const rttCount = async (): Promise<number> =>
    (await value(ma, 'etcd_network_peer_round_trip_time_seconds_count', { To: bLabel })) ?? 0;
  while (Date.now() < deadline && (await rttCount()) < 2) {
    await new Promise((r) => setTimeout(r, 20));
  }

  const sentAB = a.transport.stats().get(B)?.sentBytes ?? 0;
  t.ok(sentAB > N * 10, `A sent ${sentAB} bytes to B`);
  t.equal(await value(ma, 'etcd_network_peer_sent_bytes_total', { To: bLabel }), sentAB);
  const receivedByB = await value(mb, 'etcd_network_peer_received_bytes_total', { From: etcdIdLabel(A) });
  t.equal(receivedByB, sentAB, 'B received them all');
  t.equal(
    await value(ma, 'etcd_network_peer_received_bytes_total', { From: bLabel }),
    b.transport.stats().get(A)?.sentBytes,
  );
  t.equal(await value(ma, 'etcd_network_peer_sent_failures_total', { To: bLabel }), 0);
  t.equal(
    await value(ma, 'etcd_network_peer_sent_failures_total', { To: etcdIdLabel(C) }),
    a.transport.stats().get(C)?.dropped,
  );
  t.ok(((await value(ma, 'etcd_network_peer_sent_failures_total', { To: etcdIdLabel(C) })) ?? 0) >= 2);
  t.equal(await value(ma, 'etcd_network_active_peers', { Local: etcdIdLabel(A), Remote: bLabel }), 1);
  t.equal(await value(ma, 'etcd_network_active_peers', { Local: etcdIdLabel(A), Remote: etcdIdLabel(C) }), 0);
  const rtts = await rttCount();
  t.ok(rtts >= 2, `round trips to B observed (${rtts})`);
  const rttSum = (await value(ma, 'etcd_network_peer_round_trip_time_seconds_sum', { To: bLabel })) ?? NaN;
  t.ok(rttSum > 0 && rttSum / rtts < 1, 'in seconds');
});
