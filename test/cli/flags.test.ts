// Usage errors exit 2 with a message that names the problem; other errors exit 1. Runs `keel` in-process
// (nothing here starts a member).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildMemberOptions, type NodeFlags } from '../../src/cli/node-command';
import { evenSizeWarning, planMembers, validateBasePort, validateNodes } from '../../src/cli/cluster-commands';
import { UsageError } from '../../src/cli/errors';
import { parseEndpoints } from '../../src/cli/context';
import { keel } from './fixtures/helpers';

const HINT = "Run 'keel --help' (or 'keel COMMAND --help') for usage.\n";

t.test('yargs usage errors exit 2 with its message', async (t) => {
  const cases: [string[], RegExp][] = [
    [[], /keel needs a command/],
    [['bogus'], /Unknown argument: bogus/],
    [['get'], /Not enough non-option arguments/],
    [['put', 'k'], /put command needs 1 argument and input from stdin or 2 arguments/],
    [['get', 'k', '--nope'], /Unknown argument: nope/],
    [['get', 'k', '--consistency', 'x'], /Invalid values:[\s\S]*consistency/],
    [['endpoint'], /keel endpoint needs a subcommand/],
    [['cluster'], /keel cluster needs a subcommand/],
    [['cluster', 'up'], /Missing required argument: dir/],
    [['cluster', 'down'], /Missing required argument: dir/],
    [['node', '--name', 'n1'], /Missing required argument: data-dir/],
    [['get', 'k', '--limit'], /Not enough arguments following: limit/],
  ];
  for (const [args, msg] of cases) {
    const r = await keel(args);
    t.equal(r.code, 2, `keel ${args.join(' ')}: exit 2`);
    t.match(r.stderr, msg, `keel ${args.join(' ')}: message`);
    t.ok(r.stderr.endsWith(HINT), 'a hint to --help');
    t.equal(r.stdout, '');
  }
});

