// What a benchmark run reports: the records (one per system × client × nodes × workload × concurrency),
// the terminal table, the Markdown page, the Keel/etcd ratios and the SVG charts.

import fs from 'node:fs';
import path from 'node:path';
import { cdfPoints, type Histogram } from './histogram';
import type { CpuFigures } from './procstat';
import { lineChart, PALETTE, type Series } from './svg';

export interface Machine {
  cores: number;
  node: string;
  etcdVersion: string | null;
  /** 400-byte write + fdatasync per second in the temporary dir where the clusters run. */
  fsyncPerSec: number;
}

export interface LatencyMs {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

export interface RunRecord {
  system: 'keel' | 'etcd';
  /** grpc: etcd's gRPC API through @grpc/grpc-js; native: Keel's stream client; core: the Raft core alone. */
  client: 'grpc' | 'native' | 'core';
  nodes: number;
  workload: string;
  concurrency: number;
  /** Operations completed in the measured window (watch: events delivered to the watchers). */
  ops: number;
  /** null when the run failed. */
  opsPerSec: number | null;
  latencyMs: LatencyMs | null;
  errors: number;
  cpu: CpuFigures;
  // ---- beyond the shape ----
  failed: boolean;
  /** Why it failed, or the first error of a run that had some. */
  error?: string;
  connections: number;
  durationSec: number;
  /** WAL fsyncs of all members per operation (null: unknown). */
  fsyncsPerOp: number | null;
  extra?: Record<string, number>;
}

/** More than this fraction of failed requests and a run is reported as failed. */
export const MAX_ERROR_RATE = 0.001;

const r2 = (x: number): number => Math.round(x * 100) / 100;

export function latencyOf(h: Histogram): LatencyMs {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
  };
}

/** A record from a measured run; failed if errors are above MAX_ERROR_RATE of the requests. */
export function makeRecord(
  base: Pick<RunRecord, 'system' | 'client' | 'nodes' | 'workload' | 'concurrency' | 'connections'>,
  m: { ops: number; errors: number; secs: number; hist: Histogram; cpu: CpuFigures; fsyncs: number | null; firstError?: string; extra?: Record<string, number> },
): RunRecord {
  const total = m.ops + m.errors;
  const failed = total === 0 || m.errors / total > MAX_ERROR_RATE;
  return {
    system: base.system,
    client: base.client,
    nodes: base.nodes,
    workload: base.workload,
    concurrency: base.concurrency,
    ops: m.ops,
    opsPerSec: failed ? null : Math.round(m.ops / m.secs),
    latencyMs: failed ? null : latencyOf(m.hist),
    errors: m.errors,
    cpu: m.cpu,
    failed,
    connections: base.connections,
    ...(m.firstError !== undefined || total === 0 ? { error: m.firstError ?? 'no operation completed' } : {}),
    durationSec: r2(m.secs),
    fsyncsPerOp: m.fsyncs === null || m.ops === 0 ? null : Math.round((1000 * m.fsyncs) / m.ops) / 1000,
    ...(m.extra && Object.keys(m.extra).length > 0 ? { extra: m.extra } : {}),
  };
}

/** A run that could not be measured at all (setup failed, cluster gone). */
export function failedRecord(
  base: Pick<RunRecord, 'system' | 'client' | 'nodes' | 'workload' | 'concurrency' | 'connections'>,
  error: string,
): RunRecord {
  return {
    system: base.system,
    client: base.client,
    nodes: base.nodes,
    workload: base.workload,
    concurrency: base.concurrency,
    ops: 0,
    opsPerSec: null,
    latencyMs: null,
    errors: 0,
    cpu: { generator: 0, servers: {}, serverTotal: 0, generatorUsPerOp: null, serverUsPerOp: null },
    failed: true,
    connections: base.connections,
    error,
    durationSec: 0,
    fsyncsPerOp: null,
  };
}

// ---- tables ---------------------------------------------------------------------------------------------

const HEADERS = ['system', 'client', 'nodes', 'workload', 'c', 'ops/s', 'p50', 'p90', 'p99', 'p99.9', 'max ms', 'errors', 'server CPU%', 'gen CPU%', 'server µs/op', 'gen µs/op', 'fsync/op'];

function n0(x: number | null | undefined): string {
  return x === null || x === undefined ? '–' : Math.round(x).toLocaleString('en-US');
}

function n2(x: number | null | undefined): string {
  if (x === null || x === undefined) return '–';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 0.1 || x === 0 ? x.toFixed(2) : x.toFixed(3);
}

