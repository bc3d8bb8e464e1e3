// The member side of membership apart from Raft: etcd's strict reconfiguration check, new member ids, the
// peer routes (cluster info, forwarded changes, refusals carried back as etcd errors), and what a joining
// member does when the cluster does not know it or cannot be reached.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { Errors, GrpcCode, KvError } from '../../src/kv/api';
import {
  NOT_LEADER,
  changeNotMade,
  discoverJoin,
  fetchClusterInfo,
  forwardChange,
  newMemberId,
  peerRequestHandler,
  planChange,
  readyToAddVoter,
  readyToRemoveVoter,
  type ClusterInfo,
} from '../../src/server/membership';
import { DEFAULT_MEMBER_OPTIONS, type MemberOptions } from '../../src/server/options';
import { freePorts } from '../process/fixtures/proc-cluster';

t.test('strict reconfiguration check (etcd isReadyToAdd/RemoveVotingMember)', async (t) => {
  t.ok(readyToAddVoter(3, 3), '3 up of 3: a 4th voter leaves 3 >= quorum 3');
  t.notOk(readyToAddVoter(3, 2), '2 up of 3: a 4th voter would need 3 up');
  t.ok(readyToAddVoter(1, 1), 'a one-member cluster may always grow');
  t.ok(readyToAddVoter(5, 4));
  t.notOk(readyToAddVoter(5, 3));
  t.ok(readyToRemoveVoter(3, 2), 'removing one of 3 with the other two up');
  t.notOk(readyToRemoveVoter(5, 2), '2 up of the 4 left is no quorum');
  t.ok(readyToRemoveVoter(2, 1));
});

t.test('new member ids: 16 hex digits, never one taken', async (t) => {
  const taken = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const id = newMemberId('http://127.0.0.1:1', 'abcd', (x) => taken.has(x));
    t.match(id, /^[0-9a-f]{16}$/);
    t.notOk(taken.has(id));
    taken.add(id);
  }
});

