// The watch hub's semantics, one at a time, against an in-memory history: creating (ids, ranges, start
// revisions, compaction, bad input), filters and prevKv, atomic revisions and fragments, catch-up from
// history (bounded, shared, racing with live applies), cancel, restore, close. Slow consumers and
// progress notifications: watch-hub-slow.test.ts; the randomized run: watch-hub-random.test.ts.

import t from 'tap';
import type { WatchResponse } from '../../src/kv/api';
import { WatchHub } from '../../src/kv/watch-hub';
import { harness, header, immediate } from './fixtures/hub-harness';
import { b, MemoryHistory } from './fixtures/memory-history';

const COMPACTED = 'etcdserver: mvcc: required revision has been compacted';
const ZERO = Buffer.from([0]);

/** Control responses (created / canceled) without the header, for compact comparisons. */
const control = (r: WatchResponse): Partial<WatchResponse> => {
  const { header: _h, events: _e, ...rest } = r;
  return rest;
};

t.test('create from now: created at the current revision, then the live events of that key only', async (t) => {
  const h = harness(t);
  h.put('a', 'one'); // rev 2
  const r = h.open();
  r.stream.create({ key: b('a') });
  t.same(r.responses.map(control), [{ watchId: 0, created: true }]);
  t.equal(r.responses[0].header.revision, 2, 'created carries the current revision');
  t.equal(r.responses[0].header.raftTerm, 7, 'the header comes from the member');
  r.take();
  h.put('a', 'two'); // rev 3
  h.put('b', 'x'); // rev 4: another key
  h.put('ab', 'x'); // rev 5: a key with `a` as prefix is not `a`
  t.same(r.seen(0), ['3:PUT:a']);
  const [resp] = r.responses;
  t.equal(resp.header.revision, 3, 'a live response carries its revision');
  const ev = resp.events[0];
  t.equal(ev.kv.value.toString(), 'two');
  t.equal(ev.kv.version, 2);
  t.equal(ev.kv.createRevision, 2);
  t.equal(ev.prevKv, undefined, 'prevKv stripped when not asked for');
  t.same(h.hub.stats(), { streams: 1, watchers: 1, synced: 1, unsynced: 0 });
});

t.test('watch ids: from 0 up, skipping ids in use; the client id when free; a duplicate is refused as etcd does', async (t) => {
  const h = harness(t);
  const r = h.open();
  r.stream.create({ key: b('a') }); // 0
  r.stream.create({ key: b('a'), watchId: 2 }); // 2
  r.stream.create({ key: b('a') }); // 1
  r.stream.create({ key: b('a'), watchId: -1 }); // auto: 3 (2 is taken)
  r.stream.create({ key: b('a'), watchId: 2 }); // in use
  t.same(
    r.take().map(control),
    [
      { watchId: 0, created: true },
      { watchId: 2, created: true },
      { watchId: 1, created: true },
      { watchId: 3, created: true },
      { watchId: -1, created: true, canceled: true, cancelReason: 'mvcc: duplicate watch ID provided on the WatchStream' },
    ],
  );
  r.stream.cancel(1);
  r.stream.create({ key: b('a') }); // etcd keeps counting up: 4, not the freed 1
  r.stream.create({ key: b('a'), watchId: 1 }); // the freed id, asked for explicitly
  t.same(r.take().map(control), [
    { watchId: 1, canceled: true },
    { watchId: 4, created: true },
    { watchId: 1, created: true },
  ]);
  // Ids belong to a stream: another stream starts at 0 again.
  const r2 = h.open();
  r2.stream.create({ key: b('a') });
  t.equal(r2.responses[0].watchId, 0);
  h.put('a');
  t.same([...new Set(r.responses.map((x) => x.watchId))].sort(), [0, 1, 2, 3, 4], 'every live watch got the event');
});

