// Scenario tests for the Raft core, in the manner of etcd-io/raft's raft_paper_test.go: each scenario cites
// the sentence of the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
// extended version) or of Ongaro's thesis ("Consensus: Bridging Theory and Practice") that it checks. Every
// step of every scenario also runs the invariant checker of the simulation (sim/checker.ts).

import t from 'tap';
import { ProgressState } from '../../src/raft/core/progress';
import { EntryType, MessageType, StateRole, type Entry, type Message } from '../../src/raft/core/types';
import { Cluster } from './fixtures/sim/cluster';
import type { Disk } from './fixtures/sim/member';
import { str } from './fixtures/sim/util';

const ELECTION = 10;

function ent(index: number, term: number, data = ''): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(Buffer.from(data, 'latin1')) };
}

/** Entries [from..to], all of one term, with distinct payloads. */
function run(from: number, to: number, term: number, tag: string): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term, `w:${tag}${i}:k${i % 7}:${tag}`));
  return out;
}

function disk(term: number, vote: string, commit: number, entries: Entry[]): Disk {
  return { hardState: { term, vote, commit }, entries };
}

function isApp(m: Message): boolean {
  return m.type === MessageType.App;
}

t.test('first election', (t) => {
  // §5.2: "When servers start up, they begin as followers. [...] If a follower receives no communication
  // over a period of time called the election timeout, then it assumes there is no viable leader and begins
  // an election to choose a new leader." "A candidate wins an election if it receives votes from a majority
  // of the servers in the full cluster for the same term."
  for (const size of [3, 5, 7]) {
    const c = new Cluster({ size });
    for (let i = 1; i <= size; i++) t.equal(c.r(i).role, StateRole.Follower, `member ${i} starts as a follower`);
    const ticks = c.electLeader(2 * ELECTION * 3);
    t.ok(ticks >= ELECTION && ticks < 2 * ELECTION, `${size} members: a leader after ${ticks} ticks (election timeout in [${ELECTION}, ${2 * ELECTION}))`);
    const l = c.leader();
    for (let i = 1; i <= size; i++) {
      t.equal(c.r(i).lead, c.ids[l - 1], `${size} members: member ${i} knows the leader`);
      t.equal(c.r(i).term, c.r(l).term, `${size} members: member ${i} is in the leader's term`);
    }
  }
  t.end();
});

t.test('re-election after the leader is lost', (t) => {
  // §5.2: "If a follower receives no communication over a period of time called the election timeout, then it
  // assumes there is no viable leader and begins an election to choose a new leader."
  for (const size of [3, 5]) {
    const c = new Cluster({ size });
    t.ok(c.electLeader() >= 0);
    const old = c.leader();
    const oldTerm = c.r(old).term;
    c.propose(old, 'w:1:a:before');
    c.deliverAll();
    c.crash(old);
    const ticks = c.electLeader(3 * 2 * ELECTION);
    // One election timeout to notice, one more if the first election splits the vote.
    t.ok(ticks >= ELECTION && ticks < 4 * ELECTION, `${size} members: a new leader ${ticks} ticks after the crash`);
    const l = c.leader();
    t.not(l, old, 'another member leads');
    t.ok(c.r(l).term > oldTerm, 'in a later term');
    t.ok(c.propose(l, 'w:2:a:after'), 'and takes proposals');
    c.deliverAll();
    t.equal(c.r(l).log.commit, c.r(l).log.lastIndex(), 'which commit without the old leader');
  }
  t.end();
});

t.test('no leader without a quorum', (t) => {
  // §5.2: "A candidate wins an election if it receives votes from a majority of the servers in the full
  // cluster for the same term." Thesis §9.6 (pre-vote): a member that cannot win does not raise its term.
  for (const preVote of [true, false]) {
    const c = new Cluster({ size: 5, config: { preVote } });
    t.ok(c.electLeader() >= 0);
    const l = c.leader();
    const others = [1, 2, 3, 4, 5].filter((i) => i !== l);
    c.crash(l);
    c.crash(others[0]);
    c.crash(others[1]);
    const termBefore = Math.max(c.r(others[2]).term, c.r(others[3]).term);
    let leaders = 0;
    for (let k = 0; k < 50 * ELECTION; k++) {
      c.tickAll(1);
      leaders += c.leaders().length;
    }
    t.equal(leaders, 0, `preVote=${preVote}: 2 of 5 never elect a leader in 50 election timeouts`);
    const termAfter = Math.max(c.r(others[2]).term, c.r(others[3]).term);
    if (preVote) t.equal(termAfter, termBefore, 'with pre-vote, the minority does not raise its term');
    else t.ok(termAfter > termBefore, 'without pre-vote, the minority raises its term (but still elects no one)');
    // Bring one member back: 3 of 5, a quorum again.
    c.restart(others[0]);
    t.ok(c.electLeader(3 * 2 * ELECTION) >= 0, `preVote=${preVote}: a quorum elects a leader again`);
  }
  t.end();
});

