// One Keel member: its data dir, the Raft driver, the peer transport, the state machine, and the client
// API. Writes are proposed through Raft (a follower forwards them to the leader) and answered when this member
// applies them; linearizable reads wait for a ReadIndex confirmation and for the local apply to catch up.

import { randomInt } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  Errors,
  GrpcCode,
  KvError,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type HealthResponse,
  type KvService,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type StatusResponse,
} from '../kv/api';
import { encodeProposal } from '../kv/proposal';
import type { Command, CommandResult, StateMachine } from '../kv/state-machine';
import { KvStore } from '../kv/store';
import { validateDelete, validatePut, validateRange } from '../kv/validate';
import { Raft } from '../raft/core/raft';
import { NONE, StateRole, type NodeId, type ReadState } from '../raft/core/types';
import { RaftNode } from '../raft/node';
import { Snapshotter } from '../raft/snapshot/snapshotter';
import { PeerTransport } from '../raft/transport/transport';
import { Wal } from '../raft/wal/wal';
import { createClientServer } from './http-gateway';
import { clusterIdOf, memberIdOf } from './ids';
import { checkIdentity, readIdentity, writeIdentity, type MemberIdentity } from './member-dir';
import type { MemberOptions } from './options';

const VERSION = '3.4.0-keel';

interface PendingWrite {
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
}

interface ReadRound {
  /** Every context this round was sent under: a retry adds one, and an answer to any of them serves it. */
  keys: Set<string>;
  waiters: Array<() => void>;
  sentAt: number;
}

/** A ReadIndex round unanswered for this long is sent again (etcd's readIndexRetryTime). */
const READ_RETRY_MS = 500;

export interface Member {
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly memberId: NodeId;
  readonly clusterId: string;
  close(): Promise<void>;
}

export async function startMember(opts: MemberOptions, logger: Logger): Promise<Member> {
  const m = new KeelMember(opts, logger);
  await m.start();
  return m;
}

class KeelMember implements KvService, Member {
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly memberId: NodeId;
  readonly clusterId: string;
  private readonly log: Logger;
  private readonly identity: MemberIdentity;
  private readonly requestTimeoutMs: number;

  private node?: RaftNode;
  private sm?: StateMachine;
  private wal?: Wal;
  private transport?: PeerTransport;
  private clientServer?: http.Server;
  private peerServer?: http.Server;

