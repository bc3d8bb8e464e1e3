// A member's Prometheus metrics, under etcd's names, types, labels, help texts and buckets, so that etcd's
// Grafana dashboards and alerts work on Keel unchanged: GET /metrics on the client URL, Prometheus text
// format 0.0.4. Each member has its own registry (several members in one process do not mix); Node's process
// metrics come from one registry per process (metrics/process-metrics.ts).
//
// How values get in:
// - Gauges of the member's state (leader, indexes, pending proposals, revisions, database size, peer
//   connections) are read from the `sources` callbacks when /metrics is scraped; a source that has nothing
//   yet (the member is starting) or throws leaves its metric as it was.
// - Events are reported by the member through the methods below (leader changes, failed proposals), and
//   durations by the WAL, the store and the driver through the observe* callbacks (their options).
// - Client requests are counted by the gateway and the native stream through `rpc` (grpc_server_*).
//
// etcd's counterparts: server/etcdserver/metrics.go, server/etcdserver/api/membership/metrics.go,
// server/storage/wal/metrics.go, server/storage/backend/metrics.go, server/storage/mvcc/metrics.go,
// server/etcdserver/api/snap/metrics.go, server/etcdserver/api/rafthttp/metrics.go, go-grpc-prometheus.

import type http from 'node:http';
import { Counter, Gauge, Histogram, Registry, exponentialBuckets } from 'prom-client';
import { NONE, type NodeId } from '../raft/core/types';
import { ETCD_SERVER_VERSION, type ExtraRoute } from './http-gateway';
import { GrpcServerMetrics } from './metrics/grpc-metrics';
import { etcdIdLabel, readSafely, readSafelyAsync } from './metrics/labels';
import { PeerMetrics, type PeerStatsSource } from './metrics/peer-metrics';
import { processRegistry } from './metrics/process-metrics';
import type { RpcObserver } from './metrics/rpc-observer';

export type { RpcObserver } from './metrics/rpc-observer';

/** What the member's gauges are read from at each scrape. Every source is optional and may return
 *  undefined while the member has no value yet. */
export interface MemberMetricSources {
  /** The leader this member knows; NONE ('') when it knows none. */
  leader?: () => NodeId | undefined;
  isLeader?: () => boolean | undefined;
  isLearner?: () => boolean | undefined;
  /** The Raft log's commit index (etcd's proposals_committed_total is that index). */
  committedIndex?: () => number | undefined;
  /** The applied index (etcd's proposals_applied_total). */
  appliedIndex?: () => number | undefined;
  /** Proposals of this member waiting to be applied. */
  pendingProposals?: () => number | undefined;
  /** The store's current and compacted revisions. */
  revision?: () => number | undefined;
  compactRevision?: () => number | undefined;
  /** The backend quota (--quota-backend-bytes). */
  quotaBackendBytes?: () => number | undefined;
  /** Bytes the store's database takes on disk. */
  dbSize?: () => number | undefined | Promise<number | undefined>;
  /** The peer transport's per-peer totals (PeerTransport.stats). */
  peers?: PeerStatsSource;
}

export interface MemberMetricsOptions {
  memberId: NodeId;
  sources?: MemberMetricSources;
}

/** 1 ms to 8.192 s: etcd's buckets for disk durations (WAL fsync, backend commit, snapshot save). */
const DISK_BUCKETS = exponentialBuckets(0.001, 2, 14);
/** 100 ms to 51.2 s: etcd's buckets for saving a snapshot received from the leader. */
const SNAP_DB_BUCKETS = exponentialBuckets(0.1, 2, 10);

export const METRICS_PATH = '/metrics';

export class MemberMetrics {
  /** Everything /metrics shows: this member's metrics and the process's. */
  readonly registry: Registry;
  /** Counts the client requests (grpc_server_*): give it to createClientServer and attachStreamServer as
   *  their `rpcMetrics` option. */
  readonly rpc: RpcObserver;
  /** GET /metrics: give it to createClientServer in `extraRoutes`. */
  readonly route: ExtraRoute;

