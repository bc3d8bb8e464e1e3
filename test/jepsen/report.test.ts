import t from 'tap';
import type { HistoryEvent } from '../../jepsen/history';
import { renderReport } from '../../jepsen/report/html';
import { countOps, nemesisIntervals, timedOps } from '../../jepsen/report/ops';
import type { CheckResult } from '../../jepsen/types';

const S = 1e9;

/**
 * A small history: 10 s, one operation invoked every 100 ms (each by its own process, 5-24 ms long; every
 * odd one a write, which is info when i % 10 = 3 and fail when i % 10 = 7), a partition from 2 s to 5 s, a
 * kill from 7 s that is never stopped.
 */
function history(): HistoryEvent[] {
  const ev: HistoryEvent[] = [];
  for (let i = 0; i < 100; i++) {
    const t0 = i * 0.1 * S;
    const f = i % 2 === 0 ? 'read' : 'write';
    const type = i % 10 === 3 ? 'info' : i % 10 === 7 ? 'fail' : 'ok';
    ev.push({ process: i, type: 'invoke', f, key: `k${i % 3}`, value: f === 'read' ? null : i, time: t0 });
    ev.push({ process: i, type, f, key: `k${i % 3}`, value: f === 'read' ? i - 1 : i, time: t0 + (5 + (i % 20)) * 1e6 });
  }
  ev.push({ process: 'nemesis', type: 'info', f: 'start-partition', value: { groups: [['n1'], ['n2', 'n3']] }, time: 2 * S });
  ev.push({ process: 'nemesis', type: 'info', f: 'stop-partition', value: 'healed', time: 5 * S });
  ev.push({ process: 'nemesis', type: 'info', f: 'start-kill', value: { killed: ['n2'] }, time: 7 * S, error: 'kill n3: gone' });
  ev.sort((a, b) => a.time - b.time);
  return ev;
}

function count(s: string, re: RegExp): number {
  return (s.match(re) ?? []).length;
}

t.test('operations, counts and fault intervals from a history', async (t) => {
  const h = history();
  const ops = timedOps(h);
  t.equal(ops.length, 100);
  const c = countOps(ops);
  t.same(c.total, { ok: 80, fail: 10, info: 10 });
  t.same(c.read, { ok: 50, fail: 0, info: 0 });
  t.same(c.write, { ok: 30, fail: 10, info: 10 });
  const iv = nemesisIntervals(h);
  t.equal(iv.length, 2);
  t.match(iv[0], { kind: 'partition', startNs: 2 * S, stopNs: 5 * S, stop: 'healed', errors: [] });
  t.match(iv[1], { kind: 'kill', startNs: 7 * S, errors: ['kill n3: gone'] });
  t.equal(iv[1]!.stopNs, undefined, 'a fault still active at the end has no stop');
  // an invocation never completed is indeterminate, with no completion time
  const open = timedOps([{ process: 9, type: 'invoke', f: 'read', value: null, time: 1 }]);
  t.same(open, [{ process: 9, f: 'read', outcome: 'info', invokeNs: 1 }]);
});

t.test('the report has shaded fault intervals, a point per completed operation, verdicts and the failing key', async (t) => {
  const failing: CheckResult = {
    checker: 'linearizable',
    verdict: 'invalid',
    summary: 'invalid: 3 keys (2 valid, 1 invalid, 0 unknown)',
    details: {
      smallestFailing: {
        key: 'k1',
        history: [
          { process: 0, f: 'write', value: 1, type: 'ok', invokeTime: 1 * S, completeTime: 1.1 * S },
          { process: 1, f: 'read', value: null, output: 7, type: 'ok', invokeTime: 2 * S, completeTime: 2.1 * S },
        ],
        stuck: { process: 1, f: 'read', value: null },
      },
    },
  };
  const ok: CheckResult = { checker: 'set', verdict: 'valid', summary: 'all 5 acknowledged adds present' };
  const html = renderReport({ title: 'register <test>', events: history(), results: [failing, ok], options: { seed: 7, nodes: 3 }, files: ['history.jsonl', 'n1.log'] });

  t.match(html, /^<!DOCTYPE html>/);
  t.match(html, /<title>register &lt;test&gt;<\/title>/, 'the title is escaped');
  t.equal(count(html, /<svg /g), count(html, /<\/svg>/g), 'svg tags are balanced');
  t.equal(count(html, /<svg /g), 3, 'throughput + latency of read and of write');
  t.equal(count(html, /<g class="nemesis"/g), 2 * 3, 'both faults shaded in every plot');
  t.match(html, /data-kind="partition"><title>partition 2\.0s-5\.0s/);
  t.match(html, /data-kind="kill"><title>kill 7\.0s-[\d.]+s \(errors\)/, 'an unstopped fault reaches the end of the plot');
  t.equal(count(html, /<circle class="op ok"/g), 80);
  t.equal(count(html, /<circle class="op fail"/g), 10);
  t.equal(count(html, /<circle class="op info"/g), 10);
  t.equal(count(html, /<polyline class="rate /g), 3);
  t.match(html, /<td>linearizable<\/td><td class="invalid">invalid<\/td>/);
  t.match(html, /<td>set<\/td><td class="valid">valid<\/td>/);
  t.match(html, /Overall: <span class="invalid">invalid<\/span>/);
  t.match(html, /failing key &quot;k1&quot;: 2 operations/);
  t.match(html, /<tr style="background:#fde"><td>1<\/td><td>read<\/td>/, 'the stuck operation is highlighted');
  t.match(html, /&quot;seed&quot;: 7/, 'options shown');
  t.match(html, /<a href="n1.log">n1.log<\/a>/);
  t.notMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, 'no script, no external asset');

  // Operation 10 (a read invoked at 1.0 s, 15 ms long) is placed by time and latency: the plot area is
  // 680 x 278 px from (70, 36); time runs over the history's 9.924 s (op 99 ends at 9.9 s + 24 ms); the
  // read latencies (5..23 ms) give a log axis from 1 to 100 ms.
  const x = 70 + (1.0 / 9.924) * 680;
  const y = 36 + 278 - (Math.log10(15) / 2) * 278;
  t.ok(html.includes(`<circle class="op ok" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}"`), `a point at (${x.toFixed(1)}, ${y.toFixed(1)})`);
});

t.test('an empty history and no checker still give a report', async (t) => {
  const html = renderReport({ title: 'nothing', events: [], results: [], options: {} });
  t.match(html, /No operations were recorded/);
  t.match(html, /No faults were injected/);
  t.match(html, /no checker ran/);
  t.match(html, /Overall: <span class="unknown">unknown<\/span>/);
  t.equal(count(html, /<svg /g), count(html, /<\/svg>/g));
});
