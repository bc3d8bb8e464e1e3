// etcd's peer network metrics (server/etcdserver/api/rafthttp/metrics.go), from the peer transport. Bytes,
// failures and connection state are the transport's own counters (PeerTransport.stats()), read when
// /metrics is scraped, so sending and receiving pay nothing for them; only round trips are observed as they
// happen (the transport's onRoundTrip option), since a histogram needs every sample.

import { Counter, Gauge, Histogram, exponentialBuckets, type Registry } from 'prom-client';
import type { NodeId } from '../../raft/core/types';
import type { PeerStats } from '../../raft/transport/peer-link';
import { etcdIdLabel, readSafely } from './labels';

export type PeerStatsSource = () => ReadonlyMap<NodeId, PeerStats> | undefined;

/** A counter whose value per peer is a total the transport keeps: set from it at each scrape. */
function mirroredCounter(
  registry: Registry,
  name: string,
  help: string,
  label: 'To' | 'From',
  peers: PeerStatsSource,
  total: (s: PeerStats) => number,
): Counter<'To' | 'From'> {
  return new Counter<'To' | 'From'>({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect(this: Counter<'To' | 'From'>) {
      const stats = readSafely(peers);
      if (stats === undefined) return;
      // A removed peer's series goes away with it, as its link's totals do.
      this.reset();
      for (const [id, s] of stats) this.inc({ [label]: etcdIdLabel(id) }, total(s));
    },
  });
}

export class PeerMetrics {
  private readonly rtt: Histogram<'To'>;

  constructor(registry: Registry, selfId: NodeId, peers: PeerStatsSource) {
    mirroredCounter(
      registry,
      'etcd_network_peer_sent_bytes_total',
      'The total number of bytes sent to peers.',
      'To',
      peers,
      (s) => s.sentBytes,
    );
    mirroredCounter(
      registry,
      'etcd_network_peer_received_bytes_total',
      'The total number of bytes received from peers.',
      'From',
      peers,
      (s) => s.receivedBytes,
    );
    // etcd counts a message it could not hand to a peer's stream; Keel's transport counts every message it
    // dropped for a peer (unreachable, queue full, socket backed up, too large).
    mirroredCounter(
      registry,
      'etcd_network_peer_sent_failures_total',
      'The total number of send failures from peers.',
      'To',
      peers,
      (s) => s.dropped,
    );
    const local = etcdIdLabel(selfId);
    new Gauge<'Local' | 'Remote'>({
      name: 'etcd_network_active_peers',
      help: 'The current number of active peer connections.',
      labelNames: ['Local', 'Remote'],
      registers: [registry],
      collect(this: Gauge<'Local' | 'Remote'>) {
        const stats = readSafely(peers);
        if (stats === undefined) return;
        this.reset();
        for (const [id, s] of stats) this.set({ Local: local, Remote: etcdIdLabel(id) }, s.connected ? 1 : 0);
      },
    });
    this.rtt = new Histogram<'To'>({
      name: 'etcd_network_peer_round_trip_time_seconds',
      help: 'Round-Trip-Time histogram between peers',
      labelNames: ['To'],
      // etcd's: 0.1 ms to 3.2768 s.
      buckets: exponentialBuckets(0.0001, 2, 16),
      registers: [registry],
    });
  }

  /** One round trip to `peer` (a ping answered on the stream to it). */
  observeRoundTrip(peer: NodeId, seconds: number): void {
    this.rtt.observe({ To: etcdIdLabel(peer) }, seconds);
  }
}
