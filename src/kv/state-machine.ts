// The contract between the Raft driver (src/server/member.ts) and the replicated state machine (the MVCC
// store, src/kv/mvcc/). Everything a command does is decided from the command and the replicated state
// alone (no clock, no randomness, no member-local state), so that every member reaches the same state.

import type { Entry, Snapshot } from '../raft/core/types';
import type {
  AlarmMember,
  AlarmType,
  ClientRequestId,
  CompactionRequest,
  DeleteRangeRequest,
  Event,
  KeyValue,
  KvError,
  MemberInfo,
  PutRequest,
  RangeRequest,
  TxnRequest,
  TxnResponse,
} from './api';

/** A write, as proposed through Raft (msgpackr-encoded in Entry.data, wrapped in a Proposal). Requests
 *  are checked (src/kv/validate.ts) before they are proposed; the store checks again what depends on the
 *  state (leases exist, keys exist for ignoreValue, revisions not compacted). */
export type Command =
  | { op: 'put'; req: Omit<PutRequest, 'requestId'> }
  | { op: 'delete'; req: Omit<DeleteRangeRequest, 'requestId'> }
  | { op: 'txn'; req: Omit<TxnRequest, 'requestId' | 'serializable'> }
  | { op: 'compact'; req: CompactionRequest }
  /** `id` is chosen by the proposing member (random when the client gave none); `ttl` already raised to
   *  the minimum. */
  | { op: 'leaseGrant'; id: number; ttl: number }
  | { op: 'leaseRevoke'; id: number }
  /** A keep-alive: replicated, so every renewal is also a checkpoint (remaining TTL = TTL) that survives
   *  restarts and leader changes. etcd renews in the leader's memory only; see the README. */
  | { op: 'leaseKeepAlive'; id: number }
  /** The leader's periodic record of the remaining TTL of leases, so a restart does not reset them. */
  | { op: 'leaseCheckpoint'; checkpoints: { id: number; remainingTtl: number }[] }
  /** A member publishes its name and client URLs once it runs (etcd's publish); ignored for a non-member. */
  | { op: 'memberAttrs'; memberId: string; name: string; clientUrls: string[] }
  /** Raises or clears an alarm (etcd's Alarm request); memberId '' with DEACTIVATE: every member's. */
  | { op: 'alarm'; action: 'ACTIVATE' | 'DEACTIVATE'; memberId: string; alarm: AlarmType };

/** Entry.data of a normal entry: the command with the id of the request that proposed it, so that the
 *  member that took the request can answer it when the entry is applied (on that member). */
export interface Proposal {
  /** `<member id>-<counter>`: unique within the cluster. */
  id: string;
  /** The client's deduplication id, for put / delete / txn. */
  requestId?: ClientRequestId;
  cmd: Command;
}

/** What applying a command gave. A command refused by the state (unknown lease, compacted revision, key
 *  missing for ignoreValue, ...) gives `error` and changes nothing. */
export type CommandResult =
  | { op: 'put'; revision: number; prevKv?: KeyValue }
  | { op: 'delete'; revision: number; deleted: number; prevKvs: KeyValue[] }
  /** The header of `txn` and of its nested responses is filled by the member; the store leaves the
   *  revision it served them at in `header.revision` and zeros/empties elsewhere. */
  | { op: 'txn'; revision: number; txn: TxnResponse }
  | { op: 'compact'; revision: number }
  | { op: 'leaseGrant'; revision: number; id: number; ttl: number }
  | { op: 'leaseRevoke'; revision: number }
  /** ttl 0: the lease does not exist. */
  | { op: 'leaseKeepAlive'; revision: number; id: number; ttl: number }
  | { op: 'leaseCheckpoint'; revision: number }
  | { op: 'memberAttrs'; revision: number }
  /** The alarms the command raised or cleared. */
  | { op: 'alarm'; revision: number; alarms: AlarmMember[] }
  | { op: 'error'; revision: number; error: KvError };

export interface AppliedCommand {
  id: string;
  result: CommandResult;
}

/** Every event of one revision, in the order the txn made them. */
export interface RevisionEvents {
  revision: number;
  /** prevKv is always filled when the key existed before (the hub strips it for watchers that did not ask). */
  events: Event[];
}

/** A lease as the replicated state knows it. Expiry times are not replicated (they are member-local, see
 *  src/kv/lessor.ts); the remaining TTL is, as of the last grant, keep-alive or checkpoint. */
