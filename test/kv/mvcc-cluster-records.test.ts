// The member registry and the alarms in the store: seeded once, changed by ConfChange entries and by
// memberAttrs / alarm commands in log order, written with the applied index, carried by snapshots, and
// replaced by resetCluster (restore). Also the record codecs' refusal of damaged records.

import t from 'tap';
import { encodeConfChange, type ConfChangeData } from '../../src/raft/core/confchange';
import { EntryType, type Entry } from '../../src/raft/core/types';
import {
  META_MEMBERS,
  applyMemberChange,
  changeAlarms,
  decodeAlarms,
  decodeMembers,
  encodeMemberContext,
  encodeMembers,
} from '../../src/kv/mvcc/cluster-records';
import type { MemberInfo } from '../../src/kv/api';
import { MvccStore } from '../../src/kv/mvcc/mvcc-store';
import { Log, openStore, put, run, tempDir } from './fixtures/mvcc';

const founding: MemberInfo[] = [
  { id: 'a1', name: 'n1', peerUrls: ['http://127.0.0.1:1'], clientUrls: [], isLearner: false },
  { id: 'b2', name: 'n2', peerUrls: ['http://127.0.0.1:2'], clientUrls: [], isLearner: false },
];

function confEntry(log: Log, d: ConfChangeData): Entry {
  return log.raw(encodeConfChange(d), EntryType.ConfChange);
}

t.test('seeded once, then changed by conf changes and commands in log order', async (t) => {
  const s = await openStore(t);
  await s.seedMembers(founding);
  t.same(s.members(), founding);
  await s.seedMembers([]); // a no-op now: the registry exists
  t.same(s.members(), founding);

  const log = new Log();
  const out = await s.apply([
    log.entry(put('k', 'v')),
    confEntry(log, {
      type: 'addLearner',
      nodeId: 'c3',
      context: encodeMemberContext({ name: 'n3', peerUrls: ['http://127.0.0.1:3'] }),
      confState: { voters: ['a1', 'b2'], learners: ['c3'], removed: [] },
    }),
    log.entry({ op: 'memberAttrs', memberId: 'c3', name: 'n3', clientUrls: ['http://127.0.0.1:30'] }),
    log.entry({ op: 'memberAttrs', memberId: 'zz', name: 'ghost', clientUrls: [] }),
  ]);
  t.same(out.members?.map((m) => [m.id, m.name, m.clientUrls, m.isLearner]), [
    ['a1', 'n1', [], false],
    ['b2', 'n2', [], false],
    ['c3', 'n3', ['http://127.0.0.1:30'], true],
  ], 'added as a learner, then published; a non-member publishes nothing');
  t.equal(out.results.get(4)?.result.op, 'memberAttrs');

  await s.apply([
    confEntry(log, { type: 'promoteLearner', nodeId: 'c3', confState: { voters: ['a1', 'b2', 'c3'], learners: [], removed: [] } }),
    confEntry(log, { type: 'removeNode', nodeId: 'a1', confState: { voters: ['b2', 'c3'], learners: [], removed: ['a1'] } }),
  ]);
  t.same(s.members().map((m) => [m.id, m.isLearner]), [['b2', false], ['c3', false]]);

  // Alarms: raised once, listed, cleared for one member or for all.
  const r1 = await run(s, log, { op: 'alarm', action: 'ACTIVATE', memberId: 'b2', alarm: 'NOSPACE' });
  t.same(r1, { op: 'alarm', revision: 2, alarms: [{ memberId: 'b2', alarm: 'NOSPACE' }] });
  const again = await run(s, log, { op: 'alarm', action: 'ACTIVATE', memberId: 'b2', alarm: 'NOSPACE' });
  t.same(again, { op: 'alarm', revision: 2, alarms: [] }, 'raising it again changes nothing');
  await run(s, log, { op: 'alarm', action: 'ACTIVATE', memberId: 'c3', alarm: 'NOSPACE' });
  t.equal(s.alarms().length, 2);
  const cleared = await run(s, log, { op: 'alarm', action: 'DEACTIVATE', memberId: '', alarm: 'NOSPACE' });
  t.same(cleared.op === 'alarm' && cleared.alarms.map((a) => a.memberId), ['b2', 'c3'], 'an empty member id clears all');
  t.same(s.alarms(), []);
  t.equal(s.revision(), 2, 'none of this made a revision');
});

t.test('persisted with the applied index, carried by snapshots, replaced by resetCluster', async (t) => {
  const dir = await tempDir(t);
  const s = await MvccStore.open(`${dir}/a`);
  await s.seedMembers(founding);
  const log = new Log();
  await run(s, log, { op: 'alarm', action: 'ACTIVATE', memberId: 'a1', alarm: 'NOSPACE' });
  const snap = { meta: { index: s.appliedIndex(), term: 1, voters: ['a1', 'b2'] }, data: await s.snapshot() };
  await s.close();

  const reopened = await openStore(t, `${dir}/a`);
  t.same(reopened.members(), founding, 'the registry survives a restart');
  t.same(reopened.alarms(), [{ memberId: 'a1', alarm: 'NOSPACE' }]);

  const other = await openStore(t, `${dir}/b`);
  await other.restore(snap);
  t.same(other.members(), founding, 'and travels in a snapshot');
  t.same(other.alarms(), [{ memberId: 'a1', alarm: 'NOSPACE' }]);
  await other.seedMembers([]);
  t.same(other.members(), founding, 'seeding does not touch a store that has a registry');

  const fresh: MemberInfo[] = [{ id: 'ff', name: 'r1', peerUrls: ['http://127.0.0.1:9'], clientUrls: [], isLearner: false }];
  await other.resetCluster(fresh);
  t.same(other.members(), fresh);
  t.same(other.alarms(), []);
});

t.test('record codecs', async (t) => {
  t.same(decodeMembers(encodeMembers(founding)), founding);
  t.throws(() => decodeMembers(Buffer.from([0xc1])), /members record/);
  t.throws(() => decodeMembers(encodeMembers([{ ...founding[0], isLearner: 'no' as unknown as boolean }])), /malformed/);
  t.throws(() => decodeAlarms(Buffer.from(encodeMembers(founding))), /alarms record/);
  t.equal(META_MEMBERS.toString('latin1'), '\x00members');
  // A conf change whose context is not ours still changes the registry the same way on every member.
  const added = applyMemberChange(founding, {
    type: 'addVoter',
    nodeId: 'c3',
    context: new Uint8Array([0xc1]),
    confState: { voters: ['a1', 'b2', 'c3'], learners: [], removed: [] },
  });
  t.same(added[2], { id: 'c3', name: '', peerUrls: [], clientUrls: [], isLearner: false });
  t.same(changeAlarms([], 'ACTIVATE', 'a1', 'NONE').alarms, [], 'NONE is never raised');
});
