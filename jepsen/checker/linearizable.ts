// The linearizability checker for the register workload (and the kv fixtures' model): the history is split per
// key (operations on different keys are independent, so the history is linearizable iff every key's is — the
// locality of linearizability, which Porcupine and Knossos use the same way), each key's sub-history is searched
// by wgl.ts in a pool of worker threads, each key under its own time budget.
//
// A key is valid (a linearization exists), invalid (none exists: the search was exhaustive) or unknown (the
// budget or the memory cap ran out first, or its worker had to be stopped). Overall: invalid if any key is
// invalid, else unknown if any is unknown, else valid.

import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describeOperation, type Operation } from '../history';
import { prepareKey, type ModelName } from './models';
import { runTask, type KeyTask, type KeyTaskResult } from './task';

export type Verdict = 'valid' | 'invalid' | 'unknown';

export const DEFAULT_BUDGET_MS = 10_000;
/** budget of the second search that looks for a longer linearizable prefix of the smallest failing key */
const EXPLAIN_BUDGET_MS = 2_000;

/** the task with the fewest operations (all of the key's, including dropped ones); on a tie, the first key by name */
function pickSmallest<T extends { task: KeyTask; history: Operation[] }>(list: T[]): T | undefined {
  let best: T | undefined;
  for (const x of list) {
    if (!best || x.history.length < best.history.length || (x.history.length === best.history.length && x.task.key < best.task.key)) {
      best = x;
    }
  }
  return best;
}

export interface CheckOptions {
  /** default 'register' */
  model?: ModelName;
  /** time budget per key, in ms (default 10 s) */
  budgetMs?: number;
  /** worker threads (default: one per core, at most as many as keys); 0 runs every key in this thread */
  workers?: number;
  /** a pool to share between calls (then `workers` is ignored and the pool is left open) */
  pool?: CheckerPool;
  /** file name used in error messages */
  source?: string;
  /** memory cap of one key's search cache, in bytes */
  maxCacheBytes?: number;
}

export interface KeyResult {
  key: string;
  verdict: Verdict;
  /** why unknown */
  reason?: string;
  /** operations searched (after dropping those that had no effect) */
  operations: number;
  /** operations of the key left out: failed ones and unanswered reads */
  dropped: number;
  elapsedMs: number;
  steps: number;
  cacheEntries: number;
  /** every operation of the key (invalid only), by invocation */
  history?: Operation[];
  /** the longest linearizable prefix the search found (invalid only), with the value after each operation */
  longest?: { op: Operation; value: unknown }[];
  /** the operation that the search, at that prefix, found could not take effect before its return (invalid only) */
  stuck?: Operation;
}

export interface CheckResult {
  verdict: Verdict;
  model: ModelName;
  keys: KeyResult[];
  /** the invalid key with the fewest operations */
  smallestFailing?: KeyResult;
  counts: Record<Verdict, number>;
  /** operations in the history (all keys, all outcomes) */
  operations: number;
  elapsedMs: number;
}

/** Overall verdict from per-key verdicts: invalid beats unknown beats valid. */
export function combine(verdicts: Iterable<Verdict>): Verdict {
  let v: Verdict = 'valid';
  for (const x of verdicts) {
    if (x === 'invalid') return 'invalid';
    if (x === 'unknown') v = 'unknown';
  }
  return v;
}

