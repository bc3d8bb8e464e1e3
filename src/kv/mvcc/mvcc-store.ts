// The replicated state machine: etcd v3's MVCC key-value store (one global revision, history until
// compaction), its lease table and Keel's request deduplication, on LevelDB.
//
// LevelDB layout. One-byte table prefixes (keys.ts); integers big-endian (u64 = 8 bytes, u32 = 4); a user
// key inside a composite key is escaped (every 0x00 -> 00 ff, then 00 01) so that it sorts before anything
// that follows it. Values: records.ts.
//
//   00 "format"                    -> "keel-mvcc/1"
//   00 "state"                     -> applied index u64 | revision u64 | compact revision u64
//   00 "compaction"                -> done u64 | cursor revision u64 | cursor sub-revision u32
//   01 <key>                       -> Latest: the newest version of a live key:
//                                     01 | create u64 | mod u64 | mod sub u32 | version u64 | lease u64 | value
//   02 <escaped key> <rev> <sub>   -> History: every retained version, by key then revision:
//                                     01 | create u64 | version u64 | lease u64 | value, or 00 (tombstone)
//   03 <rev u64> <sub u32>         -> Events: every retained change, by revision:
//                                     flags u8 (1 delete, 2 has prev) | prev rev u64 | prev sub u32 | key
//   04 <lease u64> <key>           -> (empty): the keys attached to a lease
//   05 <lease u64>                 -> ttl u64 | remaining ttl u64
//   06 <escaped client> <seq u64>  -> Dedup: entry index u64 | msgpack of the first application's result
//   07 <client>                    -> expired-below seq u64 | records retained u64
//   08 <entry index u64>           -> seq u64 | client: which record that entry made (cleanup by index)
//
// Why three tables for the keys: a range at the current revision reads Latest only (no history scan, one
// get for a single key); a read at an older revision reads History (one seek for a single key; a range reads
// the retained versions it covers); the watch hub reads Events in revision order, and compaction walks them
// to find what it may delete (each event names the version it replaced). A put costs one get and three
// writes (Latest, History, Events), values written twice. Nothing per key is held in memory; the lease table
// (small) is, and the applied index, revisions and compaction progress.
//
// The applied index, revision and compact revision are one record written in the same batch as the state
// they describe, so a crash never applies an entry twice or skips one, and a reader gets them from the same
// LevelDB snapshot as the data.
//
// Snapshot data (snapshot-data.ts): every LevelDB pair of the store, in key order, framed as
//   "KEELMVCC" | framing version u32 (1) | pair count u64 | { key length u32 | key | value length u32 | value }*
// The meta records inside carry the format tag and the applied index; restore() validates every record
// and refuses data whose applied index is not the snapshot's.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Level } from 'level';
import pino, { type Logger } from 'pino';
import { decodeConfChange, type ConfChangeData } from '../../raft/core/confchange';
import { EntryType, type Entry, type Snapshot } from '../../raft/core/types';
import { Errors, type AlarmMember, type MemberInfo, type RangeRequest, type TxnRequest, type TxnResponse } from '../api';
import { decodeProposal } from '../proposal';
import type {
  AppliedCommand,
  ApplyOutput,
  LeaseChanges,
  LeaseRecord,
  LocalRange,
  Proposal,
  RevisionEvents,
  StateMachine,
} from '../state-machine';
import { crc32c } from '../../util/crc32c';
import { txnHasWrites } from '../txn-shape';
import { executeCommand } from './apply-command';
import {
  META_ALARMS,
  META_MEMBERS,
  applyMemberChange,
  changeAlarms,
  encodeAlarms,
  encodeMembers,
  sortMembers,
} from './cluster-records';
import { executeTxnCommand } from './apply-txn';
import { DEFAULT_COMPACTION_BATCH_KEYS, compactionBatch, retarget } from './compactor';
import { DEFAULT_DEDUP_WINDOW, DedupCall } from './dedup';
import { readEvents } from './events';
import {
  HISTORY_END,
  META_COMPACTION,
  META_STATE,
  TABLE_END,
  Table,
  decodeHistoryKey,
  decodeLeaseKey,
  decodeLeaseKeysKey,
  dedupClientKey,
  dedupKey,
  latestKey,
  leaseKey,
  leaseKeysBounds,
} from './keys';
import { evaluateRange } from './range';
import {
  decodeLease,
  encodeCompaction,
  encodeState,
  type CompactionProgress,
  type MetaState,
} from './records';
import { DbReader, Overlay, OverlayReader, PrefetchReader, type Db, type Reader } from './reader';
import { initialize, load, readState } from './store-meta';
import type { DedupResult } from './result-codec';
import { readSnapshotData, SnapshotWriter } from './snapshot-data';
import { checkTxnShape } from './txn-check';
import { WriteTxn } from './write-txn';

