// The workloads by name, for `npm run jepsen -- run --workload NAME` and `check --workload NAME`.

import type { Workload } from '../types';
import { AppendWorkload } from './append';
import { LockWorkload } from './lock';
import { RegisterWorkload } from './register';
import { SetWorkload } from './set';
import { WatchWorkload } from './watch';

const FACTORIES: Record<string, () => Workload> = {
  register: () => new RegisterWorkload(),
  set: () => new SetWorkload(),
  append: () => new AppendWorkload(),
  watch: () => new WatchWorkload(),
  lock: () => new LockWorkload({ fenced: true }),
  'lock-unfenced': () => new LockWorkload({ fenced: false }),
};

/** Every workload name createWorkload accepts. */
export const WORKLOAD_NAMES: readonly string[] = Object.keys(FACTORIES);

/** A fresh workload (workloads keep per-run state: create one per run). */
export function createWorkload(name: string): Workload {
  const make = Object.prototype.hasOwnProperty.call(FACTORIES, name) ? FACTORIES[name] : undefined;
  if (!make) throw new Error(`unknown workload ${JSON.stringify(name)}: valid names are ${WORKLOAD_NAMES.join(', ')}`);
  return make();
}
