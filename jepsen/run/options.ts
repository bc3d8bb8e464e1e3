// The options of `npm run jepsen -- run`, parsed and validated: every bad flag is refused with a message that
// names it (the CLI prints it with the usage and exits 2).

import { BUG_NAMES, isBugName, type BugName } from '../broken/build';
import { DEFAULT_BUDGET_MS } from '../checker/linearizable';
import { parseNemesisList } from '../nemesis/registry';
import type { NemesisKind, Target } from '../types';
import { WORKLOAD_NAMES } from '../workloads/index';

export interface RunOptions {
  target: Target;
  nodes: 3 | 5 | 7;
  workload: string;
  /** the kinds of fault the schedule picks from (empty: none) */
  nemeses: NemesisKind[];
  /** how long the workload runs, in seconds */
  timeLimitS: number;
  concurrency: number;
  /** healthy time before each fault, in seconds */
  intervalS: number;
  /** how long each fault is held, in seconds */
  faultS: number;
  seed: number;
  opTimeoutMs: number;
  /** the run directory (default: jepsen/store/<time>-<workload>-<nemesis>) */
  out?: string;
  /** run a deliberately broken Keel build (the self-test) */
  broken?: BugName;
  /** the checkers' time budget per key */
  budgetMs: number;
  /** checker worker threads (default: one per core) */
  workers?: number;
}

export class UsageError extends Error {}

export const RUN_DEFAULTS = {
  target: 'keel',
  nodes: 3,
  workload: 'register',
  nemesis: 'partition,kill',
  timeLimitS: 60,
  concurrency: 10,
  intervalS: 5,
  faultS: 5,
  opTimeoutMs: 2000,
} as const;

export const RUN_USAGE = `  npm run jepsen -- run [options]
      --target keel|etcd            the cluster under test (default keel; etcd needs /usr/bin/etcd)
      --nodes 3|5|7                 members (default 3)
      --workload NAME               ${WORKLOAD_NAMES.join('|')} (default register)
      --nemesis K1,K2,...|none      faults: partition, delay, drop, kill, pause, corrupt, transfer, compact,
                                    membership (default ${RUN_DEFAULTS.nemesis})
      --time-limit S                seconds of workload (default ${RUN_DEFAULTS.timeLimitS})
      --concurrency N               client processes (default ${RUN_DEFAULTS.concurrency})
      --interval S                  healthy seconds before each fault (default ${RUN_DEFAULTS.intervalS})
      --fault S                     seconds each fault is held (default ${RUN_DEFAULTS.faultS})
      --seed N                      seed of the schedule and the operations (default: from the clock, printed)
      --op-timeout MS               an operation unanswered this long is indeterminate (default ${RUN_DEFAULTS.opTimeoutMs})
      --out DIR                     run directory (default jepsen/store/<time>-<workload>-<nemesis>)
      --broken BUG                  run a broken Keel build: ${BUG_NAMES.join('|')}
      --budget-ms N                 checker time budget per key (default ${DEFAULT_BUDGET_MS})
      --workers N                   checker worker threads (default: one per core; 0: none)
  exit status: 0 every checker valid, 1 some checker invalid, 2 unknown or error`;

function number(flag: string, v: string, o: { min: number; max?: number; integer?: boolean; unit?: string }): number {
  const ok = o.integer ? /^\d+$/.test(v) : /^\d+(\.\d+)?$/.test(v);
  const n = Number(v);
  if (!ok || n < o.min || (o.max !== undefined && n > o.max)) {
    const range = o.max !== undefined ? `between ${o.min} and ${o.max}` : `>= ${o.min}`;
    throw new UsageError(`${flag} needs ${o.integer ? 'an integer' : 'a number'}${o.unit ? ` of ${o.unit}` : ''} ${range}, got "${v}"`);
  }
  return n;
}

