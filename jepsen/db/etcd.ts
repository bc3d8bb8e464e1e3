// The command line of an etcd member under test: the same layout as a Keel member (client URL, peer listener
// behind its link proxy, the proxy's front advertised), logging structured lines to stderr, which the
// harness appends to the member's log file.

import type { CommandLine } from './process';
import { initialClusterFlag, type MemberLaunch } from './launch';

export const DEFAULT_ETCD_BIN = 'etcd';

export function etcdCommandLine(l: MemberLaunch, bin: string): CommandLine {
  const n = l.node;
  return {
    command: bin,
    args: [
      '--name', n.name,
      '--data-dir', n.dataDir,
      '--listen-client-urls', n.clientUrl,
      '--advertise-client-urls', n.clientUrl,
      '--listen-peer-urls', n.listenPeerUrl,
      '--initial-advertise-peer-urls', n.peerUrl,
      '--initial-cluster', initialClusterFlag(l.initialCluster),
      '--initial-cluster-token', l.token,
      '--initial-cluster-state', l.clusterState,
      '--heartbeat-interval', String(l.heartbeatMs),
      '--election-timeout', String(l.electionMs),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
    ],
  };
}
