// The run's report.html: one self-contained file (inline SVG and CSS, no script, no external asset) with the
// verdicts, the plots over time with the faults shaded, the nemesis's actions, each checker's summary and
// evidence (for the register checker the failing key's operations), operation counts and the run's options.

import type { HistoryEvent } from '../history';
import type { CheckResult } from '../types';
import { latencyChart, nemesisColor, throughputChart, type TimeAxis } from './charts';
import { esc } from './escape';
import { countOps, nemesisIntervals, timeSpan, timedOps, type NemesisInterval } from './ops';

export interface ReportInput {
  title: string;
  events: readonly HistoryEvent[];
  results: readonly CheckResult[];
  /** the run's options, shown as given */
  options: Record<string, unknown>;
  /** files next to the report worth a link (history, results, node logs), relative to it */
  files?: readonly string[];
  /** extra lines for the header (durations, target, ...) */
  notes?: readonly string[];
}

/** Evidence longer than this (as JSON) is cut in the report; results.json keeps all of it. */
const MAX_DETAILS_CHARS = 200_000;

const CSS = `body{font-family:sans-serif;margin:20px;color:#222}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;font-size:13px}th{background:#f3f3f3}
.valid{color:#1a7f1a;font-weight:bold}.invalid{color:#c62020;font-weight:bold}.unknown{color:#c77700;font-weight:bold}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:480px;font-size:12px}svg{display:block;margin:8px 0}`;

function verdictCell(v: string): string {
  return `<td class="${esc(v)}">${esc(v)}</td>`;
}

function json(v: unknown, max = MAX_DETAILS_CHARS): string {
  const s = JSON.stringify(v, (_k, x: unknown) => (x === Infinity ? 'Infinity' : x), 2) ?? 'undefined';
  return s.length > max ? `${s.slice(0, max)}\n... (${s.length - max} more characters: see results.json)` : s;
}

/** The operations of a failing key, when the details carry them (the register checker's smallestFailing). */
interface FailingKey {
  key: string;
  history: { process: number; f: string; value: unknown; output?: unknown; type: string; invokeTime: number; completeTime: number | null | string }[];
  stuck?: { index?: number; process: number; f: string; value: unknown };
}

function failingKey(details: unknown): FailingKey | undefined {
  if (details === null || typeof details !== 'object') return undefined;
  const sf = (details as { smallestFailing?: unknown }).smallestFailing;
  if (sf === null || typeof sf !== 'object') return undefined;
  const k = sf as Partial<FailingKey>;
  if (typeof k.key !== 'string' || !Array.isArray(k.history)) return undefined;
  return k as FailingKey;
}

function failingKeyTable(k: FailingKey, startNs: number): string {
  const rows = k.history.map((op) => {
    const inv = ((op.invokeTime - startNs) / 1e6).toFixed(1);
    const done = typeof op.completeTime === 'number' && Number.isFinite(op.completeTime) ? ((op.completeTime - startNs) / 1e6).toFixed(1) : '∞';
    const stuck = k.stuck && k.stuck.process === op.process && k.stuck.f === op.f && JSON.stringify(k.stuck.value) === JSON.stringify(op.value);
    return (
      `<tr${stuck ? ' style="background:#fde"' : ''}><td>${op.process}</td><td>${esc(op.f)}</td><td>${esc(JSON.stringify(op.value) ?? '')}</td>` +
      `<td>${esc(op.output === undefined ? '' : JSON.stringify(op.output))}</td>${verdictCell(op.type === 'ok' ? 'ok' : op.type)}` +
      `<td>${inv}</td><td>${done}</td></tr>`
    );
  });
  return (
    `<h4>failing key ${esc(JSON.stringify(k.key))}: ${k.history.length} operations (the one that cannot take effect is highlighted)</h4>` +
    `<table><tr><th>process</th><th>f</th><th>value</th><th>read</th><th>type</th><th>invoked (ms)</th><th>completed (ms)</th></tr>${rows.join('')}</table>`
  );
}

