// Faults on member processes: SIGKILL + restart, SIGSTOP + SIGCONT, and a damaged WAL tail before a restart.
// Each remembers the members it acted on, so `stop` repairs exactly those (and a second `stop` does nothing).

import fs from 'node:fs';
import path from 'node:path';
import type { Nemesis, NemesisContext, NemesisEvent, Rng } from '../types';
import { errorText, event, leaderOrNone, majoritySize, minoritySize, onEach, runningMembers, weighted } from './common';

export type KillScope = 'one' | 'minority' | 'majority' | 'all';

/**
 * Which running members to kill. Weighted toward one member or a minority (the cluster stays available);
 * a majority or all sometimes, since only losing a quorum at once exposes an acknowledgement given before
 * the data was durable.
 */
export function chooseKill(members: number, running: readonly string[], rng: Rng): { scope: KillScope; names: string[] } {
  const scope = weighted<KillScope>(rng, [
    ['one', 4],
    ['minority', 3],
    ['majority', 2],
    ['all', 1],
  ]);
  const size = { one: 1, minority: minoritySize(members), majority: majoritySize(members), all: members }[scope];
  return { scope, names: rng.shuffle(running).slice(0, size) };
}

export class KillNemesis implements Nemesis {
  readonly kind = 'kill' as const;
  private killed: string[] = [];

  async start(ctx: NemesisContext): Promise<NemesisEvent> {
    const running = runningMembers(ctx.cluster);
    if (running.length === 0) return event('start', this.kind, { killed: [] }, ['no running member to kill']);
    const { scope, names } = chooseKill(ctx.cluster.members().length, running, ctx.rng);
    const { done, errors } = await onEach(names, (n) => ctx.cluster.kill(n), 'kill');
    this.killed.push(...done);
    return event('start', this.kind, { scope, killed: done }, errors);
  }

  async stop(ctx: NemesisContext): Promise<NemesisEvent> {
    const names = this.killed;
    this.killed = [];
    const { done, errors } = await onEach(names, (n) => ctx.cluster.restart(n), 'restart');
    return event('stop', this.kind, { restarted: done }, errors);
  }
}

/** The leader half of the time (pausing it is what breaks lease-based reads and locks), else any one or a minority. */
export class PauseNemesis implements Nemesis {
  readonly kind = 'pause' as const;
  private paused: string[] = [];

  async start(ctx: NemesisContext): Promise<NemesisEvent> {
    const running = runningMembers(ctx.cluster);
    if (running.length === 0) return event('start', this.kind, { paused: [] }, ['no running member to pause']);
    const scope = weighted(ctx.rng, [
      ['leader', 2],
      ['one', 1],
      ['minority', 1],
    ] as const);
    let names: string[];
    if (scope === 'leader') {
      const leader = await leaderOrNone(ctx.cluster);
      names = [leader !== undefined && running.includes(leader) ? leader : ctx.rng.pick(running)];
    } else {
      const size = scope === 'one' ? 1 : minoritySize(ctx.cluster.members().length);
      names = ctx.rng.shuffle(running).slice(0, size);
    }
    const { done, errors } = await onEach(names, (n) => ctx.cluster.pause(n), 'pause');
    this.paused.push(...done);
    return event('start', this.kind, { scope, paused: done }, errors);
  }

  async stop(ctx: NemesisContext): Promise<NemesisEvent> {
    const names = this.paused;
    this.paused = [];
    const { done, errors } = await onEach(names, (n) => ctx.cluster.resume(n), 'resume');
    return event('stop', this.kind, { resumed: done }, errors);
  }
}

/**
 * Kills one member, damages its WAL tail (cut short or one bit flipped), and restarts it in `stop`. The
 * member must repair the tail or refuse to start with a clear error; a refusal is recorded in the stop
 * event and the run goes on without that member (never silently wrong data, never a crashed harness).
 */
/** The directory holding a member's WAL segments: Keel's <data-dir>/wal, etcd's <data-dir>/member/wal. */
function walDirOf(dataDir: string): string | undefined {
  for (const dir of [path.join(dataDir, 'wal'), path.join(dataDir, 'member', 'wal')]) if (fs.existsSync(dir)) return dir;
  return undefined;
}

/**
 * Damages a killed member's WAL tail, then restarts it. A member may repair a torn tail or refuse damage with an
 * error naming the WAL — both are right (what would be wrong is serving different data, which the checkers
 * look for). A refusal is recorded as such; then, as an operator restoring the log from a backup would, the
 * nemesis puts back the WAL as it was before the damage and restarts the member, so that the cluster keeps its
 * members and a later fault cannot cost it its quorum for good.
 */
export class CorruptNemesis implements Nemesis {
  readonly kind = 'corrupt' as const;
  private victim: { node: string; walDir?: string; backup?: string } | undefined;

  async start(ctx: NemesisContext): Promise<NemesisEvent> {
    const running = runningMembers(ctx.cluster);
    if (running.length === 0) return event('start', this.kind, { node: null }, ['no running member to corrupt']);
    const node = ctx.rng.pick(running);
    const mode = ctx.rng.pick(['truncate', 'bitflip'] as const);
    try {
      await ctx.cluster.kill(node);
    } catch (err) {
      return event('start', this.kind, { node, mode }, [`kill ${node}: ${errorText(err)}`]);
    }
    const dataDir = ctx.cluster.nodes.find((n) => n.name === node)?.dataDir;
    const walDir = dataDir === undefined ? undefined : walDirOf(dataDir);
    this.victim = { node };
    if (walDir !== undefined) {
      const backup = `${walDir}.before-corrupt`;
      fs.rmSync(backup, { recursive: true, force: true });
      fs.cpSync(walDir, backup, { recursive: true });
      this.victim = { node, walDir, backup };
    }
    try {
      const damage = await ctx.cluster.corruptWal(node, mode, ctx.rng);
      return event('start', this.kind, { node, mode, damage });
    } catch (err) {
      return event('start', this.kind, { node, mode }, [`corrupt ${node}'s WAL: ${errorText(err)}`]);
    }
  }

  async stop(ctx: NemesisContext): Promise<NemesisEvent> {
    const v = this.victim;
    this.victim = undefined;
    if (v === undefined) return event('stop', this.kind, { node: null });
    try {
      await ctx.cluster.restart(v.node);
      if (v.backup) fs.rmSync(v.backup, { recursive: true, force: true });
      return event('stop', this.kind, { node: v.node, restarted: true });
    } catch (err) {
      const refused = errorText(err);
      if (v.walDir === undefined || v.backup === undefined) {
        return event('stop', this.kind, { node: v.node, restarted: false, refused }, [`${v.node} stays down: no WAL backup to restore`]);
      }
      try {
        fs.rmSync(v.walDir, { recursive: true, force: true });
        fs.renameSync(v.backup, v.walDir);
        await ctx.cluster.restart(v.node);
        return event('stop', this.kind, { node: v.node, restarted: true, refused, restoredWal: true });
      } catch (err2) {
        return event('stop', this.kind, { node: v.node, restarted: false, refused, restoredWal: true }, [
          `${v.node} did not restart even with its WAL restored: ${errorText(err2)}`,
        ]);
      }
    }
  }
}
