// One Keel member: its data dir, the Raft driver, the peer transport, the state machine, and the client
// API. Writes are proposed through Raft (a follower forwards them to the leader) and answered when this member
// applies them; linearizable reads wait for a ReadIndex confirmation and for the local apply to catch up.

import { randomBytes, randomInt } from 'node:crypto';
import { promises as fs } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Logger } from 'pino';
import {
  Errors,
  GrpcCode,
  KvError,
  MAX_LEASE_TTL,
  type ClientRequestId,
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type HealthResponse,
  type KvService,
  type LeaseGrantRequest,
  type LeaseGrantResponse,
  type LeaseKeepAliveRequest,
  type LeaseKeepAliveResponse,
  type LeaseLeasesResponse,
  type LeaseRevokeRequest,
  type LeaseRevokeResponse,
  type LeaseTimeToLiveRequest,
  type LeaseTimeToLiveResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type ResponseHeader,
  type ResponseOp,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
  type WatchSink,
  type WatchStream,
} from '../kv/api';
import { MvccStore } from '../kv/mvcc/mvcc-store';
import { encodeProposal } from '../kv/proposal';
import type { Command, CommandResult, StateMachine } from '../kv/state-machine';
import { txnHasWrites } from '../kv/txn-shape';
import {
  validateCompaction,
  validateDelete,
  validateLeaseGrant,
  validateLeaseKeepAlive,
  validateLeaseRevoke,
  validateLeaseTimeToLive,
  validatePut,
  validateRange,
  validateTxn,
} from '../kv/validate';
import { WatchHub } from '../kv/watch-hub';
import { Raft } from '../raft/core/raft';
import { NONE, StateRole, type NodeId } from '../raft/core/types';
import { RaftNode } from '../raft/node';
import { Snapshotter } from '../raft/snapshot/snapshotter';
import { PeerTransport } from '../raft/transport/transport';
import { Wal } from '../raft/wal/wal';
import { createClientServer } from './http-gateway';
import { bestSuccessor, moveLeaderRoute, transferLeadership } from './leader-transfer';
import { LeaseKeeper } from './lease-keeper';
import { maintenanceSnapshotRoute } from './maintenance-snapshot';
import { MemberMetrics } from './metrics';
import { checkIdentity, identityOf, readIdentity, writeIdentity, type MemberIdentity } from './member-dir';
import type { MemberOptions } from './options';
import { ReadBarrier } from './read-barrier';
import { attachStreamServer, type StreamServer } from './stream-server';

const VERSION = '3.4.0-keel';

interface PendingWrite {
  resolve: (r: CommandResult) => void;
  reject: (e: Error) => void;
  /** The encoded proposal, and whether applying it twice is harmless (see repropose()). */
  data: Uint8Array;
  repeatable: boolean;
}

/**
 * Whether a command may be proposed again while its first proposal may still be applied: a second
 * application must change nothing the first did not. True for lease keep-alives and checkpoints (they set,
 * not add), revokes, grants with their id fixed, compactions (a repeat is refused by the state and nobody
 * waits for it: the waiter is answered by whichever copy is applied first), and for writes carrying a client
 * request id (the state machine answers a repeat with the first result). A put without one is not.
 */
function isRepeatable(cmd: Command, requestId: ClientRequestId | undefined, internal: boolean): boolean {
  // The leader's own revokes of expired leases and its checkpoints are decisions of that leader: a new leader
  // may have extended the lease meanwhile, and a stale copy must not revoke it.
  if (internal) return false;
  if (cmd.op === 'put' || cmd.op === 'delete' || cmd.op === 'txn') return requestId !== undefined;
  return true;
}

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

/** A lease id when the client gives none: random in [1, 2^53 - 1] (Keel keeps lease ids exact in a JS number). */
function randomLeaseId(): number {
  for (;;) {
    const b = randomBytes(7);
    b[0] &= 0x1f; // 53 bits
    const id = Number(BigInt(`0x${b.toString('hex')}`));
    if (id !== 0) return id;
  }
}

/** etcd's minimum lease TTL: 1.5 election timeouts, in whole seconds rounded up, so that a lease survives a
 *  leader change (the new leader extends every lease by one election timeout). */
export function minLeaseTtlSeconds(electionTimeoutMs: number): number {
  return Math.ceil((1.5 * electionTimeoutMs) / 1000);
}

class KeelMember implements KvService, Member {
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly memberId: NodeId;
  readonly clusterId: string;
  private readonly log: Logger;
  private readonly identity: MemberIdentity;
  private readonly requestTimeoutMs: number;
  /** Distinguishes this run's proposal ids from those of earlier runs still in the log. */
  private readonly bootId = randomBytes(4).toString('hex');

