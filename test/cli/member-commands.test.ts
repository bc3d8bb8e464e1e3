// keel member list|add|remove|promote and keel alarm list|disarm, end to end: the CLI in this process, the
// real HTTP gateway and client, and the fake member registry and alarm store of
// test/server/fixtures/fake-kv-service.ts. etcdctl's output formats, the gateway JSON, usage errors.

import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { alarmLine, idHex16, memberListLines } from '../../src/cli/etcdctl-simple';
import { renderTable } from '../../src/cli/format';
import { initialClusterOf, memberAddLines, parsePeerUrl } from '../../src/cli/member-commands';
import { createClientServer } from '../../src/server/http-gateway';
import { FakeMember, FakeStore } from '../server/fixtures/fake-kv-service';
import { keel, unusedPort, type CliResult } from './fixtures/helpers';

interface Cluster {
  store: FakeStore;
  member: FakeMember;
  run(args: string[]): Promise<CliResult>;
}

/** A fake member behind the real gateway; its registry holds m1 (id bb, a started voter). */
async function cluster(t: Test): Promise<Cluster> {
  const store = new FakeStore();
  const member = new FakeMember(store, 'm1');
  const server = createClientServer(member);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { store, member, run: (args) => keel([...args, '--endpoints', url]) };
}

const CLUSTER_HEX = '              aa'; // etcdctl's %16x of the fake's cluster id 0xaa

t.test('member list: etcdctl simple lines, -w table, -w json, --consistency', async (t) => {
  const c = await cluster(t);
  c.store.membership.members.push({
    id: '0000000000001000',
    name: '',
    peerUrls: ['http://127.0.0.1:2382'],
    clientUrls: [],
    isLearner: true,
  });
  const simple = await c.run(['member', 'list']);
  t.equal(simple.code, 0);
  t.equal(simple.stderr, '');
  t.equal(
    simple.stdout,
    'bb, started, m1, http://127.0.0.1:2380, http://127.0.0.1:2379, false\n' +
      '1000, unstarted, , http://127.0.0.1:2382, , true\n',
    'ids as %x (no leading zeros), unstarted while the name is empty',
  );
  t.same(c.member.callsOf('memberList'), [{ linearizable: true }], 'linearizable by default');

  await c.run(['member', 'list', '--consistency', 's']);
  t.same(c.member.callsOf('memberList')[1], {}, '--consistency s: the member answers from its own view');

  const table = await c.run(['member', 'list', '-w', 'table']);
  t.equal(table.code, 0);
  t.equal(
    table.stdout,
    '+------+-----------+------+-----------------------+-----------------------+------------+\n' +
      '|  ID  |  STATUS   | NAME |      PEER ADDRS       |     CLIENT ADDRS      | IS LEARNER |\n' +
      '+------+-----------+------+-----------------------+-----------------------+------------+\n' +
      '|  bb  |  started  |  m1  | http://127.0.0.1:2380 | http://127.0.0.1:2379 |   false    |\n' +
      '| 1000 | unstarted |      | http://127.0.0.1:2382 |                       |    true    |\n' +
      '+------+-----------+------+-----------------------+-----------------------+------------+\n',
    "etcdctl's table: every cell centered",
  );

  const json = await c.run(['member', 'list', '-w', 'json']);
  t.equal(
    json.stdout,
    JSON.stringify({
      header: { cluster_id: '170', member_id: '187', revision: '1', raft_term: '2' },
      members: [
        { ID: '187', name: 'm1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'] },
        { ID: '4096', peerURLs: ['http://127.0.0.1:2382'], isLearner: true },
      ],
    }) + '\n',
    'the gateway JSON',
  );
  t.equal((await c.run(['member', 'list', '--json'])).stdout, json.stdout);

  const bad = await c.run(['member', 'list', '--consistency', 'x']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /Invalid values:[\s\S]*consistency/);
  const badFormat = await c.run(['member', 'add', 'n4', '--peer-urls', 'http://127.0.0.1:2386', '-w', 'table']);
  t.equal(badFormat.code, 2, 'only member list has the table format');
  t.match(badFormat.stderr, /Invalid values:[\s\S]*write-out/);
});