export interface LeaseRecord {
  id: number;
  /** Granted TTL, seconds. */
  ttl: number;
  /** Remaining seconds as of the last grant / keep-alive (= ttl) or checkpoint. */
  remainingTtl: number;
}

/** How the leases changed in one apply() call, for the member's lessor. */
export interface LeaseChanges {
  /** Granted, kept alive or checkpointed: the record after the change. */
  upserted: LeaseRecord[];
  /** Revoked (by a client or by expiry). */
  removed: number[];
}

export interface ApplyOutput {
  /** Per entry index, the command applied there and its result (entries that proposed nothing: absent). */
  results: Map<number, AppliedCommand>;
  /** The revisions made by these entries, ascending, for the watch hub. */
  changes: RevisionEvents[];
  leases: LeaseChanges;
  /** The member registry after these entries, when they changed it (a ConfChange entry or memberAttrs). */
  members?: MemberInfo[];
  /** The alarms after these entries, when they changed them. */
  alarms?: AlarmMember[];
}

export interface LocalRange {
  kvs: KeyValue[];
  more: boolean;
  count: number;
  /** The store's current revision when the range was served (not the requested one), as etcd's header. */
  revision: number;
}

export interface StateMachine {
  /** Index of the last entry applied, read back from the same LevelDB batches that applied them. */
  appliedIndex(): number;
  /** The store's current revision (bumped once per write command that changes something, as in etcd). */
  revision(): number;
  /** Revisions below this are gone (reads and watches below it fail with Errors.compacted()). */
  compactRevision(): number;
  /**
   * Applies committed entries, in order, in ONE LevelDB write batch that also records the applied index
   * (the last entry's index, no-ops included), so a crash never applies an entry twice or skips one.
   * Entries at or below appliedIndex() are skipped. Empty data and conf changes are no-ops; a malformed
   * entry is a no-op too (logged), the same on every member.
   */
  apply(entries: Entry[]): Promise<ApplyOutput>;
  /** Reads from the local state (the caller has made it linearizable if it must be). Throws KvError
   *  (compacted, future revision). */
  range(req: RangeRequest): Promise<LocalRange>;
  /** Evaluates a txn with no writes in either branch against the local state, at one point in time. */
  readTxn(req: TxnRequest): Promise<{ revision: number; txn: TxnResponse }>;
  /** The events of revisions [fromRev, toRev] (at most `maxRevisions` revisions, from fromRev up), from
   *  history. Throws Errors.compacted() if fromRev < compactRevision(). */
  events(fromRev: number, toRev: number, maxRevisions: number): Promise<RevisionEvents[]>;
  /** Every lease, from the replicated state. */
  leases(): LeaseRecord[];
  /** The keys attached to a lease, sorted. */
  leaseKeys(id: number): Promise<Buffer[]>;
  /** Resolves when the physical compaction up to `revision` (already applied) has finished. */
  compacted(revision: number): Promise<void>;
  /** A consistent dump of the whole state at appliedIndex() (MVCC history, leases, deduplication table). */
  snapshot(): Promise<Uint8Array>;
  /** Replaces the whole state by a snapshot's, atomically (one batch): a crash leaves the old or the new. */
  restore(snapshot: Snapshot): Promise<void>;
  /** The member registry (replicated: every ConfChange entry applied changes it). */
  members(): MemberInfo[];
  /** The alarms raised (replicated). */
  alarms(): AlarmMember[];
  /** Writes the founding members into a store that has no registry yet: a new member of a new cluster, a
   *  member joining one whose log starts at index 1, or a data dir written before the registry existed (when
   *  membership could not change, so the founding members are the members); else a no-op. */
  seedMembers(members: MemberInfo[]): Promise<void>;
  /** Replaces the registry and clears every alarm (`keel snapshot restore`: a new cluster, new member ids). */
  resetCluster(members: MemberInfo[]): Promise<void>;
  /** etcd's HashKV (see MvccStore.hashKV); revision 0: the current one. Throws compacted / future revision. */
  hashKV(revision: number): Promise<{ hash: number; revision: number; compactRevision: number }>;
  /** etcd's Hash: over the whole key-value state. */
  hash(): Promise<number>;
  /** etcd's Defragment. */
  defragment(): Promise<void>;
  /** Bytes on disk. */
  dbSize(): Promise<number>;
  close(): Promise<void>;
}