  private node?: RaftNode;
  private sm?: StateMachine;
  private wal?: Wal;
  private transport?: PeerTransport;
  private clientServer?: http.Server;
  private peerServer?: http.Server;
  private streamServer?: StreamServer;
  private hub?: WatchHub;
  private leases?: LeaseKeeper;
  private reads?: ReadBarrier;
  private readonly metrics: MemberMetrics;

  private proposalSeq = 0;
  private readonly pendingWrites = new Map<string, PendingWrite>();
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
    this.identity = identityOf(opts.name, opts.initialCluster, opts.initialClusterToken);
    this.memberId = this.identity.memberId;
    this.clusterId = this.identity.clusterId;
    // etcd: 5 s plus two election timeouts, so a request survives one leader change.
    this.requestTimeoutMs = 5000 + 2 * opts.electionTimeoutMs;
    this.metrics = new MemberMetrics({
      memberId: this.memberId,
      sources: {
        leader: () => this.node?.raft.lead,
        isLeader: () => this.node?.isLeader(),
        committedIndex: () => this.node?.raft.log.commit,
        appliedIndex: () => this.node?.applied,
        pendingProposals: () => this.pendingWrites.size,
        revision: () => this.sm?.revision(),
        compactRevision: () => this.sm?.compactRevision(),
        dbSize: () => this.sm?.dbSize(),
        peers: () => this.transport?.stats(),
      },
    });
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
    const clientServer = createClientServer(this, {
      logger: this.log,
      rpcMetrics: this.metrics.rpc,
      extraRoutes: [
        this.metrics.route,
        moveLeaderRoute({
          node: () => this.requireNode(),
          memberId: this.memberId,
          electionTimeoutMs: this.opts.electionTimeoutMs,
          header: () => this.header(this.sm?.revision() ?? 0),
        }),
        maintenanceSnapshotRoute(
          { snapshot: () => this.requireSm().snapshot(), header: (revision) => this.header(revision) },
          { logger: this.log },
        ),
      ],
    });
    try {
      await listen(clientServer, opts.listenClientUrl, 'client');
    } catch (err) {
      peerServer.close();
      throw err;
    }
    this.peerServer = peerServer;
    this.clientServer = clientServer;
    this.streamServer = attachStreamServer(clientServer, this, { logger: this.log, rpcMetrics: this.metrics.rpc });

