// The meta records of the store on disk: creating them in an empty LevelDB dir, refusing a dir that holds
// something else, and loading what the store keeps in memory (state, compaction progress, lease table).

import { Table, LEASES_BOUNDS, LEGACY_APPLIED, META_COMPACTION, META_FORMAT, META_STATE, decodeLeaseKey } from './keys';
import {
  CorruptDataError,
  FORMAT,
  decodeCompaction,
  decodeLease,
  decodeState,
  encodeCompaction,
  encodeState,
  type CompactionProgress,
  type MetaState,
} from './records';
import { DbReader, type Db, type Reader } from './reader';
import type { LeaseRecord } from '../state-machine';
import type { AlarmMember, MemberInfo } from '../api';
import { META_ALARMS, META_MEMBERS, decodeAlarms, decodeMembers } from './cluster-records';

/** The revision of an empty store (etcd's): the first write of a new cluster gets revision 2. */
export const INITIAL_REVISION = 1;

export async function readState(r: Reader): Promise<MetaState> {
  const v = await r.get(META_STATE);
  if (v === undefined) throw new Error('mvcc store: the state record is missing');
  return decodeState(v, META_STATE);
}

/** Writes the meta records of an empty store; refuses a LevelDB dir that holds something else. */
export async function initialize(db: Db, dir: string): Promise<void> {
  const reader = new DbReader(db);
  const format = await reader.get(META_FORMAT);
  if (format !== undefined) {
    if (format.toString('utf8') !== FORMAT) {
      throw new Error(`mvcc store: ${dir} holds format ${JSON.stringify(format.toString('utf8'))}, not ${FORMAT}`);
    }
    return;
  }
  let empty = true;
  for await (const chunk of reader.scanKeys({ gte: Buffer.alloc(0), limit: 1 })) if (chunk.length > 0) empty = false;
  if (!empty) {
    const legacy = (await reader.get(LEGACY_APPLIED)) !== undefined;
    throw new Error(
      legacy
        ? `mvcc store: ${dir} was written by the foundation's store (keel-kv/1, no history), which this version ` +
            'does not read; start the member on an empty data dir and let it catch up from the cluster'
        : `mvcc store: ${dir} is not empty and holds no ${FORMAT} format record`,
    );
  }
  await db.batch([
    { type: 'put', key: META_FORMAT, value: Buffer.from(FORMAT, 'utf8') },
    {
      type: 'put',
      key: META_STATE,
      value: encodeState({ applied: 0, revision: INITIAL_REVISION, compactRevision: 0 }),
    },
    { type: 'put', key: META_COMPACTION, value: encodeCompaction({ done: 0, cursor: { rev: 0, sub: 0 } }) },
  ]);
}

export async function load(
  reader: Reader,
): Promise<{
  state: MetaState;
  compaction: CompactionProgress;
  leases: LeaseRecord[];
  members: MemberInfo[];
  alarms: AlarmMember[];
}> {
  const state = await readState(reader);
  const c = await reader.get(META_COMPACTION);
  if (c === undefined) throw new Error('mvcc store: the compaction record is missing');
  const compaction = decodeCompaction(c, META_COMPACTION);
  const leases: LeaseRecord[] = [];
  for await (const chunk of reader.scan(LEASES_BOUNDS)) {
    for (const [k, v] of chunk) {
      const id = decodeLeaseKey(k);
      if (id === undefined) throw new CorruptDataError('lease key', k, `not in table ${Table.Leases}`);
      leases.push(decodeLease(id, v, k));
    }
  }
  const m = await reader.get(META_MEMBERS);
  const a = await reader.get(META_ALARMS);
  const members = m === undefined ? [] : decodeMembers(m);
  const alarms = a === undefined ? [] : decodeAlarms(a);
  return { state, compaction, leases, members, alarms };
}
