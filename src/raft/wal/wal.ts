// The write-ahead log: what a member must not forget (hard state and log entries) in CRC-chained
// records across preallocated segment files. Modelled on etcd's server/storage/wal and hashicorp/raft-wal.
// Record format: record.ts. Segment naming and verification: segment.ts. Log semantics: log-rules.ts.
//
// Crash assumptions (what a crash at any instant may leave behind, and what open() makes of it):
// - fdatasync is honest: once it returns, the written bytes and the file size survive a crash. If it
//   fails, the WAL is unusable (the page cache may have dropped the dirty data: "fsyncgate"); every
//   later call throws and the member must restart, which replays what really reached the disk.
// - A write that was not synced may be partly on disk: whole sectors of it (512 bytes, or pages), the
//   rest zeros (we only ever write into fresh, zero-filled files). A record cut short that way at the
//   end of the last segment is a torn tail: it was never acknowledged, so open() cuts it off with a
//   warning. A complete record with a bad CRC (no zero-filled sector in it) is damage, not a tear.
// - Damage followed by valid records is not a torn tail and is refused, naming the file and offset.
//   A disk that persisted a later sector of an unsynced write but not an earlier one also looks like
//   this; we refuse rather than guess, because dropping an acknowledged entry breaks Raft's safety and
//   the operator can still cut the file by hand at the reported offset. Details: scanSegment.
// - Renames and unlinks are made durable by fsyncing the directory.
// No file lock is taken (Node has no flock); one process per data directory is the caller's job.
//
// Segment life cycle:
// - A segment is created as `<name>.tmp`, preallocated to `segmentSize` with ftruncate (a sparse file of
//   zeros: cheap, and the zeros are what the tail detection expects), given its header record, synced,
//   renamed into place, and the directory synced.
// - A batch that does not fit in the rest of the current segment cuts it: the old segment is truncated
//   to its used length and synced (so that a segment other than the last ends exactly at its last
//   record, and nothing is wasted on disk), then the next segment is created. A batch bigger than
//   `segmentSize` gets a segment sized to fit it: batches are never split across segments.
// - Each segment's header also carries the hard state and snapshot marker in force when it was started,
//   so that replay can begin at any segment once older ones are released.

import { promises as fsp } from 'fs';
import type { FileHandle } from 'fs/promises';
import * as path from 'path';
import { performance } from 'perf_hooks';
import pino from 'pino';
import type { Entry, HardState } from '../core/types';
import { placeEntry } from './log-rules';
import type { LogPosition } from './log-rules';
import {
  PayloadError,
  RecordType,
  SEGMENT_FORMAT_VERSION,
  decodeEntry,
  decodeHardState,
  decodeSnapshotMarker,
  encodeEntry,
  encodeHardState,
  encodeSegmentHeader,
  encodeSnapshotMarker,
  framedSize,
  frameRecords,
  pending,
} from './record';
import type { PendingRecord, SnapshotMarker } from './record';
import { fsyncDir, isErrno, mkdirDurable, writeFully } from './durable-fs';
import { CorruptWalError, SEGMENT_SUFFIX, TMP_SUFFIX, parseSegmentName, scanSegment, segmentName } from './segment';
import type { ScannedRecord } from './segment';

export const DEFAULT_SEGMENT_SIZE = 64 * 1024 * 1024;
/** An fdatasync slower than this is logged: a disk this slow stretches every commit and heartbeat. */
const SLOW_FSYNC_MS = 100;

export interface WalOptions {
  /** Bytes a segment is preallocated to (default 64 MiB). */
  segmentSize?: number;
  /** Defaults to a pino logger at level warn on stderr: repairs must never go unreported. */
  logger?: pino.Logger;
  /** Told the duration of every fdatasync of a segment file, in seconds (the member's
   *  etcd_disk_wal_fsync_duration_seconds). Must not throw. */
  onFsync?: (seconds: number) => void;
  /** Tests only: called before each write to a segment; an error it returns is thrown as the write's own
   *  (to simulate a full disk or EIO). */
  injectWriteError?: () => Error | undefined;
}

export interface WalContents {
  /** The last hard state written, or {term: 0, vote: '', commit: 0}. */
  hardState: HardState;
  /** Contiguous; after `snapshot.index` when there is a snapshot marker. */
  entries: Entry[];
  /** The last snapshot marker: the log was replaced by a snapshot at this index. */
  snapshot?: SnapshotMarker;
}

