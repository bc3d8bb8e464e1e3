// keel put / get / del: etcdctl's commands, output and flags.

import type { Argv } from 'yargs';
import type { KeyValue } from '../kv/api';
import { deleteRangeResponseToJson, putResponseToJson, rangeResponseToJson } from '../kv/gateway-json';
import { keyRange } from '../client/keys';
import { clientFor, type CliContext, type GlobalArgs, type RootArgs } from './context';
import { UsageError } from './errors';

function printKv(ctx: CliContext, kv: KeyValue, opts: { keysOnly?: boolean; valueOnly?: boolean } = {}): void {
  if (opts.valueOnly !== true) ctx.print(kv.key);
  if (opts.keysOnly !== true) ctx.print(kv.value);
}

export interface PutArgs extends GlobalArgs {
  key: string;
  value: string;
  prevKv: boolean;
}

export async function putCommand(ctx: CliContext, a: PutArgs): Promise<number> {
  const client = clientFor(a);
  const resp = await client.put(a.key, a.value, { prevKv: a.prevKv });
  if (a.json) {
    ctx.printJson(putResponseToJson(resp));
    return 0;
  }
  ctx.print('OK');
  if (a.prevKv && resp.prevKv !== undefined) printKv(ctx, resp.prevKv);
  return 0;
}

export interface GetArgs extends GlobalArgs {
  key: string;
  prefix: boolean;
  fromKey: boolean;
  limit: number;
  keysOnly: boolean;
  countOnly: boolean;
  consistency: string;
  printValueOnly: boolean;
}

function checkRangeFlags(a: { prefix: boolean; fromKey: boolean }): void {
  if (a.prefix && a.fromKey) throw new UsageError('--prefix and --from-key cannot be used together');
}

export async function getCommand(ctx: CliContext, a: GetArgs): Promise<number> {
  checkRangeFlags(a);
  if (!Number.isSafeInteger(a.limit) || a.limit < 0) {
    throw new UsageError(`--limit must be a non-negative integer (got ${a.limit})`);
  }
  const client = clientFor(a);
  const r = keyRange(a.key, { prefix: a.prefix, fromKey: a.fromKey });
  const resp = await client.range({
    key: r.key,
    rangeEnd: r.rangeEnd,
    limit: a.limit,
    keysOnly: a.keysOnly,
    countOnly: a.countOnly,
    serializable: a.consistency === 's',
  });
  if (a.json) {
    ctx.printJson(rangeResponseToJson(resp));
    return 0;
  }
  if (a.countOnly) {
    ctx.print(String(resp.count));
    return 0;
  }
  for (const kv of resp.kvs) printKv(ctx, kv, { keysOnly: a.keysOnly, valueOnly: a.printValueOnly });
  return 0;
}

export interface DelArgs extends GlobalArgs {
  key: string;
  prefix: boolean;
  fromKey: boolean;
  prevKv: boolean;
}

export async function delCommand(ctx: CliContext, a: DelArgs): Promise<number> {
  checkRangeFlags(a);
  const client = clientFor(a);
  const r = keyRange(a.key, { prefix: a.prefix, fromKey: a.fromKey });
  const resp = await client.deleteRange({ key: r.key, rangeEnd: r.rangeEnd, prevKv: a.prevKv });
  if (a.json) {
    ctx.printJson(deleteRangeResponseToJson(resp));
    return 0;
  }
  ctx.print(String(resp.deleted));
  if (a.prevKv) for (const kv of resp.prevKvs) printKv(ctx, kv);
  return 0;
}

export function registerKvCommands(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y
    .command(
      'put <key> <value>',
      'Put a key into the store (prints OK)',
      (b) =>
        b
          .positional('key', { type: 'string', demandOption: true, describe: 'the key' })
          .positional('value', { type: 'string', demandOption: true, describe: 'the value' })
          .option('prev-kv', { type: 'boolean', default: false, describe: 'also print the previous key and value' }),
      (argv) => ctx.run(() => putCommand(ctx, argv)),
    )
    .command(
      'get <key>',
      'Get a key or a range of keys (prints key and value lines)',
      (b) =>
        b
          .positional('key', { type: 'string', demandOption: true, describe: 'the key (or prefix, or first key)' })
          .option('prefix', { type: 'boolean', default: false, describe: 'every key with this prefix' })
          .option('from-key', { type: 'boolean', default: false, describe: 'every key >= key' })
          .option('limit', { type: 'number', default: 0, requiresArg: true, describe: 'at most N keys (0: no limit)' })
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
      'del <key>',
      'Delete a key or a range of keys (prints the number deleted)',
      (b) =>
        b
          .positional('key', { type: 'string', demandOption: true, describe: 'the key (or prefix, or first key)' })
          .option('prefix', { type: 'boolean', default: false, describe: 'every key with this prefix' })
          .option('from-key', { type: 'boolean', default: false, describe: 'every key >= key' })
          .option('prev-kv', { type: 'boolean', default: false, describe: 'also print the deleted keys and values' }),
      (argv) => ctx.run(() => delCommand(ctx, argv)),
    );
}
