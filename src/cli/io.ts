// Where a command's output goes: the process's stdout and stderr, or buffers in tests.

import type { Readable } from 'node:stream';

export interface CliIo {
  /** Standard output; the text is written as is (callers add newlines). */
  out(text: string | Buffer): void;
  /** Standard error; the text is written as is. */
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /** Standard input (`keel put KEY` reads the value from it, `keel txn` its input). Absent: there is none. */
  stdin?: Readable;
  /** Ends the commands that run until stopped (watch, lease keep-alive) when aborted. Absent: they stop on
   *  SIGINT or SIGTERM of this process. Tests pass one to end them. */
  signal?: AbortSignal;
}

export function processIo(): CliIo {
  return {
    out: (text) => {
      process.stdout.write(text);
    },
    err: (text) => {
      process.stderr.write(text);
    },
    env: process.env,
    // A getter: process.stdin is only created (and for a pipe, opened) by the commands that read it.
    get stdin() {
      return process.stdin;
    },
  };
}

/** An io that keeps what is written, for tests. */
export interface CapturedIo extends CliIo {
  stdout(): string;
  stdoutBytes(): Buffer;
  stderr(): string;
}

export function captureIo(
  env: Record<string, string | undefined> = {},
  input: { stdin?: Readable; signal?: AbortSignal } = {},
): CapturedIo {
  const out: Buffer[] = [];
  const err: string[] = [];
  return {
    out: (text) => {
      out.push(typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text));
    },
    err: (text) => {
      err.push(text);
    },
    env,
    stdin: input.stdin,
    signal: input.signal,
    stdout: () => Buffer.concat(out).toString('utf8'),
    stdoutBytes: () => Buffer.concat(out),
    stderr: () => err.join(''),
  };
}
