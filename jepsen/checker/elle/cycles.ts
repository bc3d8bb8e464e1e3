// Cycle search in the dependency graph, as Elle does it: Tarjan's strongly connected components first (a cycle
// lies inside one), then, in each component, a short cycle for each anomaly class by breadth-first search over
// the edge kinds that class allows:
//   G0        ww only
//   G1c       ww and wr, with at least one wr
//   G-single  one rw edge a -> b, and a path b ~> a over ww / wr
//   G2        one rw edge a -> b, and a path b ~> a that takes at least one more rw edge
// With real-time edges, the same searches again with them allowed find the "-realtime" classes. Every search
// draws on one step budget, so a huge component cannot stall the check; a component in which no class was
// found within it is still explained by some cycle (found without a budget: one BFS is linear).

import type { AnomalyType } from './anomaly';
import { ALL_KINDS, Budget, DepGraph, RT, RW, shortestPath, stronglyConnected, WR, WW } from './graph';

export interface FoundCycle {
  type: AnomalyType;
  /** edge ids, in order; the last one ends where the first one starts */
  edges: number[];
}

/** The class of a cycle from its edges: the number of rw edges decides, a real-time edge adds "-realtime". */
export function classify(g: DepGraph, edges: readonly number[]): AnomalyType {
  let rw = 0;
  let wr = 0;
  let rt = 0;
  for (const e of edges) {
    const k = g.kind[e];
    if (k === RW) rw++;
    else if (k === WR) wr++;
    else if (k === RT) rt++;
  }
  const base = rw >= 2 ? 'G2' : rw === 1 ? 'G-single' : wr > 0 ? 'G1c' : 'G0';
  return (rt > 0 ? `${base}-realtime` : base) as AnomalyType;
}

type Inside = (v: number) => boolean;

/** A cycle through an edge of kind `required`, using only kinds in `mask`, inside the nodes of `comp`. */
function cycleThrough(g: DepGraph, comp: readonly number[], inside: Inside, mask: number, required: number, budget: Budget): number[] | undefined {
  const subs = stronglyConnected(g, mask, comp, inside);
  for (const sub of subs) {
    const members = new Set(sub);
    const inSub = (v: number): boolean => members.has(v);
    for (const v of sub) {
      for (const e of g.outEdges(v)) {
        if (g.kind[e] !== required || !inSub(g.to[e])) continue;
        const back = shortestPath(g, g.to[e], v, mask, inSub, budget);
        if (back) return [e, ...back];
        if (budget.exhausted) return undefined;
      }
    }
  }
  return undefined;
}

/** An rw edge a -> b closed by a path b ~> a over the kinds in `mask` (which holds no rw). */
function singleAnti(g: DepGraph, comp: readonly number[], inside: Inside, mask: number, budget: Budget): number[] | undefined {
  for (const a of comp) {
    for (const e of g.outEdges(a)) {
      if (g.kind[e] !== RW || !inside(g.to[e])) continue;
      const back = shortestPath(g, g.to[e], a, mask, inside, budget);
      if (back) return [e, ...back];
      if (budget.exhausted) return undefined;
    }
  }
  return undefined;
}

/**
 * An rw edge a -> b closed by a path b ~> a over `mask` that takes at least one more rw edge: a breadth-first
 * search over (node, whether an rw edge was taken yet), keeping only walks that are simple cycles. A heuristic,
 * as Elle's is (the shortest such walk may repeat a node while a longer simple one exists): it explains a G2
 * when it finds one; the verdict does not depend on it.
 */
