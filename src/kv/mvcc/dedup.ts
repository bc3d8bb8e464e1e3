// Request deduplication (Keel's addition to etcd): a put / delete / txn proposed with a client request id
// (client, seq) is applied once; a retry gets the first application's result.
//
// Records are dropped by log index, so that every member drops the same ones at the same point: before the
// entry at index i is applied, every record made by an entry at or below i - window is gone, whether the
// entries came in one apply() call or many (the check runs per entry, not per call). A client's bookkeeping
// record remembers how far its records were dropped: a retry below that is refused with
// Errors.requestIdExpired() (it may have been applied; applying it again could apply it twice). Once every
// record of a client is dropped, the client is forgotten, and a retry from it that old would be applied as
// new: the window (default 100,000 entries) is meant to be far longer than any client retries.
//
// The window must be the same on every member: it decides what the state machine does.

import { Errors } from '../api';
import { dedupClientKey, dedupIndexKey, dedupKey, decodeDedupIndexKey } from './keys';
import {
  CorruptDataError,
  decodeDedupClient,
  decodeDedupIndex,
  decodeDedupRecord,
  encodeDedupClient,
  encodeDedupIndex,
  encodeDedupRecord,
} from './records';
import type { Overlay, Reader } from './reader';
import { decodeResult, encodeResult, type DedupResult } from './result-codec';

export const DEFAULT_DEDUP_WINDOW = 100_000;

interface Recorded {
  index: number;
  client: string;
  seq: number;
}

export type Lookup = { kind: 'found'; result: DedupResult } | { kind: 'expired'; result: DedupResult } | { kind: 'new' };

/** The deduplication table as one apply() call sees and changes it (through the call's overlay). */
export class DedupCall {
  /** Records that this call may have to drop, oldest first: those already stored at or below the last
   *  threshold of the call, then those the call makes. */
  private readonly queue: Recorded[];
  private head = 0;

  private constructor(
    private readonly window: number,
    queue: Recorded[],
  ) {
    this.queue = queue;
  }

  /**
   * Loads the records that entries up to `lastIndex` will drop: a range scan of the index from `from` (below
   * which every record is known to be gone already, so the scan does not wade through the deletions LevelDB
   * has not compacted away yet) to lastIndex - window.
   */
  static async begin(reader: Reader, window: number, lastIndex: number, from: number): Promise<DedupCall> {
    const queue: Recorded[] = [];
    const threshold = lastIndex - window;
    if (threshold >= Math.max(1, from)) {
      const bounds = { gte: dedupIndexKey(from), lte: dedupIndexKey(threshold) };
      for await (const chunk of reader.scan(bounds)) {
        for (const [k, v] of chunk) {
          const index = decodeDedupIndexKey(k);
          if (index === undefined) throw new CorruptDataError('deduplication index key', k, 'bad entry index');
          queue.push({ index, ...decodeDedupIndex(v, k) });
        }
      }
    }
    return new DedupCall(window, queue);
  }

  /** Drops every record made at an index at or below `entryIndex - window`. Call before applying the entry. */
  async expireBefore(entryIndex: number, reader: Reader, overlay: Overlay): Promise<void> {
    const threshold = entryIndex - this.window;
    while (this.head < this.queue.length && this.queue[this.head].index <= threshold) {
      const r = this.queue[this.head++];
      overlay.del(dedupKey(r.client, r.seq));
      overlay.del(dedupIndexKey(r.index));
      const ck = dedupClientKey(r.client);
      const cv = await reader.get(ck);
      if (cv === undefined) continue;
      const c = decodeDedupClient(cv, ck);
      if (c.count <= 1) overlay.del(ck);
      else overlay.put(ck, encodeDedupClient({ count: c.count - 1, expiredBelow: Math.max(c.expiredBelow, r.seq + 1) }));
    }
  }

  async lookup(reader: Reader, client: string, seq: number, revision: number): Promise<Lookup> {
    const k = dedupKey(client, seq);
    const [rv, cv] = await reader.getMany([k, dedupClientKey(client)]);
    if (rv !== undefined) {
      try {
        return { kind: 'found', result: decodeResult(decodeDedupRecord(rv, k).result) };
      } catch (err) {
        if (err instanceof CorruptDataError) throw err;
        throw new CorruptDataError('deduplication record', k, (err as Error).message);
      }
    }
    if (cv !== undefined && seq < decodeDedupClient(cv, dedupClientKey(client)).expiredBelow) {
      return { kind: 'expired', result: { op: 'error', revision, error: Errors.requestIdExpired() } };
    }
    return { kind: 'new' };
  }

  /** Stores the result of the first application of (client, seq) by the entry at `index`. */
  async record(
    reader: Reader,
    overlay: Overlay,
    index: number,
    client: string,
    seq: number,
    result: DedupResult,
  ): Promise<void> {
    overlay.put(dedupKey(client, seq), encodeDedupRecord(index, encodeResult(result)));
    overlay.put(dedupIndexKey(index), encodeDedupIndex(client, seq));
    const ck = dedupClientKey(client);
    const cv = await reader.get(ck);
    const c = cv === undefined ? { expiredBelow: 0, count: 0 } : decodeDedupClient(cv, ck);
    overlay.put(ck, encodeDedupClient({ expiredBelow: c.expiredBelow, count: c.count + 1 }));
    this.queue.push({ index, client, seq });
  }
}
