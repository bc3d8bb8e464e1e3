// One client stream (etcd's serverWatchStream): its watch ids, and the queue of responses its sink could
// not take yet. Responses leave in the order they were produced; while the sink is backed up (it returned
// false) they wait here until resume(). The hub decides what is produced; this file only keeps order,
// counts what each watcher has waiting, and drops a watcher's waiting responses when the hub asks.

import type { Logger } from 'pino';
import type { WatchCreateRequest, WatchResponse, WatchSink, WatchStream } from '../api';
import { splitFragments, type ResponseBody } from './fragment';
import type { Watcher } from './watcher';

/** What the stream needs from the hub. */
export interface StreamOwner {
  createWatch(stream: HubStream, req: WatchCreateRequest): void;
  cancelWatch(stream: HubStream, watchId: number): void;
  requestProgress(stream: HubStream): void;
  /** The sink took everything queued and can take more. */
  streamWritable(stream: HubStream): void;
  closeStream(stream: HubStream): void;
  /** A watcher has more than maxBufferedRevisions waiting. */
  bufferOverflow(w: Watcher): void;
}

/**
 * - events: a watcher's events (or one fragment of them).
 * - progress: a watcher's periodic progress notification.
 * - progressAll: the stream-wide progress notification (watch id -1).
 * - control: created / canceled; never dropped.
 */
type ItemKind = 'events' | 'progress' | 'progressAll' | 'control';

/** The fragments of one response: once the first is out, the rest must follow (the client joins them). */
interface FragmentGroup {
  started: boolean;
}

interface QueueItem {
  resp: WatchResponse;
  kind: ItemKind;
  watcher: Watcher | null;
  /** Revisions counted against the watcher's buffer (on the first fragment only). */
  revisions: number;
  /** First revision of the events (events items). */
  fromRev: number;
  group: FragmentGroup | null;
}

export interface Dropped {
  /** First revision of the responses dropped; 0: nothing was dropped. */
  firstRev: number;
  /** Stream-wide progress notifications queued after them were dropped too (they would claim revisions
   *  the watcher no longer has). */
  progressAllDropped: boolean;
}

export class HubStream implements WatchStream {
  /** Watchers of this stream by id. */
  readonly watchers = new Map<number, Watcher>();
  /** How many of them are unsynced (a stream-wide progress notification waits for 0). */
  unsynced = 0;
  closed = false;
  /** The sink said it is backed up; nothing is sent until resume(). */
  private paused = false;
  private nextId = 0;
  private queue: QueueItem[] = [];
  private head = 0;
  private draining = false;

  constructor(
    private readonly owner: StreamOwner,
    private readonly sink: WatchSink,
    private readonly maxBufferedRevisions: number,
    private readonly log: Logger,
  ) {}

  // ---- WatchStream -------------------------------------------------------------------------------------

  create(req: WatchCreateRequest): void {
    if (!this.closed) this.owner.createWatch(this, req);
  }

  cancel(watchId: number): void {
    if (!this.closed) this.owner.cancelWatch(this, watchId);
  }

  requestProgress(): void {
    if (!this.closed) this.owner.requestProgress(this);
  }

  resume(): void {
    if (this.closed) return;
    this.paused = false;
    this.drain();
    if (this.writable) this.owner.streamWritable(this);
  }

  close(): void {
    if (!this.closed) this.owner.closeStream(this);
  }

  // ---- for the hub -------------------------------------------------------------------------------------

  /** Open, and the sink is not backed up (so nothing waits in the queue either). */
  get writable(): boolean {
    return !this.closed && !this.paused;
  }

  /** etcd's watchStream.Watch: the lowest id from nextId up that is free. */
  allocateId(): number {
    while (this.watchers.has(this.nextId)) this.nextId += 1;
    const id = this.nextId;
    this.nextId += 1;
    return id;
  }

  sendControl(resp: WatchResponse): void {
    this.push([{ resp, kind: 'control', watcher: null, revisions: 0, fromRev: 0, group: null }]);
  }

