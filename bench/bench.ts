// npm run bench -- [options]: consensus throughput and latency, Keel side by side with etcd in one run, with
// one load generator (this process) driving both. See `npm run bench -- --help` and the README.
//
// For each cluster size (--nodes) it starts the systems (--system keel,etcd: Keel by `keel cluster up`, etcd
// from the `etcd` binary on PATH, both in temporary dirs on free loopback ports) or takes running ones
// (--endpoints / --keel-endpoints / --etcd-endpoints), then runs every workload × concurrency cell on every
// target in turn (Keel through etcd's gRPC API, Keel through its native stream client, etcd through gRPC),
// so that the systems see the same machine at nearly the same time. `--workload core` measures the Raft
// core alone, in this process.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import yargs from 'yargs/yargs';
import { GrpcConn, NativeConn, repoRoot, type BenchConn } from './lib/clients';
import { fsyncRate, startLocalCluster, waitLeader, type LocalCluster } from './lib/common';
import { runCore } from './lib/core';
import { etcdVersion, findEtcd, startEtcdCluster, type EtcdCluster } from './lib/etcd-cluster';
import { runLoad, preload, WORKLOADS, type LoadOptions, type ServerProcess, type Workload } from './lib/load';
import { pidListeningOn } from './lib/procstat';
import {
  failedRecord,
  makeRecord,
  ratios,
  ratiosTable,
  runsTable,
  saveResults,
  withCdf,
  type Machine,
  type RunRecord,
  type SavedRun,
} from './lib/report';

type System = 'keel' | 'etcd';

interface Options {
  systems: System[];
  workloads: Workload[];
  nodes: number[];
  concurrency: number[];
  connections: number;
  durationSec: number;
  ops?: number;
  warmupSec: number;
  keys: number;
  keySize: number;
  valueSize: number;
  readRatio: number;
  watchers: number;
  clients: ('grpc' | 'native')[];
  endpoints: Partial<Record<System, string[]>>;
  json: boolean;
  compare: boolean;
  save: boolean;
  resultsDir: string;
  label?: string;
  cpuProf?: string;
  requestTimeoutMs: number;
}

function list(s: string, what: string): string[] {
  const out = s.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (out.length === 0) throw new Error(`--${what}: empty list`);
  return out;
}

