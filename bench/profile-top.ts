// The top functions of a V8 CPU profile by self time, and by package/file: where a member's time goes.
//
// Usage: node dist-bench/bench/profile-top.js FILE.cpuprofile [--top 30]
// (profiles from `npm run bench -- --cpu-prof DIR`).

import fs from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

function where(url: string): string {
  if (url === '') return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith('node:')) return url;
  const d = url.indexOf('/dist/');
  return d >= 0 ? url.slice(d + 1) : url.split('/').slice(-2).join('/');
}

function main(): void {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: node dist-bench/bench/profile-top.js FILE.cpuprofile [--top N]');
    process.exit(2);
  }
  const ti = process.argv.indexOf('--top');
  const top = ti > 0 ? Number(process.argv[ti + 1]) : 30;
  const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfByNode = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    selfByNode.set(p.samples[i], (selfByNode.get(p.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const byFn = new Map<string, number>();
  const byFile = new Map<string, number>();
  let idle = 0;
  for (const [id, t] of selfByNode) {
    const n = byId.get(id);
    if (!n) continue;
    const f = n.callFrame;
    if (f.functionName === '(idle)') {
      idle += t;
      continue;
    }
    const key = `${f.functionName || '(anonymous)'}  ${where(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    byFn.set(key, (byFn.get(key) ?? 0) + t);
    byFile.set(where(f.url), (byFile.get(where(f.url)) ?? 0) + t);
  }
  const busy = total - idle;
  const pct = (t: number): string => `${((100 * t) / busy).toFixed(1).padStart(5)}%`;
  console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled, ${((100 * busy) / total).toFixed(0)}% busy; shares of the busy time:`);
  console.log('\nby function (self time):');
  for (const [k, t] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
  console.log('\nby package / file (self time):');
  for (const [k, t] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
  console.log('\nby Keel file on the stack (inclusive: time spent in it or in what it called):');
  for (const [k, t] of [...inclusiveByKeelFile(p, byId, selfByNode)].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${pct(t)}  ${k}`);
  }
}

/** Time of the samples whose stack holds a function of each dist/ file (each file counted once per sample). */
function inclusiveByKeelFile(p: Profile, byId: Map<number, ProfileNode>, selfByNode: Map<number, number>): Map<string, number> {
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const out = new Map<string, number>();
  for (const [id, t] of selfByNode) {
    const files = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const url = byId.get(cur)?.callFrame.url ?? '';
      if (url.includes('/dist/')) files.add(where(url));
    }
    for (const f of files) out.set(f, (out.get(f) ?? 0) + t);
  }
  return out;
}

main();
