// Proof that the register checker can fail (issue 7, item 6): it must give the labelled answer on every
// labelled history of test/fixtures/linearizability (a copy of ../shared/fixtures/linearizability, with its
// license; see its README), each within BOUND_MS. Unlabelled histories are run and their answer reported; only
// their termination within the bound is asserted.
//
// The files are read through the same parsers as `npm run jepsen -- check --format jepsen-log|kv-edn`, and all
// of them are checked concurrently on one pool of two worker threads. A file's time is its parse time plus the
// search time of each of its keys (measured inside the workers), so that waiting in the pool's queue does not
// count against it; the time budget per key is the bound itself, so a search that runs out of time answers
// `unknown` and fails the label.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { CheckerPool, checkLinearizable, type CheckResult } from '../../jepsen/checker/linearizable';
import type { ModelName } from '../../jepsen/checker/models';
import { parseHistory, type HistoryFormat } from '../../jepsen/formats';
import { pairHistory } from '../../jepsen/history';

const DIR = join(__dirname, '..', 'fixtures', 'linearizability');
const BOUND_MS = 10_000;

interface Fixture {
  name: string;
  path: string;
  format: HistoryFormat;
  model: ModelName;
  expect?: 'valid' | 'invalid';
}

function fixtures(): Fixture[] {
  const out: Fixture[] = [];
  const labels = new Map<string, string>();
  for (const line of readFileSync(join(DIR, 'jepsen-etcd', 'labels.tsv'), 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const [file, label] = line.split('\t');
    labels.set(file, label);
  }
  const logs = readdirSync(join(DIR, 'jepsen-etcd')).filter((f) => f.endsWith('.log')).sort();
  for (const file of labels.keys()) if (!logs.includes(file)) throw new Error(`labels.tsv names a missing file ${file}`);
  for (const f of logs) {
    const label = labels.get(f);
    if (label !== undefined && label !== 'linearizable' && label !== 'not-linearizable') throw new Error(`bad label ${label} for ${f}`);
    out.push({
      name: `jepsen-etcd/${f}`,
      path: join(DIR, 'jepsen-etcd', f),
      format: 'jepsen-log',
      model: 'register',
      expect: label === undefined ? undefined : label === 'linearizable' ? 'valid' : 'invalid',
    });
  }
  for (const f of readdirSync(join(DIR, 'kv')).filter((x) => x.endsWith('.txt')).sort()) {
    const m = /-(ok|bad)\.txt$/.exec(f);
    out.push({
      name: `kv/${f}`,
      path: join(DIR, 'kv', f),
      format: 'kv-edn',
      model: 'kv',
      expect: m ? (m[1] === 'ok' ? 'valid' : 'invalid') : undefined,
    });
  }
  return out;
}

t.test('the linearizability fixtures give their labelled answers', async (t) => {
  const all = fixtures();
  const labelled = all.filter((f) => f.expect);
  t.equal(all.filter((f) => f.format === 'jepsen-log' && f.expect === 'valid').length, 23, '23 linearizable etcd logs');
  t.equal(all.filter((f) => f.format === 'jepsen-log' && f.expect === 'invalid').length, 79, '79 not linearizable');
  t.equal(all.filter((f) => f.format === 'kv-edn' && f.expect).length, 6, '6 kv histories');

  const pool = new CheckerPool(2);
  t.teardown(() => pool.close());
  const start = performance.now();
  const results = await Promise.all(
    all.map(async (f) => {
      const t0 = performance.now();
      const ops = pairHistory(parseHistory(readFileSync(f.path, 'utf8'), f.format, f.name), f.name);
      const parseMs = performance.now() - t0;
      const r: CheckResult = await checkLinearizable(ops, { model: f.model, pool, budgetMs: BOUND_MS, source: f.name });
      const ms = parseMs + r.keys.reduce((s, k) => s + k.elapsedMs, 0);
      return { f, r, ms };
    }),
  );
  const wall = performance.now() - start;

  for (const { f, r, ms } of results) {
    if (f.expect) {
      t.equal(r.verdict, f.expect, `${f.name}: ${r.verdict} (${r.keys.length} keys, ${ms.toFixed(0)} ms)`);
      if (r.verdict === 'invalid') t.ok(r.smallestFailing && r.smallestFailing.verdict === 'invalid', `${f.name}: names a failing key`);
    } else {
      t.comment(`${f.name} (unlabelled, ${r.operations} operations): ${r.verdict}`);
    }
    t.ok(ms < BOUND_MS, `${f.name} within ${BOUND_MS} ms`);
  }
  const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 3);
  t.comment(
    `${labelled.length} labelled, ${all.length - labelled.length} unlabelled; all files in ${(wall / 1000).toFixed(1)} s on 2 workers; ` +
      `slowest: ${slowest.map((s) => `${s.f.name} ${s.ms.toFixed(0)} ms`).join(', ')}`,
  );
});
