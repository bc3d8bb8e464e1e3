// Runtime membership on real processes, under a steady write load: a learner joins and catches up through a
// snapshot, is refused promotion while it lags and promoted once caught up; the cluster grows 3 -> 5 -> 7
// (learners promoted, then voters added directly) and shrinks back to 3, removing its leader on the way.
// Checked: every acknowledged key is on every remaining member; no change stops writes for longer than one
// election timeout; removed members stop by themselves.

import t from 'tap';
import { KeelClient } from '../../src/client/stream-client';
import { KvError, type MemberInfo } from '../../src/kv/api';
import { keel } from '../cli/fixtures/helpers';
import { ProcCluster, sleep } from './fixtures/proc-cluster';

const ELECTION_MS = 1000;

interface Change {
  what: string;
  start: number;
  end: number;
}

t.test('grow 3 -> 5 -> 7 and shrink to 3 under load', async (t) => {
  const c = await ProcCluster.start(3, { electionTimeoutMs: ELECTION_MS, snapshotCount: 300, snapshotCatchupEntries: 50 });
  // The members to come get their ports now, so that the client knows every endpoint from the start.
  const joiners: number[] = [];
  for (let k = 0; k < 4; k++) joiners.push(await c.newMember());
  const client = new KeelClient({ endpoints: c.members.map((m) => m.clientUrl), requestTimeoutMs: 20_000 });
  const admin = () => c.client(live.map((i) => c.members[i].clientUrl), 15_000);
  let live = [0, 1, 2];
  let stop = false;
  t.teardown(async () => {
    stop = true; // the writers end even when an assertion ended the test early
    await client.close();
    await c.stopAll();
    c.cleanup();
  });
  await c.waitForLeader(15_000);

  // Steady load: 4 writers of unique keys; every acknowledgement is timed.
  const acked: string[] = [];
  const ackTimes: number[] = [];
  const failures: string[] = [];
  let seq = 0;
  const writer = async (): Promise<void> => {
    while (!stop) {
      const key = `grow/${String(seq++).padStart(6, '0')}`;
      try {
        await client.put(key, 'v');
        acked.push(key);
        ackTimes.push(Date.now());
      } catch (err) {
        failures.push(`${key}: ${(err as Error).message}`);
        await sleep(50);
      }
    }
  };
  const writers = Promise.all([writer(), writer(), writer(), writer()]);
  const changes: Change[] = [];
  const timed = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    const start = Date.now();
    const r = await fn();
    changes.push({ what, start, end: Date.now() });
    return r;
  };
  const idOf = async (i: number): Promise<string> => (await c.status(i))?.header.memberId ?? '';
  const waitCaughtUp = async (i: number): Promise<void> => {
    const leader = await c.waitForLeader(10_000, joiners.filter((j) => !live.includes(j)));
    const target = (await c.status(leader))?.raftAppliedIndex ?? 0;
    await c.waitForApplied(i, target, 30_000);
  };
  await sleep(1500); // enough entries that a joiner needs a snapshot (snapshot count 300, 50 kept)

  // A learner that has applied what the leader applied may still look behind to the leader until its next
  // append response arrives (the leader judges by what the learner acknowledged): as an operator would, retry
  // the promotion while it is refused as not in sync, for a few seconds at most. Only the call that succeeds
  // is timed.
  const NOT_IN_SYNC = 'etcdserver: can only promote a learner member which is in sync with leader';
  const promoteWhenInSync = async <T>(what: string, attempt: () => Promise<T>, refused: (r: T) => boolean): Promise<T> => {
    for (let k = 0; ; k++) {
      const start = Date.now();
      let r: T;
      try {
        r = await attempt();
      } catch (err) {
        if (k < 50 && (err as Error).message === NOT_IN_SYNC) {
          await sleep(100);
          continue;
        }
        throw err;
      }
      if (k < 50 && refused(r)) {
        await sleep(100);
        continue;
      }
      changes.push({ what, start, end: Date.now() });
      return r;
    }
  };

  // 1. A learner: added, refused promotion while it has not even started, started, caught up, promoted.
  const n4 = joiners[0];
  const added = await timed('add learner n4', () =>
    admin().memberAdd({ peerUrls: [c.members[n4].peerUrl], isLearner: true, name: c.members[n4].name }),
  );
  t.ok(added.member.isLearner, 'n4 added as a learner');
  t.equal(added.members.length, 4);
  const early = await admin().memberPromote({ id: added.member.id }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(early instanceof KvError, 'promotion of a lagging learner is refused');
  t.match((early as Error).message, 'etcdserver: can only promote a learner member which is in sync with leader');
  c.startJoiner(n4, live);
  await waitCaughtUp(n4);
  const n4status = await c.status(n4);
  t.ok(n4status?.isLearner, 'n4 reports itself a learner');
  t.ok((n4status?.snapshotIndex ?? 0) > 0, `n4 caught up through a snapshot (snapshot index ${n4status?.snapshotIndex})`);
  t.match(c.logOf(n4), /installed snapshot from the leader/, 'n4 installed the leader\'s snapshot');
  await promoteWhenInSync('promote n4', () => admin().memberPromote({ id: added.member.id }), () => false);
  live.push(n4);

  // 2. n5 the same way, through the CLI this time.
  const n5 = joiners[1];
  const endpoints = () => live.map((i) => c.members[i].clientUrl).join(',');
  const add5 = await timed('add learner n5 (CLI)', () =>
    keel(['member', 'add', c.members[n5].name, '--peer-urls', c.members[n5].peerUrl, '--learner', '--endpoints', endpoints()]),
  );
  t.equal(add5.code, 0, `keel member add: ${add5.stderr}`);
  t.match(add5.stdout, /Member +[0-9a-f]+ added to cluster +[0-9a-f]+/);
  t.match(add5.stdout, /ETCD_INITIAL_CLUSTER_STATE="existing"/);
  c.startJoiner(n5, live);
  await waitCaughtUp(n5);
  const id5 = await idOf(n5);
  const pro5 = await promoteWhenInSync(
    'promote n5 (CLI)',
    () => keel(['member', 'promote', id5, '--endpoints', endpoints()]),
    (r) => r.code !== 0 && r.stderr.includes(NOT_IN_SYNC),
  );
  t.equal(pro5.code, 0, `keel member promote: ${pro5.stderr}`);
  live.push(n5);

  // 3. n6 and n7 as voters straight away (the cluster keeps its quorum while they catch up).
  for (const j of [joiners[2], joiners[3]]) {
    await timed(`add voter ${c.members[j].name}`, () => admin().memberAdd({ peerUrls: [c.members[j].peerUrl] }));
    c.startJoiner(j, live);
    live.push(j);
    await waitCaughtUp(j);
  }
  // Each member publishes its name and client URL once it runs.
  let list7 = await admin().memberList({ linearizable: true });
  for (let k = 0; k < 100 && !list7.members.every((m) => m.name !== '' && m.clientUrls.length === 1); k++) {
    await sleep(100);
    list7 = await admin().memberList({ linearizable: true });
  }
  t.equal(list7.members.length, 7, 'seven members');
  t.ok(list7.members.every((m: MemberInfo) => !m.isLearner && m.name !== '' && m.clientUrls.length === 1), 'all voters, all published');
  const ls = await keel(['member', 'list', '--endpoints', endpoints()]);
  t.equal(ls.code, 0);
  t.equal(ls.stdout.trim().split('\n').length, 7, 'keel member list prints seven members');

  // 4. Shrink to 3: remove the leader first, then three others.
  const removeMember = async (i: number, what: string): Promise<void> => {
    const id = await idOf(i);
    live = live.filter((x) => x !== i);
    await timed(what, () => admin().memberRemove({ id }));
    const code = await c.waitForExit(i, 10_000);
    t.equal(code, 0, `${c.members[i].name} stopped by itself after its removal`);
  };
  const leader = await c.waitForLeader(10_000);
  await removeMember(leader, `remove the leader ${c.members[leader].name}`);
  const next = await c.waitForLeader(10_000, [leader]);
  t.not(next, leader, 'another member leads');
  for (const i of [...live].filter((x) => x !== next).slice(0, 3)) await removeMember(i, `remove ${c.members[i].name}`);
  t.equal(live.length, 3);
  await sleep(500);
  stop = true;
  await writers;

  // Every acknowledged key on every remaining member.
  const leaderNow = await c.waitForLeader(10_000, c.members.map((_m, i) => i).filter((i) => !live.includes(i)));
  const applied = (await c.status(leaderNow))?.raftAppliedIndex ?? 0;
  for (const i of live) {
    await c.waitForApplied(i, applied, 20_000);
    const r = await c.client([c.members[i].clientUrl]).get('grow/', { prefix: true, keysOnly: true, serializable: true });
    const have = new Set(r.kvs.map((kv) => kv.key.toString()));
    const missing = acked.filter((k) => !have.has(k));
    t.same(missing, [], `${c.members[i].name} has all ${acked.length} acknowledged keys`);
  }
  const list3 = await admin().memberList({ linearizable: true });
  t.equal(list3.members.length, 3, 'three members listed');
  t.same(failures, [], 'no write failed');

  // Unavailability per change: the longest gap between two acknowledgements that overlaps the change.
  for (const ch of changes) {
    let gap = 0;
    for (let k = 1; k < ackTimes.length; k++) {
      if (ackTimes[k] >= ch.start && ackTimes[k - 1] <= ch.end + 500) gap = Math.max(gap, ackTimes[k] - ackTimes[k - 1]);
    }
    t.comment(`${ch.what}: ${ch.end - ch.start} ms to apply, writes paused at most ${gap} ms`);
    t.ok(gap < ELECTION_MS, `${ch.what}: unavailability ${gap} ms < one election timeout`);
  }
  t.ok(acked.length > 500, `${acked.length} writes acknowledged during the changes`);

  // A removed member's data dir never serves again; a member that was not added cannot join.
  const gone = [0, 1, 2].find((i) => !live.includes(i)) ?? 0;
  c.startMember(gone, [0, 1, 2]); // with the flags it was created with
  t.equal(await c.waitForExit(gone, 15_000), 1, `${c.members[gone].name} refuses to start on its old data dir`);
  t.match(c.logOf(gone), /was permanently removed from the cluster/);
  const stranger = await c.newMember();
  c.startJoiner(stranger, live);
  t.equal(await c.waitForExit(stranger, 20_000), 1, 'a member that was not added cannot join');
  t.match(c.logOf(stranger), /has no member with peer URL .*; add it first: keel member add/);
});
