// keel snapshot save | status | restore: etcdctl's backup commands (etcd 3.4, where restore and status are
// still etcdctl's, not etcdutl's).
//
// - save FILE: the backup of one member (the first healthy one of --endpoints, see snapshot-download.ts),
//   verified and fsynced, then "Snapshot saved at FILE".
// - status FILE: verifies the file, then etcdctl's four columns. HASH is the CRC-32C (Castagnoli, as etcd's
//   hash) of the store dump, in hex; REVISION the store's revision; TOTAL KEYS the live keys (etcd counts
//   every pair of every bolt bucket, history included, which says little about the data: Keel counts keys);
//   TOTAL SIZE the bytes of the dump (etcd: of the bolt db inside the file), in go-humanize's units.
// - restore FILE --name N --initial-cluster ... --data-dir D: builds D for a member of a new cluster
//   (src/server/restore.ts).

import type { Argv } from 'yargs';
import { readBackupFile } from '../server/backup-file';
import { DEFAULT_MEMBER_OPTIONS, normalizeUrl, parseInitialCluster, type InitialMember } from '../server/options';
import { restoreDataDir } from '../server/restore';
import { crc32c } from '../util/crc32c';
import { checkTimeout, parseEndpoints, type CliContext, type GlobalArgs, type RootArgs } from './context';
import { UsageError } from './errors';
import { errorMessage, humanBytes, renderTable } from './format';
import { downloadSnapshot, pickSnapshotEndpoint } from './snapshot-download';

interface FileArgs extends GlobalArgs {
  file: string;
  'write-out'?: string;
}

export interface RestoreArgs extends FileArgs {
  name: string;
  dataDir: string;
  initialCluster?: string;
  initialClusterToken?: string;
  initialAdvertisePeerUrls?: string;
}

/** etcdctl's snapshot status (its dbstatus struct, with its JSON names). */
export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
}

export const STATUS_HEADERS = ['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'];

function fileArg(file: string): string {
  if (file.trim() === '') throw new UsageError('the snapshot file name must not be empty');
  return file;
}

export async function snapshotSaveCommand(ctx: CliContext, a: FileArgs): Promise<number> {
  const file = fileArg(a.file);
  const timeoutMs = checkTimeout(a.commandTimeout);
  const endpoint = await pickSnapshotEndpoint(parseEndpoints(a.endpoints), timeoutMs, (l) => ctx.warn(l));
  await downloadSnapshot(endpoint, file, timeoutMs);
  ctx.print(`Snapshot saved at ${file}`);
  return 0;
}

/** Reads and verifies a backup file and sums it up as etcdctl does. */
export async function snapshotStatusOf(file: string): Promise<SnapshotStatus> {
  const { data, summary } = await readBackupFile(file);
  return { hash: crc32c(data), revision: summary.revision, totalKey: summary.keys, totalSize: data.length };
}

export function statusRow(s: SnapshotStatus): string[] {
  return [s.hash.toString(16), String(s.revision), String(s.totalKey), humanBytes(s.totalSize)];
}

export async function snapshotStatusCommand(ctx: CliContext, a: FileArgs): Promise<number> {
  const s = await snapshotStatusOf(fileArg(a.file));
  if (a.json) ctx.printJson({ hash: s.hash, revision: s.revision, totalKey: s.totalKey, totalSize: s.totalSize });
  else if (a['write-out'] === 'table') ctx.io.out(renderTable(STATUS_HEADERS, [statusRow(s)]));
  else ctx.print(statusRow(s).join(', '));
  return 0;
}

function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError(errorMessage(e));
  }
}

