// The dependency graph of the list-append checker (Adya's direct serialization graph, as Elle infers it): nodes
// are transactions (0..n-1), edges are ww / wr / rw dependencies (and real-time order when asked for), each
// edge kept once per kind with the evidence that produced it. Cycle searches run over subsets of the kinds, so
// kinds are bits of a mask.

export const WW = 1;
export const WR = 2;
export const RW = 4;
export const RT = 8;
export const ALL_KINDS = WW | WR | RW | RT;

export type EdgeKind = 'ww' | 'wr' | 'rw' | 'realtime';

export function kindName(bit: number): EdgeKind {
  switch (bit) {
    case WW:
      return 'ww';
    case WR:
      return 'wr';
    case RW:
      return 'rw';
    case RT:
      return 'realtime';
    default:
      throw new Error(`not an edge kind: ${bit}`);
  }
}

/** Why an edge exists: the key and the elements of its version order involved, in words. */
export interface EdgeWhy {
  key?: string;
  explain: string;
}

/** A directed multigraph with at most one edge per (from, to, kind); self-loops are dropped. */
export class DepGraph {
  readonly from: number[] = [];
  readonly to: number[] = [];
  readonly kind: number[] = [];
  readonly why: EdgeWhy[] = [];
  private readonly seen = new Set<number>();
  /** CSR adjacency, built by `freeze` */
  private start: Int32Array | undefined;
  private out: Int32Array | undefined;

  constructor(readonly n: number) {}

  /** `why` is computed only for a new edge (explanations are strings: building them for duplicates costs). */
  add(from: number, to: number, kind: number, why: () => EdgeWhy): void {
    if (from === to) return;
    if (this.start) throw new Error('DepGraph: add after freeze');
    // n is at most a few hundred thousand transactions, so n * n * 16 stays below 2^53
    const id = (from * this.n + to) * 16 + kind;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.from.push(from);
    this.to.push(to);
    this.kind.push(kind);
    this.why.push(why());
  }

  get edgeCount(): number {
    return this.from.length;
  }

  /** Builds the adjacency lists; no edge may be added afterwards. */
  freeze(): void {
    const start = new Int32Array(this.n + 1);
    for (const f of this.from) start[f + 1]++;
    for (let i = 0; i < this.n; i++) start[i + 1] += start[i];
    const fill = start.slice(0, this.n);
    const out = new Int32Array(this.from.length);
    for (let e = 0; e < this.from.length; e++) out[fill[this.from[e]]++] = e;
    this.start = start;
    this.out = out;
  }

  /** The ids of the edges leaving `v`. */
  outEdges(v: number): Int32Array {
    if (!this.start || !this.out) throw new Error('DepGraph: freeze before traversal');
    return this.out.subarray(this.start[v], this.start[v + 1]);
  }

  countByKind(): Record<EdgeKind, number> {
    const c: Record<EdgeKind, number> = { ww: 0, wr: 0, rw: 0, realtime: 0 };
    for (const k of this.kind) c[kindName(k)]++;
    return c;
  }
}

/**
 * Tarjan's strongly connected components (iterative: histories have tens of thousands of transactions, too deep
 * for recursion) over the edges whose kind is in `mask`, among the nodes for which `inside` holds. Returns only
 * the components with more than one node: a dependency cycle needs two transactions (self-loops are never added).
 */
export function stronglyConnected(g: DepGraph, mask: number, nodes: Iterable<number>, inside: (v: number) => boolean): number[][] {
  const index = new Map<number, number>();
  const low = new Map<number, number>();
  const onStack = new Set<number>();
  const stack: number[] = [];
  const result: number[][] = [];
  let counter = 0;

  for (const root of nodes) {
    if (index.has(root)) continue;
    // frames of the simulated recursion: node and the position in its out-edges
    const frames: { v: number; i: number }[] = [{ v: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter);
    counter++;
    stack.push(root);
    onStack.add(root);
    while (frames.length > 0) {
      const top = frames[frames.length - 1];
      const edges = g.outEdges(top.v);
      let descended = false;
      while (top.i < edges.length) {
        const e = edges[top.i++];
        if ((g.kind[e] & mask) === 0) continue;
        const w = g.to[e];
        if (!inside(w)) continue;
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter);
          counter++;
          stack.push(w);
          onStack.add(w);
          frames.push({ v: w, i: 0 });
          descended = true;
          break;
        }
        if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
      }
      if (descended) continue;
      frames.pop();
      const v = top.v;
      if (frames.length > 0) {
        const parent = frames[frames.length - 1].v;
        low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
      }
      if (low.get(v) === index.get(v)) {
        const comp: number[] = [];
        let w: number;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          comp.push(w);
        } while (w !== v);
        if (comp.length > 1) result.push(comp);
      }
    }
  }
  return result;
}

/** A work limit shared by the searches of one check, so that a huge strongly connected component cannot stall it. */
export class Budget {
  private left: number;
  constructor(steps: number) {
    this.left = steps;
  }
  /** false once the budget is spent */
  spend(n = 1): boolean {
    this.left -= n;
    return this.left >= 0;
  }
  get exhausted(): boolean {
    return this.left < 0;
  }
}

/**
 * The shortest path (as edge ids) from `src` to `dst` over edges of kinds in `mask` staying among the nodes for
 * which `inside` holds; undefined when there is none or the budget runs out. src === dst gives [].
 */
export function shortestPath(
  g: DepGraph,
  src: number,
  dst: number,
  mask: number,
  inside: (v: number) => boolean,
  budget: Budget,
): number[] | undefined {
  if (src === dst) return [];
  const via = new Map<number, number>(); // node -> edge it was reached by
  const queue: number[] = [src];
  via.set(src, -1);
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head];
    for (const e of g.outEdges(v)) {
      if (!budget.spend()) return undefined;
      if ((g.kind[e] & mask) === 0) continue;
      const w = g.to[e];
      if (via.has(w) || !inside(w)) continue;
      via.set(w, e);
      if (w === dst) {
        const path: number[] = [];
        for (let x = dst; x !== src; x = g.from[via.get(x)!]) path.push(via.get(x)!);
        return path.reverse();
      }
      queue.push(w);
    }
  }
  return undefined;
}
