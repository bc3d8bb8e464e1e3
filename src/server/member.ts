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
  type AlarmRequest,
  type AlarmResponse,
  type ClientRequestId,
  type DefragmentResponse,
  type HashKVRequest,
  type HashKVResponse,
  type HashResponse,
  type MoveLeaderRequest,
  type MoveLeaderResponse,
  type SnapshotResponse,
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
  type MemberAddRequest,
  type MemberAddResponse,
  type MemberInfo,
  type MemberListRequest,
  type MemberListResponse,
  type MemberPromoteRequest,
  type MemberPromoteResponse,
  type MemberRemoveRequest,
  type MemberRemoveResponse,
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
  validateAlarm,
  validateCompaction,
  validateDelete,
  validateLeaseGrant,
  validateLeaseKeepAlive,
  validateLeaseRevoke,
  validateLeaseTimeToLive,
  validateMemberAdd,
  validateMemberId,
  validatePut,
  validateRange,
  validateTxn,
} from '../kv/validate';
import { WatchHub } from '../kv/watch-hub';
import type { ConfChangeData, ConfChangeType } from '../raft/core/confchange';
import { Raft } from '../raft/core/raft';
import { NONE, StateRole, type ConfState, type NodeId } from '../raft/core/types';
import { RaftNode } from '../raft/node';
import { Snapshotter } from '../raft/snapshot/snapshotter';
import { PeerTransport } from '../raft/transport/transport';
import { Wal } from '../raft/wal/wal';
import { createGrpcServer } from './grpc/server';
import { listenWithGrpc, type GrpcListener } from './grpc/protocol-mux';
import { createClientServer } from './http-gateway';
import { listenOn } from './listen';
import { bestSuccessor, moveLeaderRoute, transferLeadership } from './leader-transfer';
import { LeaseKeeper } from './lease-keeper';
import { backupFile, maintenanceSnapshotRoute } from './maintenance-snapshot';
import { MemberMetrics } from './metrics';
import { NoSpaceAlarm } from './nospace-alarm';
import { checkIdentity, identityOf, readIdentity, writeIdentity, type MemberIdentity } from './member-dir';
import {
  NOT_LEADER,
  changeNotMade,
  discoverJoin,
  fetchClusterInfo,
  forwardChange,
  peerRequestHandler,
  planChange,
  type ChangeOp,
  type ClusterInfo,
} from './membership';
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
  /** Resolves when this member learns it was removed from the cluster (it then serves nothing; close it). */
  readonly removed: Promise<void>;
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

/** Write errors after which the member resets its storage and raises a NOSPACE alarm, instead of stopping
 *  for good: a full disk, or an I/O error that freeing space or a remount may cure. */
const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EFBIG']);

function diskErrorCode(err: Error): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = (e as { cause?: unknown }).cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && DISK_ERRORS.has(code)) return code;
  }
  return undefined;
}

interface ConfWaiter {
  type: ConfChangeType;
  nodeId: NodeId;
  resolve: () => void;
}

class KeelMember implements KvService, Member {
  readonly clientUrl: string;
  readonly peerUrl: string;
  private readonly log: Logger;
  private identity: MemberIdentity;
  private readonly requestTimeoutMs: number;
  /** Distinguishes this run's proposal ids from those of earlier runs still in the log. */
  private readonly bootId = randomBytes(4).toString('hex');

  private node?: RaftNode;
  private sm?: StateMachine;
  private wal?: Wal;
  private transport?: PeerTransport;
  private clientListener?: GrpcListener;
  private peerServer?: http.Server;
  private streamServer?: StreamServer;
  private hub?: WatchHub;
  private leases?: LeaseKeeper;
  private reads?: ReadBarrier;
  private metrics!: MemberMetrics;

