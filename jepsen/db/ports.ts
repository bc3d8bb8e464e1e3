// Ports for the members under test. Each member needs three: its client URL, the front of its link proxy
// (the peer URL the others dial) and its own peer listener behind the proxy. They are probed free on
// 127.0.0.1 at random in PROBE_PORTS, below the kernel's ephemeral range, for the reason procs.ts gives: a
// port the kernel hands out for port 0 could be taken by a member's outgoing dial before the member meant to
// listen on it has started.

import { PROBE_PORTS, checkPort } from '../../src/cli/procs';

export interface NodePorts {
  client: number;
  /** where the link proxy listens: the member's advertised peer URL */
  peerFront: number;
  /** where the member itself listens for peers */
  peerListen: number;
}

/** How many random probes one port may cost before we give up (bounds the search on a crowded machine). */
const PROBES_PER_PORT = 200;

/**
 * `count` distinct ports free on 127.0.0.1 now, none in `exclude` (ports this run already handed out: a
 * killed member's ports are free but must stay its own, for its restart).
 */
export async function freePorts(count: number, exclude: ReadonlySet<number> = new Set()): Promise<number[]> {
  if (!Number.isInteger(count) || count < 0) throw new Error(`freePorts: count must be a non-negative integer, got ${count}`);
  const found = new Set<number>();
  const span = PROBE_PORTS.to - PROBE_PORTS.from;
  for (let attempt = 0; found.size < count && attempt < PROBES_PER_PORT * count; attempt++) {
    const p = PROBE_PORTS.from + Math.floor(Math.random() * span);
    if (found.has(p) || exclude.has(p)) continue;
    if ((await checkPort(p)) === 'free') found.add(p);
  }
  if (found.size < count) {
    throw new Error(`found only ${found.size} of ${count} free ports on 127.0.0.1 in ${PROBE_PORTS.from}..${PROBE_PORTS.to}`);
  }
  return [...found];
}

/** Three free ports for each of `nodes` members (none in `exclude`). */
export async function allocateNodePorts(nodes: number, exclude: ReadonlySet<number> = new Set()): Promise<NodePorts[]> {
  const ports = await freePorts(3 * nodes, exclude);
  const out: NodePorts[] = [];
  for (let i = 0; i < nodes; i++) {
    out.push({ client: ports[3 * i]!, peerFront: ports[3 * i + 1]!, peerListen: ports[3 * i + 2]! });
  }
  return out;
}