function numbers(s: string, what: string): number[] {
  return list(s, what).map((x) => {
    const n = Number(x);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${what}: "${x}" is not a positive integer`);
    return n;
  });
}

function oneOf<T extends string>(values: string[], allowed: readonly T[], what: string): T[] {
  for (const v of values) {
    if (!(allowed as readonly string[]).includes(v)) throw new Error(`--${what}: "${v}" is not one of ${allowed.join(', ')}`);
  }
  return values as T[];
}

function parseOptions(argv: string[]): Options {
  const etcdOnPath = findEtcd() !== undefined;
  const a = yargs(argv)
    .scriptName('npm run bench --')
    .usage('$0 [options]\n\nKeel side by side with etcd, one load generator, one run.')
    .option('system', { type: 'string', default: etcdOnPath ? 'keel,etcd' : 'keel', describe: 'systems to measure: keel, etcd' })
    .option('workload', { type: 'string', default: 'put,get', describe: `workloads: ${WORKLOADS.join(', ')}` })
    .option('nodes', { type: 'string', default: '3', describe: 'cluster sizes, e.g. 1,3,5,7' })
    .option('concurrency', { type: 'string', default: '1,16,64,256', describe: 'logical clients, each with one request in flight' })
    .option('connections', { type: 'number', default: 1, describe: 'connections per member' })
    .option('duration', { type: 'number', default: 10, describe: 'seconds measured per run (after the warm-up)' })
    .option('ops', { type: 'number', describe: 'measure this many operations per run instead of --duration' })
    .option('warmup', { type: 'number', default: 1, describe: 'seconds of load before each run, not counted' })
    .option('keys', { type: 'number', default: 100000, describe: 'key space (preloaded before read workloads)' })
    .option('key-size', { type: 'number', default: 8 })
    .option('value-size', { type: 'number', default: 256 })
    .option('read-ratio', { type: 'number', default: 0.9, describe: 'mixed: fraction of linearizable gets' })
    .option('watchers', { type: 'number', default: 16, describe: 'watch: watchers on the prefix' })
    .option('client', { type: 'string', default: 'grpc,native', describe: "Keel's clients: grpc (etcd's API), native (stream)" })
    .option('endpoints', { type: 'string', describe: 'client URLs of a running cluster (with one --system)' })
    .option('keel-endpoints', { type: 'string', describe: 'client URLs of a running Keel cluster' })
    .option('etcd-endpoints', { type: 'string', describe: 'client URLs of a running etcd cluster' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON object on stdout (progress and table on stderr)' })
    .option('compare', { type: 'boolean', default: false, describe: 'print Keel/etcd ratios' })
    .option('save', { type: 'boolean', default: true, describe: 'write results under --results-dir (--no-save: do not)' })
    .option('results-dir', { type: 'string', describe: 'default: bench/results' })
    .option('label', { type: 'string', describe: 'appended to the results dir name' })
    .option('cpu-prof', { type: 'string', describe: "profile Keel's members (V8 sampling profiler); DIR/<member>-<pid>.cpuprofile written when each cluster stops" })
    .option('request-timeout', { type: 'number', default: 10000, describe: 'ms per request' })
    .strict()
    .version(false)
    .help()
    .parseSync();
  const endpoints: Partial<Record<System, string[]>> = {};
  const systems = oneOf(list(a.system, 'system'), ['keel', 'etcd'] as const, 'system');
  if (a.endpoints) {
    if (systems.length !== 1) throw new Error('--endpoints needs exactly one --system (or use --keel-endpoints / --etcd-endpoints)');
    endpoints[systems[0]] = list(a.endpoints, 'endpoints');
  }
  if (a['keel-endpoints']) endpoints.keel = list(a['keel-endpoints'], 'keel-endpoints');
  if (a['etcd-endpoints']) endpoints.etcd = list(a['etcd-endpoints'], 'etcd-endpoints');
  for (const [k, v] of [['duration', a.duration], ['warmup', a.warmup], ['read-ratio', a['read-ratio']]] as const) {
    if (!Number.isFinite(v) || v < 0) throw new Error(`--${k}: must be a number >= 0`);
  }
  if (a['read-ratio'] > 1) throw new Error('--read-ratio: must be within [0, 1]');
  for (const [k, v] of [['connections', a.connections], ['keys', a.keys], ['key-size', a['key-size']], ['watchers', a.watchers], ['request-timeout', a['request-timeout']]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`--${k}: must be a positive integer`);
  }
  if (!Number.isInteger(a['value-size']) || a['value-size'] < 8) throw new Error('--value-size: must be an integer >= 8');
  if (a.ops !== undefined && (!Number.isInteger(a.ops) || a.ops < 1)) throw new Error('--ops: must be a positive integer');
  return {
    systems,
    workloads: oneOf(list(a.workload, 'workload'), WORKLOADS, 'workload'),
    nodes: numbers(a.nodes, 'nodes'),
    concurrency: numbers(a.concurrency, 'concurrency'),
    connections: a.connections,
    durationSec: a.duration,
    ops: a.ops,
    warmupSec: a.warmup,
    keys: a.keys,
    keySize: a['key-size'],
    valueSize: a['value-size'],
    readRatio: a['read-ratio'],
    watchers: a.watchers,
    clients: oneOf(list(a.client, 'client'), ['grpc', 'native'] as const, 'client'),
    endpoints,
    json: a.json,
    compare: a.compare,
    save: a.save,
    resultsDir: a['results-dir'] ?? path.join(repoRoot(), 'bench', 'results'),
    label: a.label,
    cpuProf: a['cpu-prof'],
    requestTimeoutMs: a['request-timeout'],
  };
}

// ---- processes to clean up, also on Ctrl-C and errors ------------------------------------------------------

const running = new Set<{ kill(): void }>();
let exiting = false;

function installSignalHandlers(): void {
  const onSignal = (sig: NodeJS.Signals): void => {
    if (exiting) return;
    exiting = true;
    process.stderr.write(`\nbench: ${sig}: stopping the clusters\n`);
    for (const c of running) c.kill();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => {
    for (const c of running) c.kill();
  });
}

// ---- one cluster size ----------------------------------------------------------------------------------------

interface Target {
  system: System;
  client: 'grpc' | 'native';
  conns: BenchConn[];
  servers: ServerProcess[];
}

interface SystemUnderTest {
  system: System;
  members: ServerProcess[];
  stop(): Promise<void>;
}

const log = (line: string): void => {
  process.stderr.write(line + '\n');
};

async function startSystem(system: System, nodes: number, o: Options): Promise<SystemUnderTest> {
  const given = o.endpoints[system];
  if (given) {
    const members = given.map((u, i) => ({ name: `${system}${i + 1}`, clientUrl: u, pid: pidOf(u) }));
    const unknown = members.filter((m) => m.pid === undefined).map((m) => m.clientUrl);
    if (unknown.length > 0) log(`bench: no local process found listening on ${unknown.join(', ')}: its CPU is not reported`);
    return { system, members, stop: async () => undefined };
  }
  if (system === 'keel') {
    let env: NodeJS.ProcessEnv | undefined;
    if (o.cpuProf) {
      fs.mkdirSync(o.cpuProf, { recursive: true });
      const preload = path.join(__dirname, 'lib', 'cpu-prof-preload.js');
      env = {
        ...process.env,
        NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${preload}`.trim(),
        KEEL_BENCH_CPU_PROF_DIR: path.resolve(o.cpuProf),
      };
    }
    const c: LocalCluster = await startLocalCluster(nodes, env);
    running.add(c);
    const leader = await waitLeader(c.cf, new Set(), 20_000);
    log(`bench: keel: leader ${leader}${o.cpuProf ? `; CPU profiles go to ${path.resolve(o.cpuProf)}/<member>-<pid>.cpuprofile when the cluster stops` : ''}`);
    return {
      system,
      members: c.cf.members.map((m) => ({ name: m.name, clientUrl: m.clientUrl, pid: m.pid ?? undefined })),
      stop: async () => {
        c.stop();
        running.delete(c);
      },
    };
  }
  const e: EtcdCluster = await startEtcdCluster(nodes);
  running.add(e);
  return {
    system,
    members: e.members.map((m) => ({ name: m.name, clientUrl: m.clientUrl, pid: m.pid })),
    stop: async () => {
      await e.stop();
      running.delete(e);
    },
  };
}