  private readonly leaderChanges: Counter;
  private readonly proposalsFailed: Counter;
  private readonly learnerPromoteSuccesses: Counter;
  private readonly learnerPromoteFailures: Counter<'Reason'>;
  private readonly walFsync: Histogram;
  private readonly backendCommit: Histogram;
  private readonly snapSave: Histogram;
  private readonly snapDbSave: Histogram;
  private readonly peerMetrics: PeerMetrics;
  private lastLeader: NodeId = NONE;

  constructor(opts: MemberMetricsOptions) {
    const src = opts.sources ?? {};
    const own = new Registry();
    const registers = [own];
    const gauge = (name: string, help: string, read: () => number | undefined | Promise<number | undefined>): void => {
      new Gauge({
        name,
        help,
        registers,
        async collect(this: Gauge) {
          const v = await readSafelyAsync(read);
          if (v !== undefined) this.set(v);
        },
      });
    };
    const flag = (read: (() => boolean | undefined) | undefined) => (): number | undefined => {
      if (read === undefined) return undefined;
      const v = readSafely(read);
      return v === undefined ? undefined : v ? 1 : 0;
    };
    const numeric = (read: (() => number | undefined) | undefined) => (): number | undefined =>
      read === undefined ? undefined : readSafely(read);

    // ---- server (etcd_server_*) ----
    gauge('etcd_server_has_leader', 'Whether or not a leader exists. 1 is existence, 0 is not.', () => {
      if (src.leader === undefined) return undefined;
      const lead = readSafely(src.leader);
      return lead === undefined || lead === NONE ? 0 : 1;
    });
    gauge('etcd_server_is_leader', 'Whether or not this member is a leader. 1 if is, 0 otherwise.', flag(src.isLeader));
    gauge(
      'etcd_server_is_learner',
      'Whether or not this member is a learner. 1 if is, 0 otherwise.',
      flag(src.isLearner),
    );
    gauge(
      'etcd_server_quota_backend_bytes',
      'Current backend storage quota size in bytes.',
      numeric(src.quotaBackendBytes),
    );
    this.leaderChanges = new Counter({
      name: 'etcd_server_leader_changes_seen_total',
      help: 'The number of leader changes seen.',
      registers,
    });
    // etcd's proposals_committed_total and proposals_applied_total are gauges holding the committed and
    // applied index (despite the _total), and dashboards take rate() of them: same type here.
    gauge(
      'etcd_server_proposals_committed_total',
      'The total number of consensus proposals committed.',
      numeric(src.committedIndex),
    );
    gauge(
      'etcd_server_proposals_applied_total',
      'The total number of consensus proposals applied.',
      numeric(src.appliedIndex),
    );
    gauge(
      'etcd_server_proposals_pending',
      'The current number of pending proposals to commit.',
      numeric(src.pendingProposals),
    );
    this.proposalsFailed = new Counter({
      name: 'etcd_server_proposals_failed_total',
      help: 'The total number of failed proposals seen.',
      registers,
    });
    this.learnerPromoteSuccesses = new Counter({
      name: 'etcd_server_learner_promote_successes',
      help: 'The total number of successful learner promotions while this member is leader.',
      registers,
    });
    this.learnerPromoteFailures = new Counter({
      name: 'etcd_server_learner_promote_failures',
      help: 'The total number of failed learner promotions (likely learner not ready) while this member is leader.',
      labelNames: ['Reason'],
      registers,
    });
    new Gauge({
      name: 'etcd_server_id',
      help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      labelNames: ['server_id'],
      registers,
    }).set({ server_id: etcdIdLabel(opts.memberId) }, 1);
    new Gauge({
      name: 'etcd_server_version',
      help: "Which version is running. 1 for 'server_version' label with current version.",
      labelNames: ['server_version'],
      registers,
    }).set({ server_version: ETCD_SERVER_VERSION }, 1);

    // ---- disk and snapshots ----
    this.walFsync = new Histogram({
      name: 'etcd_disk_wal_fsync_duration_seconds',
      help: 'The latency distributions of fsync called by WAL.',
      buckets: DISK_BUCKETS,
      registers,
    });
    this.backendCommit = new Histogram({
      name: 'etcd_disk_backend_commit_duration_seconds',
      help: 'The latency distributions of commit called by backend.',
      buckets: DISK_BUCKETS,
      registers,
    });
    // etcd 3.4 and 3.5 both name the save of a Raft snapshot file this way (a debugging metric, but the one
    // the dashboards use); etcd_snap_db_save_total_duration_seconds is etcd's for the database a follower
    // receives from the leader, which is what a Keel follower saves when it installs a leader's snapshot.
    this.snapSave = new Histogram({
      name: 'etcd_debugging_snap_save_total_duration_seconds',
      help: 'The total latency distributions of save called by snapshot.',
      buckets: DISK_BUCKETS,
      registers,
    });
    this.snapDbSave = new Histogram({
      name: 'etcd_snap_db_save_total_duration_seconds',
      help: 'The total latency distributions of v3 snapshot save',
      buckets: SNAP_DB_BUCKETS,
      registers,
    });

    // ---- store (etcd_mvcc_*) ----
    gauge(
      'etcd_mvcc_db_total_size_in_bytes',
      'Total size of the underlying database physically allocated in bytes.',
      () => (src.dbSize === undefined ? undefined : src.dbSize()),
    );
    gauge('etcd_debugging_mvcc_current_revision', 'The current revision of store.', numeric(src.revision));
    gauge(
      'etcd_debugging_mvcc_compact_revision',
      'The revision of the last compaction in store.',
      numeric(src.compactRevision),
    );

    // ---- peers and client requests ----
    this.peerMetrics = new PeerMetrics(own, opts.memberId, src.peers ?? (() => undefined));
    this.rpc = new GrpcServerMetrics(own);

    this.registry = Registry.merge([own, processRegistry()]);
    this.route = { method: 'GET', path: METRICS_PATH, handle: (_req, res) => this.serve(res) };
  }

