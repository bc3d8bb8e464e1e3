// The contracts between the parts of `npm run jepsen -- run` (issue 7): the cluster under test (db/), the
// network between its members (net/), the faults (nemesis/), the clients and workloads (client/, workloads/),
// the checkers (checker/) and the runner with its report (run/, report/). Each part codes against these types
// only, so that Keel and a real etcd cluster are interchangeable targets and every workload runs under every
// nemesis.

import type { HistoryEvent } from './history';

export type Target = 'keel' | 'etcd';

/** A seeded source of randomness (the run's --seed): the same seed gives the same schedule and operations. */
export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
  /** uniform integer in [0, n) */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
  shuffle<T>(items: readonly T[]): T[];
}

/** One member of the cluster under test, as the harness knows it. */
export interface NodeInfo {
  /** n1, n2, ... */
  name: string;
  /** where clients connect (gRPC and, for Keel, the HTTP/native APIs), e.g. http://127.0.0.1:23001 */
  clientUrl: string;
  /** the URL the other members dial: the front of this member's link proxy (see net/) */
  peerUrl: string;
  /** where the member itself listens for peers, behind the proxy */
  listenPeerUrl: string;
  dataDir: string;
  /** the member's stdout+stderr */
  logFile: string;
}

/** A process state the harness tracks, for the nemesis and for the report. */
export type NodeState = 'running' | 'killed' | 'paused' | 'stopped' | 'removed';

/** The cluster under test: real processes on loopback, started and stopped by pid. */
export interface ClusterUnderTest {
  readonly target: Target;
  /** every node the run ever had (members added by a membership fault are appended), in order */
  readonly nodes: readonly NodeInfo[];
  state(name: string): NodeState;
  /** the names of the current voting members and learners, as the harness last changed them */
  members(): string[];
  /** starts every node and resolves once a leader is elected (bounded: rejects after `timeoutMs`) */
  start(timeoutMs: number): Promise<void>;
  /** SIGKILL, resolves once the process is gone */
  kill(name: string): Promise<void>;
  /** starts a killed or stopped node again on the same data dir (its exit status, if it refuses, is thrown) */
  restart(name: string): Promise<void>;
  /** SIGSTOP / SIGCONT */
  pause(name: string): void;
  resume(name: string): void;
  /**
   * Damages the tail of a stopped node's write-ahead log: `truncate` cuts the last segment part-way through
   * its last record, `bitflip` flips one bit in one of its last records. Returns what was done (file, offset).
   */
  corruptWal(name: string, mode: 'truncate' | 'bitflip', rng: Rng): Promise<string>;
  /** the current leader's name as some member reports it, undefined when none answers within `timeoutMs` */
  leader(timeoutMs: number): Promise<string | undefined>;
  /** asks the leader to hand leadership to `to` */
  transferLeader(to: string): Promise<void>;
  /** compacts the store at (about) its current revision; resolves to that revision */
  compact(): Promise<number>;
  /** adds a new node (as a learner, promoted once in sync) and starts it; resolves to its name */
  grow(): Promise<string>;
  /** removes a member (not the last three) and stops its process */
  shrink(name: string): Promise<void>;
  /** stops every process it started (SIGCONT first for paused ones), by pid; safe to call twice */
  stop(): Promise<void>;
}

/** What the link proxies do with the bytes of one directed link (sender -> receiver). */
export interface LinkFault {
  /** no bytes pass; streams open on the link are cut and new ones refused */
  block?: boolean;
  /** every chunk is held this long (plus up to `jitterMs`) before it is forwarded, order kept */
  delayMs?: number;
  jitterMs?: number;
  /** probability per chunk that the connection is reset instead (TCP does not lose bytes, it loses streams) */
  dropProbability?: number;
}

/**
 * The network between the members: one proxy per directed link, all healthy until told otherwise. Every
 * member advertises the front of its proxy (NodeInfo.peerUrl) and listens behind it (listenPeerUrl); the proxy
 * learns which member dialed from the stream handshake (Keel: `x-keel-from`; etcd: `X-Server-From`), so that a
 * fault applies to one direction of one pair. A connection whose sender it cannot tell passes unharmed.
 */