function nemesisTable(intervals: readonly NemesisInterval[], startNs: number): string {
  if (intervals.length === 0) return '<p>No faults were injected.</p>';
  const s = (ns: number | undefined): string => (ns === undefined ? 'end' : ((ns - startNs) / 1e9).toFixed(2));
  const rows = intervals.map(
    (iv) =>
      `<tr><td style="color:${nemesisColor(iv.kind)}">${esc(iv.kind)}</td><td>${s(iv.startNs)}</td><td>${s(iv.stopNs)}</td>` +
      `<td>${esc(JSON.stringify(iv.start) ?? '')}</td><td>${esc(JSON.stringify(iv.stop) ?? '')}</td><td>${esc(iv.errors.join('; '))}</td></tr>`,
  );
  return `<table><tr><th>fault</th><th>start (s)</th><th>stop (s)</th><th>what</th><th>repair</th><th>errors</th></tr>${rows.join('')}</table>`;
}

export function renderReport(input: ReportInput): string {
  const ops = timedOps(input.events);
  const intervals = nemesisIntervals(input.events);
  const [startNs, endNs] = timeSpan(input.events);
  const axis: TimeAxis = { startNs, durationS: (endNs - startNs) / 1e9, intervals };
  const counts = countOps(ops);
  const fs = Object.keys(counts).filter((f) => f !== 'total').sort();
  const overall = input.results.some((r) => r.verdict === 'invalid')
    ? 'invalid'
    : input.results.length > 0 && input.results.every((r) => r.verdict === 'valid')
      ? 'valid'
      : 'unknown';

  const h: string[] = [];
  h.push('<!DOCTYPE html>', '<html><head><meta charset="utf-8">', `<title>${esc(input.title)}</title>`, `<style>${CSS}</style>`, '</head><body>');
  h.push(`<h1>${esc(input.title)}</h1>`);
  h.push(`<p>Overall: <span class="${overall}">${overall}</span></p>`);
  for (const n of input.notes ?? []) h.push(`<p>${esc(n)}</p>`);

  h.push('<h2>Verdicts</h2>');
  h.push('<table><tr><th>checker</th><th>verdict</th><th>summary</th></tr>');
  for (const r of input.results) h.push(`<tr><td>${esc(r.checker)}</td>${verdictCell(r.verdict)}<td>${esc(r.summary)}</td></tr>`);
  if (input.results.length === 0) h.push('<tr><td colspan="3">no checker ran (see the run log)</td></tr>');
  h.push('</table>');

  h.push('<h2>Throughput</h2>', throughputChart(ops, axis));
  h.push('<h2>Latency</h2>');
  for (const f of fs) h.push(latencyChart(ops, f, axis));
  if (fs.length === 0) h.push('<p>No operations were recorded.</p>');

  h.push('<h2>Faults</h2>', nemesisTable(intervals, startNs));

  h.push('<h2>Operations</h2>');
  h.push('<table><tr><th>f</th><th>ok</th><th>fail</th><th>info</th></tr>');
  for (const f of [...fs, 'total']) {
    const c = counts[f] ?? { ok: 0, fail: 0, info: 0 };
    h.push(`<tr><td>${esc(f)}</td><td>${c.ok}</td><td>${c.fail}</td><td>${c.info}</td></tr>`);
  }
  h.push('</table>');

  h.push('<h2>Checker details</h2>');
  for (const r of input.results) {
    h.push(`<h3>${esc(r.checker)}: <span class="${esc(r.verdict)}">${esc(r.verdict)}</span></h3>`, `<p>${esc(r.summary)}</p>`);
    const k = failingKey(r.details);
    if (k) h.push(failingKeyTable(k, startNs));
    if (r.details !== undefined) h.push(`<details><summary>details (JSON)</summary><pre>${esc(json(r.details))}</pre></details>`);
  }

  h.push('<h2>Options</h2>', `<pre>${esc(json(input.options))}</pre>`);
  if (input.files && input.files.length > 0) {
    h.push('<h2>Files</h2><ul>');
    for (const f of input.files) h.push(`<li><a href="${esc(encodeURI(f))}">${esc(f)}</a></li>`);
    h.push('</ul>');
  }
  h.push('</body></html>');
  return h.join('\n') + '\n';
}