export function rowOf(r: RunRecord): string[] {
  const l = r.latencyMs;
  const ops = r.failed ? `FAILED (${r.errors} err)` : n0(r.opsPerSec);
  return [
    r.system,
    r.client,
    String(r.nodes),
    r.workload,
    String(r.concurrency),
    ops,
    n2(l?.p50),
    n2(l?.p90),
    n2(l?.p99),
    n2(l?.p999),
    n2(l?.max),
    String(r.errors),
    r.client === 'core' ? '–' : n0(r.cpu.serverTotal),
    n0(r.cpu.generator),
    n0(r.cpu.serverUsPerOp),
    n0(r.cpu.generatorUsPerOp),
    n2(r.fsyncsPerOp),
  ];
}

const RIGHT = new Set([2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);

export function textTable(headers: string[], rows: string[][], right = RIGHT): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (right.has(i) ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  return [line(headers), w.map((x) => '-'.repeat(x)).join('  '), ...rows.map(line)].join('\n');
}

export function mdTable(headers: string[], rows: string[][], right = RIGHT): string {
  const sep = headers.map((_h, i) => (right.has(i) ? '---:' : '---'));
  return [headers, sep, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

export function runsTable(runs: RunRecord[]): string {
  return textTable(HEADERS, runs.map(rowOf));
}

// ---- Keel / etcd ----------------------------------------------------------------------------------------

export interface Ratio {
  nodes: number;
  workload: string;
  concurrency: number;
  client: 'grpc' | 'native';
  /** Keel's ops/s over etcd's (> 1: Keel faster). */
  throughput: number | null;
  /** Keel's p99 over etcd's (< 1: Keel better). */
  p99: number | null;
  /** Keel's server CPU per op over etcd's (< 1: Keel cheaper). */
  serverCpuPerOp: number | null;
}

export function ratios(runs: RunRecord[]): Ratio[] {
  const out: Ratio[] = [];
  const div = (a: number | null | undefined, b: number | null | undefined): number | null =>
    a === null || a === undefined || b === null || b === undefined || b === 0 ? null : Math.round((100 * a) / b) / 100;
  for (const e of runs.filter((r) => r.system === 'etcd')) {
    for (const k of runs.filter(
      (r) => r.system === 'keel' && r.client !== 'core' && r.nodes === e.nodes && r.workload === e.workload && r.concurrency === e.concurrency,
    )) {
      out.push({
        nodes: e.nodes,
        workload: e.workload,
        concurrency: e.concurrency,
        client: k.client as 'grpc' | 'native',
        throughput: k.failed || e.failed ? null : div(k.opsPerSec, e.opsPerSec),
        p99: k.failed || e.failed ? null : div(k.latencyMs?.p99, e.latencyMs?.p99),
        serverCpuPerOp: div(k.cpu.serverUsPerOp, e.cpu.serverUsPerOp),
      });
    }
  }
  return out;
}

const RATIO_HEADERS = ['nodes', 'workload', 'c', 'Keel client', 'ops/s Keel/etcd', 'p99 Keel/etcd', 'server CPU/op Keel/etcd'];

function ratioRows(rs: Ratio[]): string[][] {
  const f = (x: number | null): string => (x === null ? '–' : x.toFixed(2));
  return rs.map((r) => [String(r.nodes), r.workload, String(r.concurrency), r.client, f(r.throughput), f(r.p99), f(r.serverCpuPerOp)]);
}

export function ratiosTable(rs: Ratio[]): string {
  return textTable(RATIO_HEADERS, ratioRows(rs), new Set([0, 2, 4, 5, 6]));
}

// ---- files ----------------------------------------------------------------------------------------------

export interface SavedRun extends RunRecord {
  /** (latency ms, fraction) points of the latency CDF. */
  cdf?: [number, number][];
}

export interface ResultFiles {
  dir: string;
  files: string[];
}

function seriesName(r: RunRecord): string {
  return r.client === 'core' ? 'core (in-memory)' : `${r.system} (${r.client})`;
}

const SYSTEM_COLORS: Record<string, string> = {
  'etcd (grpc)': PALETTE[1],
  'keel (grpc)': PALETTE[0],
  'keel (native)': PALETTE[2],
  'core (in-memory)': PALETTE[4],
};

/** Writes results.json, results.md and the charts into `dir` (created), and a line in `index`. */
export function saveResults(
  dir: string,
  index: string,
  header: { machine: Machine; command: string; date: string; notes: string[] },
  runs: SavedRun[],
): ResultFiles {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  const write = (name: string, text: string): void => {
    fs.writeFileSync(path.join(dir, name), text);
    files.push(name);
  };
  write('results.json', JSON.stringify({ date: header.date, command: header.command, machine: header.machine, notes: header.notes, runs }, null, 1) + '\n');

  const charts: string[] = [];
  const groups = new Map<string, SavedRun[]>();
  for (const r of runs) {
    const k = `${r.workload}-n${r.nodes}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  for (const [k, rs] of groups) {
    const names = [...new Set(rs.map(seriesName))];
    const concs = [...new Set(rs.map((r) => r.concurrency))].sort((a, b) => a - b);
    if (concs.length > 1) {
      const series: Series[] = names.map((name) => ({
        name,
        color: SYSTEM_COLORS[name],
        points: rs
          .filter((r) => seriesName(r) === name && !r.failed && r.opsPerSec !== null)
          .sort((a, b) => a.concurrency - b.concurrency)
          .map((r) => [r.concurrency, r.opsPerSec as number]),
      }));
      const name = `throughput-${k}.svg`;
      write(name, lineChart(series, {
        title: `${rs[0].workload}, ${rs[0].nodes} member${rs[0].nodes > 1 ? 's' : ''}: throughput`,
        xLabel: 'concurrency (requests in flight)',
        yLabel: rs[0].workload === 'watch' ? 'events/s' : rs[0].workload === 'core' ? 'entries committed/s' : 'ops/s',
        xLog: true,
        xTicks: concs,
      }));
      charts.push(name);
    }
    for (const c of concs) {
      const at = rs.filter((r) => r.concurrency === c && r.cdf && r.cdf.length > 0);
      if (at.length === 0) continue;
      const series: Series[] = at.map((r) => ({ name: seriesName(r), color: SYSTEM_COLORS[seriesName(r)], points: (r.cdf as [number, number][]).map(([ms, q]) => [Math.max(ms, 0.001), q]) }));
      const name = `latency-cdf-${k}-c${c}.svg`;
      write(name, lineChart(series, {
        title: `${rs[0].workload}, ${rs[0].nodes} member${rs[0].nodes > 1 ? 's' : ''}, c=${c}: latency CDF`,
        xLabel: 'latency (ms, log scale)',
        yLabel: 'fraction of requests at or below',
        xLog: true,
      }));
      charts.push(name);
    }
  }

  const md: string[] = [];
  md.push(`# Keel benchmark, ${header.date}`, '');
  md.push(`Command: \`${header.command}\``, '');
  const m = header.machine;
  md.push(
    `Machine: ${m.cores} cores, Node ${m.node}, etcd ${m.etcdVersion ?? '(not installed)'}, ` +
      `400-byte write + fdatasync ${Math.round(m.fsyncPerSec).toLocaleString('en-US')}/s. Load generator in one process on the same machine.`,
    '',
  );
  for (const n of header.notes) md.push(`- ${n}`);
  if (header.notes.length > 0) md.push('');
  md.push('Latency in ms; CPU in % of one core, and µs per operation; fsync/op: WAL fsyncs of all members per operation.', '');
  md.push(mdTable(HEADERS, runs.map(rowOf)), '');
  const failed = runs.filter((r) => r.error);
  if (failed.length > 0) {
    md.push('Errors:', '');
    for (const r of failed) md.push(`- ${seriesName(r)}, ${r.nodes} members, ${r.workload}, c=${r.concurrency}: ${r.failed ? 'FAILED: ' : ''}${r.error}`);
    md.push('');
  }
  const rs = ratios(runs);
  if (rs.length > 0) {
    md.push('## Keel / etcd (same run, same load generator)', '');
    md.push(mdTable(RATIO_HEADERS, ratioRows(rs), new Set([0, 2, 4, 5, 6])), '');
  }
  if (charts.length > 0) {
    md.push('## Charts', '');
    for (const c of charts) md.push(`![${c}](${c})`);
    md.push('');
  }
  write('results.md', md.join('\n'));

  const summary = runs.length === 0 ? '' : ` — ${[...new Set(runs.map((r) => r.workload))].join(', ')}; nodes ${[...new Set(runs.map((r) => r.nodes))].join(', ')}; ${[...new Set(runs.map(seriesName))].join(', ')}`;
  if (!fs.existsSync(index)) fs.writeFileSync(index, '# Benchmark runs (npm run bench)\n\n');
  fs.appendFileSync(index, `- [${path.basename(dir)}](${path.relative(path.dirname(index), dir)}/results.md)${summary}\n`);
  return { dir, files };
}

export function withCdf(rec: RunRecord, h: Histogram | undefined): SavedRun {
  return rec.failed || !h ? rec : { ...rec, cdf: cdfPoints(h) };
}
