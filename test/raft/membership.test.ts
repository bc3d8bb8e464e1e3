// Scenario tests for membership changes and leadership transfer in the Raft core, in the manner of
// scenarios.test.ts: each cites the thesis ("Consensus: Bridging Theory and Practice", Ongaro 2014), etcd's
// behaviour or the raft-dev post it checks, and every step also runs the simulation's invariant checker
// (quorums counted in the right configuration, one change at a time, removed members never leading, ...).

import t from 'tap';
import { decodeConfChange, encodeConfChange, type ConfChange } from '../../src/raft/core/confchange';
import { Raft } from '../../src/raft/core/raft';
import { EntryType, MessageType, StateRole, type Message } from '../../src/raft/core/types';
import { Cluster } from './fixtures/sim/cluster';

const ELECTION = 10;

/** A cluster whose member 1 leads, with its no-op committed everywhere. */
function led(size: number, opts: { spares?: number; preVote?: boolean; checkQuorum?: boolean } = {}): Cluster {
  const c = new Cluster({
    size,
    spares: opts.spares,
    config: { preVote: opts.preVote ?? true, checkQuorum: opts.checkQuorum ?? true },
  });
  c.campaign(1);
  c.deliverAll();
  if (c.leaders().join() !== '1') throw new Error(`member 1 did not win: leaders ${c.leaders().join()}`);
  return c;
}

function change(c: Cluster, leader: number, cc: ConfChange): void {
  if (!c.proposeConfChange(leader, cc)) throw new Error(`${cc.type} ${cc.nodeId} refused: ${c.r(leader).lastRejection}`);
  c.deliverAll();
}

function votesFrom(c: Cluster, i: number): Message[] {
  return c.sent.filter((m) => m.from === c.ids[i - 1] && (m.type === MessageType.Vote || m.type === MessageType.PreVote));
}

t.test('a learner gets the log but never votes, campaigns or counts for a quorum', (t) => {
  // Thesis §4.2.1: new servers join "as non-voting members. The leader replicates log entries to them, but
  // they are not yet counted towards majorities for voting or commitment purposes." etcd: learners.
  const c = led(3, { spares: 1 });
  const [a, b, cc, d] = c.ids;
  change(c, 1, { type: 'addLearner', nodeId: d });
  for (let i = 1; i <= 4; i++) {
    t.same(c.r(i).confState(), { voters: [a, b, cc], learners: [d], removed: [] }, `member ${i} applied the change`);
  }
  t.equal(c.r(4).log.lastIndex(), c.r(1).log.lastIndex(), 'the learner holds the whole log');
  t.equal(c.m(4).sm.applied, c.r(1).log.commit, 'and applied it');
  t.equal(c.r(1).progressOf(d)?.isLearner, true, "the leader's progress marks it a learner");

  // Its acknowledgement does not count: with two voters down, the leader and the learner alone commit nothing.
  c.crash(2);
  c.crash(3);
  const commit = c.r(1).log.commit;
  t.ok(c.propose(1, 'w:1:a:x'));
  c.deliverAll();
  t.equal(c.r(4).log.lastIndex(), c.r(1).log.lastIndex(), 'the learner got the new entry');
  t.equal(c.r(1).log.commit, commit, 'but the entry is not committed');
  // Nor does it count for a read (ReadIndex needs a majority of voters to confirm the leader).
  t.ok(c.readIndex(1, 'r1'));
  c.tickAll(3);
  t.same(c.readStates.get(a) ?? [], [], 'no read is answered with only the learner');

  // A candidate does not ask it, and it never campaigns, leader or not.
  c.restart(2);
  c.crash(1);
  const learnerTerm = c.r(4).term;
  c.tickAll(20 * ELECTION);
  t.equal(c.leaders().length, 0, 'member 2 and the learner elect nobody');
  t.ok(votesFrom(c, 2).length > 0, 'member 2 campaigned');
  t.equal(votesFrom(c, 2).filter((m) => m.to === d).length, 0, 'without asking the learner');
  t.equal(votesFrom(c, 4).length, 0, 'the learner never campaigned');
  t.equal(c.r(4).term, learnerTerm, 'nor raised its term');
  t.end();
});

