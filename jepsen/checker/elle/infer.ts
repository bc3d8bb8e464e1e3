// From the transactions of a list-append history to a dependency graph, as Elle does it (Kingsbury & Alvaro,
// "Elle: Inferring Isolation Anomalies from Experimental Observations", VLDB 2020):
//
// - Appended values are unique per key, so a read's elements name their writers (recoverability), and a read
//   list is a whole version: its prefix order is the order in which the appends were installed (traceability).
//   The version order of a key is its longest read; every other read must be a prefix of it.
// - ww: consecutive appends of the version order, writer -> next writer.
// - wr: a transaction's read of a key ends with a value: that value's writer -> the reader.
// - rw: a read ends before an append that the version order places next: the reader -> that appender.
// - realtime (strict serializability only): a transaction that completed before another was invoked precedes it.
//
// Anomalies visible without a cycle are logged here as they are met: G1a, G1b, internal inconsistency,
// incompatible orders, lost updates, duplicated elements, garbage. A key whose reads are incompatible or hold
// duplicates has no trustworthy version order and is left out of the graph.

import { HistoryError } from '../../history';
import { AnomalyLog, showList, tname, txnRef } from './anomaly';
import { DepGraph, RT, RW, WR, WW } from './graph';
import type { Txn, UnreadableRead } from './txns';

interface Writer {
  txn: Txn;
  /** the writer's last append to that key: a version ending elsewhere in its appends is an intermediate one */
  final: boolean;
}

/** A transaction's observation of a key from outside: its first read, minus its own earlier appends. */
interface ExternalRead {
  txn: Txn;
  /** the read; the version observed is its first `length` elements */
  read: readonly number[];
  length: number;
  /** the transaction also appends to the key */
  writes: boolean;
}

interface KeyInfo {
  /** committed (ok) and maybe-committed (info) appends */
  writers: Map<number, Writer>;
  /** appends of transactions that certainly did not commit */
  failed: Map<number, Txn>;
  /** every list read of the key (ok transactions), with its reader */
  reads: { txn: Txn; value: number[] }[];
  external: ExternalRead[];
}

export interface Inference {
  graph: DepGraph;
  keys: number;
  /** keys left out of the graph, with the reason */
  excludedKeys: { key: string; reason: string }[];
}

function keyInfo(keys: Map<string, KeyInfo>, key: string): KeyInfo {
  let k = keys.get(key);
  if (!k) keys.set(key, (k = { writers: new Map(), failed: new Map(), reads: [], external: [] }));
  return k;
}

/** Indexes every append by (key, value); a value appended twice to a key breaks the workload's contract. */
function indexAppends(txns: readonly Txn[], keys: Map<string, KeyInfo>): void {
  const firstBy = new Map<string, Map<number, Txn>>();
  for (const t of txns) {
    const lastAppend = new Map<string, number>(); // key -> position of the txn's last append to it
    t.mops.forEach((m, i) => {
      if (m[0] === 'append') lastAppend.set(m[1], i);
    });
    t.mops.forEach((m, i) => {
      if (m[0] !== 'append') return;
      const [, key, v] = m;
      let seen = firstBy.get(key);
      if (!seen) firstBy.set(key, (seen = new Map()));
      const other = seen.get(v);
      if (other) {
        const at = t.op.invokeLine !== undefined ? `line ${t.op.invokeLine}: ` : '';
        throw new HistoryError(
          `${at}${tname(t)} (process ${t.op.process}) appends ${v} to ${JSON.stringify(key)}, which ${tname(other)} (process ${other.op.process}) ` +
            `appends too: the append checker needs values unique per key`,
          t.op.invokeLine,
        );
      }
      seen.set(v, t);
      const k = keyInfo(keys, key);
      if (t.type === 'fail') k.failed.set(v, t);
      else k.writers.set(v, { txn: t, final: lastAppend.get(key) === i });
    });
  }
}

/**
 * Walks an ok transaction's micro-ops: checks each read against the transaction's own appends (internal
 * consistency), and records the reads for the version orders and the external reads for the edges. Reads are
 * kept by reference, never copied: histories hold tens of thousands of them.
 */
