// The benchmark's latency histogram (bench/lib/histogram.ts, hdr-histogram-js behind our interface):
// percentiles within 0.1% (3 significant digits), exact below 2048, max, add and reset.

import t from 'tap';
import { cdfPoints, createHistogram } from '../../bench/lib/histogram';

t.test('percentiles of 1..1,000,000 within 0.1%', (t) => {
  const h = createHistogram();
  for (let v = 1; v <= 1_000_000; v++) h.recordValue(v);
  t.equal(h.totalCount, 1_000_000);
  t.equal(h.maxValue, 1_000_000);
  t.equal(h.minNonZeroValue, 1);
  for (const p of [1, 10, 50, 90, 99, 99.9, 99.99]) {
    const want = (p / 100) * 1_000_000;
    const got = h.getValueAtPercentile(p);
    t.ok(got >= want && got <= want * 1.001 + 1, `p${p}: ${got} ≈ ${want}`);
  }
  t.equal(h.getValueAtPercentile(100), 1_000_000, 'p100 is the max');
  t.end();
});

t.test('exact below 2048; empty; add; reset', (t) => {
  const h = createHistogram();
  t.equal(h.getValueAtPercentile(50), 0, 'empty: 0');
  t.same(cdfPoints(h), [], 'empty: no CDF');
  for (const v of [5, 5, 7, 2047]) h.recordValue(v);
  t.equal(h.getValueAtPercentile(50), 5);
  t.equal(h.getValueAtPercentile(75), 7);
  t.equal(h.getValueAtPercentile(100), 2047);
  const g = createHistogram();
  g.recordValue(3_000_000);
  g.recordValue(0);
  h.add(g);
  t.equal(h.totalCount, 6);
  t.equal(h.maxValue, 3_000_000);
  t.equal(h.getValueAtPercentile(0), 0, 'a recorded 0 is the minimum');
  const top = h.getValueAtPercentile(99);
  t.ok(top <= 3_000_000 && top >= 2_997_000, `large values within 0.1% (${top})`);
  const cdf = cdfPoints(h);
  t.ok(cdf.every(([, q], i) => i === 0 || q >= cdf[i - 1][1]), 'CDF ascends');
  h.reset();
  t.equal(h.totalCount, 0);
  t.equal(h.maxValue, 0);
  t.end();
});