  private proposalSeq = 0;
  private readonly pendingWrites = new Map<string, PendingWrite>();
  private readonly confWaiters = new Set<ConfWaiter>();
  private closed = false;
  /** Members the cluster named when this member joined, before its registry knows them (transport only). */
  private discovered: MemberInfo[] = [];
  private publishTimer?: NodeJS.Timeout;
  private readonly noSpace: NoSpaceAlarm;
  /** A write to the WAL or the backend failed with a disk error: the member resets its storage until it
   *  can write again (recoverStorage); meanwhile it serves nothing. */
  private diskFailure?: Error;
  private recovering?: Promise<void>;
  private markRemoved!: () => void;
  readonly removed: Promise<void>;
  private isRemovedSelf = false;
  /** Back-off between storage reopenings after disk errors in a row (recoverStorage). */
  private recoveryPauseMs = 500;
  private lastRecoveryAt = 0;
  /** The registry as last seen, for when the store is closed (recovering from a disk error). */
  private lastMembers: MemberInfo[] = [];
  /** Removed members whose streams are cut once an election timeout has passed (syncPeers). */
  private readonly cutting = new Set<NodeId>();
  /** A memberAttrs proposal is in flight (publishAttributes). */
  private publishing = false;

  constructor(
    private readonly opts: MemberOptions,
    logger: Logger,
  ) {
    this.log = logger.child({ member: opts.name });
    this.clientUrl = opts.listenClientUrl;
    this.peerUrl = opts.advertisePeerUrl ?? opts.listenPeerUrl;
    this.removed = new Promise((resolve) => {
      this.markRemoved = resolve;
    });
    const self = opts.initialCluster.find((m) => m.name === opts.name);
    if (!self) throw new Error(`--initial-cluster does not name this member (${opts.name})`);
    if (self.peerUrl !== this.peerUrl) {
      const flag = opts.advertisePeerUrl === undefined ? '--listen-peer-urls' : '--initial-advertise-peer-urls';
      throw new Error(`--initial-cluster gives ${opts.name} the peer URL ${self.peerUrl}, but ${flag} is ${this.peerUrl}`);
    }
    this.identity = identityOf(opts.name, opts.initialCluster, opts.initialClusterToken);
    // etcd: 5 s plus two election timeouts, so a request survives one leader change.
    this.requestTimeoutMs = 5000 + 2 * opts.electionTimeoutMs;
    this.noSpace = new NoSpaceAlarm({
      memberId: () => this.memberId,
      log: this.log,
      quotaBackendBytes: opts.quotaBackendBytes,
      alarms: () => this.sm?.alarms(),
      canPropose: () => this.diskFailure === undefined && this.node !== undefined && !this.node.fatalError,
      proposeAlarm: () => this.propose({ op: 'alarm', action: 'ACTIVATE', memberId: this.memberId, alarm: 'NOSPACE' }),
      peerUrls: () =>
        (this.sm?.members() ?? this.lastMembers).filter((m) => m.id !== this.memberId).flatMap((m) => m.peerUrls.slice(0, 1)),
      dbSize: () => this.sm?.dbSize(),
      closed: () => this.closed,
    });
  }

  get memberId(): NodeId {
    return this.identity.memberId;
  }

  get clusterId(): string {
    return this.identity.clusterId;
  }

