// Slow and lossy links: a delay (with jitter) or a drop probability on all directed links between the
// members, or on a random subset of them. `stop` heals exactly the links it faulted.

import type { LinkFault, Nemesis, NemesisContext, NemesisEvent, NemesisKind, Rng } from '../types';
import { errorText, event } from './common';
import type { Link } from './partition';

/** Every directed link among `names` (scope all), or each with probability 1/2, at least one (scope some). */
export function chooseLinks(names: readonly string[], rng: Rng): { scope: 'all' | 'some'; links: Link[] } {
  const all: Link[] = [];
  for (const from of names) for (const to of names) if (from !== to) all.push({ from, to });
  if (all.length === 0 || rng.next() < 0.3) return { scope: 'all', links: all };
  const some = all.filter(() => rng.next() < 0.5);
  return { scope: 'some', links: some.length > 0 ? some : [rng.pick(all)] };
}

abstract class LinkFaultNemesis implements Nemesis {
  abstract readonly kind: NemesisKind;
  private faulted: Link[] = [];

  /** the fault to put on the chosen links, and how the history describes it */
  protected abstract fault(rng: Rng): LinkFault;

  async start(ctx: NemesisContext): Promise<NemesisEvent> {
    const { scope, links } = chooseLinks(ctx.cluster.members(), ctx.rng);
    const fault = this.fault(ctx.rng);
    const errors: string[] = [];
    for (const link of links) {
      try {
        ctx.net.setLink(link.from, link.to, fault);
        this.faulted.push(link);
      } catch (err) {
        errors.push(`${link.from}->${link.to}: ${errorText(err)}`);
      }
    }
    const linkNames = links.map((l) => `${l.from}->${l.to}`);
    return event('start', this.kind, { scope, links: linkNames, ...fault }, errors);
  }

  async stop(ctx: NemesisContext): Promise<NemesisEvent> {
    const errors: string[] = [];
    for (const link of this.faulted) {
      try {
        ctx.net.setLink(link.from, link.to, undefined);
      } catch (err) {
        errors.push(`heal ${link.from}->${link.to}: ${errorText(err)}`);
      }
    }
    const healed = this.faulted.length;
    this.faulted = [];
    return event('stop', this.kind, { healedLinks: healed, net: ctx.net.describe() }, errors);
  }
}

/** 50–200 ms per chunk, plus up to half that again of jitter. */
export class DelayNemesis extends LinkFaultNemesis {
  readonly kind = 'delay' as const;
  protected fault(rng: Rng): LinkFault {
    const delayMs = 50 + rng.int(151);
    return { delayMs, jitterMs: rng.int(Math.floor(delayMs / 2) + 1) };
  }
}

/** A reset with probability 5–30% per chunk: streams on the link break and reconnect again and again. */
export class DropNemesis extends LinkFaultNemesis {
  readonly kind = 'drop' as const;
  protected fault(rng: Rng): LinkFault {
    return { dropProbability: (5 + rng.int(26)) / 100 };
  }
}
