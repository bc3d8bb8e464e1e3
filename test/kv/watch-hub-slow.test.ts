// Slow consumers (a sink that says it is backed up) and progress notifications (periodic and requested).

import t from 'tap';
import { harness, immediate } from './fixtures/hub-harness';
import { b } from './fixtures/memory-history';

const COMPACTED = 'etcdserver: mvcc: required revision has been compacted';
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

t.test('a backed-up stream holds its responses and sends them in order on resume; other streams are not held up', async (t) => {
  const h = harness(t);
  const slow = h.open();
  const fast = h.open();
  slow.stream.create({ key: b('k') });
  fast.stream.create({ key: b('k') });
  slow.take();
  fast.take();
  slow.backedUp = true;
  h.put('k'); // 2: taken, but the sink says it is full
  h.put('k'); // 3: held
  h.put('k'); // 4: held
  slow.stream.cancel(0); // the canceled response waits behind the events it follows... and drops them
  slow.stream.create({ key: b('k') }); // 1
  h.put('k'); // 5
  t.equal(slow.calls, 2, 'the sink is not called again until resume()');
  t.same(fast.events(0).map((e) => e.kv.modRevision), [2, 3, 4, 5], 'the other stream got everything at once');
  slow.backedUp = false;
  slow.stream.resume();
  t.same(
    slow.responses.map((r) => [r.watchId, r.created === true, r.canceled === true, r.events.map((e) => e.kv.modRevision)]),
    [
      [0, false, false, [2]],
      [0, false, true, []],
      [1, true, false, []],
      [1, false, false, [5]],
    ],
    'a canceled watch drops what it had waiting; the rest leaves in order',
  );
  t.same(h.hub.stats(), { streams: 2, watchers: 2, synced: 2, unsynced: 0 });
});

t.test('overflow: past maxBufferedRevisions a watcher drops its buffer and catches up from history after resume', async (t) => {
  const h = harness(t, { maxBufferedRevisions: 4, historyBatchRevisions: 3 });
  const r = h.open();
  const other = h.open();
  r.stream.create({ key: b('k'), prevKv: true }); // 0
  r.stream.create({ key: b('j') }); // 1: stays within its bound
  other.stream.create({ key: b('k') });
  r.backedUp = true;
  for (let i = 0; i < 20; i++) h.put('k'); // 2..21
  h.put('j'); // 22
  t.equal(r.calls, 3, 'created, created, then the first event response (backed up)');
  t.same(h.hub.stats(), { streams: 2, watchers: 3, synced: 2, unsynced: 1 }, 'watch 0 fell back to history');
  await h.settle(20);
  t.equal(r.calls, 3, 'nothing is read for a stream that cannot take it');
  t.equal(h.history.reads.length, 0);
  for (let i = 0; i < 5; i++) h.put('k'); // 23..27: live for others, not for watch 0
  r.backedUp = false;
  r.stream.resume();
  await h.settle();
  h.put('k'); // 28: live again
  t.same(r.events(0).map((e) => e.kv.modRevision), [...range(2, 21), ...range(23, 28)], 'everything once, in order');
  t.ok(r.events(0).every((e) => e.prevKv !== undefined || e.kv.modRevision === 2), 'prevKv from history too');
  t.same(r.events(1).map((e) => e.kv.modRevision), [22]);
  t.same(other.events(0).length, 26);
  t.ok(h.history.reads.length > 0, 'the dropped revisions came from history');
  t.same(h.hub.stats().unsynced, 0);
});

t.test('overflow, then a compaction past the dropped revisions: canceled with the compact revision on resume', async (t) => {
  const h = harness(t, { maxBufferedRevisions: 2, historyBatchRevisions: 2 });
  const r = h.open();
  r.stream.create({ key: b('k') });
  r.backedUp = true;
  for (let i = 0; i < 10; i++) h.put('k'); // 2..11: 2 went out, 3.. dropped
  h.history.compact(9);
  h.hub.onApplied([]);
  r.backedUp = false;
  r.stream.resume();
  await h.settle();
  t.same(r.events(0).map((e) => e.kv.modRevision), [2]);
  t.match(r.responses[r.responses.length - 1], { watchId: 0, canceled: true, compactRevision: 9, cancelReason: COMPACTED });
  t.same(h.hub.stats().watchers, 0);
});

t.test('overflow keeps the rest of a fragmented response that is already under way', async (t) => {
  const h = harness(t, { maxBufferedRevisions: 1, maxResponseBytes: 400 });
  const r = h.open();
  r.stream.create({ key: b('f/'), rangeEnd: b('f0'), fragment: true });
  r.take();
  r.backedUp = true;
  h.write(...Array.from({ length: 4 }, (_, i) => ({ put: `f/${i}`, value: 'v'.repeat(150) }))); // 2: fragments
  t.equal(r.responses.length, 1, 'the first fragment went out, the rest wait');
  t.equal(r.responses[0].fragment, true);
  h.put('f/x'); // 3
  h.put('f/y'); // 4: overflow: 3 and 4 dropped, the fragments of 2 kept
  t.equal(h.hub.stats().unsynced, 1);
  r.backedUp = false;
  r.stream.resume();
  await h.settle();
  const joined: number[][] = [];
  let cur: number[] = [];
  for (const resp of r.responses) {
    cur.push(...resp.events.map((e) => e.kv.modRevision));
    if (!resp.fragment) {
      joined.push([...new Set(cur)]);
      cur = [];
    }
  }
  t.same(joined, [[2], [3, 4]], 'revision 2 whole from its fragments, then 3 and 4 from history');
  t.equal(r.events(0).filter((e) => e.kv.modRevision === 2).length, 4);
});