async function serve(t: Test, handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const info: ClusterInfo = {
  clusterId: '00000000000000aa',
  members: [{ id: '00000000000000b1', name: 'n1', peerUrls: ['http://127.0.0.1:7001'], clientUrls: [], isLearner: false }],
  founding: [{ name: 'n1', id: '00000000000000b1', peerUrl: 'http://127.0.0.1:7001' }],
};

t.test('peer routes: cluster info, forwarded changes and their refusals', async (t) => {
  const seen: [string, unknown][] = [];
  const url = await serve(
    t,
    peerRequestHandler({
      cluster: () => info,
      change: async (op, body) => {
        seen.push([op, body]);
        if (op === 'remove') throw Errors.memberNotFound();
        if (op === 'promote') throw new KvError(GrpcCode.Unavailable, NOT_LEADER);
        return { ok: op };
      },
    }),
  );
  t.same((await fetchClusterInfo(['http://127.0.0.1:1', url], 1000))?.info, info, 'the first that answers');
  t.same(await forwardChange(url, 'add', { peerUrls: ['http://x:1'] }, 1000), { ok: 'add' });
  await t.rejects(forwardChange(url, 'remove', { id: '1' }, 1000), { message: 'etcdserver: member not found', code: GrpcCode.NotFound });
  const notLeader = await forwardChange(url, 'promote', { id: '1' }, 1000).catch((e: unknown) => e);
  t.ok(changeNotMade(notLeader), 'not leader: may be asked elsewhere');
  const [closed] = await freePorts(1);
  const refused = await forwardChange(`http://127.0.0.1:${closed}`, 'add', {}, 1000).catch((e: unknown) => e);
  t.ok(changeNotMade(refused), 'connection refused: nothing was sent');
  t.notOk(changeNotMade(Errors.timeout()), 'a timeout is not retried (the change may still be made)');
  t.same(seen.map((s) => s[0]), ['add', 'remove', 'promote']);
  const bad = await fetch(`${url}/keel/v1/members/add`, { method: 'POST', body: '{' });
  t.equal(bad.status, 400);
  t.equal((await fetch(`${url}/keel/v1/members/other`, { method: 'POST', body: '{}' })).status, 404);
  t.equal((await fetch(`${url}/raft/stream`)).status, 404);
});

function joinerOptions(peer: string, others: string[]): MemberOptions {
  return {
    ...DEFAULT_MEMBER_OPTIONS,
    name: 'n9',
    dataDir: '/nonexistent',
    listenClientUrl: 'http://127.0.0.1:1',
    listenPeerUrl: peer,
    initialCluster: [...others.map((u, i) => ({ name: `o${i}`, peerUrl: u })), { name: 'n9', peerUrl: peer }],
    initialClusterState: 'existing',
  };
}

t.test('joining: found by peer URL, or a clear refusal', async (t) => {
  const url = await serve(t, peerRequestHandler({ cluster: () => info, change: async () => ({}) }));
  const joined = await discoverJoin(joinerOptions('http://127.0.0.1:7001', [url]), 1, 0);
  t.same(joined.identity, { name: 'n9', memberId: '00000000000000b1', clusterId: '00000000000000aa', initialCluster: info.founding, joined: true });
  await t.rejects(discoverJoin(joinerOptions('http://127.0.0.1:7002', [url]), 1, 0), {
    message: /has no member with peer URL http:\/\/127.0.0.1:7002; add it first: keel member add n9 --peer-urls/,
  });
  const [dead] = await freePorts(1);
  await t.rejects(discoverJoin(joinerOptions('http://127.0.0.1:7002', [`http://127.0.0.1:${dead}`]), 2, 10), {
    message: /no member of the cluster answered/,
  });
});

t.test('the leader\'s checks of a change (planChange), with etcd\'s errors', async (t) => {
  const members = [
    { id: '000000000000000a', name: 'a', peerUrls: ['http://127.0.0.1:7001'], clientUrls: [], isLearner: false },
    { id: '000000000000000b', name: 'b', peerUrls: ['http://127.0.0.1:7002'], clientUrls: [], isLearner: false },
    { id: '000000000000000c', name: 'c', peerUrls: ['http://127.0.0.1:7003'], clientUrls: [], isLearner: false },
    { id: '000000000000000d', name: 'd', peerUrls: ['http://127.0.0.1:7004'], clientUrls: [], isLearner: true },
  ];
  const up = new Set(['000000000000000a', '000000000000000b', '000000000000000c', '000000000000000d']);
  const ctx = {
    members,
    confState: { voters: ['000000000000000a', '000000000000000b', '000000000000000c'], learners: ['000000000000000d'], removed: ['00000000000000ee'] },
    clusterId: '00000000000000aa',
    isActive: (id: string) => up.has(id),
    isLearnerReady: (id: string) => id !== '000000000000000d',
  };
  const msg = (r: ReturnType<typeof planChange>): string => ('refused' in r ? r.refused : r.type);
  t.equal(msg(planChange('add', { peerUrls: ['http://127.0.0.1:7005'] }, ctx)), 'addVoter');
  const learner = planChange('add', { peerUrls: ['http://127.0.0.1:7005'], isLearner: true, name: 'e' }, ctx);
  t.ok(!('refused' in learner) && learner.added?.isLearner && learner.added.name === 'e' && learner.context !== undefined);
  t.equal(msg(planChange('add', { peerUrls: ['http://127.0.0.1:7002'] }, ctx)), 'etcdserver: Peer URLs already exists');
  t.equal(msg(planChange('add', { peerUrls: ['ftp://x'] }, ctx)), 'etcdserver: given member URLs are invalid');
  t.equal(msg(planChange('add', { peerUrls: ['http://127.0.0.1:1', 'http://127.0.0.1:2'] }, ctx)), 'etcdserver: given member URLs are invalid');
  t.equal(msg(planChange('promote', { id: '000000000000000d' }, ctx)), 'etcdserver: can only promote a learner member which is in sync with leader');
  t.equal(msg(planChange('promote', { id: '000000000000000a' }, ctx)), 'etcdserver: can only promote a learner member');
  t.equal(msg(planChange('remove', { id: '00000000000000ff' }, ctx)), 'etcdserver: member not found');
  t.equal(msg(planChange('remove', { id: '000000000000000d' }, ctx)), 'removeNode', 'a learner any time');
  up.delete('000000000000000b');
  t.equal(msg(planChange('add', { peerUrls: ['http://127.0.0.1:7005'] }, ctx)), 'etcdserver: re-configuration failed due to not enough started members', 'a voter needs 3 of 4 up');
  t.equal(msg(planChange('add', { peerUrls: ['http://127.0.0.1:7005'], isLearner: true }, ctx)), 'addLearner', 'a learner needs no quorum');
  t.equal(msg(planChange('remove', { id: '000000000000000b' }, ctx)), 'removeNode', 'removing the one that is down leaves 2 of 2');
  t.equal(
    msg(planChange('remove', { id: '000000000000000c' }, ctx)),
    'etcdserver: re-configuration failed due to not enough started members',
    'removing one that is up would leave 1 of 2 up: no quorum',
  );
});