function multiAnti(g: DepGraph, comp: readonly number[], inside: Inside, mask: number, budget: Budget): number[] | undefined {
  for (const a of comp) {
    for (const first of g.outEdges(a)) {
      if (g.kind[first] !== RW || !inside(g.to[first])) continue;
      const start = g.to[first] * 2;
      // a state is node * 2 + (1 once an rw edge was taken); via: the edge a state was reached by, and from where
      const via = new Map<number, number>([[start, -1]]);
      const prevState = new Map<number, number>();
      const queue = [start];
      let goal: number | undefined;
      for (let head = 0; head < queue.length && goal === undefined; head++) {
        const s = queue[head];
        const v = s >> 1;
        const took = s & 1;
        for (const e of g.outEdges(v)) {
          if (!budget.spend()) return undefined;
          if ((g.kind[e] & mask) === 0 || !inside(g.to[e])) continue;
          const next = g.to[e] * 2 + (took | (g.kind[e] === RW ? 1 : 0));
          if (via.has(next)) continue;
          via.set(next, e);
          prevState.set(next, s);
          if (next === a * 2 + 1) {
            goal = next;
            break;
          }
          queue.push(next);
        }
      }
      if (goal === undefined) continue;
      const path: number[] = [];
      for (let s = goal; s !== start; s = prevState.get(s)!) path.push(via.get(s)!);
      const cycle = [first, ...path.reverse()];
      // The walk may pass a node twice (once in each layer): then it is not one cycle but several, and the one
      // with two rw edges may not be among them. Only a simple cycle is a G2 example.
      if (new Set(cycle.map((e) => g.from[e])).size === cycle.length) return cycle;
    }
  }
  return undefined;
}

/** Some cycle of the component (one exists: it is strongly connected with two nodes or more). */
function anyCycle(g: DepGraph, comp: readonly number[], inside: Inside, mask: number): number[] {
  const v = comp[0];
  const unlimited = new Budget(Number.POSITIVE_INFINITY);
  for (const e of g.outEdges(v)) {
    if ((g.kind[e] & mask) === 0 || !inside(g.to[e])) continue;
    const back = shortestPath(g, g.to[e], v, mask, inside, unlimited);
    if (back) return [e, ...back];
  }
  throw new Error(`cycle search: component of ${comp.length} nodes has no cycle through node ${v}`);
}

export interface CycleSearch {
  cycles: FoundCycle[];
  /** strongly connected components with two or more transactions */
  components: number;
  /** whether the step budget ran out (some classes may then be missing from a component's report) */
  exhausted: boolean;
}

/** One short cycle per anomaly class present in each strongly connected component. */
export function findCycles(g: DepGraph, opts: { realtime: boolean; budgetSteps: number }): CycleSearch {
  const all = opts.realtime ? ALL_KINDS : WW | WR | RW;
  const nodes = Array.from({ length: g.n }, (_v, i) => i);
  const comps = stronglyConnected(g, all, nodes, () => true);
  const compOf = new Int32Array(g.n).fill(-1);
  comps.forEach((c, i) => {
    for (const v of c) compOf[v] = i;
  });
  const budget = new Budget(opts.budgetSteps);
  const cycles: FoundCycle[] = [];
  comps.forEach((comp, id) => {
    const inside = (v: number): boolean => compOf[v] === id;
    const found = new Map<AnomalyType, number[]>();
    const keep = (edges: number[] | undefined): void => {
      if (!edges) return;
      const type = classify(g, edges);
      if (!found.has(type)) found.set(type, edges);
    };
    keep(cycleThrough(g, comp, inside, WW, WW, budget));
    keep(cycleThrough(g, comp, inside, WW | WR, WR, budget));
    keep(singleAnti(g, comp, inside, WW | WR, budget));
    keep(multiAnti(g, comp, inside, WW | WR | RW, budget));
    if (opts.realtime) {
      keep(cycleThrough(g, comp, inside, WW | WR | RT, RT, budget));
      keep(singleAnti(g, comp, inside, WW | WR | RT, budget));
      keep(multiAnti(g, comp, inside, ALL_KINDS, budget));
    }
    if (found.size === 0) keep(anyCycle(g, comp, inside, all));
    for (const [type, edges] of found) cycles.push({ type, edges });
  });
  return { cycles, components: comps.length, exhausted: budget.exhausted };
}
