// One command of the log, applied to the state as the commands before it left it. Everything here is a
// function of the command and the replicated state, so every member computes the same result. A command
// the state refuses gives an 'error' result (thrown as KvError below, caught by the caller, which then
// discards the command's overlay: nothing of it is written).

import { Errors, KvError, MAX_LEASE_TTL, type Event } from '../api';
import type { Command, CommandResult, LeaseRecord } from '../state-machine';
import { executeDelete, executePut } from './apply-kv';
import { executeTxnCommand } from './apply-txn';
import { decodeLeaseKeysKey, leaseKey, leaseKeysBounds, leaseKeysKey } from './keys';
import { getLatest } from './mvcc-read';
import { encodeLease } from './records';
import type { Overlay, Reader } from './reader';
import { checkDeleteShape, checkPutShape, checkTxnShape } from './txn-check';
import { WriteTxn } from './write-txn';

export interface CommandEnv {
  /** The command's own overlay (discarded if it is refused) and a reader through it. */
  overlay: Overlay;
  reader: Reader;
  /** The store's revision and compact revision before the command. */
  revision: number;
  compactRevision: number;
  /** The lease as the commands before this one left it. */
  lease(id: number): LeaseRecord | undefined;
}

export interface CommandOutcome {
  result: CommandResult;
  /** The changes, if the command made a revision. */
  events?: Event[];
  /** A compaction to record (the new compact revision). */
  compactTo?: number;
}

export async function executeCommand(env: CommandEnv, cmd: Command): Promise<CommandOutcome> {
  try {
    return await execute(env, cmd);
  } catch (err) {
    if (err instanceof KvError) return { result: { op: 'error', revision: env.revision, error: err } };
    throw err;
  }
}

function refuse(err: KvError | undefined): void {
  if (err !== undefined) throw err;
}

function withEvents(w: WriteTxn, result: CommandResult): CommandOutcome {
  return w.changed ? { result, events: w.events } : { result };
}

async function execute(env: CommandEnv, cmd: Command): Promise<CommandOutcome> {
  const w = new WriteTxn(env.overlay, env.revision);
  switch (cmd.op) {
    case 'put': {
      refuse(checkPutShape(cmd.req));
      // etcd checks the lease before it looks at the key.
      const lease = cmd.req.lease ?? 0;
      if (lease !== 0 && env.lease(lease) === undefined) throw Errors.leaseNotFound();
      const resp = await executePut(env.reader, w, cmd.req);
      const result: CommandResult = { op: 'put', revision: w.rev };
      if (resp.prevKv !== undefined) result.prevKv = resp.prevKv;
      return withEvents(w, result);
    }
    case 'delete': {
      refuse(checkDeleteShape(cmd.req));
      const resp = await executeDelete(env.reader, w, cmd.req);
      return withEvents(w, { op: 'delete', revision: w.currentRev, deleted: resp.deleted, prevKvs: resp.prevKvs });
    }
    case 'txn': {
      refuse(checkTxnShape(cmd.req));
      const txn = await executeTxnCommand(
        {
          reader: env.reader,
          w,
          compactRevision: env.compactRevision,
          leaseExists: (id) => env.lease(id) !== undefined,
        },
        cmd.req,
      );
      return withEvents(w, { op: 'txn', revision: w.currentRev, txn });
    }
    case 'compact': {
      // etcd's updateCompactRev: compacting at or below the current compact revision is refused.
      const rev = cmd.req.revision;
      if (rev <= env.compactRevision) throw Errors.compacted();
      if (rev > env.revision) throw Errors.futureRevision();
      return { result: { op: 'compact', revision: env.revision }, compactTo: rev };
    }
    case 'leaseGrant': {
      if (cmd.ttl > MAX_LEASE_TTL) throw Errors.leaseTtlTooLarge();
      if (env.lease(cmd.id) !== undefined) throw Errors.leaseExists();
      env.overlay.put(leaseKey(cmd.id), encodeLease({ id: cmd.id, ttl: cmd.ttl, remainingTtl: cmd.ttl }));
      return { result: { op: 'leaseGrant', revision: env.revision, id: cmd.id, ttl: cmd.ttl } };
    }
    case 'leaseRevoke': {
      if (env.lease(cmd.id) === undefined) throw Errors.leaseNotFound();
      await revoke(env, w, cmd.id);
      return withEvents(w, { op: 'leaseRevoke', revision: w.currentRev });
    }
    case 'leaseKeepAlive': {
      const l = env.lease(cmd.id);
      if (l === undefined) return { result: { op: 'leaseKeepAlive', revision: env.revision, id: cmd.id, ttl: 0 } };
      env.overlay.put(leaseKey(l.id), encodeLease({ ...l, remainingTtl: l.ttl }));
      return { result: { op: 'leaseKeepAlive', revision: env.revision, id: l.id, ttl: l.ttl } };
    }
    case 'leaseCheckpoint': {
      for (const c of cmd.checkpoints) {
        const l = env.lease(c.id);
        if (l !== undefined) env.overlay.put(leaseKey(l.id), encodeLease({ ...l, remainingTtl: c.remainingTtl }));
      }
      return { result: { op: 'leaseCheckpoint', revision: env.revision } };
    }
    case 'memberAttrs':
    case 'alarm':
      // The registry and the alarms are meta records of the store, changed by MvccStore.applyNow itself.
      throw new Error(`mvcc store: ${cmd.op} is applied by the store, not as a key-value command`);
  }
}

/** Deletes every key attached to the lease, in key order (etcd's lessor sorts them), at one revision, and
 *  the lease itself. */
async function revoke(env: CommandEnv, w: WriteTxn, id: number): Promise<void> {
  const attached: Buffer[] = [];
  for await (const chunk of env.reader.scanKeys(leaseKeysBounds(id))) {
    for (const k of chunk) {
      const decoded = decodeLeaseKeysKey(k);
      if (decoded !== undefined) attached.push(decoded.key);
    }
  }
  for (const key of attached) {
    const rec = await getLatest(env.reader, key);
    // The index and the Latest table are written in the same batches; a mismatch would be a bug, and the
    // entry is dropped either way.
    if (rec !== undefined && rec.lease === id) w.del(key, rec);
    else env.overlay.del(leaseKeysKey(id, key));
  }
  env.overlay.del(leaseKey(id));
}