  async start(): Promise<void> {
    const { opts } = this;
    if (opts.electionTimeoutMs < 5 * opts.heartbeatIntervalMs) {
      throw new Error('--election-timeout must be at least 5 times --heartbeat-interval');
    }
    warnIfNotLoopback(opts.listenClientUrl, '--listen-client-urls', this.log);
    warnIfNotLoopback(opts.listenPeerUrl, '--listen-peer-urls', this.log);
    const fresh = await this.resolveIdentity();
    this.metrics = new MemberMetrics({
      memberId: this.memberId,
      sources: {
        leader: () => this.node?.raft.lead,
        isLeader: () => this.node?.isLeader(),
        isLearner: () => this.node?.raft.isLearner(this.memberId),
        quotaBackendBytes: () => this.opts.quotaBackendBytes,
        committedIndex: () => this.node?.raft.log.commit,
        appliedIndex: () => this.node?.applied,
        pendingProposals: () => this.pendingWrites.size,
        revision: () => this.sm?.revision(),
        compactRevision: () => this.sm?.compactRevision(),
        dbSize: () => this.sm?.dbSize(),
        peers: () => this.transport?.stats(),
      },
    });

    // Bind both ports before touching the data dir, so "port in use" costs nothing.
    const peerServer = http.createServer(
      peerRequestHandler({
        cluster: () => this.clusterInfo(),
        change: (op, body) => this.changeHere(op, body),
      }),
    );
    await listenOn(peerServer, opts.listenPeerUrl, 'peer');
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
    // etcd's gRPC API on the same port: connections that open with the HTTP/2 preface go to the gRPC server,
    // the others to the HTTP server (src/server/grpc/protocol-mux.ts).
    const grpcServer = createGrpcServer(this, { logger: this.log, rpcMetrics: this.metrics.rpc });
    try {
      this.clientListener = await listenWithGrpc(opts.listenClientUrl, clientServer, grpcServer);
    } catch (err) {
      peerServer.close();
      throw err;
    }
    this.peerServer = peerServer;
    this.streamServer = attachStreamServer(clientServer, this, { logger: this.log, rpcMetrics: this.metrics.rpc });

    try {
      await this.openStorage(peerServer, fresh);
    } catch (err) {
      await this.streamServer.close();
      await this.transport?.close();
      await this.stopEngine();
      await this.clientListener.close();
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

  /**
   * Who this member is: from its data dir's member.json when it has one; else a founding member's identity
   * from --initial-cluster, or (--initial-cluster-state existing) the id the running cluster gave it when it
   * was added. Returns whether the identity is new (member.json to be written).
   */
  private async resolveIdentity(): Promise<boolean> {
    const { opts } = this;
    const found = await readIdentity(opts.dataDir);
    if (found) {
      if (found.joined) {
        if (found.name !== opts.name) {
          throw new Error(`data dir ${opts.dataDir} belongs to member ${found.name} (${found.memberId}), not to ${opts.name}; refusing to start`);
        }
      } else {
        checkIdentity(opts.dataDir, found, this.identity);
      }
      this.identity = found;
      if (found.joined) await this.refreshFromPeers();
      return false;
    }
    if (opts.initialClusterState === 'existing') {
      const joined = await discoverJoin(opts);
      this.identity = joined.identity;
      this.discovered = joined.members;
      this.log.info({ memberId: this.memberId, clusterId: this.clusterId }, 'joining an existing cluster');
    }
    return true;
  }

  /** A joined member restarting: its registry may lag the cluster's; the members it names are dialed too. */
  private async refreshFromPeers(): Promise<void> {
    const others = this.opts.initialCluster.filter((m) => m.name !== this.opts.name).map((m) => m.peerUrl);
    const found = await fetchClusterInfo(others, 1000);
    if (found !== undefined && found.info.clusterId === this.clusterId) this.discovered = found.info.members;
  }

  private clusterInfo(): ClusterInfo | undefined {
    if (!this.sm) return undefined;
    return { clusterId: this.clusterId, members: this.sm.members(), founding: this.identity.initialCluster };
  }

  private async openStorage(peerServer: http.Server, fresh: boolean): Promise<void> {
    const { opts } = this;
    await fs.mkdir(opts.dataDir, { recursive: true });
    if (fresh) await writeIdentity(opts.dataDir, this.identity);
    await this.startEngine();
    const sm = this.requireSm();
    const raft = this.requireNode().raft;
    if (raft.confState().removed?.includes(this.memberId)) {
      throw new Error(
        `member ${opts.name} (${this.memberId}) was permanently removed from the cluster; its data dir ` +
          `${opts.dataDir} cannot serve again (add a new member with an empty data dir)`,
      );
    }
    this.transport = new PeerTransport({
      selfId: this.memberId,
      clusterId: this.clusterId,
      peers: new Map(),
      logger: this.log,
      onRoundTrip: this.metrics.observePeerRoundTrip,
      isRemoved: (id) => this.node?.raft.confState().removed?.includes(id) ?? false,
      onRemoved: (by) => {
        this.log.error({ by }, 'a peer says this member was removed from the cluster');
        this.onRemovedFromCluster();
      },
      onMessage: (msg) => {
        if (msg.to === this.memberId) this.node?.step(msg);
      },
    });
    this.transport.attach(peerServer);
    this.syncPeers(sm.members());
    this.requireNode().start();
    this.publishTimer = setInterval(() => this.publishAttributes(), Math.max(200, 2 * opts.heartbeatIntervalMs));
    this.noSpace.start();
  }

  /**
   * Opens the store, the WAL and the Raft node, with the in-memory parts that hang on them (watch hub, lease
   * keeper, read barrier). Run at start and again after a disk error (recoverStorage); the node is started by
   * the caller once the transport exists.
   */
  private async startEngine(): Promise<void> {
    const { opts } = this;
    const faults = opts.faults;
    const sm = await openStore(path.join(opts.dataDir, 'db'), this.log, this.metrics.observeBackendCommit, faults?.backend);
    this.sm = sm;
    await sm.seedMembers(
      this.identity.initialCluster.map((m) => ({ id: m.id, name: m.name, peerUrls: [m.peerUrl], clientUrls: [], isLearner: false })),
    );
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
    const walOpts = { logger: this.log, onFsync: this.metrics.observeWalFsync, injectWriteError: faults?.wal };
    let storage;
    if (await Wal.exists(walDir)) {
      const { wal, contents } = await Wal.open(walDir, walOpts);
      this.wal = wal;
      storage = { hardState: contents.hardState, snapshot, entries: contents.entries };
    } else {
      this.wal = await Wal.create(walDir, walOpts);
      storage = { hardState: { term: 0, vote: NONE, commit: 0 }, snapshot, entries: [] };
    }
    const electionTick = Math.max(2, Math.round(opts.electionTimeoutMs / opts.heartbeatIntervalMs));
    const raft = new Raft(
      {
        id: this.memberId,
        // A joined member knows no configuration until it applies one from the leader's log or snapshot.
        peers: this.identity.joined ? [] : this.identity.initialCluster.map((m) => m.id),
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
      if (out.members) this.syncPeers(out.members);
    });
    node.on('restored', (index) => {
      leases.reset(sm.leases());
      hub.onRestore();
      reads.onApplied(index);
      this.syncPeers(sm.members());
      if (node.raft.confState().removed?.includes(this.memberId)) this.onRemovedFromCluster();
    });
    node.on('confChange', (cc, cs) => this.onConfChange(cc, cs));
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
      if (diskErrorCode(err) !== undefined && !this.closed) this.recoverStorage(err);
    });
    this.node = node;
    this.hub = hub;
    this.leases = leases;
    this.reads = reads;
  }

