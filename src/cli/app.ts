// The `keel` command line: yargs parsing, then the command's handler; returns the exit code.

import type { Argv } from 'yargs';
import yargs from 'yargs/yargs';
import { registerClusterCommands } from './cluster-commands';
import { CliContext, DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_ENDPOINT, type RootArgs } from './context';
import { registerEndpointCommands } from './endpoint-commands';
import { EXIT_USAGE } from './errors';
import type { CliIo } from './io';
import { registerKvCommands } from './kv-commands';
import { registerNodeCommand } from './node-command';

export const VERSION = '0.1.0';

/** A usage error found by yargs (unknown command or flag, missing argument, bad choice). */
class YargsUsageError extends Error {}

export async function runCli(args: string[], io: CliIo): Promise<number> {
  const ctx = new CliContext(io);
  const root = yargs(args)
    .scriptName('keel')
    .usage('$0 <command> [options]\n\nKeel: a Raft key-value store with the commands of etcdctl.')
    .option('endpoints', {
      type: 'string',
      default: io.env.KEEL_ENDPOINTS ?? DEFAULT_ENDPOINT,
      requiresArg: true,
      describe: 'client URLs of the members, comma-separated (env KEEL_ENDPOINTS)',
    })
    .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' })
    .option('command-timeout', {
      type: 'number',
      default: DEFAULT_COMMAND_TIMEOUT_MS,
      requiresArg: true,
      describe: 'ms to wait for a member to answer a request',
    });
  let parser: Argv<RootArgs> = root;
  parser = registerNodeCommand(parser, ctx);
  parser = registerKvCommands(parser, ctx);
  parser = registerEndpointCommands(parser, ctx);
  parser = registerClusterCommands(parser, ctx);
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