t.test('bad create requests: refused with a reason, watch id -1, nothing registered', async (t) => {
  const h = harness(t);
  const r = h.open();
  const bad: [string, Parameters<typeof r.stream.create>[0], string | RegExp][] = [
    ['inverted range', { key: b('b'), rangeEnd: b('a') }, 'mvcc: watcher range is empty'],
    ['empty range', { key: b('b'), rangeEnd: b('b') }, 'mvcc: watcher range is empty'],
    ['negative start revision (etcd answers compacted)', { key: b('a'), startRevision: -3 }, COMPACTED],
    ['fractional start revision', { key: b('a'), startRevision: 1.5 }, /invalid watch start revision 1\.5/],
    ['negative watch id', { key: b('a'), watchId: -7 }, /invalid watch id -7/],
    ['fractional watch id', { key: b('a'), watchId: 0.5 }, /invalid watch id 0\.5/],
    ['unknown filter', { key: b('a'), filters: ['NOPE' as 'NOPUT'] }, /unknown watch filter "NOPE"/],
    ['key not bytes', { key: 'a' as unknown as Buffer }, /watch key must be bytes/],
    ['range end not bytes', { key: b('a'), rangeEnd: 'b' as unknown as Buffer }, /range_end must be bytes/],
    ['too large', { key: Buffer.alloc(1024 * 1024), rangeEnd: Buffer.alloc(600 * 1024, 0xff) }, 'etcdserver: request is too large'],
  ];
  for (const [what, req, reason] of bad) {
    r.take();
    r.stream.create(req);
    t.equal(r.responses.length, 1, what);
    const resp = r.responses[0];
    t.match(resp, { watchId: -1, created: true, canceled: true }, what);
    if (typeof reason === 'string') t.equal(resp.cancelReason, reason, what);
    else t.match(resp.cancelReason, reason, what);
  }
  t.same(h.hub.stats().watchers, 0);
  r.take();
  r.stream.create({ key: b('a') });
  t.equal(r.responses[0].watchId, 0, 'refusals used no id');
});

t.test('ranges: [key, end), prefix, every key >= key, and the empty key', async (t) => {
  const h = harness(t);
  const r = h.open();
  r.stream.create({ key: b('a/'), rangeEnd: b('a0') }); // 0: prefix a/
  r.stream.create({ key: b('b'), rangeEnd: ZERO }); // 1: every key >= b
  r.stream.create({ key: Buffer.alloc(0), rangeEnd: ZERO }); // 2: every key
  r.stream.create({ key: b('a/2'), rangeEnd: b('b') }); // 3: [a/2, b)
  r.stream.create({ key: Buffer.alloc(0) }); // 4: the empty key is "\0" (etcd)
  r.take();
  h.put('a/1'); // 2
  h.put('a/2'); // 3
  h.put('a0'); // 4
  h.put('b'); // 5
  h.put('zz'); // 6
  h.put('a'); // 7
  h.write({ put: '\0', value: 'nul' }); // 8
  t.same(r.seen(0), ['2:PUT:a/1', '3:PUT:a/2']);
  t.same(r.seen(1), ['5:PUT:b', '6:PUT:zz']);
  t.same(r.seen(2).map((s) => Number(s.split(':')[0])), [2, 3, 4, 5, 6, 7, 8]);
  t.same(r.seen(3), ['3:PUT:a/2', '4:PUT:a0'], '"a" sorts before "a/2"');
  t.same(r.seen(4), ['8:PUT:\0']);
});

t.test('filters NOPUT / NODELETE, and prevKv only when asked', async (t) => {
  const h = harness(t);
  h.put('k', 'v1'); // 2
  const r = h.open();
  r.stream.create({ key: b('k'), filters: ['NOPUT'] }); // 0: deletes only
  r.stream.create({ key: b('k'), filters: ['NODELETE'] }); // 1: puts only
  r.stream.create({ key: b('k'), filters: ['NOPUT', 'NODELETE'] }); // 2: nothing
  r.stream.create({ key: b('k'), prevKv: true }); // 3
  r.stream.create({ key: b('k') }); // 4
  r.take();
  h.put('k', 'v2'); // 3
  h.del('k'); // 4
  h.put('k', 'v3'); // 5: created again: no prevKv to give
  t.same(r.seen(0), ['4:DELETE:k']);
  t.same(r.seen(1), ['3:PUT:k', '5:PUT:k']);
  t.same(r.eventResponses(2), [], 'a revision whose events are all filtered out sends nothing');
  const withPrev = r.events(3);
  t.same(withPrev.map((e) => e.prevKv?.value.toString()), ['v1', 'v2', undefined]);
  t.equal(withPrev[1].kv.modRevision, 4, 'a DELETE carries the delete revision');
  t.equal(withPrev[1].kv.value.length, 0);
  t.same(r.events(4).map((e) => e.prevKv), [undefined, undefined, undefined]);
});