t.test('a partitioned old leader rejoins and its uncommitted entries are discarded', (t) => {
  // §5.3: "In Raft, the leader handles inconsistencies by forcing the followers' logs to duplicate its own.
  // This means that conflicting entries in follower logs will be overwritten with entries from the leader's
  // log." §5.1: "If a candidate or leader discovers that its term is out of date, it immediately reverts to
  // follower state."
  for (const checkQuorum of [true, false]) {
    const c = new Cluster({ size: 5, config: { checkQuorum, preVote: checkQuorum } });
    c.campaign(1);
    c.deliverAll();
    t.equal(c.leader(), 1);
    c.propose(1, 'w:1:a:committed');
    c.deliverAll();
    const committed = c.r(1).log.commit;
    c.isolate(1);
    c.propose(1, 'w:2:a:lost-1');
    c.propose(1, 'w:3:a:lost-2');
    const lostFrom = committed + 1;
    t.equal(c.r(1).log.lastIndex(), committed + 2, 'the isolated leader appended two entries');
    // The majority elects a new leader, which commits a new entry.
    let ticks = 0;
    while (c.leaders().filter((i) => i !== 1).length === 0 && ticks < 100) {
      c.tickAll(1);
      ticks++;
    }
    const l2 = c.leaders().filter((i) => i !== 1)[0];
    t.ok(l2 !== undefined, `checkQuorum=${checkQuorum}: the majority elects member ${l2}`);
    c.propose(l2, 'w:4:a:new');
    c.tickAll(2 * ELECTION);
    t.equal(c.r(1).role === StateRole.Leader, !checkQuorum, checkQuorum ? 'the old leader stepped down by itself (check-quorum)' : 'the old leader still thinks it leads');
    c.heal();
    c.tickAll(5);
    t.equal(c.r(1).role, StateRole.Follower, 'after healing, the old leader is a follower');
    t.equal(c.r(1).lead, c.ids[l2 - 1], 'of the new leader');
    t.equal(c.r(1).log.lastIndex(), c.r(l2).log.lastIndex(), 'with the new leader log');
    for (let i = lostFrom; i <= c.r(1).log.lastIndex(); i++) {
      t.equal(c.r(1).log.term(i), c.r(l2).log.term(i), `entry ${i} is the new leader's`);
    }
    for (let i = 1; i <= 5; i++) {
      const datas = c.r(i).log.allEntries().map((e) => str(e.data));
      t.notOk(datas.some((d) => d.includes('lost')), `member ${i} holds none of the uncommitted entries`);
      t.notOk(c.m(i).sm.kv.get('a')?.value.includes('lost'), `member ${i} applied none of them`);
    }
  }
  t.end();
});

