// Unit tests of the Raft log's recovery and consistency-check paths that the simulation's driver does not
// reach (its disk never keeps entries across a snapshot install, and a leader never sends entries below a
// follower's commit index).

import t from 'tap';
import { RaftLog } from '../../src/raft/core/log';
import { EntryType, type Entry, type Snapshot } from '../../src/raft/core/types';

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array([index & 0xff]) });
const snap = (index: number, term: number): Snapshot => ({ meta: { index, term, voters: ['a'] }, data: new Uint8Array(0) });
const range = (from: number, to: number, term: number): Entry[] => Array.from({ length: to - from + 1 }, (_, i) => ent(from + i, term));

t.test('recovery: entries right after the snapshot', (t) => {
  const log = new RaftLog(snap(10, 2), range(11, 15, 3), 10);
  t.equal(log.firstIndex(), 11);
  t.equal(log.lastIndex(), 15);
  t.equal(log.term(10), 2, 'the snapshot gives the term before the first entry');
  t.equal(log.commit, 10);
  t.equal(log.applied, 10);
  t.end();
});

t.test('recovery: a retained tail reaching back before the snapshot', (t) => {
  const log = new RaftLog(snap(10, 2), [...range(6, 10, 2), ...range(11, 12, 3)], 10);
  t.equal(log.lastIndex(), 12);
  t.equal(log.term(10), 2);
  t.equal(log.term(8), 2, 'entries of the tail are kept');
  t.ok(log.firstIndex() <= 8);
  t.end();
});

t.test('recovery: a log that disagrees with the snapshot is superseded', (t) => {
  // The snapshot came from a leader and replaced a diverged log; a driver that kept the old entries must
  // not get them back.
  const log = new RaftLog(snap(10, 4), [...range(6, 9, 2), ...range(10, 14, 3)], 10);
  t.equal(log.firstIndex(), 11);
  t.equal(log.lastIndex(), 10, 'nothing after the snapshot');
  t.equal(log.term(10), 4);
  const short = new RaftLog(snap(10, 4), range(6, 8, 2), 10);
  t.equal(short.lastIndex(), 10, 'a log that ends before the snapshot is superseded too');
  t.end();
});

t.test('recovery: gaps are refused', (t) => {
  t.throws(() => new RaftLog(snap(10, 2), range(12, 13, 3), 10), /missing/);
  t.throws(() => new RaftLog(undefined, [ent(1, 1), ent(3, 1)], 0), /contiguous/);
  t.end();
});

t.test('consistency check against a compacted prefix', (t) => {
  const log = new RaftLog(snap(10, 2), range(11, 12, 3), 10);
  // prevIndex 8 is below the snapshot: the entries up to 10 are committed and match; 11, 12 are appended
  // over (same terms: no conflict), 13 is new.
  const last = log.maybeAppend(8, 2, 13, [ent(9, 2), ent(10, 2), ent(11, 3), ent(12, 3), ent(13, 3)]);
  t.equal(last, 13);
  t.equal(log.lastIndex(), 13);
  t.equal(log.commit, 13);
  const none = log.maybeAppend(5, 2, 13, [ent(6, 2), ent(7, 2)]);
  t.equal(none, 7, 'all below the snapshot: matches, nothing changes');
  t.equal(log.lastIndex(), 13);
  t.end();
});

t.test('a conflict with a committed entry is a fatal error', (t) => {
  const log = new RaftLog(undefined, range(1, 5, 1), 0);
  log.commitTo(4);
  t.throws(() => log.maybeAppend(2, 1, 5, [ent(3, 2)]), /conflicts with a committed entry/);
  t.end();
});

t.test('findConflictByTerm skips whole terms', (t) => {
  const log = new RaftLog(undefined, [...range(1, 3, 1), ...range(4, 8, 3), ...range(9, 12, 5)], 0);
  t.same(log.findConflictByTerm(12, 4), { index: 8, term: 3 });
  t.same(log.findConflictByTerm(12, 2), { index: 3, term: 1 });
  t.same(log.findConflictByTerm(20, 9), { index: 12, term: 5 }, 'beyond the end: from the last index');
  t.same(log.findConflictByTerm(12, 0), { index: 0, term: 0 });
  t.end();
});