  private proposalSeq = 0;
  private readonly pendingWrites = new Map<string, PendingWrite>();
  private readSeq = 0;
  /** The ReadIndex round in flight, and the reads that arrived since it was sent (they take the next one). */
  private readRound?: ReadRound;
  private nextReadWaiters: Array<() => void> = [];
  /** Reads confirmed by the leader, waiting for the local apply to reach their index. */
  private readonly appliedWaiters: Array<{ index: number; done: () => void }> = [];
  private readRetryTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly opts: MemberOptions,
    logger: Logger,
  ) {
    this.log = logger.child({ member: opts.name });
    this.clientUrl = opts.listenClientUrl;
    this.peerUrl = opts.listenPeerUrl;
    const self = opts.initialCluster.find((m) => m.name === opts.name);
    if (!self) throw new Error(`--initial-cluster does not name this member (${opts.name})`);
    if (self.peerUrl !== opts.listenPeerUrl) {
      throw new Error(
        `--initial-cluster gives ${opts.name} the peer URL ${self.peerUrl}, but --listen-peer-urls is ${opts.listenPeerUrl}`,
      );
    }
    this.memberId = memberIdOf(self.peerUrl, opts.initialClusterToken);
    this.clusterId = clusterIdOf(opts.initialCluster, opts.initialClusterToken);
    this.identity = {
      name: opts.name,
      memberId: this.memberId,
      clusterId: this.clusterId,
      initialCluster: opts.initialCluster.map((m) => ({
        name: m.name,
        id: memberIdOf(m.peerUrl, opts.initialClusterToken),
        peerUrl: m.peerUrl,
      })),
    };
    // etcd: 5 s plus two election timeouts, so a request survives one leader change.
    this.requestTimeoutMs = 5000 + 2 * opts.electionTimeoutMs;
  }

  async start(): Promise<void> {
    const { opts } = this;
    if (opts.electionTimeoutMs < 5 * opts.heartbeatIntervalMs) {
      throw new Error('--election-timeout must be at least 5 times --heartbeat-interval');
    }
    warnIfNotLoopback(opts.listenClientUrl, '--listen-client-urls', this.log);
    warnIfNotLoopback(opts.listenPeerUrl, '--listen-peer-urls', this.log);

    // Bind both ports before touching the data dir, so "port in use" costs nothing.
    const peerServer = http.createServer((_req, res) => {
      res.statusCode = 404;
      res.end();
    });
    await listen(peerServer, opts.listenPeerUrl, 'peer');
    const clientServer = createClientServer(this, { logger: this.log });
    try {
      await listen(clientServer, opts.listenClientUrl, 'client');
    } catch (err) {
      peerServer.close();
      throw err;
    }
    this.peerServer = peerServer;
    this.clientServer = clientServer;

    try {
      await this.openStorage(peerServer);
    } catch (err) {
      clientServer.close();
      peerServer.close();
      throw err;
    }
    this.log.info(
      {
        memberId: this.memberId,
        clusterId: this.clusterId,
        clientUrl: this.clientUrl,
        peerUrl: this.peerUrl,
        applied: this.node?.applied,
      },
      'member started',
    );
  }

  private async openStorage(peerServer: http.Server): Promise<void> {
    const { opts } = this;
    await fs.mkdir(opts.dataDir, { recursive: true });
    const found = await readIdentity(opts.dataDir);
    if (found) checkIdentity(opts.dataDir, found, this.identity);
    else await writeIdentity(opts.dataDir, this.identity);
    const identity = found ?? this.identity;

    const sm = await openStore(path.join(opts.dataDir, 'db'), this.log);
    this.sm = sm;
    const snapshotter = new Snapshotter(path.join(opts.dataDir, 'snap'), this.log);
    const snapshot = await snapshotter.loadNewest();
    if (snapshot && snapshot.meta.index > sm.appliedIndex()) {
      // A crash during a snapshot install, or a lost backend: bring the state machine up to the snapshot.
      this.log.warn(
        { snapshotIndex: snapshot.meta.index, applied: sm.appliedIndex() },
        'state machine is behind the newest snapshot; restoring it from the snapshot',
      );
      await sm.restore(snapshot);
    }
    const walDir = path.join(opts.dataDir, 'wal');
    let storage;
    if (await Wal.exists(walDir)) {
      const { wal, contents } = await Wal.open(walDir, { logger: this.log });
      this.wal = wal;
      storage = { hardState: contents.hardState, snapshot, entries: contents.entries };
    } else {
      this.wal = await Wal.create(walDir, { logger: this.log });
      storage = { hardState: { term: 0, vote: NONE, commit: 0 }, snapshot, entries: [] };
    }
    const electionTick = Math.max(2, Math.round(opts.electionTimeoutMs / opts.heartbeatIntervalMs));
    const raft = new Raft(
      {
        id: this.memberId,
        peers: identity.initialCluster.map((m) => m.id),
        electionTick,
        heartbeatTick: 1,
        preVote: true,
        checkQuorum: true,
        seed: randomInt(0, 2 ** 31),
      },
      storage,
      sm.appliedIndex(),
    );
    if (snapshot) {
      // The WAL drops whole segments only, so replay may bring back more than the retained tail: trim the
      // in-memory log to what a running member keeps.
      raft.compact(snapshot, Math.max(1, snapshot.meta.index - opts.snapshotCatchupEntries));
    }

    const peers = new Map<NodeId, string>();
    for (const m of identity.initialCluster) if (m.id !== this.memberId) peers.set(m.id, m.peerUrl);
    this.transport = new PeerTransport({
      selfId: this.memberId,
      clusterId: this.clusterId,
      peers,
      logger: this.log,
      onMessage: (msg) => {
        if (peers.has(msg.from) && msg.to === this.memberId) this.node?.step(msg);
      },
    });
    this.transport.attach(peerServer);

    const node = new RaftNode({
      raft,
      wal: this.wal,
      snapshotter,
      stateMachine: sm,
      send: (msgs) => this.transport?.send(msgs),
      logger: this.log,
      tickMs: opts.heartbeatIntervalMs,
      snapshotCount: opts.snapshotCount,
      snapshotCatchupEntries: opts.snapshotCatchupEntries,
      snapshotIndex: snapshot?.meta.index ?? 0,
    });
    node.on('applied', (index, results) => {
      for (const { id, result } of results.values()) {
        const w = this.pendingWrites.get(id);
        if (w) {
          this.pendingWrites.delete(id);
          w.resolve(result);
        }
      }
      this.releaseAppliedWaiters(index);
    });
    node.on('readState', (rs) => this.onReadState(rs));
    node.on('leaderChange', () => this.retryReadRound(true));
    node.on('fatal', (err) => {
      for (const w of this.pendingWrites.values()) w.reject(Errors.failed(err));
      this.pendingWrites.clear();
    });
    this.node = node;
    node.start();
    // A read round whose answer was lost (leader change, dropped message) is sent again.
    this.readRetryTimer = setInterval(() => this.retryReadRound(), READ_RETRY_MS / 2);
  }

  // ---- writes -------------------------------------------------------------------------------------------

  private async propose(cmd: Command): Promise<CommandResult> {
    const node = this.requireNode();
    const id = `${this.memberId}-${++this.proposalSeq}`;
    const data = encodeProposal({ id, cmd });
    return new Promise<CommandResult>((resolve, reject) => {
      const deadline = Date.now() + this.requestTimeoutMs;
      let retry: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        if (retry) clearTimeout(retry);
        this.pendingWrites.delete(id);
        reject(Errors.timeout());
      }, this.requestTimeoutMs);
      this.pendingWrites.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          if (retry) clearTimeout(retry);
          reject(e);
        },
      });
      // A proposal is only retried when the core dropped it (no leader known): then it went nowhere, and a
      // retry cannot apply it twice. Once handed to a leader it is answered by apply, or times out.
      const attempt = (): void => {
        if (!this.pendingWrites.has(id)) return;
        if (this.leaderReachable(node) && node.propose(data)) return;
        if (Date.now() + this.opts.heartbeatIntervalMs < deadline) {
          retry = setTimeout(attempt, this.opts.heartbeatIntervalMs);
        }
      };
      attempt();
    });
  }

  async put(req: PutRequest): Promise<PutResponse> {
    validatePut(req);
    const r = await this.propose({ op: 'put', key: req.key, value: req.value, prevKv: req.prevKv });
    if (r.op !== 'put') throw new KvError(GrpcCode.Internal, 'etcdserver: unexpected apply result');
    return { header: this.header(r.revision), prevKv: r.prevKv };
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    validateDelete(req);
    const r = await this.propose({ op: 'delete', key: req.key, rangeEnd: req.rangeEnd, prevKv: req.prevKv });
    if (r.op !== 'delete') throw new KvError(GrpcCode.Internal, 'etcdserver: unexpected apply result');
    return { header: this.header(r.revision), deleted: r.deleted, prevKvs: r.prevKvs };
  }

  /**
   * Whether a proposal can reach the leader: we lead, or our stream to the leader is up. A proposal forwarded
   * into a dead stream is lost, and the client would wait for its timeout although a new leader may be
   * elected within a second; held back here, it is retried (safely: it went nowhere) once one is known.
   */
  private leaderReachable(node: RaftNode): boolean {
    const lead = node.raft.lead;
    if (lead === NONE) return false;
    if (lead === this.memberId) return true;
    return this.transport?.isActive(lead) ?? false;
  }

  // ---- reads --------------------------------------------------------------------------------------------

  async range(req: RangeRequest): Promise<RangeResponse> {
    validateRange(req);
    const sm = this.requireSm();
    if (!req.serializable) await this.linearizableBarrier();
    const r = await sm.range(req);
    return { header: this.header(r.revision), kvs: r.kvs, more: r.more, count: r.count };
  }

  /**
   * Resolves once this member has applied everything committed before the call (ReadIndex, §6.4). Reads
   * that arrive while a round is in flight share the next round, so one heartbeat round serves many reads.
   */
  private linearizableBarrier(): Promise<void> {
    this.requireNode();
    return new Promise<void>((resolve, reject) => {
      let finished = false;
      const timer = setTimeout(() => {
        finished = true;
        reject(this.node?.raft.lead === NONE ? Errors.noLeader() : Errors.timeout());
      }, this.requestTimeoutMs);
      this.nextReadWaiters.push(() => {
        if (finished) return;
        clearTimeout(timer);
        resolve();
      });
      if (!this.readRound) this.startReadRound();
    });
  }

  private startReadRound(): void {
    if (!this.node || this.nextReadWaiters.length === 0) return;
    this.readRound = { keys: new Set(), waiters: this.nextReadWaiters, sentAt: 0 };
    this.nextReadWaiters = [];
    this.sendReadRound(this.readRound);
  }

  private sendReadRound(round: ReadRound): void {
    const ctx = Buffer.from(`${this.memberId}/${++this.readSeq}`);
    round.keys.add(ctx.toString('latin1'));
    round.sentAt = Date.now();
    this.node?.readIndex(ctx);
  }

  private retryReadRound(force = false): void {
    const round = this.readRound;
    if (!round) {
      if (this.nextReadWaiters.length > 0) this.startReadRound();
      return;
    }
    // The request or its answer may have been lost (leader change, dropped message): ask again under a new
    // context, still accepting an answer to the old ones, so a slow leader cannot starve the round.
    if (force || Date.now() - round.sentAt >= READ_RETRY_MS) this.sendReadRound(round);
  }

  private onReadState(rs: ReadState): void {
    const round = this.readRound;
    if (!round || !round.keys.has(Buffer.from(rs.context).toString('latin1'))) return;
    this.readRound = undefined;
    const done = (): void => {
      for (const w of round.waiters) w();
    };
    if ((this.node?.applied ?? 0) >= rs.index) done();
    else this.appliedWaiters.push({ index: rs.index, done });
    if (this.nextReadWaiters.length > 0) this.startReadRound();
  }

  private releaseAppliedWaiters(applied: number): void {
    for (let i = this.appliedWaiters.length - 1; i >= 0; i--) {
      if (this.appliedWaiters[i].index <= applied) {
        const [w] = this.appliedWaiters.splice(i, 1);
        w.done();
      }
    }
  }

  // ---- status -------------------------------------------------------------------------------------------

  private header(revision: number): ResponseHeader {
    return {
      clusterId: this.clusterId,
      memberId: this.memberId,
      revision,
      raftTerm: this.node?.raft.term ?? 0,
    };
  }

  async status(): Promise<StatusResponse> {
    const node = this.requireNode();
    const sm = this.requireSm();
    const raft = node.raft;
    const errors: string[] = [];
    if (node.fatalError) errors.push(node.fatalError.message);
    return {
      header: this.header(sm.revision()),
      version: VERSION,
      dbSize: await sm.dbSize(),
      leader: raft.lead,
      raftIndex: raft.log.lastIndex(),
      raftTerm: raft.term,
      raftAppliedIndex: node.applied,
      snapshotIndex: node.snapshotIdx,
      firstIndex: raft.log.firstIndex(),
      isLearner: false,
      errors,
      name: this.opts.name,
    };
  }

  async health(): Promise<HealthResponse> {
    const node = this.node;
    if (!node || this.closed) return { health: false, reason: 'member is stopping' };
    if (node.fatalError) return { health: false, reason: node.fatalError.message };
    if (node.raft.lead === NONE) return { health: false, reason: 'RAFT NO LEADER' };
    return { health: true, reason: '' };
  }

  isLeader(): boolean {
    return this.node?.raft.role === StateRole.Leader;
  }

  private requireNode(): RaftNode {
    if (this.closed) throw Errors.stopped();
    if (!this.node) throw Errors.starting();
    if (this.node.fatalError) throw Errors.failed(this.node.fatalError);
    return this.node;
  }

  private requireSm(): StateMachine {
    if (this.closed) throw Errors.stopped();
    if (!this.sm) throw Errors.starting();
    return this.sm;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.readRetryTimer) clearInterval(this.readRetryTimer);
    // Stop the loop first (the batch in progress completes), then the peer streams (a server does not close
    // while upgraded sockets are open), then the listeners.
    await this.node?.stop();
    await this.transport?.close();
    await Promise.all([closeServer(this.clientServer), closeServer(this.peerServer)]);
    for (const w of this.pendingWrites.values()) w.reject(Errors.stopped());
    this.pendingWrites.clear();
    await this.wal?.close();
    await this.sm?.close();
    this.log.info('member stopped');
  }
}

