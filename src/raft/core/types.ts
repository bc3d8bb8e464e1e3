// The data that the Raft core exchanges with its driver. Everything here is plain data, so that it can be
// encoded with msgpackr for the WAL and the wire without adapters.

/** A member id: 16 lowercase hex digits (etcd prints member ids the same way). */
export type NodeId = string;

/** No vote cast / no leader known. */
export const NONE: NodeId = '';

export const enum EntryType {
  /** Application data for the state machine. An empty `data` is the leader's no-op at the start of a term. */
  Normal = 0,
  /** A membership change: `data` is a ConfChangeData (see confchange.ts). It takes effect on each member
   *  when that member applies it (the driver calls Raft.applyConfChange), as in etcd-raft. */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must be durable before a member answers anyone: the Raft paper's "persistent state on all servers". */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** A configuration: who votes, and who only receives the log (etcd-raft's ConfState, without joint consensus). */
export interface ConfState {
  voters: NodeId[];
  /** Members that receive appends, snapshots and heartbeats but never vote, campaign or count for a quorum. */
  learners: NodeId[];
  /**
   * Every id ever removed from the configuration: members ignore them, so that a removed member cannot
   * disrupt the cluster, and an id is never reused (etcd's ErrIDRemoved). Absent: none.
   */
  removed?: NodeId[];
}

export interface SnapshotMeta {
  index: number;
  term: number;
  /** The voting members at `index`. */
  voters: NodeId[];
  /** The learners at `index`. Absent in snapshots written before learners existed, which had none. */
  learners?: NodeId[];
  /** The ids removed from the configuration up to `index` (ConfState.removed). Absent: none. */
  removed?: NodeId[];
}

/** A dump of the state machine at `meta.index`; `data` is opaque to Raft. */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export const enum MessageType {
  /** Leader -> follower: entries after (logIndex, logTerm), and the leader's commit index. */
  App = 1,
  AppResp = 2,
  Vote = 3,
  VoteResp = 4,
  PreVote = 5,
  PreVoteResp = 6,
  Heartbeat = 7,
  HeartbeatResp = 8,
  /** Leader -> follower: one chunk of a snapshot (InstallSnapshot). */
  Snap = 9,
  /** Follower -> leader: chunk received (or the transfer must restart: reject). */
  SnapResp = 10,
  /** Follower -> leader: a proposal forwarded to the leader. */
  Prop = 11,
  /** Follower -> leader: a read-index request; leader -> follower: its answer (index in `index`). */
  ReadIndex = 12,
  ReadIndexResp = 13,
  /** Leader -> transferee: campaign now, without waiting for the election timeout. */
  TimeoutNow = 14,
}

/**
 * The context of the vote requests of a candidate that campaigns because the leader told it to (leadership
 * transfer, thesis §3.10): voters grant it even though they heard from that leader within the election
 * timeout. etcd-raft's campaignTransfer, with the same bytes.
 */
export const CAMPAIGN_TRANSFER: Readonly<Uint8Array> = new TextEncoder().encode('CampaignTransfer');

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: index of the entry before `entries`; AppResp: the last index accepted or the rejected index;
   *  Vote/PreVote: the candidate's last log index; Snap: the snapshot's index; ReadIndexResp: the read index. */
  index: number;
  /** App: term of the entry at `index`; Vote/PreVote: the candidate's last log term. */
  logTerm: number;
  entries?: Entry[];
  /** App / Heartbeat: the leader's commit index (for heartbeats, capped at the follower's match). */
  commit?: number;
  /** AppResp / VoteResp / PreVoteResp / SnapResp: refused. */
  reject?: boolean;
  /** AppResp with reject: the follower's hint, the last index at which it may match, and that entry's term. */
  rejectHint?: number;
  hintTerm?: number;
  /** Snap: metadata, chunk offset and bytes, and whether this is the last chunk. SnapResp: next offset wanted. */
  snapshot?: SnapshotMeta;
  offset?: number;
  chunk?: Uint8Array;
  done?: boolean;
  /** ReadIndex / ReadIndexResp / Heartbeat / HeartbeatResp: the read request's context.
   *  Vote: CAMPAIGN_TRANSFER when the candidate campaigns because the leader handed leadership over. */
  context?: Uint8Array;
}

/** A read that is linearizable once the member has applied up to `index`. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

export const enum StateRole {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

/** Soft state: changes that need no persistence but that the driver logs and reports. */
export interface SoftState {
  leader: NodeId;
  role: StateRole;
}

/**
 * One batch of work for the driver, to be handled in this order:
 * 1. install `snapshot` (if any) and persist `hardState` and `entries` (one fsync if `mustSync`);
 * 2. send `messages`;
 * 3. apply `committed` entries, in order;
 * 4. call `advance(ready)`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  /** Entries to append to the WAL. Their first index may be below the WAL's last: the WAL truncates first. */
  entries: Entry[];
  /** A snapshot received from the leader, to install before applying anything further. */
  snapshot?: Snapshot;
  committed: Entry[];
  messages: Message[];
  readStates: ReadState[];
  mustSync: boolean;
}

export interface RaftConfig {
  id: NodeId;
  /**
   * Voting members, this one included, used when there is no snapshot yet (a fresh cluster). Empty for a
   * member joining a running cluster (etcd's --initial-cluster-state existing): it knows no configuration,
   * so it never campaigns, until it applies a ConfChange entry or installs a snapshot from the leader;
   * both carry the whole configuration.
   */
  peers: NodeId[];
  /** Ticks without hearing from a leader before a follower campaigns; randomized in [e, 2e). Default 10. */
  electionTick?: number;
  /** Ticks between heartbeats. Default 1. */
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Upper bound on the bytes of entries in one App message. Default 1 MiB. */
  maxSizePerMsg?: number;
  /** App messages in flight per follower in the replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Bytes per InstallSnapshot chunk. Default 1 MiB. */
  snapshotChunkSize?: number;
  /** Seed of the PRNG that randomizes election timeouts. */
  seed: number;
}

/** What a restarting member recovered from its disk. */
export interface RaftStorageState {
  hardState: HardState;
  snapshot?: Snapshot;
  /** Entries after the snapshot's index (or from index 1), contiguous. May also start below the snapshot
   *  index: the retained tail that lets slow followers catch up from the log. */
  entries: Entry[];
}
