// Helpers shared by the nemeses: event construction, error text, and the choices every fault makes.

import type { ClusterUnderTest, NemesisEvent, NemesisKind, Rng } from '../types';

/** How long a nemesis asks the cluster for its leader before acting without one. */
export const LEADER_TIMEOUT_MS = 3_000;

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function event(phase: 'start' | 'stop', kind: NemesisKind, value: unknown, errors: string[] = []): NemesisEvent {
  const ev: NemesisEvent = { f: `${phase}-${kind}`, value };
  if (errors.length > 0) ev.error = errors.join('; ');
  return ev;
}

/** Runs `action` on every name at once; returns the names it succeeded on and a message per failure. */
export async function onEach(
  names: readonly string[],
  action: (name: string) => Promise<void> | void,
  verb: string,
): Promise<{ done: string[]; errors: string[] }> {
  const results = await Promise.allSettled(names.map(async (n) => action(n)));
  const done: string[] = [];
  const errors: string[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') done.push(names[i]!);
    else errors.push(`${verb} ${names[i]}: ${errorText(r.reason)}`);
  });
  return { done, errors };
}

/** The current members whose process runs: the ones a process fault can act on. */
export function runningMembers(cluster: ClusterUnderTest): string[] {
  return cluster.members().filter((n) => cluster.state(n) === 'running');
}

/** The largest group that is still a minority of `n` (at least 1). */
export function minoritySize(n: number): number {
  return Math.max(1, Math.floor((n - 1) / 2));
}

export function majoritySize(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** Picks one of `choices` with probability proportional to its weight. */
export function weighted<T>(rng: Rng, choices: readonly (readonly [T, number])[]): T {
  const total = choices.reduce((s, [, w]) => s + w, 0);
  let x = rng.next() * total;
  for (const [value, w] of choices) {
    if (x < w) return value;
    x -= w;
  }
  return choices[choices.length - 1]![0];
}

/** The leader's name, or undefined when none answers (never throws: a nemesis can act without it). */
export async function leaderOrNone(cluster: ClusterUnderTest): Promise<string | undefined> {
  try {
    return await cluster.leader(LEADER_TIMEOUT_MS);
  } catch {
    return undefined;
  }
}
