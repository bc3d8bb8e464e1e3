// etcd's Watch service over gRPC: one bidirectional stream carrying many watches, mapped onto one WatchStream
// of the (fake) member; cancel, progress, history, filters, refused creates, backpressure, and the end of
// the call.

import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import {
  Errors,
  GrpcCode,
  type KvService,
  type WatchCreateRequest,
  type WatchSink,
  type WatchStream,
} from '../../src/kv/api';
import type { FakeWatchStream } from '../server/fixtures/fake-kv-service';
import { RecordingObserver, call, startGrpcFake, until, type GrpcFake } from './fixtures/grpc';

const b = (s: string): Buffer => Buffer.from(s);

interface Resp {
  header: { revision: string; cluster_id: string; member_id: string; raft_term: string };
  watch_id: string;
  created: boolean;
  canceled: boolean;
  compact_revision: string;
  cancel_reason: string;
  fragment: boolean;
  events: { type: string; kv: { key: Buffer; value: Buffer; mod_revision: string }; prev_kv: { value: Buffer } | null }[];
}

/** A Watch call with its responses collected. */
class WatchCall {
  readonly responses: Resp[] = [];
  readonly stream: grpc.ClientDuplexStream<object, Resp>;
  error: grpc.ServiceError | undefined;
  ended = false;

  constructor(client: grpc.Client) {
    this.stream = (client as unknown as { Watch(): grpc.ClientDuplexStream<object, Resp> }).Watch();
    this.stream.on('data', (r: Resp) => this.responses.push(r));
    this.stream.on('error', (e: grpc.ServiceError) => (this.error = e));
    this.stream.on('end', () => (this.ended = true));
  }

  create(req: object): void {
    this.stream.write({ create_request: req });
  }

  /** Waits for a response matching `pred` after the first `from` responses. */
  async next(pred: (r: Resp) => boolean, from = 0): Promise<Resp> {
    let found: Resp | undefined;
    await until(() => (found = this.responses.slice(from).find(pred)) !== undefined, 5000, 'a watch response');
    return found!;
  }
}

const eventsOf = (w: WatchCall, id: string): string[] =>
  w.responses
    .filter((r) => r.watch_id === id)
    .flatMap((r) => r.events.map((e) => `${e.type} ${e.kv.key.toString()}=${e.kv.value.toString()}`));

function fakeStream(f: GrpcFake): FakeWatchStream {
  const [s] = f.member.streams;
  return s;
}

t.test('two watches on one stream, then a cancel and a progress request', async (t) => {
  const f = await startGrpcFake(t);
  const kv = f.clients.KV;
  const w = new WatchCall(f.clients.Watch);
  w.create({ key: b('a') });
  w.create({ key: b('b/'), range_end: b('b0'), prev_kv: true });
  const c0 = await w.next((r) => r.created && r.watch_id === '0');
  const c1 = await w.next((r) => r.created && r.watch_id === '1');
  t.equal(w.responses.indexOf(c0), 0, 'created answers in the order of the creates');
  t.equal(w.responses.indexOf(c1), 1);
  t.same(c0.header, { cluster_id: '170', member_id: '187', revision: '1', raft_term: '2' }, 'header fields');
  t.same([c0.canceled, c0.events], [false, []]);
  t.same(f.member.callsOf('watchCreate'), [{ key: b('a') }, { key: b('b/'), rangeEnd: b('b0'), prevKv: true }]);

  await call(kv, 'Put', { key: b('a'), value: b('1') });
  await call(kv, 'Put', { key: b('b/x'), value: b('2') });
  await call(kv, 'Put', { key: b('b/x'), value: b('3') });
  await call(kv, 'DeleteRange', { key: b('b/x') });
  await call(kv, 'Put', { key: b('c'), value: b('elsewhere') });
  await w.next((r) => r.events.some((e) => e.type === 'DELETE'));
  t.same(eventsOf(w, '0'), ['PUT a=1']);
  t.same(eventsOf(w, '1'), ['PUT b/x=2', 'PUT b/x=3', 'DELETE b/x=']);
  const deleted = w.responses.find((r) => r.events.some((e) => e.type === 'DELETE'))!;
  t.equal(deleted.events[0].prev_kv?.value.toString(), '3', 'prev_kv for the watch that asked');
  t.equal(deleted.header.revision, '5', 'the events revision in the header');
  t.equal(w.responses.find((r) => r.watch_id === '0' && r.events.length > 0)!.events[0].prev_kv, null);

  const n = w.responses.length;
  w.stream.write({ cancel_request: { watch_id: '0' } });
  const canceled = await w.next((r) => r.canceled, n);
  t.equal(canceled.watch_id, '0');
  t.same(f.member.calls.filter((c) => c.method === 'watch').length, 1, 'one member stream for the call');

  w.stream.write({ progress_request: {} });
  const progress = await w.next((r) => r.watch_id === '-1', n);
  t.same([progress.events, progress.header.revision, progress.created, progress.canceled], [[], '6', false, false]);

  await call(kv, 'Put', { key: b('a'), value: b('after cancel') });
  await call(kv, 'Put', { key: b('b/y'), value: b('4') });
  await w.next((r) => r.events.some((e) => e.kv.key.toString() === 'b/y'));
  t.same(eventsOf(w, '0'), ['PUT a=1'], 'nothing more for the canceled watch');
  w.stream.write({ cancel_request: { watch_id: '42' } });
  w.stream.write({});
  w.stream.end();
  await call(kv, 'Put', { key: b('b/z'), value: b('5') });
  await w.next((r) => r.events.some((e) => e.kv.key.toString() === 'b/z'));
  t.pass('an unknown id, an empty request and the end of the client side change nothing: the watch goes on');
  w.stream.cancel();
});