t.test('a learner is promoted once it caught up, and then counts', (t) => {
  // etcd's MemberPromote: "can only promote a learner member which is in sync with leader", that is whose
  // match is at least 90% of the leader's (isLearnerReady).
  const c = led(1, { spares: 1 });
  const [a, b] = c.ids;
  for (let k = 0; k < 20; k++) c.propose(1, `w:${k}:k${k}:v`);
  c.deliverAll();
  c.filters = [(m) => !(m.type === MessageType.App && m.to === b)];
  change(c, 1, { type: 'addLearner', nodeId: b });
  t.equal(c.r(1).progressOf(b)?.match, 0, 'the learner has nothing yet');
  t.notOk(c.r(1).isLearnerReady(b), 'so it is not ready');
  c.heal();
  c.tickAll(3);
  t.equal(c.r(1).progressOf(b)?.match, c.r(1).log.lastIndex(), 'it caught up');
  t.ok(c.r(1).isLearnerReady(b), 'and is ready');
  t.notOk(c.r(1).isLearnerReady(a), 'a voter is no learner to promote');

  change(c, 1, { type: 'promoteLearner', nodeId: b });
  t.same(c.r(2).confState(), { voters: [a, b], learners: [], removed: [] }, 'member 2 is a voter');
  t.equal(c.r(1).progressOf(b)?.isLearner, false);
  // It counts now: without it, the former single voter commits nothing.
  c.crash(2);
  const commit = c.r(1).log.commit;
  c.propose(1, 'w:30:k:after');
  c.deliverAll();
  t.equal(c.r(1).log.commit, commit, 'without member 2 nothing commits');
  c.restart(2);
  c.tickAll(3);
  t.equal(c.r(1).log.commit, c.r(1).log.lastIndex(), 'with it, the entry commits');
  t.end();
});

t.test('proposing changes: one at a time, only valid ones, only on a leader that committed in its term', (t) => {
  const c = led(3, { spares: 2 });
  const [a, b, , d, e] = c.ids;
  const refused = (i: number, cc: ConfChange, why: RegExp, what: string): void => {
    t.notOk(c.proposeConfChange(i, cc), what);
    t.match(c.r(i).lastRejection ?? '', why, `${what}: ${c.r(i).lastRejection}`);
  };
  refused(2, { type: 'addLearner', nodeId: d }, /not the leader/, 'a follower refuses');
  refused(1, { type: 'addVoter', nodeId: b }, /already a voter/, 'adding a voter again');
  refused(1, { type: 'removeNode', nodeId: d }, /not a member/, 'removing a non-member');
  refused(1, { type: 'promoteLearner', nodeId: b }, /already a voter/, 'promoting a voter');
  refused(1, { type: 'promoteLearner', nodeId: d }, /not a member/, 'promoting a non-member');
  refused(1, { type: 'addVoter', nodeId: '' }, /empty/, 'an empty id');

  // etcd-raft's pendingConfIndex: a second change waits until the first is applied.
  t.ok(c.proposeConfChange(1, { type: 'addLearner', nodeId: d }));
  refused(1, { type: 'addLearner', nodeId: e }, /unapplied conf change/, 'a second change while one is pending');
  c.deliverAll();
  refused(1, { type: 'addLearner', nodeId: d }, /already a learner/, 'adding a learner again');
  refused(1, { type: 'addVoter', nodeId: d }, /promote it/, 'adding a learner as a voter');
  change(c, 1, { type: 'removeNode', nodeId: d });
  refused(1, { type: 'addLearner', nodeId: d }, /removed/, 'an id removed cannot come back (etcd: ErrIDRemoved)');
  t.same(c.r(1).confState().removed, [d]);

  change(c, 1, { type: 'removeNode', nodeId: b });
  change(c, 1, { type: 'removeNode', nodeId: c.ids[2] });
  t.same(c.r(1).votersList(), [a]);
  refused(1, { type: 'removeNode', nodeId: a }, /last voter/, 'removing the last voter');
  t.end();
});

