// keel endpoint status / health: one row (or line) per endpoint, like etcdctl's.

import { performance } from 'node:perf_hooks';
import type { Argv } from 'yargs';
import type { StatusResponse } from '../kv/api';
import { statusResponseToJson } from '../kv/gateway-json';
import { KeelHttpClient } from '../client/http-client';
import { checkTimeout, parseEndpoints, type CliContext, type GlobalArgs, type RootArgs } from './context';
import { errorMessage, formatMs, humanBytes, renderTable } from './format';

export type EndpointStatus = { endpoint: string; status: StatusResponse } | { endpoint: string; error: string };

/** Queries every endpoint in parallel; failures are results too. */
export async function statusOfEndpoints(endpoints: string[], timeoutMs: number): Promise<EndpointStatus[]> {
  const client = new KeelHttpClient({ endpoints, requestTimeoutMs: timeoutMs });
  return Promise.all(
    endpoints.map(async (endpoint): Promise<EndpointStatus> => {
      try {
        return { endpoint, status: await client.status(endpoint) };
      } catch (e) {
        return { endpoint, error: errorMessage(e) };
      }
    }),
  );
}

export function isLeader(s: StatusResponse): boolean {
  return s.leader !== '' && s.leader === s.header.memberId;
}

export const STATUS_HEADERS = [
  'ENDPOINT',
  'ID',
  'NAME',
  'IS LEADER',
  'IS LEARNER',
  'TERM',
  'RAFT INDEX',
  'APPLIED',
  'SNAPSHOT INDEX',
  'FIRST INDEX',
  'DB SIZE',
  'ERRORS',
];

export function statusRow(r: EndpointStatus): string[] {
  if ('error' in r) return [r.endpoint, '', '', '', '', '', '', '', '', '', '', r.error];
  const s = r.status;
  return [
    r.endpoint,
    s.header.memberId,
    s.name,
    String(isLeader(s)),
    String(s.isLearner),
    String(s.raftTerm),
    String(s.raftIndex),
    String(s.raftAppliedIndex),
    String(s.snapshotIndex),
    String(s.firstIndex),
    humanBytes(s.dbSize),
    s.errors.join(', '),
  ];
}

export async function endpointStatusCommand(ctx: CliContext, a: GlobalArgs): Promise<number> {
  const endpoints = parseEndpoints(a.endpoints);
  const results = await statusOfEndpoints(endpoints, checkTimeout(a.commandTimeout));
  if (a.json) {
    ctx.printJson(
      results.map((r) =>
        'error' in r
          ? { Endpoint: r.endpoint, Error: r.error }
          : { Endpoint: r.endpoint, Status: statusResponseToJson(r.status) },
      ),
    );
  } else {
    ctx.io.out(renderTable(STATUS_HEADERS, results.map(statusRow)));
  }
  const failed = results.filter((r) => 'error' in r);
  for (const f of failed) {
    if ('error' in f) ctx.warn(`Failed to get the status of endpoint ${f.endpoint} (${f.error})`);
  }
  return failed.length > 0 ? 1 : 0;
}

interface HealthResult {
  endpoint: string;
  health: boolean;
  tookMs: number;
  error: string;
}

export async function endpointHealthCommand(ctx: CliContext, a: GlobalArgs): Promise<number> {
  const endpoints = parseEndpoints(a.endpoints);
  const client = new KeelHttpClient({ endpoints, requestTimeoutMs: checkTimeout(a.commandTimeout) });
  const results = await Promise.all(
    endpoints.map(async (endpoint): Promise<HealthResult> => {
      const start = performance.now();
      try {
        const h = await client.health(endpoint);
        const tookMs = performance.now() - start;
        return { endpoint, health: h.health, tookMs, error: h.health ? '' : h.reason || 'unhealthy' };
      } catch (e) {
        return { endpoint, health: false, tookMs: performance.now() - start, error: errorMessage(e) };
      }
    }),
  );
  if (a.json) {
    ctx.printJson(
      results.map((r) => ({
        endpoint: r.endpoint,
        health: r.health,
        took: formatMs(r.tookMs),
        ...(r.health ? {} : { error: r.error }),
      })),
    );
  } else {
    for (const r of results) {
      if (r.health) ctx.print(`${r.endpoint} is healthy: took = ${formatMs(r.tookMs)}`);
      else ctx.warn(`${r.endpoint} is unhealthy: ${r.error}`);
    }
  }
  if (results.some((r) => !r.health)) {
    ctx.warn('Error: unhealthy cluster');
    return 1;
  }
  return 0;
}

export function registerEndpointCommands(y: Argv<RootArgs>, ctx: CliContext): Argv<RootArgs> {
  return y.command('endpoint', 'Status and health of the endpoints in --endpoints', (b) =>
    b
      .command(
        'status',
        'One row per endpoint: id, name, leader, term, raft index, applied, snapshot, first index, db size',
        (c) => c,
        (argv) => ctx.run(() => endpointStatusCommand(ctx, argv)),
      )
      .command(
        'health',
        'One line per endpoint: healthy or not, and how long it took',
        (c) => c,
        (argv) => ctx.run(() => endpointHealthCommand(ctx, argv)),
      )
      .demandCommand(1, "keel endpoint needs a subcommand: 'status' or 'health'"),
  );
}
