// keel lease grant|revoke|keep-alive|timetolive|list: etcdctl's commands, lines and lease ids in hex.

import type { Argv } from 'yargs';
import { OutcomeUnknownError } from '../client/kv-client';
import { Errors, GrpcCode, KvError } from '../kv/api';
import type { CliContext, GlobalArgs, RootArgs } from './context';
import { UsageError } from './errors';
import {
  leaseGrantJson,
  leaseKeepAliveJson,
  leaseLeasesJson,
  leaseRevokeJson,
  leaseTimeToLiveJson,
} from './etcdctl-json';
import {
  leaseExpiredOrRevokedLine,
  leaseGrantLine,
  leaseKeepAliveLine,
  leaseListLines,
  leaseRevokeLine,
  leaseTimeToLiveLine,
} from './etcdctl-simple';
import { errorMessage } from './format';
import { parseLeaseHex } from './kv-requests';
import { sleepUnlessAborted, stopHandle, whenAborted } from './stop';

/** etcdctl's "failed to grant lease (...)": the cause in parentheses, keeping an unknown outcome one. */
function failed(what: string, e: unknown): Error {
  const message = `failed to ${what} lease (${errorMessage(e)})`;
  if (e instanceof OutcomeUnknownError) return new OutcomeUnknownError(message, e);
  if (e instanceof KvError) return new KvError(e.code, message);
  return new Error(message);
}

function parseTtl(s: string): number {
  const v = /^[+-]?[0-9]+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(v)) throw new UsageError(`bad TTL ${JSON.stringify(s)}: expected an integer number of seconds`);
  return v;
}

export interface LeaseGrantArgs extends GlobalArgs {
  ttl: string;
}

export async function leaseGrantCommand(ctx: CliContext, a: LeaseGrantArgs): Promise<number> {
  const ttl = parseTtl(a.ttl);
  return ctx.withClient(a, async (client) => {
    const resp = await client.leaseGrant(ttl).catch((e: unknown) => {
      throw failed('grant', e);
    });
    if (a.json) ctx.printGoJson(leaseGrantJson(resp));
    else ctx.print(leaseGrantLine(resp));
    return 0;
  });
}

export interface LeaseIdArgs extends GlobalArgs {
  leaseId: string;
}

export async function leaseRevokeCommand(ctx: CliContext, a: LeaseIdArgs): Promise<number> {
  const id = parseLeaseHex(a.leaseId, 'argument');
  return ctx.withClient(a, async (client) => {
    const resp = await client.leaseRevoke(id).catch((e: unknown) => {
      throw failed('revoke', e);
    });
    if (a.json) ctx.printGoJson(leaseRevokeJson(resp));
    else ctx.print(leaseRevokeLine(id));
    return 0;
  });
}

export interface LeaseTimeToLiveArgs extends LeaseIdArgs {
  keys: boolean;
}

export async function leaseTimeToLiveCommand(ctx: CliContext, a: LeaseTimeToLiveArgs): Promise<number> {
  const id = parseLeaseHex(a.leaseId, 'argument');
  return ctx.withClient(a, async (client) => {
    const resp = await client.leaseTimeToLive(id, { keys: a.keys });
    if (a.json) ctx.printGoJson(leaseTimeToLiveJson(resp));
    else ctx.print(leaseTimeToLiveLine(resp, a.keys));
    return 0;
  });
}

export async function leaseListCommand(ctx: CliContext, a: GlobalArgs): Promise<number> {
  return ctx.withClient(a, async (client) => {
    const resp = await client.leaseLeases();
    if (a.json) ctx.printGoJson(leaseLeasesJson(resp));
    else ctx.printLines(leaseListLines(resp));
    return 0;
  });
}

export interface LeaseKeepAliveArgs extends LeaseIdArgs {
  once: boolean;
}

/** Until the first answer tells the TTL, a failing keep-alive gives up after this long (the Go client's
 *  defaultTTL). */
const DEFAULT_TTL_S = 5;
/** Wait between attempts after a failed keep-alive (the Go client's retryConnWait). */
const RETRY_MS = 500;

