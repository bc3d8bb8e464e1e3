// Keeping a lease alive: a keep-alive every TTL/3, and a report when the lease is lost — the member says it
// is gone (TTL 0, or not found), or no keep-alive has succeeded for a whole TTL (counted from when the last
// successful one was sent, so the client errs on the side of "lost"). A failed keep-alive is tried again
// sooner, as often as makes sense before the TTL runs out; its outcome not being known does not matter here
// (renewing twice is harmless).

import { GrpcCode, KvError, type LeaseKeepAliveResponse } from '../kv/api';

export interface KeepAliveOptions {
  /** The lease's TTL in seconds, if known (the grant's answer): how long to keep trying for the first
   *  successful keep-alive. Default: the client's request timeout. */
  ttl?: number;
}

export interface KeepAliveHandle {
  /** Stops the keep-alives (`lost` then never resolves). */
  stop(): void;
  /** Resolves with why the lease is (or must be assumed) lost. */
  readonly lost: Promise<Error>;
}

/** Shortest and longest pause before trying a failed keep-alive again. */
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 1000;

export function startKeepAlive(
  id: number,
  once: (id: number) => Promise<LeaseKeepAliveResponse>,
  opts: KeepAliveOptions,
  defaultFirstWaitMs: number,
): KeepAliveHandle {
  if (opts.ttl !== undefined && (!Number.isFinite(opts.ttl) || opts.ttl <= 0)) {
    throw new RangeError(`keepAlive: ttl must be a positive number of seconds, got ${opts.ttl}`);
  }
  let stopped = false;
  let ttlMs = opts.ttl !== undefined ? opts.ttl * 1000 : undefined;
  let beatTimer: NodeJS.Timeout | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;
  let lastError: unknown;
  let resolveLost!: (err: Error) => void;
  const lost = new Promise<Error>((resolve) => (resolveLost = resolve));

  const stop = (): void => {
    stopped = true;
    clearTimeout(beatTimer);
    clearTimeout(expiryTimer);
  };
  const lose = (err: Error): void => {
    if (stopped) return;
    stop();
    resolveLost(err);
  };
  /** The lease must be assumed gone at `at` unless a keep-alive succeeds before. */
  const expireAt = (at: number): void => {
    clearTimeout(expiryTimer);
    expiryTimer = setTimeout(() => {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      const ttl = ttlMs === undefined ? 'its first keep-alive deadline' : `its TTL (${ttlMs / 1000} s)`;
      lose(new Error(`lease ${id}: no successful keep-alive within ${ttl}${why}`));
    }, Math.max(0, at - Date.now()));
  };
  const schedule = (ms: number): void => {
    clearTimeout(beatTimer);
    beatTimer = setTimeout(() => void beat(), ms);
  };

  const beat = async (): Promise<void> => {
    if (stopped) return;
    const sentAt = Date.now();
    try {
      const r = await once(id);
      if (stopped) return;
      if (r.ttl <= 0) {
        lose(new KvError(GrpcCode.NotFound, 'etcdserver: requested lease not found'));
        return;
      }
      lastError = undefined;
      ttlMs = r.ttl * 1000;
      expireAt(sentAt + ttlMs);
      schedule(Math.max(RETRY_MIN_MS, ttlMs / 3 - (Date.now() - sentAt)));
    } catch (err) {
      if (stopped) return;
      lastError = err;
      // The member's final answer about this lease (not found, bad id): keeping on cannot help.
      if (err instanceof KvError && err.code !== GrpcCode.Unavailable && err.code !== GrpcCode.DeadlineExceeded) {
        lose(err);
        return;
      }
      const retry = ttlMs === undefined ? RETRY_MAX_MS : Math.min(RETRY_MAX_MS, Math.max(RETRY_MIN_MS, ttlMs / 6));
      schedule(retry);
    }
  };

  expireAt(Date.now() + (ttlMs ?? defaultFirstWaitMs));
  void beat();
  return { stop, lost };
}