t.test("the single-server change bug: a new leader proposes no change before it commits in its term", (t) => {
  // Ongaro, raft-dev, "bug in single-server membership changes" (2015): a leader of a new term that appends a
  // change before it commits an entry of its term may have that change overwritten, together with entries
  // committed in its configuration, by a change an earlier leader left in some logs. The fix: "a leader may
  // not append a new configuration entry until it has committed an entry from its current term."
  const c = new Cluster({ size: 4, spares: 1, config: { preVote: false, checkQuorum: false } });
  const [a, , , , e] = c.ids;
  c.campaign(1);
  c.deliverAll();
  // Leader 1 (term 1) appends "add member 5", which reaches nobody.
  c.filters = [(m) => m.from !== a];
  t.ok(c.proposeConfChange(1, { type: 'addVoter', nodeId: e }));
  c.deliverAll();
  c.crash(1);
  c.heal();
  // Member 2 wins term 2; its no-op is not committed yet.
  c.campaign(2);
  const held = c.deliverAllExcept((m) => m.type === MessageType.App && m.from === c.ids[1]);
  t.equal(c.leader(), 2, 'member 2 leads term 2');
  t.notOk(c.proposeConfChange(2, { type: 'removeNode', nodeId: a }), 'a change before its no-op commits is refused');
  t.match(c.r(2).lastRejection ?? '', /not yet committed an entry of its term/);
  c.queue.push(...held);
  c.deliverAll();
  t.ok(c.proposeConfChange(2, { type: 'removeNode', nodeId: a }), 'once the no-op commits, the change is accepted');
  c.deliverAll();
  const cs = c.r(2).confState();
  t.same([cs.voters, cs.removed], [c.ids.slice(1, 4), [a]], 'member 1 is out');
  // Member 1 comes back with its stale change in its log, and campaigns: nobody listens to it.
  c.restart(1);
  const term = c.r(2).term;
  c.tickAll(5 * ELECTION);
  t.ok(votesFrom(c, 1).some((m) => m.term > term), 'member 1 campaigned at later terms');
  t.same(c.leaders(), [2], 'member 2 still leads');
  t.equal(c.r(3).term, term, 'in the same term');
  for (let i = 2; i <= 5; i++) t.notOk(c.r(i).confState().voters.includes(e), `member ${i}: the stale change never took effect`);
  t.end();
});

t.test('the leader removes itself: it hands over, steps down and never campaigns again', (t) => {
  // Thesis §4.2.2: "the leader steps down [...] once the Cnew entry is committed"; here once it applies it,
  // as in etcd-raft, after handing over to the most up-to-date voter (TimeoutNow) so the cluster is not
  // leaderless for an election timeout.
  const c = led(3);
  const [a, b, cc] = c.ids;
  const term = c.r(1).term;
  t.ok(c.proposeConfChange(1, { type: 'removeNode', nodeId: a }));
  const held = c.deliverAllExcept((m) => m.type === MessageType.TimeoutNow);
  t.same(c.r(1).confState(), { voters: [b, cc], learners: [], removed: [a] }, 'the leader applied its removal');
  t.equal(c.r(1).role, StateRole.Leader, 'and hands over');
  t.notOk(c.propose(1, 'w:1:a:x'), 'taking no proposal');
  t.match(c.r(1).lastRejection ?? '', /removed/);
  t.ok(held.length > 0 && held.every((m) => m.to === held[0].to), 'it told one voter to campaign');
  c.queue.push(...held);
  c.deliverAll();
  const next = c.leaders().filter((i) => i !== 1);
  t.equal(next.length, 1, `member ${next[0]} leads at once, without waiting for an election timeout`);
  c.tickAll(2);
  t.same(c.leaders(), next, 'the old leader stepped down');
  t.ok(c.r(next[0]).term > term);
  // The rest go on without member 1.
  c.crash(1);
  t.ok(c.propose(next[0], 'w:2:a:without-1'));
  c.deliverAll();
  t.equal(c.r(next[0]).log.commit, c.r(next[0]).log.lastIndex(), 'two voters commit without member 1');
  c.restart(1);
  const before = votesFrom(c, 1).length;
  c.tickAll(20 * ELECTION);
  t.equal(votesFrom(c, 1).length, before, 'member 1, removed, never campaigns');
  t.same(c.leaders(), next, 'and the leader stays');
  t.end();
});