/** Checks a paired history (see history.ts pairHistory) key by key. Throws HistoryError on operations the model refuses. */
export async function checkLinearizable(ops: readonly Operation[], opts: CheckOptions = {}): Promise<CheckResult> {
  const start = performance.now();
  const model = opts.model ?? 'register';
  const budgetMs = opts.budgetMs ?? DEFAULT_BUDGET_MS;

  const byKey = new Map<string, Operation[]>();
  for (const op of ops) {
    const k = op.key ?? '';
    let list = byKey.get(k);
    if (!list) byKey.set(k, (list = []));
    list.push(op);
  }
  const tasks: { task: KeyTask; dropped: number; history: Operation[] }[] = [];
  for (const [key, list] of byKey) {
    const prepared = prepareKey(model, list, opts.source);
    const task: KeyTask = { id: tasks.length, key, model, ops: prepared.ops, budgetMs };
    if (opts.maxCacheBytes !== undefined) task.maxCacheBytes = opts.maxCacheBytes;
    tasks.push({ task, dropped: prepared.dropped, history: list });
  }

  // biggest keys first, so that one large key does not start last
  const order = [...tasks].sort((x, y) => y.task.ops.length - x.task.ops.length || x.task.id - y.task.id);
  const wanted = opts.workers ?? availableParallelism();
  const pool = opts.pool ?? (wanted > 0 ? new CheckerPool(Math.max(1, Math.min(wanted, tasks.length))) : undefined);
  const run = (task: KeyTask): Promise<KeyTaskResult> => (pool ? pool.run(task) : Promise.resolve(runTask(task)));
  let results: KeyTaskResult[];
  try {
    results = await Promise.all(order.map((t) => run(t.task)));
    // The lookahead (wgl.ts, reduction 2) often proves a key invalid early in the search, leaving a short prefix
    // for the report. For the smallest failing key, search again without it, under a short budget, for a longer
    // linearizable prefix like Porcupine's; keep whichever prefix is longer (any prefix found is a true one).
    const failed = new Set(results.filter((r) => r.verdict === 'invalid').map((r) => r.id));
    const smallest = pickSmallest(tasks.filter((t) => failed.has(t.task.id)));
    if (smallest) {
      const i = results.findIndex((r) => r.id === smallest.task.id);
      const again = await run({ ...smallest.task, prune: false, budgetMs: Math.min(budgetMs, EXPLAIN_BUDGET_MS) }).catch(
        () => undefined, // only an explanation: the verdict stands without it
      );
      if (again && again.longest.length > results[i].longest.length && again.stuck !== undefined) {
        results[i] = { ...results[i], longest: again.longest, longestValues: again.longestValues, stuck: again.stuck };
      }
    }
  } finally {
    if (pool && !opts.pool) await pool.close();
  }

  const byId = new Map(results.map((r) => [r.id, r]));
  const keys: KeyResult[] = tasks.map(({ task, dropped, history }) => {
    const r = byId.get(task.id)!;
    const kr: KeyResult = {
      key: task.key,
      verdict: r.verdict,
      operations: task.ops.length,
      dropped,
      elapsedMs: r.elapsedMs,
      steps: r.steps,
      cacheEntries: r.cacheEntries,
    };
    if (r.reason) kr.reason = r.reason;
    if (r.verdict === 'invalid') {
      kr.history = history;
      kr.longest = r.longest.map((i, k) => ({ op: ops[i], value: r.longestValues[k] }));
      if (r.stuck !== undefined) kr.stuck = ops[r.stuck];
    }
    return kr;
  });
  keys.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const counts: Record<Verdict, number> = { valid: 0, invalid: 0, unknown: 0 };
  for (const k of keys) counts[k.verdict]++;
  const result: CheckResult = {
    verdict: combine(keys.map((k) => k.verdict)),
    model,
    keys,
    counts,
    operations: ops.length,
    elapsedMs: performance.now() - start,
  };
  let best: KeyResult | undefined;
  for (const k of keys) {
    // keys are sorted by name: the first of the smallest wins, as in pickSmallest
    if (k.verdict === 'invalid' && (!best || k.history!.length < best.history!.length)) best = k;
  }
  if (best) result.smallestFailing = best;
  return result;
}

/** A human-readable report of a result (what the CLI prints). */
export function formatResult(r: CheckResult, opts: { maxOps?: number } = {}): string {
  const maxOps = opts.maxOps ?? Infinity;
  const lines: string[] = [];
  const secs = (ms: number): string => (ms / 1000).toFixed(2) + ' s';
  const n = r.keys.length;
  lines.push(
    `${r.verdict}: ${n} key${n === 1 ? '' : 's'} (${r.counts.valid} valid, ${r.counts.invalid} invalid, ` +
      `${r.counts.unknown} unknown), ${r.operations} operations, ${r.model} model, ${secs(r.elapsedMs)}`,
  );
  for (const k of r.keys) {
    if (k.verdict === 'unknown') lines.push(`unknown: key ${JSON.stringify(k.key)} (${k.operations} operations): ${k.reason ?? 'no answer'}`);
  }
  const f = r.smallestFailing;
  if (f) {
    const hist = f.history ?? [];
    lines.push('');
    lines.push(
      `smallest failing key: ${JSON.stringify(f.key)}, ${hist.length} operations ` +
        `(${f.operations} searched, ${f.dropped} dropped: failed, or reads never answered)`,
    );
    const shown = hist.slice(0, maxOps);
    for (const op of shown) lines.push(`  ${describeOperation(op)}`);
    if (hist.length > shown.length) lines.push(`  ... ${hist.length - shown.length} more`);
    const longest = f.longest ?? [];
    lines.push('');
    lines.push(`longest linearizable prefix found: ${longest.length} of ${f.operations} operations`);
    const lp = longest.slice(0, maxOps);
    lp.forEach(({ op, value }, i) => lines.push(`  ${i + 1}. ${describeOperation(op)}  => ${JSON.stringify(value)}`));
    if (longest.length > lp.length) lines.push(`  ... ${longest.length - lp.length} more`);
    if (f.stuck) {
      lines.push(`after it, the search found no order in which this operation can take effect before it returns:`);
      lines.push(`  ${describeOperation(f.stuck)}`);
    }
  }
  return lines.join('\n');
}