    try {
      await this.openStorage(peerServer);
    } catch (err) {
      await this.streamServer.close();
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
        revision: this.sm?.revision(),
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

    const sm = await openStore(path.join(opts.dataDir, 'db'), this.log, this.metrics.observeBackendCommit);
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
      const { wal, contents } = await Wal.open(walDir, { logger: this.log, onFsync: this.metrics.observeWalFsync });
      this.wal = wal;
      storage = { hardState: contents.hardState, snapshot, entries: contents.entries };
    } else {
      this.wal = await Wal.create(walDir, { logger: this.log, onFsync: this.metrics.observeWalFsync });
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
      onRoundTrip: this.metrics.observePeerRoundTrip,
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
      onSnapshotSaved: this.metrics.observeSnapshotSave,
      onSnapshotInstalled: this.metrics.observeReceivedSnapshotSave,
    });
    const hub = new WatchHub({
      history: sm,
      header: (revision) => this.header(revision),
      progressIntervalMs: opts.watchProgressNotifyIntervalMs,
      logger: this.log,
    });
    const leases = new LeaseKeeper({
      propose: (cmd) => this.propose(cmd, undefined, true),
      isLeader: () => node.isLeader(),
      now: () => performance.now(),
      electionTimeoutMs: opts.electionTimeoutMs,
      checkpointIntervalMs: opts.leaseCheckpointIntervalMs,
      logger: this.log,
    });
    leases.reset(sm.leases());
    const reads = new ReadBarrier(node, this.memberId, this.requestTimeoutMs);
    node.on('applied', (index, out) => {
      // Watchers on this member see a write no later than its writer hears of it.
      hub.onApplied(out.changes);
      leases.onApplied(out.leases);
      for (const { id, result } of out.results.values()) {
        const w = this.pendingWrites.get(id);
        if (w) {
          this.pendingWrites.delete(id);
          w.resolve(result);
        }
      }
      reads.onApplied(index);
    });
    node.on('restored', (index) => {
      leases.reset(sm.leases());
      hub.onRestore();
      reads.onApplied(index);
    });
    node.on('readState', (rs) => reads.onReadState(rs));
    node.on('leaderChange', (lead) => {
      this.metrics.onLeaderChange(lead);
      reads.onLeaderChange();
      if (lead === this.memberId) leases.onPromote();
      if (lead !== NONE) this.repropose(node);
    });
    node.on('fatal', (err) => {
      for (const w of this.pendingWrites.values()) w.reject(Errors.failed(err));
      this.pendingWrites.clear();
    });
    this.node = node;
    this.hub = hub;
    this.leases = leases;
    this.reads = reads;
    node.start();
  }

  // ---- writes -------------------------------------------------------------------------------------------

  /** Proposes a command and resolves with its result once this member has applied it; a result that is
   *  the state's refusal (unknown lease, compacted revision, ...) is thrown. `internal`: proposed by the
   *  member itself (lease expiry, checkpoints), not by a client. */
  private async propose(cmd: Command, requestId?: ClientRequestId, internal = false): Promise<CommandResult> {
    const node = this.requireNode();
    const id = `${this.memberId}-${this.bootId}-${++this.proposalSeq}`;
    const data = encodeProposal(requestId === undefined ? { id, cmd } : { id, requestId, cmd });
    const result = await new Promise<CommandResult>((resolve, reject) => {
      const deadline = Date.now() + this.requestTimeoutMs;
      let retry: NodeJS.Timeout | undefined;
      const timer = setTimeout(() => {
        if (retry) clearTimeout(retry);
        this.pendingWrites.delete(id);
        this.metrics.onProposalFailed();
        reject(Errors.timeout());
      }, this.requestTimeoutMs);
      this.pendingWrites.set(id, {
        data,
        repeatable: isRepeatable(cmd, requestId, internal),
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
    if (result.op === 'error') throw result.error;
    return result;
  }

  /**
   * A new leader is known: propose again what may have been lost with the old one (forwarded to a leader
   * that died, or dropped by it), where a second copy is harmless. Without this, a lease keep-alive sent
   * through a follower just before the leader's death would wait for the request timeout (7 s by default),
   * longer than short leases live, and a deduplicated write would wait for the client's retry.
   */
  private repropose(node: RaftNode): void {
    // Wait a tick, so that the stream to the new leader is up (or we are the leader and have appended our
    // no-op entry); proposals that are not repeatable are left to their timeout, as etcd does.
    setTimeout(() => {
      if (this.closed || !this.leaderReachable(node)) return;
      for (const w of this.pendingWrites.values()) if (w.repeatable) node.propose(w.data);
    }, this.opts.heartbeatIntervalMs);
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

  async put(req: PutRequest): Promise<PutResponse> {
    validatePut(req);
    const { requestId, ...rest } = req;
    const r = expect(await this.propose({ op: 'put', req: rest }, requestId), 'put');
    return { header: this.header(r.revision), prevKv: r.prevKv };
  }

  async deleteRange(req: DeleteRangeRequest): Promise<DeleteRangeResponse> {
    validateDelete(req);
    const { requestId, ...rest } = req;
    const r = expect(await this.propose({ op: 'delete', req: rest }, requestId), 'delete');
    return { header: this.header(r.revision), deleted: r.deleted, prevKvs: r.prevKvs };
  }

  async txn(req: TxnRequest): Promise<TxnResponse> {
    validateTxn(req);
    if (!txnHasWrites(req)) {
      // Served as a read, as etcd does: no log entry, linearizable unless asked otherwise.
      const sm = this.requireSm();
      if (!req.serializable) await this.requireReads().wait();
      return this.withHeaders((await sm.readTxn(req)).txn);
    }
    const { compare, success, failure } = req;
    const r = expect(await this.propose({ op: 'txn', req: { compare, success, failure } }, req.requestId), 'txn');
    return this.withHeaders(r.txn);
  }

  async compact(req: CompactionRequest): Promise<CompactionResponse> {
    validateCompaction(req);
    const r = expect(await this.propose({ op: 'compact', req }), 'compact');
    if (req.physical) await this.requireSm().compacted(req.revision);
    return { header: this.header(r.revision) };
  }

  // ---- leases -------------------------------------------------------------------------------------------

  async leaseGrant(req: LeaseGrantRequest): Promise<LeaseGrantResponse> {
    validateLeaseGrant(req);
    const ttl = Math.min(MAX_LEASE_TTL, Math.max(req.ttl, minLeaseTtlSeconds(this.opts.electionTimeoutMs)));
    const id = req.id !== undefined && req.id !== 0 ? req.id : randomLeaseId();
    const r = expect(await this.propose({ op: 'leaseGrant', id, ttl }), 'leaseGrant');
    return { header: this.header(r.revision), id: r.id, ttl: r.ttl };
  }

  async leaseRevoke(req: LeaseRevokeRequest): Promise<LeaseRevokeResponse> {
    validateLeaseRevoke(req);
    const r = expect(await this.propose({ op: 'leaseRevoke', id: req.id }), 'leaseRevoke');
    return { header: this.header(r.revision) };
  }

  async leaseKeepAlive(req: LeaseKeepAliveRequest): Promise<LeaseKeepAliveResponse> {
    validateLeaseKeepAlive(req);
    const r = expect(await this.propose({ op: 'leaseKeepAlive', id: req.id }), 'leaseKeepAlive');
    return { header: this.header(r.revision), id: r.id, ttl: r.ttl };
  }

  async leaseTimeToLive(req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> {
    validateLeaseTimeToLive(req);
    const sm = this.requireSm();
    await this.requireReads().wait();
    const lease = sm.leases().find((l) => l.id === req.id);
    if (lease === undefined) {
      return { header: this.header(sm.revision()), id: req.id, ttl: -1, grantedTtl: 0, keys: [] };
    }
    const keys = req.keys ? await sm.leaseKeys(req.id) : [];
    const ttl = this.leases?.remainingSeconds(req.id) ?? lease.remainingTtl;
    return { header: this.header(sm.revision()), id: req.id, ttl, grantedTtl: lease.ttl, keys };
  }

  async leaseLeases(): Promise<LeaseLeasesResponse> {
    const sm = this.requireSm();
    await this.requireReads().wait();
    const leases = sm
      .leases()
      .map((l) => ({ id: l.id }))
      .sort((a, b) => a.id - b.id);
    return { header: this.header(sm.revision()), leases };
  }

  // ---- reads and watches --------------------------------------------------------------------------------

  async range(req: RangeRequest): Promise<RangeResponse> {
    validateRange(req);
    const sm = this.requireSm();
    if (!req.serializable) await this.requireReads().wait();
    const r = await sm.range(req);
    return { header: this.header(r.revision), kvs: r.kvs, more: r.more, count: r.count };
  }

  watch(sink: WatchSink): WatchStream {
    this.requireNode();
    if (!this.hub) throw Errors.starting();
    return this.hub.openStream(sink);
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

  /** The store fills only the revision of a txn's headers (its own and its nested responses'). */
  private withHeaders(txn: TxnResponse): TxnResponse {
    const fix = (op: ResponseOp): ResponseOp => {
      switch (op.type) {
        case 'range':
          return { type: 'range', range: { ...op.range, header: this.header(op.range.header.revision) } };
        case 'put':
          return { type: 'put', put: { ...op.put, header: this.header(op.put.header.revision) } };
        case 'deleteRange':
          return {
            type: 'deleteRange',
            deleteRange: { ...op.deleteRange, header: this.header(op.deleteRange.header.revision) },
          };
        case 'txn':
          return { type: 'txn', txn: this.withHeaders(op.txn) };
      }
    };
    return { header: this.header(txn.header.revision), succeeded: txn.succeeded, responses: txn.responses.map(fix) };
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

  private async handOverLeadership(): Promise<void> {
    const node = this.node;
    if (!node || !node.isLeader() || node.fatalError) return;
    const target = bestSuccessor(node, this.memberId);
    if (target === undefined) return;
    const started = Date.now();
    try {
      // One election timeout at most: the core abandons the transfer then, and a stop should not wait longer.
      await transferLeadership(node, target, this.opts.electionTimeoutMs);
      this.log.info({ to: target, ms: Date.now() - started }, 'leadership handed over before stopping');
    } catch (err) {
      this.log.warn({ to: target, err: (err as Error).message }, 'leadership hand-over before stopping failed');
    }
  }

  private requireReads(): ReadBarrier {
    this.requireNode();
    if (!this.reads) throw Errors.starting();
    return this.reads;
  }

  /**
   * Stops the member. A leader first hands leadership to its most up-to-date voter (etcd does the same on a
   * graceful stop), so that the cluster does not wait an election timeout for a new leader.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.handOverLeadership();
    this.closed = true;
    this.reads?.close();
    this.leases?.close();
    this.hub?.close();
    // Client streams first (no new requests), then the loop (the batch in progress completes), then the peer
    // streams (a server does not close while upgraded sockets are open), then the listeners.
    await this.streamServer?.close();
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

/** Narrows an apply result to the kind the command gives; anything else is a bug worth a clear error. */
function expect<K extends CommandResult['op']>(r: CommandResult, op: K): Extract<CommandResult, { op: K }> {
  if (r.op !== op) throw new KvError(GrpcCode.Internal, `etcdserver: unexpected apply result ${r.op} for ${op}`);
  return r as Extract<CommandResult, { op: K }>;
}

async function openStore(dir: string, log: Logger, onCommit: (seconds: number) => void): Promise<MvccStore> {
  try {
    return await MvccStore.open(dir, log, { onCommit });
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
