// KeelClient's watches against fake members over one in-memory store: delivery per revision, and
// resumption on another member — after a killed member, after a member turns unhealthy, after a transient
// cancellation — from the right revision (the last delivered + 1, a progress notification's + 1, or the
// created header's + 1 for a watch that has seen nothing), with nothing missing and nothing twice. Also
// compaction, cancel(), and close().

import t, { type Test } from 'tap';
import type { Event, WatchCreateRequest } from '../../src/kv/api';
import { KeelClient, type KeelClientOptions } from '../../src/client/stream-client';
import type { ClientWatch } from '../../src/client/kv-client';
import { FakeStore, sleep, startFakeCluster, type RunningFake } from '../server/fixtures/fake-kv-service';

function client(t: Test, endpoints: string[], opts: Partial<KeelClientOptions> = {}): KeelClient {
  const c = new KeelClient({ endpoints, requestTimeoutMs: 2000, dialTimeoutMs: 500, healthCheckIntervalMs: 100, ...opts });
  t.teardown(() => c.close());
  return c;
}

interface Delivery {
  revision: number;
  events: Event[];
}

function recorder(): { got: Delivery[]; progress: number[]; handlers: { onEvents: (e: Event[], r: number) => void; onProgress: (r: number) => void } } {
  const got: Delivery[] = [];
  const progress: number[] = [];
  return {
    got,
    progress,
    handlers: {
      onEvents: (events, revision) => got.push({ revision, events }),
      onProgress: (revision) => progress.push(revision),
    },
  };
}

const put = (store: FakeStore, k: string, v = 'v'): number => store.write([{ put: { key: Buffer.from(k), value: Buffer.from(v) } }]).revision;

async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await sleep(10);
  return cond();
}

const creates = (f: RunningFake): WatchCreateRequest[] => f.member.callsOf('watchCreate') as WatchCreateRequest[];
const revisions = (got: Delivery[]): number[] => got.map((d) => d.revision);
const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_v, i) => from + i);

t.test('events arrive per revision, in order, with prevKv when asked', async (t) => {
  const { store, endpoints } = await startFakeCluster(t, 1);
  const c = client(t, endpoints);
  const r = recorder();
  const w = c.watch('p/', { prefix: true, prevKv: true }, r.handlers);
  await w.created;
  put(store, 'p/a', '1');
  const two = store.write([{ put: { key: Buffer.from('p/b'), value: Buffer.from('2') } }, { put: { key: Buffer.from('p/a'), value: Buffer.from('3') } }]).revision;
  put(store, 'other', 'x');
  store.write([{ del: { key: Buffer.from('p/b') } }]);
  t.ok(await until(() => r.got.length === 3));
  t.same(revisions(r.got), [two - 1, two, two + 2]);
  t.same(r.got[1].events.map((e) => `${e.type} ${e.kv.key.toString()} ${e.kv.value.toString()}`), ['PUT p/b 2', 'PUT p/a 3'], 'both puts of the txn in one call');
  t.equal(r.got[1].events[1].prevKv?.value.toString(), '1', 'prevKv');
  t.equal(r.got[2].events[0].type, 'DELETE');
  t.equal(w.lastRevision, two + 2);
});

t.test('a watch resumes on another member after its member is killed: no gap, no duplicate', async (t) => {
  const { store, fakes, endpoints } = await startFakeCluster(t, 3);
  const c = client(t, endpoints);
  const r = recorder();
  const first = put(store, 'w/start');
  const w = c.watch('w/', { prefix: true, startRevision: first }, r.handlers);
  await w.created;
  let i = 0;
  const writer = setInterval(() => {
    for (let k = 0; k < 3; k++) put(store, `w/${i++ % 7}`);
  }, 2);
  await until(() => r.got.length > 50);
  await fakes[0].kill();
  const killedAt = store.revision;
  await until(() => store.revision > killedAt + 200);
  clearInterval(writer);
  const last = store.revision;
  t.ok(await until(() => w.lastRevision === last), `caught up to ${last}`);
  t.same(revisions(r.got), range(first, last), 'every revision once, in order');
  const moved = [...creates(fakes[1]), ...creates(fakes[2])];
  t.equal(moved.length, 1, 're-created once');
  t.ok(moved[0].startRevision! > first && moved[0].startRevision! <= killedAt + 1, `from the last delivered + 1 (${moved[0].startRevision})`);
});

t.test('events a new member sends again are dropped', async (t) => {
  const { store, fakes, endpoints } = await startFakeCluster(t, 2);
  fakes[1].member.replayExtra = 5; // re-sends five revisions before the one asked for
  const c = client(t, endpoints);
  const r = recorder();
  const w = c.watch('d/', { prefix: true }, r.handlers);
  await w.created;
  const from = put(store, 'd/a');
  for (let k = 0; k < 9; k++) put(store, `d/${k}`);
  t.ok(await until(() => w.lastRevision === from + 9));
  await fakes[0].kill();
  await until(() => creates(fakes[1]).length === 1);
  for (let k = 0; k < 5; k++) put(store, `d/x${k}`);
  t.ok(await until(() => w.lastRevision === from + 14));
  t.equal(creates(fakes[1])[0].startRevision, from + 10);
  t.same(revisions(r.got), range(from, from + 14), 'the re-sent revisions were not delivered twice');
});

