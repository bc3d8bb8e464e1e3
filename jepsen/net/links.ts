// The faults in force on the directed links between the known members: pure bookkeeping, no sockets. The
// proxies (net.ts) ask it about a link on every chunk, so a change applies at once to open connections.

import type { LinkFault } from '../types';

function checkFault(fault: LinkFault): void {
  const { delayMs, jitterMs, dropProbability } = fault;
  if (delayMs !== undefined && !(Number.isFinite(delayMs) && delayMs >= 0)) {
    throw new Error(`link delayMs must be a number >= 0, got ${String(delayMs)}`);
  }
  if (jitterMs !== undefined && !(Number.isFinite(jitterMs) && jitterMs >= 0)) {
    throw new Error(`link jitterMs must be a number >= 0, got ${String(jitterMs)}`);
  }
  if (dropProbability !== undefined && !(dropProbability >= 0 && dropProbability <= 1)) {
    throw new Error(`link dropProbability must be in [0, 1], got ${String(dropProbability)}`);
  }
}

/** True when the fault does nothing (every field absent, false or zero). */
function harmless(f: LinkFault): boolean {
  return !f.block && !f.delayMs && !f.jitterMs && !f.dropProbability;
}

export class LinkTable {
  /** the members, in the order they were added: the order of `describe()` */
  private readonly names: string[] = [];
  /** from -> to -> fault; only harmful faults are kept */
  private readonly faults = new Map<string, Map<string, LinkFault>>();

  addName(name: string): void {
    if (this.names.includes(name)) throw new Error(`node "${name}" is already on the network`);
    this.names.push(name);
  }

  has(name: string): boolean {
    return this.names.includes(name);
  }

  private known(name: string): void {
    if (!this.has(name)) throw new Error(`unknown node "${name}" (the network knows: ${this.names.join(', ') || 'none'})`);
  }

  get(from: string, to: string): LinkFault | undefined {
    return this.faults.get(from)?.get(to);
  }

  set(from: string, to: string, fault: LinkFault | undefined): void {
    this.known(from);
    this.known(to);
    if (from === to) throw new Error(`a link needs two different nodes, got ${from} -> ${to}`);
    let row = this.faults.get(from);
    if (fault === undefined || harmless(fault)) {
      row?.delete(to);
      return;
    }
    checkFault(fault);
    if (!row) this.faults.set(from, (row = new Map()));
    row.set(to, { ...fault });
  }

  /**
   * Replaces the blocked set by the one `groups` imply: a link is blocked (both directions) unless both of
   * its ends are in one group; a node in no group is cut off from everyone. Delays and drops stay.
   */
  partition(groups: readonly (readonly string[])[]): void {
    const groupOf = new Map<string, number>();
    groups.forEach((group, i) => {
      for (const name of group) {
        this.known(name);
        if (groupOf.has(name)) throw new Error(`node "${name}" is in more than one partition group`);
        groupOf.set(name, i);
      }
    });
    for (const from of this.names) {
      for (const to of this.names) {
        if (from === to) continue;
        const g = groupOf.get(from);
        const blocked = g === undefined || g !== groupOf.get(to);
        this.set(from, to, { ...this.get(from, to), block: blocked });
      }
    }
  }

  heal(): void {
    this.faults.clear();
  }

  /** Every (from, to) with a fault, in node order. */
  links(): { from: string; to: string; fault: LinkFault }[] {
    const out: { from: string; to: string; fault: LinkFault }[] = [];
    for (const from of this.names) {
      for (const to of this.names) {
        const fault = this.get(from, to);
        if (fault) out.push({ from, to, fault });
      }
    }
    return out;
  }

  /** e.g. "n1 -x- n2,n3 | n4 -> n5 blocked | delay n1->n2 50±10ms | drop n2->n3 10%", or "healthy". */
  describe(): string {
    const parts: string[] = [];
    const blocked = (a: string, b: string): boolean => this.get(a, b)?.block === true;
    for (const a of this.names) {
      // Both directions cut: written once, from the earlier node.
      const both = this.names.filter((b) => this.names.indexOf(b) > this.names.indexOf(a) && blocked(a, b) && blocked(b, a));
      if (both.length > 0) parts.push(`${a} -x- ${both.join(',')}`);
    }
    for (const a of this.names) {
      const oneWay = this.names.filter((b) => blocked(a, b) && !blocked(b, a));
      if (oneWay.length > 0) parts.push(`${a} -> ${oneWay.join(',')} blocked`);
    }
    for (const { from, to, fault } of this.links()) {
      if (fault.block) continue; // a blocked link passes nothing: its delay or drop does not matter now
      if (fault.delayMs || fault.jitterMs) parts.push(`delay ${from}->${to} ${fault.delayMs ?? 0}±${fault.jitterMs ?? 0}ms`);
      if (fault.dropProbability) parts.push(`drop ${from}->${to} ${Math.round(fault.dropProbability * 1000) / 10}%`);
    }
    return parts.length > 0 ? parts.join(' | ') : 'healthy';
  }
}
