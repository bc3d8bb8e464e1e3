// Runtime membership on the member side, apart from member.ts: what members say to each other about it over
// plain HTTP on the peer listener, how a new member finds the cluster it was added to, and etcd's safety
// checks before a change (strict reconfiguration check). Raft's part is in src/raft/core/confchange.ts; the
// replicated registry in src/kv/mvcc/cluster-records.ts.
//
// Peer HTTP routes (JSON, on the peer URL, members only):
//   GET  /keel/v1/cluster          -> {clusterId, members: MemberInfo[], founding: [{name, id, peerUrl}]}
//   POST /keel/v1/members/add      MemberAddRequest     -> MemberAddResponse      (leader only)
//   POST /keel/v1/members/remove   MemberRemoveRequest  -> MemberRemoveResponse
//   POST /keel/v1/members/promote  MemberPromoteRequest -> MemberPromoteResponse
//   POST /keel/v1/members/nospace  {memberId}           -> {}  (the leader raises NOSPACE for that member)
// A follower that receives a change from a client forwards it to the leader's peer URL: Raft takes
// membership changes on the leader only, and the leader's answer carries its precise refusal. A member
// whose disk is full cannot run Raft itself; it asks the leader this way to raise its NOSPACE alarm.

import { createHash } from 'node:crypto';
import http from 'node:http';
import {
  Errors,
  GrpcCode,
  KvError,
  type MemberAddRequest,
  type MemberInfo,
  type MemberRemoveRequest,
} from '../kv/api';
import { encodeMemberContext } from '../kv/mvcc/cluster-records';
import { validateMemberAdd, validateMemberId } from '../kv/validate';
import type { ConfChangeType } from '../raft/core/confchange';
import type { ConfState, NodeId } from '../raft/core/types';
import type { MemberIdentity } from './member-dir';
import type { MemberOptions } from './options';

export const CLUSTER_PATH = '/keel/v1/cluster';
export const MEMBERS_PATH = '/keel/v1/members/';
const MAX_BODY = 64 * 1024;

export interface ClusterInfo {
  clusterId: string;
  members: MemberInfo[];
  founding: MemberIdentity['initialCluster'];
}

export type ChangeOp = 'add' | 'remove' | 'promote' | 'nospace';

export interface PeerRouteHandlers {
  cluster(): ClusterInfo | undefined;
  /** Runs a change on this member without forwarding it (refused unless this member leads). */
  change(op: ChangeOp, body: unknown): Promise<unknown>;
}

/** The peer listener's request handler for the routes above; anything else is 404. */
export function peerRequestHandler(h: PeerRouteHandlers): http.RequestListener {
  return (req, res) => {
    const send = (status: number, body: unknown): void => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const url = (req.url ?? '').split('?', 1)[0];
    if (req.method === 'GET' && url === CLUSTER_PATH) {
      const info = h.cluster();
      if (info === undefined) send(503, { error: { code: GrpcCode.Unavailable, message: 'etcdserver: member is starting' } });
      else send(200, info);
      return;
    }
    const op = url.startsWith(MEMBERS_PATH) ? url.slice(MEMBERS_PATH.length) : '';
    if (req.method !== 'POST' || (op !== 'add' && op !== 'remove' && op !== 'promote' && op !== 'nospace')) {
      res.statusCode = 404;
      res.end();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        send(400, { error: { code: GrpcCode.InvalidArgument, message: 'etcdserver: malformed forwarded request' } });
        return;
      }
      h.change(op, body).then(
        (r) => send(200, r),
        (err: unknown) => {
          const e = err instanceof KvError ? err : new KvError(GrpcCode.Internal, `etcdserver: ${String((err as Error)?.message ?? err)}`);
          send(e.code === GrpcCode.Unavailable ? 503 : 400, { error: { code: e.code, message: e.message } });
        },
      );
    });
  };
}

/** One JSON request over node:http (not fetch: fetch refuses "bad ports" such as 6000, which an operator may
 *  well give a member). Throws on a network error (err.code, e.g. ECONNREFUSED) or after timeoutMs. */
