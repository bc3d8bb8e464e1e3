// The Jepsen self-test's commit-by-counting bug (src/bugs.ts), on the paper's Figure 8 scripted in the
// deterministic cluster (jepsen/broken/figure8.ts): the broken core commits an older-term entry by counting and
// the invariant checker catches its loss; Keel's own core, on the same script, neither commits it nor breaks
// anything.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { brokenCore, figure8 } from '../../jepsen/broken/figure8';
import { Raft } from '../../src/raft/core/raft';

t.test('commit-by-counting: the broken core commits the term-2 entry and the checker catches its loss', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keel-broken-core-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const broken = figure8(brokenCore(dir, 'commit-by-counting'));
  t.equal(broken.s1Commit, 2, 'the broken S1 commits index 2 of term 2 by counting S1, S2, S3');
  t.match(broken.violation, /Leader Completeness|State Machine Safety|committed/, `caught: ${broken.violation}`);
  t.end();
});

t.test("the same script on Keel's core: nothing to catch", (t) => {
  const ok = figure8(Raft);
  t.equal(ok.s1Commit, 1, 'S1 does not commit index 2 by counting');
  t.equal(ok.violation, undefined, 'no invariant broken');
  t.end();
});