  /** Closes what startEngine opened (watch streams on this member end; their clients resume elsewhere). */
  private async stopEngine(): Promise<void> {
    this.reads?.close();
    this.leases?.close();
    this.hub?.close();
    await this.node?.stop();
    await this.wal?.close().catch((err: Error) => this.log.warn({ err: err.message }, 'closing the WAL failed'));
    await this.sm?.close().catch((err: Error) => this.log.warn({ err: err.message }, 'closing the backend failed'));
    this.node = undefined;
    this.reads = undefined;
    this.leases = undefined;
    this.hub = undefined;
    this.wal = undefined;
    this.sm = undefined;
  }

  /**
   * A write to the WAL or the backend failed with a disk error (full disk, EIO). What reached the disk is a
   * prefix of what this member meant to write, which is what a crash leaves too, and the WAL repairs a torn
   * tail when reopened: so the member drops everything in memory and reopens its storage, as a restart
   * would, until a write succeeds again. Meanwhile it serves nothing (clients go to other members), and once
   * it can, it raises a NOSPACE alarm cluster-wide so that writes stop until an operator has freed space and
   * disarmed it (`keel alarm disarm`).
   */
  private recoverStorage(err: Error): void {
    if (this.recovering) return;
    this.diskFailure = err;
    this.log.error({ err: err.message, code: diskErrorCode(err) }, 'disk write failed; raising NOSPACE and reopening storage');
    this.noSpace.raise('disk write failed');
    // Back off across failures in a row (a disk that is still full fails again at the first write).
    const now = Date.now();
    this.recoveryPauseMs = now - this.lastRecoveryAt < 10_000 ? Math.min(this.recoveryPauseMs * 2, 5000) : 500;
    this.lastRecoveryAt = now;
    this.recovering = (async () => {
      let pauseMs = this.recoveryPauseMs;
      while (!this.closed) {
        await new Promise((r) => setTimeout(r, pauseMs));
        if (this.closed) break;
        try {
          await this.stopEngine();
          await this.startEngine();
          this.syncPeers(this.requireSm().members());
          const node = this.requireNode();
          node.start();
          this.log.info('storage reopened after a disk error');
          // Writing again: a node that runs a while without failing has written (heartbeats carry commits).
          setTimeout(() => {
            if (this.node === node && !node.fatalError && !this.closed) {
              this.diskFailure = undefined;
              this.log.info('disk writes work again; the NOSPACE alarm stays until it is disarmed');
            }
          }, 2000);
          break;
        } catch (e) {
          this.log.error({ err: (e as Error).message }, 'reopening storage failed; retrying');
          pauseMs = Math.min(pauseMs * 2, 5000);
        }
      }
      this.recovering = undefined;
    })();
  }