t.test('start revision in the past: history first, then live, each revision once', async (t) => {
  const h = harness(t);
  for (let i = 0; i < 6; i++) h.put(i % 2 === 0 ? 'a' : 'b'); // revs 2..7
  const r = h.open();
  r.stream.create({ key: b('a'), startRevision: 3, prevKv: true });
  t.same(r.responses.map(control), [{ watchId: 0, created: true }], 'created at once; history follows');
  t.equal(h.hub.stats().unsynced, 1);
  await h.settle();
  t.equal(h.hub.stats().unsynced, 0);
  h.put('a'); // 8
  t.same(r.seen(0), ['4:PUT:a', '6:PUT:a', '8:PUT:a']);
  t.equal(r.events(0)[0].prevKv?.modRevision, 2, 'prevKv from history too');
});

t.test('start revision in the future: the watch waits for it', async (t) => {
  const h = harness(t);
  const r = h.open();
  r.stream.create({ key: b('a'), startRevision: 5 });
  t.equal(r.responses[0].header.revision, 1);
  h.put('a'); // 2
  h.put('a'); // 3
  h.put('a'); // 4
  h.put('a'); // 5
  h.put('a'); // 6
  t.same(r.seen(0), ['5:PUT:a', '6:PUT:a']);
});

t.test('compacted start revision: created, then canceled with the compact revision', async (t) => {
  const h = harness(t);
  for (let i = 0; i < 5; i++) h.put('a'); // 2..6
  h.history.compact(4);
  h.hub.onApplied([]); // the compaction's entry makes no revision
  const r = h.open();
  r.stream.create({ key: b('a'), startRevision: 3 });
  t.same(r.responses.map(control), [
    { watchId: 0, created: true },
    { watchId: 0, canceled: true, compactRevision: 4, cancelReason: COMPACTED },
  ]);
  t.equal(h.hub.stats().watchers, 0);
  r.take();
  r.stream.create({ key: b('a'), startRevision: 4 }); // the compact revision itself is still there
  await h.settle();
  t.same(r.seen(1), ['4:PUT:a', '5:PUT:a', '6:PUT:a'], 'the canceled watch freed nothing wrong; id 1 is next');
});

t.test('a compaction that overtakes a catch-up cancels the watch with the compact revision', async (t) => {
  const h = harness(t, { historyBatchRevisions: 2 });
  for (let i = 0; i < 10; i++) h.put('a'); // 2..11
  const release = h.history.holdReads();
  const r = h.open();
  r.stream.create({ key: b('a'), startRevision: 2 });
  await h.settle(5); // the first read (2..3) is in flight
  h.history.compact(8);
  h.hub.onApplied([]);
  release();
  await h.settle();
  const last = r.responses[r.responses.length - 1];
  t.match(last, { watchId: 0, canceled: true, compactRevision: 8, cancelReason: COMPACTED });
  t.same(r.seen(0), [], 'the read that failed delivered nothing');
});

t.test('atomic: every event of a revision in one response, live and from history', async (t) => {
  const h = harness(t, { maxResponseBytes: 600, historyBatchRevisions: 4 });
  const live = h.open();
  live.stream.create({ key: b('p/'), rangeEnd: b('p0') });
  const value = 'x'.repeat(100);
  for (let i = 0; i < 8; i++) {
    h.write({ put: `p/${i}a`, value }, { put: `p/${i}b`, value }, { put: `q/${i}`, value }, { put: `p/${i}c`, value });
  }
  t.equal(live.eventResponses(0).length, 8, 'one live response per revision');
  for (const resp of live.eventResponses(0)) {
    t.same(resp.events.map((e) => e.kv.modRevision), Array(3).fill(resp.header.revision));
  }
  const late = h.open();
  late.stream.create({ key: b('p/'), rangeEnd: b('p0'), startRevision: 2 });
  await h.settle();
  const resps = late.eventResponses(0);
  t.ok(resps.length > 1, 'history responses are cut to stay under maxResponseBytes');
  const seenRevs = new Set<number>();
  for (const resp of resps) {
    const revs = [...new Set(resp.events.map((e) => e.kv.modRevision))];
    for (const rev of revs) {
      t.notOk(seenRevs.has(rev), `revision ${rev} in one response only`);
      seenRevs.add(rev);
      t.equal(resp.events.filter((e) => e.kv.modRevision === rev).length, 3, `revision ${rev} whole`);
    }
    t.notOk(resp.fragment);
  }
  t.equal(seenRevs.size, 8);
});