t.test('a follower with conflicting entries of several terms catches up in O(terms) round trips', (t) => {
  // §5.3: "If desired, the protocol can be optimized to reduce the number of rejected AppendEntries RPCs.
  // [...] the leader can decrement nextIndex to bypass all of the conflicting entries in that term; one
  // AppendEntries RPC will be required for each term with conflicting entries, rather than one RPC per entry."
  const common = run(1, 10, 1, 'c');
  const leaderLog = [...common, ...run(11, 110, 2, 'L'), ...run(111, 210, 5, 'L'), ...run(211, 310, 8, 'L')];
  const cases: { name: string; follower: Entry[]; maxRejects: number }[] = [
    {
      name: '3 diverged terms of 100 entries',
      follower: [...common, ...run(11, 110, 3, 'F'), ...run(111, 210, 4, 'F'), ...run(211, 310, 6, 'F')],
      maxRejects: 3,
    },
    {
      name: '3 diverged terms, a longer log than the leader',
      follower: [...common, ...run(11, 110, 3, 'F'), ...run(111, 250, 4, 'F'), ...run(251, 450, 6, 'F')],
      maxRejects: 3,
    },
    { name: 'no conflict, 300 entries behind', follower: [...common], maxRejects: 1 },
  ];
  for (const tc of cases) {
    const c = new Cluster({
      size: 3,
      disks: [disk(8, '', 10, leaderLog), disk(7, '', 10, tc.follower), disk(8, '', 10, leaderLog)],
    });
    c.campaign(1);
    c.deliverAll();
    t.equal(c.leader(), 1);
    const toF = c.delivered.filter((m) => m.from === c.ids[1] && m.type === MessageType.AppResp);
    const rejects = toF.filter((m) => m.reject).length;
    const apps = c.delivered.filter((m) => isApp(m) && m.to === c.ids[1]).length;
    t.ok(rejects <= tc.maxRejects, `${tc.name}: ${rejects} rejected appends (at most ${tc.maxRejects})`);
    t.ok(apps <= tc.maxRejects + 2, `${tc.name}: ${apps} appends in all`);
    t.same(
      c.r(2).log.allEntries().map((e) => `${e.index}/${e.term}`),
      c.r(1).log.allEntries().map((e) => `${e.index}/${e.term}`),
      `${tc.name}: the follower's log is the leader's`,
    );
    c.tickAll(1);
    t.equal(c.r(2).log.commit, c.r(1).log.commit, `${tc.name}: and learns the commit index with the next heartbeat`);
  }
  t.end();
});

t.test('a follower commits only what the append vouches for', (t) => {
  // Figure 2, AppendEntries RPC, receiver implementation: "5. If leaderCommit > commitIndex, set commitIndex =
  // min(leaderCommit, index of last new entry)". The follower's entries after the append's last one may be
  // stale ones of an old leader, even when the leader's commit index is beyond them.
  const c = new Cluster({
    size: 3,
    disks: [
      disk(3, '', 4, [ent(1, 1), ent(2, 1, 'w:2:a:x'), ent(3, 3), ent(4, 3, 'w:4:a:y')]),
      disk(2, '', 1, [ent(1, 1), ent(2, 1, 'w:2:a:x'), ent(3, 2, 'w:stale:a:s3'), ent(4, 2, 'w:stale:a:s4')]),
      disk(3, '', 4, [ent(1, 1), ent(2, 1, 'w:2:a:x'), ent(3, 3), ent(4, 3, 'w:4:a:y')]),
    ],
  });
  // An append of member 1, leader of term 3 (commit 4), carrying only entry 2, as with a tiny maxSizePerMsg.
  c.r(2).step({
    type: MessageType.App,
    from: c.ids[0],
    to: c.ids[1],
    term: 3,
    index: 1,
    logTerm: 1,
    entries: [ent(2, 1, 'w:2:a:x')],
    commit: 4,
  });
  c.settle(2);
  t.equal(c.r(2).log.commit, 2, 'the follower commits up to entry 2, not its stale entries 3 and 4');
  t.equal(c.m(2).sm.applied, 2, 'and applies nothing stale');
  const ack = c.take((m) => m.type === MessageType.AppResp);
  t.equal(ack[0]?.index, 2, 'it acknowledges entry 2');
  t.end();
});

