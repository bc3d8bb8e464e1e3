// The harness's administrative client: etcd's v3 gRPC Maintenance, Cluster and KV.Compact calls, for the
// cluster under test (finding the leader, membership changes, leader transfer, compaction) on both Keel and
// etcd. Every call has a deadline. Member ids are handled as 16 hex digits (as Keel names members and as the
// peer handshake headers carry them); on the wire they are uint64s, which proto-loader gives and takes as
// decimal strings (LOADER_OPTIONS: longs String) because they do not fit a double.

import * as grpc from '@grpc/grpc-js';
import { grpcAddress, serviceClients } from './channel';

/** A failed admin call: `code` is the gRPC status (undefined for a local error), the message etcd's text. */
export class AdminError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    /** the server's own message, e.g. "etcdserver: can only promote a learner member which is in sync with leader" */
    readonly details: string,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

/** 16 lowercase hex digits from a uint64 as proto-loader gives it (decimal string); '' for 0 (none). */
export function hexId(decimal: string | number): string {
  const v = BigInt(decimal);
  return v === 0n ? '' : v.toString(16).padStart(16, '0');
}

/** The decimal uint64 string of a hex member id (with or without leading zeros). */
export function decimalId(hex: string): string {
  if (!/^[0-9a-fA-F]{1,16}$/.test(hex)) throw new Error(`not a member id (1 to 16 hex digits): "${hex}"`);
  return BigInt(`0x${hex}`).toString();
}

export interface MemberStatus {
  /** this member's id (hex) */
  memberId: string;
  /** the leader's id (hex) as this member knows it; '' when it knows none */
  leader: string;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  isLearner: boolean;
  revision: number;
}

export interface MemberEntry {
  /** hex */
  id: string;
  /** '' for a member added but not started yet */
  name: string;
  peerUrls: string[];
  clientUrls: string[];
  isLearner: boolean;
}

export interface AdminCallOptions {
  /** deadline of this call (default: the connection's) */
  timeoutMs?: number;
}

export interface AdminConn {
  readonly url: string;
  status(o?: AdminCallOptions): Promise<MemberStatus>;
  memberList(o?: AdminCallOptions): Promise<MemberEntry[]>;
  /** resolves to the new member and the member list after the change */
  memberAdd(peerUrl: string, isLearner: boolean, o?: AdminCallOptions): Promise<{ member: MemberEntry; members: MemberEntry[] }>;
  memberPromote(id: string, o?: AdminCallOptions): Promise<MemberEntry[]>;
  memberRemove(id: string, o?: AdminCallOptions): Promise<MemberEntry[]>;
  /** must be sent to the leader (etcd refuses it elsewhere) */
  moveLeader(targetId: string, o?: AdminCallOptions): Promise<void>;
  /** the store's current revision, from the header of a (linearizable) Range */
  revision(o?: AdminCallOptions): Promise<number>;
  compact(revision: number, o?: AdminCallOptions): Promise<void>;
  close(): void;
}

// ---- wire shapes (keepCase, longs as decimal strings) ----
interface WireHeader {
  member_id: string;
  revision: string;
}
interface WireMember {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}
interface WireStatus {
  header: WireHeader;
  leader: string;
  raftIndex: string;
  raftTerm: string;
  raftAppliedIndex: string;
  isLearner: boolean;
}

type Unary = (req: object, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, resp: unknown) => void) => void;
type Service = 'KV' | 'Cluster' | 'Maintenance';

function toMember(w: WireMember): MemberEntry {
  return { id: hexId(w.ID), name: w.name, peerUrls: [...w.peerURLs], clientUrls: [...w.clientURLs], isLearner: w.isLearner };
}

/** An admin client for the member at `clientUrl` (http://host:port). */
export function connectAdmin(clientUrl: string, opts: { timeoutMs?: number } = {}): AdminConn {
  const address = grpcAddress(clientUrl, 'connectAdmin');
  const defaultTimeout = opts.timeoutMs ?? 5000;
  // A member under test is killed and restarted all the time: grpc-js's default reconnect back-off (up to
  // 120 s) would leave the channel refusing calls long after the member is back.
  const clients = serviceClients(address, ['KV', 'Cluster', 'Maintenance'] as const, {
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 1000,
  });
  let closed = false;

  function unary<T>(service: Service, method: string, req: object, o: AdminCallOptions | undefined): Promise<T> {
    const what = `${service}.${method} on ${clientUrl}`;
    if (closed) return Promise.reject(new AdminError(`${what}: the connection is closed`, undefined, 'closed'));
    const client = clients[service] as unknown as Record<string, Unary>;
    const timeoutMs = o?.timeoutMs ?? defaultTimeout;
    return new Promise<T>((resolve, reject) => {
      client[method]!.call(client, req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, resp) => {
        if (err) {
          const name = grpc.status[err.code] ?? String(err.code);
          reject(new AdminError(`${what}: ${name}: ${err.details || err.message}`, err.code, err.details || err.message));
        } else {
          resolve(resp as T);
        }
      });
    });
  }

  return {
    url: clientUrl,
    async status(o) {
      const r = await unary<WireStatus>('Maintenance', 'Status', {}, o);
      return {
        memberId: hexId(r.header.member_id),
        leader: hexId(r.leader),
        raftTerm: Number(r.raftTerm),
        raftIndex: Number(r.raftIndex),
        raftAppliedIndex: Number(r.raftAppliedIndex),
        isLearner: r.isLearner,
        revision: Number(r.header.revision),
      };
    },
    async memberList(o) {
      const r = await unary<{ members: WireMember[] }>('Cluster', 'MemberList', {}, o);
      return r.members.map(toMember);
    },
    async memberAdd(peerUrl, isLearner, o) {
      const r = await unary<{ member: WireMember | null; members: WireMember[] }>('Cluster', 'MemberAdd', { peerURLs: [peerUrl], isLearner }, o);
      if (!r.member) throw new AdminError(`Cluster.MemberAdd on ${clientUrl}: the answer names no member`, undefined, 'no member');
      return { member: toMember(r.member), members: r.members.map(toMember) };
    },
    async memberPromote(id, o) {
      const r = await unary<{ members: WireMember[] }>('Cluster', 'MemberPromote', { ID: decimalId(id) }, o);
      return r.members.map(toMember);
    },
    async memberRemove(id, o) {
      const r = await unary<{ members: WireMember[] }>('Cluster', 'MemberRemove', { ID: decimalId(id) }, o);
      return r.members.map(toMember);
    },
    async moveLeader(targetId, o) {
      await unary('Maintenance', 'MoveLeader', { targetID: decimalId(targetId) }, o);
    },
    async revision(o) {
      // Any key will do: the header carries the store's revision whether or not the key exists.
      const r = await unary<{ header: WireHeader }>('KV', 'Range', { key: Buffer.from('jepsen-admin-revision-probe') }, o);
      return Number(r.header.revision);
    },
    async compact(revision, o) {
      await unary('KV', 'Compact', { revision: String(revision), physical: false }, o);
    },
    close() {
      if (closed) return;
      closed = true;
      // One channel serves the three clients: closing each is harmless and releases it.
      for (const c of Object.values(clients)) c.close();
    },
  };
}
