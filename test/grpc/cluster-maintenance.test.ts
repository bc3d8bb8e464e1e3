// etcd's Cluster, Maintenance and Auth services over gRPC against a fake member: member ids as decimal
// uint64 both ways, etcd's membership errors, alarms, status, hashes, defragment, move-leader, the snapshot
// stream (reassembled equals the member's backup), MemberUpdate and Auth answered Unimplemented.

import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { GrpcCode } from '../../src/kv/api';
import { etcdServices } from '../../src/server/grpc/proto';
import { AUTH_UNSUPPORTED, MEMBER_UPDATE_UNSUPPORTED, SNAPSHOT_CHUNK_BYTES } from '../../src/server/grpc/server';
import { unavailable } from '../server/fixtures/fake-kv-service';
import { RecordingObserver, call, callError, startGrpcFake } from './fixtures/grpc';

interface MemberPb {
  ID: string;
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  isLearner: boolean;
}

t.test('MemberList, MemberAdd, MemberPromote, MemberRemove', async (t) => {
  const f = await startGrpcFake(t);
  const cluster = f.clients.Cluster;
  const list = await call<{ members: MemberPb[]; header: { cluster_id: string } }>(cluster, 'MemberList', {});
  t.equal(list.header.cluster_id, '170');
  t.same(list.members, [
    { ID: '187', name: 'm1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'], isLearner: false },
  ]);
  t.same(f.member.callsOf('memberList'), [{}], "etcd 3.4's MemberList: the member's own registry");

  const added = await call<{ member: MemberPb; members: MemberPb[] }>(cluster, 'MemberAdd', {
    peerURLs: ['http://127.0.0.1:2390'],
    isLearner: true,
  });
  t.same(added.member, { ID: '4096', name: '', peerURLs: ['http://127.0.0.1:2390'], clientURLs: [], isLearner: true });
  t.equal(added.members.length, 2);
  t.same(f.member.callsOf('memberAdd'), [{ peerUrls: ['http://127.0.0.1:2390'], isLearner: true }]);

  const promoted = await call<{ members: MemberPb[] }>(cluster, 'MemberPromote', { ID: '4096' });
  t.equal(promoted.members.find((m) => m.ID === '4096')?.isLearner, false);
  t.same(f.member.callsOf('memberPromote'), [{ id: '0000000000001000' }], 'the id as 16 hex digits');
  const removed = await call<{ members: MemberPb[] }>(cluster, 'MemberRemove', { ID: '4096' });
  t.same(removed.members.map((m) => m.ID), ['187']);
});