t.test('Figure 8: an entry of an older term is not committed by counting replicas', (t) => {
  // §5.4.2: "Raft never commits log entries from previous terms by counting replicas. Only log entries from
  // the leader's current term are committed by counting replicas; once an entry from the current term has
  // been committed in this way, then all prior entries are committed indirectly because of the Log Matching
  // Property."
  // The paper's Figure 8, after (b): S1 led term 2 and replicated index 2 to S2; S5 led term 3 with votes of
  // S3, S4 and itself, and appended a different index 2.
  const disks = (): Disk[] => [
    disk(2, '', 1, [ent(1, 1), ent(2, 2, 'w:t2:x:from-term-2')]), // S1
    disk(2, '', 1, [ent(1, 1), ent(2, 2, 'w:t2:x:from-term-2')]), // S2
    disk(3, '', 1, [ent(1, 1)]), // S3
    disk(3, '', 1, [ent(1, 1)]), // S4
    disk(3, '', 1, [ent(1, 1), ent(2, 3, 'w:t3:x:from-term-3')]), // S5
  ];
  // (c): S5 is down and S4 cut off; S1 is elected in term 4 (votes of S1, S2, S3) and replicates index 2 to
  // S3: index 2 is now on S1, S2, S3, a majority. S1's own no-op (index 3, term 4) does not reach S3: an
  // append carrying it that S3 would accept is lost (one entry per append: maxSizePerMsg 1).
  const figure8c = (): Cluster => {
    const c = new Cluster({ size: 5, disks: disks(), config: { maxSizePerMsg: 1, preVote: false, checkQuorum: false } });
    c.crash(5);
    c.isolate(4);
    c.filters = [
      (m) =>
        !(isApp(m) && m.to === c.ids[2] && (m.entries ?? []).some((e) => e.index >= 3) && c.r(3).log.matchTerm(m.index, m.logTerm)),
    ];
    c.r(1).term = 3; // S1 learnt of term 3 (it campaigns for term 4, as in the figure)
    c.campaign(1);
    c.deliverAll();
    return c;
  };

  t.test('(c) -> (d): the old-term entry on a majority is not committed, and is overwritten', (t) => {
    const c = figure8c();
    t.equal(c.leader(), 1);
    t.equal(c.r(1).term, 4, 'S1 leads term 4');
    t.equal(c.r(3).log.term(2), 2, 'S3 has index 2 of term 2');
    t.equal(c.r(1).progressOf(c.ids[2])?.match, 2, 'and S1 knows it: index 2 is on S1, S2, S3');
    t.equal(c.r(1).log.commit, 1, 'yet S1 does not commit index 2');
    t.equal(c.r(1).log.term(3), 4, 'S1 holds its no-op of term 4 at index 3');
    // (d): S1 crashes; S5 comes back and is elected with the votes of S3 and S4 (its last term, 3, beats
    // their 2), and forces its index 2 onto the others.
    c.crash(1);
    c.crash(2);
    c.heal();
    c.restart(5);
    for (let k = 0; k < 3 && c.leaders().length === 0; k++) {
      c.campaign(5);
      c.deliverAll();
    }
    t.equal(c.leader(), 5, 'S5 is elected');
    c.deliverAll();
    t.equal(c.r(3).log.term(2), 3, "S3's index 2 is now S5's, of term 3");
    t.equal(c.checker.committedTerm(2), 3, 'index 2 committed holds the entry of term 3, never the one of term 2');
    c.restart(1);
    c.restart(2);
    c.tickAll(3);
    t.equal(c.leader(), 5, 'S5 still leads');
    for (const i of [1, 2, 3, 4, 5]) t.equal(c.r(i).log.term(2), 3, `S${i} ends with the term-3 entry at index 2`);
    t.end();
  });

  t.test('(c) -> (e): once an entry of the current term is on a majority, both are committed', (t) => {
    const c = figure8c();
    t.equal(c.r(1).log.commit, 1);
    c.filters = [];
    c.tickAll(1);
    t.equal(c.r(3).log.term(3), 4, 'S3 now holds index 3 of term 4');
    t.equal(c.r(1).log.commit, 3, 'S1 commits index 3 (term 4) and with it index 2 (term 2)');
    t.equal(c.checker.committedTerm(2), 2, 'index 2 is committed with the entry of term 2');
    // S5 can no longer be elected: a majority holds an entry of term 4.
    c.crash(1);
    c.restart(5);
    for (let k = 0; k < 3; k++) {
      c.campaign(5);
      c.deliverAll();
    }
    t.not(c.r(5).role, StateRole.Leader, 'S5 cannot win an election');
    c.heal();
    t.ok(c.electLeader(10 * ELECTION) >= 0, 'S2 or S3 is elected');
    t.ok([2, 3].includes(c.leader()), `S${c.leader()} leads`);
    c.tickAll(2);
    t.equal(c.r(5).log.term(2), 2, 'and S5 gets the committed entry of term 2 at index 2');
    t.end();
  });
  t.end();
});

