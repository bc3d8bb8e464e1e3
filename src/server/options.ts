// The settings of one member, as `keel node` gives them (flags in DESIGN.md). Defaults are etcd's.

export interface InitialMember {
  name: string;
  peerUrl: string;
}

export interface MemberOptions {
  name: string;
  dataDir: string;
  /** One URL (http://host:port) for clients: HTTP JSON, /health, /metrics. */
  listenClientUrl: string;
  /** One URL (http://host:port) for Raft peers. */
  listenPeerUrl: string;
  /** The peer URL this member tells the others (etcd's --initial-advertise-peer-urls): what --initial-cluster
   *  lists for it and what its member id is derived from. Defaults to listenPeerUrl; differs when peers reach
   *  it through a proxy or a NAT. */
  advertisePeerUrl?: string;
  /** Every voting member of a new cluster, this one included (`n1=http://..,n2=http://..`). */
  initialCluster: InitialMember[];
  /** Mixed into the member and cluster ids, so that two clusters with the same URLs differ. */
  initialClusterToken: string;
  /** Entries applied between two snapshots. Default 10000. */
  snapshotCount: number;
  /** Log entries kept behind a snapshot for slow followers. Default 5000. */
  snapshotCatchupEntries: number;
  /** Milliseconds per Raft tick (etcd's --heartbeat-interval). Default 100. */
  heartbeatIntervalMs: number;
  /** Milliseconds before a follower campaigns (etcd's --election-timeout). Default 1000 (10 ticks). */
  electionTimeoutMs: number;
  /** pino level. Default 'info'. */
  logLevel: string;
  /** Milliseconds between two checkpoints of the leases' remaining TTLs through the log (etcd: 5 min). */
  leaseCheckpointIntervalMs: number;
  /** Milliseconds between two progress notifications to watches that asked for them (etcd: 10 min). */
  watchProgressNotifyIntervalMs: number;
  /** 'new': a founding member of a new cluster; 'existing': a member added at runtime (`keel member add`),
   *  which learns the cluster from its peers. Only read when the data dir is empty. */
  initialClusterState: 'new' | 'existing';
  /** Backend size above which a NOSPACE alarm is raised and writes are refused (etcd's
   *  --quota-backend-bytes; default 2 GiB). */
  quotaBackendBytes: number;
  /** Tests only, never set from flags: simulated write errors of the WAL and the backend. */
  faults?: DiskFaults;
}

export interface DiskFaults {
  wal?: () => Error | undefined;
  backend?: () => Error | undefined;
}

export const DEFAULT_MEMBER_OPTIONS = {
  initialClusterToken: 'keel-cluster',
  snapshotCount: 10000,
  snapshotCatchupEntries: 5000,
  heartbeatIntervalMs: 100,
  electionTimeoutMs: 1000,
  logLevel: 'info',
  leaseCheckpointIntervalMs: 300_000,
  watchProgressNotifyIntervalMs: 600_000,
  initialClusterState: 'new',
  quotaBackendBytes: 2 * 1024 * 1024 * 1024,
} as const;

/** Parses `n1=http://127.0.0.1:2380,n2=...`; throws an Error that names what is wrong. */
export function parseInitialCluster(spec: string): InitialMember[] {
  const members: InitialMember[] = [];
  const names = new Set<string>();
  const urls = new Set<string>();
  for (const part of spec.split(',').map((s) => s.trim()).filter((s) => s.length > 0)) {
    const eq = part.indexOf('=');
    if (eq <= 0 || eq === part.length - 1) {
      throw new Error(`--initial-cluster: "${part}" is not NAME=PEER-URL`);
    }
    const name = part.slice(0, eq);
    const peerUrl = normalizeUrl(part.slice(eq + 1), '--initial-cluster');
    if (names.has(name)) throw new Error(`--initial-cluster: member name "${name}" appears twice`);
    if (urls.has(peerUrl)) throw new Error(`--initial-cluster: peer URL ${peerUrl} appears twice`);
    names.add(name);
    urls.add(peerUrl);
    members.push({ name, peerUrl });
  }
  if (members.length === 0) throw new Error('--initial-cluster: no members given');
  return members;
}

/** Checks that a URL is http://host:port and returns it without a trailing slash. */
export function normalizeUrl(raw: string, flag: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`${flag}: "${raw}" is not a URL (expected http://HOST:PORT)`);
  }
  if (u.protocol !== 'http:') {
    throw new Error(`${flag}: "${raw}" must use http:// (TLS is not supported yet)`);
  }
  if (u.port === '') throw new Error(`${flag}: "${raw}" has no port`);
  if (u.pathname !== '/' && u.pathname !== '') throw new Error(`${flag}: "${raw}" must not have a path`);
  return `http://${u.host}`;
}