  /** The peer transport follows the registry: every member dialed at its peer URL, removed ones cut. */
  private syncPeers(members: MemberInfo[]): void {
    if (members.length > 0) this.lastMembers = members;
    const t = this.transport;
    const node = this.node;
    if (!t) return;
    const removed = new Set(node?.raft.confState().removed ?? []);
    const known = new Set<NodeId>();
    for (const m of [...members, ...this.discovered]) {
      if (m.id === this.memberId || removed.has(m.id) || known.has(m.id) || m.peerUrls.length === 0) continue;
      known.add(m.id);
      t.setPeer(m.id, m.peerUrls[0]);
    }
    for (const id of t.stats().keys()) {
      if (!removed.has(id) || this.cutting.has(id)) continue;
      // Cut one election timeout later: a leader that removed itself hands leadership over when it applies
      // its removal, about when we apply it too, and its TimeoutNow must still get through (the core ignores
      // everything else from a removed member).
      this.cutting.add(id);
      setTimeout(() => {
        this.cutting.delete(id);
        if (this.node?.raft.confState().removed?.includes(id)) this.transport?.removePeer(id);
      }, this.opts.electionTimeoutMs);
    }
    if (members.some((m) => m.id === this.memberId)) this.discovered = [];
  }

  private onConfChange(cc: ConfChangeData, cs: ConfState): void {
    this.syncPeers(this.sm?.members() ?? []);
    for (const w of this.confWaiters) {
      if (w.nodeId === cc.nodeId && w.type === cc.type) {
        this.confWaiters.delete(w);
        w.resolve();
      }
    }
    if (cc.type === 'removeNode' && cc.nodeId === this.memberId && cs.removed?.includes(this.memberId)) {
      this.onRemovedFromCluster();
    }
  }

  /**
   * This member was removed: it stops serving. A leader that removed itself has handed leadership over in
   * the core when it applied the change; it stays up one election timeout more so that the hand-over
   * (TimeoutNow) and the answer to the client that asked go out.
   */
  private onRemovedFromCluster(): void {
    if (this.isRemovedSelf) return;
    this.isRemovedSelf = true;
    this.log.error('this member was removed from the cluster; it will stop');
    // Writes waiting here would only be answered by their timeout (the others ignore a removed member's
    // proposals): answered now, a client sends them again elsewhere (with their request id, safely).
    for (const w of this.pendingWrites.values()) w.reject(Errors.stopped());
    this.pendingWrites.clear();
    const leader = this.node?.isLeader() ?? false;
    setTimeout(() => this.markRemoved(), leader ? this.opts.electionTimeoutMs : 2 * this.opts.heartbeatIntervalMs);
  }

