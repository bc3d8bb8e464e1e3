// keel txn [--interactive]: etcdctl's txn input on stdin (see txn-parse.ts), then SUCCESS or FAILURE and
// each response, as etcdctl prints them.

import type { Argv } from 'yargs';
import type { TxnRequest } from '../kv/api';
import type { CliContext, GlobalArgs, RootArgs } from './context';
import { UsageError } from './errors';
import { txnJson } from './etcdctl-json';
import { txnLines } from './etcdctl-simple';
import { LineReader } from './input';
import { readTxn, TXN_PROMPTS } from './txn-parse';

export interface TxnArgs extends GlobalArgs {
  interactive: boolean;
}

export async function txnCommand(ctx: CliContext, a: TxnArgs): Promise<number> {
  if (ctx.io.stdin === undefined) throw new UsageError('txn reads the transaction from stdin, and there is none');
  const reader = new LineReader(ctx.io.stdin);
  let req: TxnRequest;
  try {
    req = await readTxn(reader, (section) => {
      if (a.interactive) ctx.print(TXN_PROMPTS[section]);
    });
  } finally {
    reader.close();
  }
  return ctx.withClient(a, async (client) => {
    const resp = await client.txn(req);
    if (a.json) ctx.printGoJson(txnJson(resp));
    else ctx.printLines(txnLines(resp));
    return 0;
  });
}

export function registerTxnCommand(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command(
    'txn',
    'A transaction read from stdin: compares, blank line, success requests, blank line, failure requests',
    (b) =>
      b
        .option('interactive', { alias: 'i', type: 'boolean', default: false, describe: 'prompt for each section' })
        .epilogue(
          'Input (etcdctl\'s format):\n  mod("key1") > "0"\n\n  put key1 "overwrote-key1"\n\n  put key1 "created-key1"\n  put key2 "some extra key"\n\n' +
            'Compares: ver|version, c|create, m|mod, val|value, lease (hex) with =, !=, <, >. Requests: put, get, del with their flags.',
        ),
    (argv) => ctx.run(() => txnCommand(ctx, argv)),
  );
}
