// Which member the client talks to. The pool holds one connection at a time (the "current" one) and knows
// whether its member was healthy (has a leader) when last asked. It looks for a healthy member when there is
// none: it goes through the endpoints in order, starting after the current one, connects, asks `health`,
// and keeps the first healthy member; a round that finds none starts over after a back-off, for as long as
// someone is waiting (a request, or an open watch). A reachable but unhealthy member is kept meanwhile for
// what it can serve (serializable reads).
//
// A member is found unhealthy by a request answered Unavailable (reportUnavailable), by a lost connection,
// or — while watches are open, since a watch on a partitioned member would otherwise just go quiet — by a
// periodic health check. When the current connection is replaced, it is retired: requests that are safe to
// send again are abandoned at once (their callers retry on the new member), the others may still get their
// answer, and it closes when they have. Listeners (the watches) are told that the old connection is no
// longer the one to use.

import type { Logger } from 'pino';
import { DialError, StreamConnection, type ConnectionSettings } from './stream-connection';

export interface PoolSettings extends ConnectionSettings {
  endpoints: readonly string[];
  /** While watches are open, the current member's health is checked this often. */
  healthCheckIntervalMs: number;
  /** Back-off between two rounds that found no healthy member. */
  backoffMinMs: number;
  backoffMaxMs: number;
}

interface Waiter {
  allowUnhealthy: boolean;
  resolve(conn: StreamConnection | undefined): void;
}

export class EndpointPool {
  private current: StreamConnection | undefined;
  /** Every connection adopted and not closed yet: the current one, and retired ones finishing requests. */
  private readonly live = new Set<StreamConnection>();
  private currentHealthy = false;
  /** Index of the current (or last tried) endpoint: a search starts after it. */
  private cursor = -1;
  private searching: Promise<void> | undefined;
  private readonly waiters = new Set<Waiter>();
  /** Open watches: while any, the pool keeps searching and checks health. */
  private retained = 0;
  private healthTimer: NodeJS.Timeout | undefined;
  private checkingHealth = false;
  private closed = false;
  private readonly leaveListeners = new Set<(conn: StreamConnection) => void>();
  /** Why the last attempt on each endpoint failed, for error messages. */
  private readonly problems = new Map<string, string>();
  private readonly log: Logger;

  constructor(private readonly settings: PoolSettings) {
    if (settings.endpoints.length === 0) throw new Error('no endpoints given');
    this.log = settings.logger;
  }

  /** The current connection if its member is healthy, without waiting. */
  ready(): StreamConnection | undefined {
    return this.currentHealthy && this.current?.isOpen === true ? this.current : undefined;
  }

