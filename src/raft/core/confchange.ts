// Membership changes, one server at a time (etcd-raft's ConfChange v1; Raft thesis §4.1-4.3): what a change
// is, whether it is valid for a configuration, the configuration it produces, and the bytes of the
// ConfChange entry that carries it. Pure: no state, no I/O.
//
// A ConfChange entry carries the change AND the whole configuration it produces (its `confState`), filled in
// by the leader when it proposes the change. The leader proposes only once every earlier change in its log
// is applied (raft.ts, proposeConfChange), so the configuration it starts from is exactly the one in force
// before the entry on every member, and the produced configuration is the same everywhere. Carrying it
// means any member knows the configuration at every applied index from the log alone, without knowing the
// configuration the cluster started with: a member that joins with an empty log and is caught up from
// index 1 (the leader never compacted) learns its configuration from the first ConfChange entry it applies.

import { Packr } from 'msgpackr';
import type { ConfState, NodeId } from './types';

export type ConfChangeType = 'addVoter' | 'addLearner' | 'removeNode' | 'promoteLearner';

const TYPES: readonly ConfChangeType[] = ['addVoter', 'addLearner', 'removeNode', 'promoteLearner'];

/** A change of one member, as proposed (etcd's ConfChange: AddNode, AddLearnerNode, RemoveNode; promotion
 *  is etcd's AddNode of a learner, named for what it does). `context` is opaque to Raft: the member puts
 *  what it needs to know about the member there (etcd: the member's name and peer URLs). */
export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  context?: Uint8Array;
}

/** What the data of an EntryType.ConfChange entry decodes to: the change, and the configuration once it
 *  is applied. */
export interface ConfChangeData extends ConfChange {
  confState: ConfState;
}

// Plain maps (no msgpackr records), so the entry is readable by any MessagePack decoder, as the WAL's.
const packr = new Packr({ useRecords: false, copyBuffers: true });

export function encodeConfChange(d: ConfChangeData): Uint8Array {
  const body: Record<string, unknown> = {
    type: d.type,
    nodeId: d.nodeId,
    voters: [...d.confState.voters],
    learners: [...d.confState.learners],
    removed: [...(d.confState.removed ?? [])],
  };
  if (d.context !== undefined) body.context = d.context;
  return packr.pack(body);
}

/** A ConfChange entry whose data is not a ConfChangeData. */
export class ConfChangeDecodeError extends Error {
  override name = 'ConfChangeDecodeError';
}

/** Decodes the data of a ConfChange entry; throws a ConfChangeDecodeError naming what is wrong. */
export function decodeConfChange(data: Uint8Array): ConfChangeData {
  let v: unknown;
  try {
    v = packr.unpack(data);
  } catch (err) {
    throw new ConfChangeDecodeError(`conf change: undecodable entry data: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
    throw new ConfChangeDecodeError('conf change: entry data is not a map');
  }
  const f = v as Record<string, unknown>;
  if (!TYPES.includes(f.type as ConfChangeType)) {
    throw new ConfChangeDecodeError(`conf change: unknown type ${JSON.stringify(f.type)}`);
  }
  if (typeof f.nodeId !== 'string' || f.nodeId === '') {
    throw new ConfChangeDecodeError('conf change: nodeId is not a non-empty string');
  }
  if (f.context !== undefined && !(f.context instanceof Uint8Array)) {
    throw new ConfChangeDecodeError('conf change: context is not bytes');
  }
  const voters = idList(f.voters, 'voters');
  const learners = idList(f.learners, 'learners');
  const removed = idList(f.removed, 'removed');
  const d: ConfChangeData = { type: f.type as ConfChangeType, nodeId: f.nodeId, confState: { voters, learners, removed } };
  if (f.context !== undefined) d.context = new Uint8Array(f.context as Uint8Array);
  return d;
}

function idList(v: unknown, name: string): NodeId[] {
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string' && x !== '')) {
    throw new ConfChangeDecodeError(`conf change: ${name} is not a list of member ids`);
  }
  return [...v];
}

/** The configuration in its canonical form: lists sorted (as etcd-raft reports them), no id twice,
 *  `removed` present. */
export function normalConfState(cs: ConfState): Required<ConfState> {
  const norm = (ids: readonly NodeId[] | undefined): NodeId[] => [...new Set(ids ?? [])].sort();
  return { voters: norm(cs.voters), learners: norm(cs.learners), removed: norm(cs.removed) };
}

export function sameConfState(a: ConfState, b: ConfState): boolean {
  const x = normalConfState(a);
  const y = normalConfState(b);
  return sameList(x.voters, y.voters) && sameList(x.learners, y.learners) && sameList(x.removed, y.removed);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * The configuration `cc` produces from `cs`, or why it is refused. Like etcd's membership checks
 * (ErrIDExists, ErrIDNotFound, ErrMemberNotLearner), with the one-server-at-a-time rule that a
 * configuration keeps at least one voter.
 */
export function changeConfState(cs: ConfState, cc: ConfChange): ConfState | { refused: string } {
  const { nodeId } = cc;
  if (typeof nodeId !== 'string' || nodeId === '') return { refused: 'the member id is empty' };
  const isVoter = cs.voters.includes(nodeId);
  const isLearner = cs.learners.includes(nodeId);
  const removed = cs.removed ?? [];
  switch (cc.type) {
    case 'addVoter':
    case 'addLearner':
      if (removed.includes(nodeId)) return { refused: `member ${nodeId} was removed; its id cannot be used again` };
      if (isVoter) return { refused: `member ${nodeId} is already a voter` };
      if (isLearner) {
        return {
          refused:
            cc.type === 'addLearner'
              ? `member ${nodeId} is already a learner`
              : `member ${nodeId} is a learner: promote it instead of adding it`,
        };
      }
      return cc.type === 'addVoter'
        ? normalConfState({ voters: [...cs.voters, nodeId], learners: cs.learners, removed })
        : normalConfState({ voters: cs.voters, learners: [...cs.learners, nodeId], removed });
    case 'promoteLearner':
      if (isVoter) return { refused: `member ${nodeId} is already a voter, not a learner` };
      if (!isLearner) return { refused: `member ${nodeId} is not a member` };
      return normalConfState({ voters: [...cs.voters, nodeId], learners: cs.learners.filter((id) => id !== nodeId), removed });
    case 'removeNode':
      if (!isVoter && !isLearner) return { refused: `member ${nodeId} is not a member` };
      if (isVoter && cs.voters.length === 1) return { refused: `member ${nodeId} is the last voter` };
      return normalConfState({
        voters: cs.voters.filter((id) => id !== nodeId),
        learners: cs.learners.filter((id) => id !== nodeId),
        removed: [...removed, nodeId],
      });
    default:
      return { refused: `unknown conf change type ${JSON.stringify((cc as { type: unknown }).type)}` };
  }
}
