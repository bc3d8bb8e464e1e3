// One key's check, as a worker runs it (and as the main thread runs it when told to use no workers).

import { compileModel, type ModelName, type TaskOp } from './models';
import { wgl } from './wgl';

export interface KeyTask {
  id: number;
  key: string;
  model: ModelName;
  ops: TaskOp[];
  budgetMs: number;
  maxCacheBytes?: number;
  /** see WglInput.reducePure and WglInput.prune */
  reducePure?: boolean;
  prune?: boolean;
}

export interface KeyTaskResult {
  id: number;
  key: string;
  verdict: 'valid' | 'invalid' | 'unknown';
  reason?: string;
  elapsedMs: number;
  steps: number;
  cacheEntries: number;
  /** history indices of the longest linearizable prefix found (invalid / unknown), in linearization order */
  longest: number[];
  /** the model's value after each operation of `longest` */
  longestValues: unknown[];
  /** history index of the operation the search could not linearize after the longest prefix */
  stuck?: number;
  /** for valid: history indices in a linearization order */
  linearization?: number[];
}

export function runTask(task: KeyTask): KeyTaskResult {
  const start = performance.now();
  const deadline = start + task.budgetMs;
  const { ops } = task;
  const n = ops.length;
  const call = new Float64Array(n);
  const ret = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    call[i] = ops[i].call;
    ret[i] = ops[i].ret;
  }
  const model = compileModel(task.model, ops);
  const r = wgl({
    n,
    call,
    ret,
    model,
    deadline,
    maxCacheBytes: task.maxCacheBytes,
    reducePure: task.reducePure,
    prune: task.prune,
  });
  const res: KeyTaskResult = {
    id: task.id,
    key: task.key,
    verdict: r.verdict,
    elapsedMs: performance.now() - start,
    steps: r.steps,
    cacheEntries: r.cacheEntries,
    longest: r.longest.map((i) => ops[i].index),
    longestValues: r.longestStates.map((s) => model.value(s)),
  };
  if (r.reason) res.reason = r.reason;
  if (r.stuck >= 0 && r.verdict !== 'valid') res.stuck = ops[r.stuck].index;
  if (r.linearization) res.linearization = r.linearization.map((i) => ops[i].index);
  return res;
}