function pidOf(url: string): number | undefined {
  const u = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return undefined;
  return pidListeningOn(Number(u.port));
}

async function openTargets(sut: SystemUnderTest, o: Options, notes: string[]): Promise<Target[]> {
  const urls = sut.members.map((m) => m.clientUrl);
  const targets: Target[] = [];
  // Connections round-robin over the members: for c in connections, for m in members.
  const order: string[] = [];
  for (let c = 0; c < o.connections; c++) order.push(...urls);
  const wantGrpc = sut.system === 'etcd' || o.clients.includes('grpc');
  if (wantGrpc) {
    const conns = order.map((u) => new GrpcConn(u, o.requestTimeoutMs));
    const problem = await conns[0].probe();
    if (problem === undefined) {
      targets.push({ system: sut.system, client: 'grpc', conns, servers: sut.members });
    } else {
      for (const c of conns) await c.close();
      const note = `${sut.system} does not answer etcd's gRPC API on ${urls[0]} (${problem}): no ${sut.system} grpc rows`;
      log(`bench: ${note}`);
      if (!notes.includes(note)) notes.push(note);
      if (sut.system === 'etcd') throw new Error(note);
    }
  }
  if (sut.system === 'keel' && o.clients.includes('native')) {
    const conns = order.map((u) => new NativeConn([u, ...urls.filter((x) => x !== u)], o.requestTimeoutMs));
    targets.push({ system: 'keel', client: 'native', conns, servers: sut.members });
  }
  return targets;
}