t.test('member add: etcdctl lines, the environment of the new member, the keel node line', async (t) => {
  const c = await cluster(t);
  c.store.membership.nextIds.push('8e9e05c52164694d');
  const r = await c.run(['member', 'add', 'n4', '--peer-urls', 'http://127.0.0.1:2386/']);
  t.equal(r.code, 0);
  t.equal(r.stderr, '');
  t.equal(
    r.stdout,
    `Member 8e9e05c52164694d added to cluster ${CLUSTER_HEX}\n` +
      '\n' +
      'ETCD_NAME="n4"\n' +
      'ETCD_INITIAL_CLUSTER="m1=http://127.0.0.1:2380,n4=http://127.0.0.1:2386"\n' +
      'ETCD_INITIAL_ADVERTISE_PEER_URLS="http://127.0.0.1:2386"\n' +
      'ETCD_INITIAL_CLUSTER_STATE="existing"\n' +
      '# start it (fill in <CLIENT-URL> and <DATA-DIR>, a new empty dir): keel node --name n4 ' +
      '--initial-cluster "m1=http://127.0.0.1:2380,n4=http://127.0.0.1:2386" --initial-cluster-state existing ' +
      '--listen-peer-urls http://127.0.0.1:2386 --listen-client-urls <CLIENT-URL> --data-dir <DATA-DIR>\n',
  );
  t.same(c.member.callsOf('memberAdd'), [{ peerUrls: ['http://127.0.0.1:2386'], name: 'n4' }], 'the URL normalized, the name sent');

  const learner = await c.run(['member', 'add', 'n5', '--peer-urls=http://127.0.0.1:2388', '--learner']);
  t.equal(learner.code, 0);
  t.match(learner.stdout, /^Member {13}1000 added to cluster {15}aa\n\nETCD_NAME="n5"\n/, 'the same line for a learner (etcdctl 3.4), %16x');
  t.match(learner.stdout, 'ETCD_INITIAL_CLUSTER="m1=http://127.0.0.1:2380,n4=http://127.0.0.1:2386,n5=http://127.0.0.1:2388"');
  t.same(c.member.callsOf('memberAdd')[1], { peerUrls: ['http://127.0.0.1:2388'], isLearner: true, name: 'n5' });
  t.equal(c.store.membership.members[2].isLearner, true);

  const json = await c.run(['member', 'add', 'n6', '--peer-urls', 'http://127.0.0.1:2390', '-w', 'json']);
  const parsed = JSON.parse(json.stdout) as { member: unknown; members: unknown[] };
  t.same(parsed.member, { ID: '4097', name: 'n6', peerURLs: ['http://127.0.0.1:2390'] }, '-w json: the gateway JSON only');
  t.equal(parsed.members.length, 4);

  const taken = await c.run(['member', 'add', 'n7', '--peer-urls', 'http://127.0.0.1:2380']);
  t.equal(taken.code, 1);
  t.equal(taken.stdout, '');
  t.equal(taken.stderr, 'Error: etcdserver: Peer URLs already exists\n');
});

