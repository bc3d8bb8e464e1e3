// The Raft driver: the only place where the pure core meets time, disks and the network. One loop handles
// each Ready strictly in the order the core requires: install a received snapshot, persist hard state and
// entries (one fdatasync for the whole batch: every proposal that arrived while the previous batch was being
// written shares it), send messages, apply committed entries, advance. Snapshots are taken here, every
// `snapshotCount` applied entries.

import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { BUGS, LAZY_WAL_MS } from '../bugs';
import type { ApplyOutput, StateMachine } from '../kv/state-machine';
import { Raft } from './core/raft';
import { decodeConfChange, type ConfChange, type ConfChangeData } from './core/confchange';
import {
  EntryType,
  MessageType,
  StateRole,
  type ConfState,
  type Message,
  type NodeId,
  type ReadState,
  type Ready,
  type Snapshot,
  type SnapshotMeta,
} from './core/types';
import type { Snapshotter } from './snapshot/snapshotter';
import type { Wal } from './wal/wal';

/** Messages only a leader sends, which promise nothing about this member's own disk. */
const SEND_BEFORE_PERSIST = new Set<MessageType>([
  MessageType.App,
  MessageType.Heartbeat,
  MessageType.Snap,
  MessageType.ReadIndexResp,
]);

export interface RaftNodeOptions {
  raft: Raft;
  wal: Wal;
  snapshotter: Snapshotter;
  stateMachine: StateMachine;
  /** Hands messages to the peer transport (never blocks). */
  send: (msgs: Message[]) => void;
  logger: Logger;
  tickMs: number;
  snapshotCount: number;
  snapshotCatchupEntries: number;
  /** Index of the newest snapshot on disk at start. */
  snapshotIndex: number;
  /** Seconds spent writing a snapshot taken here / received from the leader (for metrics). */
  onSnapshotSaved?: (seconds: number) => void;
  onSnapshotInstalled?: (seconds: number) => void;
}

export interface RaftNodeEvents {
  /** Committed entries up to `index` were applied, with what they did. */
  applied: [index: number, output: ApplyOutput];
  /** The state machine was replaced by a snapshot at `index` (its in-memory views must be rebuilt). */
  restored: [index: number];
  /** A membership change was applied; `confState` is the configuration now in force. */
  confChange: [change: ConfChangeData, confState: ConfState];
  readState: [rs: ReadState];
  leaderChange: [leader: NodeId, term: number];
  fatal: [err: Error];
}

export class RaftNode extends EventEmitter<RaftNodeEvents> {
  readonly raft: Raft;
  private readonly opts: RaftNodeOptions;
  private readonly log: Logger;
  private timer?: NodeJS.Timeout;
  private running = false;
  private scheduled = false;
  private stopped = false;
  private loopDone: Promise<void> = Promise.resolve();
  private snapshotIndex: number;
  /** A local snapshot being written in the background, and one written whose log compaction is due. */
  private snapshotting = false;
  private snapshotWrite: Promise<void> = Promise.resolve();
  private written?: { snap: Snapshot; keepFrom: number; started: number; bytes: number };
  /** The ackBeforeFsync bug's batches not yet written (see saveLazily), and its timer and write chain. */
  private readonly lazyWal: Array<Pick<Ready, 'hardState' | 'entries'>> = [];
  private lazyFlushTimer?: NodeJS.Timeout;
  private lazyTimerFlush: Promise<void> = Promise.resolve();
  private lazyFlush: Promise<void> = Promise.resolve();
  private lastLeader: NodeId = '';
  private lastTerm = 0;
  private failure?: Error;

  constructor(opts: RaftNodeOptions) {
    super();
    this.opts = opts;
    this.raft = opts.raft;
    this.log = opts.logger;
    this.snapshotIndex = opts.snapshotIndex;
  }

  start(): void {
    this.timer = setInterval(() => {
      this.raft.tick();
      this.schedule();
    }, this.opts.tickMs);
    this.schedule();
  }

  /** The error that stopped the member (a failed write to the WAL or the backend), if any. */
  get fatalError(): Error | undefined {
    return this.failure;
  }

  get applied(): number {
    return this.raft.log.applied;
  }

  get snapshotIdx(): number {
    return this.snapshotIndex;
  }

  step(m: Message): void {
    if (this.stopped) return;
    this.raft.step(m);
    this.schedule();
  }

  propose(data: Uint8Array): boolean {
    if (this.stopped) return false;
    const ok = this.raft.propose(data);
    this.schedule();
    return ok;
  }

  readIndex(context: Uint8Array): boolean {
    if (this.stopped) return false;
    const ok = this.raft.readIndex(context);
    this.schedule();
    return ok;
  }

  isLeader(): boolean {
    return this.raft.role === StateRole.Leader;
  }

