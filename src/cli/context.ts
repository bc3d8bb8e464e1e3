// What every command gets: the io, the global flags, and a way to run its handler so that errors become
// exit codes.

import { KeelHttpClient } from '../client/http-client';
import { normalizeUrl } from '../server/options';
import { EXIT_ERROR, EXIT_USAGE, UsageError } from './errors';
import { errorMessage } from './format';
import type { CliIo } from './io';

export const DEFAULT_ENDPOINT = 'http://127.0.0.1:2379';
export const DEFAULT_COMMAND_TIMEOUT_MS = 5000;

/** The global flags, as the root parser declares them. */
export interface RootArgs {
  endpoints: string;
  json: boolean;
  'command-timeout': number;
}

/** The global flags, as yargs hands them to every command. */
export interface GlobalArgs {
  endpoints: string;
  json: boolean;
  commandTimeout: number;
}

export class CliContext {
  /** The exit code of the command that ran; 0 when none failed. */
  exitCode = 0;

  constructor(readonly io: CliIo) {}

  /** Writes a line to stdout. */
  print(line: string | Buffer): void {
    if (typeof line === 'string') this.io.out(line + '\n');
    else this.io.out(Buffer.concat([line, Buffer.from('\n')]));
  }

  /** Writes a line to stderr. */
  warn(line: string): void {
    this.io.err(line + '\n');
  }

  printJson(value: unknown): void {
    this.io.out(JSON.stringify(value) + '\n');
  }

  /** Runs a command's body: its return value is the exit code; a thrown UsageError exits 2, any other
   *  error exits 1, with the message on stderr. */
  async run(body: () => Promise<number> | number): Promise<void> {
    try {
      this.exitCode = await body();
    } catch (e) {
      if (e instanceof UsageError) {
        this.reportUsageError(e.message);
      } else {
        this.warn(`Error: ${errorMessage(e)}`);
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

export function clientFor(args: GlobalArgs): KeelHttpClient {
  return new KeelHttpClient({
    endpoints: parseEndpoints(args.endpoints),
    requestTimeoutMs: checkTimeout(args.commandTimeout),
  });
}
