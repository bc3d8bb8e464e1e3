// Leadership transfer at the member level: etcd's Maintenance.MoveLeader (`keel move-leader`), and the
// hand-over a leader makes before it stops on SIGTERM. The core does the protocol (thesis §3.10: catch the
// target up, TimeoutNow, give up after an election timeout); this waits for the outcome.

import http from 'node:http';
import type { Logger } from 'pino';
import { Errors, GrpcCode, KvError, type ResponseHeader } from '../kv/api';
import { idFromJson } from '../kv/gateway/fields';
import { headerToJson } from '../kv/gateway/kv-json';
import type { NodeId } from '../raft/core/types';
import type { RaftNode } from '../raft/node';
import type { ExtraRoute } from './http-gateway';
import { parseJson, readBody, sendJson } from './json';

/** etcd's gateway path for Maintenance.MoveLeader. */
export const MOVE_LEADER_PATH = '/v3/maintenance/transfer-leadership';

export const TransferErrors = {
  notLeader: () => new KvError(GrpcCode.FailedPrecondition, 'etcdserver: not leader'),
  /** etcd's exact message (its client recognises errors by message); the reason goes to the member's log. */
  badTransferee: () => new KvError(GrpcCode.FailedPrecondition, 'etcdserver: bad leader transferee'),
  tookTooLong: () =>
    new KvError(GrpcCode.DeadlineExceeded, 'etcdserver: request timed out, leader transfer took too long'),
};

/**
 * Asks the leader (this member) to hand leadership to `target` and resolves once `target` leads, as this
 * member sees it, within `waitMs`. Rejects with etcd's errors: not leader, bad transferee, or took too long.
 */
export async function transferLeadership(node: RaftNode, target: NodeId, waitMs: number, log?: Logger): Promise<void> {
  if (!node.isLeader()) throw TransferErrors.notLeader();
  const r = node.transferLeadership(target);
  if (!r.ok) {
    log?.info({ target, reason: r.reason }, 'leadership transfer refused');
    throw TransferErrors.badTransferee();
  }
  if (node.raft.lead === target) return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      node.off('leaderChange', onChange);
      reject(TransferErrors.tookTooLong());
    }, waitMs);
    const onChange = (lead: NodeId): void => {
      if (lead !== target) return;
      clearTimeout(timer);
      node.off('leaderChange', onChange);
      resolve();
    };
    node.on('leaderChange', onChange);
  });
}

/** The voter best placed to take over from this leader: the one with the most of the log. */
export function bestSuccessor(node: RaftNode, self: NodeId): NodeId | undefined {
  let best: { id: NodeId; match: number } | undefined;
  for (const id of node.raft.votersList()) {
    if (id === self) continue;
    const match = node.raft.progressOf(id)?.match ?? 0;
    if (best === undefined || match > best.match) best = { id, match };
  }
  return best?.id;
}

export interface MoveLeaderTarget {
  node(): RaftNode;
  memberId: NodeId;
  electionTimeoutMs: number;
  header(): ResponseHeader;
}

/** POST /v3/maintenance/transfer-leadership {"targetID": "<decimal uint64>"} -> {"header": ...}. */
export function moveLeaderRoute(m: MoveLeaderTarget): ExtraRoute {
  return {
    method: 'POST',
    path: MOVE_LEADER_PATH,
    async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
      const body = parseJson(await readBody(req));
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw Errors.invalid('body: expected a JSON object');
      }
      const fields = body as Record<string, unknown>;
      for (const k of Object.keys(fields)) {
        if (k !== 'targetID' && k !== 'target_id') throw Errors.invalid(`${k}: unknown field`);
      }
      const raw = fields.targetID ?? fields.target_id;
      if ((typeof raw !== 'string' && typeof raw !== 'number') || !/^[0-9]+$/.test(String(raw))) {
        throw Errors.invalid('targetID: expected a member id (decimal uint64)');
      }
      const target = idFromJson(String(raw));
      // The core gives up after one election timeout; the news of a new leader may take a little longer.
      await transferLeadership(m.node(), target, 2 * m.electionTimeoutMs);
      sendJson(res, 200, { header: headerToJson(m.header()) });
    },
  };
}