/** What the WAL knows about one segment file, kept so that releaseTo and firstIndex need no reads. */
interface SegmentState {
  seq: number;
  firstIndex: number;
  path: string;
  /** Highest entry index physically written in this segment (covered or truncated ones included); 0 if none. */
  maxEntryIndex: number;
  /** First entry index of the log that replay would produce if it started at this segment; 0 if none.
   *  Replay from any segment yields a suffix of the full log (same last index), so only the start differs. */
  replayFirst: number;
}

const EMPTY_HARD_STATE: HardState = { term: 0, vote: '', commit: 0 };

function defaultLogger(): pino.Logger {
  return pino({ name: 'wal', level: 'warn' }, pino.destination(2));
}

interface DirListing {
  segments: { name: string; seq: number; firstIndex: number }[];
  tmp: string[];
}

async function listDir(dir: string): Promise<DirListing> {
  const names = await fsp.readdir(dir);
  const segments: DirListing['segments'] = [];
  const tmp: string[] = [];
  for (const name of names) {
    if (name.endsWith(SEGMENT_SUFFIX + TMP_SUFFIX)) {
      tmp.push(name);
      continue;
    }
    const p = parseSegmentName(name);
    if (p) segments.push({ name, ...p });
  }
  segments.sort((a, b) => a.seq - b.seq);
  return { segments, tmp };
}

async function removeTmp(dir: string, tmp: string[], log: pino.Logger): Promise<void> {
  if (tmp.length === 0) return;
  for (const name of tmp) {
    log.info({ file: path.join(dir, name) }, 'wal: removing a segment left half-created by a crash');
    await fsp.rm(path.join(dir, name), { force: true });
  }
  await fsyncDir(dir);
}

export class Wal {
  private segments: SegmentState[] = [];
  private fh: FileHandle | undefined;
  private writeOffset = 0;
  /** Bytes the current segment may hold: its preallocated size (or more, for an oversized batch). */
  private capacity = 0;
  /** CRC of the last record written: the chain's running value. */
  private crc = 0;
  private hardState: HardState | undefined;
  private pos: LogPosition = { last: 0 };
  /** Written but not yet fdatasynced. */
  private dirty = false;
  /** Set by a failed write or sync, or by close: the WAL refuses all further work. */
  private unusable: Error | undefined;
  private fsyncs = 0;
  private lastFsyncMs = 0;

  private constructor(
    private readonly dir: string,
    private readonly segmentSize: number,
    private readonly log: pino.Logger,
    private readonly onFsync: ((seconds: number) => void) | undefined,
    private readonly injectWriteError: (() => Error | undefined) | undefined,
  ) {}

  private static fromOptions(dir: string, opts: WalOptions | undefined): Wal {
    const segmentSize = opts?.segmentSize ?? DEFAULT_SEGMENT_SIZE;
    if (!Number.isSafeInteger(segmentSize) || segmentSize < 1024) {
      throw new Error(`wal: segmentSize must be an integer of at least 1024 bytes, got ${segmentSize}`);
    }
    return new Wal(dir, segmentSize, opts?.logger ?? defaultLogger(), opts?.onFsync, opts?.injectWriteError);
  }

  /** Whether `dir` holds at least one segment (a member restarting rather than starting fresh). */
  static async exists(dir: string): Promise<boolean> {
    try {
      return (await listDir(dir)).segments.length > 0;
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return false;
      throw err;
    }
  }

  /** A fresh WAL in `dir` (created if missing), which must not hold segments yet. */
  static async create(dir: string, opts?: WalOptions): Promise<Wal> {
    const wal = Wal.fromOptions(dir, opts);
    await mkdirDurable(dir);
    const listing = await listDir(dir);
    if (listing.segments.length > 0) throw new Error(`wal: ${dir} already holds segments; open it instead`);
    await removeTmp(dir, listing.tmp, wal.log);
    await wal.startSegment(0, 1, 0, false);
    return wal;
  }

