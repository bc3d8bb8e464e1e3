// keel node: run one member in the foreground until SIGINT or SIGTERM.

import path from 'node:path';
import type { Argv } from 'yargs';
import {
  DEFAULT_MEMBER_OPTIONS,
  normalizeUrl,
  parseInitialCluster,
  type InitialMember,
  type MemberOptions,
} from '../server/options';
import type { CliContext, RootArgs } from './context';
import { UsageError } from './errors';
import { errorMessage } from './format';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** etcd's limit on --election-timeout. */
export const MAX_ELECTION_TIMEOUT_MS = 50000;

/** How long a member may take to close on a signal before the process exits anyway. */
export const CLOSE_TIMEOUT_MS = 10000;

export interface NodeFlags {
  name: string;
  dataDir: string;
  listenClientUrls: string;
  listenPeerUrls: string;
  initialAdvertisePeerUrls?: string;
  initialCluster?: string;
  initialClusterToken?: string;
  snapshotCount?: number;
  snapshotCatchupEntries?: number;
  heartbeatInterval?: number;
  electionTimeout?: number;
  logLevel?: string;
  leaseCheckpointInterval?: number;
  watchProgressNotifyInterval?: number;
  initialClusterState?: string;
  quotaBackendBytes?: number;
}

function positiveInt(flag: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new UsageError(
      `${flag} must be a positive integer (got ${Number.isNaN(v) ? 'a value that is not a number' : v})`,
    );
  }
  return v;
}