t.test('history, filters, chosen ids, fragment and a compacted start revision', async (t) => {
  const f = await startGrpcFake(t);
  const kv = f.clients.KV;
  for (const v of ['1', '2', '3']) await call(kv, 'Put', { key: b('k'), value: b(v) });
  await call(kv, 'DeleteRange', { key: b('k') });
  const w = new WatchCall(f.clients.Watch);
  w.create({ key: b('k'), start_revision: '3', watch_id: '7', filters: ['NOPUT'], fragment: true, progress_notify: true });
  await w.next((r) => r.events.length > 0);
  t.same(eventsOf(w, '7'), ['DELETE k='], 'replayed from revision 3 without the puts');
  t.same(f.member.callsOf('watchCreate')[0], {
    key: b('k'),
    startRevision: 3,
    progressNotify: true,
    filters: ['NOPUT'],
    watchId: 7,
    fragment: true,
  });

  await call(kv, 'Compact', { revision: '4' });
  const n = w.responses.length;
  w.create({ key: b(''), range_end: Buffer.from([0]), start_revision: '2' });
  const canceled = await w.next((r) => r.canceled, n);
  t.equal(canceled.compact_revision, '4');
  t.equal(canceled.cancel_reason, 'etcdserver: mvcc: required revision has been compacted');
  t.same((f.member.callsOf('watchCreate')[1] as WatchCreateRequest).key, Buffer.from([0]), 'an empty key is "\\0"');
  w.stream.cancel();
});

t.test('a create the checks refuse: created and canceled with the reason; the other watches go on', async (t) => {
  const f = await startGrpcFake(t);
  const w = new WatchCall(f.clients.Watch);
  w.create({ key: b('ok') });
  w.create({ key: b('k'), start_revision: '-5' });
  w.create({ key: Buffer.alloc(2 * 1024 * 1024 - 1024) });
  w.create({ key: b('ok2') });
  await until(() => w.responses.length >= 4);
  t.same(
    w.responses.map((r) => [r.watch_id, r.created, r.canceled, r.cancel_reason]),
    [
      ['0', true, false, ''],
      ['-1', true, true, 'etcdserver: invalid start_revision -5 (must be >= 0)'],
      ['-1', true, true, 'etcdserver: request is too large'],
      ['1', true, false, ''],
    ],
    'in the order of the creates',
  );
  t.equal(w.responses[1].header.cluster_id, '170', 'the header of the stream');
  t.equal(f.member.callsOf('watchCreate').length, 2, 'the refused creates did not reach the member');
  await call(f.clients.KV, 'Put', { key: b('ok2'), value: b('v') });
  await w.next((r) => r.events.length > 0);
  t.notOk(w.error);
  w.stream.cancel();
});

