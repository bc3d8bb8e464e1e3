// <data-dir>/member.json: who this data dir belongs to. A member refuses to start in a data dir written by
// another member or another cluster, because mixing two clusters' logs would silently corrupt both.

import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { NodeId } from '../raft/core/types';
import { clusterIdOf, memberIdOf } from './ids';
import type { InitialMember } from './options';

export interface MemberIdentity {
  name: string;
  memberId: NodeId;
  clusterId: string;
  /** The founding voters, as ids with their peer URLs: the configuration before any snapshot exists. */
  initialCluster: { name: string; id: NodeId; peerUrl: string }[];
  /** A member added at runtime (`--initial-cluster-state existing`): its id was given by the cluster, and its
   *  Raft starts with no configuration (it learns it from the leader's log or snapshot). */
  joined?: boolean;
}

const FILE = 'member.json';

/** The identity of member `name` of a new cluster (ids derived from the initial cluster and the token), as
 *  `keel node` and `keel snapshot restore` both write it. Throws if `name` is not in the cluster. */
export function identityOf(name: string, initialCluster: InitialMember[], token: string): MemberIdentity {
  const self = initialCluster.find((m) => m.name === name);
  if (self === undefined) {
    throw new Error(
      `member name "${name}" is not in the initial cluster (it has ${initialCluster.map((m) => m.name).join(', ')})`,
    );
  }
  return {
    name,
    memberId: memberIdOf(self.peerUrl, token),
    clusterId: clusterIdOf(initialCluster, token),
    initialCluster: initialCluster.map((m) => ({ name: m.name, id: memberIdOf(m.peerUrl, token), peerUrl: m.peerUrl })),
  };
}

export async function readIdentity(dataDir: string): Promise<MemberIdentity | undefined> {
  const file = path.join(dataDir, FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}); refusing to start`);
  }
  const p = parsed as Partial<MemberIdentity>;
  if (
    typeof p !== 'object' ||
    p === null ||
    typeof p.name !== 'string' ||
    typeof p.memberId !== 'string' ||
    typeof p.clusterId !== 'string' ||
    !Array.isArray(p.initialCluster)
  ) {
    throw new Error(`${file} lacks name, memberId, clusterId or initialCluster; refusing to start`);
  }
  return p as MemberIdentity;
}

export async function writeIdentity(dataDir: string, id: MemberIdentity): Promise<void> {
  const file = path.join(dataDir, FILE);
  const tmp = `${file}.tmp`;
  const fh = await fs.open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(id, null, 2) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.rename(tmp, file);
}

/** Throws a clear error if the data dir belongs to another member or cluster. */
export function checkIdentity(dataDir: string, found: MemberIdentity, expected: MemberIdentity): void {
  if (found.clusterId !== expected.clusterId) {
    throw new Error(
      `data dir ${dataDir} belongs to cluster ${found.clusterId} (member ${found.name}), but --initial-cluster ` +
        `and --initial-cluster-token describe cluster ${expected.clusterId}; refusing to start. ` +
        `Use another --data-dir, or the flags this member was created with.`,
    );
  }
  if (found.memberId !== expected.memberId || found.name !== expected.name) {
    throw new Error(
      `data dir ${dataDir} belongs to member ${found.name} (${found.memberId}), not to ${expected.name} ` +
        `(${expected.memberId}); refusing to start`,
    );
  }
}