t.test('requestProgress: watch id -1 with the current revision once every watch of the stream is synced', async (t) => {
  const h = harness(t, { historyBatchRevisions: 2 });
  for (let i = 0; i < 8; i++) h.put('a'); // 2..9
  const r = h.open();
  r.stream.requestProgress();
  t.match(r.take(), [{ watchId: -1, header: { revision: 9 }, events: [] }], 'no watch: answered at once');
  r.stream.create({ key: b('b') });
  r.stream.requestProgress();
  t.match(r.take(), [{ created: true }, { watchId: -1, header: { revision: 9 } }]);

  const release = h.history.holdReads();
  r.stream.create({ key: b('a'), startRevision: 2 }); // behind: reads history
  r.stream.requestProgress();
  r.stream.requestProgress(); // asked twice while waiting: answered once
  await h.settle(5);
  h.put('a'); // 10
  t.same(r.take().map((x) => x.created === true), [true], 'no progress while a watch is behind');
  release();
  await h.settle();
  const out = r.take();
  const progressAt = out.findIndex((x) => x.watchId === -1);
  t.ok(progressAt > 0, 'sent once caught up');
  t.equal(out.filter((x) => x.watchId === -1).length, 1);
  t.equal(out[progressAt].header.revision, 10);
  t.same(
    out.slice(0, progressAt).flatMap((x) => x.events.map((e) => e.kv.modRevision)),
    range(2, 10),
    'every event at or below the progress revision came before it',
  );
});

t.test('a progress notification queued behind a backed-up stream is withdrawn if a watcher then overflows', async (t) => {
  const h = harness(t, { maxBufferedRevisions: 2, historyBatchRevisions: 2 });
  const r = h.open();
  r.stream.create({ key: b('k') });
  r.take();
  r.backedUp = true;
  h.put('k'); // 2: out
  h.put('k'); // 3: queued
  r.stream.requestProgress(); // queued: "everything up to 3"
  h.put('k'); // 4
  h.put('k'); // 5: overflow: 3.. dropped, so the queued notification would lie
  r.backedUp = false;
  r.stream.resume();
  await h.settle();
  const out = r.responses;
  const at = out.findIndex((x) => x.watchId === -1);
  t.ok(at >= 0, 'the notification is sent again after the catch-up');
  t.same(out.slice(0, at).flatMap((x) => x.events.map((e) => e.kv.modRevision)), [2, 3, 4, 5]);
  t.equal(out[at].header.revision, 5);
  t.equal(out.filter((x) => x.watchId === -1).length, 1);
});

t.test('periodic progress: an idle synced progressNotify watch gets {watchId, current revision}; not right after events', async (t) => {
  const intervalMs = 40;
  const h = harness(t, { progressIntervalMs: intervalMs });
  h.put('x'); // 2
  const r = h.open();
  const stamps: { at: number; rev: number; events: number }[] = [];
  const stream = h.hub.openStream((resp) => {
    if (!resp.created) stamps.push({ at: performance.now(), rev: resp.header.revision, events: resp.events.length });
    return true;
  });
  stream.create({ key: b('k'), progressNotify: true });
  r.stream.create({ key: b('k') }); // no progressNotify: never gets one

  const deadline = Date.now() + 10_000;
  while (stamps.length === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
  t.equal(stamps.length, 1, 'an idle watch gets a notification');
  t.same(stamps[0], { at: stamps[0].at, rev: 2, events: 0 });
  // An event right after that tick: the next tick must skip the notification (etcd elides it).
  await immediate();
  h.put('k'); // 3
  while (stamps.length < 3 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
  t.equal(stamps[1].events, 1);
  t.same({ rev: stamps[2].rev, events: stamps[2].events }, { rev: 3, events: 0 });
  const gap = stamps[2].at - stamps[0].at;
  t.ok(gap >= 1.5 * intervalMs, `the tick after the event was skipped (${Math.round(gap)} ms)`);
  t.same(r.responses.filter((x) => !x.created && x.events.length === 0), [], 'no notification without progressNotify');
});

t.test('periodic progress is not sent to a watch that is behind, nor into a backed-up stream', async (t) => {
  const h = harness(t, { progressIntervalMs: 10, historyBatchRevisions: 2 });
  for (let i = 0; i < 5; i++) h.put('a'); // 2..6
  const release = h.history.holdReads();
  const behind = h.open();
  behind.stream.create({ key: b('a'), startRevision: 2, progressNotify: true });
  const full = h.open();
  full.stream.create({ key: b('z'), progressNotify: true });
  full.backedUp = true;
  full.stream.requestProgress(); // takes the one response the sink accepts before it is backed up
  await new Promise((res) => setTimeout(res, 80));
  t.same(behind.responses.filter((x) => !x.created).length, 0, 'nothing for the watch still reading history');
  t.same(full.calls, 2, 'created and the requested progress; no periodic ones queued behind');
  release();
  full.backedUp = false;
  full.stream.resume();
  await h.settle();
  const deadline = Date.now() + 10_000;
  while (!behind.responses.some((x) => !x.created && x.events.length === 0) && Date.now() < deadline) {
    await new Promise((res) => setTimeout(res, 5));
  }
  t.ok(behind.responses.some((x) => !x.created && x.events.length === 0), 'once caught up, it gets notifications again');
});
