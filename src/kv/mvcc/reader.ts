// Read access to the store's LevelDB, either at one LevelDB snapshot (reads served to clients) or through
// the pending writes of an apply() call (so that a command sees what the commands before it in the same
// call wrote, before anything reaches LevelDB).

import type { Level } from 'level';

export type Db = Level<Buffer, Buffer>;
export type DbSnapshot = ReturnType<Db['snapshot']>;
export type Pair = [Buffer, Buffer];

export interface ScanOptions {
  gte: Buffer;
  /** Exclusive upper bound, or `lte` for an inclusive one. */
  lt?: Buffer;
  lte?: Buffer;
  /** Skip `gte` itself (for resuming after a key already seen). */
  exclusiveStart?: boolean;
  reverse?: boolean;
  /** At most this many pairs (0 or absent: no limit). */
  limit?: number;
}

export interface Reader {
  get(key: Buffer): Promise<Buffer | undefined>;
  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]>;
  /** The pairs in the bounds, in key order (or reverse), in chunks so that large scans cost few calls into
   *  LevelDB. Breaking out of the loop closes the underlying iterator. */
  scan(opts: ScanOptions): AsyncGenerator<Pair[]>;
  /** Like scan, keys only (no value copies): for counting. */
  scanKeys(opts: ScanOptions): AsyncGenerator<Buffer[]>;
}

/** Entries per call into LevelDB. */
const CHUNK = 256;

function levelRange(opts: ScanOptions): Record<string, unknown> {
  const r: Record<string, unknown> = opts.exclusiveStart ? { gt: opts.gte } : { gte: opts.gte };
  if (opts.lt !== undefined) r.lt = opts.lt;
  if (opts.lte !== undefined) r.lte = opts.lte;
  if (opts.reverse) r.reverse = true;
  if (opts.limit !== undefined && opts.limit > 0) r.limit = opts.limit;
  return r;
}

/** Reads LevelDB directly, or at an explicit LevelDB snapshot. */
export class DbReader implements Reader {
  constructor(
    private readonly db: Db,
    private readonly snapshot?: DbSnapshot,
  ) {}

  get(key: Buffer): Promise<Buffer | undefined> {
    // level's typings say get() resolves to a value; since abstract-level 2 it is undefined when missing.
    return this.snapshot === undefined
      ? (this.db.get(key) as Promise<Buffer | undefined>)
      : (this.db.get<Buffer, Buffer>(key, { snapshot: this.snapshot }) as Promise<Buffer | undefined>);
  }

  getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return (
      this.snapshot === undefined ? this.db.getMany(keys) : this.db.getMany<Buffer, Buffer>(keys, { snapshot: this.snapshot })
    ) as Promise<(Buffer | undefined)[]>;
  }

  async *scan(opts: ScanOptions): AsyncGenerator<Pair[]> {
    const it = this.db.iterator({ ...levelRange(opts), snapshot: this.snapshot });
    try {
      for (;;) {
        const chunk = (await it.nextv(CHUNK)) as Pair[];
        if (chunk.length === 0) return;
        yield chunk;
      }
    } finally {
      await it.close();
    }
  }

  async *scanKeys(opts: ScanOptions): AsyncGenerator<Buffer[]> {
    const it = this.db.keys({ ...levelRange(opts), snapshot: this.snapshot });
    try {
      for (;;) {
        const chunk = await it.nextv(CHUNK * 4);
        if (chunk.length === 0) return;
        yield chunk;
      }
    } finally {
      await it.close();
    }
  }
}

/** latin1: one char per byte, so string order is byte order and a Buffer round-trips. */
const str = (b: Buffer): string => b.toString('latin1');

/**
 * LevelDB with values fetched ahead in one getMany: apply() knows most keys its commands will read before
 * running them (the Latest entry of each put, the deduplication records), and one call into LevelDB for all
 * of them costs far less than one per command. Valid only while LevelDB does not change (during apply()).
 */
export class PrefetchReader implements Reader {
  private readonly cache = new Map<string, Buffer | undefined>();
  private readonly db: DbReader;

  constructor(db: Db) {
    this.db = new DbReader(db);
  }

  async prefetch(keys: Buffer[]): Promise<void> {
    const wanted = keys.filter((k) => !this.cache.has(str(k)));
    const got = await this.db.getMany(wanted);
    wanted.forEach((k, i) => this.cache.set(str(k), got[i]));
  }

  get(key: Buffer): Promise<Buffer | undefined> {
    const k = str(key);
    if (this.cache.has(k)) return Promise.resolve(this.cache.get(k));
    return this.db.get(key);
  }

  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    const out: (Buffer | undefined)[] = new Array(keys.length);
    const missing: number[] = [];
    keys.forEach((key, i) => {
      const k = str(key);
      if (this.cache.has(k)) out[i] = this.cache.get(k);
      else missing.push(i);
    });
    const got = await this.db.getMany(missing.map((i) => keys[i]));
    missing.forEach((i, j) => (out[i] = got[j]));
    return out;
  }

  scan(opts: ScanOptions): AsyncGenerator<Pair[]> {
    return this.db.scan(opts);
  }

  scanKeys(opts: ScanOptions): AsyncGenerator<Buffer[]> {
    return this.db.scanKeys(opts);
  }
}

/**
 * Writes not yet in LevelDB: a put (Buffer) or a delete (null) per key. A command writes into a child of the
 * apply() call's overlay, merged into it only if the command succeeds, so a refused command leaves nothing.
 */
export class Overlay {
  private readonly writes = new Map<string, Buffer | null>();

  constructor(readonly parent?: Overlay) {}

