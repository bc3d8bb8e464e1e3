// WatchCursor (src/client/watch-resume.ts): where a watch stands and where it resumes.

import t from 'tap';
import type { Event } from '../../src/kv/api';
import { WatchCursor } from '../../src/client/watch-resume';

const ev = (rev: number, key = 'k'): Event => ({
  type: 'PUT',
  kv: { key: Buffer.from(key), value: Buffer.from('v'), createRevision: rev, modRevision: rev, version: 1, lease: 0 },
});

t.test('a watch from now starts after the created revision; events are split per revision', async (t) => {
  const c = new WatchCursor(0);
  t.equal(c.startRevision, 0, 'nothing known before created');
  c.created(10);
  t.equal(c.startRevision, 11);
  t.equal(c.lastRevision, 0);
  const groups = c.accept([ev(11, 'a'), ev(11, 'b'), ev(13)]);
  t.same(groups.map((g) => [g.revision, g.events.length]), [[11, 2], [13, 1]]);
  t.equal(c.lastRevision, 13);
  t.equal(c.startRevision, 14);
  c.created(5); // re-created on a member that is behind: the resume point stays
  t.equal(c.startRevision, 14);
});

t.test('what was delivered is dropped when sent again', async (t) => {
  const c = new WatchCursor(5);
  t.equal(c.startRevision, 5, 'an explicit start revision is the first resume point');
  t.same(c.accept([ev(3), ev(4)]), [], 'below the start: dropped');
  t.same(c.accept([ev(5), ev(6)]).map((g) => g.revision), [5, 6]);
  t.same(c.accept([ev(5), ev(6), ev(7), ev(7, 'x')]).map((g) => [g.revision, g.events.length]), [[7, 2]]);
  t.same(c.accept([ev(8), ev(7)]).map((g) => g.revision), [8], 'never backwards');
});

t.test('progress counts as delivered, only forwards', async (t) => {
  const c = new WatchCursor(0);
  c.created(10);
  t.equal(c.progress(12), true);
  t.equal(c.lastRevision, 12);
  t.equal(c.startRevision, 13);
  t.equal(c.progress(12), false);
  t.equal(c.progress(11), false);
  const future = new WatchCursor(100);
  t.equal(future.progress(50), true, 'a progress before a future start is still news');
  t.equal(future.startRevision, 100, 'but the start stays');
});