t.test('a removed member cannot disrupt the cluster', (t) => {
  // Thesis §4.2.3: "removed servers (those not in Cnew) can disrupt the cluster [...] they will time out
  // and start new elections." Members ignore removed ones; pre-vote and the leader lease are off here, so
  // only that protects the leader.
  for (const opts of [{ preVote: false, checkQuorum: false }, { preVote: true, checkQuorum: true }]) {
    const c = led(3, opts);
    c.isolate(3);
    change(c, 1, { type: 'removeNode', nodeId: c.ids[2] });
    t.notOk(c.r(3).log.commit >= c.r(1).log.commit, `${JSON.stringify(opts)}: member 3 never learned it was removed`);
    c.tickAll(3 * ELECTION);
    c.heal();
    const term = c.r(1).term;
    const delivered = c.delivered.length;
    c.tickAll(10 * ELECTION);
    const fromRemoved = c.delivered.slice(delivered).filter((m) => m.from === c.ids[2] && (m.type === MessageType.Vote || m.type === MessageType.PreVote));
    t.ok(fromRemoved.length > 0, `${JSON.stringify(opts)}: the removed member's vote requests reached the others`);
    t.same(c.leaders().filter((i) => i !== 3), [1], 'member 1 still leads');
    t.equal(c.r(1).term, term, 'in the same term');
    t.equal(c.r(2).term, term);
    t.notOk(c.leaders().includes(3), 'the removed member never leads');
  }
  t.end();
});

t.test('leadership transfer', (t) => {
  // Thesis §3.10: "the prior leader sends a TimeoutNow request to the target server. This request has the
  // same effect as the target server's election timer firing"; "the prior leader stops accepting client
  // requests"; "if the transfer does not complete after about an election timeout, the prior leader aborts
  // the transfer and resumes accepting client requests."

  t.test('to an up-to-date voter: it wins at once, despite the leader lease', (t) => {
    const c = led(3);
    c.tickAll(2); // followers heard from the leader: in their lease, they ignore ordinary vote requests
    const term = c.r(1).term;
    c.campaign(3);
    c.deliverAll();
    t.same(c.leaders(), [1], 'an ordinary campaign does not depose a leader within its lease');
    t.ok(c.transfer(1, 2), 'the transfer starts');
    t.notOk(c.propose(1, 'w:1:a:x'), 'proposals are refused meanwhile');
    t.match(c.r(1).lastRejection ?? '', /transfer to .* is in progress/);
    t.ok(c.r(1).readIndex(new Uint8Array([1])), 'reads are still served');
    c.deliverAll();
    t.same(c.leaders(), [2], 'member 2 leads, without a tick');
    t.ok(c.r(2).term > term);
    t.ok(c.sent.some((m) => m.type === MessageType.Vote && m.from === c.ids[1] && m.context !== undefined), 'its vote requests carried the transfer marker');
    t.ok(c.propose(2, 'w:2:a:y'));
    c.deliverAll();
    t.equal(c.r(1).log.lastIndex(), c.r(2).log.lastIndex(), 'the old leader follows');
    t.end();
  });

  t.test('times out after an election timeout, and proposals are accepted again', (t) => {
    const c = led(3);
    c.isolate(2);
    t.ok(c.transfer(1, 2));
    t.equal(c.r(1).transferee, c.ids[1]);
    c.tickAll(ELECTION - 1);
    t.equal(c.r(1).transferee, c.ids[1], 'still in progress before an election timeout');
    t.notOk(c.propose(1, 'w:1:a:x'));
    c.tickAll(1);
    t.equal(c.r(1).transferee, '', 'abandoned after an election timeout');
    t.same(c.leaders().filter((i) => i !== 2), [1], 'member 1 still leads');
    t.ok(c.propose(1, 'w:2:a:y'), 'and takes proposals again');
    t.end();
  });

  t.test('to a lagging follower: the leader brings it up to date first', (t) => {
    const c = led(3);
    c.filters = [(m) => !(m.type === MessageType.App && m.to === c.ids[2])];
    for (let k = 0; k < 5; k++) c.propose(1, `w:${k}:k:v${k}`);
    c.deliverAll();
    c.heal();
    const last = c.r(1).log.lastIndex();
    t.ok((c.r(1).progressOf(c.ids[2])?.match ?? 0) < last, 'member 3 lags');
    const caughtUpWhenTold: boolean[] = [];
    c.filters = [
      (m) => {
        if (m.type === MessageType.TimeoutNow) caughtUpWhenTold.push(c.r(3).log.lastIndex() === last);
        return true;
      },
    ];
    t.ok(c.transfer(1, 3));
    c.deliverAll();
    t.same(caughtUpWhenTold, [true], 'TimeoutNow went out once member 3 held the whole log');
    t.same(c.leaders(), [3], 'member 3 leads');
    t.equal(c.r(3).log.term(last), c.r(1).log.term(last), 'with every entry of the old leader');
    t.end();
  });

  t.test('refused to itself, to a non-member or a learner, and on a follower', (t) => {
    const c = led(3, { spares: 2 });
    change(c, 1, { type: 'addLearner', nodeId: c.ids[3] });
    const refused = (i: number, to: string, why: RegExp): void => {
      t.notOk(c.r(i).transferLeadership(to), why.source);
      t.match(c.r(i).lastRejection ?? '', why);
    };
    refused(1, c.ids[0], /already the leader/);
    refused(1, c.ids[4], /not a member/);
    refused(1, c.ids[3], /learner/);
    refused(2, c.ids[2], /not the leader/);
    t.ok(c.r(1).transferLeadership(c.ids[1]));
    t.ok(c.r(1).transferLeadership(c.ids[1]), 'asking again for the same target keeps the transfer going');
    t.notOk(c.proposeConfChange(1, { type: 'removeNode', nodeId: c.ids[3] }), 'no change during a transfer');
    t.match(c.r(1).lastRejection ?? '', /transfer/);
    t.end();
  });
  t.end();
});