  /**
   * Replays every segment in `dir`, verifying the CRC chain, repairs a torn tail of the last segment
   * (with a warning), and returns the WAL positioned for appending together with what it holds.
   * Throws CorruptWalError (naming file and offset) on damage that is not a torn tail.
   */
  static async open(dir: string, opts?: WalOptions): Promise<{ wal: Wal; contents: WalContents }> {
    const wal = Wal.fromOptions(dir, opts);
    const listing = await listDir(dir);
    if (listing.segments.length === 0) throw new Error(`wal: no segments in ${dir}`);
    await removeTmp(dir, listing.tmp, wal.log);
    const segs = listing.segments;
    for (let i = 1; i < segs.length; i++) {
      if (segs[i].seq !== segs[i - 1].seq + 1) {
        throw new Error(`wal: segment missing between ${path.join(dir, segs[i - 1].name)} and ${path.join(dir, segs[i].name)}`);
      }
    }

    let hardState: HardState = EMPTY_HARD_STATE;
    let entries: Entry[] = [];
    for (let i = 0; i < segs.length; i++) {
      const file = path.join(dir, segs[i].name);
      const isLast = i === segs.length - 1;
      const buf = await fsp.readFile(file);
      const scanned = scanSegment(buf, file, isLast, i > 0 ? wal.crc : undefined);
      const h = scanned.header;
      if (h.seq !== segs[i].seq || h.firstIndex !== segs[i].firstIndex) {
        throw new CorruptWalError(file, 0, `segment header says seq ${h.seq}, firstIndex ${h.firstIndex}, unlike the file name`);
      }
      if (i === 0) {
        // Older segments may have been released: the header holds the state they had established, and
        // the log's last index when this segment was started (the first segment ever says 1: none).
        hardState = h.hardState ?? EMPTY_HARD_STATE;
        wal.pos = { snapshot: h.snapshot, last: h.firstIndex - 1 };
      }
      wal.segments.push({ seq: h.seq, firstIndex: h.firstIndex, path: file, maxEntryIndex: 0, replayFirst: 0 });
      for (const rec of scanned.records) {
        const applied = wal.replayRecord(rec, file, entries);
        if (applied.hardState) hardState = applied.hardState;
        entries = applied.entries;
      }
      wal.crc = scanned.crc;
      if (isLast) await wal.adoptLastSegment(file, buf.length, scanned.end, scanned.torn);
    }
    wal.hardState = hardState === EMPTY_HARD_STATE ? undefined : hardState;
    const contents: WalContents = { hardState: { ...hardState }, entries };
    if (wal.pos.snapshot) contents.snapshot = { ...wal.pos.snapshot };
    return { wal, contents };
  }

  private replayRecord(rec: ScannedRecord, file: string, entries: Entry[]): { entries: Entry[]; hardState?: HardState } {
    try {
      switch (rec.type) {
        case RecordType.Entry: {
          const e = decodeEntry(rec.payload);
          const placed = placeEntry(this.pos, e.index);
          if (typeof placed === 'object') throw new CorruptWalError(file, rec.offset, placed.gap);
          this.notePhysicalEntry(e.index);
          if (placed === 'covered') return { entries };
          this.noteLiveEntry(e.index);
          if (entries.length > 0 && e.index <= entries[entries.length - 1].index) {
            // Conflicting suffix replaced: keep what comes before e.index.
            entries = e.index <= entries[0].index ? [] : entries.slice(0, e.index - entries[0].index);
          }
          entries.push(e);
          this.pos = { snapshot: this.pos.snapshot, last: e.index };
          return { entries };
        }
        case RecordType.HardState:
          return { entries, hardState: decodeHardState(rec.payload) };
        case RecordType.SnapshotMarker:
          this.noteMarker(decodeSnapshotMarker(rec.payload));
          return { entries: [] };
        default:
          throw new CorruptWalError(file, rec.offset, `unexpected record type ${rec.type}`);
      }
    } catch (err) {
      if (err instanceof PayloadError) throw new CorruptWalError(file, rec.offset, err.message);
      throw err;
    }
  }

  /** Makes the scanned last segment the one appended to, cutting off a torn tail first. */
  private async adoptLastSegment(file: string, fileSize: number, end: number, torn: string | undefined): Promise<void> {
    const fh = await fsp.open(file, 'r+');
    try {
      this.capacity = Math.max(this.segmentSize, fileSize);
      if (torn !== undefined) {
        this.log.warn(
          { file, offset: end, droppedBytes: fileSize - end, reason: torn },
          `wal: torn write at the tail of ${file} at offset ${end}; cutting back to the last good record`,
        );
        // Truncate, then extend again: the bytes after `end` must be zeros for the next open to see a
        // clean preallocated tail rather than leftovers of the torn record.
        await fh.truncate(end);
        await fh.truncate(this.capacity);
        await fh.datasync();
      }
    } catch (err) {
      await fh.close();
      throw err;
    }
    this.fh = fh;
    this.writeOffset = end;
  }

