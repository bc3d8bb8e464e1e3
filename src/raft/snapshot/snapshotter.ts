// Snapshot files in one directory (`<data-dir>/snap`): atomic saves, newest-first loading that sets
// damaged files aside, and purging of old ones. File format: snap-file.ts. Modelled on etcd's snap package.

import { promises as fsp, readdirSync } from 'fs';
import * as path from 'path';
import pino from 'pino';
import type { Snapshot } from '../core/types';
import { fsyncDir, isErrno, mkdirDurable } from '../wal/durable-fs';
import { SNAP_SUFFIX, decodeSnapFile, encodeSnapFile, parseSnapName, snapName } from './snap-file';

/** Written first, renamed into place once durable: a crash never leaves a half-written `.snap`. */
const TMP_SUFFIX = '.tmp';
/** A snapshot file that failed verification, kept (not deleted) for a post-mortem. */
const BROKEN_SUFFIX = '.broken';

export interface SnapshotFileInfo {
  name: string;
  path: string;
  term: number;
  index: number;
}

export class Snapshotter {
  private readonly log: pino.Logger;

  /** `dir` is the snapshot directory itself; it is created by the first save. */
  constructor(
    private readonly dir: string,
    logger?: pino.Logger,
  ) {
    // Default: warnings on stderr, so that a snapshot set aside as broken is never silent.
    this.log = logger ?? pino({ name: 'snap', level: 'warn' }, pino.destination(2));
  }

  /** Writes `s` durably and atomically (tmp file, fdatasync, rename, directory fsync); returns its path. */
  async save(s: Snapshot): Promise<string> {
    const { index, term } = s.meta;
    if (!Number.isSafeInteger(index) || index < 0 || !Number.isSafeInteger(term) || term < 0) {
      throw new Error(`snap: invalid snapshot metadata index ${index}, term ${term}`);
    }
    await mkdirDurable(this.dir);
    const final = path.join(this.dir, snapName(term, index));
    const tmp = final + TMP_SUFFIX;
    const parts = encodeSnapFile(s);
    const fh = await fsp.open(tmp, 'w');
    try {
      let buffers = parts;
      // writev may write less than asked: resume from where it stopped.
      while (buffers.length > 0) {
        const { bytesWritten } = await fh.writev(buffers);
        if (bytesWritten <= 0) throw new Error(`snap: write to ${tmp} made no progress`);
        buffers = skipBytes(buffers, bytesWritten);
      }
      await fh.datasync();
    } catch (err) {
      await fh.close();
      await fsp.rm(tmp, { force: true });
      throw err;
    }
    await fh.close();
    await fsp.rename(tmp, final);
    await fsyncDir(this.dir);
    return final;
  }

  /**
   * The newest snapshot that verifies (by index, then term), or undefined if there is none. A file that
   * fails verification is renamed to `<name>.broken`, with a warning, and the next older one is tried.
   * Leftover `.tmp` files of interrupted saves are deleted first.
   */
  async loadNewest(): Promise<Snapshot | undefined> {
    await this.removeTmp();
    for (const f of this.list()) {
      let buf: Buffer;
      try {
        buf = await fsp.readFile(f.path);
      } catch (err) {
        // Purged or set aside concurrently: not an error. Anything else (EIO, EACCES) is not evidence that
        // the file is broken, so it is not renamed: the caller sees the error.
        if (isErrno(err, 'ENOENT')) continue;
        throw err;
      }
      const decoded = decodeSnapFile(buf);
      let problem: string;
      if ('error' in decoded) problem = decoded.error;
      else if (decoded.meta.index !== f.index || decoded.meta.term !== f.term) {
        // A file renamed by hand, or a bug: either way its name would lie to purge and to the operator.
        problem = `metadata (term ${decoded.meta.term}, index ${decoded.meta.index}) does not match the file name`;
      } else return decoded;
      const broken = f.path + BROKEN_SUFFIX;
      this.log.warn({ file: f.path, renamedTo: broken, reason: problem }, `snap: ${f.path} is broken (${problem}); trying an older snapshot`);
      await fsp.rename(f.path, broken);
      await fsyncDir(this.dir);
    }
    return undefined;
  }

  /** Deletes all but the `keep` newest snapshot files (`.broken` files are left for the operator). */
  async purge(keep = 5): Promise<void> {
    const old = this.list().slice(Math.max(0, keep));
    if (old.length === 0) return;
    for (const f of old) await fsp.rm(f.path, { force: true });
    await fsyncDir(this.dir);
  }

  /** The snapshot files in the directory, newest first (by index, then term). Unverified. */
  list(): SnapshotFileInfo[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return [];
      throw err;
    }
    const out: SnapshotFileInfo[] = [];
    for (const name of names) {
      const p = parseSnapName(name);
      if (p) out.push({ name, path: path.join(this.dir, name), ...p });
    }
    return out.sort((a, b) => b.index - a.index || b.term - a.term);
  }

  private async removeTmp(): Promise<void> {
    let names: string[];
    try {
      names = await fsp.readdir(this.dir);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return;
      throw err;
    }
    const tmp = names.filter((n) => n.endsWith(SNAP_SUFFIX + TMP_SUFFIX));
    for (const n of tmp) {
      this.log.info({ file: path.join(this.dir, n) }, 'snap: removing a snapshot file left half-written by a crash');
      await fsp.rm(path.join(this.dir, n), { force: true });
    }
    if (tmp.length > 0) await fsyncDir(this.dir);
  }
}

/** `buffers` without their first `n` bytes. */
function skipBytes(buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  let skip = n;
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    out.push(skip > 0 ? b.subarray(skip) : b);
    skip = 0;
  }
  return out;
}