t.test('--help and --version exit 0 on stdout', async (t) => {
  const h = await keel(['--help']);
  t.equal(h.code, 0);
  for (const c of ['node', 'put <key> [value]', 'get <key> [range_end]', 'del <key> [range_end]', 'watch <key>', 'txn', 'compaction <revision>', 'lease', 'endpoint', 'cluster'])
    t.match(h.stdout, `keel ${c}`);
  t.match(h.stdout, /--endpoints/);
  t.match(h.stdout, /KEEL_ENDPOINTS/);
  const sub = await keel(['cluster', 'up', '--help']);
  t.equal(sub.code, 0);
  t.match(sub.stdout, /--base-port/);
  t.match(sub.stdout, /--detach/);
  const v = await keel(['--version']);
  t.equal(v.code, 0);
  t.match(v.stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('flag values checked by the commands exit 2', async (t) => {
  const cases: [string[], string][] = [
    [['get', 'k', '--prefix', '--from-key'], '--prefix and --from-key cannot be used together'],
    [['del', 'k', '--prefix', '--from-key'], '--prefix and --from-key cannot be used together'],
    [['get', 'k', '--limit', '-1'], '--limit must be a non-negative integer (got -1)'],
    [['get', 'k', '--endpoints', 'ftp://x:1'], '--endpoints: "ftp://x:1" must use http://'],
    [['get', 'k', '--endpoints', 'http://127.0.0.1'], 'has no port'],
    [['get', 'k', '--endpoints', ','], '--endpoints: no endpoint given'],
    [['get', 'k', '--command-timeout', '0'], '--command-timeout must be a positive integer'],
    [['cluster', 'up', '--dir', 'x', '--nodes', '0'], '--nodes must be an integer from 1 to 9 (got 0)'],
    [['cluster', 'up', '--dir', 'x', '--nodes', '10'], '--nodes must be an integer from 1 to 9 (got 10)'],
    [
      ['cluster', 'up', '--dir', 'x', '--nodes', 'three'],
      '--nodes must be an integer from 1 to 9 (got a value that is not a number)',
    ],
    [['cluster', 'up', '--dir', 'x', '--base-port', '65534'], '--base-port must be an integer from 1 to 65530 (3 members use 6 ports from it; got 65534)'],
    [['cluster', 'up', '--dir', 'x', '--start-timeout', '-5'], '--start-timeout must be a positive integer'],
    [['cluster', 'up', '--dir', 'x', '--snapshot-count', '0'], '--snapshot-count must be a positive integer (got 0)'],
    [
      ['node', '--name', 'n1', '--data-dir', 'd', '--initial-cluster', 'n2=http://127.0.0.1:2380'],
      '--initial-cluster does not name this member "n1" (it has n2)',
    ],
    [['node', '--name', 'n1', '--data-dir', 'd', '--listen-peer-urls', 'localhost:2380'], '--listen-peer-urls'],
    [
      ['node', '--name', 'n1', '--data-dir', 'd', '--heartbeat-interval', '300'],
      '--election-timeout (1000 ms) must be at least 5 times --heartbeat-interval (300 ms)',
    ],
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-flags-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [args, msg] of cases) {
    const withDir = args.map((a) => (a === 'x' ? path.join(dir, 'c') : a));
    const r = await keel(withDir);
    t.equal(r.code, 2, `keel ${args.join(' ')}: exit 2`);
    t.match(r.stderr, msg, `keel ${args.join(' ')}: message`);
  }
  t.notOk(fs.existsSync(path.join(dir, 'c')), 'a rejected cluster up creates nothing');
});

const flags = (over: Partial<NodeFlags> = {}): NodeFlags => ({
  name: 'n1',
  dataDir: 'data',
  listenClientUrls: 'http://127.0.0.1:2379',
  listenPeerUrls: 'http://127.0.0.1:2380',
  ...over,
});

t.test('keel node builds MemberOptions with etcd defaults', async (t) => {
  const o = buildMemberOptions(flags());
  t.same(o, {
    name: 'n1',
    dataDir: path.resolve('data'),
    listenClientUrl: 'http://127.0.0.1:2379',
    listenPeerUrl: 'http://127.0.0.1:2380',
    initialCluster: [{ name: 'n1', peerUrl: 'http://127.0.0.1:2380' }],
    initialClusterToken: 'keel-cluster',
    snapshotCount: 10000,
    snapshotCatchupEntries: 5000,
    heartbeatIntervalMs: 100,
    electionTimeoutMs: 1000,
    logLevel: 'info',
    leaseCheckpointIntervalMs: 300000,
    watchProgressNotifyIntervalMs: 600000,
    initialClusterState: 'new',
    quotaBackendBytes: 2 * 1024 ** 3,
  });
  const full = buildMemberOptions(
    flags({
      name: 'n2',
      listenPeerUrls: 'http://127.0.0.1:2382/',
      initialCluster: 'n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2382,n3=http://127.0.0.1:2384',
      initialClusterToken: 'tok',
      snapshotCount: 100,
      snapshotCatchupEntries: 50,
      heartbeatInterval: 50,
      electionTimeout: 250,
      logLevel: 'debug',
      leaseCheckpointInterval: 2000,
      watchProgressNotifyInterval: 1000,
    }),
  );
  t.equal(full.leaseCheckpointIntervalMs, 2000);
  t.equal(full.watchProgressNotifyIntervalMs, 1000);
  t.equal(full.listenPeerUrl, 'http://127.0.0.1:2382', 'trailing slash dropped');
  t.equal(full.initialCluster.length, 3);
  t.equal(full.initialClusterToken, 'tok');
  t.equal(full.snapshotCount, 100);
  t.equal(full.snapshotCatchupEntries, 50);
  t.equal(full.heartbeatIntervalMs, 50);
  t.equal(full.electionTimeoutMs, 250);
  t.equal(full.logLevel, 'debug');
  t.equal(full.advertisePeerUrl, undefined, 'no advertised URL of its own when it is the listen URL');

  const proxied = buildMemberOptions(
    flags({
      listenPeerUrls: 'http://127.0.0.1:2380',
      initialAdvertisePeerUrls: 'http://127.0.0.1:3380/',
      initialCluster: 'n1=http://127.0.0.1:3380,n2=http://127.0.0.1:3382',
    }),
  );
  t.equal(proxied.listenPeerUrl, 'http://127.0.0.1:2380');
  t.equal(proxied.advertisePeerUrl, 'http://127.0.0.1:3380', 'peers dial the advertised URL');
  t.equal(
    buildMemberOptions(flags({ initialAdvertisePeerUrls: 'http://127.0.0.1:3380' })).initialCluster[0]?.peerUrl,
    'http://127.0.0.1:3380',
    'the default --initial-cluster lists the advertised URL',
  );
});

t.test('keel node rejects bad flags with a message naming the flag', async (t) => {
  const bad: [Partial<NodeFlags>, RegExp][] = [
    [{ name: '' }, /--name must not be empty/],
    [{ name: 'a=b' }, /--name "a=b" must not contain/],
    [{ dataDir: ' ' }, /--data-dir must not be empty/],
    [{ listenClientUrls: 'http://127.0.0.1:1,http://127.0.0.1:2' }, /--listen-client-urls: .*only one URL/],
    [{ listenClientUrls: 'https://127.0.0.1:1' }, /--listen-client-urls: .*must use http:\/\//],
    [{ listenClientUrls: 'not a url' }, /--listen-client-urls: "not a url" is not a URL/],
    [{ listenPeerUrls: 'http://127.0.0.1:2379' }, /must differ/],
    [{ listenPeerUrls: 'http://127.0.0.1:2380/x' }, /--listen-peer-urls: .*must not have a path/],
    [{ initialCluster: 'n1' }, /--initial-cluster: "n1" is not NAME=PEER-URL/],
    [{ initialCluster: 'n1=http://127.0.0.1:2380,n1=http://127.0.0.1:2382' }, /appears twice/],
    [
      { initialCluster: 'n1=http://127.0.0.1:2390' },
      /--initial-cluster gives "n1" the peer URL http:\/\/127.0.0.1:2390, but --listen-peer-urls is http:\/\/127.0.0.1:2380/,
    ],
    [
      { initialAdvertisePeerUrls: 'http://127.0.0.1:3380', initialCluster: 'n1=http://127.0.0.1:2380' },
      /--initial-cluster gives "n1" the peer URL http:\/\/127.0.0.1:2380, but --initial-advertise-peer-urls is http:\/\/127.0.0.1:3380/,
    ],
    [{ initialAdvertisePeerUrls: 'ftp://x' }, /--initial-advertise-peer-urls: .*must use http:\/\//],
    [{ initialClusterToken: '' }, /--initial-cluster-token must not be empty/],
    [{ snapshotCount: 0 }, /--snapshot-count must be a positive integer \(got 0\)/],
    [{ leaseCheckpointInterval: -5 }, /--lease-checkpoint-interval must be a positive integer \(got -5\)/],
    [{ snapshotCatchupEntries: 1.5 }, /--snapshot-catchup-entries must be a positive integer/],
    [
      { heartbeatInterval: Number.NaN },
      /--heartbeat-interval must be a positive integer \(got a value that is not a number\)/,
    ],
    [
      { electionTimeout: 400 },
      /--election-timeout \(400 ms\) must be at least 5 times --heartbeat-interval \(100 ms\)/,
    ],
    [{ electionTimeout: 60000 }, /must not exceed 50000 ms/],
    [{ logLevel: 'loud' }, /--log-level "loud" is not one of/],
    [{ initialClusterState: 'old' }, /--initial-cluster-state must be "new" or "existing" \(got "old"\)/],
    [{ initialClusterState: 'existing' }, /must list the running members too/],
    [{ quotaBackendBytes: 0 }, /--quota-backend-bytes must be a positive integer \(got 0\)/],
  ];
  for (const [over, msg] of bad) {
    t.throws(() => buildMemberOptions(flags(over)), UsageError, JSON.stringify(over));
    t.throws(() => buildMemberOptions(flags(over)), msg);
  }
});

t.test('cluster sizes and layout', async (t) => {
  t.equal(validateNodes(1), 1);
  t.equal(validateNodes(9), 9);
  t.throws(() => validateNodes(0), UsageError);
  t.throws(() => validateNodes(10), /from 1 to 9/);
  t.throws(() => validateNodes(2.5), /from 1 to 9/);
  t.equal(validateBasePort(2379, 3), 2379);
  t.equal(validateBasePort(65530, 3), 65530, 'last port 65535');
  t.throws(() => validateBasePort(65531, 3), /from 1 to 65530/);
  t.throws(() => validateBasePort(0, 3), UsageError);
  t.equal(evenSizeWarning(3), undefined);
  t.equal(evenSizeWarning(1), undefined);
  t.equal(
    evenSizeWarning(4),
    'warning: a cluster of 4 members tolerates 1 failure, no more than one of 3, and needs a larger quorum (3 instead of 2); an odd size is better',
  );
  t.match(
    evenSizeWarning(2),
    /tolerates 0 failures, no more than one of 1, and needs a larger quorum \(2 instead of 1\)/,
  );
  const m = planMembers('/tmp/c', 3, 3000);
  t.same(m[2], {
    name: 'n3',
    pid: null,
    clientUrl: 'http://127.0.0.1:3004',
    peerUrl: 'http://127.0.0.1:3005',
    dataDir: '/tmp/c/n3',
  });
});

t.test('parseEndpoints', async (t) => {
  t.same(parseEndpoints('http://127.0.0.1:2379, 127.0.0.1:2381 ,http://127.0.0.1:2379/'), [
    'http://127.0.0.1:2379',
    'http://127.0.0.1:2381',
  ]);
  t.throws(() => parseEndpoints(''), UsageError);
});