export async function leaseKeepAliveCommand(ctx: CliContext, a: LeaseKeepAliveArgs): Promise<number> {
  const id = parseLeaseHex(a.leaseId, 'argument');
  const print = (r: Parameters<typeof leaseKeepAliveLine>[0]): void => {
    if (a.json) ctx.printGoJson(leaseKeepAliveJson(r));
    else ctx.print(leaseKeepAliveLine(r));
  };
  if (a.once) {
    return ctx.withClient(a, async (client) => {
      const resp = await client.leaseKeepAliveOnce(id);
      // As the Go client's KeepAliveOnce: a TTL of 0 means the lease is gone.
      if (resp.ttl <= 0) throw Errors.leaseNotFound();
      print(resp);
      return 0;
    });
  }
  const stop = stopHandle(ctx.io);
  try {
    return await ctx.withClient(a, async (client) => {
      // As the Go client's KeepAlive: renew every TTL/3; the lease is taken as lost when it is reported gone
      // or when no renewal succeeded for a whole TTL. etcdctl then prints "expired or revoked." and exits 0;
      // Keel prints the same line but exits 1, so that a script notices.
      let ttlS = DEFAULT_TTL_S;
      let lastRenewal = Date.now();
      for (;;) {
        if (stop.signal.aborted) return 0;
        const attempt = client.leaseKeepAliveOnce(id).then(
          (resp) => ({ ok: true as const, resp }),
          (error: unknown) => ({ ok: false as const, error }),
        );
        const r = await Promise.race([attempt, whenAborted(stop.signal).then(() => undefined)]);
        if (r === undefined) return 0;
        let waitMs: number;
        if (r.ok) {
          if (r.resp.ttl <= 0) {
            ctx.print(leaseExpiredOrRevokedLine(id));
            return 1;
          }
          print(r.resp);
          ttlS = r.resp.ttl;
          lastRenewal = Date.now();
          waitMs = Math.max((ttlS * 1000) / 3, 100);
        } else {
          if (r.error instanceof KvError && r.error.code === GrpcCode.NotFound) {
            ctx.print(leaseExpiredOrRevokedLine(id));
            return 1;
          }
          if (Date.now() - lastRenewal >= ttlS * 1000) {
            ctx.warn(`keep-alive of lease ${a.leaseId} failed for ${ttlS}s: ${errorMessage(r.error)}`);
            ctx.print(leaseExpiredOrRevokedLine(id));
            return 1;
          }
          ctx.warn(`keep-alive of lease ${a.leaseId} failed (retrying): ${errorMessage(r.error)}`);
          waitMs = RETRY_MS;
        }
        if (await sleepUnlessAborted(waitMs, stop.signal)) return 0;
      }
    });
  } finally {
    stop.dispose();
  }
}

const leaseIdPositional = { type: 'string', demandOption: true, describe: 'the lease ID (hex)' } as const;

export function registerLeaseCommands(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command('lease', 'Leases: grant, revoke, keep-alive, timetolive, list', (b) =>
    b
      .command(
        'grant <ttl>',
        'Create a lease with a TTL in seconds (prints its ID in hex)',
        (c) => c.positional('ttl', { type: 'string', demandOption: true, describe: 'seconds' }),
        (argv) => ctx.run(() => leaseGrantCommand(ctx, argv)),
      )
      .command(
        'revoke <leaseId>',
        'Revoke a lease (its keys are deleted)',
        (c) => c.positional('leaseId', leaseIdPositional),
        (argv) => ctx.run(() => leaseRevokeCommand(ctx, argv)),
      )
      .command(
        'keep-alive <leaseId>',
        'Keep a lease alive (renews every TTL/3 until Ctrl-C)',
        (c) =>
          c
            .positional('leaseId', leaseIdPositional)
            .option('once', { type: 'boolean', default: false, describe: 'renew once and exit' }),
        (argv) => ctx.run(() => leaseKeepAliveCommand(ctx, argv)),
      )
      .command(
        'timetolive <leaseId>',
        'Granted and remaining TTL of a lease',
        (c) =>
          c
            .positional('leaseId', leaseIdPositional)
            .option('keys', { type: 'boolean', default: false, describe: 'also list the keys attached to it' }),
        (argv) => ctx.run(() => leaseTimeToLiveCommand(ctx, argv)),
      )
      .command(
        'list',
        'Every lease ID',
        (c) => c,
        (argv) => ctx.run(() => leaseListCommand(ctx, argv)),
      )
      .demandCommand(1, "keel lease needs a subcommand: 'grant', 'revoke', 'keep-alive', 'timetolive' or 'list'"),
  );
}
