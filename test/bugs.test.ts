// The deliberate bugs of the Jepsen self-test (src/bugs.ts) must be off in every real build, and nothing may
// be able to switch them on from outside: no flag, no environment variable, no mutation.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { BUGS } from '../src/bugs';

t.test('every bug switch is off and frozen', async (t) => {
  for (const [name, on] of Object.entries(BUGS)) t.equal(on, false, `${name} is off`);
  t.ok(Object.isFrozen(BUGS));
});

t.test('no source file writes a switch or reads one from the environment', async (t) => {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir)) {
      const p = path.join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(path.join(__dirname, '..', 'src'));
  t.ok(files.length > 50);
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    t.notMatch(text, /BUGS\.\w+\s*=[^=]|BUGS\s*=\s*(?!Object\.freeze)|KEEL_BUG/, `${path.basename(f)} does not switch a bug on`);
  }
});
