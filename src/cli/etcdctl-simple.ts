// etcdctl v3's "simple" output (etcdctl/ctlv3/command/printer_simple.go), byte for byte: each function
// returns the lines etcdctl prints (the caller adds the newlines). Keys and values are raw bytes, as
// etcdctl writes them (string(kv.Key)).

import type {
  AlarmMember,
  DeleteRangeResponse,
  Event,
  KeyValue,
  LeaseGrantResponse,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  LeaseTimeToLiveResponse,
  MemberAddResponse,
  MemberInfo,
  PutResponse,
  RangeResponse,
  TxnResponse,
} from '../kv/api';

export type Line = string | Buffer;

export interface KvPrintOptions {
  /** --print-value-only: values without their keys. */
  valueOnly?: boolean;
}

/** A lease id as etcdctl prints it (Go's %016x). */
export function leaseHex(id: number): string {
  return id.toString(16).padStart(16, '0');
}

/** printKV: the key, then the value (keys-only responses carry empty values: an empty line, as etcdctl). */
export function kvLines(kv: KeyValue, o: KvPrintOptions = {}): Line[] {
  return o.valueOnly === true ? [kv.value] : [kv.key, kv.value];
}

export function getLines(r: RangeResponse, o: KvPrintOptions = {}): Line[] {
  return r.kvs.flatMap((kv) => kvLines(kv, o));
}

export function putLines(r: PutResponse, o: KvPrintOptions = {}): Line[] {
  return r.prevKv !== undefined ? ['OK', ...kvLines(r.prevKv, o)] : ['OK'];
}

export function delLines(r: DeleteRangeResponse, o: KvPrintOptions = {}): Line[] {
  return [String(r.deleted), ...r.prevKvs.flatMap((kv) => kvLines(kv, o))];
}

/** SUCCESS or FAILURE, then each response after an empty line. etcdctl 3.4 prints a nested txn as
 *  "unexpected response ..."; Keel prints it like a top-level one. */
export function txnLines(r: TxnResponse, o: KvPrintOptions = {}): Line[] {
  const out: Line[] = [r.succeeded ? 'SUCCESS' : 'FAILURE'];
  for (const op of r.responses) {
    out.push('');
    switch (op.type) {
      case 'range':
        out.push(...getLines(op.range, o));
        break;
      case 'put':
        out.push(...putLines(op.put, o));
        break;
      case 'deleteRange':
        out.push(...delLines(op.deleteRange, o));
        break;
      case 'txn':
        out.push(...txnLines(op.txn, o));
        break;
    }
  }
  return out;
}

/** Each event: its type, the previous key-value if the watch asked for it, then the key-value. */
export function watchEventLines(events: readonly Event[], o: KvPrintOptions = {}): Line[] {
  const out: Line[] = [];
  for (const e of events) {
    out.push(e.type);
    if (e.prevKv !== undefined) out.push(...kvLines(e.prevKv, o));
    out.push(...kvLines(e.kv, o));
  }
  return out;
}

/** etcdctl 3.5's line for a progress notification (3.4 prints nothing for one). */
export function progressLine(revision: number): string {
  return `progress notify: ${revision}`;
}

/** etcdctl's line on stderr for a watch the server canceled. */
export function watchCanceledLine(reason: string): string {
  return `watch was canceled (${reason})`;
}

export function leaseGrantLine(r: LeaseGrantResponse): string {
  return `lease ${leaseHex(r.id)} granted with TTL(${r.ttl}s)`;
}

export function leaseRevokeLine(id: number): string {
  return `lease ${leaseHex(id)} revoked`;
}

export function leaseKeepAliveLine(r: LeaseKeepAliveResponse): string {
  return `lease ${leaseHex(r.id)} keepalived with TTL(${r.ttl})`;
}

export function leaseExpiredOrRevokedLine(id: number): string {
  return `lease ${leaseHex(id)} expired or revoked.`;
}

