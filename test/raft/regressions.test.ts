// Regression tests for bugs that the simulation found in the Raft core. Each failed before its fix.

import t from 'tap';
import { EntryType, MessageType, StateRole } from '../../src/raft/core/types';

const ELECTION_TICK = 10;
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

t.test('a sole voter counts its own vote and its own entries only once they are durable', (t) => {
  // Found by the simulation once clusters could shrink to one voter (seeds 2058, 2897): the sole voter won
  // its election and committed its entries in memory, before its disk held its term or the entries. After a
  // crash it led the same term again with other entries at the same indexes; with a learner, which gets the
  // leader's appends before the leader's own write, the two would hold different entries under one
  // (index, term). etcd-raft counts the leader's own vote and entries once they are persisted, too.
  const r = new Raft({ id: 'a', peers: ['a'], seed: 1 });
  r.campaign();
  t.equal(r.role, StateRole.Candidate, 'a candidate until its vote is durable');
  const rd = r.ready();
  t.same([rd.hardState?.term, rd.hardState?.vote], [1, 'a']);
  r.advance(rd);
  t.equal(r.role, StateRole.Leader, 'the leader once it is');

  const c = new Cluster({ size: 1, spares: 1 });
  for (const m of c.members) m.earlySend = true;
  c.campaign(1);
  c.deliverAll();
  t.ok(c.proposeConfChange(1, { type: 'addLearner', nodeId: c.ids[1] }));
  c.deliverAll();
  c.r(1).propose(new Uint8Array(Buffer.from('w:1:a:unwritten')));
  const begun = c.begin(1);
  const index = begun?.entries[0]?.index ?? 0;
  const apps = c.queue.filter((m) => m.type === MessageType.App && m.to === c.ids[1]);
  t.equal(apps.length, 1, 'the append to the learner left before the write');
  t.ok((apps[0].commit ?? 0) < index, 'it does not say the new entry is committed');
  t.ok(c.r(1).log.commit < index, 'nor does the leader count it');
  c.crash(1);
  t.equal(c.checker.committedTerm(index), undefined, 'nobody ever saw it committed');
  t.end();
});

t.test('a voter hears a candidate added by a change it has not applied', (t) => {
  // Found by the simulation (seed 115): members ignored any sender not in their configuration. Member 2 of a
  // two-voter configuration holds the change that adds member 3 but does not know it is committed; the leader
  // is lost. Member 2 alone cannot win in its configuration {1, 2}; member 3 can, in {1, 2, 3}, with member
  // 2's vote, which member 2 never gave because it did not know member 3.
  const c = new Cluster({ size: 2, spares: 1 });
  const [a, b, cc] = c.ids;
  c.campaign(1);
  c.deliverAll();
  t.ok(c.proposeConfChange(1, { type: 'addVoter', nodeId: cc }));
  const index = c.r(1).log.lastIndex();
  // Member 2 gets the change, but no word that it is committed.
  c.filters = [(m) => !(m.from === a && m.to === b && (m.commit ?? 0) >= index)];
  c.deliverAll();
  c.tickAll(2);
  t.same(c.r(3).confState().voters, [a, b, cc], 'member 3 caught up and applied its addition');
  t.same(c.r(2).confState().voters, [a, b], 'member 2 did not');
  t.ok(c.r(2).log.lastIndex() >= index, 'though it holds the change');
  c.crash(1);
  c.heal();
  t.ok(c.electLeader(20 * ELECTION_TICK) >= 0, 'a leader is elected');
  t.same(c.leaders(), [3], 'member 3, with member 2’s vote');
  t.same(c.r(2).confState().voters, [a, b, cc], 'member 2 then learns and applies the change');
  t.end();
});

t.test('a candidate learns from the vote answers that a change it holds is committed', (t) => {
  // Found by the simulation (seed 485): the leader of {1, 2} removed itself, applied the removal and crashed
  // before member 2 learned that it was committed. Member 2, in its configuration {1, 2}, needed member 1's
  // vote, which member 1 (removed, with a longer log) refused: no leader, ever. Vote answers now carry the
  // voter's commit index; member 2 holds that entry, so it knows the removal is committed, applies it, and
  // wins alone in {2}.
  const c = new Cluster({ size: 2, config: { maxSizePerMsg: 1 } });
  const [a, b] = c.ids;
  c.campaign(1);
  c.deliverAll();
  t.ok(c.r(1).proposeConfChange({ type: 'removeNode', nodeId: a }));
  const index = c.r(1).log.lastIndex();
  t.ok(c.r(1).propose(new Uint8Array(Buffer.from('w:1:a:after'))), 'an entry after the removal');
  c.settle(1);
  // Member 2 gets the removal only: no later entry, no commit index covering it, no TimeoutNow.
  c.filters = [
    (m) =>
      !(
        m.to === b &&
        (m.type === MessageType.TimeoutNow || (m.commit ?? 0) >= index || (m.entries ?? []).some((e) => e.index > index))
      ),
  ];
  c.deliverAll();
  t.same(c.r(1).confState().voters, [b], 'member 1 applied its removal');
  t.ok(c.r(2).log.commit < index && c.r(2).log.lastIndex() === index, 'member 2 holds it, not knowing it is committed');
  c.crash(1);
  c.heal();
  c.restart(1);
  t.ok(c.r(1).log.lastIndex() > c.r(2).log.lastIndex(), 'member 1 comes back with a longer log');
  t.ok(c.electLeader(20 * ELECTION_TICK) >= 0, 'a leader is elected');
  t.same(c.leaders(), [2], 'member 2, alone in its new configuration');
  t.ok(
    c.delivered.some((m) => m.from === a && m.to === b && m.type === MessageType.PreVoteResp && m.reject && (m.commit ?? 0) >= index),
    'member 1 refused its vote, telling it the commit index',
  );
  t.same(c.r(2).confState(), { voters: [b], learners: [], removed: [a] });
  t.end();
});

t.test('a vote request of an older term is refused with the current term', (t) => {
  // Found by the simulation (seed 10151): etcd-raft ignores a Vote of an older term. A candidate that only
  // one voter could elect stayed behind that voter's term forever: the voter, behind in its log and its
  // configuration, kept campaigning (in vain) one term ahead, and ignored every request. Figure 2: "Reply
  // false if term < currentTerm", with currentTerm, "for candidate to update itself".
  const r = new Raft({ id: 'b', peers: ['a', 'b', 'c'], seed: 1, preVote: false });
  r.step({ type: MessageType.Vote, from: 'c', to: 'b', term: 5, index: 0, logTerm: 0 });
  r.advance(r.ready());
  r.step({ type: MessageType.Vote, from: 'a', to: 'b', term: 3, index: 9, logTerm: 2 });
  const answers = r.ready().messages.filter((m) => m.to === 'a');
  t.same(
    answers.map((m) => [m.type, m.term, m.reject]),
    [[MessageType.VoteResp, 5, true]],
    'the stale candidate is told term 5',
  );
  t.end();
});
