// D/cluster.json: round trip, atomic write, clear errors for a missing or corrupt file.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import {
  ClusterFileError,
  clusterFilePath,
  readClusterFile,
  updatePids,
  writeClusterFile,
  type ClusterMember,
} from '../../src/cli/cluster-file';
import { planMembers } from '../../src/cli/cluster-commands';
import { keel } from './fixtures/helpers';

function tempDir(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keel-cf-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('round trip, in the shape DESIGN.md gives', async (t) => {
  const dir = tempDir(t);
  const members: ClusterMember[] = planMembers(dir, 3, 2379).map((m, i) => ({ ...m, pid: i === 1 ? null : 1000 + i }));
  const written = writeClusterFile(dir, members);
  t.equal(written.endpoints, 'http://127.0.0.1:2379,http://127.0.0.1:2381,http://127.0.0.1:2383');
  const raw = JSON.parse(fs.readFileSync(path.join(dir, 'cluster.json'), 'utf8')) as unknown;
  t.same(raw, {
    members: [
      {
        name: 'n1',
        pid: 1000,
        clientUrl: 'http://127.0.0.1:2379',
        peerUrl: 'http://127.0.0.1:2380',
        dataDir: path.join(dir, 'n1'),
      },
      {
        name: 'n2',
        pid: null,
        clientUrl: 'http://127.0.0.1:2381',
        peerUrl: 'http://127.0.0.1:2382',
        dataDir: path.join(dir, 'n2'),
      },
      {
        name: 'n3',
        pid: 1002,
        clientUrl: 'http://127.0.0.1:2383',
        peerUrl: 'http://127.0.0.1:2384',
        dataDir: path.join(dir, 'n3'),
      },
    ],
    endpoints: 'http://127.0.0.1:2379,http://127.0.0.1:2381,http://127.0.0.1:2383',
  });
  t.same(readClusterFile(dir), written);
  t.same(
    fs.readdirSync(dir).filter((f) => f.includes('tmp')),
    [],
    'no temporary file is left behind',
  );
});

t.test('updatePids re-reads the file and respects the expected pid', async (t) => {
  const dir = tempDir(t);
  writeClusterFile(
    dir,
    planMembers(dir, 2, 3000).map((m) => ({ ...m, pid: 50 })),
  );
  updatePids(dir, [
    { name: 'n1', pid: null, expect: 50 },
    { name: 'n2', pid: null, expect: 49 },
  ]);
  const cf = readClusterFile(dir);
  t.equal(cf.members[0].pid, null);
  t.equal(cf.members[1].pid, 50, 'not changed: it held another pid than expected');
  updatePids(dir, [{ name: 'n2', pid: 77 }]);
  t.equal(readClusterFile(dir).members[1].pid, 77);
});

t.test('a missing directory or file is a clear error', async (t) => {
  const dir = tempDir(t);
  t.throws(() => readClusterFile(path.join(dir, 'nope')), {
    name: 'ClusterFileError',
    message: `cluster directory ${path.join(dir, 'nope')} does not exist`,
  });
  t.throws(
    () => readClusterFile(dir),
    new RegExp(`no cluster.json in ${dir} \\(start a cluster there with: keel cluster up --dir`),
  );
  const down = await keel(['cluster', 'down', '--dir', path.join(dir, 'nope')]);
  t.equal(down.code, 1);
  t.match(down.stderr, /^Error: cluster directory .* does not exist/);
  const status = await keel(['cluster', 'status', '--dir', dir]);
  t.equal(status.code, 1);
  t.match(status.stderr, /^Error: no cluster.json in /);
});

t.test('a corrupt file is a clear error that names the file and the problem', async (t) => {
  const dir = tempDir(t);
  const file = clusterFilePath(dir);
  const good = {
    members: [
      { name: 'n1', pid: 12, clientUrl: 'http://127.0.0.1:2379', peerUrl: 'http://127.0.0.1:2380', dataDir: '/d/n1' },
    ],
    endpoints: 'http://127.0.0.1:2379',
  };
  const m0 = good.members[0];
  const cases: [string, RegExp][] = [
    ['{"members": [', /is corrupt: not valid JSON/],
    ['[]', /is corrupt: expected a JSON object/],
    [JSON.stringify({ endpoints: '' }), /"members" must be an array/],
    [JSON.stringify({ ...good, members: [] }), /"members" is empty/],
    [JSON.stringify({ ...good, members: [7] }), /members\[0\] must be an object/],
    [JSON.stringify({ ...good, members: [{ ...m0, name: '' }] }), /members\[0\]\.name must be a name/],
    [JSON.stringify({ ...good, members: [m0, { ...m0 }] }), /member name "n1" appears twice/],
    [
      JSON.stringify({ ...good, members: [{ ...m0, pid: -3 }] }),
      /members\[0\]\.pid must be a positive integer or null/,
    ],
    [JSON.stringify({ ...good, members: [{ ...m0, pid: '12' }] }), /members\[0\]\.pid/],
    [JSON.stringify({ ...good, members: [{ ...m0, clientUrl: 5 }] }), /members\[0\]\.clientUrl must be a string/],
    [
      JSON.stringify({ ...good, members: [{ ...m0, peerUrl: 'http://h' }] }),
      /members\[0\]\.peerUrl: "http:\/\/h" has no port/,
    ],
    [
      JSON.stringify({ ...good, members: [{ ...m0, dataDir: '' }] }),
      /members\[0\]\.dataDir must be a non-empty string/,
    ],
    [JSON.stringify({ members: good.members }), /"endpoints" must be a string/],
  ];
  for (const [text, msg] of cases) {
    fs.writeFileSync(file, text);
    t.throws(() => readClusterFile(dir), ClusterFileError, text);
    t.throws(() => readClusterFile(dir), msg, text);
    t.throws(() => readClusterFile(dir), new RegExp(`^${file.replace(/[.]/g, '\\.')} is corrupt: `));
  }
  fs.writeFileSync(file, '{"members": [');
  const r = await keel(['cluster', 'status', '--dir', dir]);
  t.equal(r.code, 1);
  t.match(r.stderr, /is corrupt: not valid JSON/);
  const up = await keel(['cluster', 'up', '--dir', dir]);
  t.equal(up.code, 1, 'cluster up refuses to overwrite a corrupt file');
  t.match(up.stderr, /is corrupt/);
  fs.writeFileSync(file, JSON.stringify({ ...good, members: [{ ...m0, pid: null }] }));
  t.equal(readClusterFile(dir).members[0].pid, null, 'a null pid is valid');
});