t.test('fragment: a response over maxResponseBytes is cut into fragments, as etcd does', async (t) => {
  const h = harness(t, { maxResponseBytes: 1000 });
  const r = h.open();
  r.stream.create({ key: b('f/'), rangeEnd: b('f0'), fragment: true }); // 0
  r.stream.create({ key: b('f/'), rangeEnd: b('f0') }); // 1: no fragment: one big response
  r.take();
  const big = 'y'.repeat(300);
  h.write(...Array.from({ length: 10 }, (_, i) => ({ put: `f/${i}`, value: big })));
  const frags = r.responses.filter((x) => x.watchId === 0);
  t.ok(frags.length >= 4, `split into ${frags.length} fragments`);
  t.same(frags.map((x) => x.fragment === true), [...Array(frags.length - 1).fill(true), false], 'fragment on all but the last');
  t.same(frags.flatMap((x) => x.events).map((e) => e.kv.key.toString()), Array.from({ length: 10 }, (_, i) => `f/${i}`));
  for (const f of frags) t.ok(f.events.length >= 1);
  t.equal(r.eventResponses(1).length, 1);
  t.equal(r.events(1).length, 10);
  // A single event larger than the limit cannot be cut: it goes alone (etcd: "contains only one event").
  r.take();
  h.put('f/huge', 'z'.repeat(5000));
  t.same(r.responses.map((x) => [x.watchId, x.events.length, x.fragment === true]), [[0, 1, false], [1, 1, false]]);
});

t.test('fragments of one response stay together even if the sink creates a watch in between', async (t) => {
  const h = harness(t, { maxResponseBytes: 500 });
  const r = h.open();
  let created = false;
  const stream = h.hub.openStream((resp) => {
    r.responses.push(resp);
    if (resp.fragment && !created) {
      created = true;
      stream.create({ key: b('other') });
    }
    return true;
  });
  stream.create({ key: b('f/'), rangeEnd: b('f0'), fragment: true });
  h.write(...Array.from({ length: 6 }, (_, i) => ({ put: `f/${i}`, value: 'v'.repeat(200) })));
  const kinds = r.responses.map((x) => (x.created ? `created:${x.watchId}` : x.fragment ? 'frag' : 'last'));
  const firstFrag = kinds.indexOf('frag');
  const lastIdx = kinds.indexOf('last');
  t.ok(firstFrag > 0 && lastIdx > firstFrag);
  t.same(kinds.slice(firstFrag, lastIdx + 1).every((k) => k === 'frag' || k === 'last'), true, 'no response between fragments');
  t.equal(kinds[lastIdx + 1], 'created:1', 'the created response follows the last fragment');
});

t.test('cancel: a canceled response, then nothing; an unknown id gets no answer', async (t) => {
  const h = harness(t);
  const r = h.open();
  r.stream.create({ key: b('a') });
  h.put('a'); // 2
  r.stream.cancel(0);
  r.stream.cancel(42);
  h.put('a'); // 3
  t.same(r.responses.map((x) => [x.watchId, x.created === true, x.canceled === true, x.events.length]), [
    [0, true, false, 0],
    [0, false, false, 1],
    [0, false, true, 0],
  ]);
  t.equal(r.responses[2].header.revision, 2);
  t.same(h.hub.stats().watchers, 0);
});

