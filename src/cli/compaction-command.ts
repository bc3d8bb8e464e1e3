// keel compaction REV [--physical]: etcdctl's command and its line, "compacted revision REV".

import type { Argv } from 'yargs';
import type { CliContext, GlobalArgs, RootArgs } from './context';
import { UsageError } from './errors';
import { compactionJson } from './etcdctl-json';
import { compactionLine } from './etcdctl-simple';

export interface CompactionArgs extends GlobalArgs {
  revision: string;
  physical: boolean;
}

/** The revision argument: a positive decimal integer (etcdctl parses an int64). */
export function parseRevision(s: string): number {
  const v = /^[0-9]+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new UsageError(`compaction needs a revision, a positive integer (got ${JSON.stringify(s)})`);
  }
  return v;
}

export async function compactionCommand(ctx: CliContext, a: CompactionArgs): Promise<number> {
  const revision = parseRevision(a.revision);
  return ctx.withClient(a, async (client) => {
    const resp = await client.compact(revision, { physical: a.physical });
    if (a.json) ctx.printGoJson(compactionJson(resp));
    else ctx.print(compactionLine(revision));
    return 0;
  });
}

export function registerCompactionCommand(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command(
    'compaction <revision>',
    'Compact the history: revisions below REV are dropped',
    (b) =>
      b
        .positional('revision', { type: 'string', demandOption: true, describe: 'the revision to compact to' })
        .option('physical', {
          type: 'boolean',
          default: false,
          describe: 'wait until the old revisions are physically removed',
        }),
    (argv) => ctx.run(() => compactionCommand(ctx, argv)),
  );
}
