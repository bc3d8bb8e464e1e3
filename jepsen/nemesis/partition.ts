// Network partitions, in the shapes Jepsen uses against etcd. Each shape is computed as a set of blocked
// directed links (planPartition, pure) and applied link by link, so that shapes no set of disjoint groups can
// express (a ring, a bridge, a one-way cut) go through the same path as plain halves.
//
//   leader   the leader (or, if none answers, a random member) cut off from everyone
//   halves   a random minority of floor(n/2) members cut off from the rest
//   ring     members in a random ring, each sees only its two neighbours: every member sees a majority
//            (itself and two others, for 4 or 5 members) but no majority is fully connected (needs 4+)
//   bridge   two halves that cannot see each other, joined by one member that sees both: two majorities
//            that overlap in that member
//   one-way  one member's outgoing links to everyone blocked, its incoming links open

import type { Nemesis, NemesisContext, NemesisEvent, Rng } from '../types';
import { errorText, event, leaderOrNone } from './common';

export type PartitionShape = 'leader' | 'halves' | 'ring' | 'bridge' | 'one-way';

export interface Link {
  from: string;
  to: string;
}

export interface PartitionPlan {
  shape: PartitionShape;
  /** blocked directed links, in the order of `names` */
  blocked: Link[];
  /** for the history: who sees whom */
  detail: Record<string, unknown>;
}

/** The shapes that mean something for `n` members (a ring of 3 is everyone seeing everyone). */
export function shapesFor(n: number): PartitionShape[] {
  return n >= 4 ? ['leader', 'halves', 'ring', 'bridge', 'one-way'] : ['leader', 'halves', 'bridge', 'one-way'];
}

/** Blocks every link whose two ends share no group (groups may overlap); names in no group see no one. */
export function blockedOutside(names: readonly string[], groups: readonly (readonly string[])[]): Link[] {
  const blocked: Link[] = [];
  for (const from of names) {
    for (const to of names) {
      if (from !== to && !groups.some((g) => g.includes(from) && g.includes(to))) blocked.push({ from, to });
    }
  }
  return blocked;
}

/**
 * The blocked links of one partition of `names` (at least 2). `leader` is used by the leader shape; a random
 * member stands in when it is undefined or not among `names`.
 */
export function planPartition(shape: PartitionShape, names: readonly string[], rng: Rng, leader?: string): PartitionPlan {
  if (names.length < 2) throw new Error(`a partition needs at least 2 members, got ${names.length}`);
  const order = rng.shuffle(names);
  switch (shape) {
    case 'leader': {
      const alone = leader !== undefined && names.includes(leader) ? leader : order[0]!;
      const rest = names.filter((n) => n !== alone);
      return { shape, blocked: blockedOutside(names, [[alone], rest]), detail: { isolated: alone, leaderKnown: alone === leader } };
    }
    case 'halves': {
      const minority = order.slice(0, Math.floor(names.length / 2));
      const majority = order.slice(minority.length);
      return { shape, blocked: blockedOutside(names, [minority, majority]), detail: { groups: [minority, majority] } };
    }
    case 'ring': {
      if (names.length < 4) throw new Error(`a ring partition needs at least 4 members, got ${names.length}`);
      // Each neighbouring pair is a group of its own: a member sees exactly its two neighbours.
      const pairs = order.map((n, i) => [n, order[(i + 1) % order.length]!]);
      return { shape, blocked: blockedOutside(names, pairs), detail: { ring: order } };
    }
    case 'bridge': {
      const bridge = order[0]!;
      const half = Math.floor((names.length - 1) / 2);
      const left = order.slice(1, 1 + half);
      const right = order.slice(1 + half);
      return {
        shape,
        blocked: blockedOutside(names, [[bridge, ...left], [bridge, ...right]]),
        detail: { bridge, halves: [left, right] },
      };
    }
    case 'one-way': {
      const mute = order[0]!;
      const blocked = names.filter((n) => n !== mute).map((to) => ({ from: mute, to }));
      return { shape, blocked, detail: { mute } };
    }
  }
}

export class PartitionNemesis implements Nemesis {
  readonly kind = 'partition' as const;
  /** the links this nemesis blocked and has not healed yet */
  private blocked: Link[] = [];

  async start(ctx: NemesisContext): Promise<NemesisEvent> {
    const names = ctx.cluster.members();
    if (names.length < 2) return event('start', this.kind, { members: names }, ['a partition needs at least 2 members']);
    const shape = ctx.rng.pick(shapesFor(names.length));
    const leader = shape === 'leader' ? await leaderOrNone(ctx.cluster) : undefined;
    const plan = planPartition(shape, names, ctx.rng, leader);
    const errors: string[] = [];
    for (const link of plan.blocked) {
      try {
        ctx.net.setLink(link.from, link.to, { block: true });
        this.blocked.push(link);
      } catch (err) {
        errors.push(`block ${link.from}->${link.to}: ${errorText(err)}`);
      }
    }
    return event('start', this.kind, { shape, ...plan.detail, net: ctx.net.describe() }, errors);
  }

  async stop(ctx: NemesisContext): Promise<NemesisEvent> {
    const errors: string[] = [];
    for (const link of this.blocked) {
      try {
        ctx.net.setLink(link.from, link.to, undefined);
      } catch (err) {
        errors.push(`heal ${link.from}->${link.to}: ${errorText(err)}`);
      }
    }
    const healed = this.blocked.length;
    this.blocked = [];
    return event('stop', this.kind, { healedLinks: healed, net: ctx.net.describe() }, errors);
  }
}