export interface Net {
  /** starts the proxy in front of a member (listening on its peerUrl, forwarding to its listenPeerUrl) */
  addNode(node: NodeInfo): Promise<void>;
  /** tells the proxies the member id (16 hex digits, as in the handshake headers) of a member */
  identify(name: string, memberIdHex: string): void;
  /** sets the fault on from -> to (undefined heals it) */
  setLink(from: string, to: string, fault: LinkFault | undefined): void;
  /** blocks every link between different groups (both directions); nodes in no group are cut off from all */
  partition(groups: readonly (readonly string[])[]): void;
  /** removes every fault */
  heal(): void;
  /** the faults now in force, for the history and the report */
  describe(): string;
  /** stops every proxy and cuts every connection */
  close(): Promise<void>;
}

/** An event of a fault, written into the history as process "nemesis" (f = `start-<kind>` / `stop-<kind>`). */
export interface NemesisEvent {
  f: string;
  /** JSON-able description: which nodes, which links, what was done */
  value: unknown;
  error?: string;
}

export type NemesisKind =
  | 'partition'
  | 'delay'
  | 'drop'
  | 'kill'
  | 'pause'
  | 'corrupt'
  | 'transfer'
  | 'compact'
  | 'membership';

/** Everything a fault may act on. */
export interface NemesisContext {
  cluster: ClusterUnderTest;
  net: Net;
  rng: Rng;
  log: (msg: string) => void;
}

/** One kind of fault: `start` breaks something, `stop` repairs everything it broke (idempotent). */
export interface Nemesis {
  readonly kind: NemesisKind;
  start(ctx: NemesisContext): Promise<NemesisEvent>;
  stop(ctx: NemesisContext): Promise<NemesisEvent>;
}

/** Records operations as they happen, with monotonic nanosecond times; the source of the history file. */
export interface Recorder {
  /**
   * Writes the invocation and returns its completion handle. One operation in flight per process; after
   * `info` the process is retired (`nextProcess` hands out a fresh number).
   */
  invoke(process: number, f: string, key: string | undefined, value: unknown): Completion;
  nemesis(ev: NemesisEvent, phase: 'start' | 'stop'): void;
  nextProcess(): number;
  /** every event so far, in order */
  events(): readonly HistoryEvent[];
}

export interface Completion {
  ok(value?: unknown): void;
  /** certainly had no effect */
  fail(error: string): void;
  /** indeterminate: a timeout, a lost connection, an unknown outcome */
  info(error: string): void;
}

/** What a workload gets to drive the cluster. */
export interface WorkloadContext {
  target: Target;
  /** the members clients may connect to right now (changes under membership faults) */
  nodes(): readonly NodeInfo[];
  recorder: Recorder;
  rng: Rng;
  /** logical client processes (each with one operation in flight) */
  concurrency: number;
  /** an operation without an answer after this long is recorded `info` */
  opTimeoutMs: number;
  /** aborted when the run's time is up; `run` must return promptly after it */
  signal: AbortSignal;
  log: (msg: string) => void;
}

export type Verdict = 'valid' | 'invalid' | 'unknown';

export interface CheckResult {
  checker: string;
  verdict: Verdict;
  /** one line for the terminal and the report */
  summary: string;
  /** checker-specific evidence (the failing key and its operations, the anomalies found, ...), JSON-able */
  details?: unknown;
  /**
   * Violations the run set out to demonstrate, which do not count against the verdict (the unfenced lock's
   * broken mutual exclusion under pauses); the runner shows them next to the verdict.
   */
  expectedViolations?: number;
}

export interface Workload {
  readonly name: string;
  /** operations until `ctx.signal` aborts */
  run(ctx: WorkloadContext): Promise<void>;
  /** after the nemesis healed everything and the cluster settled: final reads (recorded like any operation) */
  finish(ctx: WorkloadContext): Promise<void>;
  /** checks a finished history (also used by `jepsen check --workload NAME`) */
  check(events: readonly HistoryEvent[], opts: { budgetMs: number; workers: number }): Promise<CheckResult[]>;
}
