// The Cluster service (member list / add / remove / promote) and Maintenance.Alarm in etcd's gateway JSON.
// rpc.proto names these fields in camelCase with upper-case initialisms ("ID", "peerURLs", "clientURLs",
// "isLearner", "memberID"), and the gateway keeps the .proto's names, so that is what goes on the wire.
// Member and cluster ids are uint64: decimal strings, exact beyond 2^53 (Keel holds them as 16 hex digits).
// Enums (AlarmAction, AlarmType) are written by name and read by name or number.

import type {
  AlarmAction,
  AlarmMember,
  AlarmRequest,
  AlarmResponse,
  AlarmType,
  MemberAddRequest,
  MemberAddResponse,
  MemberInfo,
  MemberListRequest,
  MemberListResponse,
  MemberPromoteRequest,
  MemberPromoteResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
} from '../api';
import { Fields, compact, enumName, flag, idToJson } from './fields';
import { decodeHeader, headerToJson, type HeaderJson } from './kv-json';

// ---- enums, in the .proto's order (index = number) ------------------------------------------------------

export const ALARM_ACTIONS: readonly AlarmAction[] = ['GET', 'ACTIVATE', 'DEACTIVATE'];
export const ALARM_TYPES: readonly AlarmType[] = ['NONE', 'NOSPACE', 'CORRUPT'];

// ---- JSON shapes ---------------------------------------------------------------------------------------

export interface MemberJson {
  ID?: string;
  name?: string;
  peerURLs?: string[];
  clientURLs?: string[];
  isLearner?: boolean;
}

export interface MemberListRequestJson {
  linearizable?: boolean;
}

export interface MemberListResponseJson {
  header: HeaderJson;
  members?: MemberJson[];
}

export interface MemberAddRequestJson {
  peerURLs?: string[];
  isLearner?: boolean;
  /** Keel's addition (etcd's MemberAddRequest has no name). */
  name?: string;
}

export interface MemberAddResponseJson {
  header: HeaderJson;
  member?: MemberJson;
  members?: MemberJson[];
}

/** MemberRemoveRequest and MemberPromoteRequest: just the id. */
export interface MemberIdRequestJson {
  ID?: string;
}

/** MemberRemoveResponse and MemberPromoteResponse. */
export interface MembersResponseJson {
  header: HeaderJson;
  members?: MemberJson[];
}

export interface AlarmRequestJson {
  action?: AlarmAction;
  memberID?: string;
  alarm?: AlarmType;
}

export interface AlarmMemberJson {
  memberID?: string;
  alarm?: AlarmType;
}

export interface AlarmResponseJson {
  header: HeaderJson;
  alarms?: AlarmMemberJson[];
}

// ---- encoding responses (server) -----------------------------------------------------------------------

function strings(xs: readonly string[]): string[] | undefined {
  return xs.length === 0 ? undefined : [...xs];
}

export function memberToJson(m: MemberInfo): MemberJson {
  return compact({
    ID: idToJson(m.id),
    name: m.name === '' ? undefined : m.name,
    peerURLs: strings(m.peerUrls),
    clientURLs: strings(m.clientUrls),
    isLearner: flag(m.isLearner),
  });
}

function membersToJson(ms: readonly MemberInfo[]): MemberJson[] | undefined {
  return ms.length === 0 ? undefined : ms.map(memberToJson);
}

export function memberListResponseToJson(r: MemberListResponse): MemberListResponseJson {
  return compact({ header: headerToJson(r.header), members: membersToJson(r.members) });
}

/** `member` is a set message field, so protobuf JSON writes it even when every field in it is a default. */
export function memberAddResponseToJson(r: MemberAddResponse): MemberAddResponseJson {
  return compact({ header: headerToJson(r.header), member: memberToJson(r.member), members: membersToJson(r.members) });
}

export function memberRemoveResponseToJson(r: MemberRemoveResponse): MembersResponseJson {
  return compact({ header: headerToJson(r.header), members: membersToJson(r.members) });
}

export function memberPromoteResponseToJson(r: MemberPromoteResponse): MembersResponseJson {
  return compact({ header: headerToJson(r.header), members: membersToJson(r.members) });
}

export function alarmMemberToJson(a: AlarmMember): AlarmMemberJson {
  return compact({ memberID: idToJson(a.memberId), alarm: enumName(a.alarm, ALARM_TYPES) });
}

export function alarmResponseToJson(r: AlarmResponse): AlarmResponseJson {
  return compact({
    header: headerToJson(r.header),
    alarms: r.alarms.length === 0 ? undefined : r.alarms.map(alarmMemberToJson),
  });
}

// ---- encoding requests (client) ------------------------------------------------------------------------

export function memberListRequestToJson(r: MemberListRequest): MemberListRequestJson {
  return compact({ linearizable: flag(r.linearizable) });
}

