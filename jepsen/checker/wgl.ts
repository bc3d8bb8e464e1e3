// Wing & Gong's linearizability search with Lowe's cache, as Porcupine (anishathalye/porcupine, checker.go)
// does it, over a model whose states and operations are small integers (see models.ts).
//
// The history of one key becomes 2n entries, a call and a return per operation, sorted by time (a call before
// a return at the same time, so that operations touching at an instant count as concurrent). The entries form
// a doubly linked list. The search walks the list from its head:
//   - at a call entry, it tries to linearize that operation now: if the model accepts it from the current state
//     and the pair (set of linearized operations, new state) has not been seen before, the pair goes into the
//     cache, (entry, old state) onto the stack, the operation's call and return are lifted out of the list and
//     the walk restarts from the head; otherwise it moves on to the next entry;
//   - at a return entry, the operation it returns has not been linearized and cannot be deferred past its
//     return: a dead end. Pop the last linearized operation, unlift it, restore the state, and continue after
//     it. Nothing left to pop: not linearizable.
// The list becoming empty means every operation was linearized: linearizable.
//
// An indeterminate operation has its return at +infinity: it may be linearized anywhere after its call,
// including after every other operation, which is where "it never took effect" lives.
//
// The cache is keyed by a Zobrist hash of the linearized set (xor of a random word per operation, kept
// incrementally) mixed with the state, and every hit is confirmed by comparing the whole set and the state, so a
// hash collision can cost time but never an answer. It lives in typed arrays (a chained hash table, the sets
// stored compactly, see below) rather than a Map of objects, which keeps millions of entries cheap.
//
// Two additions to Porcupine's search, both exact (they change how much is explored, never the answer; the tests
// check them against brute force and against the plain search):
//
// 1. Pure operations are forced. A pure operation (a read; anything that never changes the state and is admitted
//    or refused by the state alone) that is callable in a configuration (every operation that returned before
//    its call is linearized) and admitted in the current state can be linearized right now without loss: take any
//    full linearization from here and move the operation back to now; it is admitted now, taking it out of its
//    old place changes no state, and every operation that had to precede it in real time already has. So a fresh
//    configuration first looks for such an operation and takes it with no alternative (forced); when a forced
//    step fails, or lands on a cached configuration, the configuration below it fails too. This removes the 2^m
//    subsets of m same-valued reads pending together.
//
// 2. Doomed configurations are abandoned (lookahead). Some operations need the state to hold something (a read
//    of v needs v; a get of "abc" needs a prefix of it). Only certain operations, its producers, can bring that
//    about (a write of v or a cas to v; a put of a prefix), and only those whose call precedes its return can
//    come before it. Every linearized operation's call precedes every unlinearized operation's return (the walk
//    never passes a return entry), so the producers still able to help an unlinearized operation Y number
//    static(Y) - linearizedProducers(class of Y), where static(Y) counts the producers called before Y's return.
//    The search keeps the set of unlinearized operations with none left ("orphans", updated at each step by
//    looking only at the operations whose count just reached zero or left it); an orphan that the model says
//    cannot be satisfied from the current state without a producer (the state is not v; the state is not a
//    prefix of the get's value) dooms the configuration, however far in the future its return lies. This is what makes the 50-client kv fixtures, whose violations are a stale read near the end of
//    a key's history, take milliseconds instead of exhausting the cache.
//
// A time budget (checked every 1024 steps) and a memory cap bound the search: running out of either gives
// 'unknown', never 'valid'.

export interface IntModel {
  /** the initial state */
  readonly init: number;
  /** the state after operation `op` from `state`, or -1 if the model forbids it there */
  step(state: number, op: number): number;
  /**
   * whether `op` is pure: it never changes the state, and whether it is admitted depends on the state alone (a
   * read, a get, a cas [a, a]). Optional; enables reduction 1.
   */
  pure?(op: number): boolean;
  /**
   * Reduction 2 (optional, all three together). produces(op): the class of states op can bring about (a
   * non-negative integer, for instance the value it writes), or -1. needs(op): for an operation the model may
   * refuse, the classes whose producers can make it admitted (several: the operation is never treated as an
   * orphan); undefined if the model never refuses it. admitsWithout(state, op): false only if no sequence of
   * operations that produce none of op's needed classes leads from `state` to a state that admits op.
   */
  produces?(op: number): number;
  needs?(op: number): readonly number[] | undefined;
  admitsWithout?(state: number, op: number): boolean;
}

