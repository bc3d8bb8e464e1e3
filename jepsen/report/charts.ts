// The report's plots, as inline SVG built by hand (no browser, no external assets): latency of every operation
// against the time it was invoked, and throughput per second, both over the run's time with the nemesis's
// fault intervals shaded and labelled behind the data, as Jepsen's latency-raw and rate plots are.

import { PALETTE } from '../../bench/lib/svg';
import { esc } from './escape';
import type { NemesisInterval, Outcome, TimedOp } from './ops';

export const OUTCOME_COLORS: Record<Outcome, string> = { ok: '#2ca02c', fail: '#d62728', info: '#ff7f0e' };

/** A scatter of more points than this is thinned (every n-th point of each outcome) to keep the file small. */
export const MAX_POINTS = 20_000;

interface Frame {
  width: number;
  height: number;
  left: number;
  top: number;
  plotW: number;
  plotH: number;
  /** seconds since the start of the history -> x pixel */
  x: (s: number) => number;
  y: (v: number) => number;
}

const MARGIN = { left: 70, right: 150, top: 36, bottom: 46 };

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  if (a >= 1) return String(+v.toPrecision(4));
  return String(+v.toPrecision(2));
}

function linearTicks(lo: number, hi: number, n = 6): number[] {
  if (!(hi > lo)) hi = lo + 1;
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9 && out.length < 50; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** The smallest tick of linearTicks(0, v) at or above v: the top of an axis that must hold v. */
function niceCeil(v: number): number {
  const ticks = linearTicks(0, v, 5);
  const step = ticks.length > 1 ? (ticks[1] as number) - (ticks[0] as number) : v;
  return Math.ceil(v / step - 1e-9) * step;
}

function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

/** The axes, grid, labels and nemesis shading of a plot over the run's time; returns the frame and the SVG so far. */
function openFrame(o: {
  title: string;
  yLabel: string;
  durationS: number;
  yRange: [number, number];
  yLog: boolean;
  intervals: readonly NemesisInterval[];
  startNs: number;
}): { frame: Frame; parts: string[] } {
  const width = 900;
  const height = 360;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const x1 = o.durationS > 0 ? o.durationS : 1;
  const [y0, y1] = o.yRange;
  const x = (s: number): number => MARGIN.left + (s / x1) * plotW;
  const y = o.yLog
    ? (v: number): number => MARGIN.top + plotH - ((Math.log10(v) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * plotH
    : (v: number): number => MARGIN.top + plotH - ((v - y0) / (y1 - y0 || 1)) * plotH;
  const frame: Frame = { width, height, left: MARGIN.left, top: MARGIN.top, plotW, plotH, x, y };
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="20" text-anchor="middle" font-size="14">${esc(o.title)}</text>`);
  parts.push(nemesisShading(frame, o.intervals, o.startNs, x1));
  for (const v of linearTicks(0, x1)) {
    const px = x(v).toFixed(1);
    parts.push(`<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${MARGIN.top + plotH}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${px}" y="${MARGIN.top + plotH + 15}" text-anchor="middle">${fmt(v)}</text>`);
  }
  for (const v of o.yLog ? logTicks(y0, y1) : linearTicks(y0, y1, 5)) {
    const py = y(v).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" y1="${py}" x2="${MARGIN.left + plotW}" y2="${py}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${fmt(v)}</text>`);
  }
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`);
  parts.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 10}" text-anchor="middle">time since start (s)</text>`);
  const my = MARGIN.top + plotH / 2;
  parts.push(`<text x="16" y="${my}" text-anchor="middle" transform="rotate(-90 16 ${my})">${esc(o.yLabel)}</text>`);
  return { frame, parts };
}

/** Colour of a nemesis kind: stable per kind, so that the same fault looks the same in every plot. */
export function nemesisColor(kind: string): string {
  let h = 0;
  for (let i = 0; i < kind.length; i++) h = (h * 31 + kind.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length] ?? '#888';
}

/** One shaded rectangle per fault interval (class "nemesis"), with its kind written at the top. */
function nemesisShading(f: Frame, intervals: readonly NemesisInterval[], startNs: number, durationS: number): string {
  const out: string[] = [];
  for (const iv of intervals) {
    const s0 = Math.max(0, (iv.startNs - startNs) / 1e9);
    const s1 = Math.min(durationS, ((iv.stopNs ?? startNs + durationS * 1e9) - startNs) / 1e9);
    const x0 = f.x(s0);
    const w = Math.max(1, f.x(s1) - x0);
    const color = nemesisColor(iv.kind);
    const label = `${iv.kind} ${s0.toFixed(1)}s-${s1.toFixed(1)}s${iv.errors.length ? ' (errors)' : ''}`;
    out.push(
      `<g class="nemesis" data-kind="${esc(iv.kind)}"><title>${esc(label)}: ${esc(JSON.stringify(iv.start) ?? '')}</title>` +
        `<rect x="${x0.toFixed(1)}" y="${f.top}" width="${w.toFixed(1)}" height="${f.plotH}" fill="${color}" fill-opacity="0.15"/>` +
        `<text x="${(x0 + 2).toFixed(1)}" y="${f.top + 11}" fill="${color}" font-size="10">${esc(iv.kind)}</text></g>`,
    );
  }
  return out.join('\n');
}

function legend(f: Frame, items: { label: string; color: string }[]): string {
  const lx = f.left + f.plotW + 14;
  return items
    .map((it, i) => {
      const ly = f.top + 10 + i * 16;
      return `<circle cx="${lx + 5}" cy="${ly}" r="4" fill="${it.color}"/><text x="${lx + 14}" y="${ly}" dominant-baseline="middle">${esc(it.label)}</text>`;
    })
    .join('\n');
}

export interface TimeAxis {
  startNs: number;
  durationS: number;
  intervals: readonly NemesisInterval[];
}

/**
 * Latency of every completed operation of function `f` (ms, log scale) against its invocation time, one dot
 * per operation (class "op"), coloured by outcome. Operations never completed have no latency and are left out.
 */
export function latencyChart(ops: readonly TimedOp[], f: string, axis: TimeAxis): string {
  const done = ops.filter((o) => o.f === f && o.completeNs !== undefined);
  const lat = (o: TimedOp): number => Math.max(0.01, ((o.completeNs as number) - o.invokeNs) / 1e6);
  let lo = Infinity;
  let hi = -Infinity;
  for (const o of done) {
    const l = lat(o);
    if (l < lo) lo = l;
    if (l > hi) hi = l;
  }
  if (!Number.isFinite(lo)) [lo, hi] = [1, 1000];
  const y0 = 10 ** Math.floor(Math.log10(lo));
  const y1 = 10 ** Math.max(Math.ceil(Math.log10(hi)), Math.floor(Math.log10(lo)) + 1);
  const { frame, parts } = openFrame({
    title: `latency of ${f} (${done.length} completed)`,
    yLabel: 'latency (ms)',
    durationS: axis.durationS,
    yRange: [y0, y1],
    yLog: true,
    intervals: axis.intervals,
    startNs: axis.startNs,
  });
  const stride = Math.max(1, Math.ceil(done.length / MAX_POINTS));
  const counts: Record<Outcome, number> = { ok: 0, fail: 0, info: 0 };
  for (const o of done) {
    // thinned per outcome, so that rare fails and infos are never the ones dropped
    if (counts[o.outcome]++ % stride !== 0 && o.outcome === 'ok') continue;
    const cx = frame.x((o.invokeNs - axis.startNs) / 1e9).toFixed(1);
    const cy = frame.y(lat(o)).toFixed(1);
    parts.push(`<circle class="op ${o.outcome}" cx="${cx}" cy="${cy}" r="1.8" fill="${OUTCOME_COLORS[o.outcome]}"/>`);
  }
  parts.push(legend(frame, (['ok', 'fail', 'info'] as const).map((k) => ({ label: `${k} (${counts[k]})`, color: OUTCOME_COLORS[k] }))));
  if (stride > 1) parts.push(`<text x="${frame.left}" y="${frame.height - 26}" font-size="10">ok operations thinned: every ${stride}th shown</text>`);
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** Completions per second of each outcome (all functions), one line per outcome, over the run's time. */
export function throughputChart(ops: readonly TimedOp[], axis: TimeAxis): string {
  const seconds = Math.max(1, Math.ceil(axis.durationS));
  const buckets: Record<Outcome, number[]> = {
    ok: new Array<number>(seconds).fill(0),
    fail: new Array<number>(seconds).fill(0),
    info: new Array<number>(seconds).fill(0),
  };
  for (const o of ops) {
    if (o.completeNs === undefined) continue;
    const b = Math.min(seconds - 1, Math.max(0, Math.floor((o.completeNs - axis.startNs) / 1e9)));
    buckets[o.outcome][b]!++;
  }
  const peak = Math.max(1, ...buckets.ok, ...buckets.fail, ...buckets.info);
  const { frame, parts } = openFrame({
    title: 'throughput (completions per second)',
    yLabel: 'operations / s',
    durationS: axis.durationS,
    yRange: [0, niceCeil(peak)],
    yLog: false,
    intervals: axis.intervals,
    startNs: axis.startNs,
  });
  for (const k of ['ok', 'fail', 'info'] as const) {
    const pts = buckets[k].map((n, i) => `${frame.x(Math.min(axis.durationS, i + 0.5)).toFixed(1)},${frame.y(n).toFixed(1)}`);
    parts.push(`<polyline class="rate ${k}" points="${pts.join(' ')}" fill="none" stroke="${OUTCOME_COLORS[k]}" stroke-width="1.5"/>`);
  }
  parts.push(legend(frame, (['ok', 'fail', 'info'] as const).map((k) => ({ label: k, color: OUTCOME_COLORS[k] }))));
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