function fetchJson(
  url: string,
  init: { method: 'GET' | 'POST'; body?: string },
  timeoutMs: number,
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders =
      init.body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(init.body) };
    const req = http.request(url, { method: init.method, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) });
        } catch {
          reject(new Error(`${url} answered HTTP ${res.statusCode ?? '?'} with a body that is not JSON`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

function errorOf(body: unknown): KvError | undefined {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (e === undefined || typeof e.code !== 'number' || typeof e.message !== 'string') return undefined;
  return new KvError(e.code as GrpcCode, e.message);
}

/** Refusals after which a change was certainly not made, so another leader may be asked. */
export const NOT_LEADER = 'etcdserver: not leader';
const NOT_SENT = 'etcdserver: the leader refused the connection';

export function changeNotMade(err: unknown): boolean {
  return err instanceof KvError && (err.message === NOT_LEADER || err.message === NOT_SENT);
}

/** Sends a membership change to the leader's peer URL and returns its answer, or throws its KvError. */
export async function forwardChange(peerUrl: string, op: ChangeOp, body: unknown, timeoutMs: number): Promise<unknown> {
  let r;
  try {
    r = await fetchJson(`${peerUrl}${MEMBERS_PATH}${op}`, { method: 'POST', body: JSON.stringify(body) }, timeoutMs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') throw new KvError(GrpcCode.Unavailable, NOT_SENT);
    // Sent, maybe applied: sending it again could apply it twice.
    throw new KvError(GrpcCode.Unavailable, `etcdserver: request timed out (forwarded to the leader at ${peerUrl}: ${(err as Error).message})`);
  }
  const e = errorOf(r.body);
  if (e !== undefined) throw e;
  if (r.status !== 200) throw new KvError(GrpcCode.Unavailable, `etcdserver: the leader answered HTTP ${r.status}`);
  return r.body;
}

function isClusterInfo(v: unknown): v is ClusterInfo {
  const c = v as ClusterInfo | null;
  return (
    typeof c === 'object' &&
    c !== null &&
    typeof c.clusterId === 'string' &&
    Array.isArray(c.members) &&
    Array.isArray(c.founding) &&
    c.members.every((m) => typeof m?.id === 'string' && Array.isArray(m.peerUrls))
  );
}

/** Asks the members at `peerUrls` (in order) who is in the cluster; undefined if none answers. */
export async function fetchClusterInfo(peerUrls: string[], timeoutMs: number): Promise<{ info: ClusterInfo; from: string } | undefined> {
  for (const url of peerUrls) {
    try {
      const r = await fetchJson(`${url}${CLUSTER_PATH}`, { method: 'GET' }, timeoutMs);
      if (r.status === 200 && isClusterInfo(r.body)) return { info: r.body, from: url };
    } catch {
      // The next one may answer.
    }
  }
  return undefined;
}

/**
 * A member started with `--initial-cluster-state existing` on an empty data dir: asks the other members of
 * --initial-cluster who is in the cluster, finds itself there by its peer URL (put there by `keel member
 * add`) and takes the id the cluster gave it. Tries a few times (members may be restarting), then fails with
 * a message that says what to do.
 */
export async function discoverJoin(
  opts: MemberOptions,
  attempts = 5,
  pauseMs = 1000,
): Promise<{ identity: MemberIdentity; members: MemberInfo[] }> {
  const others = opts.initialCluster.filter((m) => m.name !== opts.name).map((m) => m.peerUrl);
  for (let i = 0; i < attempts; i++) {
    const found = await fetchClusterInfo(others, 2000);
    if (found !== undefined) {
      const { info, from } = found;
      const peerUrl = opts.advertisePeerUrl ?? opts.listenPeerUrl;
      const self = info.members.find((m) => m.peerUrls.includes(peerUrl));
      if (self === undefined) {
        throw new Error(
          `--initial-cluster-state existing: the cluster (asked ${from}) has no member with peer URL ` +
            `${peerUrl}; add it first: keel member add ${opts.name} --peer-urls ${peerUrl}`,
        );
      }
      return {
        identity: {
          name: opts.name,
          memberId: self.id,
          clusterId: info.clusterId,
          initialCluster: info.founding,
          joined: true,
        },
        members: info.members,
      };
    }
    if (i + 1 < attempts) await new Promise((r) => setTimeout(r, pauseMs));
  }
  throw new Error(
    `--initial-cluster-state existing: no member of the cluster answered at ${others.join(', ')} ` +
      `(is --initial-cluster right, and are they running?)`,
  );
}

/** A new member's id: from its peer URL, the cluster and the time (etcd mixes the time in too), so that a
 *  member added again at the same URL after its removal gets another id. Never one in `taken`. */
export function newMemberId(peerUrl: string, clusterId: string, taken: (id: NodeId) => boolean): NodeId {
  for (let salt = 0; ; salt++) {
    const id = createHash('sha256')
      .update(`member|${peerUrl}|${clusterId}|${Date.now()}|${salt}`)
      .digest('hex')
      .slice(0, 16);
    if (!taken(id) && /[1-9a-f]/.test(id)) return id;
  }
}

const quorum = (n: number): number => Math.floor(n / 2) + 1;

/**
 * etcd's strict reconfiguration check (isReadyToAddVotingMember): adding a voter must leave enough started
 * voters for a quorum of the larger cluster, or the cluster stalls until the new member catches up. The
 * exception is a one-member cluster (etcd's too), which can only grow this way.
 */
export function readyToAddVoter(voters: number, active: number): boolean {
  if (voters === 1 && active === 1) return true;
  return active >= quorum(voters + 1);
}

/** etcd's isReadyToRemoveVotingMember: the voters left, active ones, must still make a quorum. */
export function readyToRemoveVoter(voters: number, activeAfter: number): boolean {
  return activeAfter >= quorum(voters - 1);
}

/** What the leader knows when it checks a change. */
export interface ChangeContext {
  members: MemberInfo[];
  confState: ConfState;
  clusterId: string;
  /** Up: this member, or a peer heard from within an election timeout. */
  isActive: (id: NodeId) => boolean;
  /** The core's isLearnerReady (match >= 90% of the leader's). */
  isLearnerReady: (id: NodeId) => boolean;
}

/** A change to propose; `added` for an addition (the new member as the registry will show it). */
export interface PlannedChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
  added?: MemberInfo;
}

/**
 * The leader's checks of an add / remove / promote request, with etcd's errors, and the change to propose.
 * Raft checks the configuration again when the change is proposed (one change at a time, own-term commit).
 */
export function planChange(
  op: 'add' | 'remove' | 'promote',
  body: unknown,
  ctx: ChangeContext,
): PlannedChange | { refused: string; error: KvError } {
  const refuse = (error: KvError): { refused: string; error: KvError } => ({ refused: error.message, error });
  const { members, confState: cs } = ctx;
  try {
    if (op === 'add') {
      const req = body as MemberAddRequest;
      validateMemberAdd(req);
      const url = req.peerUrls[0];
      if (members.some((m) => m.peerUrls.includes(url))) return refuse(Errors.peerUrlExists());
      const learner = req.isLearner === true;
      if (!learner && !readyToAddVoter(cs.voters.length, cs.voters.filter(ctx.isActive).length)) {
        return refuse(Errors.notEnoughStarted());
      }
      const nodeId = newMemberId(url, ctx.clusterId, (id) => members.some((m) => m.id === id) || (cs.removed ?? []).includes(id));
      const name = req.name ?? '';
      return {
        type: learner ? 'addLearner' : 'addVoter',
        nodeId,
        context: encodeMemberContext({ name, peerUrls: [url] }),
        added: { id: nodeId, name, peerUrls: [url], clientUrls: [], isLearner: learner },
      };
    }
    const req = body as MemberRemoveRequest;
    validateMemberId(req);
    const nodeId = req.id;
    const isVoter = cs.voters.includes(nodeId);
    const isLearner = cs.learners.includes(nodeId);
    if (!members.some((m) => m.id === nodeId) && !isVoter && !isLearner) return refuse(Errors.memberNotFound());
    if (op === 'remove') {
      if (isVoter) {
        const after = cs.voters.filter((id) => id !== nodeId);
        if (!readyToRemoveVoter(cs.voters.length, after.filter(ctx.isActive).length)) return refuse(Errors.notEnoughStarted());
      }
      return { type: 'removeNode', nodeId };
    }
    if (!isLearner) return refuse(Errors.memberNotLearner());
    if (!ctx.isLearnerReady(nodeId)) return refuse(Errors.learnerNotReady());
    return { type: 'promoteLearner', nodeId };
  } catch (err) {
    if (err instanceof KvError) return refuse(err);
    throw err;
  }
}