t.test('persistence across crashes', (t) => {
  // Figure 2: "Persistent state on all servers: (Updated on stable storage before responding to RPCs)
  // currentTerm [...] votedFor [...] log[]". §5.2: "Each server will vote for at most one candidate in a given
  // term, on a first-come-first-served basis".
  t.test('term, vote and log survive a crash; a restarted member does not vote twice in a term', (t) => {
    // (check-quorum off: members that heard from the leader would ignore vote requests for a while.)
    const c = new Cluster({ size: 3, config: { preVote: false, checkQuorum: false } });
    c.campaign(1);
    c.deliverAll();
    c.propose(1, 'w:1:a:x');
    c.propose(1, 'w:2:b:y');
    c.deliverAll();
    // Member 2 campaigns for term 2; member 3 votes for it.
    c.isolate(1);
    c.campaign(2);
    const votes = c.take((m) => m.type === MessageType.Vote && m.to === c.ids[2]);
    c.deliver(votes[0]);
    const granted = c.take((m) => m.type === MessageType.VoteResp && m.from === c.ids[2]);
    t.equal(granted.length, 1);
    t.notOk(granted[0].reject, 'member 3 grants its vote in term 2');
    const before = { term: c.r(3).term, vote: c.r(3).vote, log: c.r(3).log.allEntries().map((e) => `${e.index}/${e.term}/${str(e.data)}`) };
    c.crash(3);
    c.restart(3);
    t.equal(c.r(3).term, before.term, 'term survives');
    t.equal(c.r(3).vote, before.vote, 'vote survives');
    t.same(c.r(3).log.allEntries().map((e) => `${e.index}/${e.term}/${str(e.data)}`), before.log, 'log survives');
    // A competing candidate of the same term asks member 3: refused.
    c.r(3).step({ type: MessageType.Vote, from: c.ids[0], to: c.ids[2], term: 2, index: 100, logTerm: 100 });
    c.settle(3);
    const resp = c.take((m) => m.type === MessageType.VoteResp && m.from === c.ids[2]);
    t.equal(resp.length, 1);
    t.ok(resp[0].reject, 'the restarted member refuses a second candidate in term 2');
    t.end();
  });

  t.test('a vote lost in a crash before it was persisted was never sent', (t) => {
    const c = new Cluster({ size: 3, config: { preVote: false } });
    c.campaign(2);
    const vote = c.take((m) => m.type === MessageType.Vote && m.to === c.ids[2])[0];
    c.crashPoints.set(3, 'before-persist');
    c.deliver(vote);
    t.notOk(c.m(3).up, 'member 3 crashed handling the Ready with its vote');
    t.equal(c.take((m) => m.from === c.ids[2]).length, 0, 'no vote left member 3');
    c.restart(3);
    t.equal(c.r(3).vote, '', 'the restarted member has not voted');
    t.end();
  });

  t.test('a leader that crashes after its appends left but before its own write loses nothing committed', (t) => {
    // Thesis §10.2.1: "The leader can write to its disk in parallel with replicating to the followers and them
    // writing to their disks." Keel's driver sends a leader's appends before its fsync and keeps stepping
    // messages into the core meanwhile. The core counts the leader's own entry towards commit only once
    // advance() reports it durable (as etcd-raft's self-addressed MsgAppResp), so a commit index including
    // an unwritten entry never exists, let alone leaves the member.
    const c = new Cluster({ size: 3 });
    for (const m of c.members) m.earlySend = true;
    c.campaign(1);
    c.deliverAll();
    c.r(1).propose(new Uint8Array(Buffer.from('w:1:a:unwritten')));
    const rd = c.begin(1);
    t.ok(rd && rd.entries.length === 1, 'the Ready holds the new entry');
    const index = rd?.entries[0].index ?? 0;
    const app = c.take((m) => isApp(m) && m.to === c.ids[1]);
    t.equal(app.length, 1, 'its append to member 2 left before the write');
    c.deliver(app[0]);
    const ack = c.take((m) => m.type === MessageType.AppResp && m.to === c.ids[0]);
    c.stepOnly(ack[0]);
    t.ok(c.r(1).log.commit < index, 'member 2 acknowledged, but the leader does not count its own unwritten copy');
    c.crash(1); // before the write completes: the Ready is lost
    t.equal(c.checker.committedTerm(index), undefined, 'no commit index including the entry ever left the leader');
    t.equal(c.m(2).sm.applied < index && c.m(3).sm.applied < index, true, 'nobody applied it');
    c.restart(1);
    t.ok(c.r(1).log.lastIndex() < index, 'the restarted leader does not have it');
    t.ok(c.electLeader() >= 0, 'a leader is elected');
    c.propose(c.leader(), 'w:2:a:next');
    c.tickAll(3);
    t.equal(c.r(1).log.lastIndex(), c.r(c.leader()).log.lastIndex(), 'and the logs converge');
    t.end();
  });

  t.test('entries acknowledged by a follower survive its crash right after sending', (t) => {
    const c = new Cluster({ size: 3 });
    c.campaign(1);
    c.deliverAll();
    c.isolate(3);
    c.propose(1, 'w:1:a:x');
    const app = c.take((m) => isApp(m) && m.to === c.ids[1])[0];
    c.crashPoints.set(2, 'before-advance');
    c.deliver(app);
    t.notOk(c.m(2).up, 'member 2 crashed after persisting and sending');
    const ack = c.take((m) => m.type === MessageType.AppResp && m.from === c.ids[1]);
    t.equal(ack.length, 1, 'its acknowledgement left');
    c.deliver(ack[0]);
    t.equal(c.r(1).log.commit, c.r(1).log.lastIndex(), 'the leader committed the entry with it');
    c.restart(2);
    t.equal(c.r(2).log.lastIndex(), c.r(1).log.lastIndex(), 'member 2 still holds it after the restart');
    t.end();
  });
  t.end();
});