const READ_WORKLOADS = new Set<Workload>(['get', 'sget', 'mixed']);

async function runClusterSize(nodes: number, o: Options, records: SavedRun[], notes: string[], print: (r: RunRecord) => void): Promise<void> {
  const suts: SystemUnderTest[] = [];
  const targets: Target[] = [];
  try {
    for (const s of o.systems) {
      log(`bench: starting ${s}, ${nodes} member${nodes > 1 ? 's' : ''}${o.endpoints[s] ? ' (given endpoints)' : ''}`);
      const sut = await startSystem(s, nodes, o);
      suts.push(sut);
      targets.push(...(await openTargets(sut, o, notes)));
    }
    const preloaded = new Set<System>();
    let cell = 0;
    for (const workload of o.workloads) {
      if (workload === 'core') continue;
      if (READ_WORKLOADS.has(workload)) {
        for (const s of o.systems) {
          const t = targets.find((x) => x.system === s);
          if (!t || preloaded.has(s)) continue;
          const secs = await preload(t.conns, o);
          preloaded.add(s);
          log(`bench: ${s}: ${o.keys} keys preloaded in ${secs.toFixed(1)} s (${t.client})`);
        }
      }
      for (const concurrency of o.concurrency) {
        // The targets take turns going first, so that none always runs right after another's load (a
        // snapshot or compaction it triggered, a warm cache).
        const turn = cell++ % Math.max(1, targets.length);
        for (const t of [...targets.slice(turn), ...targets.slice(0, turn)]) {
          const base = { system: t.system, client: t.client, nodes: t.servers.length, workload, concurrency, connections: o.connections };
          const lo: LoadOptions = {
            workload: workload as LoadOptions['workload'],
            concurrency,
            warmupSec: o.warmupSec,
            durationSec: o.durationSec,
            ops: o.ops,
            keys: o.keys,
            keySize: o.keySize,
            valueSize: o.valueSize,
            readRatio: o.readRatio,
            watchers: o.watchers,
            requestTimeoutMs: o.requestTimeoutMs,
          };
          let rec: SavedRun;
          try {
            const r = await runLoad(t.conns, t.servers, lo);
            rec = withCdf(makeRecord(base, r), r.hist);
          } catch (err) {
            rec = failedRecord(base, (err as Error).message);
          }
          records.push(rec);
          print(rec);
        }
      }
    }
  } finally {
    for (const t of targets) for (const c of t.conns) await c.close().catch(() => undefined);
    for (const s of suts) await s.stop().catch((err: Error) => log(`bench: stopping ${s.system}: ${err.message}`));
  }
}

function runCoreCells(o: Options, records: SavedRun[], print: (r: RunRecord) => void): void {
  for (const nodes of o.nodes) {
    for (const concurrency of o.concurrency) {
      const r = runCore({ members: nodes, concurrency, valueSize: o.valueSize, warmupSec: o.warmupSec, durationSec: o.durationSec, ops: o.ops });
      const rec = withCdf(
        makeRecord(
          { system: 'keel', client: 'core', nodes, workload: 'core', concurrency, connections: 0 },
          {
            ops: r.ops,
            errors: 0,
            secs: r.secs,
            hist: r.hist,
            cpu: { generator: r.cpuPercent, servers: {}, serverTotal: 0, generatorUsPerOp: r.cpuUsPerOp, serverUsPerOp: null },
            fsyncs: null,
            extra: { leaderReadiesPerEntry: Math.round(r.readiesPerOp * 1000) / 1000 },
          },
        ),
        r.hist,
      );
      records.push(rec);
      print(rec);
    }
  }
}