function oneUrl(flag: string, raw: string): string {
  if (raw.includes(',')) {
    throw new UsageError(`${flag}: "${raw}": only one URL is supported`);
  }
  try {
    return normalizeUrl(raw.trim(), flag);
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
}

/** The member's options from `keel node` flags; throws a UsageError naming the flag that is wrong. */
export function buildMemberOptions(f: NodeFlags): MemberOptions {
  const name = f.name.trim();
  if (name === '') throw new UsageError('--name must not be empty');
  if (/[=,\s]/.test(name)) throw new UsageError(`--name "${name}" must not contain '=', ',' or spaces`);
  if (f.dataDir.trim() === '') throw new UsageError('--data-dir must not be empty');
  const listenClientUrl = oneUrl('--listen-client-urls', f.listenClientUrls);
  const listenPeerUrl = oneUrl('--listen-peer-urls', f.listenPeerUrls);
  if (listenClientUrl === listenPeerUrl) {
    throw new UsageError(`--listen-client-urls and --listen-peer-urls must differ (both are ${listenClientUrl})`);
  }
  const advertisePeerUrl =
    f.initialAdvertisePeerUrls === undefined
      ? listenPeerUrl
      : oneUrl('--initial-advertise-peer-urls', f.initialAdvertisePeerUrls);
  let initialCluster: InitialMember[];
  try {
    initialCluster = parseInitialCluster(f.initialCluster ?? `${name}=${advertisePeerUrl}`);
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
  const self = initialCluster.find((m) => m.name === name);
  if (self === undefined) {
    throw new UsageError(
      `--initial-cluster does not name this member "${name}" (it has ${initialCluster.map((m) => m.name).join(', ')})`,
    );
  }
  if (self.peerUrl !== advertisePeerUrl) {
    const flag = f.initialAdvertisePeerUrls === undefined ? '--listen-peer-urls' : '--initial-advertise-peer-urls';
    throw new UsageError(`--initial-cluster gives "${name}" the peer URL ${self.peerUrl}, but ${flag} is ${advertisePeerUrl}`);
  }
  const token = f.initialClusterToken ?? DEFAULT_MEMBER_OPTIONS.initialClusterToken;
  if (token.trim() === '') throw new UsageError('--initial-cluster-token must not be empty');
  const heartbeatIntervalMs = positiveInt(
    '--heartbeat-interval',
    f.heartbeatInterval,
    DEFAULT_MEMBER_OPTIONS.heartbeatIntervalMs,
  );
  const electionTimeoutMs = positiveInt(
    '--election-timeout',
    f.electionTimeout,
    DEFAULT_MEMBER_OPTIONS.electionTimeoutMs,
  );
  if (electionTimeoutMs < 5 * heartbeatIntervalMs) {
    throw new UsageError(
      `--election-timeout (${electionTimeoutMs} ms) must be at least 5 times --heartbeat-interval (${heartbeatIntervalMs} ms)`,
    );
  }
  if (electionTimeoutMs > MAX_ELECTION_TIMEOUT_MS) {
    throw new UsageError(`--election-timeout (${electionTimeoutMs} ms) must not exceed ${MAX_ELECTION_TIMEOUT_MS} ms`);
  }
  const logLevel = f.logLevel ?? DEFAULT_MEMBER_OPTIONS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const state = f.initialClusterState ?? DEFAULT_MEMBER_OPTIONS.initialClusterState;
  if (state !== 'new' && state !== 'existing') {
    throw new UsageError(`--initial-cluster-state must be "new" or "existing" (got "${state}")`);
  }
  if (state === 'existing' && initialCluster.length < 2) {
    throw new UsageError(
      '--initial-cluster-state existing: --initial-cluster must list the running members too (as `keel member add` prints it)',
    );
  }
  return {
    name,
    dataDir: path.resolve(f.dataDir),
    initialClusterState: state,
    quotaBackendBytes: positiveInt(
      '--quota-backend-bytes',
      f.quotaBackendBytes,
      DEFAULT_MEMBER_OPTIONS.quotaBackendBytes,
    ),
    listenClientUrl,
    listenPeerUrl,
    ...(advertisePeerUrl !== listenPeerUrl ? { advertisePeerUrl } : {}),
    initialCluster,
    initialClusterToken: token,
    snapshotCount: positiveInt('--snapshot-count', f.snapshotCount, DEFAULT_MEMBER_OPTIONS.snapshotCount),
    snapshotCatchupEntries: positiveInt(
      '--snapshot-catchup-entries',
      f.snapshotCatchupEntries,
      DEFAULT_MEMBER_OPTIONS.snapshotCatchupEntries,
    ),
    heartbeatIntervalMs,
    electionTimeoutMs,
    logLevel,
    leaseCheckpointIntervalMs: positiveInt(
      '--lease-checkpoint-interval',
      f.leaseCheckpointInterval,
      DEFAULT_MEMBER_OPTIONS.leaseCheckpointIntervalMs,
    ),
    watchProgressNotifyIntervalMs: positiveInt(
      '--watch-progress-notify-interval',
      f.watchProgressNotifyInterval,
      DEFAULT_MEMBER_OPTIONS.watchProgressNotifyIntervalMs,
    ),
  };
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export async function nodeCommand(ctx: CliContext, f: NodeFlags): Promise<number> {
  const opts = buildMemberOptions(f);
  // Installed before the member starts, so that a signal during start-up still closes it cleanly.
  let onSignal: (sig: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<NodeJS.Signals>((resolve) => {
    onSignal = resolve;
  });
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  try {
    // Loaded here: the CLI's other commands do not need the server (nor pino).
    const { default: pino } = await import('pino');
    const logger = pino(
      { level: opts.logLevel, base: { pid: process.pid } },
      pino.destination({ dest: 1, sync: true }),
    );
    const { startMember } = await import('../server/member');
    const member = await startMember(opts, logger);
    logger.info({ clientUrl: member.clientUrl }, `member ${opts.name} started`);
    const why = await Promise.race([stopped, member.removed.then(() => 'removed' as const)]);
    if (why === 'removed') {
      // etcd exits too: a removed member's data dir can never serve again.
      logger.error(`member ${opts.name} was removed from the cluster; stopping`);
    } else {
      logger.info(`${why} received: closing member ${opts.name}`);
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), CLOSE_TIMEOUT_MS);
    });
    try {
      const r = await Promise.race([member.close().then(() => 'closed' as const), timedOut]);
      if (r === 'timeout') {
        ctx.warn(`Error: member ${opts.name} did not close within ${CLOSE_TIMEOUT_MS} ms; exiting anyway`);
        return 1;
      }
    } finally {
      clearTimeout(timer);
    }
    logger.info(`member ${opts.name} closed`);
    return 0;
  } finally {
    for (const s of STOP_SIGNALS) process.off(s, onSignal);
  }
}

export function registerNodeCommand(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command(
    'node',
    'Run one member in the foreground (until SIGINT or SIGTERM)',
    (b) =>
      b
        .option('name', {
          type: 'string',
          demandOption: true,
          requiresArg: true,
          describe: "this member's name, as in --initial-cluster",
        })
        .option('data-dir', {
          type: 'string',
          demandOption: true,
          requiresArg: true,
          describe: 'where the member keeps its WAL, snapshots and store',
        })
        .option('listen-client-urls', {
          type: 'string',
          default: 'http://127.0.0.1:2379',
          requiresArg: true,
          describe: 'URL for clients (one)',
        })
        .option('listen-peer-urls', {
          type: 'string',
          default: 'http://127.0.0.1:2380',
          requiresArg: true,
          describe: 'URL for the other members (one)',
        })
        .option('initial-advertise-peer-urls', {
          type: 'string',
          requiresArg: true,
          describe: 'the peer URL the other members dial, when it differs from --listen-peer-urls (a proxy, a NAT)',
        })
        .option('initial-cluster', {
          type: 'string',
          requiresArg: true,
          describe: 'every member of a new cluster: n1=PEER-URL,n2=PEER-URL,... (default: NAME=--listen-peer-urls)',
        })
        .option('initial-cluster-token', {
          type: 'string',
          requiresArg: true,
          describe: `mixed into the cluster and member ids (default ${DEFAULT_MEMBER_OPTIONS.initialClusterToken})`,
        })
        .option('snapshot-count', {
          type: 'number',
          requiresArg: true,
          describe: `applied entries between snapshots (default ${DEFAULT_MEMBER_OPTIONS.snapshotCount})`,
        })
        .option('snapshot-catchup-entries', {
          type: 'number',
          requiresArg: true,
          describe: `log entries kept behind a snapshot (default ${DEFAULT_MEMBER_OPTIONS.snapshotCatchupEntries})`,
        })
        .option('heartbeat-interval', {
          type: 'number',
          requiresArg: true,
          describe: `ms per Raft tick and heartbeat (default ${DEFAULT_MEMBER_OPTIONS.heartbeatIntervalMs})`,
        })
        .option('election-timeout', {
          type: 'number',
          requiresArg: true,
          describe: `ms before a follower campaigns, >= 5x heartbeat (default ${DEFAULT_MEMBER_OPTIONS.electionTimeoutMs})`,
        })
        .option('lease-checkpoint-interval', {
          type: 'number',
          requiresArg: true,
          describe: `ms between checkpoints of lease TTLs through the log (default ${DEFAULT_MEMBER_OPTIONS.leaseCheckpointIntervalMs})`,
        })
        .option('watch-progress-notify-interval', {
          type: 'number',
          requiresArg: true,
          describe: `ms between progress notifications to watches that ask (default ${DEFAULT_MEMBER_OPTIONS.watchProgressNotifyIntervalMs})`,
        })
        .option('initial-cluster-state', {
          type: 'string',
          requiresArg: true,
          describe: '"new" (a founding member) or "existing" (a member added with `keel member add`; default new)',
        })
        .option('quota-backend-bytes', {
          type: 'number',
          requiresArg: true,
          describe: `backend size that raises a NOSPACE alarm (default ${DEFAULT_MEMBER_OPTIONS.quotaBackendBytes})`,
        })
        .option('log-level', {
          type: 'string',
          requiresArg: true,
          describe: `${LOG_LEVELS.join('|')} (default ${DEFAULT_MEMBER_OPTIONS.logLevel})`,
        }),
    (argv) => ctx.run(() => nodeCommand(ctx, argv)),
  );
}