t.test('snapshot install to a lagging follower, in chunks', (t) => {
  // §7: "the leader must occasionally send snapshots to followers that lag behind. This happens when the
  // leader has already discarded the next log entry that it needs to send to a follower." Figure 13: "Send
  // the chunks of a snapshot from leader to follower. Leaders always send chunks in order."
  for (const lossy of [false, true]) {
    const c = new Cluster({ size: 3, config: { snapshotChunkSize: 64 }, snapshotPolicy: { every: 10, keep: 0 } });
    c.campaign(1);
    c.deliverAll();
    c.crash(3);
    for (let i = 0; i < 60; i++) {
      c.propose(1, `w:${i}:k${i % 9}:${'v'.repeat(40 + (i % 20))}${i}`);
      c.deliverAll();
    }
    t.ok(c.r(1).log.firstIndex() > 2, `the leader compacted its log (first index ${c.r(1).log.firstIndex()})`);
    if (lossy) {
      // Lose every third chunk the first time it is sent.
      let n = 0;
      const seen = new Set<number>();
      c.filters = [
        (m) => {
          if (m.type !== MessageType.Snap || seen.has(m.offset ?? 0)) return true;
          seen.add(m.offset ?? 0);
          return n++ % 3 !== 2;
        },
      ];
    }
    c.restart(3);
    c.tickAll(lossy ? 40 : 3);
    const chunks = c.delivered.filter((m) => m.type === MessageType.Snap);
    t.ok(chunks.length > 5, `lossy=${lossy}: the snapshot went in ${chunks.length} chunks`);
    t.ok(chunks.every((m) => (m.chunk?.length ?? 0) <= 64), 'of at most 64 bytes');
    t.equal(c.m(3).stats.snapshotsInstalled, 1, 'member 3 installed one snapshot');
    t.equal(c.m(3).sm.applied, c.m(1).sm.applied, 'member 3 applied as far as the leader');
    t.equal(c.m(3).sm.hash, c.m(1).sm.hash, 'and its state machine equals the leader');
    t.same([...c.m(3).sm.kv].sort(), [...c.m(1).sm.kv].sort(), 'key by key');
  }
  t.end();
});

t.test('pre-vote: a member rejoining from a partition does not depose a healthy leader', (t) => {
  // Thesis §9.6: "In the Pre-Vote algorithm, a candidate only increments its term if it first learns from a
  // majority of the cluster that they would be willing to grant the candidate their votes (if the candidate's
  // log is sufficiently up-to-date, and the voters have not received heartbeats from a valid leader for at
  // least a baseline election timeout)."
  for (const preVote of [true, false]) {
    const c = new Cluster({ size: 3, config: { preVote, checkQuorum: true } });
    c.campaign(1);
    c.deliverAll();
    const term = c.r(1).term;
    c.isolate(3);
    c.tickAll(10 * ELECTION);
    if (preVote) t.equal(c.r(3).term, term, 'with pre-vote, the isolated member does not raise its term');
    else t.ok(c.r(3).term > term, 'without pre-vote, the isolated member raises its term');
    c.heal();
    c.tickAll(3 * ELECTION);
    if (preVote) {
      t.equal(c.leader(), 1, 'with pre-vote, the leader still leads after the member rejoins');
      t.equal(c.r(1).term, term, 'in the same term');
      t.equal(c.r(3).lead, c.ids[0], 'and the rejoined member follows it');
    } else {
      t.ok(c.r(c.leader()).term > term, 'without pre-vote, the rejoining member forces a new term (what pre-vote prevents)');
    }
  }
  t.end();
});