  /** Leader: proposes a membership change (see Raft.proposeConfChange); false: refused, reason in
   *  raft.lastRejection. */
  proposeConfChange(cc: ConfChange): boolean {
    if (this.stopped) return false;
    const ok = this.raft.proposeConfChange(cc);
    this.schedule();
    return ok;
  }

  /** Leader: hands leadership to `target` (see Raft.transferLeadership); false with the core's reason. */
  transferLeadership(target: NodeId): { ok: true } | { ok: false; reason: string } {
    if (this.stopped) return { ok: false, reason: 'the member is stopping' };
    const ok = this.raft.transferLeadership(target);
    this.schedule();
    return ok ? { ok: true } : { ok: false, reason: this.raft.lastRejection ?? 'refused' };
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.stopped) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.running || this.stopped) return;
      this.running = true;
      this.loopDone = this.processReadies()
        .catch((err: Error) => this.fail(err))
        .finally(() => {
          this.running = false;
          // Work that arrived during the last await is picked up now.
          if (!this.stopped && this.raft.hasReady()) this.schedule();
        });
    });
  }

  private fail(err: Error): void {
    // A write to the WAL or the backend failed: continuing could acknowledge writes that are not durable,
    // so the member stops taking part (etcd panics here).
    this.failure = err;
    this.log.fatal({ err }, 'raft loop failed; this member stops');
    this.stopTimers();
    this.stopped = true;
    this.emit('fatal', err);
  }

  private async processReadies(): Promise<void> {
    await this.compactAfterSnapshot();
    while (!this.stopped && this.raft.hasReady()) {
      const rd = this.raft.ready();
      await this.handleReady(rd);
      this.raft.advance(rd);
      this.maybeSnapshot();
      await this.compactAfterSnapshot();
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState || rd.hardState) this.logRoleChanges();
    const { wal, stateMachine } = this.opts;
    // A leader's appends and heartbeats may leave before its own fsync (Raft thesis §10.2.1): every commit
    // index they carry counts only entries of earlier batches, which this sequential loop has already made
    // durable here. Answers (votes, append acknowledgements) wait for the fsync: they promise durability.
    const early: Message[] = [];
    const late: Message[] = [];
    for (const m of rd.messages) (SEND_BEFORE_PERSIST.has(m.type) ? early : late).push(m);
    if (early.length > 0) this.opts.send(early);
    if (rd.snapshot) {
      if (BUGS.ackBeforeFsync) await this.flushLazyWal();
      await this.installSnapshot(rd.snapshot);
    }
    if (BUGS.ackBeforeFsync && this.raft.role !== StateRole.Leader) {
      // The Jepsen self-test's broken build only (BUGS is all false in every real build): see saveLazily.
      this.saveLazily(rd);
      if (late.length > 0) this.opts.send(late);
      if (rd.committed.length > 0 && this.lazyWal.length > 0) await this.lazyTimerFlush;
    } else {
      if (BUGS.ackBeforeFsync) await this.flushLazyWal();
      if (rd.hardState || rd.entries.length > 0) await wal.save(rd.hardState, rd.entries, rd.mustSync);
      if (late.length > 0) this.opts.send(late);
    }
    if (rd.committed.length > 0) {
      const output = await stateMachine.apply(rd.committed);
      // A membership change takes effect once applied, in log order, before advance() (as etcd-raft asks).
      for (const e of rd.committed) {
        if (e.type !== EntryType.ConfChange) continue;
        const cc = decodeConfChange(e.data);
        const confState = this.raft.applyConfChange(cc);
        this.log.info({ index: e.index, change: cc.type, member: cc.nodeId, ...confState }, 'membership changed');
        this.emit('confChange', cc, confState);
      }
      this.emit('applied', rd.committed[rd.committed.length - 1].index, output);
    }
    for (const rs of rd.readStates) this.emit('readState', rs);
  }

  /**
   * The ackBeforeFsync bug of the Jepsen self-test's broken build (never in a real build: BUGS is all false):
   * a follower queues the batch in memory and answers at once — votes and append acknowledgements promise
   * what is not written — and writes the queue, without fsync, when a timer LAZY_WAL_MS later fires. It
   * applies committed entries only after that write, so that its store never runs ahead of its log (a
   * restart would refuse that, and the bug would show as a dead member instead of lost writes). SIGKILL
   * loses the queue: acknowledged writes that only the killed followers held are gone.
   */
  private saveLazily(rd: Ready): void {
    if (!rd.hardState && rd.entries.length === 0) return;
    this.lazyWal.push({ hardState: rd.hardState, entries: rd.entries });
    if (this.lazyFlushTimer !== undefined) return;
    this.lazyTimerFlush = new Promise<void>((resolve) => {
      this.lazyFlushTimer = setTimeout(() => {
        this.lazyFlushTimer = undefined;
        this.flushLazyWal().then(resolve, (err: Error) => {
          this.fail(err);
          resolve();
        });
      }, LAZY_WAL_MS);
    });
  }

  /** Writes the queued batches in order (one chain, whoever asks: the timer, a role change, a snapshot). */
  private flushLazyWal(): Promise<void> {
    this.lazyFlush = this.lazyFlush.then(async () => {
      for (let b = this.lazyWal.shift(); b !== undefined; b = this.lazyWal.shift()) {
        await this.opts.wal.save(b.hardState, b.entries, false);
      }
    });
    return this.lazyFlush;
  }

  private async installSnapshot(s: Snapshot): Promise<void> {
    const { wal, snapshotter, stateMachine } = this.opts;
    // Order matters for a crash in the middle: the snapshot file first, then the WAL marker that voids the
    // older log, then the state machine in one batch. On restart, a snapshot newer than the applied index
    // is restored again, so a crash at any point leaves the old state or the new one.
    const started = performance.now();
    await snapshotter.save(s);
    this.opts.onSnapshotInstalled?.((performance.now() - started) / 1000);
    await wal.saveSnapshotMarker({ index: s.meta.index, term: s.meta.term });
    await stateMachine.restore(s);
    this.snapshotIndex = s.meta.index;
    this.log.info(
      { index: s.meta.index, term: s.meta.term, bytes: s.data.length },
      'installed snapshot from the leader',
    );
    this.emit('restored', s.meta.index);
  }

  /**
   * Starts a snapshot when `snapshotCount` entries were applied since the last one. The state machine's dump
   * and the file are written in the background (the store reads from a LevelDB snapshot, so applies go on
   * meanwhile): with a large state they take seconds, and a loop that waited would stop heartbeats and
   * replication for as long. The log is compacted afterwards, between two batches (compactAfterSnapshot).
   */
  private maybeSnapshot(): void {
    const applied = this.raft.log.applied;
    if (this.snapshotting || applied - this.snapshotIndex < this.opts.snapshotCount) return;
    const term = this.raft.log.term(applied);
    if (term === undefined) return;
    this.snapshotting = true;
    const started = Date.now();
    // The configuration at the snapshot's index: a follower that installs it starts from that one.
    const cs = this.raft.confStateAt(applied) ?? this.raft.confState();
    const write = async (): Promise<void> => {
      const data = await this.opts.stateMachine.snapshot();
      const meta: SnapshotMeta = { index: applied, term, voters: [...cs.voters] };
      if (cs.learners.length > 0) meta.learners = [...cs.learners];
      if (cs.removed !== undefined && cs.removed.length > 0) meta.removed = [...cs.removed];
      const snap: Snapshot = { meta, data };
      const saveStarted = performance.now();
      await this.opts.snapshotter.save(snap);
      this.opts.onSnapshotSaved?.((performance.now() - saveStarted) / 1000);
      const keepFrom = Math.max(1, applied - this.opts.snapshotCatchupEntries);
      this.written = { snap, keepFrom, started, bytes: data.length };
    };
    this.snapshotWrite = write()
      .catch((err: Error) => {
        if (!this.stopped) this.fail(err);
      })
      .finally(() => {
        this.snapshotting = false;
        this.schedule();
      });
  }

  /** Drops the log entries and WAL segments a snapshot written in the background made redundant. */
  private async compactAfterSnapshot(): Promise<void> {
    const w = this.written;
    if (w === undefined) return;
    this.written = undefined;
    if (BUGS.ackBeforeFsync) await this.flushLazyWal();
    const { index, term } = w.snap.meta;
    // A snapshot installed from the leader meanwhile is newer: this one is of no use any more.
    if (index <= this.snapshotIndex) return;
    this.raft.compact(w.snap, w.keepFrom);
    await this.opts.wal.releaseTo(w.keepFrom);
    await this.opts.snapshotter.purge();
    this.snapshotIndex = index;
    this.log.info({ index, term, bytes: w.bytes, keepFrom: w.keepFrom, ms: Date.now() - w.started }, 'snapshot taken');
  }

  private logRoleChanges(): void {
    const { lead, term, role } = this.raft;
    if (lead !== this.lastLeader || term !== this.lastTerm) {
      if (lead !== this.lastLeader) {
        this.log.info({ leader: lead || 'none', term, role }, lead ? 'leader changed' : 'leader lost');
        this.emit('leaderChange', lead, term);
      } else {
        this.log.info({ term, role }, 'term changed');
      }
      this.lastLeader = lead;
      this.lastTerm = term;
    }
  }

  private stopTimers(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops ticking and waits for the batch in progress to finish (so nothing is half-written). */
  async stop(): Promise<void> {
    this.stopTimers();
    this.stopped = true;
    await this.loopDone.catch(() => undefined);
    if (BUGS.ackBeforeFsync) {
      if (this.lazyFlushTimer) clearTimeout(this.lazyFlushTimer);
      await this.flushLazyWal().catch(() => undefined);
    }
    // A snapshot being written finishes (its file is complete or absent), so the store can be closed.
    await this.snapshotWrite;
  }
}
