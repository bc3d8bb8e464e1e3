// The member registry and the alarm list: two small meta records of the store, each rewritten whole when it
// changes. They live in the store (not in a file of their own) so that they are written in the same LevelDB
// batch as the applied index of the entry that changed them, and travel in snapshots with everything else:
// a member that installs a snapshot learns who the members are and which alarms are raised.
//
//   00 "members" -> msgpack [{id, name, peerUrls, clientUrls, isLearner}, ...] sorted by id
//   00 "alarms"  -> msgpack [{memberId, alarm}, ...] sorted by member id then alarm

import { Packr } from 'msgpackr';
import type { AlarmMember, AlarmType, MemberInfo } from '../api';
import type { ConfChangeData } from '../../raft/core/confchange';
import { CorruptDataError } from './records';

export const META_MEMBERS = Buffer.from('\x00members', 'latin1');
export const META_ALARMS = Buffer.from('\x00alarms', 'latin1');

const packr = new Packr({ useRecords: false });

const ALARMS: readonly AlarmType[] = ['NONE', 'NOSPACE', 'CORRUPT'];

/** What a ConfChange entry's context holds about the member it adds (written by the proposing member). */
export interface MemberContext {
  name: string;
  peerUrls: string[];
}

export function encodeMemberContext(c: MemberContext): Uint8Array {
  return packr.pack({ name: c.name, peerUrls: [...c.peerUrls] });
}

/** Decodes a ConfChange context; a context that is not one gives empty attributes (the same on every member,
 *  so the registries still agree; the change itself is Raft's and is applied regardless). */
export function decodeMemberContext(data: Uint8Array | undefined): MemberContext {
  if (data === undefined) return { name: '', peerUrls: [] };
  try {
    const raw: unknown = packr.unpack(data);
    // Only a plain map is ours (msgpackr turns some bytes into other objects, an Error for 0xc1).
    if (typeof raw !== 'object' || raw === null || Object.getPrototypeOf(raw) !== Object.prototype) {
      return { name: '', peerUrls: [] };
    }
    const v = raw as Record<string, unknown>;
    const name = typeof v?.name === 'string' ? v.name : '';
    const peerUrls = Array.isArray(v?.peerUrls) ? v.peerUrls.filter((u): u is string => typeof u === 'string') : [];
    return { name, peerUrls };
  } catch {
    return { name: '', peerUrls: [] };
  }
}

function strings(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

export function encodeMembers(members: readonly MemberInfo[]): Buffer {
  return packr.pack(sortMembers(members).map((m) => ({ ...m })));
}

export function decodeMembers(v: Buffer): MemberInfo[] {
  let raw: unknown;
  try {
    raw = packr.unpack(v);
  } catch (err) {
    throw new CorruptDataError('members record', META_MEMBERS, `not msgpack (${(err as Error).message})`);
  }
  if (!Array.isArray(raw)) throw new CorruptDataError('members record', META_MEMBERS, 'not a list');
  return raw.map((m: Record<string, unknown>, i) => {
    if (
      typeof m !== 'object' ||
      m === null ||
      typeof m.id !== 'string' ||
      typeof m.name !== 'string' ||
      !strings(m.peerUrls) ||
      !strings(m.clientUrls) ||
      typeof m.isLearner !== 'boolean'
    ) {
      throw new CorruptDataError('members record', META_MEMBERS, `member ${i} is malformed`);
    }
    return { id: m.id, name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls, isLearner: m.isLearner };
  });
}

export function encodeAlarms(alarms: readonly AlarmMember[]): Buffer {
  return packr.pack(sortAlarms(alarms).map((a) => ({ memberId: a.memberId, alarm: a.alarm })));
}

export function decodeAlarms(v: Buffer): AlarmMember[] {
  let raw: unknown;
  try {
    raw = packr.unpack(v);
  } catch (err) {
    throw new CorruptDataError('alarms record', META_ALARMS, `not msgpack (${(err as Error).message})`);
  }
  if (!Array.isArray(raw)) throw new CorruptDataError('alarms record', META_ALARMS, 'not a list');
  return raw.map((a: Record<string, unknown>, i) => {
    if (typeof a?.memberId !== 'string' || !ALARMS.includes(a.alarm as AlarmType)) {
      throw new CorruptDataError('alarms record', META_ALARMS, `alarm ${i} is malformed`);
    }
    return { memberId: a.memberId, alarm: a.alarm as AlarmType };
  });
}

export function sortMembers(members: readonly MemberInfo[]): MemberInfo[] {
  return [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

function sortAlarms(alarms: readonly AlarmMember[]): AlarmMember[] {
  return [...alarms].sort((a, b) =>
    a.memberId !== b.memberId ? (a.memberId < b.memberId ? -1 : 1) : a.alarm < b.alarm ? -1 : a.alarm > b.alarm ? 1 : 0,
  );
}

/** The registry once a ConfChange entry is applied. The change was checked by Raft against the configuration;
 *  the registry follows it (a change Raft applied is never refused here). */
export function applyMemberChange(members: readonly MemberInfo[], cc: ConfChangeData): MemberInfo[] {
  const others = members.filter((m) => m.id !== cc.nodeId);
  const self = members.find((m) => m.id === cc.nodeId);
  switch (cc.type) {
    case 'addVoter':
    case 'addLearner': {
      const ctx = decodeMemberContext(cc.context);
      const added: MemberInfo = {
        id: cc.nodeId,
        name: ctx.name,
        peerUrls: ctx.peerUrls,
        clientUrls: [],
        isLearner: cc.type === 'addLearner',
      };
      return sortMembers([...others, added]);
    }
    case 'promoteLearner':
      return self === undefined ? [...members] : sortMembers([...others, { ...self, isLearner: false }]);
    case 'removeNode':
      return others;
  }
}

/** ACTIVATE adds the alarm if it is not raised yet; DEACTIVATE removes it (an empty member id: for every
 *  member). Returns the list after the change and the alarms that changed. */
export function changeAlarms(
  alarms: readonly AlarmMember[],
  action: 'ACTIVATE' | 'DEACTIVATE',
  memberId: string,
  alarm: AlarmType,
): { alarms: AlarmMember[]; changed: AlarmMember[] } {
  if (action === 'ACTIVATE') {
    if (alarm === 'NONE' || alarms.some((a) => a.memberId === memberId && a.alarm === alarm)) {
      return { alarms: [...alarms], changed: [] };
    }
    const added = { memberId, alarm };
    return { alarms: sortAlarms([...alarms, added]), changed: [added] };
  }
  const hit = (a: AlarmMember): boolean => (memberId === '' || a.memberId === memberId) && (alarm === 'NONE' || a.alarm === alarm);
  return { alarms: alarms.filter((a) => !hit(a)), changed: alarms.filter(hit) };
}