t.test('check-quorum: a leader cut off from a majority steps down within about one election timeout', (t) => {
  // Thesis §6.2: "a leader steps down if an election timeout elapses without a successful round of heartbeats
  // to a majority of its cluster; this allows clients to retry their requests with another server."
  for (const checkQuorum of [true, false]) {
    const c = new Cluster({ size: 5, config: { checkQuorum } });
    c.campaign(1);
    c.deliverAll();
    c.isolate(1);
    let ticks = 0;
    while (c.r(1).role === StateRole.Leader && ticks < 10 * ELECTION) {
      c.tick(1);
      ticks++;
    }
    if (checkQuorum) t.ok(ticks <= 2 * ELECTION, `the isolated leader stepped down after ${ticks} ticks`);
    else t.equal(ticks, 10 * ELECTION, 'without check-quorum, it keeps leading alone');
  }
  t.end();
});

t.test('proposals between two Readys go out as one append per follower', (t) => {
  // Thesis §10.2.1: "Raft supports batching and pipelining of log entries, and both are important for best
  // performance." The leader appends proposals as they come and broadcasts once per Ready.
  const c = new Cluster({ size: 3 });
  c.campaign(1);
  c.deliverAll();
  const sentBefore = c.sent.length;
  for (let i = 0; i < 50; i++) c.r(1).propose(new Uint8Array(Buffer.from(`w:${i}:k:v${i}`)));
  c.settle(1);
  const apps = c.sent.slice(sentBefore).filter(isApp);
  t.equal(apps.length, 2, 'one append per follower');
  for (const m of apps) t.equal(m.entries?.length, 50, `the append to ${m.to} carries all 50 entries`);
  c.deliverAll();
  t.equal(c.r(1).log.commit, c.r(1).log.lastIndex(), 'and they commit');
  t.end();
});

t.test('many appends in flight: a replicating follower gets appends without waiting, up to maxInflightMsgs', (t) => {
  // Thesis §10.2.1: "the leader [...] can send the next AppendEntries request without waiting for the
  // previous one to complete" (pipelining); etcd-io/raft bounds it per follower (MaxInflightMsgs).
  const inflight = 4;
  const c = new Cluster({ size: 3, config: { maxInflightMsgs: inflight, maxSizePerMsg: 1 } });
  c.campaign(1);
  c.deliverAll();
  t.equal(c.r(1).progressOf(c.ids[1])?.state, ProgressState.Replicate);
  // Proposals one Ready at a time; nothing reaches member 2 for now.
  const base = c.r(1).log.lastIndex();
  const held: Message[] = [];
  for (let i = 0; i < 10; i++) {
    c.propose(1, `w:${i}:k:v`);
    held.push(...c.deliverAllExcept((m) => m.to === c.ids[1]));
  }
  const apps = held.filter((m) => isApp(m) && (m.entries?.length ?? 0) > 0);
  t.equal(apps.length, inflight, `${inflight} appends in flight to member 2, without any answer`);
  t.same(apps.map((m) => m.entries?.map((e) => e.index)), [[base + 1], [base + 2], [base + 3], [base + 4]], 'each a new entry, in order');
  t.ok(c.r(1).progressOf(c.ids[1])?.isPaused(), 'then the leader holds back');
  // An acknowledgement opens the window again: one more append goes out.
  c.deliver(apps[0]);
  const next = c.deliverAllExcept((m) => m.to === c.ids[1] && isApp(m));
  t.equal(c.r(2).log.lastIndex(), base + 1, 'member 2 appended the first one');
  t.equal(c.r(1).progressOf(c.ids[1])?.match, base + 1, 'the leader knows');
  t.same(next.filter((m) => (m.entries?.length ?? 0) > 0).map((m) => m.entries?.map((e) => e.index)), [[base + 5]], 'and sends the next entry at once');
  for (const m of [...apps.slice(1), ...next]) c.queue.push(m);
  c.deliverAll();
  c.tickAll(2);
  t.equal(c.r(2).log.lastIndex(), c.r(1).log.lastIndex(), 'member 2 catches up');

  // A probing follower gets one append at a time.
  const d = new Cluster({ size: 3, config: { maxInflightMsgs: inflight, maxSizePerMsg: 1 } });
  d.campaign(1);
  const probe = d.deliverAllExcept((m) => m.to === d.ids[1] && isApp(m));
  t.equal(probe.length, 1, 'a new leader sends one probing append');
  t.equal(d.r(1).progressOf(d.ids[1])?.state, ProgressState.Probe, 'member 2 never answered: probing');
  for (let i = 0; i < 5; i++) d.propose(1, `w:${i}:k:v`);
  t.equal(d.deliverAllExcept((m) => m.to === d.ids[1] && isApp(m)).length, 0, 'no more appends until the probe is answered');
  t.end();
});

