// Where a command's output goes: the process's stdout and stderr, or buffers in tests.

export interface CliIo {
  /** Standard output; the text is written as is (callers add newlines). */
  out(text: string | Buffer): void;
  /** Standard error; the text is written as is. */
  err(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
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
  };
}

/** An io that keeps what is written, for tests. */
export interface CapturedIo extends CliIo {
  stdout(): string;
  stdoutBytes(): Buffer;
  stderr(): string;
}

export function captureIo(env: Record<string, string | undefined> = {}): CapturedIo {
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
    stdout: () => Buffer.concat(out).toString('utf8'),
    stdoutBytes: () => Buffer.concat(out),
    stderr: () => err.join(''),
  };
}