export function memberAddRequestToJson(r: MemberAddRequest): MemberAddRequestJson {
  return compact({
    peerURLs: strings(r.peerUrls),
    isLearner: flag(r.isLearner),
    name: r.name === undefined || r.name === '' ? undefined : r.name,
  });
}

export function memberIdRequestToJson(r: MemberRemoveRequest | MemberPromoteRequest): MemberIdRequestJson {
  return compact({ ID: idToJson(r.id) });
}

export function alarmRequestToJson(r: AlarmRequest): AlarmRequestJson {
  return compact({
    action: enumName(r.action, ALARM_ACTIONS),
    memberID: idToJson(r.memberId ?? ''),
    alarm: enumName(r.alarm, ALARM_TYPES),
  });
}

// ---- decoding requests (server) ------------------------------------------------------------------------

function stringList(f: Fields, field: string): string[] {
  return f.list(field).map((v, i) => {
    if (typeof v !== 'string') throw f.fail(`${f.name(field)}[${i}]: expected a string`);
    return v;
  });
}

export function parseMemberListRequest(body: unknown): MemberListRequest {
  const f = Fields.request(body, '', ['linearizable']);
  return f.bool('linearizable') === true ? { linearizable: true } : {};
}

export function parseMemberAddRequest(body: unknown): MemberAddRequest {
  const f = Fields.request(body, '', ['peerURLs', 'isLearner', 'name']);
  const r: MemberAddRequest = { peerUrls: stringList(f, 'peerURLs') };
  if (f.bool('isLearner') === true) r.isLearner = true;
  const name = f.str('name');
  if (name !== undefined && name !== '') r.name = name;
  return r;
}

/** The "ID" of a remove or promote: a member id is required, so 0 (or none) is refused here. */
function memberIdField(f: Fields): string {
  const id = f.id('ID');
  if (id === '') throw f.fail(`${f.name('ID')}: a member id is required (a non-zero uint64 as a decimal string)`);
  return id;
}

export function parseMemberRemoveRequest(body: unknown): MemberRemoveRequest {
  return { id: memberIdField(Fields.request(body, '', ['ID'])) };
}

export function parseMemberPromoteRequest(body: unknown): MemberPromoteRequest {
  return { id: memberIdField(Fields.request(body, '', ['ID'])) };
}

/** Absent fields are the defaults: action GET, no member (0), alarm NONE; the defaults are left out of the
 *  internal request, as the encoder leaves them out of the JSON. */
export function parseAlarmRequest(body: unknown): AlarmRequest {
  const f = Fields.request(body, '', ['action', 'memberID', 'alarm']);
  const r: AlarmRequest = { action: f.enumValue('action', ALARM_ACTIONS) ?? 'GET' };
  const memberId = f.id('memberID');
  if (memberId !== '') r.memberId = memberId;
  const alarm = f.enumValue('alarm', ALARM_TYPES);
  if (alarm !== undefined && alarm !== 'NONE') r.alarm = alarm;
  return r;
}

// ---- decoding responses (client) -----------------------------------------------------------------------

export function decodeMember(json: unknown, where: string): MemberInfo {
  const f = Fields.response(json, where);
  return {
    id: f.id('ID'),
    name: f.str('name') ?? '',
    peerUrls: stringList(f, 'peerURLs'),
    clientUrls: stringList(f, 'clientURLs'),
    isLearner: f.bool('isLearner') ?? false,
  };
}

function decodeMembers(f: Fields): MemberInfo[] {
  return f.list('members').map((m, i) => decodeMember(m, f.name(`members[${i}]`)));
}

export function decodeMemberListResponse(json: unknown): MemberListResponse {
  const f = Fields.response(json, '');
  return { header: decodeHeader(f.obj('header')), members: decodeMembers(f) };
}

export function decodeMemberAddResponse(json: unknown): MemberAddResponse {
  const f = Fields.response(json, '');
  const member = f.obj('member');
  if (member === undefined) throw f.fail('member: missing (the member added)');
  return { header: decodeHeader(f.obj('header')), member: decodeMember(member, 'member'), members: decodeMembers(f) };
}

export function decodeMemberRemoveResponse(json: unknown): MemberRemoveResponse {
  const f = Fields.response(json, '');
  return { header: decodeHeader(f.obj('header')), members: decodeMembers(f) };
}

export function decodeMemberPromoteResponse(json: unknown): MemberPromoteResponse {
  const f = Fields.response(json, '');
  return { header: decodeHeader(f.obj('header')), members: decodeMembers(f) };
}

export function decodeAlarmResponse(json: unknown): AlarmResponse {
  const f = Fields.response(json, '');
  return {
    header: decodeHeader(f.obj('header')),
    alarms: f.list('alarms').map((a, i) => {
      const af = Fields.response(a, f.name(`alarms[${i}]`));
      return { memberId: af.id('memberID'), alarm: af.enumValue('alarm', ALARM_TYPES) ?? 'NONE' };
    }),
  };
}