async function openStore(dir: string, log: Logger): Promise<KvStore> {
  try {
    return await KvStore.open(dir, log);
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    if (cause && /lock/i.test(cause.message)) {
      throw new Error(`data dir ${path.dirname(dir)} is in use by another process (${cause.message})`);
    }
    throw new Error(`cannot open the backend at ${dir}: ${(err as Error).message}${cause ? `: ${cause.message}` : ''}`);
  }
}

function listen(server: http.Server, url: string, what: string): Promise<void> {
  const u = new URL(url);
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      if (err.code === 'EADDRINUSE') reject(new Error(`${what} URL ${url}: port ${u.port} is already in use`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new Error(`${what} URL ${url}: address not available here`));
      else reject(new Error(`${what} URL ${url}: cannot listen: ${err.message}`));
    };
    server.once('error', onError);
    server.listen(Number(u.port), u.hostname.replace(/^\[|\]$/g, ''), () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: http.Server | undefined): Promise<void> {
  if (!server || !server.listening) return Promise.resolve();
  server.closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

function warnIfNotLoopback(url: string, flag: string, log: Logger): void {
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1') {
    log.warn(
      { flag, url },
      `${flag} listens on ${host} without TLS or authentication: anyone who can reach it can read and write the store`,
    );
  }
}
