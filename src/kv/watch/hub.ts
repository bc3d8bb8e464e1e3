// The member-local watch machinery: etcd's watchableStore (synced / unsynced watchers, catch-up from
// history) and serverWatchStream (ids, created / canceled responses, progress, fragments) in one place.
//
// Delivery bookkeeping. Every watcher has a `nextRev`: everything below it has been handed to its sink or
// is queued in its stream. Synced watchers are served by onApplied, synchronously, as each revision is
// applied; unsynced ones by one asynchronous catch-up loop that reads history in bounded batches. A
// watcher moves to synced only in a synchronous step where its nextRev is past the last revision onApplied
// has delivered (`liveRev`): revisions applied while a read was awaiting are bridged from the recent window
// (recent.ts) or read in the next round, never skipped, and a revision is never served by both paths.
//
// Ordering. All responses of a stream go through its one queue, so a watcher's events, its canceled
// response and any progress notification leave in the order they were produced. A progress notification
// (periodic or requested) is produced only while the watchers it speaks for are synced, so it never
// overtakes an event at or below its revision; one still queued when a watcher's buffer overflows (and
// the events before it are dropped) is withdrawn and sent again once that watcher has caught up.

import pino, { type Logger } from 'pino';
import {
  Errors,
  KvError,
  MAX_REQUEST_BYTES,
  type Event,
  type ResponseHeader,
  type WatchCreateRequest,
  type WatchResponse,
  type WatchSink,
  type WatchStream,
} from '../api';
import type { RevisionEvents } from '../state-machine';
import { CancelReasons, parseCreate } from './create-request';
import { packRevisions, type ResponseBody } from './fragment';
import { RecentRevisions } from './recent';
import { HubStream, type StreamOwner } from './stream';
import { Watcher, type WatcherState } from './watcher';
import { WatcherIndex } from './watcher-index';

/** What the hub reads history from (the MVCC store satisfies it; a subset of StateMachine). */
export interface WatchHistory {
  /** The current revision. */
  revision(): number;
  compactRevision(): number;
  /** The events of revisions [fromRev, toRev], at most maxRevisions revisions from fromRev up. Throws
   *  Errors.compacted() if fromRev < compactRevision(). */
  events(fromRev: number, toRev: number, maxRevisions: number): Promise<RevisionEvents[]>;
}

export interface WatchHubOptions {
  history: WatchHistory;
  /** The member fills cluster / member ids and the term. */
  header: (revision: number) => ResponseHeader;
  /** Periodic progress notification for watches created with progressNotify; default 600000 (etcd's
   *  10 minutes). */
  progressIntervalMs?: number;
  /** Revisions a watcher may have waiting in a backed-up stream before it is dropped back to history;
   *  default 1024. */
  maxBufferedRevisions?: number;
  /** Revisions read per history catch-up round, and revisions kept in the recent window; default 256. */
  historyBatchRevisions?: number;
  /** Responses are cut (between revisions) to stay under this, and fragmented above it for watches that
   *  asked; default MAX_REQUEST_BYTES. */
  maxResponseBytes?: number;
  logger?: Logger;
}

/** etcd's default progress interval (v3rpc.GetProgressReportInterval, 10 minutes). */
const DEFAULT_PROGRESS_INTERVAL_MS = 600_000;
/**
 * etcd buffers 1024 responses per stream (chanBufLen) before it parks a slow watcher as a victim. Keel
 * counts per watcher, in revisions: 1024 revisions absorb a burst of a few seconds at the write rates a
 * 3-member cluster sustains (README: ~2,250 puts/s at 64 clients), so a consumer that stalls briefly (GC,
 * a slow socket) keeps being served from memory, while one that stays stalled costs at most this many
 * queued responses before it is dropped back to history (which costs nothing until it reads again).
 */
const DEFAULT_MAX_BUFFERED_REVISIONS = 1024;
/**
 * etcd reads everything an unsynced watcher misses in one go and sends at most 1000 revisions per
 * response (watchBatchMaxRevs). Keel reads 256 per round: a round's memory stays small (kilobytes per
 * revision for typical writes; 1.5 MiB per revision at worst), one round landing in a stream that just
 * backed up fills at most a quarter of its buffer, and 256 revisions per LevelDB iterator amortise the read.
 */
const DEFAULT_HISTORY_BATCH_REVISIONS = 256;
/** The recent window's byte bound: a few maximum-size writes. */
const RECENT_MAX_BYTES = 4 * MAX_REQUEST_BYTES;

function positiveInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new RangeError(`WatchHub: ${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

function errorReason(err: unknown): string {
  if (err instanceof KvError) return err.message;
  return `etcdserver: reading watch history failed: ${err instanceof Error ? err.message : String(err)}`;
}

export class WatchHub implements StreamOwner {
  private readonly history: WatchHistory;
  private readonly header: (revision: number) => ResponseHeader;
  private readonly log: Logger;
  private readonly maxBufferedRevisions: number;
  private readonly batchRevisions: number;
  private readonly maxResponseBytes: number;

  private readonly streams = new Set<HubStream>();
  private readonly synced = new WatcherIndex();
  /** Unsynced watchers, in the order they are served (a watcher served and still behind goes last). */
  private readonly unsynced = new Set<Watcher>();
  private readonly progressWatchers = new Set<Watcher>();
  /** Streams that asked for a progress notification not yet sent (some watcher was behind). */
  private readonly progressWaiting = new Set<HubStream>();
  private readonly recent: RecentRevisions;
  /** The last revision onApplied delivered (or the store's revision at start / after a restore). */
  private liveRev: number;
  /** Bumped by onRestore and close: a history read begun before is discarded. */
  private epoch = 0;
  /** >0 while events are being handed out: stream-wide progress waits until the pass is complete. */
  private delivering = 0;
  private catchingUp = false;
  private closed = false;
  private readonly timer: NodeJS.Timeout;

  constructor(opts: WatchHubOptions) {
    this.history = opts.history;
    this.header = opts.header;
    this.log = opts.logger ?? pino({ level: 'silent' });
    const progressMs = positiveInt('progressIntervalMs', opts.progressIntervalMs, DEFAULT_PROGRESS_INTERVAL_MS);
    this.maxBufferedRevisions = positiveInt(
      'maxBufferedRevisions',
      opts.maxBufferedRevisions,
      DEFAULT_MAX_BUFFERED_REVISIONS,
    );
    this.batchRevisions = positiveInt(
      'historyBatchRevisions',
      opts.historyBatchRevisions,
      DEFAULT_HISTORY_BATCH_REVISIONS,
    );
    this.maxResponseBytes = positiveInt('maxResponseBytes', opts.maxResponseBytes, MAX_REQUEST_BYTES);
    this.liveRev = this.history.revision();
    this.recent = new RecentRevisions(this.batchRevisions, RECENT_MAX_BYTES, this.liveRev);
    this.timer = setInterval(() => this.progressTick(), progressMs);
    this.timer.unref();
  }

  openStream(sink: WatchSink): WatchStream {
    if (this.closed) throw Errors.stopped();
    const s = new HubStream(this, sink, this.maxBufferedRevisions, this.log);
    this.streams.add(s);
    return s;
  }

  /**
   * Called by the member's apply loop after each apply (never from a sink), revisions ascending. Serves
   * the synced watchers each revision concerns, synchronously: O(events x (1 + range watchers)) plus the
   * responses sent; a backed-up stream only queues.
   */
  onApplied(changes: RevisionEvents[]): void {
    if (this.closed) return;
    this.delivering += 1;
    try {
      for (const rc of changes) {
        if (rc.revision <= this.liveRev) {
          this.log.warn({ revision: rc.revision, current: this.liveRev }, 'watch hub: revision applied twice; ignored');
          continue;
        }
        this.liveRev = rc.revision;
        this.recent.push(rc);
        this.deliverLive(rc);
      }
    } finally {
      this.delivering -= 1;
    }
    this.flushProgressRequests();
  }

  /** The state was replaced by a snapshot: every watcher is served from history again from its nextRev
   *  (canceled with the compact revision if that is gone). */
  onRestore(): void {
    if (this.closed) return;
    this.epoch += 1;
    const next = this.liveRev + 1;
    for (const w of this.synced.all()) {
      w.nextRev = Math.max(w.nextRev, next);
      this.setState(w, 'unsynced');
    }
    this.liveRev = this.history.revision();
    this.recent.reset(this.liveRev);
    this.log.info(
      { revision: this.liveRev, watchers: this.unsynced.size },
      'watch hub: state restored; watchers catch up from history',
    );
    this.kick();
  }

  stats(): { streams: number; watchers: number; synced: number; unsynced: number } {
    return {
      streams: this.streams.size,
      watchers: this.synced.size + this.unsynced.size,
      synced: this.synced.size,
      unsynced: this.unsynced.size,
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.epoch += 1;
    clearInterval(this.timer);
    for (const s of [...this.streams]) this.closeStream(s);
    this.progressWaiting.clear();
  }

  // ---- StreamOwner: requests of a stream ----------------------------------------------------------------

  createWatch(stream: HubStream, req: WatchCreateRequest): void {
    // A sink that asks for progress while this runs must not get it before the new watcher is placed.
    this.delivering += 1;
    try {
      this.create(stream, req);
    } finally {
      this.delivering -= 1;
    }
    this.flushProgressRequests();
  }

  private create(stream: HubStream, req: WatchCreateRequest): void {
    const spec = parseCreate(req);
    const refuse = (reason: string): void =>
      stream.sendControl({
        header: this.header(this.liveRev),
        watchId: -1,
        created: true,
        canceled: true,
        cancelReason: reason,
        events: [],
      });
    if ('error' in spec) return refuse(spec.error);
    let id: number;
    if (spec.watchId === null) id = stream.allocateId();
    else if (stream.watchers.has(spec.watchId)) return refuse(CancelReasons.duplicateId);
    else id = spec.watchId;

    const w = new Watcher(id, stream, spec);
    stream.watchers.set(id, w);
    if (w.progressNotify) this.progressWatchers.add(w);
    stream.sendControl({ header: this.header(this.liveRev), watchId: id, created: true, events: [] });
    if (w.state !== 'new') return; // the sink canceled it, or closed the stream, in the meantime

    const start = spec.startRevision;
    const compactRev = this.history.compactRevision();
    if (start > 0 && start < compactRev) {
      // etcd creates the watch, then cancels it with the compact revision from its sync loop.
      this.cancelCompacted(w, compactRev);
    } else if (start === 0 || start > this.liveRev) {
      // From the next revision, or waiting for a future one: live from the start.
      w.nextRev = start === 0 ? this.liveRev + 1 : start;
      this.setState(w, 'synced');
    } else {
      w.nextRev = start;
      this.setState(w, 'unsynced');
      this.kick();
    }
  }

  cancelWatch(stream: HubStream, watchId: number): void {
    const w = stream.watchers.get(watchId);
    if (!w) return;
    stream.dropWatcher(w, 'cancel');
    this.setState(w, 'canceled');
    stream.sendControl({ header: this.header(this.liveRev), watchId, canceled: true, events: [] });
    this.flushProgressRequests();
  }

  /** etcd 3.5's RequestProgressAll: answered (watch id -1, current revision) once every watcher of the
   *  stream is synced. With no watcher at all it is answered at once (etcd would send nothing, leaving a
   *  client that waits for it hanging). */
  requestProgress(stream: HubStream): void {
    this.progressWaiting.add(stream);
    this.flushProgressRequests();
  }

  streamWritable(): void {
    // Its unsynced watchers can be served again.
    this.kick();
  }

  closeStream(stream: HubStream): void {
    stream.shutdown();
    for (const w of [...stream.watchers.values()]) this.setState(w, 'canceled');
    this.streams.delete(stream);
    this.progressWaiting.delete(stream);
  }

  /** Too much waiting for `w` in a backed-up stream: drop it and serve `w` from history once the stream
   *  drains, from the first revision dropped. */
  bufferOverflow(w: Watcher): void {
    if (w.state !== 'synced' && w.state !== 'unsynced') return;
    const { firstRev, progressAllDropped } = w.stream.dropWatcher(w, 'overflow');
    if (progressAllDropped) this.progressWaiting.add(w.stream);
    if (firstRev === 0) return; // only the rest of a response already under way was waiting
    this.log.debug({ watchId: w.id, fromRev: firstRev }, 'watch hub: slow watcher dropped back to history');
    w.resets += 1;
    w.nextRev = firstRev;
    if (w.state === 'synced') this.setState(w, 'unsynced');
    else this.moveToBack(w);
  }

  // ---- live delivery -----------------------------------------------------------------------------------

  private deliverLive(rc: RevisionEvents): void {
    if (this.synced.size === 0) return;
    const matched = new Map<Watcher, Event[]>();
    for (const e of rc.events) {
      let stripped: Event | undefined;
      this.synced.forKey(e.kv.key, (w) => {
        if (w.nextRev > rc.revision || w.filtersOut(e)) return;
        const out = w.prevKv || e.prevKv === undefined ? e : (stripped ??= { type: e.type, kv: e.kv });
        const list = matched.get(w);
        if (list) list.push(out);
        else matched.set(w, [out]);
      });
    }
    for (const [w, events] of matched) {
      // A sink may have canceled it (or closed its stream) while an earlier watcher was being served.
      if (w.state !== 'synced') continue;
      this.emit(w, [{ events, revisions: 1, fromRev: rc.revision }], rc.revision);
    }
  }

  /** Queues responses for `w`; false if `w` was rolled back or canceled meanwhile (then stop serving it). */
  private emit(w: Watcher, bodies: ResponseBody[], headerRev: number): boolean {
    const resets = w.resets;
    for (const body of bodies) {
      w.eventsSinceTick = true;
      const resp = { header: this.header(headerRev), watchId: w.id };
      w.stream.sendEvents(w, body, resp, w.fragment ? this.maxResponseBytes : null);
      if (w.resets !== resets || (w.state !== 'synced' && w.state !== 'unsynced')) return false;
    }
    return true;
  }

  // ---- catch-up from history -----------------------------------------------------------------------------

  private kick(): void {
    if (this.catchingUp || this.closed) return;
    this.catchingUp = true;
    this.catchUp().catch((err: unknown) => {
      this.catchingUp = false;
      this.log.error({ err }, 'watch hub: catch-up loop failed');
    });
  }

  /** Runs while some unsynced watcher's stream can take responses. One history read at a time. */
  private async catchUp(): Promise<void> {
    for (;;) {
      // Yield to I/O between rounds: the apply loop and the sockets go first.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.closed) break;
      this.serveWithoutReading();
      const leader = this.firstServable();
      if (!leader) break;
      await this.readRound(leader);
    }
    this.catchingUp = false;
  }

  private firstServable(): Watcher | undefined {
    for (const w of this.unsynced) if (w.stream.writable) return w;
    return undefined;
  }

  /** Settles every servable watcher that needs no read: compacted, caught up, or within the recent window. */
  private serveWithoutReading(): void {
    const compactRev = this.history.compactRevision();
    this.delivering += 1;
    try {
      for (const w of [...this.unsynced]) {
        if (w.state !== 'unsynced' || !w.stream.writable) continue;
        if (w.nextRev < compactRev) this.cancelCompacted(w, compactRev);
        else if (w.nextRev > this.liveRev) this.setState(w, 'synced');
        else if (w.nextRev >= this.recent.coveredFrom) this.finishFromRecent(w);
      }
    } finally {
      this.delivering -= 1;
    }
    this.flushProgressRequests();
  }

  /** One bounded read from the leader's nextRev, shared by every unsynced watcher whose nextRev it covers. */
  private async readRound(leader: Watcher): Promise<void> {
    const fromRev = leader.nextRev;
    const toRev = Math.min(this.liveRev, this.recent.coveredFrom - 1);
    if (fromRev > toRev) return; // changed by a sink during the pass above; the next round settles it
    // Watchers whose stream could take responses when the read began get this batch even if their
    // stream backs up before it returns (at most one batch more waits in the queue).
    const participants = new Set<Watcher>();
    for (const w of this.unsynced) {
      if (w.stream.writable && w.nextRev >= fromRev && w.nextRev <= toRev) participants.add(w);
    }
    const epoch = this.epoch;
    let batch: RevisionEvents[];
    try {
      batch = await this.history.events(fromRev, toRev, this.batchRevisions);
      checkBatch(batch, fromRev, toRev);
    } catch (err) {
      if (epoch === this.epoch) this.readFailed(leader, fromRev, err);
      return;
    }
    if (epoch !== this.epoch) return; // restored (or closed) meanwhile: the read may predate the new state
    const coveredTo = batch.length >= this.batchRevisions ? batch[batch.length - 1].revision : toRev;
    this.delivering += 1;
    try {
      for (const w of [...this.unsynced]) {
        if (w.state !== 'unsynced' || w.nextRev < fromRev || w.nextRev > coveredTo + 1) continue;
        if (!w.stream.writable && !participants.has(w)) continue;
        const slices = w.select(batch, w.nextRev, coveredTo);
        if (!this.emit(w, packRevisions(slices, this.maxResponseBytes), this.liveRev)) continue;
        w.nextRev = coveredTo + 1;
        if (w.nextRev > this.liveRev) this.setState(w, 'synced');
        else if (w.nextRev >= this.recent.coveredFrom) this.finishFromRecent(w);
        else this.moveToBack(w);
      }
    } finally {
      this.delivering -= 1;
    }
    this.flushProgressRequests();
  }

  /** Serves `w` from the recent window up to liveRev and makes it synced, in one synchronous step. */
  private finishFromRecent(w: Watcher): void {
    const slices = w.select(this.recent.since(w.nextRev), w.nextRev, this.liveRev);
    if (!this.emit(w, packRevisions(slices, this.maxResponseBytes), this.liveRev)) return;
    w.nextRev = this.liveRev + 1;
    this.setState(w, 'synced');
  }

  private readFailed(leader: Watcher, fromRev: number, err: unknown): void {
    if (leader.state !== 'unsynced' || leader.nextRev !== fromRev) return; // moved on; the next round decides
    const compactRev = this.history.compactRevision();
    if (fromRev < compactRev) return; // compacted while reading: the next round cancels it with compactRev
    this.log.error({ err, watchId: leader.id, fromRev }, 'watch hub: history read failed; canceling the watch');
    this.setState(leader, 'canceled');
    leader.stream.sendControl({
      header: this.header(this.liveRev),
      watchId: leader.id,
      canceled: true,
      cancelReason: errorReason(err),
      events: [],
    });
  }

  /**
   * etcd (mvcc/watcher_group.go chooseAll) answers a watcher whose next revision is compacted with
   * {watch id, compact revision} and canceled: true. etcd 3.4 leaves cancel_reason empty and the header
   * revision 0; Keel fills both (the compacted error, the current revision) so that a reader who does not
   * know the convention still sees why.
   */
  private cancelCompacted(w: Watcher, compactRev: number): void {
    w.stream.dropWatcher(w, 'cancel');
    this.setState(w, 'canceled');
    const resp: WatchResponse = {
      header: this.header(this.liveRev),
      watchId: w.id,
      canceled: true,
      compactRevision: compactRev,
      cancelReason: CancelReasons.compacted,
      events: [],
    };
    w.stream.sendControl(resp);
  }

  // ---- progress -------------------------------------------------------------------------------------------

  /** etcd's sendLoop ticker: a progressNotify watcher that is synced, and was sent no events since the
   *  last tick, gets {watch id, current revision}. One behind a backed-up stream gets nothing (etcd: "If the
   *  ch is full, this watcher is receiving events"). */
  private progressTick(): void {
    if (this.closed) return;
    for (const w of [...this.progressWatchers]) {
      const idle = !w.eventsSinceTick;
      w.eventsSinceTick = false;
      if (idle && w.state === 'synced' && w.stream.writable) {
        w.stream.sendProgress(w, { header: this.header(this.liveRev), watchId: w.id, events: [] });
      }
    }
  }

  private flushProgressRequests(): void {
    if (this.delivering > 0 || this.closed || this.progressWaiting.size === 0) return;
    for (const s of [...this.progressWaiting]) {
      if (s.closed) {
        this.progressWaiting.delete(s);
      } else if (s.unsynced === 0) {
        this.progressWaiting.delete(s);
        s.sendProgressAll({ header: this.header(this.liveRev), watchId: -1, events: [] });
      }
    }
  }

  // ---- watcher state ---------------------------------------------------------------------------------------

  private setState(w: Watcher, to: WatcherState): void {
    const from = w.state;
    if (from === to || from === 'canceled') return;
    if (from === 'synced') this.synced.remove(w);
    if (from === 'unsynced') {
      this.unsynced.delete(w);
      w.stream.unsynced -= 1;
    }
    w.state = to;
    if (to === 'synced') this.synced.add(w);
    if (to === 'unsynced') {
      this.unsynced.add(w);
      w.stream.unsynced += 1;
    }
    if (to === 'canceled') {
      w.resets += 1;
      if (w.stream.watchers.get(w.id) === w) w.stream.watchers.delete(w.id);
      this.progressWatchers.delete(w);
    }
  }

  private moveToBack(w: Watcher): void {
    this.unsynced.delete(w);
    this.unsynced.add(w);
  }
}

/** A history that answers outside what was asked would make a watcher skip or repeat revisions. */
function checkBatch(batch: RevisionEvents[], fromRev: number, toRev: number): void {
  let prev = fromRev - 1;
  for (const rc of batch) {
    if (rc.revision <= prev || rc.revision > toRev) {
      throw new Error(`history returned revision ${rc.revision} for a read of [${fromRev}, ${toRev}] (after ${prev})`);
    }
    prev = rc.revision;
  }
}
