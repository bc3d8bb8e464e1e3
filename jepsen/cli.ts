// npm run jepsen -- check --workload register --history FILE [--format jsonl|jepsen-log|kv-edn] [--budget-ms N]
//                        [--workers N] [--json] [--max-ops N]
// npm run jepsen -- check --workload set|append|watch|lock|lock-unfenced --history FILE [--budget-ms N] [--json]
// npm run jepsen -- run [options]        (run/options.ts)
// npm run jepsen -- selftest [options]   (broken/selftest.ts)
//
// Exit codes: 0 valid, 1 invalid (the smallest failing key and its operations are printed), 2 unknown or error.

import { readFileSync } from 'node:fs';
import { DEFAULT_BUDGET_MS, checkLinearizable, formatResult, type CheckResult } from './checker/linearizable';
import type { ModelName } from './checker/models';
import { FORMATS, parseHistory, type HistoryFormat } from './formats';
import { HistoryError, pairHistory, type HistoryEvent } from './history';
import { runSelftestCommand, SELFTEST_USAGE } from './broken/selftest';
import { RUN_USAGE, UsageError, parseRunArgs } from './run/options';
import { combineVerdicts, formatSummary, runJepsen } from './run/runner';
import { createWorkload, WORKLOAD_NAMES } from './workloads/index';

export const EXIT_VALID = 0;
export const EXIT_INVALID = 1;
export const EXIT_UNKNOWN = 2;

const WORKLOADS: Record<string, ModelName> = { register: 'register', kv: 'kv' };
/** Workloads whose histories their own checkers read (workloads/): every one but register, which has the richer output above. */
const OTHER_WORKLOADS = WORKLOAD_NAMES.filter((w) => w !== 'register');

const USAGE = `usage:
  npm run jepsen -- check --workload register|kv|${OTHER_WORKLOADS.join('|')} --history FILE [options]
      --format jsonl|jepsen-log|kv-edn   history format (default jsonl; kv-edn implies --workload kv;
                                         only jsonl for the workloads other than register and kv)
      --budget-ms N                      time budget per key (default ${DEFAULT_BUDGET_MS}); exhausted: unknown
      --workers N                        worker threads (default: one per core; 0: none)
      --max-ops N                        print at most N operations of the failing key (default: all)
      --json                             print the result as JSON
  exit status: 0 valid, 1 invalid, 2 unknown or error
${RUN_USAGE}
${SELFTEST_USAGE}`;

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: Io = {
  out: (s) => process.stdout.write(s + '\n'),
  err: (s) => process.stderr.write(s + '\n'),
};

interface CheckArgs {
  workload?: string;
  history?: string;
  format: HistoryFormat;
  budgetMs: number;
  workers?: number;
  maxOps?: number;
  json: boolean;
}

function parseCheckArgs(args: string[]): CheckArgs {
  const a: CheckArgs = { format: 'jsonl', budgetMs: DEFAULT_BUDGET_MS, json: false };
  const int = (flag: string, v: string | undefined, min: number): number => {
    if (v === undefined || !/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${flag} needs an integer >= ${min}, got ${v ?? 'nothing'}`);
    return Number(v);
  };
  for (let i = 0; i < args.length; i++) {
    let flag = args[i];
    let value: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    const take = (): string => {
      if (value !== undefined) return value;
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--workload':
        a.workload = take();
        break;
      case '--history':
        a.history = take();
        break;
      case '--format': {
        const f = take();
        if (!(FORMATS as readonly string[]).includes(f)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got ${f}`);
        a.format = f as HistoryFormat;
        break;
      }
      case '--budget-ms':
        a.budgetMs = int(flag, take(), 1);
        break;
      case '--workers':
        a.workers = int(flag, take(), 0);
        break;
      case '--max-ops':
        a.maxOps = int(flag, take(), 0);
        break;
      case '--json':
        a.json = true;
        break;
      default:
        throw new UsageError(`unknown option ${args[i]}`);
    }
  }
  return a;
}