t.test('a member joining with no configuration', (t) => {
  // etcd's --initial-cluster-state existing: the new member starts knowing nothing and is caught up by the
  // leader, from the log or a snapshot, both of which carry the configuration.
  t.test('waits, then learns its configuration from the log', (t) => {
    const c = led(3, { spares: 1 });
    const d = c.ids[3];
    c.tickAll(10 * ELECTION);
    t.equal(votesFrom(c, 4).length, 0, 'before it is added it never campaigns');
    t.same(c.r(4).confState().voters, [], 'it knows no configuration');
    change(c, 1, { type: 'addVoter', nodeId: d });
    t.equal(c.r(4).log.firstIndex(), 1, 'caught up from index 1 (the leader never compacted)');
    t.same(c.r(4).confState(), c.r(1).confState(), 'it knows the configuration from the ConfChange entry');
    c.crash(2);
    c.crash(3);
    c.propose(1, 'w:1:a:x');
    c.deliverAll();
    t.ok(c.r(1).log.commit < c.r(1).log.lastIndex(), 'it counts: 2 of 4 voters commit nothing');
    t.end();
  });

  t.test('or from a snapshot taken before it was added, and the entries after it', (t) => {
    const c = new Cluster({ size: 3, spares: 1, snapshotPolicy: { every: 5, keep: 0 } });
    c.campaign(1);
    c.deliverAll();
    for (let k = 0; k < 12; k++) c.propose(1, `w:${k}:k:v${k}`);
    c.deliverAll();
    t.ok(c.r(1).log.firstIndex() > 1, 'the leader compacted its log');
    change(c, 1, { type: 'addLearner', nodeId: c.ids[3] });
    t.ok(c.m(4).stats.snapshotsInstalled > 0, 'the new member installed a snapshot');
    const snaps = c.delivered.filter((m) => m.type === MessageType.Snap && m.to === c.ids[3] && m.done);
    t.ok(snaps.length > 0 && !(snaps[0].snapshot?.learners ?? []).includes(c.ids[3]), 'one that does not list it');
    t.same(c.r(4).confState(), c.r(1).confState(), 'the entries after it gave it the configuration');
    t.equal(c.m(4).sm.applied, c.r(1).log.commit);
    t.end();
  });
  t.end();
});

t.test('after a restart the configuration is rebuilt from the snapshot and the log', (t) => {
  const c = new Cluster({ size: 3, spares: 2 });
  c.campaign(1);
  c.deliverAll();
  change(c, 1, { type: 'addLearner', nodeId: c.ids[3] });
  change(c, 1, { type: 'promoteLearner', nodeId: c.ids[3] });
  change(c, 1, { type: 'addLearner', nodeId: c.ids[4] });
  const cs = c.r(2).confState();
  c.crash(2);
  c.restart(2);
  t.same(c.r(2).confState(), cs, 'from the log alone (no snapshot)');
  c.m(2).takeSnapshot(0);
  change(c, 1, { type: 'removeNode', nodeId: c.ids[2] });
  const after = c.r(2).confState();
  t.ok(c.m(2).disk.snapshot?.meta.learners?.includes(c.ids[4]), 'the snapshot records the learners');
  c.crash(2);
  c.restart(2);
  t.same(c.r(2).confState(), after, 'from the snapshot and the entries after it');
  t.same(c.r(2).confStateAt(c.m(2).disk.snapshot?.meta.index ?? 0), cs, 'and it knows the one at the snapshot');
  t.end();
});

