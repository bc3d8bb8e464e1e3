// keel endpoint status / health against in-memory members behind the real gateway, and a dead endpoint.

import t from 'tap';
import { humanBytes, renderTable } from '../../src/cli/format';
import { fakeMember, keel, MemoryKv, unusedPort } from './fixtures/helpers';

const LEADER = '00000000000000ff';
const FOLLOWER = '00000000000000fe';

t.test('endpoint status: a row per endpoint; an unreachable one is a row with its error, exit 1', async (t) => {
  const a = await fakeMember(new MemoryKv(LEADER, 'n1', LEADER));
  const b = await fakeMember(new MemoryKv(FOLLOWER, 'n2', LEADER));
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const ok = await keel(['endpoint', 'status', '--endpoints', `${a.url},${b.url}`]);
  t.equal(ok.code, 0);
  t.equal(ok.stderr, '');
  const lines = ok.stdout.trimEnd().split('\n');
  t.equal(lines.length, 6, 'rule, header, rule, 2 rows, rule');
  t.match(
    lines[1],
    /ENDPOINT .*\| +ID +\| NAME \| IS LEADER \| IS LEARNER \| TERM \| RAFT INDEX \| APPLIED \| SNAPSHOT INDEX \| FIRST INDEX \| DB SIZE \| ERRORS/,
  );
  const cells = (line: string): string[] =>
    line
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
  t.same(cells(lines[3]), [a.url, LEADER, 'n1', 'true', 'false', '3', '42', '41', '40', '35', '25 kB', '']);
  t.same(cells(lines[4]), [b.url, FOLLOWER, 'n2', 'false', 'false', '3', '42', '41', '40', '35', '25 kB', '']);

  const dead = `http://127.0.0.1:${await unusedPort()}`;
  const bad = await keel(['endpoint', 'status', '--endpoints', `${a.url},${dead}`]);
  t.equal(bad.code, 1);
  const badLines = bad.stdout.trimEnd().split('\n');
  t.equal(cells(badLines[4])[0], dead);
  t.match(cells(badLines[4])[11], /no member reachable at .*ECONNREFUSED/);
  t.match(bad.stderr, `Failed to get the status of endpoint ${dead}`);
});

t.test('endpoint status --json', async (t) => {
  const a = await fakeMember(new MemoryKv(LEADER, 'n1', LEADER));
  t.teardown(() => a.close());
  const dead = `http://127.0.0.1:${await unusedPort()}`;
  const r = await keel(['endpoint', 'status', '--json', '--endpoints', `${a.url},${dead}`]);
  t.equal(r.code, 1);
  const json = JSON.parse(r.stdout) as { Endpoint: string; Status?: Record<string, unknown>; Error?: string }[];
  t.equal(json.length, 2);
  t.same(json[0], {
    Endpoint: a.url,
    Status: {
      header: { cluster_id: '170', member_id: '255', revision: '1', raft_term: '3' },
      version: '3.4.0-keel',
      dbSize: '24576',
      leader: '255',
      raftIndex: '42',
      raftTerm: '3',
      raftAppliedIndex: '41',
      snapshotIndex: '40',
      firstIndex: '35',
      name: 'n1',
    },
  });
  t.equal(json[1].Endpoint, dead);
  t.match(json[1].Error, /ECONNREFUSED/);
});

t.test('endpoint health: a line per endpoint, exit 1 if any is unhealthy', async (t) => {
  const a = await fakeMember(new MemoryKv(LEADER, 'n1', LEADER));
  const b = await fakeMember(new MemoryKv(FOLLOWER, 'n2', LEADER));
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const ok = await keel(['endpoint', 'health', '--endpoints', `${a.url},${b.url}`]);
  t.equal(ok.code, 0);
  t.match(ok.stdout, new RegExp(`^${a.url} is healthy: took = [\\d.]+ms\n${b.url} is healthy: took = [\\d.]+ms\n$`));

  b.kv.health_ = { health: false, reason: 'RAFT NO LEADER' };
  const dead = `http://127.0.0.1:${await unusedPort()}`;
  const bad = await keel(['endpoint', 'health', '--endpoints', `${a.url},${b.url},${dead}`]);
  t.equal(bad.code, 1);
  t.match(bad.stdout, `${a.url} is healthy`);
  t.match(bad.stderr, `${b.url} is unhealthy: RAFT NO LEADER`);
  t.match(bad.stderr, new RegExp(`${dead} is unhealthy: no member reachable at ${dead}: connect ECONNREFUSED`));
  t.match(bad.stderr, /Error: unhealthy cluster/);

  const json = await keel(['endpoint', 'health', '--json', '--endpoints', `${a.url},${b.url}`]);
  const parsed = JSON.parse(json.stdout) as { endpoint: string; health: boolean; took: string; error?: string }[];
  t.equal(parsed[0].health, true);
  t.equal(parsed[0].error, undefined);
  t.match(parsed[0].took, /ms$/);
  t.same({ ...parsed[1], took: '' }, { endpoint: b.url, health: false, took: '', error: 'RAFT NO LEADER' });
});

t.test('format helpers', async (t) => {
  t.equal(humanBytes(0), '0 B');
  t.equal(humanBytes(9), '9 B');
  t.equal(humanBytes(554), '554 B');
  t.equal(humanBytes(1100), '1.1 kB');
  t.equal(humanBytes(24576), '25 kB');
  t.equal(humanBytes(1_500_000), '1.5 MB');
  t.equal(humanBytes(8 * 1024 * 1024 * 1024), '8.6 GB');
  t.equal(
    renderTable(['A', 'NAME'], [['1', 'x']]),
    '+---+------+\n' + '| A | NAME |\n' + '+---+------+\n' + '| 1 | x    |\n' + '+---+------+\n',
  );
  t.equal(renderTable(['A'], []), '+---+\n| A |\n+---+\n');
});
