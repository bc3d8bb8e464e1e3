// Broken builds for the self-test (issue 7, "Proof that the checkers can fail"): a copy of the repository's
// dist/ whose bugs.js has one deliberate bug switched on (src/bugs.ts says which bugs exist and where Keel
// consults them). The production dist/ is only ever read; every broken build lives in its run directory.

import { cpSync, existsSync, lstatSync, mkdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { repoRoot } from '../db/keel';

/** The bugs as the CLI names them (--broken NAME), and the switch of src/bugs.ts each turns on. */
export const BUG_SWITCHES = {
  'stale-reads': 'readsWithoutReadIndex',
  'ack-before-fsync': 'ackBeforeFsync',
  'commit-by-counting': 'commitByCounting',
} as const;

export type BugName = keyof typeof BUG_SWITCHES;
export const BUG_NAMES = Object.keys(BUG_SWITCHES) as BugName[];

export function isBugName(s: string): s is BugName {
  return Object.prototype.hasOwnProperty.call(BUG_SWITCHES, s);
}

/** The repository root (above jepsen/broken/ in the sources and dist-bench/jepsen/broken/ once compiled). */
export { repoRoot };

/**
 * The text of a bugs.js with `bug` on and every other switch off. Every other export of the production
 * bugs.js (LAZY_WAL_MS, ...) is carried over with its value, so the broken build differs in the one switch.
 */
export function brokenBugsJs(productionBugsJs: string, bug: BugName): string {
  // The production module is loaded in isolation (its own exports object), not through require's cache.
  const mod: { exports: Record<string, unknown> } = { exports: {} };
  new Function('exports', 'module', 'require', productionBugsJs)(mod.exports, mod, () => {
    throw new Error('bugs.js must not require anything');
  });
  const bugs = mod.exports.BUGS;
  if (bugs === null || typeof bugs !== 'object') throw new Error('the production bugs.js exports no BUGS object');
  const flag = BUG_SWITCHES[bug];
  if (!(flag in bugs)) {
    throw new Error(`the production bugs.js has no switch ${flag} (for --broken ${bug}); it has ${Object.keys(bugs).join(', ')}`);
  }
  const switches: Record<string, boolean> = {};
  for (const k of Object.keys(bugs)) switches[k] = k === flag;
  const lines = [
    '"use strict";',
    `// A broken build for the Jepsen self-test (jepsen/broken/build.ts): ${bug} (${flag}) is switched on.`,
    'Object.defineProperty(exports, "__esModule", { value: true });',
    `exports.BUGS = Object.freeze(${JSON.stringify(switches)});`,
  ];
  for (const [k, v] of Object.entries(mod.exports)) {
    if (k === 'BUGS') continue;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) throw new Error(`bugs.js export ${k} is an object the broken build cannot copy`);
    if (typeof v === 'function') throw new Error(`bugs.js export ${k} is a function the broken build cannot copy`);
    lines.push(`exports.${k} = ${JSON.stringify(v)};`);
  }
  return lines.join('\n') + '\n';
}

/**
 * Copies the repository's dist/ to `runDir/dist-broken/dist` with `bug` switched on in its bugs.js, and
 * returns that dist directory (createCluster's keelDist). Next to the copy, links to the repository's
 * node_modules/ and proto/ and its package.json stand where the compiled code looks for them (module
 * resolution walks up from the file; the gRPC server loads ../../../proto; /version reads ../../package.json).
 */
export function prepareBrokenDist(bug: BugName, runDir: string, root = repoRoot()): string {
  if (!isBugName(bug)) throw new Error(`unknown bug ${JSON.stringify(bug)}: valid names are ${BUG_NAMES.join(', ')}`);
  const prodBugsJs = join(root, 'dist', 'bugs.js');
  if (!existsSync(prodBugsJs)) throw new Error(`${prodBugsJs} does not exist: run \`npm run build\` first`);
  // Everything below works on real paths: a dist/ reached through a symlink must still be copied, never
  // written through (a linked copy would turn the bug on in the production build).
  const src = realpathSync(join(root, 'dist'));
  const production = readFileSync(prodBugsJs, 'utf8');
  const text = brokenBugsJs(production, bug);
  const overlap = (base: string): void => {
    if (isInside(base, src) || isInside(src, base)) throw new Error(`the broken build ${base} must not overlap the production dist ${src}`);
  };
  const base = join(realPathOfNew(runDir), 'dist-broken');
  overlap(base); // before anything is created
  mkdirSync(runDir, { recursive: true });
  rmSync(base, { recursive: true, force: true });
  mkdirSync(base, { recursive: true });
  const dist = join(base, 'dist');
  cpSync(src, dist, { recursive: true, dereference: true });
  const target = join(dist, 'bugs.js');
  if (lstatSync(target).isSymbolicLink() || realpathSync(target) === realpathSync(prodBugsJs)) {
    throw new Error(`the copy ${target} is the production bugs.js: refusing to write it`);
  }
  writeFileSync(target, text);
  rmSync(join(dist, 'bugs.js.map'), { force: true });
  if (readFileSync(prodBugsJs, 'utf8') !== production) throw new Error(`BUG: preparing the broken build changed ${prodBugsJs}; rebuild with npm run build`);
  for (const name of ['node_modules', 'proto', 'package.json']) {
    const link = join(root, name);
    if (!existsSync(link)) throw new Error(`${link} does not exist: the broken build needs it next to its dist/`);
    symlinkSync(realpathSync(link), join(base, name));
  }
  return dist;
}

/** The real path `p` will have once created: its nearest existing ancestor's real path, and the rest. */
function realPathOfNew(p: string): string {
  let dir = resolve(p);
  const rest: string[] = [];
  while (!existsSync(dir)) {
    const up = dirname(dir);
    if (up === dir) break;
    rest.unshift(basename(dir));
    dir = up;
  }
  return join(realpathSync(dir), ...rest);
}

/** `inner` is `outer` or below it. */
function isInside(inner: string, outer: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !isAbsolute(rel));
}
