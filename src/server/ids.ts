// Member and cluster ids, derived as etcd does: from what identifies a member (its peer URL) and the cluster
// token, so that every member computes the same ids from the same --initial-cluster, and two clusters with
// the same URLs but different tokens never accept each other's messages.

import { createHash } from 'node:crypto';
import type { NodeId } from '../raft/core/types';
import type { InitialMember } from './options';

function hash64(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

export function memberIdOf(peerUrl: string, token: string): NodeId {
  return hash64(`member|${peerUrl}|${token}`);
}

export function clusterIdOf(members: InitialMember[], token: string): string {
  const ids = members.map((m) => memberIdOf(m.peerUrl, token)).sort();
  return hash64(`cluster|${ids.join(',')}|${token}`);
}

/** 16 hex digits -> the decimal uint64 string that etcd's JSON and etcdctl print. */
export function idToDecimal(id: string): string {
  return id === '' ? '0' : BigInt(`0x${id}`).toString();
}