  /**
   * Appends `entries` (whose first index may be at or below lastIndex(): the log is then logically
   * truncated there) and `hardState`, in one write, with one fdatasync when `sync` (group commit).
   * An unsynced save is made durable by the next synced call or by close().
   */
  async save(hardState: HardState | undefined, entries: Entry[], sync: boolean): Promise<void> {
    this.assertUsable();
    // Validate the whole batch before writing any of it: a rejected batch leaves no trace.
    let probe = this.pos;
    for (const e of entries) {
      if (!Number.isSafeInteger(e.index) || e.index < 1) throw new Error(`wal: entry index ${e.index} is not a positive integer`);
      const placed = placeEntry(probe, e.index);
      if (typeof placed === 'object') throw new Error(`wal: ${placed.gap}`);
      if (placed === 'placed') probe = { snapshot: probe.snapshot, last: e.index };
    }
    const records: PendingRecord[] = entries.map((e) => pending(RecordType.Entry, encodeEntry(e)));
    if (hardState) records.push(pending(RecordType.HardState, encodeHardState(hardState)));
    if (records.length === 0) {
      if (sync && this.dirty) await this.syncCurrent();
      return;
    }
    await this.append(records, sync);
    for (const e of entries) {
      this.notePhysicalEntry(e.index);
      if (placeEntry(this.pos, e.index) === 'covered') continue;
      this.noteLiveEntry(e.index);
      this.pos = { snapshot: this.pos.snapshot, last: e.index };
    }
    if (hardState) this.hardState = { term: hardState.term, vote: hardState.vote, commit: hardState.commit };
  }

  /** Records that the log was replaced by a snapshot at {index, term}; synced before it returns. */
  async saveSnapshotMarker(meta: { index: number; term: number }): Promise<void> {
    this.assertUsable();
    if (!Number.isSafeInteger(meta.index) || meta.index < 0 || !Number.isSafeInteger(meta.term) || meta.term < 0) {
      throw new Error(`wal: invalid snapshot marker index ${meta.index}, term ${meta.term}`);
    }
    const marker: SnapshotMarker = { index: meta.index, term: meta.term };
    await this.append([pending(RecordType.SnapshotMarker, encodeSnapshotMarker(marker))], true);
    this.noteMarker(marker);
  }