/** Parses `run`'s arguments (after the subcommand). `now` seeds the default seed. */
export function parseRunArgs(args: readonly string[], now: number = Date.now()): RunOptions {
  const o: RunOptions = {
    target: RUN_DEFAULTS.target,
    nodes: RUN_DEFAULTS.nodes,
    workload: RUN_DEFAULTS.workload,
    nemeses: parseNemesisList(RUN_DEFAULTS.nemesis),
    timeLimitS: RUN_DEFAULTS.timeLimitS,
    concurrency: RUN_DEFAULTS.concurrency,
    intervalS: RUN_DEFAULTS.intervalS,
    faultS: RUN_DEFAULTS.faultS,
    seed: now % 0x7fffffff,
    opTimeoutMs: RUN_DEFAULTS.opTimeoutMs,
    budgetMs: DEFAULT_BUDGET_MS,
  };
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    let flag = args[i] as string;
    let value: string | undefined;
    const eq = flag.indexOf('=');
    if (flag.startsWith('--') && eq > 0) {
      value = flag.slice(eq + 1);
      flag = flag.slice(0, eq);
    }
    if (seen.has(flag)) throw new UsageError(`${flag} is given twice`);
    seen.add(flag);
    const take = (): string => {
      if (value !== undefined) return value;
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--target': {
        const v = take();
        if (v !== 'keel' && v !== 'etcd') throw new UsageError(`--target must be keel or etcd, got "${v}"`);
        o.target = v;
        break;
      }
      case '--nodes': {
        const v = take();
        if (v !== '3' && v !== '5' && v !== '7') throw new UsageError(`--nodes must be 3, 5 or 7, got "${v}"`);
        o.nodes = Number(v) as 3 | 5 | 7;
        break;
      }
      case '--workload': {
        const v = take();
        if (!WORKLOAD_NAMES.includes(v)) throw new UsageError(`--workload must be one of ${WORKLOAD_NAMES.join(', ')}, got "${v}"`);
        o.workload = v;
        break;
      }
      case '--nemesis': {
        const v = take();
        try {
          o.nemeses = parseNemesisList(v);
        } catch (e) {
          throw new UsageError(`--nemesis: ${(e as Error).message}`);
        }
        break;
      }
      case '--time-limit':
        o.timeLimitS = number(flag, take(), { min: 1, max: 86_400, unit: 'seconds' });
        break;
      case '--concurrency':
        o.concurrency = number(flag, take(), { min: 1, max: 1000, integer: true });
        break;
      case '--interval':
        o.intervalS = number(flag, take(), { min: 0, max: 3600, unit: 'seconds' });
        break;
      case '--fault':
        o.faultS = number(flag, take(), { min: 0, max: 3600, unit: 'seconds' });
        break;
      case '--seed':
        o.seed = number(flag, take(), { min: 0, max: 2 ** 32 - 1, integer: true });
        break;
      case '--op-timeout':
        o.opTimeoutMs = number(flag, take(), { min: 10, max: 600_000, integer: true, unit: 'ms' });
        break;
      case '--out': {
        const v = take();
        if (v.trim() === '') throw new UsageError('--out needs a directory');
        o.out = v;
        break;
      }
      case '--broken': {
        const v = take();
        if (!isBugName(v)) throw new UsageError(`--broken must be one of ${BUG_NAMES.join(', ')}, got "${v}"`);
        o.broken = v;
        break;
      }
      case '--budget-ms':
        o.budgetMs = number(flag, take(), { min: 1, integer: true, unit: 'ms' });
        break;
      case '--workers':
        o.workers = number(flag, take(), { min: 0, max: 64, integer: true });
        break;
      default:
        throw new UsageError(`unknown option ${args[i]}`);
    }
  }
  if (o.broken !== undefined && o.target !== 'keel') throw new UsageError(`--broken ${o.broken} is a Keel build: it needs --target keel`);
  return o;
}

/** The default run directory's name: <UTC time>-<workload>-<nemeses or none>. */
export function defaultRunName(o: RunOptions, when: Date = new Date()): string {
  const t = when.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const nem = o.nemeses.length > 0 ? o.nemeses.join('+') : 'none';
  return `${t}-${o.workload}-${nem}${o.broken ? `-broken-${o.broken}` : ''}`;
}
