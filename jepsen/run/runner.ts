// One `npm run jepsen -- run`: a cluster under test behind its link proxies, a workload's clients recording a
// history while the nemesis injects faults on a seeded schedule, then healing, settling, the workload's final
// reads, the checkers, and the run directory:
//
//   DIR/history.jsonl   every operation and fault, appended as it happens
//   DIR/results.json    verdicts, operation counts, fault intervals, seed, options, durations
//   DIR/report.html     plots and tables (report/)
//   DIR/jepsen.log      the harness's own log
//   DIR/<node>.log      every member's output (restarts included)
//
// Every process started is stopped by pid in a finally (also after SIGINT, which ends the workload early).

import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { setMaxListeners } from 'node:events';
import { availableParallelism } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { prepareBrokenDist, repoRoot } from '../broken/build';
import { createCluster } from '../db/index';
import { createNemeses } from '../nemesis/registry';
import { runSchedule } from '../nemesis/schedule';
import { createNet } from '../net/net';
import { createRecorder, type FileRecorder } from '../recorder';
import { renderReport } from '../report/html';
import { countOps, nemesisIntervals, timedOps, type NemesisInterval, type OpCounts } from '../report/ops';
import { createRng } from '../rng';
import type { CheckResult, ClusterUnderTest, Nemesis, NemesisContext, Net, NodeInfo, Verdict, WorkloadContext } from '../types';
import { createWorkload } from '../workloads/index';
import { defaultRunName, type RunOptions } from './options';

export const EXIT_VALID = 0;
export const EXIT_INVALID = 1;
export const EXIT_UNKNOWN = 2;

/** Where `--target etcd` looks for the binary. */
export const ETCD_BIN = '/usr/bin/etcd';

/** Bounds of the phases around the workload (ms). */
const START_TIMEOUT_MS = (nodes: number): number => 30_000 + 5_000 * nodes;
const SETTLE_TIMEOUT_MS = 30_000;
const FINISH_TIMEOUT_MS = 60_000;

/** Signals that end a run early but cleanly (it still heals, checks, writes its results and stops the cluster). */
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

export interface RunResult {
  dir: string;
  exitCode: 0 | 1 | 2;
  /** valid / invalid / unknown over every checker; 'error' when the run broke before its checks */
  verdict: Verdict | 'error';
  results: CheckResult[];
  counts: OpCounts;
  nemesis: NemesisInterval[];
  error?: string;
  interrupted: boolean;
  durationsMs: Record<string, number>;
}

export interface RunHooks {
  /** progress lines for the terminal (default: stderr) */
  progress?: (line: string) => void;
  /** stop early, as SIGINT does */
  signal?: AbortSignal;
  /** listen for SIGINT and SIGTERM (default true; tests turn it off) */
  handleSigint?: boolean;
}

/** The JSON written to DIR/results.json. */
export interface RunRecord {
  verdict: Verdict | 'error';
  exitCode: number;
  verdicts: { checker: string; verdict: Verdict; summary: string; details?: unknown }[];
  ops: OpCounts;
  nemesis: NemesisInterval[];
  seed: number;
  options: RunOptions;
  durationsMs: Record<string, number>;
  error?: string;
  interrupted: boolean;
  nodes: NodeInfo[];
}

/** Overall verdict: invalid if any checker says so, valid only if every checker (at least one) does. */
export function combineVerdicts(results: readonly CheckResult[]): Verdict {
  if (results.some((r) => r.verdict === 'invalid')) return 'invalid';
  return results.length > 0 && results.every((r) => r.verdict === 'valid') ? 'valid' : 'unknown';
}

