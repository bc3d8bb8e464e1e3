// The nemeses by name: `--nemesis kill,pause,partition` becomes one fresh Nemesis per kind (each holds what
// it must repair, so a run gets its own instances).

import type { Nemesis, NemesisKind } from '../types';
import { CompactNemesis, MembershipNemesis, TransferNemesis } from './admin-faults';
import { DelayNemesis, DropNemesis } from './link-faults';
import { PartitionNemesis } from './partition';
import { CorruptNemesis, KillNemesis, PauseNemesis } from './process-faults';

const FACTORIES: Record<NemesisKind, () => Nemesis> = {
  partition: () => new PartitionNemesis(),
  delay: () => new DelayNemesis(),
  drop: () => new DropNemesis(),
  kill: () => new KillNemesis(),
  pause: () => new PauseNemesis(),
  corrupt: () => new CorruptNemesis(),
  transfer: () => new TransferNemesis(),
  compact: () => new CompactNemesis(),
  membership: () => new MembershipNemesis(),
};

export const NEMESIS_KINDS = Object.keys(FACTORIES) as NemesisKind[];

export function isNemesisKind(name: string): name is NemesisKind {
  return Object.prototype.hasOwnProperty.call(FACTORIES, name);
}

function unknownKind(name: string): Error {
  return new Error(`unknown nemesis "${name}" (valid: ${NEMESIS_KINDS.join(', ')})`);
}

export function createNemeses(kinds: readonly NemesisKind[]): Nemesis[] {
  return kinds.map((kind) => {
    if (!isNemesisKind(kind)) throw unknownKind(kind);
    return FACTORIES[kind]();
  });
}

/** "kill,pause,partition" -> its kinds, in order, each once; "none" or "" -> no nemesis. */
export function parseNemesisList(text: string): NemesisKind[] {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'none') return [];
  const kinds: NemesisKind[] = [];
  for (const raw of trimmed.split(',')) {
    const name = raw.trim();
    if (name === '') throw new Error(`empty name in nemesis list "${text}"`);
    if (!isNemesisKind(name)) throw unknownKind(name);
    if (!kinds.includes(name)) kinds.push(name);
  }
  return kinds;
}