export interface WglInput {
  /** number of operations */
  n: number;
  /** call time of each operation */
  call: ArrayLike<number>;
  /** return time of each operation (Infinity for an indeterminate one) */
  ret: ArrayLike<number>;
  model: IntModel;
  /** performance.now() after which the search gives up with 'unknown' */
  deadline: number;
  /** cap on the memory of the cache and its bitsets, in bytes (default 512 MiB) */
  maxCacheBytes?: number;
  /** apply reduction 1 (default true; off only to cross-check the search in tests) */
  reducePure?: boolean;
  /** apply reduction 2 (default true; off only to cross-check the search in tests) */
  prune?: boolean;
  /** record the longest linearizable prefix met at a dead end (default true) */
  trackLongest?: boolean;
}

export interface WglOutput {
  verdict: 'valid' | 'invalid' | 'unknown';
  /** why the search stopped without an answer */
  reason?: string;
  /** loop iterations */
  steps: number;
  /** entries in the cache at the end */
  cacheEntries: number;
  /** configurations abandoned by reduction 2 */
  pruned: number;
  /**
   * for 'invalid' (and 'unknown'): the longest sequence of operations the search could linearize (operation
   * indices, in linearization order), the state after each, and the operation that could not take effect
   * before its return after it
   */
  longest: number[];
  longestStates: number[];
  stuck: number;
  /** for 'valid': one linearization (operation indices in order) */
  linearization?: number[];
}

const DEFAULT_MAX_CACHE_BYTES = 512 * 1024 * 1024;

function zobrist(n: number): Int32Array {
  // xorshift32 with a fixed seed: the hash values do not need to be secret, only spread
  const z = new Int32Array(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    z[i] = x;
  }
  return z;
}

/** The bookkeeping of reduction 2: which unlinearized constrained operations have no producer left. */
class Orphans {
  /** current members, and each operation's position in `members` (-1: not a member) */
  readonly members: Int32Array;
  size = 0;
  private readonly pos: Int32Array;
  /** the single needed class of each operation, -1: none needed (always an orphan), -2: not tracked */
  private readonly need: Int32Array;
  private readonly stat: Int32Array;
  private readonly prod: Int32Array;
  private readonly lin: Int32Array;
  /** per class, the tracked operations sorted by static count; bucketStart[c][k] = first with static k */
  private readonly byClass: Int32Array[] = [];
  private readonly bucketStart: Int32Array[] = [];

  constructor(n: number, model: IntModel, entryOfCall: Int32Array, entryOfRet: Int32Array) {
    this.members = new Int32Array(n);
    this.pos = new Int32Array(n).fill(-1);
    this.need = new Int32Array(n).fill(-2);
    this.stat = new Int32Array(n);
    this.prod = new Int32Array(n).fill(-1);
    let classes = 0;
    for (let op = 0; op < n; op++) {
      const c = model.produces!(op);
      this.prod[op] = c;
      if (c + 1 > classes) classes = c + 1;
    }
    for (let op = 0; op < n; op++) {
      const needs = model.needs!(op);
      if (needs === undefined || needs.length > 1) continue;
      if (needs.length === 0) this.need[op] = -1;
      else {
        this.need[op] = needs[0];
        if (needs[0] + 1 > classes) classes = needs[0] + 1;
      }
    }
    this.lin = new Int32Array(classes);
    // producers' call positions per class, sorted
    const calls: number[][] = Array.from({ length: classes }, () => []);
    for (let op = 0; op < n; op++) if (this.prod[op] >= 0) calls[this.prod[op]].push(entryOfCall[op]);
    for (const list of calls) list.sort((a, b) => a - b);
    const tracked: number[][] = Array.from({ length: classes }, () => []);
    for (let op = 0; op < n; op++) {
      const c = this.need[op];
      if (c < 0) continue;
      // producers of c called before op's return (op itself never produces what it needs: it would be pure)
      const list = calls[c];
      let lo = 0;
      let hi = list.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (list[mid] < entryOfRet[op]) lo = mid + 1;
        else hi = mid;
      }
      this.stat[op] = lo - (this.prod[op] === c && entryOfCall[op] < entryOfRet[op] ? 1 : 0);
      tracked[c].push(op);
    }
    for (let c = 0; c < classes; c++) {
      const ops = tracked[c].sort((a, b) => this.stat[a] - this.stat[b]);
      this.byClass.push(Int32Array.from(ops));
      const starts = new Int32Array(calls[c].length + 2);
      let i = 0;
      for (let k = 0; k <= calls[c].length + 1; k++) {
        while (i < ops.length && this.stat[ops[i]] < k) i++;
        starts[k] = i;
      }
      this.bucketStart.push(starts);
    }
    for (let op = 0; op < n; op++) if (this.isOrphan(op)) this.add(op);
  }

  private isOrphan(op: number): boolean {
    const c = this.need[op];
    return c === -1 || (c >= 0 && this.stat[op] === this.lin[c]);
  }
  private add(op: number): void {
    if (this.pos[op] >= 0) return;
    this.pos[op] = this.size;
    this.members[this.size++] = op;
  }
  private remove(op: number): void {
    const p = this.pos[op];
    if (p < 0) return;
    const last = this.members[--this.size];
    this.members[p] = last;
    this.pos[last] = p;
    this.pos[op] = -1;
  }

  /** op was just linearized (`isLin` tells which operations are) */
  linearize(op: number, isLin: (o: number) => boolean): void {
    this.remove(op);
    const c = this.prod[op];
    if (c < 0) return;
    const k = ++this.lin[c];
    const list = this.byClass[c];
    const starts = this.bucketStart[c];
    for (let i = starts[k], end = starts[k + 1]; i < end; i++) if (!isLin(list[i])) this.add(list[i]);
  }

  /** op was just unlinearized */
  unlinearize(op: number): void {
    const c = this.prod[op];
    if (c >= 0) {
      const k = this.lin[c]--;
      const list = this.byClass[c];
      const starts = this.bucketStart[c];
      for (let i = starts[k], end = starts[k + 1]; i < end; i++) this.remove(list[i]);
    }
    if (this.isOrphan(op)) this.add(op);
  }
}

