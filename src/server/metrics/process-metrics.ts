// Node's process metrics (prom-client's default set: process_* and nodejs_*), the counterpart of the go_*
// and process_* metrics etcd's Go client library exports. They describe the process, not a member, so one
// registry holds them for the whole process and every member's /metrics includes it: several members in one
// process (tests) then share one event-loop monitor and one GC observer instead of adding one each, which
// prom-client could never remove again.

import { Registry, collectDefaultMetrics } from 'prom-client';

let shared: Registry | undefined;

export function processRegistry(): Registry {
  if (shared === undefined) {
    shared = new Registry();
    collectDefaultMetrics({ register: shared });
  }
  return shared;
}
