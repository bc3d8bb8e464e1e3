// Administrative "faults": things an operator does to a healthy cluster that the clients must not notice
// beyond latency. Leadership transfer, compaction and membership changes are done in `start`; there is
// nothing to repair, so `stop` only records the end of the interval.

import type { Nemesis, NemesisContext, NemesisEvent } from '../types';
import { errorText, event, leaderOrNone, runningMembers } from './common';

/** The smallest cluster a shrink may leave. */
export const MIN_MEMBERS = 3;
/** How many members a grow may add beyond the size the first start saw. */
export const MAX_EXTRA_MEMBERS = 2;

export class TransferNemesis implements Nemesis {
  readonly kind = 'transfer' as const;

  async start(ctx: NemesisContext): Promise<NemesisEvent> {
    const from = await leaderOrNone(ctx.cluster);
    if (from === undefined) return event('start', this.kind, { from: null }, ['no leader to transfer from']);
    const candidates = runningMembers(ctx.cluster).filter((n) => n !== from);
    if (candidates.length === 0) return event('start', this.kind, { from }, ['no other running member to transfer to']);
    const to = ctx.rng.pick(candidates);
    try {
      await ctx.cluster.transferLeader(to);
      return event('start', this.kind, { from, to });
    } catch (err) {
      return event('start', this.kind, { from, to }, [`transfer ${from} -> ${to}: ${errorText(err)}`]);
    }
  }

  async stop(): Promise<NemesisEvent> {
    return event('stop', this.kind, null);
  }
}

export class CompactNemesis implements Nemesis {
  readonly kind = 'compact' as const;

  async start(ctx: NemesisContext): Promise<NemesisEvent> {
    try {
      return event('start', this.kind, { revision: await ctx.cluster.compact() });
    } catch (err) {
      return event('start', this.kind, { revision: null }, [`compact: ${errorText(err)}`]);
    }
  }

  async stop(): Promise<NemesisEvent> {
    return event('stop', this.kind, null);
  }
}

/**
 * Grows the cluster by one member or shrinks it by one, keeping its size between MIN_MEMBERS and the size
 * the first start saw plus MAX_EXTRA_MEMBERS (so that a run neither loses its quorum to shrinks nor grows
 * without bound).
 */
export class MembershipNemesis implements Nemesis {
  readonly kind = 'membership' as const;
  private initialSize: number | undefined;

  async start(ctx: NemesisContext): Promise<NemesisEvent> {
    const members = ctx.cluster.members();
    this.initialSize ??= members.length;
    const actions: ('grow' | 'shrink')[] = [];
    if (members.length < this.initialSize + MAX_EXTRA_MEMBERS) actions.push('grow');
    if (members.length > MIN_MEMBERS) actions.push('shrink');
    if (actions.length === 0) return event('start', this.kind, { members }, [`no room to grow or shrink ${members.length} members`]);
    const action = ctx.rng.pick(actions);
    let node = action === 'shrink' ? ctx.rng.pick(members) : undefined;
    try {
      if (node === undefined) node = await ctx.cluster.grow();
      else await ctx.cluster.shrink(node);
      return event('start', this.kind, { action, node, members: ctx.cluster.members() });
    } catch (err) {
      return event('start', this.kind, { action, node: node ?? null, members: ctx.cluster.members() }, [`${action}: ${errorText(err)}`]);
    }
  }

  async stop(): Promise<NemesisEvent> {
    return event('stop', this.kind, null);
  }
}