function examineReads(t: Txn, keys: Map<string, KeyInfo>, log: AnomalyLog): void {
  // per key, after its first read: that list plus the appends since, which the next read must show exactly
  const known = new Map<string, { base: readonly number[]; extra: number[] }>();
  // per key, before its first read: the transaction's appends so far, which that read must end with
  const pending = new Map<string, number[]>();
  const externalDone = new Set<string>();
  const appendsTo = new Set(t.mops.filter((m) => m[0] === 'append').map((m) => m[1]));

  for (const m of t.mops) {
    const key = m[1];
    if (m[0] === 'append') {
      const k = known.get(key);
      if (k) k.extra.push(m[2]);
      else {
        const p = pending.get(key) ?? [];
        p.push(m[2]);
        pending.set(key, p);
      }
      continue;
    }
    const value = m[2];
    if (value === null) continue; // unreadable: already reported
    const info = keyInfo(keys, key);
    info.reads.push({ txn: t, value });

    const expected = known.get(key);
    const own = pending.get(key) ?? [];
    let consistent: boolean;
    if (expected) {
      const { base, extra } = expected;
      consistent =
        value.length === base.length + extra.length &&
        base.every((x, i) => x === value[i]) &&
        extra.every((x, i) => x === value[base.length + i]);
    } else {
      consistent = value.length >= own.length && own.every((x, i) => value[value.length - own.length + i] === x);
    }
    if (!consistent) {
      const wanted = expected
        ? `exactly ${showList([...expected.base, ...expected.extra])} (its earlier read plus its own appends)`
        : `a list ending with its own appends ${showList(own)}`;
      log.add({
        type: 'internal',
        key,
        explain: `${tname(t)} read ${JSON.stringify(key)} = ${showList(value)}, but should have seen ${wanted}`,
        txns: [txnRef(t)],
      });
    }
    if (!externalDone.has(key)) {
      externalDone.add(key);
      if (consistent) info.external.push({ txn: t, read: value, length: value.length - own.length, writes: appendsTo.has(key) });
    }
    known.set(key, { base: value, extra: [] });
    pending.delete(key);
  }
}

/** The first duplicated element of a list and the position of its second occurrence. */
function firstDuplicate(xs: readonly number[]): { value: number; at: number } | undefined {
  const seen = new Set<number>();
  for (let i = 0; i < xs.length; i++) {
    if (seen.has(xs[i])) return { value: xs[i], at: i };
    seen.add(xs[i]);
  }
  return undefined;
}

/**
 * Reports the elements of one read that no committed transaction appended (G1a: a failed one did; garbage:
 * none did) and a duplicated element. `suspects` are the positions to look at (all of them by default).
 */
function checkElements(
  t: Txn,
  key: string,
  value: readonly number[],
  info: KeyInfo,
  log: AnomalyLog,
  suspects?: readonly number[],
  dup?: { value: number; at: number },
): void {
  let aborted: number | undefined;
  let garbage: number | undefined;
  const look = (x: number): void => {
    if (info.writers.has(x)) return;
    if (info.failed.has(x)) aborted ??= x;
    else garbage ??= x;
  };
  if (suspects) {
    for (const i of suspects) if (i < value.length) look(value[i]);
  } else {
    for (const x of value) look(x);
    dup = firstDuplicate(value);
  }
  const read = `${tname(t)} read ${JSON.stringify(key)} = ${showList(value)}`;
  if (dup !== undefined && dup.at < value.length) {
    log.add({ type: 'duplicate-elements', key, explain: `${read}, which holds ${dup.value} more than once`, txns: [txnRef(t)] });
  }
  if (aborted !== undefined) {
    const w = info.failed.get(aborted)!;
    log.add({ type: 'G1a', key, explain: `${read}, which holds ${aborted}, appended by ${tname(w)}, which failed`, txns: [txnRef(t), txnRef(w)] });
  }
  if (garbage !== undefined) log.add({ type: 'garbage', key, explain: `${read}, which holds ${garbage}, which no transaction appended`, txns: [txnRef(t)] });
}

/**
 * The longest read of a key is its version order; every other read must be a prefix of it. Also reports each
 * read's elements without a committed writer and its duplicates: for a prefix of the order, by looking only at
 * the order's suspect positions, so that the cost stays linear in the size of the reads. Undefined when the
 * reads give no version order.
 */
function versionOrder(key: string, info: KeyInfo, log: AnomalyLog): number[] | undefined {
  let longest: { txn: Txn; value: number[] } | undefined;
  for (const r of info.reads) if (!longest || r.value.length > longest.value.length) longest = r;
  if (!longest) return [];
  const order = longest.value;
  const suspects: number[] = [];
  order.forEach((x, i) => {
    if (!info.writers.has(x)) suspects.push(i);
  });
  const dup = firstDuplicate(order);
  let compatible = true;
  for (const r of info.reads) {
    const v = r.value;
    let i = 0;
    while (i < v.length && v[i] === order[i]) i++;
    if (i === v.length) {
      if ((suspects.length > 0 && suspects[0] < v.length) || (dup && dup.at < v.length)) checkElements(r.txn, key, v, info, log, suspects, dup);
      continue;
    }
    compatible = false;
    checkElements(r.txn, key, v, info, log);
    log.add({
      type: 'incompatible-order',
      key,
      explain:
        `${tname(r.txn)} read ${JSON.stringify(key)} = ${showList(v)} and ${tname(longest.txn)} read ${showList(order)}: ` +
        `neither is a prefix of the other (they differ at position ${i})`,
      txns: [txnRef(r.txn), txnRef(longest.txn)],
    });
  }
  return compatible && !dup ? order : undefined;
}

