// Rate limiting of repetitive log lines. A misconfigured or overloaded peer produces the same condition on
// every retry or every message; the operator needs to see it, but not thousands of times.

import { performance } from 'node:perf_hooks';

/** Most keys remembered: keys can come from untrusted handshake headers, so the map must not grow forever. */
const MAX_KEYS = 1024;

export class LogThrottle {
  private readonly last = new Map<string, number>();

  constructor(private readonly intervalMs: number) {}

  /** True if `key` was not let through within the last interval (and records that it is now). */
  allow(key: string): boolean {
    const now = performance.now();
    const prev = this.last.get(key);
    if (prev !== undefined && now - prev < this.intervalMs) return false;
    if (prev === undefined && this.last.size >= MAX_KEYS) this.last.clear();
    this.last.set(key, now);
    return true;
  }
}