export { decodeSnapshotData, type SnapshotSummary } from './snapshot-data';

export interface MvccStoreOptions {
  /** Events handled per LevelDB batch of the background compaction (default 1000). */
  compactionBatchKeys?: number;
  /** Applied entries a deduplication record is kept for (default 100,000; the same on every member). */
  dedupWindowEntries?: number;
  /** Told how long each apply() call's LevelDB batch took to write, in seconds (the member's
   *  etcd_disk_backend_commit_duration_seconds). Must not throw. */
  onCommit?: (seconds: number) => void;
  /** Tests only: called before each apply batch is written; an error it returns is thrown as the write's own
   *  (to simulate a full disk or EIO in the backend). */
  injectWriteError?: () => Error | undefined;
}

export { INITIAL_REVISION } from './store-meta';

interface Waiter {
  revision: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class MvccStore implements StateMachine {
  private state: MetaState;
  private compaction: CompactionProgress;
  private readonly leaseMap = new Map<number, LeaseRecord>();
  /** The member registry and the alarms (cluster-records.ts), as the last apply left them. */
  private memberList: MemberInfo[];
  private alarmList: AlarmMember[];
  /** apply, compaction batches, restore, the start of snapshot() and close run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private compactorRunning = false;
  private compactorError: Error | undefined;
  private waiters: Waiter[] = [];
  /** Every deduplication record made at a lower entry index is gone (see DedupCall.begin). */
  private dedupScanFrom = 0;
  private readonly batchKeys: number;
  private readonly dedupWindow: number;
  private readonly onCommit: ((seconds: number) => void) | undefined;
  private readonly injectWriteError: (() => Error | undefined) | undefined;

  private constructor(
    private readonly db: Db,
    private readonly dir: string,
    private readonly log: Logger,
    loaded: Awaited<ReturnType<typeof load>>,
    opts: MvccStoreOptions,
  ) {
    this.memberList = loaded.members;
    this.alarmList = loaded.alarms;
    this.state = loaded.state;
    this.compaction = loaded.compaction;
    for (const l of loaded.leases) this.leaseMap.set(l.id, l);
    this.batchKeys = positive(opts.compactionBatchKeys, DEFAULT_COMPACTION_BATCH_KEYS, 'compactionBatchKeys');
    this.dedupWindow = positive(opts.dedupWindowEntries, DEFAULT_DEDUP_WINDOW, 'dedupWindowEntries');
    this.onCommit = opts.onCommit;
    this.injectWriteError = opts.injectWriteError;
  }

  static async open(dir: string, logger?: Logger, opts: MvccStoreOptions = {}): Promise<MvccStore> {
    const log = (logger ?? pino({ level: 'silent' })).child({ component: 'mvcc-store' });
    const db: Db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    try {
      await initialize(db, dir);
      const loaded = await load(new DbReader(db));
      const store = new MvccStore(db, dir, log, loaded, opts);
      log.info(
        {
          dir,
          applied: loaded.state.applied,
          revision: loaded.state.revision,
          compactRevision: loaded.state.compactRevision,
          compactedTo: loaded.compaction.done,
          leases: loaded.leases.length,
        },
        'mvcc store opened',
      );
      // A compaction that was under way when the store last stopped resumes.
      store.kickCompactor();
      return store;
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  appliedIndex(): number {
    return this.state.applied;
  }

  revision(): number {
    return this.state.revision;
  }

  compactRevision(): number {
    return this.state.compactRevision;
  }

  apply(entries: Entry[]): Promise<ApplyOutput> {
    return this.exclusive(() => this.applyNow(entries));
  }

  private async applyNow(entries: Entry[]): Promise<ApplyOutput> {
    const todo: Entry[] = [];
    let applied = this.state.applied;
    for (const e of entries) {
      if (e.index <= applied) continue;
      if (e.index !== applied + 1) {
        // Skipping an entry would make this member's state differ from the others' for good.
        throw new Error(`mvcc store: entry ${e.index} cannot follow applied index ${applied}`);
      }
      applied = e.index;
      todo.push(e);
    }
    const output: ApplyOutput = { results: new Map(), changes: [], leases: { upserted: [], removed: [] } };
    if (todo.length === 0) return output;

    const call = new Overlay();
    const base = new PrefetchReader(this.db);
    const callReader = new OverlayReader(base, call);
    const decoded = todo.map((e) => this.decode(e));
    await base.prefetch(decoded.flatMap((p) => (p === undefined ? [] : keysToPrefetch(p))));
    let revision = this.state.revision;
    let compactRevision = this.state.compactRevision;
    let compaction = this.compaction;
    const dedup = await DedupCall.begin(callReader, this.dedupWindow, applied, this.dedupScanFrom);
    let members = this.memberList;
    let alarms = this.alarmList;

    for (let i = 0; i < todo.length; i++) {
      const e = todo[i];
      await dedup.expireBefore(e.index, callReader, call);
      if (e.type === EntryType.ConfChange) {
        const cc = this.decodeConfChange(e);
        if (cc !== undefined) members = applyMemberChange(members, cc);
        continue;
      }
      const proposal = decoded[i];
      if (proposal === undefined) continue;
      const { id, requestId, cmd } = proposal;
      if (cmd.op === 'memberAttrs') {
        const self = members.find((m) => m.id === cmd.memberId);
        if (self !== undefined) {
          const others = members.filter((m) => m.id !== cmd.memberId);
          members = sortMembers([...others, { ...self, name: cmd.name, clientUrls: [...cmd.clientUrls] }]);
        }
        output.results.set(e.index, { id, result: { op: 'memberAttrs', revision } });
        continue;
      }
      if (cmd.op === 'alarm') {
        const next = changeAlarms(alarms, cmd.action, cmd.memberId, cmd.alarm);
        alarms = next.alarms;
        output.results.set(e.index, { id, result: { op: 'alarm', revision, alarms: next.changed } });
        continue;
      }
      const dedupable = requestId !== undefined && (cmd.op === 'put' || cmd.op === 'delete' || cmd.op === 'txn');
      if (dedupable) {
        const found = await dedup.lookup(callReader, requestId.client, requestId.seq, revision);
        if (found.kind !== 'new') {
          output.results.set(e.index, { id, result: found.result });
          continue;
        }
      }
      const mine = new Overlay(call);
      const out = await executeCommand(
        {
          overlay: mine,
          reader: new OverlayReader(base, mine),
          revision,
          compactRevision,
          lease: (leaseId) => this.leaseThrough(mine, leaseId),
        },
        cmd,
      );
      if (out.result.op !== 'error') {
        mine.commit();
        if (out.events !== undefined) {
          revision += 1;
          output.changes.push({ revision, events: out.events });
        }
        if (out.compactTo !== undefined) {
          compaction = retarget(compaction, compactRevision);
          compactRevision = out.compactTo;
        }
      }
      if (dedupable) {
        await dedup.record(callReader, call, e.index, requestId.client, requestId.seq, out.result as DedupResult);
      }
      output.results.set(e.index, { id, result: out.result } satisfies AppliedCommand);
    }

    const state: MetaState = { applied, revision, compactRevision };
    const ops = [...call.ops(), { type: 'put' as const, key: META_STATE, value: encodeState(state) }];
    if (compaction !== this.compaction) ops.push({ type: 'put', key: META_COMPACTION, value: encodeCompaction(compaction) });
    if (members !== this.memberList) ops.push({ type: 'put', key: META_MEMBERS, value: encodeMembers(members) });
    if (alarms !== this.alarmList) ops.push({ type: 'put', key: META_ALARMS, value: encodeAlarms(alarms) });
    const injected = this.injectWriteError?.();
    if (injected !== undefined) throw injected;
    const t0 = performance.now();
    await this.db.batch(ops);
    this.onCommit?.((performance.now() - t0) / 1000);
    if (members !== this.memberList) output.members = members;
    if (alarms !== this.alarmList) output.alarms = alarms;
    this.memberList = members;
    this.alarmList = alarms;

    this.state = state;
    this.compaction = compaction;
    this.dedupScanFrom = Math.max(this.dedupScanFrom, applied - this.dedupWindow + 1);
    output.leases = this.takeLeaseChanges(call);
    this.kickCompactor();
    return output;
  }

  /** Moves the lease records an apply() call wrote into the in-memory table, and says what changed (every
   *  keep-alive and checkpoint counts, even one that left the record as it was: the lessor renews on it). */
  private takeLeaseChanges(call: Overlay): LeaseChanges {
    const changes: LeaseChanges = { upserted: [], removed: [] };
    for (const [k, v] of call.ownKeys(Table.Leases)) {
      const leaseId = decodeLeaseKey(k);
      if (leaseId === undefined) continue;
      if (v === null) {
        this.leaseMap.delete(leaseId);
        changes.removed.push(leaseId);
      } else {
        const rec = decodeLease(leaseId, v, k);
        this.leaseMap.set(leaseId, rec);
        changes.upserted.push(rec);
      }
    }
    return changes;
  }

  /** The proposal of an entry; undefined for entries that propose nothing, and for malformed ones. */
  private decode(e: Entry): Proposal | undefined {
    if (e.type === EntryType.ConfChange || e.data.length === 0) return undefined;
    if (e.type !== EntryType.Normal) {
      this.log.error({ index: e.index, term: e.term, type: e.type }, 'entry of unknown type applied as a no-op');
      return undefined;
    }
    try {
      return decodeProposal(e.data);
    } catch (err) {
      // Every member decodes the same bytes to the same verdict, so skipping keeps them in agreement.
      this.log.error({ index: e.index, term: e.term, err: (err as Error).message }, 'malformed entry applied as a no-op');
      return undefined;
    }
  }

  /** A ConfChange entry's change; undefined (logged) for an undecodable one, which the Raft driver refuses too. */
  private decodeConfChange(e: Entry): ConfChangeData | undefined {
    try {
      return decodeConfChange(e.data);
    } catch (err) {
      this.log.error({ index: e.index, err: (err as Error).message }, 'undecodable conf change entry');
      return undefined;
    }
  }

  members(): MemberInfo[] {
    return this.memberList.map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] }));
  }

  alarms(): AlarmMember[] {
    return this.alarmList.map((a) => ({ ...a }));
  }

  seedMembers(members: MemberInfo[]): Promise<void> {
    return this.exclusive(async () => {
      if (this.memberList.length > 0) return;
      const sorted = sortMembers(members);
      await this.db.put(META_MEMBERS, encodeMembers(sorted));
      this.memberList = sorted;
    });
  }

  resetCluster(members: MemberInfo[]): Promise<void> {
    return this.exclusive(async () => {
      const sorted = sortMembers(members);
      await this.db.batch([
        { type: 'put', key: META_MEMBERS, value: encodeMembers(sorted) },
        { type: 'put', key: META_ALARMS, value: encodeAlarms([]) },
      ]);
      this.memberList = sorted;
      this.alarmList = [];
    });
  }

  /** The lease as the pending writes of an apply() call leave it. */
  private leaseThrough(overlay: Overlay, id: number): LeaseRecord | undefined {
    const k = leaseKey(id);
    const v = overlay.lookup(k.toString('latin1'));
    if (v === null) return undefined;
    if (v !== undefined) return decodeLease(id, v, k);
    return this.leaseMap.get(id);
  }

  /** Runs `fn` on a reader at one LevelDB snapshot, with the state record of that snapshot. */
  private async atSnapshot<T>(fn: (reader: Reader, state: MetaState) => Promise<T>): Promise<T> {
    this.assertOpen();
    const snapshot = this.db.snapshot();
    try {
      const reader = new DbReader(this.db, snapshot);
      return await fn(reader, await readState(reader));
    } finally {
      await snapshot.close();
    }
  }

  range(req: RangeRequest): Promise<LocalRange> {
    return this.atSnapshot((reader, s) =>
      evaluateRange(
        { reader, currentRevision: s.revision, maxRevision: s.revision, compactRevision: s.compactRevision },
        req,
      ),
    );
  }

  async readTxn(req: TxnRequest): Promise<{ revision: number; txn: TxnResponse }> {
    if (txnHasWrites(req)) throw Errors.invalid('a txn with writes must go through the log, not readTxn');
    const shapeError = checkTxnShape(req);
    if (shapeError !== undefined) throw shapeError;
    return this.atSnapshot(async (reader, s) => {
      // Never written: the txn has no writes (checked above).
      const w = new WriteTxn(new Overlay(), s.revision);
      const txn = await executeTxnCommand(
        { reader, w, compactRevision: s.compactRevision, leaseExists: (id) => this.leaseMap.has(id) },
        req,
      );
      return { revision: s.revision, txn };
    });
  }

  events(fromRev: number, toRev: number, maxRevisions: number): Promise<RevisionEvents[]> {
    return this.atSnapshot(async (reader, s) => {
      if (fromRev < s.compactRevision) throw Errors.compacted();
      return readEvents(reader, Math.max(fromRev, 1), Math.min(toRev, s.revision), maxRevisions);
    });
  }

  leases(): LeaseRecord[] {
    return [...this.leaseMap.values()].sort((a, b) => a.id - b.id);
  }

  async leaseKeys(id: number): Promise<Buffer[]> {
    this.assertOpen();
    const keys: Buffer[] = [];
    for await (const chunk of new DbReader(this.db).scanKeys(leaseKeysBounds(id))) {
      for (const k of chunk) {
        const decoded = decodeLeaseKeysKey(k);
        if (decoded !== undefined) keys.push(decoded.key);
      }
    }
    return keys;
  }

  compacted(revision: number): Promise<void> {
    if (revision <= this.compaction.done) return Promise.resolve();
    if (this.closed) return Promise.reject(new Error('mvcc store: closed'));
    if (this.compactorError !== undefined) return Promise.reject(this.compactorError);
    return new Promise((resolve, reject) => this.waiters.push({ revision, resolve, reject }));
  }

  /** Starts the background compaction if history below the compact revision is still to be removed. */
  private kickCompactor(): void {
    if (this.compactorRunning || this.closed || this.compaction.done >= this.state.compactRevision) return;
    this.compactorRunning = true;
    this.compactorError = undefined;
    void this.runCompactor();
  }

  private async runCompactor(): Promise<void> {
    try {
      for (;;) {
        // Each batch takes its turn in the queue like an apply() call, so an apply waits for one batch at most.
        const more = await this.exclusive(async () => {
          const target = this.state.compactRevision;
          if (this.compaction.done >= target) return false;
          const batch = await compactionBatch(new DbReader(this.db), target, this.compaction, this.batchKeys);
          await this.db.batch(batch.ops);
          this.compaction = batch.progress;
          if (batch.progress.done === target) {
            this.log.info({ compactRevision: target }, 'history compacted');
          }
          this.settleWaiters();
          return batch.progress.done < target;
        });
        if (!more) break;
        // Let the event loop serve reads between batches.
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      if (!this.closed) {
        this.compactorError = err as Error;
        this.log.error({ err: (err as Error).message }, 'background compaction failed');
        this.settleWaiters();
      }
    } finally {
      this.compactorRunning = false;
    }
    // A compaction recorded while the last batch was finishing.
    if (this.compactorError === undefined) this.kickCompactor();
  }

  private settleWaiters(): void {
    const still: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.revision <= this.compaction.done) w.resolve();
      else if (this.closed) w.reject(new Error('mvcc store: closed'));
      else if (this.compactorError !== undefined) w.reject(this.compactorError);
      else still.push(w);
    }
    this.waiters = still;
  }

  async snapshot(): Promise<Uint8Array> {
    // The iterator's implicit LevelDB snapshot is taken between two exclusive operations, so it holds the
    // state at appliedIndex(); reading it then does not hold up apply().
    const it = await this.exclusive(async () => this.db.iterator());
    const w = new SnapshotWriter();
    try {
      for (;;) {
        const chunk = await it.nextv(1024);
        if (chunk.length === 0) break;
        for (const [k, v] of chunk) w.add(k, v);
      }
    } finally {
      await it.close();
    }
    return w.finish();
  }

  restore(snapshot: Snapshot): Promise<void> {
    return this.exclusive(async () => {
      // Delete everything and write everything in ONE batch (db.clear() is not part of a batch), so that a
      // crash leaves the old state or the new, never a mix. LevelDB applies a batch's operations in order,
      // so a key deleted then put ends up put.
      const batch = this.db.batch();
      try {
        for await (const chunk of new DbReader(this.db).scanKeys({ gte: Buffer.alloc(0) })) {
          for (const k of chunk) batch.del(k);
        }
        const summary = readSnapshotData(snapshot.data, (k, v) => batch.put(k, v));
        if (summary.applied !== snapshot.meta.index) {
          // Installing it would skip or re-apply the entries in between: refuse rather than diverge.
          throw new Error(
            `mvcc store: snapshot data is at index ${summary.applied} but its metadata says ${snapshot.meta.index}`,
          );
        }
        await batch.write();
        const loaded = await load(new DbReader(this.db));
        this.state = loaded.state;
        this.compaction = loaded.compaction;
        this.leaseMap.clear();
        for (const l of loaded.leases) this.leaseMap.set(l.id, l);
        this.memberList = loaded.members;
        this.alarmList = loaded.alarms;
        this.dedupScanFrom = 0;
        this.log.info(
          { index: snapshot.meta.index, term: snapshot.meta.term, revision: summary.revision, keys: summary.keys },
          'mvcc store restored from snapshot',
        );
      } finally {
        // write() closes the batch; closing it again is a no-op, and closing an unwritten one discards it.
        await batch.close();
      }
      this.settleWaiters();
      // The compaction of the restored state (if one was under way in it) goes on from its own progress.
      this.compactorError = undefined;
      queueMicrotask(() => this.kickCompactor());
    });
  }

  /**
   * etcd's HashKV: a CRC-32C over every version in (compactRevision, revision], in key-then-revision order,
   * the stored bytes of each (key, revision, value or tombstone). History below the compact revision is
   * left out: its physical removal runs in the background, at each member's pace. Equal on every member that
   * has applied the same revisions, so a cheap consistency check.
   */
  hashKV(revision: number): Promise<{ hash: number; revision: number; compactRevision: number }> {
    return this.atSnapshot(async (reader, s) => {
      const upTo = revision === 0 ? s.revision : revision;
      if (upTo > s.revision) throw Errors.futureRevision();
      if (upTo < s.compactRevision) throw Errors.compacted();
      let hash = 0;
      for await (const chunk of reader.scan({ gte: Buffer.from([Table.History]), lt: HISTORY_END })) {
        for (const [k, v] of chunk) {
          const pos = decodeHistoryKey(k);
          if (pos === undefined || pos.rev <= s.compactRevision || pos.rev > upTo) continue;
          hash = crc32c(v, crc32c(k, hash));
        }
      }
      return { hash, revision: upTo, compactRevision: s.compactRevision };
    });
  }

  /** etcd's Hash: a CRC-32C over the whole key-value state (every table but the meta records), as stored. */
  hash(): Promise<number> {
    return this.atSnapshot(async (reader) => {
      let hash = 0;
      for await (const chunk of reader.scan({ gte: Buffer.from([Table.Meta + 1]), lt: Buffer.from([TABLE_END]) })) {
        for (const [k, v] of chunk) hash = crc32c(v, crc32c(k, hash));
      }
      return hash;
    });
  }

  /** etcd's Defragment: LevelDB rewrites its files by itself; this compacts the whole key range now. */
  defragment(): Promise<void> {
    // `level` is classic-level on Node, whose compactRange its browser twin lacks (hence not in Level's type).
    const db = this.db as unknown as { compactRange(start: Buffer, end: Buffer): Promise<void> };
    return this.exclusive(() => db.compactRange(Buffer.from([Table.Meta]), Buffer.from([TABLE_END])));
  }

  async dbSize(): Promise<number> {
    let total = 0;
    for (const d of await fsp.readdir(this.dir, { withFileTypes: true })) {
      if (!d.isFile()) continue;
      try {
        total += (await fsp.stat(path.join(this.dir, d.name))).size;
      } catch (err) {
        // LevelDB deletes obsolete files after a compaction; one may vanish between readdir and stat.
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return total;
  }

  close(): Promise<void> {
    if (this.closed) return this.queue.then(() => undefined);
    const done = this.exclusive(() => this.db.close());
    this.closed = true;
    this.settleWaiters();
    return done;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('mvcc store: closed');
  }

  /** Runs fn after every earlier exclusive operation has finished, failed or not. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('mvcc store: closed'));
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** The keys a proposal will certainly read: the current version of a put's or a single delete's key, and
 *  the deduplication records of its request id. */
function keysToPrefetch(p: Proposal): Buffer[] {
  const keys: Buffer[] = [];
  const { cmd, requestId } = p;
  if (cmd.op === 'put') keys.push(latestKey(cmd.req.key));
  if (cmd.op === 'delete' && (cmd.req.rangeEnd === undefined || cmd.req.rangeEnd.length === 0)) {
    keys.push(latestKey(cmd.req.key));
  }
  if (requestId !== undefined && (cmd.op === 'put' || cmd.op === 'delete' || cmd.op === 'txn')) {
    keys.push(dedupKey(requestId.client, requestId.seq), dedupClientKey(requestId.client));
  }
  return keys;
}

function positive(v: number | undefined, dflt: number, name: string): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`mvcc store: ${name} must be a positive integer (got ${v})`);
  return v;
}
