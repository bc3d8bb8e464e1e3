// The `keel node` command line of one member of a local cluster: shared by `keel cluster up` and by the
// process-level tests, so that both start members exactly the same way.

import path from 'node:path';

/** The compiled CLI; resolves the same from src/cli (tests run TypeScript directly) and from dist/cli. */
export const KEEL_MAIN = path.resolve(__dirname, '../../dist/cli/main.js');

export interface LocalMember {
  name: string;
  clientUrl: string;
  peerUrl: string;
  dataDir: string;
}

/** Optional `keel node` flags, by flag name without the dashes (for example 'snapshot-count'). */
export type NodeFlags = Record<string, number | string | undefined>;

/** Arguments for `node <KEEL_MAIN> node ...` that start `m` as a member of `members`. */
export function memberNodeArgs(m: LocalMember, members: readonly LocalMember[], flags: NodeFlags = {}): string[] {
  const args = [
    KEEL_MAIN,
    'node',
    '--name',
    m.name,
    '--data-dir',
    m.dataDir,
    '--listen-client-urls',
    m.clientUrl,
    '--listen-peer-urls',
    m.peerUrl,
    '--initial-cluster',
    members.map((x) => `${x.name}=${x.peerUrl}`).join(','),
  ];
  for (const [flag, value] of Object.entries(flags)) {
    if (value !== undefined) args.push(`--${flag}`, String(value));
  }
  return args;
}