  sendProgress(w: Watcher, resp: WatchResponse): void {
    this.push([{ resp, kind: 'progress', watcher: w, revisions: 0, fromRev: 0, group: null }]);
  }

  sendProgressAll(resp: WatchResponse): void {
    this.push([{ resp, kind: 'progressAll', watcher: null, revisions: 0, fromRev: 0, group: null }]);
  }

  /** One response of whole revisions; with `fragmentBytes`, cut as etcd's fragment option does. */
  sendEvents(w: Watcher, body: ResponseBody, resp: Omit<WatchResponse, 'events'>, fragmentBytes: number | null): void {
    const pieces = fragmentBytes === null ? [body.events] : splitFragments(body.events, fragmentBytes);
    const group = pieces.length > 1 ? { started: false } : null;
    const items = pieces.map(
      (events, i): QueueItem => ({
        resp: i < pieces.length - 1 ? { ...resp, events, fragment: true } : { ...resp, events },
        kind: 'events',
        watcher: w,
        revisions: i === 0 ? body.revisions : 0,
        fromRev: body.fromRev,
        group,
      }),
    );
    this.push(items);
  }

  /**
   * Removes the events and progress notifications `w` has waiting, except the rest of a response whose
   * first fragment is already out (the client is joining it: it must be completed). On 'overflow', the
   * stream-wide progress notifications queued after the first dropped response go too, since they would
   * vouch for revisions `w` lost ('cancel': the watch is leaving the stream; they vouch for the others).
   */
  dropWatcher(w: Watcher, mode: 'cancel' | 'overflow'): Dropped {
    const kept: QueueItem[] = [];
    let firstRev = 0;
    let progressAllDropped = false;
    for (let i = this.head; i < this.queue.length; i++) {
      const item = this.queue[i];
      const mine = item.watcher === w && (item.kind === 'events' || item.kind === 'progress');
      if (mine && !item.group?.started) {
        if (item.kind === 'events' && firstRev === 0) firstRev = item.fromRev;
        w.buffered -= item.revisions;
        continue;
      }
      if (mode === 'overflow' && item.kind === 'progressAll' && firstRev !== 0) {
        progressAllDropped = true;
        continue;
      }
      kept.push(item);
    }
    this.queue = kept;
    this.head = 0;
    return { firstRev, progressAllDropped };
  }

  /** Ends the stream: nothing more reaches the sink. */
  shutdown(): void {
    this.closed = true;
    this.queue = [];
    this.head = 0;
  }

  // ---- the queue -----------------------------------------------------------------------------------------

  private push(items: QueueItem[]): void {
    if (this.closed) return;
    const w = items[0].watcher;
    for (const item of items) {
      this.queue.push(item);
      if (item.watcher) item.watcher.buffered += item.revisions;
    }
    this.drain();
    if (w && w.buffered > this.maxBufferedRevisions && !this.closed) this.owner.bufferOverflow(w);
  }

  /** Hands queued responses to the sink until it is backed up. Re-entrant calls (a sink that creates a
   *  watch, say) only append; the outer loop sends what they added, in order. */
  private drain(): void {
    if (this.draining) return;
    this.draining = true;
    try {
      while (!this.paused && !this.closed && this.head < this.queue.length) {
        const item = this.queue[this.head++];
        if (item.watcher) item.watcher.buffered -= item.revisions;
        if (item.group) item.group.started = true;
        let ok: boolean;
        try {
          ok = this.sink(item.resp);
        } catch (err) {
          this.log.error({ err }, 'watch stream sink failed; closing the stream');
          this.owner.closeStream(this);
          return;
        }
        if (ok === false) this.paused = true;
      }
      if (this.closed) return;
      if (this.head === this.queue.length) {
        this.queue = [];
        this.head = 0;
      } else if (this.head > 256 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
    } finally {
      this.draining = false;
    }
  }
}