export function exitCodeOf(verdict: Verdict | 'error'): 0 | 1 | 2 {
  return verdict === 'valid' ? EXIT_VALID : verdict === 'invalid' ? EXIT_INVALID : EXIT_UNKNOWN;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Resolves to `p`'s value, or rejects with `what` after `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The run directory: made (with parents); refused if it already holds a run. */
export function makeRunDir(o: RunOptions): string {
  const dir = resolve(o.out ?? join(repoRoot(), 'jepsen', 'store', defaultRunName(o)));
  if (existsSync(join(dir, 'history.jsonl'))) throw new Error(`--out ${dir} already holds a run (history.jsonl): choose another directory`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function runJepsen(o: RunOptions, hooks: RunHooks = {}): Promise<RunResult> {
  const progress = hooks.progress ?? ((l: string) => process.stderr.write(l + '\n'));
  const t0 = Date.now();
  const durationsMs: Record<string, number> = {};
  const phase = (name: string, since: number): number => {
    const now = Date.now();
    durationsMs[name] = now - since;
    return now;
  };

  if (o.target === 'etcd' && !existsSync(ETCD_BIN)) {
    throw new Error(`--target etcd needs the etcd binary at ${ETCD_BIN} (Debian: apt-get install -y etcd-server)`);
  }
  const dir = makeRunDir(o);
  const runLog = join(dir, 'jepsen.log');
  const log = (msg: string): void => appendFileSync(runLog, `${new Date().toISOString()} ${msg}\n`);
  log(`run ${JSON.stringify(o)}`);
  progress(`jepsen run: ${o.workload} on ${o.nodes} ${o.target} members, nemesis ${o.nemeses.join(',') || 'none'}, ${o.timeLimitS} s, seed ${o.seed}${o.broken ? `, BROKEN build: ${o.broken}` : ''}`);
  progress(`  run directory: ${dir}`);

  // Interrupts (SIGINT, SIGTERM, hooks.signal) end the workload early; the run still heals, checks and writes.
  const stop = new AbortController();
  let interrupted = false;
  const onInterrupt = (): void => {
    if (!interrupted) progress('interrupted: stopping the workload, then healing, checking and stopping the cluster');
    interrupted = true;
    stop.abort();
  };
  if (hooks.handleSigint !== false) for (const sig of SIGNALS) process.on(sig, onInterrupt);
  hooks.signal?.addEventListener('abort', onInterrupt, { once: true });

  let net: Net | undefined;
  let cluster: ClusterUnderTest | undefined;
  let recorder: FileRecorder | undefined;
  let results: CheckResult[] = [];
  let error: string | undefined;
  let t = t0;
  try {
    const keelDist = o.broken ? prepareBrokenDist(o.broken, dir) : undefined;
    if (keelDist) log(`broken build (${o.broken}) in ${keelDist}`);
    const theNet = createNet({ log: (m) => log(`net: ${m}`) });
    net = theNet;
    cluster = await createCluster({
      target: o.target,
      nodes: o.nodes,
      dir,
      net: theNet,
      log: (m: string) => log(`db: ${m}`),
      ...(keelDist ? { keelDist } : {}),
      ...(o.target === 'etcd' ? { etcdBin: ETCD_BIN } : {}),
    });
    await cluster.start(START_TIMEOUT_MS(o.nodes));
    t = phase('setup', t);
    progress(`  cluster up (${durationsMs.setup} ms); running the workload`);

    recorder = createRecorder({ file: join(dir, 'history.jsonl') });
    // Separate streams: the fault schedule must not depend on how many operations the clients happened to draw.
    const nemesisRng = createRng(o.seed);
    const workloadRng = createRng((o.seed ^ 0x5bd1e995) >>> 0);
    const workload = createWorkload(o.workload);
    const c = cluster;
    const nodesNow = (): NodeInfo[] => {
      const members = new Set(c.members());
      return c.nodes.filter((n) => members.has(n.name));
    };
    const ctx = (signal: AbortSignal): WorkloadContext => ({
      target: o.target,
      nodes: nodesNow,
      recorder: recorder as FileRecorder,
      rng: workloadRng,
      concurrency: o.concurrency,
      opTimeoutMs: o.opTimeoutMs,
      signal,
      log: (m) => log(`workload: ${m}`),
    });
    const nemeses: Nemesis[] = createNemeses(o.nemeses);
    const nctx: NemesisContext = { cluster, net: theNet, rng: nemesisRng, log: (m) => log(m) };

    // The workload and the schedule run side by side until the time limit, an interrupt, or either of them
    // ending (failing) first. One plain controller with a timer: AbortSignal.any() over a timeout signal can
    // lose its listeners to the garbage collector on Node 20, and then the run never ends.
    const ending = new AbortController();
    const end = (): void => ending.abort();
    const timer = setTimeout(end, o.timeLimitS * 1000);
    stop.signal.addEventListener('abort', end, { once: true });
    if (stop.signal.aborted) end();
    const both = ending.signal;
    // Every client and the schedule wait on this one signal (a listener each per sleep or call): many by design.
    setMaxListeners(Math.max(100, o.concurrency * 8), both);
    const outcomes = await Promise.allSettled([
      workload.run(ctx(both)).finally(end),
      runSchedule({ ...nctx, recorder, signal: both, intervalMs: o.intervalS * 1000, faultMs: o.faultS * 1000 }, nemeses).finally(end),
    ]);
    clearTimeout(timer);
    stop.signal.removeEventListener('abort', end);
    const failed = outcomes.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw new Error(`the ${outcomes[0] === failed ? 'workload' : 'nemesis schedule'} failed: ${errorText(failed.reason)}`);
    t = phase('workload', t);

    // Heal everything (each nemesis's stop is idempotent; the schedule already stopped the active one).
    for (const n of nemeses) {
      try {
        const ev = await n.stop(nctx);
        log(`final heal ${ev.f} ${JSON.stringify(ev.value)}${ev.error ? ` error: ${ev.error}` : ''}`);
      } catch (e) {
        log(`final heal of ${n.kind} failed: ${errorText(e)}`);
      }
    }
    theNet.heal();
    const leader = await cluster.leader(SETTLE_TIMEOUT_MS).catch((e: unknown) => {
      log(`settle: ${errorText(e)}`);
      return undefined;
    });
    log(leader ? `settled: leader ${leader}` : `no leader within ${SETTLE_TIMEOUT_MS} ms after healing`);
    t = phase('settle', t);
    progress(`  workload done; ${leader ? `leader ${leader}` : 'NO LEADER after healing'}; final reads`);

    await within(workload.finish(ctx(new AbortController().signal)), FINISH_TIMEOUT_MS, 'the final reads');
    t = phase('finish', t);
    recorder.close();

    progress('  checking the history');
    results = await workload.check(recorder.events(), { budgetMs: o.budgetMs, workers: o.workers ?? defaultWorkers() });
    t = phase('check', t);
  } catch (e) {
    error = errorText(e);
    log(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    progress(`error: ${error}`);
  } finally {
    recorder?.close();
    const tStop = Date.now();
    await cluster?.stop().catch((e: unknown) => log(`stopping the cluster: ${errorText(e)}`));
    await net?.close().catch((e: unknown) => log(`closing the network: ${errorText(e)}`));
    durationsMs.teardown = Date.now() - tStop;
    if (hooks.handleSigint !== false) for (const sig of SIGNALS) process.off(sig, onInterrupt);
    hooks.signal?.removeEventListener('abort', onInterrupt);
  }
  durationsMs.total = Date.now() - t0;

  const events = recorder?.events() ?? [];
  const verdict: Verdict | 'error' = error !== undefined ? 'error' : combineVerdicts(results);
  const exitCode = exitCodeOf(verdict);
  const counts = countOps(timedOps(events));
  const nemesis = nemesisIntervals(events);
  const nodes = cluster ? [...cluster.nodes] : [];
  const record: RunRecord = {
    verdict,
    exitCode,
    verdicts: results.map((r) => ({ checker: r.checker, verdict: r.verdict, summary: r.summary, details: r.details })),
    ops: counts,
    nemesis,
    seed: o.seed,
    options: o,
    durationsMs,
    interrupted,
    nodes,
  };
  if (error !== undefined) record.error = error;
  writeFileSync(join(dir, 'results.json'), JSON.stringify(record, (_k, v: unknown) => (v === Infinity ? 'Infinity' : v), 2) + '\n');
  const files = ['history.jsonl', 'results.json', 'jepsen.log', ...nodes.map((n) => relative(dir, n.logFile))].filter((f) => existsSync(join(dir, f)));
  writeFileSync(
    join(dir, 'report.html'),
    renderReport({
      title: `${o.workload} on ${o.nodes} ${o.target} members, nemesis ${o.nemeses.join(',') || 'none'}${o.broken ? ` (broken build: ${o.broken})` : ''}`,
      events,
      results,
      options: { ...o, dir: basename(dir) },
      files,
      notes: [
        `seed ${o.seed}; ${Math.round(durationsMs.total / 1000)} s in all (${Object.entries(durationsMs).map(([k, v]) => `${k} ${v} ms`).join(', ')})`,
        ...(error !== undefined ? [`error: ${error}`] : []),
        ...(interrupted ? ['interrupted before the time limit'] : []),
      ],
    }),
  );
  // A valid run's member data is of no further interest and costs disk (preallocated WAL segments); an
  // invalid or unknown one keeps it as evidence.
  if (verdict === 'valid') for (const n of nodes) rmSync(n.dataDir, { recursive: true, force: true });
  return { dir, exitCode, verdict, results, counts, nemesis, interrupted, durationsMs, ...(error !== undefined ? { error } : {}) };
}

/** Checker threads: one per core, at most 4 (the cluster is stopped by then, so the cores are free). */
function defaultWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** The terminal summary: one row per checker, the operation counts, the faults, the verdict and the directory. */
export function formatSummary(r: RunResult): string {
  const lines: string[] = [];
  const w = Math.max(7, ...r.results.map((x) => x.checker.length));
  lines.push(`${'checker'.padEnd(w)}  verdict  summary`);
  for (const x of r.results) lines.push(`${x.checker.padEnd(w)}  ${x.verdict.padEnd(7)}  ${x.summary}`);
  if (r.results.length === 0) lines.push(`${'-'.padEnd(w)}  -        no checker ran`);
  const fs = Object.keys(r.counts).filter((f) => f !== 'total');
  const ops = fs.map((f) => `${f} ${r.counts[f]!.ok}/${r.counts[f]!.fail}/${r.counts[f]!.info}`).join(', ');
  const tot = r.counts.total ?? { ok: 0, fail: 0, info: 0 };
  lines.push(`operations (ok/fail/info): ${ops || 'none'}; total ${tot.ok}/${tot.fail}/${tot.info}`);
  const kinds = new Map<string, number>();
  for (const iv of r.nemesis) kinds.set(iv.kind, (kinds.get(iv.kind) ?? 0) + 1);
  lines.push(`faults: ${[...kinds].map(([k, n]) => `${k} x${n}`).join(', ') || 'none'}`);
  if (r.error !== undefined) lines.push(`error: ${r.error}`);
  lines.push(`verdict: ${r.verdict.toUpperCase()} (exit ${r.exitCode})${r.interrupted ? ', interrupted' : ''}`);
  lines.push(`run directory: ${r.dir} (report.html, results.json, history.jsonl, node logs)`);
  return lines.join('\n');
}