  /** Publishes this member's name and client URL in the registry once it runs (etcd's publish), retried
   *  until the registry shows them. */
  private publishAttributes(): void {
    const sm = this.sm;
    const node = this.node;
    if (!sm || !node || this.closed || this.diskFailure) return;
    const self = sm.members().find((m) => m.id === this.memberId);
    if (self === undefined) return; // not applied our own addition yet
    if (self.name === this.opts.name && self.clientUrls.length === 1 && self.clientUrls[0] === this.clientUrl) {
      clearInterval(this.publishTimer);
      this.publishTimer = undefined;
      return;
    }
    if (!this.leaderReachable(node) || this.publishing) return;
    this.publishing = true;
    this.propose({ op: 'memberAttrs', memberId: this.memberId, name: this.opts.name, clientUrls: [this.clientUrl] })
      .catch((err: Error) => this.log.debug({ err: err.message }, 'publishing member attributes failed; will retry'))
      .finally(() => {
        this.publishing = false;
      });
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
    this.noSpace.checkWrite();
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
    this.noSpace.checkWrite();
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
    this.noSpace.checkWrite();
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

  // ---- membership ----------------------------------------------------------------------------------------

  async memberList(req: MemberListRequest): Promise<MemberListResponse> {
    const sm = this.requireSm();
    if (req.linearizable) await this.requireReads().wait();
    return { header: this.clusterHeader(), members: sm.members() };
  }

  async memberAdd(req: MemberAddRequest): Promise<MemberAddResponse> {
    validateMemberAdd(req);
    return (await this.change('add', req)) as MemberAddResponse;
  }

  async memberRemove(req: MemberRemoveRequest): Promise<MemberRemoveResponse> {
    validateMemberId(req);
    return (await this.change('remove', req)) as MemberRemoveResponse;
  }

  async memberPromote(req: MemberPromoteRequest): Promise<MemberPromoteResponse> {
    validateMemberId(req);
    return (await this.change('promote', req)) as MemberPromoteResponse;
  }

  /**
   * A membership change from a client: made here if this member leads, else forwarded to the leader's peer
   * listener (membership.ts). Retried while there is no leader or leadership moves, within the request
   * timeout; a refusal by the leader is the answer.
   */
  private async change(op: ChangeOp, req: object): Promise<unknown> {
    const deadline = Date.now() + this.requestTimeoutMs;
    for (;;) {
      const node = this.requireNode();
      const lead = node.raft.lead;
      try {
        if (lead === this.memberId) return await this.changeHere(op, req);
        if (lead !== NONE) {
          const url = this.requireSm().members().find((m) => m.id === lead)?.peerUrls[0];
          if (url !== undefined) return await forwardChange(url, op, req, Math.max(1, deadline - Date.now()));
        }
      } catch (err) {
        // Not the leader any more, or refused before anything was sent: ask the next one. Anything else
        // (a refusal, or a timeout after which the change may still be made) is the answer.
        if (!changeNotMade(err)) throw err;
        if (Date.now() + this.opts.heartbeatIntervalMs >= deadline) throw err;
      }
      if (Date.now() + this.opts.heartbeatIntervalMs >= deadline) throw Errors.timeout();
      await new Promise((r) => setTimeout(r, this.opts.heartbeatIntervalMs));
    }
  }

  /** A membership change on this member, which must be the leader (peer route and change()). */
  private async changeHere(op: ChangeOp, body: unknown): Promise<unknown> {
    const node = this.requireNode();
    const sm = this.requireSm();
    if (!node.isLeader()) throw new KvError(GrpcCode.Unavailable, NOT_LEADER);
    if (op === 'nospace') {
      const memberId = (body as { memberId?: unknown } | null)?.memberId;
      if (typeof memberId !== 'string' || !sm.members().some((m) => m.id === memberId)) throw Errors.memberNotFound();
      await this.propose({ op: 'alarm', action: 'ACTIVATE', memberId, alarm: 'NOSPACE' });
      return {};
    }
    const raft = node.raft;
    const planned = planChange(op, body, {
      members: sm.members(),
      confState: raft.confState(),
      clusterId: this.clusterId,
      isActive: (id) => id === this.memberId || (this.transport?.isActive(id, this.opts.electionTimeoutMs) ?? false),
      isLearnerReady: (id) => raft.isLearnerReady(id),
    });
    if ('refused' in planned) {
      if (planned.refused === Errors.learnerNotReady().message) this.metrics.onLearnerPromoteFailed('not ready');
      throw planned.error;
    }
    const { type, nodeId, context, added } = planned;
    const applied = new Promise<void>((resolve, reject) => {
      const w: ConfWaiter = { type, nodeId, resolve };
      this.confWaiters.add(w);
      setTimeout(() => {
        if (this.confWaiters.delete(w)) reject(Errors.timeout());
      }, this.requestTimeoutMs);
    });
    if (!node.proposeConfChange({ type, nodeId, context })) {
      for (const w of this.confWaiters) if (w.nodeId === nodeId && w.type === type) this.confWaiters.delete(w);
      applied.catch(() => undefined);
      throw Errors.reconfigRefused(raft.lastRejection ?? 'the membership change was refused');
    }
    this.log.info({ change: type, member: nodeId }, 'membership change proposed');
    await applied;
    if (type === 'promoteLearner') this.metrics.onLearnerPromoted();
    const list = this.requireSm().members();
    const header = this.clusterHeader();
    if (added !== undefined) return { header, member: list.find((m) => m.id === nodeId) ?? added, members: list };
    return { header, members: list };
  }

  // ---- alarms ---------------------------------------------------------------------------------------------

  async alarm(req: AlarmRequest): Promise<AlarmResponse> {
    validateAlarm(req);
    const sm = this.requireSm();
    const type = req.alarm ?? 'NONE';
    if (req.action === 'GET') {
      await this.requireReads().wait();
      const alarms = sm.alarms().filter((a) => type === 'NONE' || a.alarm === type);
      return { header: this.header(sm.revision()), alarms };
    }
    const r = expect(
      await this.propose({ op: 'alarm', action: req.action, memberId: req.memberId ?? '', alarm: type }),
      'alarm',
    );
    if (req.action === 'DEACTIVATE' && r.alarms.some((a) => a.memberId === this.memberId)) this.diskFailure = undefined;
    return { header: this.header(r.revision), alarms: r.alarms };
  }

  // ---- maintenance ---------------------------------------------------------------------------------------

  async hashKV(req: HashKVRequest): Promise<HashKVResponse> {
    if (!Number.isSafeInteger(req.revision) || req.revision < 0) throw Errors.invalid('invalid revision');
    const r = await this.requireSm().hashKV(req.revision);
    return { header: this.header(this.requireSm().revision()), hash: r.hash, compactRevision: r.compactRevision, hashRevision: r.revision };
  }

  async hash(): Promise<HashResponse> {
    const sm = this.requireSm();
    return { header: this.header(sm.revision()), hash: await sm.hash() };
  }

  async defragment(): Promise<DefragmentResponse> {
    const sm = this.requireSm();
    await sm.defragment();
    return { header: this.header(sm.revision()) };
  }

  /** etcd's MoveLeader: answered by the leader only ("etcdserver: not leader" elsewhere; etcdctl finds it). */
  async moveLeader(req: MoveLeaderRequest): Promise<MoveLeaderResponse> {
    if (typeof req.targetId !== 'string' || !/^[0-9a-f]{16}$/.test(req.targetId)) {
      throw Errors.invalid('invalid targetID (a member id)');
    }
    // The core gives up after one election timeout; the news of a new leader may take a little longer.
    await transferLeadership(this.requireNode(), req.targetId, 2 * this.opts.electionTimeoutMs, this.log);
    return { header: this.header(this.sm?.revision() ?? 0) };
  }

  async snapshot(): Promise<SnapshotResponse> {
    const { header, bytes } = await backupFile({
      snapshot: () => this.requireSm().snapshot(),
      header: (revision) => this.header(revision),
    });
    return { header, data: bytes };
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

  /** A txn's own header is the member's; its nested responses carry only their revision, as etcd's do. */
  private withHeaders(txn: TxnResponse): TxnResponse {
    return { ...nestedHeaders(txn), header: this.header(txn.header.revision) };
  }

  /** etcd's Cluster API headers carry no revision (membership is not in the key-value store there). */
  private clusterHeader(): ResponseHeader {
    return { ...this.header(0), revision: 0 };
  }

  async status(): Promise<StatusResponse> {
    const node = this.requireNode();
    const sm = this.requireSm();
    const raft = node.raft;
    const errors: string[] = [];
    if (node.fatalError) errors.push(node.fatalError.message);
    if (this.diskFailure) errors.push(`disk write failed: ${this.diskFailure.message}`);
    for (const a of sm.alarms()) errors.push(`memberID:${a.memberId} alarm:${a.alarm} `);
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
      isLearner: raft.isLearner(this.memberId),
      errors,
      name: this.opts.name,
    };
  }

  async health(): Promise<HealthResponse> {
    const node = this.node;
    if (this.isRemovedSelf) return { health: false, reason: 'member was removed from the cluster' };
    if (this.diskFailure) return { health: false, reason: 'ALARM NOSPACE' };
    if (!node || this.closed) return { health: false, reason: 'member is stopping' };
    if (node.fatalError) return { health: false, reason: node.fatalError.message };
    // etcd's /health: unhealthy with any alarm raised (3.5 names it in the reason).
    const alarms = this.sm?.alarms() ?? [];
    if (alarms.length > 0) return { health: false, reason: `ALARM ${alarms.map((a) => a.alarm).join(',')}` };
    if (node.raft.lead === NONE) return { health: false, reason: 'RAFT NO LEADER' };
    return { health: true, reason: '' };
  }

  isLeader(): boolean {
    return this.node?.raft.role === StateRole.Leader;
  }

  private requireNode(): RaftNode {
    if (this.closed) throw Errors.stopped();
    if (this.isRemovedSelf) throw Errors.memberRemoved();
    if (this.diskFailure && (!this.node || this.node.fatalError)) {
      throw new KvError(GrpcCode.Unavailable, `etcdserver: member is recovering from a disk error: ${this.diskFailure.message}`);
    }
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
    if (!this.isRemovedSelf) await this.handOverLeadership();
    this.closed = true;
    clearInterval(this.publishTimer);
    this.noSpace.stop();
    await this.recovering;
    this.reads?.close();
    this.leases?.close();
    this.hub?.close();
    // Client streams first (no new requests), then the loop (the batch in progress completes), then the peer
    // streams (a server does not close while upgraded sockets are open), then the listeners.
    await this.streamServer?.close();
    await this.node?.stop();
    await this.transport?.close();
    await Promise.all([this.clientListener?.close(), closeServer(this.peerServer)]);
    for (const w of this.pendingWrites.values()) w.reject(Errors.stopped());
    this.pendingWrites.clear();
    await this.stopEngine();
    this.log.info('member stopped');
  }
}

/** The nested responses of a txn with headers that hold only their revision (etcd 3.4 fills no more). */
function nestedHeaders(txn: TxnResponse): TxnResponse {
  const only = (h: ResponseHeader): ResponseHeader => ({ clusterId: '', memberId: '', revision: h.revision, raftTerm: 0 });
  const fix = (op: ResponseOp): ResponseOp => {
    switch (op.type) {
      case 'range':
        return { type: 'range', range: { ...op.range, header: only(op.range.header) } };
      case 'put':
        return { type: 'put', put: { ...op.put, header: only(op.put.header) } };
      case 'deleteRange':
        return { type: 'deleteRange', deleteRange: { ...op.deleteRange, header: only(op.deleteRange.header) } };
      case 'txn':
        return { type: 'txn', txn: { ...nestedHeaders(op.txn), header: only(op.txn.header) } };
    }
  };
  return { header: txn.header, succeeded: txn.succeeded, responses: txn.responses.map(fix) };
}

/** Narrows an apply result to the kind the command gives; anything else is a bug worth a clear error. */
function expect<K extends CommandResult['op']>(r: CommandResult, op: K): Extract<CommandResult, { op: K }> {
  if (r.op !== op) throw new KvError(GrpcCode.Internal, `etcdserver: unexpected apply result ${r.op} for ${op}`);
  return r as Extract<CommandResult, { op: K }>;
}

async function openStore(
  dir: string,
  log: Logger,
  onCommit: (seconds: number) => void,
  injectWriteError?: () => Error | undefined,
): Promise<MvccStore> {
  try {
    return await MvccStore.open(dir, log, { onCommit, injectWriteError });
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    if (cause && /lock/i.test(cause.message)) {
      throw new Error(`data dir ${path.dirname(dir)} is in use by another process (${cause.message})`);
    }
    throw new Error(`cannot open the backend at ${dir}: ${(err as Error).message}${cause ? `: ${cause.message}` : ''}`);
  }
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