t.test('the client cancels the call: the member stream is closed, the call counted as Canceled', async (t) => {
  const observer = new RecordingObserver();
  const f = await startGrpcFake(t, { rpcMetrics: observer });
  const w = new WatchCall(f.clients.Watch);
  w.create({ key: b('a') });
  await w.next((r) => r.created);
  const s = fakeStream(f);
  t.equal(observer.of('etcdserverpb.Watch/Watch')[0].code, undefined, 'open while the stream is');
  w.stream.cancel();
  await until(() => s.closed, 5000, 'the member stream to close');
  t.equal(f.member.streams.size, 0);
  await until(() => observer.of('etcdserverpb.Watch/Watch')[0].code !== undefined);
  t.same(observer.of('etcdserverpb.Watch/Watch'), [{ name: 'etcdserverpb.Watch/Watch', type: 'bidi_stream', code: GrpcCode.Canceled }]);
});

t.test('a member that cannot open a watch stream ends the call with its error', async (t) => {
  const observer = new RecordingObserver();
  const base = await startGrpcFake(t);
  const svc: KvService = Object.create(base.member) as KvService;
  svc.watch = () => {
    throw Errors.starting();
  };
  const f = await startGrpcFake(t, { rpcMetrics: observer }, svc);
  const w = new WatchCall(f.clients.Watch);
  w.create({ key: b('a') });
  await until(() => w.error !== undefined);
  t.equal(w.error!.code, grpc.status.UNAVAILABLE);
  t.equal(w.error!.details, 'etcdserver: member is starting (opening its data dir)');
  t.same(observer.calls.map((c) => c.code), [GrpcCode.Unavailable]);
});

t.test('responses pass through as the member made them: fragments, compact revision, reasons', async (t) => {
  let sink: WatchSink | undefined;
  const base = await startGrpcFake(t);
  const svc: KvService = Object.create(base.member) as KvService;
  const header = { clusterId: '00000000000000aa', memberId: 'ffffffffffffffff', revision: 9, raftTerm: 3 };
  svc.watch = (s: WatchSink): WatchStream => {
    sink = s;
    return {
      create: () => {
        s({ header, watchId: 3, created: true, events: [] });
        const kv = { key: b('k'), value: b('v'), createRevision: 8, modRevision: 9, version: 2, lease: 5 };
        s({ header, watchId: 3, fragment: true, events: [{ type: 'PUT', kv }] });
        s({ header, watchId: 3, events: [{ type: 'PUT', kv: { ...kv, key: b('k2') } }] });
        s({ header, watchId: 3, canceled: true, compactRevision: 6, cancelReason: 'why', events: [] });
      },
      cancel: () => undefined,
      requestProgress: () => undefined,
      resume: () => undefined,
      close: () => undefined,
    };
  };
  const f = await startGrpcFake(t, {}, svc);
  const w = new WatchCall(f.clients.Watch);
  w.create({ key: b('k') });
  await until(() => w.responses.length === 4);
  t.ok(sink);
  t.same(w.responses.map((r) => r.fragment), [false, true, false, false]);
  t.equal(w.responses[0].header.member_id, '18446744073709551615', 'a uint64 id beyond 2^53, exact');
  t.match(w.responses[1].events[0], { type: 'PUT', kv: { key: b('k'), create_revision: '8', version: '2', lease: '5' } });
  t.same(
    [w.responses[3].canceled, w.responses[3].compact_revision, w.responses[3].cancel_reason],
    [true, '6', 'why'],
  );
  w.stream.cancel();
});

t.test('backpressure: a client that does not read holds the member stream; nothing lost or reordered', async (t) => {
  const f = await startGrpcFake(t);
  const w = new WatchCall(f.clients.Watch);
  w.create({ key: b('big/'), range_end: b('big0') });
  await w.next((r) => r.created);
  const s = fakeStream(f);
  w.stream.pause();
  const value = Buffer.alloc(64 * 1024, 'x');
  const N = 60;
  for (let i = 0; i < N; i++) await call(f.clients.KV, 'Put', { key: b(`big/${String(i).padStart(3, '0')}`), value });
  await until(() => s.falseReturns > 0, 5000, 'the sink to say it is backed up');
  t.ok(s.held.length > 0, `the member holds responses (${s.held.length})`);
  w.stream.resume();
  await until(() => w.responses.length === N + 1, 10_000, 'every event');
  t.ok(s.resumes > 0, 'resumed on drain');
  t.same(
    w.responses.slice(1).map((r) => r.events[0].kv.key.toString()),
    Array.from({ length: N }, (_v, i) => `big/${String(i).padStart(3, '0')}`),
    'every event once, in order',
  );
  w.stream.cancel();
});