function jsonResult(r: CheckResult): string {
  return JSON.stringify(r, (_k, v) => (v === Infinity ? null : v), 2);
}

/** `check` for the workloads with their own checkers (set, append, watch, lock): each checker's verdict and summary. */
async function checkOther(workload: string, a: CheckArgs, io: Io): Promise<number> {
  if (a.format !== 'jsonl') throw new UsageError(`--workload ${workload} reads jsonl histories only, got --format ${a.format}`);
  const path = a.history as string;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    io.err(`error: cannot read ${path}: ${(e as Error).message}`);
    return EXIT_UNKNOWN;
  }
  const events: HistoryEvent[] = parseHistory(text, 'jsonl', path);
  pairHistory(events, path); // refuses a malformed history with the line, before any checker sees it
  const results = await createWorkload(workload).check(events, { budgetMs: a.budgetMs, workers: a.workers ?? 1 });
  const verdict = combineVerdicts(results);
  if (a.json) io.out(JSON.stringify({ verdict, results }, (_k, v: unknown) => (v === Infinity ? null : v), 2));
  else {
    io.out(`${verdict}: ${workload} history ${path}`);
    // summaries usually open with their verdict already
    for (const r of results) io.out(`  ${r.checker}: ${r.summary.startsWith(r.verdict) ? r.summary : `${r.verdict}: ${r.summary}`}`);
  }
  return verdict === 'valid' ? EXIT_VALID : verdict === 'invalid' ? EXIT_INVALID : EXIT_UNKNOWN;
}

/** Runs the CLI; resolves to the exit status. */
export async function main(argv: string[], io: Io = defaultIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      io.out(USAGE);
      return cmd === undefined ? EXIT_UNKNOWN : EXIT_VALID;
    }
    if (cmd === 'run') {
      const result = await runJepsen(parseRunArgs(rest));
      io.out(formatSummary(result));
      return result.exitCode;
    }
    if (cmd === 'selftest') return await runSelftestCommand(rest, io);
    if (cmd !== 'check') throw new UsageError(`unknown command ${cmd}`);
    const a = parseCheckArgs(rest);
    if (!a.history) throw new UsageError('--history FILE is required');
    const workload = a.workload ?? (a.format === 'kv-edn' ? 'kv' : undefined);
    if (!workload) throw new UsageError(`--workload is required (register, ${OTHER_WORKLOADS.join(', ')}, or kv for the kv fixtures)`);
    if (OTHER_WORKLOADS.includes(workload)) return await checkOther(workload, a, io);
    const model = WORKLOADS[workload];
    if (!model) {
      throw new UsageError(`--workload must be one of register, ${OTHER_WORKLOADS.join(', ')}, kv; got ${workload}`);
    }
    if (a.format === 'kv-edn' && model !== 'kv') throw new UsageError('kv-edn histories hold get/put/append: use --workload kv');
    let text: string;
    try {
      text = readFileSync(a.history, 'utf8');
    } catch (e) {
      io.err(`error: cannot read ${a.history}: ${(e as Error).message}`);
      return EXIT_UNKNOWN;
    }
    const events = parseHistory(text, a.format, a.history);
    const ops = pairHistory(events, a.history);
    const opts: Parameters<typeof checkLinearizable>[1] = { model, budgetMs: a.budgetMs, source: a.history };
    if (a.workers !== undefined) opts.workers = a.workers;
    const result = await checkLinearizable(ops, opts);
    io.out(a.json ? jsonResult(result) : formatResult(result, { maxOps: a.maxOps }));
    return result.verdict === 'valid' ? EXIT_VALID : result.verdict === 'invalid' ? EXIT_INVALID : EXIT_UNKNOWN;
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`error: ${e.message}\n${USAGE}`);
    } else if (e instanceof HistoryError) {
      io.err(`error: malformed history: ${e.message}`);
    } else {
      io.err(`error: ${(e as Error).stack ?? String(e)}`);
    }
    return EXIT_UNKNOWN;
  }
}

if (require.main === module) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