/** `lease timetolive`: "already expired" for a lease that does not exist (TTL -1, granted TTL 0). The
 *  keys as Go's %v of a []string: "[k1 k2]". */
export function leaseTimeToLiveLine(r: LeaseTimeToLiveResponse, withKeys: boolean): Buffer {
  if (r.grantedTtl === 0 && r.ttl === -1) return Buffer.from(`lease ${leaseHex(r.id)} already expired`);
  const head = Buffer.from(`lease ${leaseHex(r.id)} granted with TTL(${r.grantedTtl}s), remaining(${r.ttl}s)`);
  if (!withKeys) return head;
  const keys: Buffer[] = [];
  r.keys.forEach((k, i) => {
    if (i > 0) keys.push(Buffer.from(' '));
    keys.push(k);
  });
  return Buffer.concat([head, Buffer.from(', attached keys(['), ...keys, Buffer.from('])')]);
}

export function leaseListLines(r: LeaseLeasesResponse): string[] {
  return [`found ${r.leases.length} leases`, ...r.leases.map((l) => leaseHex(l.id))];
}

export function compactionLine(revision: number): string {
  return `compacted revision ${revision}`;
}

// ---- cluster membership and alarms -------------------------------------------------------------------------

/** A member or cluster id (16 hex digits) as Go's %x prints the uint64: no leading zeros. */
export function idHex(id: string): string {
  return id === '' ? '0' : BigInt(`0x${id}`).toString(16);
}

/** Go's %16x: the same, padded with spaces (not zeros) to 16 characters. */
export function idHex16(id: string): string {
  return idHex(id).padStart(16, ' ');
}

/** etcdctl's makeMemberListTable. */
export const MEMBER_LIST_HEADERS = ['ID', 'STATUS', 'NAME', 'PEER ADDRS', 'CLIENT ADDRS', 'IS LEARNER'];

/** etcdctl calls a member "unstarted" while its name is empty: an etcd member publishes its name and client
 *  URLs together once it runs. A Keel member added with `member add NAME` has its name at once, so Keel also
 *  reads "no client URLs yet" as unstarted (for etcd's members the two rules agree). */
export function memberStatus(m: MemberInfo): 'started' | 'unstarted' {
  return m.name === '' || m.clientUrls.length === 0 ? 'unstarted' : 'started';
}

export function memberListRow(m: MemberInfo): string[] {
  return [
    idHex(m.id),
    memberStatus(m),
    m.name,
    m.peerUrls.join(','),
    m.clientUrls.join(','),
    String(m.isLearner),
  ];
}

/** `member list`: one line per member, its cells joined by ", ". */
export function memberListLines(members: readonly MemberInfo[]): string[] {
  return members.map((m) => memberListRow(m).join(', '));
}

/** etcdctl 3.4 prints this for a learner too (3.5 says "added as learner to"). */
export function memberAddedLine(r: MemberAddResponse): string {
  return `Member ${idHex16(r.member.id)} added to cluster ${idHex16(r.header.clusterId)}`;
}

export function memberRemovedLine(id: string, clusterId: string): string {
  return `Member ${idHex16(id)} removed from cluster ${idHex16(clusterId)}`;
}

export function memberPromotedLine(id: string, clusterId: string): string {
  return `Member ${idHex16(id)} promoted in cluster ${idHex16(clusterId)}`;
}

/**
 * One alarm as etcdctl prints it: fmt's %+v of a *pb.AlarmMember, which is its String(), protobuf's compact
 * text format: each field that is set as "name:value" followed by a space (so the line ends with one),
 * the enum by name. "memberID:10276657743932975437 alarm:NOSPACE ".
 */
export function alarmLine(a: AlarmMember): string {
  let out = '';
  if (a.memberId !== '' && !/^0+$/.test(a.memberId)) out += `memberID:${BigInt(`0x${a.memberId}`).toString()} `;
  if (a.alarm !== 'NONE') out += `alarm:${a.alarm} `;
  return out;
}
