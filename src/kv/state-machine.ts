// The contract between the Raft driver (src/server/member.ts) and the replicated state machine. The
// foundation's machine (src/kv/store.ts) keeps plain keys on LevelDB; the MVCC store of the next issue
// fills the same contract.

import type { Entry, Snapshot } from '../raft/core/types';
import type { KeyValue, RangeRequest } from './api';

/** A write, as proposed through Raft (msgpackr-encoded in Entry.data, wrapped in a Proposal). */
export type Command =
  | { op: 'put'; key: Buffer; value: Buffer; prevKv?: boolean }
  | { op: 'delete'; key: Buffer; rangeEnd?: Buffer; prevKv?: boolean };

/** Entry.data of a normal entry: the command with the id of the request that proposed it, so that the
 *  member that took the request can answer it when the entry is applied (on that member). */
export interface Proposal {
  /** `<member id>-<counter>`: unique within the cluster. */
  id: string;
  cmd: Command;
}

export type CommandResult =
  | { op: 'put'; revision: number; prevKv?: KeyValue }
  | { op: 'delete'; revision: number; deleted: number; prevKvs: KeyValue[] };

export interface AppliedCommand {
  id: string;
  result: CommandResult;
}

export interface LocalRange {
  kvs: KeyValue[];
  more: boolean;
  count: number;
  revision: number;
}

export interface StateMachine {
  /** Index of the last entry applied, read back from the same LevelDB batches that applied them. */
  appliedIndex(): number;
  /** The store's current revision (bumped once per write command that changes something, as in etcd). */
  revision(): number;
  /**
   * Applies committed entries, in order, in ONE LevelDB write batch that also records the applied index
   * (the last entry's index, no-ops included), so a crash never applies an entry twice or skips one.
   * Entries at or below appliedIndex() are skipped. Empty data is a no-op. Returns, per entry index, the
   * results of the commands applied.
   */
  apply(entries: Entry[]): Promise<Map<number, AppliedCommand>>;
  /** Reads from the local state (the caller has made it linearizable if it must be). */
  range(req: RangeRequest): Promise<LocalRange>;
  /** A consistent dump of the whole state at appliedIndex(). */
  snapshot(): Promise<Uint8Array>;
  /** Replaces the whole state by a snapshot's, atomically (one batch): a crash leaves the old or the new. */
  restore(snapshot: Snapshot): Promise<void>;
  /** Bytes on disk. */
  dbSize(): Promise<number>;
  close(): Promise<void>;
}
