// The commit-by-counting bug (src/bugs.ts) checked where it can be reached for certain: the paper's Figure 8,
// scripted step by step in the deterministic cluster of the Raft scenario tests (test/raft/fixtures/sim), on
// a broken copy of the compiled core, with the simulation's invariant checker running after every step.
//
// Why not (only) in a process-level run: a Keel leader sends its own no-op entry in the same append as the
// older entries it still has to replicate, so a majority that holds an older-term entry without the new one
// needs appends of one entry each (maxSizePerMsg 1 here) and a precise sequence of crashes and elections —
// which the seeded nemesis schedules did not produce in their budget. The same script on Keel's own core is
// test/raft/scenarios.test.ts ("Figure 8").

import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Raft } from '../../src/raft/core/raft';
import { EntryType, MessageType, type Entry, type Message } from '../../src/raft/core/types';
import { Cluster } from '../../test/raft/fixtures/sim/cluster';
import { InvariantViolation, type Disk } from '../../test/raft/fixtures/sim/member';
import { brokenBugsJs, repoRoot, type BugName } from './build';

/** dist/raft/core and a bugs.js with `bug` on, copied into `dir`; returns that copy's Raft class. */
export function brokenCore(dir: string, bug: BugName, root = repoRoot()): typeof Raft {
  const dist = join(root, 'dist');
  mkdirSync(dir, { recursive: true });
  cpSync(join(dist, 'raft', 'core'), join(dir, 'raft', 'core'), { recursive: true, dereference: true });
  writeFileSync(join(dir, 'bugs.js'), brokenBugsJs(readFileSync(join(dist, 'bugs.js'), 'utf8'), bug));
  // The core requires msgpackr: module resolution walks up from the copy.
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(join(dir, 'raft', 'core', 'raft.js')) as { Raft: typeof Raft }).Raft;
}

export interface Figure8Outcome {
  /** S1's commit index after it replicated index 2 (term 2) to a majority, before its no-op got there */
  s1Commit: number;
  /** what the invariant checker said, if it caught something */
  violation?: string;
}

function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(Buffer.from(data, 'latin1')) };
}

function disk(term: number, commit: number, entries: Entry[]): Disk {
  return { hardState: { term, vote: '', commit }, entries };
}

/**
 * Figure 8 (c) then (d): S1 (term 4) gets its term-2 index 2 onto S1, S2, S3 but not its term-4 no-op; S1 and
 * S2 crash; S5 (last term 3) is elected by S3 and S4 and overwrites index 2. A core that committed index 2 by
 * counting has lost a committed entry, which the checker reports.
 */
export function figure8(RaftClass: typeof Raft): Figure8Outcome {
  const disks: Disk[] = [
    disk(2, 1, [ent(1, 1), ent(2, 2, 'w:t2:x:from-term-2')]), // S1
    disk(2, 1, [ent(1, 1), ent(2, 2, 'w:t2:x:from-term-2')]), // S2
    disk(3, 1, [ent(1, 1)]), // S3
    disk(3, 1, [ent(1, 1)]), // S4
    disk(3, 1, [ent(1, 1), ent(2, 3, 'w:t3:x:from-term-3')]), // S5
  ];
  const c = new Cluster({
    size: 5,
    disks,
    config: { maxSizePerMsg: 1, preVote: false, checkQuorum: false },
    raftClass: RaftClass,
  });
  let s1Commit = 0;
  try {
    c.crash(5);
    c.isolate(4);
    // S1's no-op (index 3, term 4) never reaches S3; index 2 does (one entry per append).
    c.filters = [
      (m: Message) =>
        !(
          m.type === MessageType.App &&
          m.to === c.ids[2] &&
          (m.entries ?? []).some((e) => e.index >= 3) &&
          c.r(3).log.matchTerm(m.index, m.logTerm)
        ),
    ];
    c.r(1).term = 3;
    c.campaign(1);
    c.deliverAll();
    s1Commit = c.r(1).log.commit;
    c.crash(1);
    c.crash(2);
    c.heal();
    c.restart(5);
    for (let k = 0; k < 3 && c.leaders().length === 0; k++) {
      c.campaign(5);
      c.deliverAll();
    }
    c.deliverAll();
    c.restart(1);
    c.restart(2);
    c.tickAll(3);
  } catch (err) {
    if (err instanceof InvariantViolation) return { s1Commit, violation: err.message };
    throw err;
  }
  return { s1Commit };
}
