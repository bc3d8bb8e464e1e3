// `npm run jepsen:selftest`: proof that the harness catches what it claims to. Each deliberately broken Keel
// build (build.ts) runs with the workload and faults that expose its bug and must be found invalid; the
// unbroken build runs the same case on the same seed and must be found valid (so a "catch" is the bug's, not
// the harness's). Prints a table; exit 0 only when every bug was caught and every clean run was valid.

import { join } from 'node:path';
import { BUG_NAMES, isBugName, repoRoot, type BugName } from './build';
import { brokenCore, figure8 } from './figure8';
import { DEFAULT_BUDGET_MS } from '../checker/linearizable';
import { UsageError, type RunOptions } from '../run/options';
import { runJepsen, type RunResult } from '../run/runner';
import type { NemesisKind } from '../types';

export interface SelftestCase {
  bug: BugName;
  workload: string;
  nemeses: NemesisKind[];
  timeLimitS: number;
  intervalS: number;
  faultS: number;
  seed: number;
  concurrency: number;
  /** why these faults expose the bug */
  why: string;
  /** also check the bug in the deterministic simulation (./figure8.ts), where the harness's runs rarely get */
  simulation?: 'figure8';
}

export const SELFTEST_CASES: readonly SelftestCase[] = [
  {
    bug: 'stale-reads',
    workload: 'register',
    nemeses: ['partition', 'pause'],
    timeLimitS: 30,
    intervalS: 1,
    faultS: 5,
    seed: 1,
    concurrency: 12,
    why: 'a member cut off from the leader (or a paused, deposed leader) answers reads from its own, older state',
  },
  {
    bug: 'ack-before-fsync',
    workload: 'set',
    nemeses: ['kill'],
    timeLimitS: 60,
    intervalS: 3,
    faultS: 2,
    seed: 2,
    concurrency: 10,
    why: 'killing a majority or all members at once loses writes that were acknowledged but never written out',
  },
  {
    bug: 'commit-by-counting',
    workload: 'register',
    nemeses: ['partition', 'kill'],
    timeLimitS: 90,
    intervalS: 2,
    faultS: 4,
    seed: 3,
    concurrency: 10,
    why: 'an entry of an earlier term committed by counting can be overwritten by a later leader (Figure 8)',
    simulation: 'figure8',
  },
];

export interface SelftestRow {
  c: SelftestCase;
  /** the seed both runs used */
  seed: number;
  broken: RunResult;
  clean?: RunResult;
  /** the scripted check in the deterministic simulation, for the cases that have one */
  simulation?: { caught: boolean; detail: string };
}

export interface SelftestOptions {
  /** parent of the case directories */
  out: string;
  only?: BugName[];
  /** overrides every case's time limit */
  timeLimitS?: number;
  seed?: number;
  /** also run the unbroken build on every case (default true) */
  clean?: boolean;
  progress?: (line: string) => void;
}

export const SELFTEST_USAGE = `  npm run jepsen -- selftest [--only BUG,...] [--time-limit S] [--seed N] [--no-clean] [--out DIR]
      runs each broken build (${BUG_NAMES.join(', ')}) and the unbroken build on the same seed;
      exit 0 only when every bug is caught (invalid) and every clean run is valid`;

function runOptions(c: SelftestCase, o: SelftestOptions, broken: boolean): RunOptions {
  const r: RunOptions = {
    target: 'keel',
    nodes: 3,
    workload: c.workload,
    nemeses: c.nemeses,
    timeLimitS: o.timeLimitS ?? c.timeLimitS,
    concurrency: c.concurrency,
    intervalS: c.intervalS,
    faultS: c.faultS,
    seed: o.seed ?? c.seed,
    opTimeoutMs: 2000,
    out: join(o.out, `${c.bug}-${broken ? 'broken' : 'clean'}`),
    budgetMs: DEFAULT_BUDGET_MS,
  };
  if (broken) r.broken = c.bug;
  return r;
}

/** Caught: the broken build's run was found invalid (unknown or an error is not a catch), or, for a case
 *  that has one, its scripted simulation broke an invariant. */
export function caught(row: SelftestRow): boolean {
  return row.broken.verdict === 'invalid' || row.simulation?.caught === true;
}

