// The command line of a Keel member under test: `node <dist>/cli/main.js node ...`, listening for peers behind
// its link proxy and advertising the proxy's front. The dist directory is a parameter because the self-test
// runs a deliberately broken copy of it.

import fs from 'node:fs';
import path from 'node:path';
import { memberIdOf } from '../../src/server/ids';
import type { CommandLine } from './process';
import { initialClusterFlag, type MemberLaunch } from './launch';

/**
 * The repository root: the first directory above this file holding package.json. Found by walking up
 * because this file runs both from jepsen/db (tap runs TypeScript directly) and from dist-bench/jepsen/db.
 */
export function repoRoot(from: string = __dirname): string {
  let dir = from;
  for (let i = 0; i < 10; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`no package.json above ${from}: cannot find the repository root`);
}

/** <distDir>/cli/main.js, checked to exist (default distDir: the repository's dist/). */
export function keelMain(distDir?: string): string {
  const dist = distDir ?? path.join(repoRoot(), 'dist');
  const main = path.resolve(dist, 'cli', 'main.js');
  if (!fs.existsSync(main)) {
    throw new Error(
      distDir === undefined
        ? `${main} is missing: run npm run build`
        : `${main} is missing: the Keel dist directory ${dist} has no cli/main.js`,
    );
  }
  return main;
}

/** The member id Keel derives from the advertised peer URL and the cluster token (16 hex digits). */
export function keelMemberId(peerUrl: string, token: string): string {
  return memberIdOf(peerUrl, token);
}

export function keelCommandLine(l: MemberLaunch, main: string): CommandLine {
  const n = l.node;
  return {
    command: process.execPath,
    args: [
      main,
      'node',
      '--name', n.name,
      '--data-dir', n.dataDir,
      '--listen-client-urls', n.clientUrl,
      '--listen-peer-urls', n.listenPeerUrl,
      '--initial-advertise-peer-urls', n.peerUrl,
      '--initial-cluster', initialClusterFlag(l.initialCluster),
      '--initial-cluster-token', l.token,
      '--initial-cluster-state', l.clusterState,
      '--heartbeat-interval', String(l.heartbeatMs),
      '--election-timeout', String(l.electionMs),
    ],
  };
}