t.test('history is read in bounded batches, one read shared by the watchers it covers', async (t) => {
  const h = harness(t, { historyBatchRevisions: 20 });
  for (let i = 0; i < 300; i++) h.put(`k${i % 7}`); // 2..301
  const r = h.open();
  for (let i = 0; i < 5; i++) r.stream.create({ key: b(`k${i}`), startRevision: 2 });
  r.stream.create({ key: b('k5'), startRevision: 150 });
  await h.settle(500);
  t.equal(h.hub.stats().unsynced, 0);
  const reads = h.history.reads;
  t.ok(reads.every((x) => x.maxRevisions === 20 && (x.returned ?? 0) <= 20), 'every read bounded');
  // The last 20 revisions (282..301) come from the recent window. The five watchers at 2 share 14 reads
  // (2..281); the one at 150 is served in turn (FIFO, so that a watcher far behind cannot starve one a
  // little behind) with 7 reads of its own. Unshared, it would be 77.
  t.equal(reads.length, 21, `${reads.length} reads for six watchers`);
  const written = Array.from({ length: 300 }, (_, j) => j + 2);
  for (let i = 0; i < 5; i++) {
    t.same(r.events(i).map((e) => e.kv.modRevision), written.filter((rev) => (rev - 2) % 7 === i));
  }
  t.same(r.events(5).map((e) => e.kv.modRevision), written.filter((rev) => (rev - 2) % 7 === 5 && rev >= 150));
});

t.test('revisions applied while a history read is pending are delivered once, with no gap', async (t) => {
  for (const [label, during] of [
    ['bridged from the recent window', 3],
    ['beyond the recent window: read in the next round', 12],
  ] as const) {
    await t.test(label, async (t) => {
      const h = harness(t, { historyBatchRevisions: 5 });
      for (let i = 0; i < 10; i++) h.put('a'); // 2..11
      const release = h.history.holdReads();
      const r = h.open();
      r.stream.create({ key: b('a'), startRevision: 2 });
      await h.settle(5);
      t.equal(h.history.reads.length, 1, 'the first read is pending');
      for (let i = 0; i < during; i++) h.put('a'); // applied live meanwhile: not for this watcher yet
      t.same(r.seen(0), [], 'nothing live for a watcher still reading history');
      release();
      await h.settle();
      h.put('a');
      const revs = r.events(0).map((e) => e.kv.modRevision);
      t.same(revs, Array.from({ length: 10 + during + 1 }, (_, i) => i + 2), 'every revision once, in order');
    });
  }
});

t.test('restore: watchers catch up from the new state, or are canceled when their next revision is gone', async (t) => {
  const h = harness(t);
  h.put('a'); // 2
  const r = h.open();
  r.stream.create({ key: b('a') }); // 0: synced at 2
  r.stream.create({ key: b('b') }); // 1
  r.stream.create({ key: b('a'), startRevision: 9 }); // 2: waits for 9
  r.take();
  // A snapshot from the leader carries revisions 3..8 that this member never applied one by one.
  h.history.put('a', 'snap-3');
  h.history.put('b', 'snap-4');
  h.history.put('a', 'snap-5');
  h.hub.onRestore();
  t.equal(h.hub.stats().unsynced, 3);
  await h.settle();
  t.same(r.seen(0), ['3:PUT:a', '5:PUT:a']);
  t.same(r.seen(1), ['4:PUT:b']);
  h.put('a'); // 6
  h.put('a'); // 7
  h.put('a'); // 8
  h.put('a'); // 9
  t.same(r.seen(0), ['3:PUT:a', '5:PUT:a', '6:PUT:a', '7:PUT:a', '8:PUT:a', '9:PUT:a']);
  t.same(r.seen(2), ['9:PUT:a'], 'the future start revision survives the restore');

  r.take();
  h.history.put('b', 'x'); // 10, only in the snapshot
  h.history.put('b', 'y'); // 11
  h.history.compact(11); // ... which was taken after a compaction
  h.hub.onRestore();
  await h.settle();
  for (const id of [0, 1, 2]) {
    t.match(
      r.responses.find((x) => x.watchId === id),
      { canceled: true, compactRevision: 11, cancelReason: COMPACTED },
      `watch ${id} needed revision 10`,
    );
  }
  t.same(h.hub.stats().watchers, 0);
});

