// Regression tests for bugs that the simulation found in the Raft core. Each failed before its fix.

import t from 'tap';
import { EntryType, MessageType } from '../../src/raft/core/types';
import { ProgressState } from '../../src/raft/core/progress';
import { Raft } from '../../src/raft/core/raft';
import { Cluster } from './fixtures/sim/cluster';

t.test('a follower in Replicate whose whole in-flight window was lost catches up on the next heartbeat', (t) => {
  // Found by the simulation (seed 6): with maxInflightMsgs appends lost, the window stayed full, heartbeat
  // answers did not send anything, and the follower never got another entry while the leader kept leading.
  const c = new Cluster({ size: 3, config: { maxInflightMsgs: 2 } });
  c.campaign(1);
  c.deliverAll();
  t.equal(c.leader(), 1);
  c.propose(1, 'w:1:a:x');
  c.deliverAll();
  const p2 = c.r(1).progressOf(c.ids[1]);
  t.equal(p2?.state, ProgressState.Replicate);
  // Two appends to member 2, both lost.
  c.filters = [(m) => !(m.type === MessageType.App && m.to === c.ids[1])];
  c.propose(1, 'w:2:a:y');
  c.propose(1, 'w:3:a:z');
  c.deliverAll();
  t.ok(p2?.inflights.full, 'the window is full of lost appends');
  c.heal();
  c.tickAll(20);
  t.equal(c.r(2).log.lastIndex(), c.r(1).log.lastIndex(), 'member 2 has every entry');
  t.equal(c.m(2).sm.applied, c.r(1).log.commit, 'and applied them');
  t.end();
});

t.test('a vote request that is refused does not restart the election timer (Figure 2)', (t) => {
  // Found by the simulation (seed 2693, pre-vote off): 4 of 7 members up, only one of them with a log good
  // enough to win. Every losing candidate's Vote moved the others to its term and restarted their election
  // timers, so the only electable member rarely timed out first, and no leader was elected within 50
  // election timeouts. Figure 2: "If election timeout elapses without receiving AppendEntries RPC from
  // current leader or granting vote to candidate: convert to candidate."
  const electionTick = 10;
  // Member 1 holds an entry of term 1; members 2 and 3 hold nothing.
  const start = (c: Cluster, seed: number): void => {
    c.crash(1);
    c.m(1).disk = {
      hardState: { term: 1, vote: '', commit: 0 },
      entries: [{ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) }],
    };
    c.restart(1, seed);
  };
  // How many ticks member 1 (election PRNG seed s) waits before campaigning, measured on a twin.
  const timeoutOf = (seed: number): number => {
    const c = new Cluster({ size: 3, config: { preVote: false } });
    start(c, seed);
    for (let n = 1; n <= 2 * electionTick; n++) {
      c.tick(1);
      if (c.r(1).term > 1) return n;
    }
    return -1;
  };
  let seed = 1;
  while (timeoutOf(seed) > 2 * electionTick - 2) seed++;
  const timeout = timeoutOf(seed);
  t.ok(timeout >= electionTick && timeout < 2 * electionTick - 1, `member 1 times out after ${timeout} ticks`);

  const c = new Cluster({ size: 3, config: { preVote: false } });
  start(c, seed);
  c.tick(1, electionTick - 1);
  t.equal(c.r(1).term, 1, 'member 1 has not timed out yet');
  // Member 2, with an empty log, asks for a vote in term 5: member 1 adopts the term and refuses.
  c.r(1).step({ type: MessageType.Vote, from: c.ids[1], to: c.ids[0], term: 5, index: 0, logTerm: 0 });
  c.settle(1);
  t.equal(c.r(1).term, 5, 'member 1 adopts the higher term');
  t.equal(c.r(1).vote, '', 'and refuses the vote');
  let more = 0;
  while (c.r(1).term === 5 && more < 2 * electionTick) {
    c.tick(1);
    more++;
  }
  t.equal(electionTick - 1 + more, timeout, 'member 1 campaigns when its original timeout elapses');
  t.end();
});

t.test('an acknowledgement of entries replaced before they were persisted is never sent', (t) => {
  // Found in review of the simulation's notes: a follower accepts entries 2..3 from the leader of term 1, and
  // before the driver takes the next Ready, the leader of term 2 replaces them. The term-1 acknowledgement of
  // index 3 was still queued; sent after the next fsync, it would let the deposed leader (which has not yet
  // heard of term 2) count a replica that never held entries 2..3 on disk, and commit them.
  const f = new Raft({ id: 'b', peers: ['a', 'b', 'c'], seed: 1, preVote: false, checkQuorum: false });
  const entry = (term: number, index: number) => ({ term, index, type: EntryType.Normal, data: new Uint8Array([index]) });
  f.step({ type: MessageType.App, from: 'a', to: 'b', term: 1, index: 0, logTerm: 0, entries: [entry(1, 1)], commit: 0 });
  const first = f.ready();
  f.advance(first);
  f.step({ type: MessageType.App, from: 'a', to: 'b', term: 1, index: 1, logTerm: 1, entries: [entry(1, 2), entry(1, 3)], commit: 1 });
  f.step({ type: MessageType.App, from: 'c', to: 'b', term: 2, index: 1, logTerm: 1, entries: [entry(2, 2)], commit: 1 });
  const rd = f.ready();
  t.same(rd.entries.map((e) => [e.index, e.term]), [[2, 2]], 'only the term-2 entry is persisted');
  const stale = rd.messages.filter((m) => m.type === MessageType.AppResp && m.term < 2 && !m.reject && m.index >= 2);
  t.same(stale, [], 'no term-1 acknowledgement of index 2 or 3 goes out');
  t.ok(rd.messages.some((m) => m.type === MessageType.AppResp && m.term === 2 && m.index === 2), 'the term-2 one does');
  t.end();
});
