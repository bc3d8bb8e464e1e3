// Small file-system helpers for making things durable, shared by the WAL and the snapshot files.

import { promises as fsp } from 'fs';
import type { FileHandle } from 'fs/promises';
import * as path from 'path';

export function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

/** Makes the creation, rename or removal of entries in `dir` durable (fsync of the directory). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * mkdir -p, durably: a directory that was created is only there after a crash once the entry in its
 * parent is synced, so every parent from that of the first directory created down to `dir`'s is synced.
 */
export async function mkdirDurable(dir: string): Promise<void> {
  const made = await fsp.mkdir(dir, { recursive: true });
  if (made === undefined) return;
  const first = path.resolve(made);
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    await fsyncDir(path.dirname(d));
    if (d === first || path.dirname(d) === d) break;
  }
}

/** Writes all of `buf` at `position`, resuming after short writes. */
export async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten <= 0) throw new Error(`write made no progress at offset ${position + done}`);
    done += bytesWritten;
  }
}
