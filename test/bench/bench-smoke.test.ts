// Smoke test of `npm run bench`: Keel only, 3 members, puts for 2 seconds; the --json output has the shape
// issue 6 gives ({"machine": {...}, "runs": [{...}]}). Not a performance test: no figure is checked beyond
// "some operations completed". Compiles the benchmark (tsconfig.bench.json, as `npm run bench` does) and
// runs the compiled file, so that it runs exactly what users run.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

const ROOT = path.resolve(__dirname, '..', '..');
const TSC = require.resolve('typescript/bin/tsc');
const BENCH = path.join(ROOT, 'dist-bench', 'bench', 'bench.js');

t.test('npm run bench -- --system keel --nodes 3 --workload put --json', (t) => {
  const build = spawnSync(process.execPath, [TSC, '-p', path.join(ROOT, 'tsconfig.bench.json')], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  t.equal(build.status, 0, `tsc -p tsconfig.bench.json: ${build.stdout}${build.stderr}`);
  if (build.status !== 0) return t.end();

  const results = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
  t.teardown(() => fs.rmSync(results, { recursive: true, force: true }));
  const args = [
    BENCH,
    '--system', 'keel',
    '--nodes', '3',
    '--workload', 'put',
    '--concurrency', '16',
    '--duration', '2',
    '--warmup', '0.5',
    '--keys', '1000',
    '--json',
    '--results-dir', results,
  ];
  const run = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', timeout: 90_000 });
  t.equal(run.status, 0, `exit code 0; stderr:\n${run.stderr}`);

  let out: any;
  try {
    out = JSON.parse(run.stdout);
  } catch (err) {
    t.fail(`stdout is one JSON object (${(err as Error).message}):\n${run.stdout}`);
    return t.end();
  }
  t.same(Object.keys(out).sort(), ['machine', 'runs'], 'machine and runs');
  t.match(out.machine, { cores: Number, node: String, fsyncPerSec: Number }, 'machine');
  t.ok('etcdVersion' in out.machine, 'machine.etcdVersion (null without etcd)');
  t.ok(Array.isArray(out.runs) && out.runs.length >= 1, 'at least one run');
  for (const r of out.runs) {
    t.match(
      r,
      {
        system: 'keel',
        client: /^(grpc|native)$/,
        nodes: 3,
        workload: 'put',
        concurrency: 16,
        ops: Number,
        opsPerSec: Number,
        latencyMs: { p50: Number, p90: Number, p99: Number, p999: Number, max: Number },
        errors: Number,
        cpu: { generator: Number, servers: Object, serverTotal: Number },
        failed: false,
      },
      `run ${r.system}/${r.client}`,
    );
    t.ok(r.ops > 0 && r.opsPerSec > 0, `${r.client}: operations completed`);
    const l = r.latencyMs;
    t.ok(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max, `${r.client}: percentiles ascend`);
    t.equal(Object.keys(r.cpu.servers).length, 3, `${r.client}: CPU of each of the 3 members`);
  }
  t.ok(out.runs.some((r: { client: string }) => r.client === 'native'), 'a native-client row');

  // Saved: one run dir with the JSON and the Markdown, and a line in the index.
  const dirs = fs.readdirSync(results).filter((f) => f !== 'index.md');
  t.equal(dirs.length, 1, 'one results dir');
  const files = fs.readdirSync(path.join(results, dirs[0]));
  t.ok(files.includes('results.json') && files.includes('results.md'), `results.json and results.md (${files.join(', ')})`);
  t.match(fs.readFileSync(path.join(results, 'index.md'), 'utf8'), dirs[0], 'index.md names it');
  t.end();
});