  /** A connection to a healthy member (or, with allowUnhealthy, to any reachable one), waiting for the
   *  search until `deadline` (ms since the epoch) or the signal; undefined if none came in time. */
  acquire(deadline: number, allowUnhealthy = false, signal?: AbortSignal): Promise<StreamConnection | undefined> {
    const now = this.usable(allowUnhealthy);
    if (now !== undefined || this.closed) return Promise.resolve(now);
    if (signal?.aborted === true || deadline <= Date.now()) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const done = (conn: StreamConnection | undefined): void => {
        this.waiters.delete(waiter);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        resolve(conn);
      };
      const waiter: Waiter = { allowUnhealthy, resolve: done };
      const onAbort = (): void => done(undefined);
      const timer = setTimeout(() => done(undefined), Math.min(deadline - Date.now(), 2 ** 31 - 1));
      signal?.addEventListener('abort', onAbort);
      this.waiters.add(waiter);
      this.startSearch();
    });
  }

  /** The member behind `conn` answered Unavailable or did not answer: look for a healthy one. */
  reportUnavailable(conn: StreamConnection, reason: string): void {
    this.problems.set(conn.endpoint, reason);
    if (conn !== this.current) return;
    if (this.currentHealthy) this.log.debug({ endpoint: conn.endpoint, reason }, 'member unavailable; looking for another');
    this.currentHealthy = false;
    this.startSearch();
  }

  /** Told when a connection stops being the one to use (closed, or replaced by a healthier member's). */
  onLeave(listener: (conn: StreamConnection) => void): () => void {
    this.leaveListeners.add(listener);
    return () => this.leaveListeners.delete(listener);
  }

  /** An open watch: keep a connection, and check the member's health. */
  retain(): void {
    this.retained++;
    if (this.healthTimer === undefined && !this.closed) {
      this.healthTimer = setInterval(() => void this.checkCurrent(), this.settings.healthCheckIntervalMs);
      this.healthTimer.unref();
    }
  }

  release(): void {
    this.retained = Math.max(0, this.retained - 1);
    if (this.retained === 0) {
      clearInterval(this.healthTimer);
      this.healthTimer = undefined;
    }
  }

  /** What went wrong on the endpoints lately, for an error message. */
  describeProblems(): string {
    if (this.problems.size === 0) return 'no answer';
    return [...this.problems].map(([ep, p]) => `${ep}: ${p}`).join('; ');
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.healthTimer);
    this.healthTimer = undefined;
    for (const w of [...this.waiters]) w.resolve(undefined);
    this.current = undefined;
    for (const conn of [...this.live]) conn.close();
  }

  private usable(allowUnhealthy: boolean): StreamConnection | undefined {
    const cur = this.current;
    if (cur === undefined || !cur.isOpen) return undefined;
    return this.currentHealthy || allowUnhealthy ? cur : undefined;
  }

  private wanted(): boolean {
    return !this.closed && (this.waiters.size > 0 || this.retained > 0);
  }

  private startSearch(): void {
    if (this.searching !== undefined || this.closed) return;
    this.searching = this.search()
      .catch((err: unknown) => this.log.error({ err }, 'endpoint search failed'))
      .finally(() => {
        this.searching = undefined;
        // A member may have gone bad while the last round was ending.
        if (this.wanted() && this.ready() === undefined) this.startSearch();
      });
  }

  private async search(): Promise<void> {
    const eps = this.settings.endpoints;
    let backoff = this.settings.backoffMinMs;
    while (this.wanted()) {
      const start = this.cursor + 1;
      for (let i = 0; i < eps.length && this.wanted(); i++) {
        const idx = (start + i) % eps.length;
        const ep = eps[idx];
        const cur = this.current;
        let conn: StreamConnection;
        if (cur !== undefined && cur.isOpen && cur.endpoint === ep) {
          conn = cur;
        } else {
          try {
            conn = await StreamConnection.open(ep, this.settings);
          } catch (err) {
            this.problems.set(ep, err instanceof DialError ? err.message.slice(ep.length + 2) : String(err));
            continue;
          }
        }
        if (this.closed) {
          if (conn !== this.current) conn.close();
          return;
        }
        const health = await this.health(conn);
        if (this.closed) {
          if (conn !== this.current) conn.close();
          return;
        }
        if (health === true) {
          this.problems.delete(ep);
          this.adopt(conn, idx, true);
          return;
        }
        this.problems.set(ep, `unhealthy: ${health}`);
        // Keep an unhealthy member only if there is nothing better to serve serializable reads.
        if (this.current === undefined || !this.current.isOpen) this.adopt(conn, idx, false);
        else if (conn !== this.current) conn.close();
      }
      if (!this.wanted()) return;
      this.log.debug({ problems: this.describeProblems(), backoffMs: backoff }, 'no healthy member; retrying');
      await new Promise((r) => setTimeout(r, backoff).unref());
      backoff = Math.min(backoff * 2, this.settings.backoffMaxMs);
    }
  }

  /** true, or why the member is not healthy. */
  private async health(conn: StreamConnection): Promise<true | string> {
    const out = await conn.request('health', {}, Date.now() + this.settings.dialTimeoutMs, { retryable: true });
    switch (out.kind) {
      case 'ok':
        return out.result.health ? true : out.result.reason === '' ? 'no reason given' : out.result.reason;
      case 'error':
        return out.error.message;
      case 'timeout':
        return `no answer to a health check within ${this.settings.dialTimeoutMs} ms`;
      default:
        return out.reason;
    }
  }

  private adopt(conn: StreamConnection, idx: number, healthy: boolean): void {
    const old = this.current;
    this.current = conn;
    this.currentHealthy = healthy;
    this.cursor = idx;
    if (old !== conn) {
      this.log.debug({ endpoint: conn.endpoint, healthy }, 'using member');
      this.live.add(conn);
      conn.onClose((reason) => this.onClosed(conn, reason));
      if (old !== undefined) {
        old.retire(`moved from ${old.endpoint} to ${conn.endpoint}`);
        this.leave(old);
      }
    }
    for (const w of [...this.waiters]) {
      if (healthy || w.allowUnhealthy) w.resolve(conn);
    }
  }

  private onClosed(conn: StreamConnection, reason: string): void {
    this.live.delete(conn);
    if (conn === this.current) {
      this.problems.set(conn.endpoint, reason);
      this.log.debug({ endpoint: conn.endpoint, reason }, 'lost the connection to the member');
      this.current = undefined;
      this.currentHealthy = false;
      this.leave(conn);
      if (this.wanted()) this.startSearch();
    }
  }

  private leave(conn: StreamConnection): void {
    for (const l of [...this.leaveListeners]) {
      try {
        l(conn);
      } catch (err) {
        this.log.error({ err }, 'a connection listener threw');
      }
    }
  }

  /** The periodic check while watches are open. */
  private async checkCurrent(): Promise<void> {
    const conn = this.current;
    if (this.checkingHealth || this.searching !== undefined || this.closed) return;
    if (conn === undefined || !conn.isOpen) {
      this.startSearch();
      return;
    }
    this.checkingHealth = true;
    try {
      const health = await this.health(conn);
      if (conn !== this.current) return;
      if (health === true) this.currentHealthy = true;
      else this.reportUnavailable(conn, `unhealthy: ${health}`);
    } finally {
      this.checkingHealth = false;
    }
  }
}