export function wgl(input: WglInput): WglOutput {
  const { n, model, deadline } = input;
  const trackLongest = input.trackLongest !== false;
  const maxBytes = input.maxCacheBytes ?? DEFAULT_MAX_CACHE_BYTES;
  if (n === 0) {
    return { verdict: 'valid', steps: 0, cacheEntries: 0, pruned: 0, longest: [], longestStates: [], stuck: -1, linearization: [] };
  }

  // ---- entries: 1..2n, 0 is the head sentinel ----
  const E = 2 * n;
  const order = new Array<number>(E);
  for (let i = 0; i < E; i++) order[i] = i; // 2*op = call, 2*op+1 = return
  const timeOf = (e: number): number => ((e & 1) === 0 ? input.call[e >> 1] : input.ret[e >> 1]);
  order.sort((x, y) => {
    const tx = timeOf(x);
    const ty = timeOf(y);
    if (tx !== ty) return tx < ty ? -1 : 1;
    const kx = x & 1;
    const ky = y & 1;
    if (kx !== ky) return kx - ky; // calls first
    return x - y;
  });
  const opOf = new Int32Array(E + 1);
  const isCall = new Uint8Array(E + 1);
  const match = new Int32Array(E + 1).fill(-1);
  const next = new Int32Array(E + 1).fill(-1);
  const prev = new Int32Array(E + 1).fill(-1);
  const entryOfCall = new Int32Array(n);
  const entryOfRet = new Int32Array(n);
  for (let k = 0; k < E; k++) {
    const e = k + 1;
    const raw = order[k];
    const op = raw >> 1;
    opOf[e] = op;
    if ((raw & 1) === 0) {
      isCall[e] = 1;
      entryOfCall[op] = e;
    } else entryOfRet[op] = e;
  }
  for (let op = 0; op < n; op++) {
    if (entryOfCall[op] > entryOfRet[op]) throw new Error(`operation ${op} returns before it is called`);
    match[entryOfCall[op]] = entryOfRet[op];
  }
  for (let e = 0; e <= E; e++) {
    prev[e] = e - 1;
    next[e] = e < E ? e + 1 : -1;
  }

  // ---- the cache: chained hash table over (linearized set, state) ----
  // The set is a bitset over operations ranked by call time. In that order it reads 1111 [mixed] 0000: every
  // operation called before the earliest unlinearized one is linearized, nothing called after the last
  // linearized one is. Only the mixed words are stored (with the index of the first), so an entry costs a few
  // words, about the concurrency of the history, instead of n/32.
  const words = (n + 31) >>> 5;
  const Z = zobrist(n);
  const bitOf = new Int32Array(n);
  {
    const byCall = Array.from({ length: n }, (_, i) => i).sort((x, y) => input.call[x] - input.call[y] || x - y);
    for (let r = 0; r < n; r++) bitOf[byCall[r]] = r;
  }
  let cap = 1024;
  let poolOff = new Int32Array(cap);
  let poolLo = new Int32Array(cap);
  let poolLen = new Int32Array(cap);
  let poolState = new Int32Array(cap);
  let poolHash = new Int32Array(cap);
  let poolNext = new Int32Array(cap);
  let count = 0;
  let tableMask = 2047;
  let table = new Int32Array(tableMask + 1).fill(-1);
  let store = new Uint32Array(4096);
  let used = 0;
  // entries: six Int32 each, plus two table slots
  const bytes = (entries: number, storeWords: number): number => entries * (24 + 8) + storeWords * 4;

  const growEntries = (): boolean => {
    const ncap = cap * 2;
    if (bytes(ncap, store.length) > maxBytes) return false;
    const g = (a: Int32Array): Int32Array<ArrayBuffer> => {
      const b = new Int32Array(ncap);
      b.set(a);
      return b;
    };
    poolOff = g(poolOff);
    poolLo = g(poolLo);
    poolLen = g(poolLen);
    poolState = g(poolState);
    poolHash = g(poolHash);
    poolNext = g(poolNext);
    cap = ncap;
    // keep the table at twice the capacity: rebuild the chains
    tableMask = ncap * 2 - 1;
    table = new Int32Array(ncap * 2).fill(-1);
    for (let i = 0; i < count; i++) {
      const b = poolHash[i] & tableMask;
      poolNext[i] = table[b];
      table[b] = i;
    }
    return true;
  };
  const growStore = (need: number): boolean => {
    let size = store.length;
    while (size < used + need) size *= 2;
    if (bytes(cap, size) > maxBytes) return false;
    const ns = new Uint32Array(size);
    ns.set(store.subarray(0, used));
    store = ns;
    return true;
  };

  const linearized = new Uint32Array(words);
  let h = 0; // Zobrist hash of `linearized`
  // lo: the first word not all ones (words if none); hi: the last word not zero (-1 if none)
  let lo = 0;
  let hi = -1;
  const isLin = (op: number): boolean => (linearized[bitOf[op] >>> 5] & (1 << (bitOf[op] & 31))) !== 0;

  // ---- the stack of linearized calls ----
  const stackEntry = new Int32Array(n);
  const stackState = new Int32Array(n);
  const stackForced = new Uint8Array(n);
  let top = 0;

  // ---- the reductions ----
  const pure = new Uint8Array(n);
  if (model.pure && input.reducePure !== false) for (let op = 0; op < n; op++) pure[op] = model.pure(op) ? 1 : 0;
  const orphans =
    input.prune !== false && model.produces && model.needs && model.admitsWithout
      ? new Orphans(n, model, entryOfCall, entryOfRet)
      : undefined;
  let pruned = 0;

  let state = model.init;
  let longest: number[] = [];
  let longestStates: number[] = [];
  let stuck = -1;
  let steps = 0;

  const out = (verdict: WglOutput['verdict'], reason?: string): WglOutput => {
    const o: WglOutput = { verdict, steps, cacheEntries: count, pruned, longest, longestStates, stuck };
    if (reason) o.reason = reason;
    if (verdict === 'valid') {
      const lin: number[] = [];
      for (let i = 0; i < top; i++) lin.push(opOf[stackEntry[i]]);
      o.linearization = lin;
    }
    return o;
  };

  // a dead end: keep the longest linearized prefix seen, and the operation that could not follow it
  const record = (blocked: number): void => {
    if (top > longest.length || stuck === -1) {
      longest = new Array<number>(top);
      longestStates = new Array<number>(top);
      for (let k = 0; k < top; k++) {
        longest[k] = opOf[stackEntry[k]];
        longestStates[k] = k + 1 < top ? stackState[k + 1] : state;
      }
      stuck = blocked;
    }
  };

  let entry = next[0];
  // fresh: the configuration was just entered, check it and look for a forced operation first
  // dead: the configuration is known to fail, backtrack
  let fresh = true;
  let dead = false;
  while (next[0] !== -1) {
    if ((++steps & 1023) === 0 && performance.now() > deadline) {
      return out('unknown', `time budget exhausted after ${steps} steps and ${count} cached configurations`);
    }
    if (dead) {
      if (top === 0) return out('invalid');
      top--;
      const e = stackEntry[top];
      state = stackState[top];
      const op = opOf[e];
      const w = bitOf[op] >>> 5;
      linearized[w] &= ~(1 << (bitOf[op] & 31));
      if (w < lo) lo = w;
      if (w === hi) while (hi >= 0 && linearized[hi] === 0) hi--;
      h ^= Z[op];
      if (orphans) orphans.unlinearize(op);
      // unlift: put the return back, then the call
      const r = match[e];
      next[prev[r]] = r;
      if (next[r] !== -1) prev[next[r]] = r;
      next[prev[e]] = e;
      prev[next[e]] = e;
      // a forced operation failing means the configuration below it fails too: keep backtracking
      if (stackForced[top] === 0) {
        dead = false;
        entry = next[e];
      }
      continue;
    }
    let forced = 0;
    if (fresh) {
      fresh = false;
      if (orphans) {
        let doomed = -1;
        const m = orphans.members;
        for (let i = 0, size = orphans.size; i < size; i++) {
          if (!model.admitsWithout!(state, m[i])) {
            doomed = m[i];
            break;
          }
        }
        if (doomed >= 0) {
          pruned++;
          if (trackLongest) record(doomed);
          dead = true;
          continue;
        }
      }
      let f = -1;
      for (let e = next[0]; e !== -1 && isCall[e] === 1; e = next[e]) {
        const op = opOf[e];
        if (pure[op] === 1 && model.step(state, op) >= 0) {
          f = e;
          break;
        }
      }
      if (f === -1) {
        entry = next[0];
        continue;
      }
      entry = f;
      forced = 1;
    } else if (isCall[entry] === 0) {
      // a return entry whose operation is not linearized: dead end
      if (trackLongest) record(opOf[entry]);
      dead = true;
      continue;
    } else if (pure[opOf[entry]] === 1) {
      // not admitted here, or the fresh scan would have forced it
      entry = next[entry];
      continue;
    }
    const op = opOf[entry];
    const ns = model.step(state, op);
    if (ns < 0) {
      entry = next[entry];
      continue;
    }
    const w = bitOf[op] >>> 5;
    const bit = 1 << (bitOf[op] & 31);
    linearized[w] |= bit;
    const nh = h ^ Z[op];
    const hash = (nh ^ Math.imul(ns + 1, 0x9e3779b1)) | 0;
    // the stored part of the new set
    let nlo = lo;
    if (w === lo) while (nlo < words && linearized[nlo] === 0xffffffff) nlo++;
    const nhi = w > hi ? w : hi;
    const len = nhi >= nlo ? nhi - nlo + 1 : 0;
    // is (linearized, ns) cached?
    let i = table[hash & tableMask];
    let seen = false;
    while (i !== -1) {
      if (poolHash[i] === hash && poolState[i] === ns && poolLo[i] === nlo && poolLen[i] === len) {
        const base = poolOff[i] - nlo;
        let same = true;
        for (let k = nlo; k <= nhi; k++) {
          if (store[base + k] !== linearized[k]) {
            same = false;
            break;
          }
        }
        if (same) {
          seen = true;
          break;
        }
      }
      i = poolNext[i];
    }
    if (seen) {
      linearized[w] &= ~bit;
      // explored before without success; for a forced operation that settles this configuration too
      if (forced === 1) dead = true;
      else entry = next[entry];
      continue;
    }
    if ((count === cap && !growEntries()) || (used + len > store.length && !growStore(len))) {
      linearized[w] &= ~bit;
      return out('unknown', `cache memory limit (${Math.round(maxBytes / 1048576)} MiB) reached after ${steps} steps`);
    }
    store.set(linearized.subarray(nlo, nlo + len), used);
    poolOff[count] = used;
    used += len;
    poolLo[count] = nlo;
    poolLen[count] = len;
    poolState[count] = ns;
    poolHash[count] = hash;
    const b = hash & tableMask;
    poolNext[count] = table[b];
    table[b] = count;
    count++;
    lo = nlo;
    hi = nhi;
    stackEntry[top] = entry;
    stackState[top] = state;
    stackForced[top] = forced;
    top++;
    state = ns;
    h = nh;
    if (orphans) orphans.linearize(op, isLin);
    // lift the call and its return out of the list
    const r = match[entry];
    next[prev[entry]] = next[entry];
    prev[next[entry]] = prev[entry];
    next[prev[r]] = next[r];
    if (next[r] !== -1) prev[next[r]] = prev[r];
    fresh = true;
  }
  return out('valid');
}