  /**
   * Deletes the oldest segments all of whose entries are below `index`, stopping at the first that
   * holds an entry at or above it; the current segment is never deleted. What the deleted segments
   * established (hard state, snapshot marker) lives on in the next segment's header.
   */
  async releaseTo(index: number): Promise<void> {
    this.assertUsable();
    let n = 0;
    while (n < this.segments.length - 1 && this.segments[n].maxEntryIndex < index) n++;
    if (n === 0) return;
    // Oldest first: a crash part-way leaves a contiguous run of segments, which open() accepts.
    for (const seg of this.segments.slice(0, n)) {
      try {
        await fsp.unlink(seg.path);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
    }
    await fsyncDir(this.dir);
    const released = this.segments.splice(0, n);
    this.log.debug({ index, released: released.map((s) => path.basename(s.path)) }, 'wal: released segments');
    // No change to the in-memory position: replay from the new first segment starts at the last index
    // recorded in its header and applies the same records since, so it ends where we are.
  }

  /** First entry index a replay would return; 0 if it would return no entries. */
  firstIndex(): number {
    return this.segments.length > 0 ? this.segments[0].replayFirst : 0;
  }

  /** The log's last index: of the last entry written, or of a later snapshot marker; 0 for an empty log.
   *  Not lowered by releaseTo, even when the released segments held every entry. */
  lastIndex(): number {
    return this.pos.last;
  }

  /** Syncs anything written but not yet synced, and closes the WAL; later calls throw. */
  async close(): Promise<void> {
    if (this.unusable) {
      // Already closed, or broken: release the handle without pretending anything is durable.
      const fh = this.fh;
      this.fh = undefined;
      if (fh) await fh.close();
      return;
    }
    try {
      if (this.dirty) await this.syncCurrent();
    } finally {
      this.unusable = new Error('wal: closed');
      const fh = this.fh;
      this.fh = undefined;
      if (fh) await fh.close();
    }
  }

  /**
   * fdatasync calls made by save() and saveSnapshotMarker(), including those of a segment cut they
   * trigger (old segment, new segment, directory); not those of create() or open(). lastFsyncMs is the
   * duration of the most recent one.
   */
  stats(): { fsyncs: number; lastFsyncMs: number } {
    return { fsyncs: this.fsyncs, lastFsyncMs: this.lastFsyncMs };
  }

  // ---- internals ----

  private assertUsable(): void {
    if (this.unusable) throw new Error(this.unusable.message);
  }

  /** Marks the WAL unusable after an I/O failure, whose effect on the files is unknown. */
  private fail(err: unknown): never {
    const msg = err instanceof Error ? err.message : String(err);
    this.unusable = new Error(`wal: unusable after an I/O error (reopen to recover): ${msg}`);
    this.log.error({ err }, 'wal: I/O error; the WAL refuses further writes');
    throw err;
  }

  private notePhysicalEntry(index: number): void {
    const cur = this.segments[this.segments.length - 1];
    if (index > cur.maxEntryIndex) cur.maxEntryIndex = index;
  }

  /** An entry joins the log: for every possible replay start it is either the first entry or already
   *  inside (truncating) or after the list, so the start only ever moves down. */
  private noteLiveEntry(index: number): void {
    for (const s of this.segments) {
      if (s.replayFirst === 0 || index < s.replayFirst) s.replayFirst = index;
    }
  }

  private noteMarker(marker: SnapshotMarker): void {
    this.pos = { snapshot: marker, last: marker.index };
    for (const s of this.segments) s.replayFirst = 0;
  }

  private async append(records: PendingRecord[], sync: boolean): Promise<void> {
    let size = 0;
    for (const r of records) size += framedSize(r);
    try {
      if (this.writeOffset + size > this.capacity) await this.cut(size);
      const buf = Buffer.allocUnsafe(size);
      const crc = frameRecords(records, this.crc, buf, 0);
      const injected = this.injectWriteError?.();
      if (injected !== undefined) throw injected;
      await writeFully(this.current(), buf, this.writeOffset);
      this.writeOffset += size;
      this.crc = crc;
      this.dirty = true;
    } catch (err) {
      this.fail(err);
    }
    if (sync) await this.syncCurrent();
  }

  private current(): FileHandle {
    if (!this.fh) throw new Error('wal: no open segment');
    return this.fh;
  }

  private async syncCurrent(): Promise<void> {
    try {
      await this.timedSync(this.current(), this.segments[this.segments.length - 1].path, true);
      this.dirty = false;
    } catch (err) {
      this.fail(err);
    }
  }

  private async timedSync(fh: FileHandle, file: string, counted: boolean): Promise<void> {
    const t0 = performance.now();
    await fh.datasync();
    const ms = performance.now() - t0;
    this.onFsync?.(ms / 1000);
    if (counted) {
      this.fsyncs++;
      this.lastFsyncMs = ms;
    }
    if (ms > SLOW_FSYNC_MS) this.log.warn({ file, durationMs: Math.round(ms) }, 'slow fdatasync');
  }

  /** Closes the current segment at its used length and starts the next, big enough for `needed` bytes. */
  private async cut(needed: number): Promise<void> {
    const old = this.segments[this.segments.length - 1];
    const fh = this.current();
    await fh.truncate(this.writeOffset);
    // Also makes durable whatever unsynced saves wrote: the new segment's header chains from it.
    await this.timedSync(fh, old.path, true);
    this.dirty = false;
    this.fh = undefined;
    await fh.close();
    await this.startSegment(old.seq + 1, this.lastIndex() + 1, needed, true);
    this.log.debug({ from: path.basename(old.path), to: path.basename(this.segments[this.segments.length - 1].path) }, 'wal: cut segment');
  }

  /** Creates, preallocates and installs a new segment whose header chains from the running CRC. */
  private async startSegment(seq: number, firstIndex: number, needed: number, counted: boolean): Promise<void> {
    const header = pending(
      RecordType.SegmentHeader,
      encodeSegmentHeader({
        v: SEGMENT_FORMAT_VERSION,
        seq,
        firstIndex,
        prevCrc: this.crc,
        hardState: this.hardState,
        snapshot: this.pos.snapshot,
      }),
    );
    const headerSize = framedSize(header);
    const capacity = Math.max(this.segmentSize, headerSize + needed);
    const final = path.join(this.dir, segmentName(seq, firstIndex));
    const tmp = final + TMP_SUFFIX;
    const buf = Buffer.allocUnsafe(headerSize);
    const crc = frameRecords([header], this.crc, buf, 0);
    await fsp.rm(tmp, { force: true });
    const fh = await fsp.open(tmp, 'wx+');
    try {
      await fh.truncate(capacity);
      await writeFully(fh, buf, 0);
      await this.timedSync(fh, tmp, counted);
      await fsp.rename(tmp, final);
      await fsyncDir(this.dir);
      if (counted) this.fsyncs++;
    } catch (err) {
      await fh.close();
      throw err;
    }
    this.fh = fh;
    this.writeOffset = headerSize;
    this.capacity = capacity;
    this.crc = crc;
    this.segments.push({ seq, firstIndex, path: final, maxEntryIndex: 0, replayFirst: 0 });
  }
}
