// The `keel` command line: yargs parsing, then the command's handler; returns the exit code.

import type { Argv } from 'yargs';
import yargs from 'yargs/yargs';
import { registerAlarmCommands } from './alarm-commands';
import { registerClusterCommands } from './cluster-commands';
import { registerCompactionCommand } from './compaction-command';
import {
  CliContext,
  DEFAULT_COMMAND_TIMEOUT_MS,
  DEFAULT_ENDPOINT,
  TRANSPORTS,
  type CliDeps,
  type RootArgs,
} from './context';
import { registerEndpointCommands } from './endpoint-commands';
import { EXIT_USAGE } from './errors';
import type { CliIo } from './io';
import { registerKvCommands } from './kv-commands';
import { registerLeaseCommands } from './lease-commands';
import { registerMemberCommands } from './member-commands';
import { registerNodeCommand } from './node-command';
import { registerMoveLeaderCommand } from './move-leader-command';
import { registerSnapshotCommands } from './snapshot-commands';
import { registerTxnCommand } from './txn-command';
import { registerWatchCommand } from './watch-command';

export const VERSION = '0.1.0';

/** A usage error found by yargs (unknown command or flag, missing argument, bad choice). */
class YargsUsageError extends Error {}

/** etcdctl's output formats that Keel has (-w / --write-out); json is also --json. */
const WRITE_OUT = ['simple', 'json'] as const;

export async function runCli(args: string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  const ctx = new CliContext(io, deps);
  const root = yargs(args)
    .scriptName('keel')
    .usage('$0 <command> [options]\n\nKeel: a Raft key-value store with the commands of etcdctl.')
    .option('endpoints', {
      type: 'string',
      default: io.env.KEEL_ENDPOINTS ?? DEFAULT_ENDPOINT,
      requiresArg: true,
      describe: 'client URLs of the members, comma-separated (env KEEL_ENDPOINTS)',
    })
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON (same as -w json)' })
    .option('write-out', {
      alias: 'w',
      type: 'string',
      choices: WRITE_OUT,
      default: 'simple',
      requiresArg: true,
      describe: "output format, as etcdctl's (json: etcdctl's -w json)",
    })
    .option('transport', {
      type: 'string',
      choices: TRANSPORTS,
      default: 'stream',
      requiresArg: true,
      describe: 'how the store commands reach the members: stream (native WebSocket) or http (etcd JSON gateway)',
    })
    .option('command-timeout', {
      type: 'number',
      default: DEFAULT_COMMAND_TIMEOUT_MS,
      requiresArg: true,
      describe: 'ms to wait for a member to answer a request',
    });
  let parser: Argv<RootArgs> = root.middleware((argv) => {
    // One switch for the commands: -w json and --json mean the same.
    if (argv['write-out'] === 'json') argv.json = true;
  }, true);
  parser = registerNodeCommand(parser, ctx);
  parser = registerKvCommands(parser, ctx);
  parser = registerWatchCommand(parser, ctx);
  parser = registerTxnCommand(parser, ctx);
  parser = registerCompactionCommand(parser, ctx);
  parser = registerLeaseCommands(parser, ctx);
  parser = registerEndpointCommands(parser, ctx);
  parser = registerClusterCommands(parser, ctx);
  parser = registerSnapshotCommands(parser, ctx);
  parser = registerMoveLeaderCommand(parser, ctx);
  parser = registerMemberCommands(parser, ctx);
  parser = registerAlarmCommands(parser, ctx);
  parser = parser
    .demandCommand(1, 'keel needs a command')
    .recommendCommands()
    .strict()
    .version(VERSION)
    .help()
    .alias('h', 'help')
    .wrap(Math.min(120, process.stdout.columns ?? 100))
    .exitProcess(false)
    .fail((msg: string | null, err: Error | undefined) => {
      // yargs reports some usage errors (e.g. a flag without its value) as a YError rather than a message.
      if (err !== undefined && err !== null && err.name !== 'YError') throw err;
      throw new YargsUsageError(msg ?? err?.message ?? 'usage error');
    });
  try {
    let output = '';
    await parser.parseAsync(args, {}, (_err: Error | undefined, _argv: unknown, out: string) => {
      output = out;
    });
    if (output !== '') io.out(output.endsWith('\n') ? output : output + '\n');
  } catch (e) {
    if (e instanceof YargsUsageError) {
      ctx.reportUsageError(e.message);
      return EXIT_USAGE;
    }
    throw e;
  }
  return ctx.exitCode;
}