t.test('read index', (t) => {
  // §8: "First, a leader must have the latest information on which entries are committed. [...] Raft handles
  // this by having each leader commit a blank no-op entry into the log at the start of its term. Second, a
  // leader must check whether it has been deposed before processing a read-only request [...]. Raft handles
  // this by having the leader exchange heartbeat messages with a majority of the cluster before responding to
  // read-only requests."
  const reads = (c: Cluster, i: number): number[] => (c.readStates.get(c.ids[i - 1]) ?? []).map((r) => r.index);

  t.test('answered only by a leader that committed an entry of its term, after a heartbeat round', (t) => {
    const c = new Cluster({ size: 3 });
    c.campaign(1);
    // Elect member 1 but hold the answers to its appends: its no-op is not committed yet.
    const answers = c.deliverAllExcept((m) => m.type === MessageType.AppResp);
    t.equal(c.r(1).role, StateRole.Leader);
    t.not(c.r(1).log.term(c.r(1).log.commit), c.r(1).term, 'the new leader has not committed an entry of its term');
    c.readIndex(1, 'r1');
    c.tickAll(1, false);
    t.same(reads(c, 1), [], 'no read state before an entry of its term commits');
    t.equal(c.take((m) => m.type === MessageType.Heartbeat && m.context !== undefined).length, 0, 'and no heartbeat round for it yet');
    // The answers arrive: the no-op commits; a heartbeat round starts for the read.
    for (const m of answers) c.deliver(m);
    t.equal(c.r(1).log.commit, c.r(1).log.lastIndex(), 'the no-op committed');
    t.same(reads(c, 1), [], 'still no read state: the heartbeat round is not back');
    const beats = c.take((m) => m.type === MessageType.Heartbeat && m.context !== undefined);
    t.equal(beats.length, 2, 'the leader sent heartbeats carrying the read');
    c.take();
    c.deliver(beats[0]);
    const acks = c.take((m) => m.type === MessageType.HeartbeatResp);
    t.equal(acks.length, 1);
    c.deliver(acks[0]);
    t.same(reads(c, 1), [c.r(1).log.commit], 'with one follower (a majority with the leader), the read is answered at the commit index');
    t.end();
  });

  t.test('a deposed leader cut off from the majority never answers', (t) => {
    const c = new Cluster({ size: 5, config: { checkQuorum: false, preVote: false } });
    c.campaign(1);
    c.deliverAll();
    c.isolate(1);
    c.campaign(2);
    c.deliverAll();
    t.equal(c.leaders().sort().join(','), '1,2', 'two members think they lead (different terms)');
    c.propose(2, 'w:9:a:new');
    c.deliverAll();
    c.readIndex(1, 'stale');
    c.tickAll(3 * ELECTION);
    t.same(reads(c, 1), [], 'the old leader answers no read');
    c.readIndex(2, 'fresh');
    c.tickAll(1);
    t.same(reads(c, 2), [c.r(2).log.commit], 'the new leader answers at its commit index');
    t.end();
  });

  t.test('a follower forwards the read and gets the leader commit index', (t) => {
    const c = new Cluster({ size: 3 });
    c.campaign(1);
    c.deliverAll();
    c.propose(1, 'w:1:a:x');
    c.deliverAll();
    t.ok(c.readIndex(3, 'f1'));
    c.deliverAll();
    t.same(reads(c, 3), [c.r(1).log.commit], 'the follower got a read state at the leader commit index');
    t.end();
  });
  t.end();
});

t.test(
  'leadership transfer: the member told TimeoutNow wins at once, even with check-quorum',
  (t) => {
    // (More in membership.test.ts: the leader's side of the transfer.)
    // Thesis §3.10: "the prior leader sends a TimeoutNow request to the target server. This request has the
    // same effect as the target server's election timer firing: the target server starts a new election".
    const c = new Cluster({ size: 3, config: { checkQuorum: true } });
    c.campaign(1);
    c.deliverAll();
    c.tickAll(2);
    const term = c.r(1).term;
    c.r(2).step({ type: MessageType.TimeoutNow, from: c.ids[0], to: c.ids[1], term, index: 0, logTerm: 0 });
    c.settle(2);
    c.deliverAll();
    t.same(c.leaders(), [2], 'member 2 leads right away');
    t.end();
  },
);