/** The new cluster from the flags, as `keel node` reads them; throws a UsageError naming the flag. */
export function restoreCluster(a: RestoreArgs): { name: string; initialCluster: InitialMember[]; token: string } {
  const name = a.name.trim();
  if (name === '') throw new UsageError('--name must not be empty');
  if (/[=,\s]/.test(name)) throw new UsageError(`--name "${name}" must not contain '=', ',' or spaces`);
  let advertised: string | undefined;
  if (a.initialAdvertisePeerUrls !== undefined) {
    const raw = a.initialAdvertisePeerUrls;
    if (raw.includes(',')) throw new UsageError(`--initial-advertise-peer-urls: "${raw}": only one URL is supported`);
    advertised = usage(() => normalizeUrl(raw.trim(), '--initial-advertise-peer-urls'));
  }
  if (a.initialCluster === undefined && advertised === undefined) {
    throw new UsageError('snapshot restore needs --initial-cluster (or --initial-advertise-peer-urls for a one-member cluster)');
  }
  const initialCluster = usage(() => parseInitialCluster(a.initialCluster ?? `${name}=${advertised}`));
  const self = initialCluster.find((m) => m.name === name);
  if (self === undefined) {
    throw new UsageError(
      `--initial-cluster does not name this member "${name}" (it has ${initialCluster.map((m) => m.name).join(', ')})`,
    );
  }
  if (advertised !== undefined && advertised !== self.peerUrl) {
    throw new UsageError(
      `--initial-cluster gives "${name}" the peer URL ${self.peerUrl}, but --initial-advertise-peer-urls is ${advertised}`,
    );
  }
  const token = a.initialClusterToken ?? DEFAULT_MEMBER_OPTIONS.initialClusterToken;
  if (token.trim() === '') throw new UsageError('--initial-cluster-token must not be empty');
  return { name, initialCluster, token };
}

export async function snapshotRestoreCommand(ctx: CliContext, a: RestoreArgs): Promise<number> {
  const file = fileArg(a.file);
  const { name, initialCluster, token } = restoreCluster(a);
  if (a.dataDir.trim() === '') throw new UsageError('--data-dir must not be empty');
  const backup = await readBackupFile(file);
  const r = await restoreDataDir({ backup, name, initialCluster, initialClusterToken: token, dataDir: a.dataDir });
  if (a.json) {
    ctx.printJson({
      dataDir: r.dataDir,
      name: r.name,
      memberId: r.memberId,
      clusterId: r.clusterId,
      revision: r.revision,
      raftIndex: r.index,
      raftTerm: r.term,
    });
  } else {
    ctx.print(
      `Restored snapshot ${file} to ${r.dataDir}: member ${r.name} (${r.memberId}) of new cluster ${r.clusterId}, ` +
        `revision ${r.revision}, raft index ${r.index}`,
    );
  }
  return 0;
}

const filePositional = { type: 'string', demandOption: true, describe: 'the snapshot file' } as const;

export function registerSnapshotCommands(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command('snapshot', 'Back up a member to a file, check a backup, restore one into a new data dir', (b) =>
    b
      .command(
        'save <file>',
        'Store a snapshot of one member (the first healthy one of --endpoints) in FILE',
        (c) => c.positional('file', filePositional),
        (argv) => ctx.run(() => snapshotSaveCommand(ctx, argv)),
      )
      .command(
        'status <file>',
        'Verify FILE and print its hash, revision, total keys and total size (-w simple|table|json)',
        // etcdctl's table format, which only this command of Keel's has: added to the global -w's choices here.
        (c) => c.positional('file', filePositional).choices('write-out', ['table']),
        (argv) => ctx.run(() => snapshotStatusCommand(ctx, argv)),
      )
      .command(
        'restore <file>',
        'Build the data dir of one member of a new cluster from FILE (run once per member)',
        (c) =>
          c
            .positional('file', filePositional)
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
              describe: 'the data dir to build (must not exist, or be empty)',
            })
            .option('initial-cluster', {
              type: 'string',
              requiresArg: true,
              describe: 'every member of the new cluster: n1=PEER-URL,n2=PEER-URL,...',
            })
            .option('initial-cluster-token', {
              type: 'string',
              requiresArg: true,
              describe: `the new cluster's token (default ${DEFAULT_MEMBER_OPTIONS.initialClusterToken})`,
            })
            .option('initial-advertise-peer-urls', {
              type: 'string',
              requiresArg: true,
              describe: "this member's peer URL (default: its URL in --initial-cluster)",
            }),
        (argv) => ctx.run(() => snapshotRestoreCommand(ctx, argv)),
      )
      .demandCommand(1, "keel snapshot needs a subcommand: 'save', 'status' or 'restore'"),
  );
}