function machineInfo(): Machine {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-fsync-'));
  try {
    return {
      cores: os.cpus().length,
      node: process.version,
      etcdVersion: etcdVersion() ?? null,
      fsyncPerSec: Math.round(fsyncRate(dir, 500)),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function stamp(d: Date): string {
  return d.toISOString().slice(0, 19).replace(/:/g, '-');
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  installSignalHandlers();
  const machine = machineInfo();
  const started = new Date();
  const records: SavedRun[] = [];
  const notes: string[] = [];
  const print = (r: RunRecord): void => {
    const lat = r.latencyMs;
    log(
      `bench: ${r.system}/${r.client} n=${r.nodes} ${r.workload} c=${r.concurrency}: ` +
        (r.failed
          ? `FAILED (${r.errors} errors${r.error ? `: ${r.error}` : ''})`
          : `${r.opsPerSec} ops/s, p50 ${lat?.p50} p99 ${lat?.p99} ms, server CPU ${r.cpu.serverTotal}%, generator ${r.cpu.generator}%`),
    );
  };
  log(`bench: ${machine.cores} cores, Node ${machine.node}, etcd ${machine.etcdVersion ?? 'not on PATH'}, fdatasync ${machine.fsyncPerSec}/s`);

  if (o.systems.includes('etcd') && !o.endpoints.etcd && !findEtcd()) {
    throw new Error('--system etcd: the etcd binary is not on PATH (Debian: apt-get install etcd-server), and no --etcd-endpoints given');
  }
  if (o.workloads.includes('core')) runCoreCells(o, records, print);
  if (o.workloads.some((w) => w !== 'core')) {
    const sizes = o.endpoints.keel || o.endpoints.etcd ? [0] : o.nodes;
    if (sizes[0] === 0 && o.nodes.length > 1) log('bench: --endpoints given: --nodes is ignored');
    for (const n of sizes) await runClusterSize(n || (o.endpoints.keel ?? o.endpoints.etcd ?? []).length, o, records, notes, print);
  }
  if (o.workloads.some((w) => w === 'get' || w === 'sget' || w === 'mixed') && o.systems.includes('etcd')) {
    notes.push('Reads ran on clusters that only had the preload and puts written (no large deletes: etcd 3.4\'s read slowdown after them does not apply).');
  }

  // Reported in a fixed order (they ran with the targets taking turns).
  const order = (r: RunRecord): number[] => [
    r.nodes,
    o.workloads.indexOf(r.workload as Workload),
    r.concurrency,
    ['keel/core', 'keel/grpc', 'keel/native', 'etcd/grpc'].indexOf(`${r.system}/${r.client}`),
  ];
  records.sort((a, b) => {
    const x = order(a);
    const y = order(b);
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
    return 0;
  });
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim();
  const table = runsTable(records);
  const rs = ratios(records);
  const out = o.json ? (s: string): void => void process.stderr.write(s + '\n') : (s: string): void => void process.stdout.write(s + '\n');
  out('');
  out(table);
  for (const n of notes) out(`note: ${n}`);
  if (o.compare) {
    out('');
    out(rs.length > 0 ? `Keel / etcd, same run, same load generator:\n${ratiosTable(rs)}` : 'Keel / etcd: nothing to compare (need both systems)');
  }
  if (o.save && records.length > 0) {
    const dir = path.join(o.resultsDir, stamp(started) + (o.label ? `-${o.label.replace(/[^\w.-]+/g, '_')}` : ''));
    const saved = saveResults(dir, path.join(o.resultsDir, 'index.md'), { machine, command, date: started.toISOString(), notes }, records);
    log(`bench: results in ${path.relative(process.cwd(), saved.dir) || saved.dir}: ${saved.files.join(', ')}`);
  }
  if (o.json) {
    const runs = records.map(({ cdf: _cdf, ...r }) => r);
    process.stdout.write(JSON.stringify({ machine, runs, ...(o.compare ? { ratios: rs } : {}) }, null, 1) + '\n');
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    log(`bench: ${err.stack ?? err.message}`);
    for (const c of running) c.kill();
    process.exit(1);
  },
);
