// The foundation's state machine: the latest value of every key on LevelDB, no history (the MVCC store of
// the next issue replaces it behind the same StateMachine contract).
//
// LevelDB layout (keys and values are raw bytes; LevelDB orders keys bytewise):
//   0x00 "applied"    -> uint64 big-endian: index of the last entry applied
//   0x00 "revision"   -> uint64 big-endian: the store's revision
//   0x01 <user key>   -> msgpackr map {value: bin, createRevision, modRevision, version, lease}
// Absent meta keys mean a fresh store: applied 0, revision 1 (etcd starts at 1, so the first write of a
// new cluster gets revision 2, as etcd users expect).
//
// Snapshot format (snapshot() / restore()): msgpackr (plain maps, no records) of
//   {format: "keel-kv/1", applied: number, revision: number,
//    kvs: [[key: bin, value: bin, createRevision, modRevision, version, lease], ...]}
// with kvs sorted by key, bytewise, keys unique and non-empty.

import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { Level } from 'level';
import pino, { type Logger } from 'pino';
import { EntryType, type Entry, type Snapshot } from '../raft/core/types';
import type { KeyValue, RangeRequest } from './api';
import { decodeProposal, packr } from './proposal';
import type {
  AppliedCommand,
  Command,
  CommandResult,
  LocalRange,
  StateMachine,
} from './state-machine';

export { decodeProposal, encodeProposal, MalformedProposalError } from './proposal';

const APPLIED_KEY = Buffer.from('\x00applied', 'latin1');
const REVISION_KEY = Buffer.from('\x00revision', 'latin1');
const USER_PREFIX = 0x01;
/** The end of the user key space in LevelDB: user keys lie in [0x01, 0x02). */
const USER_END = Buffer.from([USER_PREFIX + 1]);

/** The revision of an empty store (etcd's). */
export const INITIAL_REVISION = 1;
export const SNAPSHOT_FORMAT = 'keel-kv/1';

/** The snapshot as decoded by decodeSnapshotData. */
export interface SnapshotData {
  format: typeof SNAPSHOT_FORMAT;
  applied: number;
  revision: number;
  kvs: KeyValue[];
}