  put(key: Buffer, value: Buffer): void {
    this.writes.set(str(key), value);
  }

  del(key: Buffer): void {
    this.writes.set(str(key), null);
  }

  /** Buffer: written; null: deleted; undefined: not touched by this overlay or its parents. */
  lookup(key: string): Buffer | null | undefined {
    const v = this.writes.get(key);
    if (v !== undefined) return v;
    return this.parent?.lookup(key);
  }

  get size(): number {
    return this.writes.size;
  }

  /** Merges this overlay's writes into its parent. */
  commit(): void {
    if (this.parent === undefined) throw new Error('mvcc store: a root overlay has nothing to commit to');
    for (const [k, v] of this.writes) this.parent.writes.set(k, v);
  }

  /** Every write (own and inherited, own winning) with a key in the bounds, sorted by key. */
  inBounds(opts: ScanOptions): [string, Buffer | null][] {
    const lo = str(opts.gte);
    const hiLt = opts.lt === undefined ? undefined : str(opts.lt);
    const hiLte = opts.lte === undefined ? undefined : str(opts.lte);
    const found = new Map<string, Buffer | null>();
    const chain: Overlay[] = [];
    for (let o: Overlay | undefined = this; o !== undefined; o = o.parent) chain.unshift(o);
    for (const o of chain) {
      for (const [k, v] of o.writes) {
        if (opts.exclusiveStart ? k <= lo : k < lo) continue;
        if (hiLt !== undefined && k >= hiLt) continue;
        if (hiLte !== undefined && k > hiLte) continue;
        found.set(k, v);
      }
    }
    return [...found].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** The writes in LevelDB batch form, in no particular order (each key appears once). */
  *ops(): Generator<{ type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer }> {
    for (const [k, v] of this.writes) {
      const key = Buffer.from(k, 'latin1');
      yield v === null ? { type: 'del', key } : { type: 'put', key, value: v };
    }
  }

  /** Keys written (not deleted) by this overlay itself whose first byte is `table`. */
  *ownKeys(table: number): Generator<[Buffer, Buffer | null]> {
    for (const [k, v] of this.writes) {
      if (k.charCodeAt(0) === table) yield [Buffer.from(k, 'latin1'), v];
    }
  }
}

/** LevelDB as seen through an overlay of pending writes. Only for apply(), which runs alone (the store's
 *  exclusive queue), so LevelDB does not change underneath it. */
export class OverlayReader implements Reader {
  constructor(
    private readonly base: Reader,
    readonly overlay: Overlay,
  ) {}

  async get(key: Buffer): Promise<Buffer | undefined> {
    const v = this.overlay.lookup(str(key));
    if (v !== undefined) return v === null ? undefined : v;
    return this.base.get(key);
  }

  async getMany(keys: Buffer[]): Promise<(Buffer | undefined)[]> {
    const out: (Buffer | undefined)[] = new Array(keys.length);
    const missing: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const v = this.overlay.lookup(str(keys[i]));
      if (v === undefined) missing.push(i);
      else out[i] = v === null ? undefined : v;
    }
    const got = await this.base.getMany(missing.map((i) => keys[i]));
    for (let j = 0; j < missing.length; j++) out[missing[j]] = got[j];
    return out;
  }

  async *scan(opts: ScanOptions): AsyncGenerator<Pair[]> {
    yield* this.merge(opts, this.base.scan({ ...opts, limit: undefined }), (p) => p[0], (k, v) => [k, v]);
  }

  async *scanKeys(opts: ScanOptions): AsyncGenerator<Buffer[]> {
    yield* this.merge(opts, this.base.scanKeys({ ...opts, limit: undefined }), (k) => k, (k) => k);
  }

  /** Merges LevelDB's sorted chunks with the overlay's sorted writes in the bounds; the overlay wins. */
  private async *merge<T>(
    opts: ScanOptions,
    chunks: AsyncGenerator<T[]>,
    keyOf: (t: T) => Buffer,
    make: (k: Buffer, v: Buffer) => T,
  ): AsyncGenerator<T[]> {
    const pending = this.overlay.inBounds(opts).map(([k, v]) => [Buffer.from(k, 'latin1'), v] as const);
    if (opts.reverse) pending.reverse();
    const dir = opts.reverse ? -1 : 1;
    const limit = opts.limit !== undefined && opts.limit > 0 ? opts.limit : Infinity;
    let emitted = 0;
    let p = 0;
    let out: T[] = [];
    const push = (t: T): boolean => {
      out.push(t);
      emitted++;
      return emitted < limit;
    };
    /** Emits overlay writes ordered before `k` (all of them if k is undefined); false once the limit is hit. */
    const drainBefore = (k: Buffer | undefined): boolean => {
      while (p < pending.length && (k === undefined || Buffer.compare(pending[p][0], k) * dir < 0)) {
        const [ok, ov] = pending[p++];
        if (ov !== null && !push(make(ok, ov))) return false;
      }
      return true;
    };
    try {
      for await (const chunk of chunks) {
        for (const t of chunk) {
          const k = keyOf(t);
          if (!drainBefore(k)) {
            yield out;
            return;
          }
          if (p < pending.length && pending[p][0].equals(k)) {
            const ov = pending[p++][1];
            if (ov === null) continue;
            if (!push(make(k, ov))) {
              yield out;
              return;
            }
          } else if (!push(t)) {
            yield out;
            return;
          }
        }
        if (out.length > 0) {
          yield out;
          out = [];
        }
      }
      drainBefore(undefined);
      if (out.length > 0) yield out;
    } finally {
      await chunks.return(undefined);
    }
  }
}