function simulate(c: SelftestCase, o: SelftestOptions): { caught: boolean; detail: string } {
  const dir = join(o.out, `${c.bug}-simulation`);
  const outcome = figure8(brokenCore(dir, c.bug));
  return outcome.violation !== undefined
    ? { caught: true, detail: `Figure 8 script: ${outcome.violation}` }
    : { caught: false, detail: `Figure 8 script: no invariant broken (S1 commit ${outcome.s1Commit})` };
}

export function selftestPassed(rows: readonly SelftestRow[]): boolean {
  return rows.length > 0 && rows.every((r) => caught(r) && (r.clean === undefined || r.clean.verdict === 'valid'));
}

export async function runSelftest(o: SelftestOptions): Promise<SelftestRow[]> {
  const progress = o.progress ?? ((l: string) => process.stderr.write(l + '\n'));
  const rows: SelftestRow[] = [];
  for (const c of SELFTEST_CASES) {
    if (o.only && !o.only.includes(c.bug)) continue;
    progress(`selftest ${c.bug}: ${c.workload} + ${c.nemeses.join(',')}: ${c.why}`);
    const broken = await runJepsen(runOptions(c, o, true), { progress: (l) => progress(`  [broken] ${l}`) });
    const row: SelftestRow = { c, seed: o.seed ?? c.seed, broken };
    if (o.clean !== false) row.clean = await runJepsen(runOptions(c, o, false), { progress: (l) => progress(`  [clean] ${l}`) });
    if (c.simulation === 'figure8') {
      row.simulation = simulate(c, o);
      progress(`  [simulation] ${row.simulation.caught ? 'caught' : 'NOT caught'}: ${row.simulation.detail}`);
    }
    rows.push(row);
  }
  return rows;
}

export function formatSelftestTable(rows: readonly SelftestRow[]): string {
  const head = ['bug', 'workload', 'nemesis', 'seed', 'broken build', 'caught', 'clean build'];
  const body = rows.map((r) => [
    r.c.bug,
    r.c.workload,
    r.c.nemeses.join(','),
    String(r.seed),
    `${r.broken.verdict} (${r.broken.counts.total?.ok ?? 0} ok ops)`,
    r.broken.verdict === 'invalid' ? 'yes' : r.simulation?.caught ? 'in the simulation only' : 'NO',
    r.clean ? `${r.clean.verdict}${r.clean.verdict === 'valid' ? '' : ' (EXPECTED valid)'}` : 'not run',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function parseSelftestArgs(args: readonly string[]): Omit<SelftestOptions, 'progress'> {
  const o: Omit<SelftestOptions, 'progress'> = { out: '' };
  for (let i = 0; i < args.length; i++) {
    const flag = args[i] as string;
    const take = (): string => {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--only': {
        const names = take().split(',');
        for (const n of names) if (!isBugName(n)) throw new UsageError(`--only: unknown bug "${n}" (valid: ${BUG_NAMES.join(', ')})`);
        o.only = names as BugName[];
        break;
      }
      case '--time-limit': {
        const v = take();
        if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`--time-limit needs an integer number of seconds >= 1, got "${v}"`);
        o.timeLimitS = Number(v);
        break;
      }
      case '--seed': {
        const v = take();
        if (!/^\d+$/.test(v) || Number(v) > 2 ** 32 - 1) throw new UsageError(`--seed needs an integer between 0 and ${2 ** 32 - 1}, got "${v}"`);
        o.seed = Number(v);
        break;
      }
      case '--no-clean':
        o.clean = false;
        break;
      case '--out':
        o.out = take();
        break;
      default:
        throw new UsageError(`unknown selftest option ${flag}`);
    }
  }
  if (o.out === '') o.out = join(repoRoot(), 'jepsen', 'store', `selftest-${new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`);
  return o;
}

/** The `selftest` subcommand: runs the cases, prints the table, resolves to the exit status. */
export async function runSelftestCommand(args: readonly string[], io: { out: (s: string) => void; err: (s: string) => void }): Promise<number> {
  const o = parseSelftestArgs(args);
  const rows = await runSelftest({ ...o, progress: io.err });
  io.out(formatSelftestTable(rows));
  const ok = selftestPassed(rows);
  io.out(ok ? 'selftest passed: every bug caught, every clean run valid' : 'selftest FAILED');
  io.out(`run directories under ${o.out}`);
  return ok ? 0 : 1;
}