/** What the store keeps per key (the key itself is the LevelDB key). */
interface StoredKv {
  value: Buffer;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

/** Which user keys a request covers, with etcd's conventions for rangeEnd. */
type Span =
  | { kind: 'single'; key: Buffer }
  /** [start, end); end null: every key >= start (rangeEnd "\0"). */
  | { kind: 'span'; start: Buffer; end: Buffer | null }
  | { kind: 'empty' };

function spanOf(key: Buffer, rangeEnd: Buffer | undefined): Span {
  if (rangeEnd === undefined || rangeEnd.length === 0) return { kind: 'single', key };
  if (rangeEnd.length === 1 && rangeEnd[0] === 0) return { kind: 'span', start: key, end: null };
  // etcd answers an inverted or empty interval with nothing rather than an error.
  if (Buffer.compare(key, rangeEnd) >= 0) return { kind: 'empty' };
  return { kind: 'span', start: key, end: rangeEnd };
}

function inSpan(s: Span, k: Buffer): boolean {
  switch (s.kind) {
    case 'single':
      return k.equals(s.key);
    case 'span':
      return Buffer.compare(k, s.start) >= 0 && (s.end === null || Buffer.compare(k, s.end) < 0);
    case 'empty':
      return false;
  }
}

function dbKey(userKey: Buffer): Buffer {
  const b = Buffer.allocUnsafe(userKey.length + 1);
  b[0] = USER_PREFIX;
  userKey.copy(b, 1);
  return b;
}

/** LevelDB bounds of a 'span'. */
function dbBounds(s: { start: Buffer; end: Buffer | null }): { gte: Buffer; lt: Buffer } {
  return { gte: dbKey(s.start), lt: s.end === null ? USER_END : dbKey(s.end) };
}

function encodeUint(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

function decodeUint(b: Buffer, what: string): number {
  if (b.length !== 8) throw new Error(`kv store: corrupt ${what}: ${b.length} bytes, expected 8`);
  const n = b.readBigUInt64BE();
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`kv store: corrupt ${what}: ${n} is too large`);
  return Number(n);
}

function encodeRecord(r: StoredKv): Buffer {
  return packr.pack({
    value: r.value,
    createRevision: r.createRevision,
    modRevision: r.modRevision,
    version: r.version,
    lease: r.lease,
  });
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Local disk state, not replicated data: corruption here is fatal, so this throws. */
function decodeRecord(b: Buffer, userKey: Buffer): StoredKv {
  const r: unknown = packr.unpack(b);
  if (typeof r === 'object' && r !== null) {
    const o = r as Record<string, unknown>;
    if (
      o.value instanceof Uint8Array &&
      isCount(o.createRevision) &&
      isCount(o.modRevision) &&
      isCount(o.version) &&
      isCount(o.lease)
    ) {
      return {
        value: Buffer.from(o.value),
        createRevision: o.createRevision,
        modRevision: o.modRevision,
        version: o.version,
        lease: o.lease,
      };
    }
  }
  throw new Error(`kv store: corrupt record for key ${JSON.stringify(userKey.toString('latin1'))}`);
}

function toKeyValue(key: Buffer, r: StoredKv, withValue = true): KeyValue {
  return {
    key,
    createRevision: r.createRevision,
    modRevision: r.modRevision,
    version: r.version,
    value: withValue ? r.value : Buffer.alloc(0),
    lease: r.lease,
  };
}

/** Throws an Error naming what is wrong if `data` is not a snapshot in SNAPSHOT_FORMAT. */
export function decodeSnapshotData(data: Uint8Array): SnapshotData {
  const bad = (why: string): Error => new Error(`kv store: invalid snapshot data: ${why}`);
  let raw: unknown;
  try {
    raw = packr.unpack(data);
  } catch (err) {
    throw bad(`not msgpack (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw bad('not a map');
  const o = raw as Record<string, unknown>;
  if (o.format !== SNAPSHOT_FORMAT) throw bad(`format is not "${SNAPSHOT_FORMAT}"`);
  if (!isCount(o.applied)) throw bad('applied is not a non-negative integer');
  if (!isCount(o.revision)) throw bad('revision is not a non-negative integer');
  if (!Array.isArray(o.kvs)) throw bad('kvs is not an array');
  const kvs: KeyValue[] = [];
  let prev: Buffer | undefined;
  for (let i = 0; i < o.kvs.length; i++) {
    const t: unknown = o.kvs[i];
    if (!Array.isArray(t) || t.length !== 6) throw bad(`kvs[${i}] is not a 6-tuple`);
    const [key, value, createRevision, modRevision, version, lease] = t as unknown[];
    if (!(key instanceof Uint8Array) || key.length === 0) throw bad(`kvs[${i}]: key is not non-empty binary`);
    if (!(value instanceof Uint8Array)) throw bad(`kvs[${i}]: value is not binary`);
    if (!isCount(createRevision) || !isCount(modRevision) || !isCount(version) || !isCount(lease)) {
      throw bad(`kvs[${i}]: revisions, version and lease must be non-negative integers`);
    }
    if (createRevision > modRevision || modRevision > o.revision || version < 1) {
      throw bad(`kvs[${i}]: inconsistent revisions or version`);
    }
    const k = Buffer.from(key);
    // Sorted and unique, as snapshot() writes them: a duplicate would make restore's result depend on order.
    if (prev !== undefined && Buffer.compare(prev, k) >= 0) throw bad(`kvs[${i}]: keys not sorted and unique`);
    prev = k;
    kvs.push({ key: k, value: Buffer.from(value), createRevision, modRevision, version, lease });
  }
  return { format: SNAPSHOT_FORMAT, applied: o.applied, revision: o.revision, kvs };
}

/** Writes of one apply() call not yet in LevelDB, so that later commands of the same call see them. */
interface Pending {
  /** latin1 of the user key (one char per byte, so string order is byte order) -> new record, or null:
   *  deleted. */
  overlay: Map<string, StoredKv | null>;
  revision: number;
}

export class KvStore implements StateMachine {
  private applied: number;
  private rev: number;
  /** apply, restore and close run one at a time: each reads the state the previous one left. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly db: Level<Buffer, Buffer>,
    private readonly dir: string,
    private readonly log: Logger,
    applied: number,
    revision: number,
  ) {
    this.applied = applied;
    this.rev = revision;
  }

  static async open(dir: string, logger?: Logger): Promise<KvStore> {
    const log = (logger ?? pino({ level: 'silent' })).child({ component: 'kv-store' });
    const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await db.open();
    try {
      const a = await getRaw(db, APPLIED_KEY);
      const r = await getRaw(db, REVISION_KEY);
      const applied = a === undefined ? 0 : decodeUint(a, 'applied index');
      const revision = r === undefined ? INITIAL_REVISION : decodeUint(r, 'revision');
      log.info({ dir, applied, revision }, 'kv store opened');
      return new KvStore(db, dir, log, applied, revision);
    } catch (err) {
      await db.close();
      throw err;
    }
  }

  appliedIndex(): number {
    return this.applied;
  }

  revision(): number {
    return this.rev;
  }

  apply(entries: Entry[]): Promise<Map<number, AppliedCommand>> {
    return this.exclusive(async () => {
      const results = new Map<number, AppliedCommand>();
      let applied = this.applied;
      const pending: Pending = { overlay: new Map(), revision: this.rev };
      for (const e of entries) {
        if (e.index <= applied) continue;
        if (e.index !== applied + 1) {
          // Skipping an entry would make this member's state differ from the others' for good.
          throw new Error(`kv store: entry ${e.index} cannot follow applied index ${applied}`);
        }
        applied = e.index;
        if (e.type === EntryType.ConfChange || e.data.length === 0) continue;
        if (e.type !== EntryType.Normal) {
          this.log.error({ index: e.index, term: e.term, type: e.type }, 'entry of unknown type applied as a no-op');
          continue;
        }
        let cmd: Command;
        let id: string;
        try {
          ({ id, cmd } = decodeProposal(e.data));
        } catch (err) {
          // Every member decodes the same bytes to the same verdict, so skipping keeps them in agreement.
          this.log.error(
            { index: e.index, term: e.term, err: (err as Error).message },
            'malformed entry applied as a no-op',
          );
          continue;
        }
        const result = cmd.op === 'put' ? await this.applyPut(pending, cmd) : await this.applyDelete(pending, cmd);
        results.set(e.index, { id, result });
      }
      if (applied === this.applied) return results;

      const ops: BatchOp[] = [];
      for (const [k, r] of pending.overlay) {
        const key = dbKey(Buffer.from(k, 'latin1'));
        ops.push(r === null ? { type: 'del', key } : { type: 'put', key, value: encodeRecord(r) });
      }
      ops.push({ type: 'put', key: APPLIED_KEY, value: encodeUint(applied) });
      ops.push({ type: 'put', key: REVISION_KEY, value: encodeUint(pending.revision) });
      await this.db.batch(ops);
      this.applied = applied;
      this.rev = pending.revision;
      return results;
    });
  }

  private async current(p: Pending, key: Buffer): Promise<StoredKv | undefined> {
    const o = p.overlay.get(key.toString('latin1'));
    if (o !== undefined) return o === null ? undefined : o;
    const b = await getRaw(this.db, dbKey(key));
    return b === undefined ? undefined : decodeRecord(b, key);
  }

  private async applyPut(p: Pending, cmd: Extract<Command, { op: 'put' }>): Promise<CommandResult> {
    const prev = await this.current(p, cmd.key);
    p.revision += 1;
    p.overlay.set(cmd.key.toString('latin1'), {
      value: cmd.value,
      createRevision: prev === undefined ? p.revision : prev.createRevision,
      modRevision: p.revision,
      version: prev === undefined ? 1 : prev.version + 1,
      // Leases are a later issue; a put without a lease detaches the key from any, as in etcd.
      lease: 0,
    });
    const result: CommandResult = { op: 'put', revision: p.revision };
    if (cmd.prevKv && prev !== undefined) result.prevKv = toKeyValue(cmd.key, prev);
    return result;
  }

  private async applyDelete(p: Pending, cmd: Extract<Command, { op: 'delete' }>): Promise<CommandResult> {
    const span = spanOf(cmd.key, cmd.rangeEnd);
    const found = new Map<string, StoredKv>();
    if (span.kind === 'single') {
      const r = await this.current(p, span.key);
      if (r !== undefined) found.set(span.key.toString('latin1'), r);
    } else if (span.kind === 'span') {
      for await (const [k, v] of this.db.iterator(dbBounds(span))) {
        const userKey = k.subarray(1);
        found.set(userKey.toString('latin1'), decodeRecord(v, userKey));
      }
      for (const [k, r] of p.overlay) {
        if (!inSpan(span, Buffer.from(k, 'latin1'))) continue;
        if (r === null) found.delete(k);
        else found.set(k, r);
      }
    }
    // etcd does not bump the revision for a delete that matches nothing.
    if (found.size === 0) return { op: 'delete', revision: p.revision, deleted: 0, prevKvs: [] };
    p.revision += 1;
    const keys = [...found.keys()].sort();
    const prevKvs: KeyValue[] = [];
    for (const k of keys) {
      p.overlay.set(k, null);
      if (cmd.prevKv) prevKvs.push(toKeyValue(Buffer.from(k, 'latin1'), found.get(k) as StoredKv));
    }
    return { op: 'delete', revision: p.revision, deleted: keys.length, prevKvs };
  }

  async range(req: RangeRequest): Promise<LocalRange> {
    this.assertOpen();
    // One LevelDB snapshot for the revision and every read, so the answer is one point in time even while
    // apply() writes.
    const snapshot = this.db.snapshot();
    try {
      const r = await getRaw(this.db, REVISION_KEY, snapshot);
      const revision = r === undefined ? INITIAL_REVISION : decodeUint(r, 'revision');
      const withValue = req.keysOnly !== true;
      const span = spanOf(req.key, req.rangeEnd);
      if (span.kind === 'empty') return { kvs: [], more: false, count: 0, revision };
      if (span.kind === 'single') {
        const b = await getRaw(this.db, dbKey(span.key), snapshot);
        if (b === undefined) return { kvs: [], more: false, count: 0, revision };
        const kvs = req.countOnly ? [] : [toKeyValue(span.key, decodeRecord(b, span.key), withValue)];
        return { kvs, more: false, count: 1, revision };
      }
      const bounds = dbBounds(span);
      if (req.countOnly) {
        return { kvs: [], more: false, count: await this.countKeys(bounds.gte, bounds.lt, snapshot, true), revision };
      }
      const limit = req.limit !== undefined && req.limit > 0 ? req.limit : -1;
      const rows = await this.db.iterator({ ...bounds, limit, snapshot }).all();
      const kvs = rows.map(([k, v]) => {
        const userKey = k.subarray(1);
        return toKeyValue(userKey, decodeRecord(v, userKey), withValue);
      });
      if (limit < 0 || rows.length < limit) return { kvs, more: false, count: kvs.length, revision };
      // `count` is the whole range's, whatever the limit: count the rest without reading their values.
      const rest = await this.countKeys(rows[rows.length - 1][0], bounds.lt, snapshot, false);
      return { kvs, more: rest > 0, count: kvs.length + rest, revision };
    } finally {
      await snapshot.close();
    }
  }

  private async countKeys(
    from: Buffer,
    lt: Buffer,
    snapshot: ReturnType<Level<Buffer, Buffer>['snapshot']>,
    inclusive: boolean,
  ): Promise<number> {
    const it = this.db.keys(inclusive ? { gte: from, lt, snapshot } : { gt: from, lt, snapshot });
    let n = 0;
    try {
      for (;;) {
        const batch = await it.nextv(1024);
        if (batch.length === 0) return n;
        n += batch.length;
      }
    } finally {
      await it.close();
    }
  }

  async snapshot(): Promise<Uint8Array> {
    this.assertOpen();
    // One iterator over the whole DB reads meta and keys from the same implicit LevelDB snapshot.
    let applied = 0;
    let revision = INITIAL_REVISION;
    const kvs: [Buffer, Buffer, number, number, number, number][] = [];
    for await (const [k, v] of this.db.iterator()) {
      if (k.equals(APPLIED_KEY)) applied = decodeUint(v, 'applied index');
      else if (k.equals(REVISION_KEY)) revision = decodeUint(v, 'revision');
      else if (k[0] === USER_PREFIX) {
        const userKey = k.subarray(1);
        const r = decodeRecord(v, userKey);
        kvs.push([Buffer.from(userKey), r.value, r.createRevision, r.modRevision, r.version, r.lease]);
      }
    }
    return packr.pack({ format: SNAPSHOT_FORMAT, applied, revision, kvs });
  }

  async restore(snapshot: Snapshot): Promise<void> {
    const data = decodeSnapshotData(snapshot.data);
    if (data.applied !== snapshot.meta.index) {
      // Installing it would skip or re-apply the entries in between: refuse rather than diverge.
      throw new Error(
        `kv store: snapshot data is at index ${data.applied} but its metadata says ${snapshot.meta.index}`,
      );
    }
    return this.exclusive(async () => {
      // Delete everything and write everything in ONE batch (db.clear() is not part of a batch), so that a
      // crash leaves the old state or the new, never a mix. LevelDB applies a batch's operations in order,
      // so a key deleted then put ends up put.
      const ops: BatchOp[] = [];
      for await (const k of this.db.keys()) ops.push({ type: 'del', key: k });
      for (const kv of data.kvs) {
        ops.push({
          type: 'put',
          key: dbKey(kv.key),
          value: encodeRecord({
            value: kv.value,
            createRevision: kv.createRevision,
            modRevision: kv.modRevision,
            version: kv.version,
            lease: kv.lease,
          }),
        });
      }
      ops.push({ type: 'put', key: APPLIED_KEY, value: encodeUint(snapshot.meta.index) });
      ops.push({ type: 'put', key: REVISION_KEY, value: encodeUint(data.revision) });
      await this.db.batch(ops);
      this.applied = snapshot.meta.index;
      this.rev = data.revision;
      this.log.info(
        { index: snapshot.meta.index, term: snapshot.meta.term, revision: data.revision, keys: data.kvs.length },
        'kv store restored from snapshot',
      );
    });
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
    return done;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('kv store: closed');
  }

  /** Runs fn after every earlier exclusive operation has finished, failed or not. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('kv store: closed'));
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }
}

/** level's typings say get() resolves to a value; since abstract-level 2 it resolves to undefined for a
 *  missing key. */
function getRaw(
  db: Level<Buffer, Buffer>,
  key: Buffer,
  snapshot?: ReturnType<Level<Buffer, Buffer>['snapshot']>,
): Promise<Buffer | undefined> {
  return snapshot === undefined ? db.get(key) : db.get<Buffer, Buffer>(key, { snapshot });
}
