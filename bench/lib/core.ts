// `--workload core`: the Raft core alone (src/raft/core/raft.ts), in this process, no disk, no network, no
// state machine: three Rafts wired together by hand. Each round the leader is topped up to `concurrency`
// proposals in flight, every member's Ready is taken (its entries count as durable at once), its messages
// are delivered to the others, and the leader's committed entries are counted. The figure is entries
// committed per second: the ceiling that the WAL, the transport and the state machine can only lower.
// Latency is from the round an entry was proposed in to the round the leader handed it out as committed.
// Every 50,000 entries each member compacts its log (as the driver does at a snapshot), so memory stays flat.

import { performance } from 'node:perf_hooks';
import { Raft } from '../../src/raft/core/raft';
import { StateRole, type Message } from '../../src/raft/core/types';
import { createHistogram, type Histogram } from './histogram';
import { selfCpuSeconds } from './procstat';

export interface CoreOptions {
  members: number;
  concurrency: number;
  valueSize: number;
  warmupSec: number;
  /** Measure for this long, or until `ops` entries are committed (if set). */
  durationSec: number;
  ops?: number;
}

export interface CoreResult {
  ops: number;
  secs: number;
  hist: Histogram;
  /** CPU of this process during the measurement, in % of one core. */
  cpuPercent: number;
  cpuUsPerOp: number;
  /** Ready batches taken from the leader per committed entry (how well proposals are batched). */
  readiesPerOp: number;
}

const COMPACT_EVERY = 50_000;
const RING = 1 << 20;

export function runCore(o: CoreOptions): CoreResult {
  const ids = Array.from({ length: o.members }, (_v, i) => (i + 1).toString(16).padStart(16, '0'));
  const rafts = ids.map((id, i) => new Raft({ id, peers: ids, seed: i + 1 }));
  const byId = new Map(ids.map((id, i) => [id, rafts[i]]));
  const data = new Uint8Array(o.valueSize).fill(118);
  const proposedAt = new Float64Array(RING);
  const hist = createHistogram();
  let inbox: Message[] = [];
  let inflight = 0;
  let recording = false;
  let ops = 0;
  let leaderReadies = 0;
  let sinceCompact = 0;

  const leader = rafts[0];
  leader.campaign();

  /** One round: every member's Ready handled, then every message delivered. */
  const round = (now: number): void => {
    for (const r of rafts) {
      if (!r.hasReady()) continue;
      const rd = r.ready();
      for (const m of rd.messages) inbox.push(m);
      if (r === leader) {
        if (recording) leaderReadies++;
        for (const e of rd.committed) {
          if (e.data.length === 0) continue; // the leader's no-op
          inflight--;
          sinceCompact++;
          if (recording) {
            ops++;
            hist.recordValue((now - proposedAt[e.index & (RING - 1)]) * 1000);
          }
        }
      }
      r.advance(rd);
    }
    const msgs = inbox;
    inbox = [];
    for (const m of msgs) byId.get(m.to)?.step(m);
  };

  // Elect rafts[0] and let it commit its no-op.
  for (let i = 0; i < 100 && !(leader.role === StateRole.Leader && leader.log.commit >= 1); i++) round(performance.now());
  if (leader.role !== StateRole.Leader) throw new Error('core: no leader after 100 rounds');

  const compact = (): void => {
    for (const r of rafts) {
      const applied = r.log.applied;
      const term = r.log.term(applied);
      if (term === undefined) continue;
      r.compact({ meta: { index: applied, term, voters: ids }, data: new Uint8Array(0) }, applied - 1000);
    }
    sinceCompact = 0;
  };

  const t0 = performance.now();
  const warmEnd = t0 + o.warmupSec * 1000;
  let measureStart = 0;
  let cpu0 = 0;
  let end = Infinity;
  for (let iter = 0; ; iter++) {
    const now = performance.now();
    if ((iter & 63) === 0) {
      if (!recording && now >= warmEnd) {
        recording = true;
        measureStart = now;
        cpu0 = selfCpuSeconds();
        end = now + o.durationSec * 1000;
      }
      if (recording && o.ops === undefined && now >= end) break;
    }
    if (recording && o.ops !== undefined && ops >= o.ops) break;
    while (inflight < o.concurrency) {
      if (!leader.propose(data)) throw new Error(`core: proposal refused: ${leader.lastRejection}`);
      proposedAt[leader.log.lastIndex() & (RING - 1)] = now;
      inflight++;
    }
    round(now);
    if (sinceCompact >= COMPACT_EVERY) compact();
  }
  const secs = (performance.now() - measureStart) / 1000;
  const cpu = selfCpuSeconds() - cpu0;
  return {
    ops,
    secs,
    hist,
    cpuPercent: Math.round((1000 * cpu) / secs) / 10,
    cpuUsPerOp: ops > 0 ? Math.round((cpu * 1e7) / ops) / 10 : 0,
    readiesPerOp: ops > 0 ? leaderReadies / ops : 0,
  };
}
