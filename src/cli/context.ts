// What every command gets: the io, the global flags, a client, and a way to run its handler so that errors
// become exit codes.

import { KeelHttpClient } from '../client/http-client';
import { KeelClient } from '../client/stream-client';
import { OutcomeUnknownError, type KvClient } from '../client/kv-client';
import { normalizeUrl } from '../server/options';
import { EXIT_ERROR, EXIT_USAGE, UsageError } from './errors';
import { goJson, type GoJson } from './etcdctl-json';
import { errorMessage } from './format';
import type { CliIo } from './io';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379';
export const DEFAULT_COMMAND_TIMEOUT_MS = 5000;

/** How the store commands talk to the members: the native WebSocket stream (Keel's fast path) or the
 *  etcd gRPC-gateway JSON over HTTP (works against etcd too). */
export const TRANSPORTS = ['stream', 'http'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** The global flags, as the root parser declares them. */
export interface RootArgs {
  endpoints: string;
  json: boolean;
  'write-out': string;
  transport: string;
  'command-timeout': number;
}

/** The global flags, as yargs hands them to every command. */
export interface GlobalArgs {
  endpoints: string;
  /** Machine output: --json, or -w json (the root parser sets one from the other). */
  json: boolean;
  transport: string;
  commandTimeout: number;
}

export interface ClientOptions {
  endpoints: string[];
  requestTimeoutMs: number;
}

export type ClientFactory = (transport: Transport, opts: ClientOptions) => KvClient;

/** The clients behind --transport. */
export const defaultClientFactory: ClientFactory = (transport, opts) => {
  switch (transport) {
    case 'stream':
      return new KeelClient(opts);
    case 'http':
      return new KeelHttpClient(opts);
  }
};

/** Things a test may replace. */
export interface CliDeps {
  /** Builds the client of the store commands (default: defaultClientFactory). */
  clientFactory?: ClientFactory;
}

export class CliContext {
  /** The exit code of the command that ran; 0 when none failed. */
  exitCode = 0;

  constructor(
    readonly io: CliIo,
    readonly deps: CliDeps = {},
  ) {}

  /** Writes a line to stdout. */
  print(line: string | Buffer): void {
    if (typeof line === 'string') this.io.out(line + '\n');
    else this.io.out(Buffer.concat([line, Buffer.from('\n')]));
  }

  /** Writes lines to stdout, each followed by a newline. */
  printLines(lines: readonly (string | Buffer)[]): void {
    for (const l of lines) this.print(l);
  }

  /** Writes a line to stderr. */
  warn(line: string): void {
    this.io.err(line + '\n');
  }

  printJson(value: unknown): void {
    this.io.out(JSON.stringify(value) + '\n');
  }

  /** Prints one JSON document as etcdctl's -w json does (Go's encoding, see etcdctl-json.ts). */
  printGoJson(value: GoJson): void {
    this.io.out(goJson(value) + '\n');
  }

  /** A client for the global flags; the caller closes it (see withClient). */
  client(args: GlobalArgs): KvClient {
    return clientFor(args, this.deps.clientFactory);
  }

  /** Runs `body` with a client for the global flags and closes the client afterwards, whatever happens. */
  async withClient<T>(args: GlobalArgs, body: (client: KvClient) => Promise<T>): Promise<T> {
    const client = this.client(args);
    try {
      return await body(client);
    } finally {
      await client.close().catch(() => {});
    }
  }

  /** Runs a command's body: its return value is the exit code; a thrown UsageError exits 2, any other
   *  error exits 1, with the message on stderr ("Error: ...", as etcdctl). */
  async run(body: () => Promise<number> | number): Promise<void> {
    try {
      this.exitCode = await body();
    } catch (e) {
      if (e instanceof UsageError) {
        this.reportUsageError(e.message);
      } else {
        this.warn(`Error: ${describeError(e)}`);
        this.exitCode = EXIT_ERROR;
      }
    }
  }

  reportUsageError(message: string): void {
    this.warn(message);
    this.warn("Run 'keel --help' (or 'keel COMMAND --help') for usage.");
    this.exitCode = EXIT_USAGE;
  }
}

/** The message of a failed command. A request whose outcome is unknown says so: the user must check
 *  before retrying a write that is not idempotent. */
export function describeError(e: unknown): string {
  if (e instanceof OutcomeUnknownError) {
    return `outcome unknown, the request may or may not have been applied: ${e.message}`;
  }
  return errorMessage(e);
}

/** Parses --endpoints: comma-separated URLs; "host:port" is taken as http://host:port, like etcdctl. */
export function parseEndpoints(spec: string): string[] {
  const parts = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (parts.length === 0) throw new UsageError('--endpoints: no endpoint given');
  const out: string[] = [];
  for (const p of parts) {
    const withScheme = p.includes('://') ? p : `http://${p}`;
    try {
      const u = normalizeUrl(withScheme, '--endpoints');
      if (!out.includes(u)) out.push(u);
    } catch (e) {
      throw new UsageError(errorMessage(e));
    }
  }
  return out;
}

export function checkTimeout(ms: number): number {
  if (!Number.isInteger(ms) || ms <= 0) {
    throw new UsageError(`--command-timeout must be a positive integer number of milliseconds (got ${ms})`);
  }
  return ms;
}

export function checkTransport(t: string): Transport {
  const found = TRANSPORTS.find((x) => x === t);
  if (found === undefined) {
    throw new UsageError(`--transport must be one of ${TRANSPORTS.join(', ')} (got ${JSON.stringify(t)})`);
  }
  return found;
}

/** The client of the store commands for the global flags (--endpoints, --transport, --command-timeout). */
export function clientFor(args: GlobalArgs, factory: ClientFactory = defaultClientFactory): KvClient {
  const transport = checkTransport(args.transport);
  const opts = { endpoints: parseEndpoints(args.endpoints), requestTimeoutMs: checkTimeout(args.commandTimeout) };
  return factory(transport, opts);
}