t.test('member add: usage errors name the problem, and nothing is sent', async (t) => {
  const c = await cluster(t);
  const cases: [string[], RegExp][] = [
    [['member', 'add', '--peer-urls', 'http://127.0.0.1:2386'], /^member name not provided/],
    [['member', 'add', 'n4'], /^member peer urls not provided/],
    [['member', 'add', 'n4', 'http://127.0.0.1:2386'], /^too many arguments, did you mean --peer-urls=http:\/\/127\.0\.0\.1:2386/],
    [['member', 'add', 'n4', '--peer-urls', '127.0.0.1:2386'], /^--peer-urls: "127\.0\.0\.1:2386"/],
    [['member', 'add', 'n4', '--peer-urls', 'https://127.0.0.1:2386'], /must use http:\/\//],
    [['member', 'add', 'n4', '--peer-urls', 'http://127.0.0.1'], /has no port/],
    [['member', 'add', 'n4', '--peer-urls', 'http://127.0.0.1:2386/peer'], /must not have a path/],
    [['member', 'add', 'n4', '--peer-urls', 'http://127.0.0.1:2386?a=b'], /must be just http:\/\/HOST:PORT/],
    [['member', 'add', 'n4', '--peer-urls', 'http://127.0.0.1:2386,http://127.0.0.1:2388'], /exactly one peer URL \(got 2/],
    [['member', 'add', 'n=4', '--peer-urls', 'http://127.0.0.1:2386'], /^member name "n=4" must not contain '=' or ','/],
    [['member', 'add', 'x'.repeat(65), '--peer-urls', 'http://127.0.0.1:2386'], /must be at most 64 characters/],
    [['member', 'add', 'n4', '--peer-urls'], /Not enough arguments following: peer-urls/],
    [['member', 'add', 'n4', '--peer-urls', 'http://127.0.0.1:2386', '--lerner'], /Unknown argument: lerner/],
  ];
  for (const [args, message] of cases) {
    const r = await c.run(args);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, message, args.join(' '));
    t.equal(r.stdout, '');
  }
  t.same(c.member.callsOf('memberAdd'), [], 'no request was sent');
});

t.test('member remove / promote: hex ids in, etcdctl lines out, errors', async (t) => {
  const c = await cluster(t);
  c.store.membership.members.push(
    { id: '8e9e05c52164694d', name: 'n4', peerUrls: ['http://127.0.0.1:2386'], clientUrls: [], isLearner: true },
    { id: '0000000000001000', name: 'n5', peerUrls: ['http://127.0.0.1:2388'], clientUrls: [], isLearner: false },
  );
  const promoted = await c.run(['member', 'promote', '8E9E05C52164694D']);
  t.equal(promoted.code, 0);
  t.equal(promoted.stdout, `Member 8e9e05c52164694d promoted in cluster ${CLUSTER_HEX}\n`);
  t.same(c.member.callsOf('memberPromote'), [{ id: '8e9e05c52164694d' }]);

  const voter = await c.run(['member', 'promote', 'bb']);
  t.equal(voter.code, 1);
  t.equal(voter.stderr, 'Error: etcdserver: can only promote a learner member\n');

  const removed = await c.run(['member', 'remove', '1000']);
  t.equal(removed.code, 0);
  t.equal(removed.stdout, `Member             1000 removed from cluster ${CLUSTER_HEX}\n`, "etcdctl's %16x pads with spaces");
  t.same(c.member.callsOf('memberRemove'), [{ id: '0000000000001000' }]);

  const gone = await c.run(['member', 'remove', '1000']);
  t.equal(gone.code, 1);
  t.equal(gone.stderr, 'Error: etcdserver: member not found\n');

  const json = await c.run(['member', 'remove', '8e9e05c52164694d', '-w', 'json']);
  t.same(JSON.parse(json.stdout), {
    header: { cluster_id: '170', member_id: '187', revision: '1', raft_term: '2' },
    members: [{ ID: '187', name: 'm1', peerURLs: ['http://127.0.0.1:2380'], clientURLs: ['http://127.0.0.1:2379'] }],
  });

  for (const cmd of ['remove', 'promote']) {
    for (const [args, message] of [
      [[], /^member ID is not provided/],
      [['xyz'], /^"xyz" is not a member id \(hexadecimal/],
      [['0'], /^"0" is not a member id/],
      [['18e9e05c52164694d'], /is not a member id/],
    ] as [string[], RegExp][]) {
      const r = await c.run(['member', cmd, ...args]);
      t.equal(r.code, 2, `${cmd} ${args.join(' ')}`);
      t.match(r.stderr, message);
    }
  }
  t.equal(c.member.callsOf('memberRemove').length, 3);
  t.equal(c.member.callsOf('memberPromote').length, 2);
});

t.test('alarm list / disarm', async (t) => {
  const c = await cluster(t);
  const none = await c.run(['alarm', 'list']);
  t.equal(none.code, 0);
  t.equal(none.stdout, '', 'no alarm: nothing printed');
  t.equal((await c.run(['alarm', 'disarm'])).stdout, '');

  c.store.membership.alarms.push(
    { memberId: '8e9e05c52164694d', alarm: 'NOSPACE' },
    { memberId: '00000000000000bb', alarm: 'NOSPACE' },
  );
  const list = await c.run(['alarm', 'list']);
  t.equal(list.code, 0);
  t.equal(
    list.stdout,
    'memberID:10276657743932975437 alarm:NOSPACE \nmemberID:187 alarm:NOSPACE \n',
    "etcdctl's %+v of the AlarmMember (protobuf compact text: a space after each field)",
  );
  const json = await c.run(['alarm', 'list', '-w', 'json']);
  t.same(JSON.parse(json.stdout), {
    header: { cluster_id: '170', member_id: '187', revision: '1', raft_term: '2' },
    alarms: [
      { memberID: '10276657743932975437', alarm: 'NOSPACE' },
      { memberID: '187', alarm: 'NOSPACE' },
    ],
  });

  const disarm = await c.run(['alarm', 'disarm']);
  t.equal(disarm.code, 0);
  t.equal(disarm.stdout, list.stdout, 'each alarm disarmed is printed');
  t.same(
    c.member.callsOf('alarm').slice(-3),
    [
      { action: 'GET' },
      { action: 'DEACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NOSPACE' },
      { action: 'DEACTIVATE', memberId: '00000000000000bb', alarm: 'NOSPACE' },
    ],
    'one DEACTIVATE per alarm listed, as etcdctl',
  );
  t.same(c.store.membership.alarms, []);

  c.store.membership.alarms.push({ memberId: '00000000000000bb', alarm: 'CORRUPT' });
  const dj = await c.run(['alarm', 'disarm', '--json']);
  t.same((JSON.parse(dj.stdout) as { alarms: unknown }).alarms, [{ memberID: '187', alarm: 'CORRUPT' }]);

  const bad = await c.run(['alarm', 'raise']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /Did you mean list\?/);
});

t.test('the member and alarm commands report an unreachable cluster', async (t) => {
  const c = await cluster(t);
  const dead = `http://127.0.0.1:${await unusedPort()}`;
  const r = await keel(['member', 'list', '--endpoints', dead, '--command-timeout', '500']);
  t.equal(r.code, 1);
  t.match(r.stderr, /^Error: .*no member reachable/);
  t.equal(r.stdout, '');
  const a = await keel(['alarm', 'list', '--endpoints', dead]);
  t.equal(a.code, 1);
  t.equal(c.member.calls.length, 0);
});

t.test('formatting helpers', async (t) => {
  t.equal(idHex16('00000000000000aa'), '              aa');
  t.equal(idHex16('8e9e05c52164694d'), '8e9e05c52164694d');
  t.equal(alarmLine({ memberId: '', alarm: 'NOSPACE' }), 'alarm:NOSPACE ', 'zero fields are left out, as protobuf text does');
  t.equal(alarmLine({ memberId: '0000000000000001', alarm: 'NONE' }), 'memberID:1 ');
  t.same(memberListLines([]), []);
  t.same(
    memberListLines([{ id: '00000000000000ab', name: 'n4', peerUrls: ['http://h:4'], clientUrls: [], isLearner: false }]),
    ['ab, unstarted, n4, http://h:4, , false'],
    'named by member add NAME but not started yet (no client URLs): unstarted',
  );
  t.equal(renderTable(['A'], [['x']], 'center'), '+---+\n| A |\n+---+\n| x |\n+---+\n');
  t.equal(parsePeerUrl(' http://LocalHost:2380/ '), 'http://localhost:2380');

  const m = (id: string, name: string, url: string) => ({ id, name, peerUrls: [url], clientUrls: [], isLearner: false });
  const header = { clusterId: '00000000000000aa', memberId: '00000000000000bb', revision: 1, raftTerm: 2 };
  const fresh = m('0000000000000004', '', 'http://h:4');
  const resp = {
    header,
    member: fresh,
    members: [m('0000000000000001', 'n1', 'http://h:1'), m('0000000000000003', '', 'http://h:3'), fresh],
  };
  t.equal(initialClusterOf(resp, 'n4'), 'n1=http://h:1,n4=http://h:4', 'an unnamed (unstarted) member cannot be listed');
  t.equal(initialClusterOf({ ...resp, members: [resp.members[0]] }, 'n4'), 'n1=http://h:1,n4=http://h:4', 'the new one always');
  const lines = memberAddLines({ ...resp, members: [resp.members[0], fresh] }, 'n"$4');
  t.equal(lines[2], 'ETCD_NAME="n\\"$4"', "Go's %q");
  t.match(lines[6], `keel node --name 'n"$4' --initial-cluster "n1=http://h:1,n\\"\\$4=http://h:4"`, 'shell-quoted');
});