t.test('membership errors: etcd messages and codes', async (t) => {
  const f = await startGrpcFake(t);
  const cluster = f.clients.Cluster;
  const cases: [string, string, object, number, string | RegExp][] = [
    ['unknown member', 'MemberRemove', { ID: '4660' }, grpc.status.NOT_FOUND, 'etcdserver: member not found'],
    [
      'an id beyond 2^63',
      'MemberRemove',
      { ID: '18446744073709551615' },
      grpc.status.NOT_FOUND,
      'etcdserver: member not found',
    ],
    ['id 0', 'MemberRemove', { ID: '0' }, grpc.status.INVALID_ARGUMENT, /invalid member ID \(required/],
    ['promote a voter', 'MemberPromote', { ID: '187' }, grpc.status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'],
    ['bad peer URL', 'MemberAdd', { peerURLs: ['not a url'] }, grpc.status.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'],
    ['no peer URL', 'MemberAdd', {}, grpc.status.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'],
    [
      'peer URL in use',
      'MemberAdd',
      { peerURLs: ['http://127.0.0.1:2380'] },
      grpc.status.FAILED_PRECONDITION,
      'etcdserver: Peer URLs already exists',
    ],
    ['member update', 'MemberUpdate', { ID: '187', peerURLs: ['http://127.0.0.1:2400'] }, grpc.status.UNIMPLEMENTED, MEMBER_UPDATE_UNSUPPORTED],
  ];
  for (const [what, method, req, code, message] of cases) {
    const err = await callError(cluster, method, req);
    t.equal(err.code, code, `${what}: code`);
    if (typeof message === 'string') t.equal(err.details, message, `${what}: message`);
    else t.match(err.details, message, `${what}: message`);
  }
  t.same(f.member.callsOf('memberRemove'), [{ id: '0000000000001234' }, { id: 'ffffffffffffffff' }]);
});

t.test('Alarm: activate, get, deactivate; member ids in decimal', async (t) => {
  const f = await startGrpcFake(t);
  const m = f.clients.Maintenance;
  const on = await call<{ alarms: unknown[] }>(m, 'Alarm', { action: 'ACTIVATE', memberID: '187', alarm: 'NOSPACE' });
  t.same(on.alarms, [{ memberID: '187', alarm: 'NOSPACE' }]);
  t.same(f.member.callsOf('alarm')[0], { action: 'ACTIVATE', memberId: '00000000000000bb', alarm: 'NOSPACE' });
  const get = await call<{ alarms: unknown[] }>(m, 'Alarm', {});
  t.same(get.alarms, [{ memberID: '187', alarm: 'NOSPACE' }]);
  t.same(f.member.callsOf('alarm')[1], { action: 'GET' }, 'GET, every member, every type: defaults left out');
  const off = await call<{ alarms: unknown[] }>(m, 'Alarm', { action: 'DEACTIVATE', alarm: 'NOSPACE' });
  t.same(off.alarms, [{ memberID: '187', alarm: 'NOSPACE' }]);
  t.same((await call<{ alarms: unknown[] }>(m, 'Alarm', { action: 'GET' })).alarms, []);
  const bad = await callError(m, 'Alarm', { action: 'ACTIVATE', memberID: '187' });
  t.equal(bad.code, grpc.status.INVALID_ARGUMENT);
});

t.test('Status, Defragment, Hash, HashKV, MoveLeader', async (t) => {
  const f = await startGrpcFake(t);
  const m = f.clients.Maintenance;
  const status = await call(m, 'Status', {});
  t.same(status, {
    header: { cluster_id: '170', member_id: '187', revision: '1', raft_term: '2' },
    version: '3.4.0-keel',
    dbSize: '1',
    leader: '187',
    raftIndex: '10',
    raftTerm: '2',
    raftAppliedIndex: '10',
    errors: [],
    dbSizeInUse: '1',
    isLearner: false,
  });
  f.member.healthy = false;
  t.equal((await call<{ leader: string }>(m, 'Status', {})).leader, '0', 'no leader: 0');

  t.same(await call(m, 'Defragment', {}), { header: { cluster_id: '170', member_id: '187', revision: '1', raft_term: '2' } });
  t.equal(f.member.callsOf('defragment').length, 1);
  t.same((await call<{ hash: number }>(m, 'Hash', {})).hash, 1);

  await call(f.clients.KV, 'Put', { key: Buffer.from('k'), value: Buffer.from('v') });
  const hkv = await call<{ hash: number; compact_revision: string }>(m, 'HashKV', { revision: '2' });
  t.equal(hkv.hash, (2 * 2654435761) >>> 0, 'a uint32');
  t.equal(hkv.compact_revision, '0');
  t.same(f.member.callsOf('hashKV'), [{ revision: 2 }]);
  const future = await callError(m, 'HashKV', { revision: '9' });
  t.same([future.code, future.details], [grpc.status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision']);
  t.equal((await callError(m, 'HashKV', { revision: '-1' })).code, grpc.status.INVALID_ARGUMENT);

  await call(m, 'MoveLeader', { targetID: '187' });
  t.same(f.member.callsOf('moveLeader'), [{ targetId: '00000000000000bb' }]);
  t.equal((await callError(m, 'MoveLeader', { targetID: '0' })).code, grpc.status.INVALID_ARGUMENT);
  f.member.hook = () => {
    throw unavailable();
  };
  const noLeader = await callError(m, 'MoveLeader', { targetID: '187' });
  t.same([noLeader.code, noLeader.details], [grpc.status.UNAVAILABLE, 'etcdserver: no leader']);
});

interface SnapshotChunk {
  header: { revision: string };
  remaining_bytes: string;
  blob: Buffer;
}

function snapshot(client: grpc.Client): Promise<{ chunks: SnapshotChunk[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const chunks: SnapshotChunk[] = [];
    const s = (client as unknown as { Snapshot(req: object): grpc.ClientReadableStream<SnapshotChunk> }).Snapshot({});
    s.on('data', (c: SnapshotChunk) => chunks.push(c));
    s.on('error', (error: grpc.ServiceError) => resolve({ chunks, error }));
    s.on('end', () => resolve({ chunks }));
  });
}

t.test('Snapshot: 32 KiB chunks with the bytes still to come; reassembled equals the backup', async (t) => {
  const observer = new RecordingObserver();
  const f = await startGrpcFake(t, { rpcMetrics: observer });
  const data = f.member.snapshotData;
  const { chunks, error } = await snapshot(f.clients.Maintenance);
  t.equal(error, undefined);
  t.equal(chunks.length, Math.ceil(data.length / SNAPSHOT_CHUNK_BYTES));
  t.ok(chunks.slice(0, -1).every((c) => c.blob.length === SNAPSHOT_CHUNK_BYTES));
  t.same(
    chunks.map((c) => c.remaining_bytes),
    chunks.map((_c, i) => String(Math.max(0, data.length - (i + 1) * SNAPSHOT_CHUNK_BYTES))),
  );
  t.ok(chunks.every((c) => c.header.revision === '1'), 'every chunk carries the header');
  const whole = Buffer.concat(chunks.map((c) => c.blob));
  t.equal(createHash('sha256').update(whole).digest('hex'), createHash('sha256').update(data).digest('hex'));
  t.same(observer.calls.map((c) => [c.name, c.type, c.code]), [['etcdserverpb.Maintenance/Snapshot', 'server_stream', GrpcCode.OK]]);

  // A large backup goes out with backpressure and arrives whole.
  f.member.snapshotData = Buffer.alloc(5 * 1024 * 1024 + 7, 'k');
  const big = await snapshot(f.clients.Maintenance);
  t.equal(Buffer.concat(big.chunks.map((c) => c.blob)).equals(f.member.snapshotData), true);

  f.member.snapshotData = Buffer.alloc(0);
  const empty = await snapshot(f.clients.Maintenance);
  t.same(empty.chunks.map((c) => [c.remaining_bytes, c.blob.length]), [['0', 0]], 'an empty backup: one empty chunk');

  f.member.hook = () => {
    throw unavailable();
  };
  const failed = await snapshot(f.clients.Maintenance);
  t.same([failed.error?.code, failed.error?.details, failed.chunks.length], [grpc.status.UNAVAILABLE, 'etcdserver: no leader', 0]);
});

t.test('Auth: every method Unimplemented, counted under its name', async (t) => {
  const observer = new RecordingObserver();
  const f = await startGrpcFake(t, { rpcMetrics: observer });
  const methods = Object.keys(etcdServices().Auth);
  t.equal(methods.length, 16, "etcd 3.4's Auth service");
  for (const method of methods) {
    const err = await callError(f.clients.Auth, method, {});
    t.same([err.code, err.details], [grpc.status.UNIMPLEMENTED, AUTH_UNSUPPORTED], method);
  }
  t.same(
    observer.calls.map((c) => [c.name, c.code]),
    methods.map((m) => [`etcdserverpb.Auth/${m}`, GrpcCode.Unimplemented]),
  );
});

t.test('every unary method of every service is served (a missing one: grpc-js says it does not implement it)', async (t) => {
  const f = await startGrpcFake(t);
  f.member.hook = () => {
    throw unavailable();
  };
  for (const [name, def] of Object.entries(etcdServices())) {
    for (const [method, m] of Object.entries(def) as [string, grpc.MethodDefinition<object, object>][]) {
      if (m.requestStream || m.responseStream) continue;
      const client = f.clients[name as keyof typeof f.clients];
      let details = 'OK';
      try {
        await call(client, method, {});
      } catch (err) {
        details = (err as grpc.ServiceError).details;
      }
      t.notMatch(details, /does not implement/, `${name}.${method}`);
    }
  }
});