t.test('a watch that has seen nothing resumes from the created revision + 1', async (t) => {
  const { store, fakes, endpoints } = await startFakeCluster(t, 2);
  put(store, 'x');
  const c = client(t, endpoints);
  const r = recorder();
  const w = c.watch('n/', { prefix: true }, r.handlers);
  await w.created;
  const createdAt = store.revision;
  await fakes[0].kill();
  // Written while the watch has no member: it must still be delivered (no gap)...
  const missed = put(store, 'n/while-away');
  t.ok(await until(() => r.got.length === 1));
  t.equal(creates(fakes[1])[0].startRevision, createdAt + 1);
  t.same(revisions(r.got), [missed]);
  // ...and the revision current at creation, before the watch existed, is not.
  t.equal(w.lastRevision, missed);
});

t.test('a progress notification moves the resume point', async (t) => {
  const { store, fakes, endpoints } = await startFakeCluster(t, 2);
  const c = client(t, endpoints);
  const r = recorder();
  const w = c.watch('q/', { prefix: true, progressNotify: true }, r.handlers);
  await w.created;
  put(store, 'elsewhere/1');
  const rev = put(store, 'elsewhere/2');
  fakes[0].member.sendProgress();
  t.ok(await until(() => r.progress.length === 1));
  t.same(r.progress, [rev]);
  t.equal(w.lastRevision, rev, 'a progress notification counts as delivered');
  await fakes[0].kill();
  t.ok(await until(() => creates(fakes[1]).length === 1));
  t.equal(creates(fakes[1])[0].startRevision, rev + 1);
  t.equal(creates(fakes[1])[0].progressNotify, true, 'the options go along');
  t.equal(r.got.length, 0);
});

t.test('a watch leaves a member that turns unhealthy', async (t) => {
  const { store, fakes, endpoints } = await startFakeCluster(t, 2);
  const c = client(t, endpoints);
  const r = recorder();
  const w = c.watch('h/', { prefix: true }, r.handlers);
  await w.created;
  const a = put(store, 'h/1');
  t.ok(await until(() => w.lastRevision === a));
  fakes[0].member.healthy = false;
  t.ok(await until(() => creates(fakes[1]).length === 1), 're-created on the healthy member');
  t.equal(creates(fakes[1])[0].startRevision, a + 1);
  t.ok(await until(() => [...fakes[0].member.streams].every((s) => s.watchers.size === 0)), 'and canceled on the unhealthy one');
  const b = put(store, 'h/2');
  t.ok(await until(() => w.lastRevision === b));
  await sleep(50);
  t.same(revisions(r.got), [a, b]);
});

t.test('a transient cancellation moves the watch; another reason ends it', async (t) => {
  const { store, fakes, endpoints } = await startFakeCluster(t, 2);
  const c = client(t, endpoints);
  const r = recorder();
  const w = c.watch('c/', { prefix: true }, r.handlers);
  await w.created;
  const a = put(store, 'c/1');
  t.ok(await until(() => w.lastRevision === a));
  fakes[0].member.cancelAll('etcdserver: no leader');
  const b = put(store, 'c/2');
  t.ok(await until(() => w.lastRevision === b), 'still delivering');
  t.same(revisions(r.got), [a, b]);
  t.equal([...creates(fakes[0]), ...creates(fakes[1])].length, 2, 're-created once');

  for (const f of fakes) f.member.cancelAll('etcdserver: permission denied');
  const ended = await Promise.race([w.done, sleep(2000).then(() => 'timeout' as const)]);
  t.match(ended, { message: 'etcdserver: permission denied' });
});

t.test('a watch from a compacted revision ends with the compact revision', async (t) => {
  const { store, endpoints } = await startFakeCluster(t, 1);
  for (let k = 0; k < 5; k++) put(store, `k${k}`);
  store.compact(4);
  const c = client(t, endpoints);
  const w = c.watch('k', { prefix: true, startRevision: 2 }, { onEvents: () => undefined });
  const ended = await Promise.race([w.done, sleep(2000).then(() => 'timeout' as const)]);
  t.match(ended, { message: 'etcdserver: mvcc: required revision has been compacted', compactRevision: 4 });
  // created resolves: the member did create it before canceling it (as etcd does).
  await t.resolves(w.created);
});

t.test('a watch refused at creation rejects created and ends', async (t) => {
  const { endpoints } = await startFakeCluster(t, 1);
  const c = client(t, endpoints);
  const w = c.watch('z', { rangeEnd: 'a' }, { onEvents: () => undefined });
  await t.rejects(w.created, { message: 'mvcc: watcher range is empty' });
  t.match(await w.done, { message: 'mvcc: watcher range is empty' });
});

t.test('cancel() stops the deliveries; close() ends every watch', async (t) => {
  const { store, fakes, endpoints } = await startFakeCluster(t, 1);
  const c = client(t, endpoints);
  const r = recorder();
  const w = c.watch('s/', { prefix: true }, r.handlers);
  await w.created;
  const a = put(store, 's/1');
  t.ok(await until(() => w.lastRevision === a));
  await w.cancel();
  t.equal(await w.done, undefined);
  t.equal([...fakes[0].member.streams].reduce((n, s) => n + s.watchers.size, 0), 0, 'canceled on the member');
  put(store, 's/2');
  await sleep(50);
  t.same(revisions(r.got), [a]);

  const ws: ClientWatch[] = [c.watch('s/', { prefix: true }, r.handlers), c.watch('t', {}, r.handlers)];
  await Promise.all(ws.map((x) => x.created));
  await c.close();
  t.same(await Promise.all(ws.map((x) => x.done)), [undefined, undefined]);
});
