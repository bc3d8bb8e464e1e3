// keel watch: etcdctl's `watch KEY [RANGE_END] [--prefix] [--rev R] [--prev-kv] [--progress-notify]`.
// Prints every event as etcdctl does (PUT|DELETE, [prev key, prev value,] key, value) until stopped
// (SIGINT / SIGTERM, or the io's signal in tests), or --max-events N (Keel's addition). A watch the server
// cancels (its revision was compacted) ends the command with etcdctl's two messages and exit 1.

import type { Argv } from 'yargs';
import type { Event } from '../kv/api';
import type { WatchEndError } from '../client/kv-client';
import type { CliContext, GlobalArgs, RootArgs } from './context';
import { UsageError } from './errors';
import { watchJson } from './etcdctl-json';
import { progressLine, watchCanceledLine, watchEventLines } from './etcdctl-simple';
import { checkNonNegativeInt, rangeOf } from './kv-requests';
import { stopHandle, whenAborted } from './stop';

export interface WatchArgs extends GlobalArgs {
  key: string;
  range_end?: string;
  prefix: boolean;
  rev: number;
  prevKv: boolean;
  progressNotify: boolean;
  maxEvents?: number;
}

type WatchOutcome =
  | { kind: 'ended'; error: WatchEndError | undefined }
  | { kind: 'stopped' }
  | { kind: 'max-events' }
  | { kind: 'failed'; error: unknown };

/** etcdctl's final error after a watch the server canceled. */
export const WATCH_CANCELED_BY_SERVER = 'watch is canceled by the server';

export async function watchCommand(ctx: CliContext, a: WatchArgs): Promise<number> {
  if (a.range_end !== undefined && a.prefix) throw new UsageError('`range_end` and `--prefix` are mutually exclusive');
  const range = rangeOf(a.key, a.range_end, { prefix: a.prefix });
  const startRevision = checkNonNegativeInt('--rev', a.rev);
  let maxEvents: number | undefined;
  if (a.maxEvents !== undefined) {
    maxEvents = checkNonNegativeInt('--max-events', a.maxEvents);
    if (maxEvents === 0) throw new UsageError('--max-events must be at least 1');
  }
  const stop = stopHandle(ctx.io);
  try {
    return await ctx.withClient(a, async (client) => {
      let printed = 0;
      let reachedMax: () => void = () => {};
      const maxReached = new Promise<WatchOutcome>((resolve) => {
        reachedMax = () => resolve({ kind: 'max-events' });
      });
      const printEvents = (events: readonly Event[], revision: number): void => {
        if (maxEvents !== undefined && printed >= maxEvents) return;
        const shown = maxEvents === undefined ? events : events.slice(0, maxEvents - printed);
        if (a.json) ctx.printGoJson(watchJson({ revision, events: shown }));
        else ctx.printLines(watchEventLines(shown));
        printed += shown.length;
        if (maxEvents !== undefined && printed >= maxEvents) reachedMax();
      };
      const w = client.watch(
        range.key,
        { rangeEnd: range.rangeEnd, startRevision, prevKv: a.prevKv, progressNotify: a.progressNotify },
        {
          onEvents: printEvents,
          onProgress: (revision) => {
            // etcdctl 3.5 prints this line even with -w json; Keel keeps the JSON output pure JSON.
            if (a.json) ctx.printGoJson(watchJson({ revision, events: [] }));
            else ctx.print(progressLine(revision));
          },
        },
      );
      const never = new Promise<WatchOutcome>(() => {});
      const outcome = await Promise.race<WatchOutcome>([
        w.done.then((error) => ({ kind: 'ended', error })),
        // A watch that cannot be created ends the command with the reason.
        w.created.then(
          () => never,
          (error: unknown) => ({ kind: 'failed', error }),
        ),
        whenAborted(stop.signal).then(() => ({ kind: 'stopped' })),
        maxReached,
      ]);
      if (outcome.kind !== 'ended') await w.cancel().catch(() => {});
      switch (outcome.kind) {
        case 'stopped':
        case 'max-events':
          return 0;
        case 'failed':
          throw outcome.error;
        case 'ended': {
          const err = outcome.error;
          if (a.json) {
            ctx.printGoJson(watchJson({ revision: 0, events: [], canceled: true, compactRevision: err?.compactRevision }));
          }
          if (err !== undefined) ctx.warn(watchCanceledLine(err.message));
          throw new Error(WATCH_CANCELED_BY_SERVER);
        }
      }
    });
  } finally {
    stop.dispose();
  }
}

export function registerWatchCommand(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command(
    'watch <key> [range_end]',
    'Watch a key or a range of keys: prints each event (until Ctrl-C)',
    (b) =>
      b
        .positional('key', { type: 'string', demandOption: true, describe: 'the key (or prefix, or first key)' })
        .positional('range_end', { type: 'string', describe: 'end of the range [key, range_end), exclusive' })
        .option('prefix', { type: 'boolean', default: false, describe: 'every key with this prefix' })
        .option('rev', { type: 'number', default: 0, requiresArg: true, describe: 'revision to start watching from (0: the next)' })
        .option('prev-kv', { type: 'boolean', default: false, describe: 'also print the key-value before each event' })
        .option('progress-notify', { type: 'boolean', default: false, describe: 'print periodic progress notifications' })
        .option('max-events', { type: 'number', requiresArg: true, describe: 'stop after N events (Keel)' }),
    (argv) => ctx.run(() => watchCommand(ctx, argv)),
  );
}