t.test('a restore during a history read discards that read', async (t) => {
  const h = harness(t, { historyBatchRevisions: 2 });
  for (let i = 0; i < 4; i++) h.put('a'); // 2..5
  const release = h.history.holdReads();
  const r = h.open();
  r.stream.create({ key: b('a'), startRevision: 2 });
  await h.settle(5);
  t.equal(h.history.reads.length, 1, 'a read is pending');
  h.history.put('a'); // 6, from a snapshot
  h.hub.onRestore();
  release();
  await h.settle();
  h.put('a'); // 7
  t.same(r.events(0).map((e) => e.kv.modRevision), [2, 3, 4, 5, 6, 7]);
  t.ok(h.history.reads.length >= 2, 'read again after the restore');
});

t.test('close: a closed stream hears nothing more; hub.close() ends everything', async (t) => {
  const h = harness(t);
  const a = h.open();
  const c = h.open();
  a.stream.create({ key: b('k') });
  c.stream.create({ key: b('k'), startRevision: 1 });
  a.stream.close();
  a.stream.create({ key: b('k') });
  h.put('k');
  t.equal(a.responses.length, 1, 'only the created response from before the close');
  t.same(h.hub.stats(), { streams: 1, watchers: 1, synced: 0, unsynced: 1 });
  h.hub.close();
  await h.settle(10);
  t.same(h.hub.stats(), { streams: 0, watchers: 0, synced: 0, unsynced: 0 });
  t.equal(c.responses.length, 1);
  h.hub.onApplied([h.history.put('k', 'after')]);
  h.hub.onRestore();
  t.equal(c.responses.length, 1, 'no sink call after close');
  t.throws(() => h.hub.openStream(() => true), { message: 'etcdserver: server stopped' });
});

t.test('close while a history read is in flight: the read is discarded, no sink call follows', async (t) => {
  const h = harness(t, { historyBatchRevisions: 2 });
  for (let i = 0; i < 6; i++) h.put('a'); // 2..7
  const release = h.history.holdReads();
  const r = h.open();
  r.stream.create({ key: b('a'), startRevision: 2 });
  await h.settle(5);
  t.equal(h.history.reads.length, 1);
  h.hub.close();
  release();
  await h.settle(10);
  t.equal(r.responses.length, 1, 'only the created response');
  t.equal(h.history.reads.length, 1, 'no further read');
});

t.test('a revision handed over twice is ignored', async (t) => {
  const h = harness(t);
  const r = h.open();
  r.stream.create({ key: b('a') });
  const rc = h.history.put('a');
  h.hub.onApplied([rc]);
  h.hub.onApplied([rc]);
  t.same(r.seen(0), ['2:PUT:a']);
});

t.test('a sink that throws closes its own stream only', async (t) => {
  const h = harness(t);
  const good = h.open();
  good.stream.create({ key: b('k') });
  let calls = 0;
  const bad = h.hub.openStream(() => {
    calls += 1;
    if (calls > 1) throw new Error('socket gone');
    return true;
  });
  bad.create({ key: b('k') });
  h.put('k');
  h.put('k');
  t.equal(calls, 2);
  t.equal(good.events(0).length, 2);
  t.equal(h.hub.stats().streams, 1);
});

t.test('a failing history read cancels the watch with the error', async (t) => {
  const history = new MemoryHistory();
  const h = harness(t, { historyBatchRevisions: 2 }, history);
  for (let i = 0; i < 5; i++) h.put('a'); // 2..6: 2..4 are older than the recent window
  history.events = async () => {
    throw new Error('disk on fire');
  };
  const r = h.open();
  r.stream.create({ key: b('a'), startRevision: 2 });
  await h.settle();
  t.match(r.responses[1], { watchId: 0, canceled: true, cancelReason: 'etcdserver: reading watch history failed: disk on fire' });
  t.equal(r.responses[1].compactRevision, undefined);
});

t.test('options are checked', async (t) => {
  const history = new MemoryHistory();
  const bads = [
    { maxBufferedRevisions: 0 },
    { historyBatchRevisions: -1 },
    { progressIntervalMs: 1.5 },
    { maxResponseBytes: Number.NaN },
  ];
  for (const bad of bads) {
    t.throws(() => new WatchHub({ history, header, ...bad }), RangeError, JSON.stringify(bad));
  }
  await immediate();
});