  /** The leader this member knows changed (RaftNode's 'leaderChange'); NONE when it lost it. Counted as
   *  etcd counts: each time a leader other than the last one known appears. */
  readonly onLeaderChange = (lead: NodeId): void => {
    if (lead !== NONE && lead !== this.lastLeader) this.leaderChanges.inc();
    this.lastLeader = lead;
  };

  /** A proposal of this member failed (timed out, dropped with the member stopping, refused). */
  readonly onProposalFailed = (): void => {
    this.proposalsFailed.inc();
  };

  /** This member, as leader, promoted a learner. */
  readonly onLearnerPromoted = (): void => {
    this.learnerPromoteSuccesses.inc();
  };

  /** This member, as leader, refused to promote a learner; `reason` is the error's message. */
  readonly onLearnerPromoteFailed = (reason: string): void => {
    this.learnerPromoteFailures.inc({ Reason: reason });
  };

  /** One fdatasync of a WAL segment (WalOptions.onFsync). */
  readonly observeWalFsync = (seconds: number): void => {
    this.walFsync.observe(seconds);
  };

  /** One write of the store's LevelDB batch for applied entries (MvccStoreOptions.onCommit). */
  readonly observeBackendCommit = (seconds: number): void => {
    this.backendCommit.observe(seconds);
  };

  /** One snapshot of this member's own state written to its snap/ dir. */
  readonly observeSnapshotSave = (seconds: number): void => {
    this.snapSave.observe(seconds);
  };

  /** One snapshot received from the leader saved to the snap/ dir before it is installed. */
  readonly observeReceivedSnapshotSave = (seconds: number): void => {
    this.snapDbSave.observe(seconds);
  };

  /** One round trip to a peer (TransportOptions.onRoundTrip). */
  readonly observePeerRoundTrip = (peer: NodeId, seconds: number): void => {
    this.peerMetrics.observeRoundTrip(peer, seconds);
  };

  /** The Content-Type of text(): Prometheus text format 0.0.4. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Everything, in Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  private async serve(res: http.ServerResponse): Promise<void> {
    const body = await this.text();
    res.statusCode = 200;
    res.setHeader('Content-Type', this.contentType);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
  }
}
