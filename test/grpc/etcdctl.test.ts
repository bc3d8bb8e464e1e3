// etcdctl 3.4 (etcd's own Go client) against a fake member behind Keel's gRPC server and protocol mux, with
// http:// endpoints as users write them. Skipped when etcdctl is not on PATH.

import { execFile, spawn, spawnSync } from 'node:child_process';
import t from 'tap';
import { startMuxFake, until } from './fixtures/grpc';

const found = spawnSync('etcdctl', ['version'], { env: { ...process.env, ETCDCTL_API: '3' }, encoding: 'utf8' });
const skip = found.error !== undefined || found.status !== 0 ? 'etcdctl is not on PATH' : false;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function env(): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ETCDCTL_API: '3' };
  for (const k of Object.keys(e)) if (k.startsWith('ETCDCTL_') && k !== 'ETCDCTL_API') delete e[k];
  return e;
}

function etcdctl(url: string, args: string[], input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      'etcdctl',
      ['--endpoints', url, '--dial-timeout', '3s', '--command-timeout', '5s', ...args],
      { env: env(), timeout: 15_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

t.test('etcdctl 3.4 against Keel over gRPC', { skip }, async (t) => {
  const f = await startMuxFake(t);
  const run = (...args: string[]): Promise<Result> => etcdctl(f.url, args);
  const ok = async (args: string[], input?: string): Promise<string> => {
    const r = await etcdctl(f.url, args, input);
    t.equal(r.code, 0, `etcdctl ${args.join(' ')}${r.code === 0 ? '' : `: ${r.stderr}`}`);
    return r.stdout;
  };

  t.test('put, get, del', async (t) => {
    t.equal(await ok(['put', 'greeting', 'hello']), 'OK\n');
    t.equal(await ok(['get', 'greeting']), 'greeting\nhello\n');
    const json = JSON.parse(await ok(['get', 'greeting', '-w', 'json'])) as {
      header: Record<string, number>;
      kvs: { key: string; value: string; create_revision: number; version: number }[];
      count: number;
    };
    t.same(json.header, { cluster_id: 170, member_id: 187, revision: 2, raft_term: 2 }, 'header fields as etcd prints them');
    t.same(
      json.kvs.map((kv) => [Buffer.from(kv.key, 'base64').toString(), Buffer.from(kv.value, 'base64').toString(), kv.create_revision, kv.version]),
      [['greeting', 'hello', 2, 1]],
    );
    await ok(['put', 'app/a', '1']);
    await ok(['put', 'app/b', '2']);
    t.match(await ok(['get', 'app/', '--prefix', '-w', 'fields']), /"Key" : "app\/a"\n[^]*"Key" : "app\/b"\n[^]*"Count" : 2\n/);
    await ok(['get', 'app/', '--prefix', '--keys-only', '--limit', '1', '--sort-by', 'MODIFY', '--order', 'DESCEND']);
    t.same(f.member.callsOf('range').at(-1), {
      key: Buffer.from('app/'),
      rangeEnd: Buffer.from('app0'),
      limit: 1,
      sortOrder: 'DESCEND',
      sortTarget: 'MOD',
      keysOnly: true,
    }, 'the range options as etcdctl sent them');
    t.equal(await ok(['put', 'greeting', 'hi', '--prev-kv']), 'OK\ngreeting\nhello\n');
    t.equal(await ok(['del', 'app/', '--prefix']), '2\n');
  });

  t.test('txn from stdin', async (t) => {
    f.member.evaluateCompares = true;
    const out = await ok(['txn'], 'value("greeting") = "hi"\n\nput greeting bonjour\nget greeting\n\nget greeting\n\n');
    t.equal(out, 'SUCCESS\n\nOK\n\ngreeting\nbonjour\n');
    const failed = await ok(['txn'], 'version("greeting") > "9"\n\nput greeting never\n\nget greeting\n\n');
    t.equal(failed, 'FAILURE\n\ngreeting\nbonjour\n');
  });

  t.test('watch from a revision', async (t) => {
    const child = spawn('etcdctl', ['--endpoints', f.url, 'watch', 'greeting', '--rev', '1'], { env: env() });
    t.teardown(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await until(() => out.includes('bonjour'), 10_000, 'the watch to replay history');
    await ok(['put', 'greeting', 'live']);
    await until(() => out.includes('live'), 10_000, 'the live event');
    t.equal(out, 'PUT\ngreeting\nhello\nPUT\ngreeting\nhi\nPUT\ngreeting\nbonjour\nPUT\ngreeting\nlive\n');
  });

  t.test('leases', async (t) => {
    t.equal(await ok(['lease', 'grant', '60']), 'lease 00000000000003e8 granted with TTL(60s)\n');
    t.equal(await ok(['put', 'session', 'alive', '--lease', '3e8']), 'OK\n');
    t.equal(await ok(['lease', 'keep-alive', '--once', '3e8']), 'lease 00000000000003e8 keepalived with TTL(60)\n');
    t.match(await ok(['lease', 'timetolive', '3e8']), /lease 00000000000003e8 granted with TTL\(60s\), remaining\(60s\)/);
    t.equal(await ok(['lease', 'list']), 'found 1 leases\n00000000000003e8\n');
    t.equal(await ok(['lease', 'revoke', '3e8']), 'lease 00000000000003e8 revoked\n');
    const gone = await run('lease', 'revoke', '3e8');
    t.not(gone.code, 0);
    t.match(gone.stderr, /etcdserver: requested lease not found/);
  });

  t.test('compaction and a read below it', async (t) => {
    t.match(await ok(['compaction', '3']), /compacted revision 3/);
    const r = await run('get', 'greeting', '--rev', '2');
    t.not(r.code, 0);
    t.match(r.stderr, /etcdserver: mvcc: required revision has been compacted/);
  });

  t.test('cluster and maintenance', async (t) => {
    const members = JSON.parse(await ok(['member', 'list', '-w', 'json'])) as { members: { ID: number; name: string }[] };
    t.same(members.members.map((m) => [m.ID, m.name]), [[187, 'm1']]);
    t.match(await ok(['member', 'add', 'n2', '--peer-urls', 'http://127.0.0.1:2390', '--learner']), /Member\s+1000 added to cluster\s+aa/);
    t.match(await ok(['member', 'promote', '1000']), /Member\s+1000 promoted in cluster\s+aa/);
    t.match(await ok(['member', 'remove', '1000']), /Member\s+1000 removed from cluster\s+aa/);
    const unknown = await run('member', 'remove', '1234');
    t.match(unknown.stderr, /Error: etcdserver: member not found/);
    const update = await run('member', 'update', 'bb', '--peer-urls', 'http://127.0.0.1:2400');
    t.match(update.stderr, /Unimplemented desc = etcdserver: member update is not supported by Keel/);

    // These dial the endpoint itself ("passthrough:///http://..."): the :authority repair at work.
    const status = JSON.parse(await ok(['endpoint', 'status', '-w', 'json'])) as { Endpoint: string; Status: Record<string, unknown> }[];
    t.equal(status[0].Endpoint, f.url);
    t.match(status[0].Status, { version: '3.4.0-keel', leader: 187, raftIndex: 10, raftTerm: 2 });
    t.match(await ok(['endpoint', 'hashkv']), new RegExp(`^${f.url}, \\d+\\n$`));
    t.equal(await ok(['defrag']), `Finished defragmenting etcd member[${f.url}]\n`);
    t.equal(await ok(['move-leader', 'bb']), 'Leadership transferred from bb to bb\n');
    t.same(f.member.callsOf('moveLeader'), [{ targetId: '00000000000000bb' }]);
    const health = await run('endpoint', 'health');
    t.match(health.stderr, new RegExp(`^${f.url} is healthy: successfully committed proposal`));
    t.equal(await ok(['alarm', 'list']), '');
    const auth = await run('user', 'list');
    t.match(auth.stderr, /etcdserver: authentication is not supported by Keel/);
  });
});