t.test('the driver contract: applyConfChange for every ConfChange entry, in order, before advance', (t) => {
  const a = '0000000000000001';
  const b = '0000000000000002';
  const r = new Raft({ id: a, peers: [a], seed: 1 });
  r.campaign();
  r.advance(r.ready()); // our vote is durable: we lead
  t.equal(r.role, StateRole.Leader);
  r.advance(r.ready()); // the no-op is durable: committed
  r.advance(r.ready()); // and applied
  t.ok(r.proposeConfChange({ type: 'addLearner', nodeId: b, context: new Uint8Array([7]) }), r.lastRejection ?? '');
  r.advance(r.ready());
  const rd = r.ready();
  t.same(rd.committed.map((e) => e.type), [EntryType.ConfChange]);
  const cc = decodeConfChange(rd.committed[0].data);
  t.same([cc.type, cc.nodeId, [...(cc.context ?? [])]], ['addLearner', b, [7]], 'the entry carries the change and its context');
  t.same(cc.confState, { voters: [a], learners: [b], removed: [] }, 'and the configuration it makes');
  t.same(r.learnersList(), [], 'nothing changes before it is applied');
  t.throws(() => r.advance(rd), /advance\(\) past ConfChange entry \d+ before applyConfChange/);
  t.throws(() => r.applyConfChange({ type: 'addVoter', nodeId: b }), /out of order/);
  t.same(r.applyConfChange(cc), { voters: [a], learners: [b], removed: [] });
  r.advance(rd);
  t.throws(() => r.applyConfChange(cc), /no ConfChange entry was handed out/);
  // A snapshot must record the configuration at its index.
  t.throws(
    () => r.compact({ meta: { index: r.log.applied, term: r.term, voters: [a] }, data: new Uint8Array() }, 1),
    /records voters \[.*\] and learners \[\], but the configuration at that index is voters \[.*\] and learners \[.*\]/,
  );
  t.end();
});

t.test('(Campaign): a member does not campaign while a committed change is not applied', (t) => {
  // etcd-raft's hasUnappliedConfChanges, one of the three rules that make changes taking effect when
  // applied safe (tbg, etcd-io/etcd#7625): votes are counted in the configuration in force, which must not
  // lag a committed change.
  const [a, b, c] = ['a', 'b', 'c'];
  const change = encodeConfChange({ type: 'removeNode', nodeId: c, confState: { voters: [a, b], learners: [], removed: [c] } });
  const entries = [
    { term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array() },
    { term: 1, index: 2, type: EntryType.ConfChange, data: change },
  ];

  const r = new Raft({ id: b, peers: [a, b, c], seed: 1, preVote: false });
  r.step({ type: MessageType.App, from: a, to: b, term: 1, index: 0, logTerm: 0, entries, commit: 2 });
  const rd = r.ready();
  t.same(rd.committed.map((e) => e.index), [1, 2], 'the change is committed and handed out');
  r.campaign();
  t.equal(r.role, StateRole.Follower, 'no campaign before it is applied');
  r.applyConfChange(decodeConfChange(change));
  r.advance(rd);
  r.campaign();
  t.equal(r.role, StateRole.Candidate, 'a campaign once it is');
  t.same(r.ready().messages.filter((m) => m.type === MessageType.Vote).map((m) => m.to), [a], 'in the new configuration');

  // A candidate that learns from a vote answer that a change it holds is committed gives up the election.
  const s = new Raft({ id: b, peers: [a, b, c], seed: 1, preVote: false });
  s.step({ type: MessageType.App, from: a, to: b, term: 1, index: 0, logTerm: 0, entries, commit: 1 });
  s.advance(s.ready());
  s.campaign();
  t.equal(s.role, StateRole.Candidate);
  s.step({ type: MessageType.VoteResp, from: c, to: b, term: 2, index: 0, logTerm: 1, commit: 2 });
  t.equal(s.log.commit, 2, 'the answer told it the change is committed');
  t.equal(s.role, StateRole.Follower, 'so it stops campaigning in the old configuration');
  t.end();
});
