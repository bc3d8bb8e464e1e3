// What a member is started with, whatever the target: the parts of its command line that the cluster decides.

import type { NodeInfo } from '../types';

export interface MemberLaunch {
  node: NodeInfo;
  /** the --initial-cluster it starts with: every initial member, or (for a member added later) the
   *  members as they were when it joined, itself included */
  initialCluster: readonly NodeInfo[];
  clusterState: 'new' | 'existing';
  token: string;
  heartbeatMs: number;
  electionMs: number;
}

/** etcd's --initial-cluster syntax: name=peerUrl,... (the advertised URLs: the fronts of the proxies). */
export function initialClusterFlag(members: readonly NodeInfo[]): string {
  return members.map((m) => `${m.name}=${m.peerUrl}`).join(',');
}
