// The run's seeded source of randomness (the Rng contract of types.ts). mulberry32: 32 bits of state, one
// multiply-xorshift round per draw; plenty for choosing faults and operations, and the same seed gives the
// same sequence on every machine and Node version (only 32-bit integer arithmetic, no platform floats).

import type { Rng } from './types';

/** A deterministic Rng seeded by `seed` (any finite number; only its low 32 bits count). */
export function createRng(seed: number): Rng {
  if (!Number.isFinite(seed)) throw new Error(`rng seed must be a finite number, got ${String(seed)}`);
  let state = Math.trunc(seed) >>> 0;

  function next(): number {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  function int(n: number): number {
    if (!Number.isInteger(n) || n <= 0) throw new Error(`rng.int needs a positive integer bound, got ${String(n)}`);
    return Math.floor(next() * n);
  }

  return {
    next,
    int,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error('rng.pick from an empty list');
      return items[int(items.length)] as T;
    },
    shuffle<T>(items: readonly T[]): T[] {
      const out = items.slice();
      // Fisher–Yates, from the end: every permutation equally likely.
      for (let i = out.length - 1; i > 0; i--) {
        const j = int(i + 1);
        const tmp = out[i] as T;
        out[i] = out[j] as T;
        out[j] = tmp;
      }
      return out;
    },
  };
}