function addKeyEdges(g: DepGraph, key: string, order: readonly number[], info: KeyInfo, log: AnomalyLog): void {
  const k = JSON.stringify(key);
  // ww: each committed append after the previous one in the version order
  let prev: { txn: Txn; value: number } | undefined;
  for (const v of order) {
    const w = info.writers.get(v);
    if (!w) continue; // G1a or garbage: no committed writer to order
    if (prev && prev.txn !== w.txn) {
      const p = prev;
      g.add(p.txn.node, w.txn.node, WW, () => ({ key, explain: `${tname(p.txn)} appended ${p.value} to ${k}, then ${tname(w.txn)} appended ${v}` }));
    }
    prev = { txn: w.txn, value: v };
  }

  const versions = new Map<number, ExternalRead[]>(); // version length -> readers that also append
  for (const r of info.external) {
    const t = r.txn;
    const n = r.length;
    // explanations are built only for the edges and anomalies that are kept
    const seen = (): string => `${tname(t)} read ${k} = ${showList(r.read, n)}`;
    if (n > 0) {
      const last = r.read[n - 1];
      const w = info.writers.get(last);
      if (w && w.txn !== t) {
        g.add(w.txn.node, t.node, WR, () => ({ key, explain: `${seen()}, ending with ${last}, appended by ${tname(w.txn)}` }));
        if (!w.final) {
          log.add({
            type: 'G1b',
            key,
            explain: `${seen()}, ending with ${last}, an intermediate append of ${tname(w.txn)}, which appended to ${k} again after it`,
            txns: [txnRef(t), txnRef(w.txn)],
          });
        }
      }
    }
    for (let i = n; i < order.length; i++) {
      const w = info.writers.get(order[i]);
      if (!w) continue;
      const next = order[i];
      if (w.txn !== t) g.add(t.node, w.txn.node, RW, () => ({ key, explain: `${seen()}, without ${next}, which ${tname(w.txn)} appended next` }));
      break;
    }
    if (r.writes && t.type === 'ok') {
      const list = versions.get(n) ?? [];
      list.push(r);
      versions.set(n, list);
    }
  }
  for (const [, readers] of versions) {
    if (readers.length < 2) continue;
    const first = readers[0];
    log.add({
      type: 'lost-update',
      key,
      explain:
        `${readers.map((r) => tname(r.txn)).join(', ')} all read ${k} = ${showList(first.read, first.length)} and all appended to it: ` +
        `in any serial order all but the first would have seen another's append`,
      txns: readers.map((r) => txnRef(r.txn)),
    });
  }
}

/**
 * Real-time edges, kept few as Elle does: a frontier of transactions completed so far, none of which precedes
 * another; an invoked transaction gets an edge from each one in it. Every other real-time precedence follows
 * by transitivity. Two events at the same time are concurrent (no edge). Failed transactions are left out.
 */
function addRealtimeEdges(g: DepGraph, txns: readonly Txn[]): void {
  const live = txns.filter((t) => t.type !== 'fail');
  const byInvoke = [...live].sort((a, b) => a.op.invokeTime - b.op.invokeTime);
  const byComplete = live.filter((t) => t.type === 'ok').sort((a, b) => a.op.completeTime - b.op.completeTime);
  const preds = new Map<Txn, Txn[]>();
  let frontier: Txn[] = [];
  let c = 0;
  for (const t of byInvoke) {
    while (c < byComplete.length && byComplete[c].op.completeTime < t.op.invokeTime) {
      const done = byComplete[c++];
      const before = new Set(preds.get(done) ?? []);
      frontier = frontier.filter((f) => !before.has(f));
      frontier.push(done);
    }
    preds.set(t, frontier.slice());
    for (const f of frontier) {
      g.add(f.node, t.node, RT, () => ({ explain: `${tname(f)} completed (time ${f.op.completeTime}) before ${tname(t)} was invoked (time ${t.op.invokeTime})` }));
    }
  }
}

export function inferDependencies(
  txns: readonly Txn[],
  unreadable: readonly UnreadableRead[],
  log: AnomalyLog,
  opts: { realtime: boolean },
): Inference {
  const keys = new Map<string, KeyInfo>();
  indexAppends(txns, keys);
  for (const u of unreadable) {
    log.add({
      type: 'garbage',
      key: u.key,
      explain: `${tname(u.txn)} read ${JSON.stringify(u.key)} = ${JSON.stringify(u.value)}, which is not a list of integers`,
      txns: [txnRef(u.txn)],
    });
  }
  for (const t of txns) if (t.type === 'ok') examineReads(t, keys, log);

  const g = new DepGraph(txns.length);
  const excludedKeys: { key: string; reason: string }[] = [];
  for (const [key, info] of keys) {
    const order = versionOrder(key, info, log);
    if (!order) {
      excludedKeys.push({ key, reason: 'no version order: its reads are not prefixes of one list, or hold an element twice' });
      continue;
    }
    addKeyEdges(g, key, order, info, log);
  }
  if (opts.realtime) addRealtimeEdges(g, txns);
  g.freeze();
  return { graph: g, keys: keys.size, excludedKeys };
}
