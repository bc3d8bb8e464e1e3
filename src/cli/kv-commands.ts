// keel put / get / del: etcdctl's commands, flags and output (simple, or -w json / --json).

import type { Argv } from 'yargs';
import type { CliContext, GlobalArgs, RootArgs } from './context';
import { UsageError } from './errors';
import { deleteJson, putJson, rangeJson } from './etcdctl-json';
import { delLines, getLines, putLines } from './etcdctl-simple';
import { readAll } from './input';
import { buildDeleteRequest, buildPutRequest, buildRangeRequest } from './kv-requests';

export interface PutArgs extends GlobalArgs {
  key: string;
  value?: string;
  lease: string;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

const PUT_NEEDS_VALUE = 'put command needs 1 argument and input from stdin or 2 arguments';

/** The value of `put`: the argument, else all of stdin (as etcdctl, trailing newline included). */
async function putValue(ctx: CliContext, a: PutArgs): Promise<Buffer> {
  if (a.ignoreValue) {
    if (a.value !== undefined) throw new UsageError("put command needs only 1 argument when 'ignore-value' is set");
    return Buffer.alloc(0);
  }
  if (a.value !== undefined) return Buffer.from(a.value, 'utf8');
  if (ctx.io.stdin === undefined) throw new UsageError(PUT_NEEDS_VALUE);
  const v = await readAll(ctx.io.stdin);
  if (v.length === 0) throw new UsageError(PUT_NEEDS_VALUE);
  return v;
}

export async function putCommand(ctx: CliContext, a: PutArgs): Promise<number> {
  const value = await putValue(ctx, a);
  const req = buildPutRequest(a.key, value, a);
  return ctx.withClient(a, async (client) => {
    const resp = await client.put(req.key, req.value, {
      lease: req.lease,
      prevKv: req.prevKv,
      ignoreValue: req.ignoreValue,
      ignoreLease: req.ignoreLease,
    });
    if (a.json) ctx.printGoJson(putJson(resp));
    else ctx.printLines(putLines(resp));
    return 0;
  });
}

export interface GetArgs extends GlobalArgs {
  key: string;
  range_end?: string;
  prefix: boolean;
  fromKey: boolean;
  rev: number;
  limit: number;
  sortBy?: string;
  order?: string;
  keysOnly: boolean;
  countOnly: boolean;
  consistency: string;
  printValueOnly: boolean;
}

export async function getCommand(ctx: CliContext, a: GetArgs): Promise<number> {
  const req = buildRangeRequest(a.key, a.range_end, a);
  if (a.printValueOnly && a.json) throw new UsageError('--print-value-only is only for the simple output format');
  return ctx.withClient(a, async (client) => {
    const resp = await client.range(req);
    if (a.json) ctx.printGoJson(rangeJson(resp));
    // etcdctl 3.4 takes --count-only only with -w fields; Keel prints the count.
    else if (a.countOnly) ctx.print(String(resp.count));
    else ctx.printLines(getLines(resp, { valueOnly: a.printValueOnly }));
    return 0;
  });
}

export interface DelArgs extends GlobalArgs {
  key: string;
  range_end?: string;
  prefix: boolean;
  fromKey: boolean;
  prevKv: boolean;
}

export async function delCommand(ctx: CliContext, a: DelArgs): Promise<number> {
  const req = buildDeleteRequest(a.key, a.range_end, a);
  return ctx.withClient(a, async (client) => {
    const resp = await client.delete(req.key, { rangeEnd: req.rangeEnd, prevKv: req.prevKv });
    if (a.json) ctx.printGoJson(deleteJson(resp));
    else ctx.printLines(delLines(resp));
    return 0;
  });
}

const keyPositional = { type: 'string', demandOption: true, describe: 'the key (or prefix, or first key)' } as const;
const rangeEndPositional = { type: 'string', describe: 'end of the range [key, range_end), exclusive' } as const;

export function registerKvCommands(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y
    .command(
      'put <key> [value]',
      'Put a key into the store (prints OK); the value is read from stdin when not given',
      (b) =>
        b
          .positional('key', { type: 'string', demandOption: true, describe: 'the key' })
          .positional('value', { type: 'string', describe: 'the value (default: all of stdin)' })
          .option('lease', { type: 'string', default: '0', requiresArg: true, describe: 'lease ID (hex) to attach to the key' })
          .option('prev-kv', { type: 'boolean', default: false, describe: 'also print the previous key and value' })
          .option('ignore-value', { type: 'boolean', default: false, describe: 'keep the current value' })
          .option('ignore-lease', { type: 'boolean', default: false, describe: 'keep the current lease' }),
      (argv) => ctx.run(() => putCommand(ctx, argv)),
    )
    .command(
      'get <key> [range_end]',
      'Get a key or a range of keys (prints key and value lines)',
      (b) =>
        b
          .positional('key', keyPositional)
          .positional('range_end', rangeEndPositional)
          .option('prefix', { type: 'boolean', default: false, describe: 'every key with this prefix' })
          .option('from-key', { type: 'boolean', default: false, describe: 'every key >= key' })
          .option('rev', { type: 'number', default: 0, requiresArg: true, describe: 'read at this revision (0: current)' })
          .option('limit', { type: 'number', default: 0, requiresArg: true, describe: 'at most N keys (0: no limit)' })
          .option('sort-by', { type: 'string', requiresArg: true, describe: 'CREATE, KEY, MODIFY, VALUE or VERSION' })
          .option('order', { type: 'string', requiresArg: true, describe: 'ASCEND or DESCEND' })
          .option('keys-only', { type: 'boolean', default: false, describe: 'only the keys' })
          .option('count-only', { type: 'boolean', default: false, describe: 'only the number of keys' })
          .option('consistency', {
            type: 'string',
            choices: ['l', 's'],
            default: 'l',
            requiresArg: true,
            describe: 'l: linearizable, s: serializable (local, maybe stale)',
          })
          .option('print-value-only', { type: 'boolean', default: false, describe: 'only the values' }),
      (argv) => ctx.run(() => getCommand(ctx, argv)),
    )
    .command(
      'del <key> [range_end]',
      'Delete a key or a range of keys (prints the number deleted)',
      (b) =>
        b
          .positional('key', keyPositional)
          .positional('range_end', rangeEndPositional)
          .option('prefix', { type: 'boolean', default: false, describe: 'every key with this prefix' })
          .option('from-key', { type: 'boolean', default: false, describe: 'every key >= key' })
          .option('prev-kv', { type: 'boolean', default: false, describe: 'also print the deleted keys and values' }),
      (argv) => ctx.run(() => delCommand(ctx, argv)),
    );
}