interface Slot {
  worker: Worker;
  busy?: { task: KeyTask; resolve: (r: KeyTaskResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; started: number };
}

/** Grace beyond a key's budget before its worker is stopped (the search checks the clock every 1024 steps). */
const WATCHDOG_GRACE_MS = 5_000;

function workerFile(): string {
  // compiled: worker.js next to this file; run through a TypeScript loader (tests): worker.ts, and the worker
  // inherits this process's execArgv, hence the loader
  return join(__dirname, 'worker' + (extname(__filename) === '.ts' ? '.ts' : '.js'));
}

/**
 * A fixed-size pool of worker threads running key tasks, one task per worker at a time. A worker that does not
 * answer within its task's budget plus a grace period is terminated (its key becomes unknown) and replaced.
 */
export class CheckerPool {
  private slots: Slot[] = [];
  private queue: { task: KeyTask; resolve: (r: KeyTaskResult) => void; reject: (e: Error) => void }[] = [];
  private closed = false;

  constructor(readonly size: number = availableParallelism()) {
    if (!(size >= 1)) throw new Error(`a checker pool needs at least one worker, got ${size}`);
  }

  run(task: KeyTask): Promise<KeyTaskResult> {
    if (this.closed) return Promise.reject(new Error('checker pool is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ task, resolve, reject });
      this.pump();
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const err = new Error('checker pool closed');
    for (const q of this.queue.splice(0)) q.reject(err);
    const slots = this.slots.splice(0);
    for (const s of slots) {
      if (s.busy) {
        clearTimeout(s.busy.timer);
        s.busy.reject(err);
        s.busy = undefined;
      }
    }
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(workerFile());
    const slot: Slot = { worker };
    worker.on('message', (m: { ok: true; result: KeyTaskResult } | { ok: false; id: number; error: string }) => {
      const b = slot.busy;
      if (!b) return;
      clearTimeout(b.timer);
      slot.busy = undefined;
      if (m.ok) b.resolve(m.result);
      else b.reject(new Error(`checker worker failed on key ${JSON.stringify(b.task.key)}: ${m.error}`));
      this.pump();
    });
    const lost = (why: string): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return; // already replaced or closed
      this.slots.splice(i, 1);
      const b = slot.busy;
      slot.busy = undefined;
      if (b) {
        clearTimeout(b.timer);
        b.reject(new Error(`checker worker ${why} while checking key ${JSON.stringify(b.task.key)}`));
      }
      this.pump();
    };
    worker.on('error', (e) => lost(`crashed (${e.message})`));
    worker.on('exit', (code) => lost(`exited with code ${code}`));
    this.slots.push(slot);
    return slot;
  }

  private pump(): void {
    if (this.closed) return;
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.busy);
      if (!slot) {
        if (this.slots.length >= this.size) return;
        slot = this.spawn();
      }
      const q = this.queue.shift()!;
      const s = slot;
      const started = performance.now();
      const timer = setTimeout(() => {
        // the worker is stuck past its budget: stop it, answer unknown, start another
        const b = s.busy;
        if (!b) return;
        s.busy = undefined;
        const i = this.slots.indexOf(s);
        if (i >= 0) this.slots.splice(i, 1);
        void s.worker.terminate();
        b.resolve({
          id: b.task.id,
          key: b.task.key,
          verdict: 'unknown',
          reason: `the search did not stop within its budget of ${b.task.budgetMs} ms (+${WATCHDOG_GRACE_MS} ms grace); its worker was terminated`,
          elapsedMs: performance.now() - b.started,
          steps: 0,
          cacheEntries: 0,
          longest: [],
          longestValues: [],
        });
        this.pump();
      }, q.task.budgetMs + WATCHDOG_GRACE_MS);
      s.busy = { ...q, timer, started };
      s.worker.postMessage(q.task);
    }
  }
}
