// Reading standard input: all of it (`keel put KEY` without a value), or line by line (`keel txn`, whose
// interactive mode prompts before each section, so it must not wait for the end of the input).

import readline from 'node:readline';
import type { Readable } from 'node:stream';

/** Every byte of the stream, until its end. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk as Uint8Array));
  }
  return Buffer.concat(chunks);
}

/** Lines of a stream, one at a time, without their line ending ("\n" or "\r\n"). */
export class LineReader {
  private readonly rl: readline.Interface;
  private readonly lines: AsyncIterator<string>;
  /** Number of lines read so far (the line number of the last one returned). */
  lineNo = 0;

  constructor(stream: Readable) {
    this.rl = readline.createInterface({ input: stream, crlfDelay: Infinity, terminal: false });
    this.lines = this.rl[Symbol.asyncIterator]();
  }

  /** The next line; undefined at the end of the input. */
  async next(): Promise<string | undefined> {
    const r = await this.lines.next();
    if (r.done === true) return undefined;
    this.lineNo++;
    return r.value;
  }

  close(): void {
    this.rl.close();
  }
}
