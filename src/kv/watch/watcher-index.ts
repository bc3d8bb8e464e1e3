// The synced watchers, arranged so that an applied event finds the watchers it concerns: single-key
// watchers in a map by key (one lookup per event), range and from-key watchers in a list scanned for every
// event. etcd keeps ranges in an interval tree (O(log n + matches) per event); the scan is O(range
// watchers) per event, fine for the hundreds of range watchers a control plane has, and the place to
// put an interval tree if profiles ever show it.

import type { Watcher } from './watcher';

export class WatcherIndex {
  private readonly byKey = new Map<string, Set<Watcher>>();
  private readonly ranges = new Set<Watcher>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  add(w: Watcher): void {
    if (w.range.kind === 'key') {
      const k = w.range.key.toString('latin1');
      let set = this.byKey.get(k);
      if (!set) this.byKey.set(k, (set = new Set()));
      set.add(w);
    } else {
      this.ranges.add(w);
    }
    this.count += 1;
  }

  remove(w: Watcher): void {
    let removed: boolean;
    if (w.range.kind === 'key') {
      const k = w.range.key.toString('latin1');
      const set = this.byKey.get(k);
      removed = set?.delete(w) ?? false;
      if (set && set.size === 0) this.byKey.delete(k);
    } else {
      removed = this.ranges.delete(w);
    }
    if (removed) this.count -= 1;
  }

  /** Calls `visit` for every watcher whose key or range holds `key`. */
  forKey(key: Buffer, visit: (w: Watcher) => void): void {
    const exact = this.byKey.get(key.toString('latin1'));
    if (exact) for (const w of exact) visit(w);
    for (const w of this.ranges) if (w.matchesKey(key)) visit(w);
  }

  /** Every watcher (for restore, which moves them all back to history). */
  all(): Watcher[] {
    const out: Watcher[] = [...this.ranges];
    for (const set of this.byKey.values()) for (const w of set) out.push(w);
    return out;
  }

  clear(): void {
    this.byKey.clear();
    this.ranges.clear();
    this.count = 0;
  }
}
