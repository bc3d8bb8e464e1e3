// The set, watch and lock checkers (jepsen/checker/set.ts, watch.ts, lock.ts): hand-made valid histories, one
// known-bad history per violation, random histories of simulated stores (correct ones valid, broken ones caught),
// and malformed histories refused with the line.

import t from 'tap';
import { checkLock, type LockDetails } from '../../jepsen/checker/lock';
import { checkSet, type SetDetails } from '../../jepsen/checker/set';
import { checkWatch, type WatchDetails, type WatchViolationType } from '../../jepsen/checker/watch';
import type { HistoryEvent } from '../../jepsen/history';
import { H, prng } from './fixtures/histories';

const withLines = (events: HistoryEvent[]): HistoryEvent[] => events.map((e, i) => ({ ...e, line: i + 1 }));

// ---------------------------------------------------------------- set

function adds(h: H, ok: number[], info: number[] = [], fail: number[] = []): H {
  let p = 0;
  for (const v of ok) h.invoke(p, 'add', v, 'set').ok(p);
  for (const v of info) h.invoke(++p + 100, 'add', v, 'set').info(p + 100);
  for (const v of fail) h.invoke(0, 'add', v, 'set').fail(0);
  return h;
}

t.test('set: every acknowledged add in the final read is valid', async (t) => {
  const h = adds(new H(), [0, 1, 2, 3, 4], [5, 6], [7]).invoke(50, 'read', null, 'set').ok(50, [0, 1, 2, 3, 4, 5]);
  const res = checkSet(h.events);
  t.equal(res.verdict, 'valid', res.summary);
  t.equal(res.summary, 'valid: every acknowledged add present (1 of 2 info adds recovered); 8 adds (5 ok, 2 info, 1 fail), final read of 6 elements');
  const d = res.details as SetDetails;
  t.same(d.adds, { ok: 5, info: 2, fail: 1 });
  t.equal(d.recovered, 1);
});

t.test('set: lost, unexpected, failed-present and duplicated elements are invalid', async (t) => {
  const lost = checkSet(adds(new H(), [0, 1, 2]).invoke(50, 'read', null, 'set').ok(50, [0, 2]).events);
  t.equal(lost.verdict, 'invalid');
  t.same((lost.details as SetDetails).lost, [1]);
  t.match(lost.summary, /^invalid: 1 acknowledged adds lost \[1\]; 3 adds/);

  const unexpected = checkSet(adds(new H(), [0]).invoke(50, 'read', null, 'set').ok(50, [0, 99, 'x']).events);
  t.equal(unexpected.verdict, 'invalid');
  t.same((unexpected.details as SetDetails).unexpected, [99, 'x']);

  const failed = checkSet(adds(new H(), [0], [], [3]).invoke(50, 'read', null, 'set').ok(50, [0, 3]).events);
  t.equal(failed.verdict, 'invalid');
  t.same((failed.details as SetDetails).failedPresent, [3]);
  t.match(failed.summary, /1 failed adds present \[3\]/);

  const dup = checkSet(adds(new H(), [0]).invoke(50, 'read', null, 'set').ok(50, [0, 0]).events);
  t.equal(dup.verdict, 'invalid');
  t.same((dup.details as SetDetails).duplicated, [0]);
});

t.test('set: an add concurrent with the final read may be missing; no final read is unknown', async (t) => {
  const h = adds(new H(), [0]).invoke(1, 'add', 1, 'set').invoke(50, 'read', null, 'set').ok(1).ok(50, [0]);
  const res = checkSet(h.events);
  t.equal(res.verdict, 'valid', res.summary);
  t.equal((res.details as SetDetails).concurrentMissing, 1);

  t.equal(checkSet(adds(new H(), [0]).events).verdict, 'unknown');
  const failedRead = checkSet(adds(new H(), [0]).invoke(50, 'read', null, 'set').fail(50).events);
  t.equal(failedRead.verdict, 'unknown');
  t.match(failedRead.summary, /^unknown: no final read succeeded/);
});

t.test('set: malformed histories are refused', async (t) => {
  t.throws(() => checkSet(withLines(new H().invoke(0, 'add', 'a', 'set').ok(0).events)), { message: /^line 1: an add's value must be an integer, got "a"/ });
  t.throws(() => checkSet(withLines(adds(new H(), [1, 1]).events)), { message: /^line 3: 1 is added again \(first at line 1\)/ });
  t.throws(() => checkSet(withLines(new H().invoke(0, 'write', 1, 'set').ok(0).events)), { message: /reads only f "add" and "read" operations, got "write"/ });
  t.throws(() => checkSet(withLines(new H().invoke(0, 'read', null, 'set').ok(0, 'abc').events)), { message: /the final read's value must be a list, got "abc"/ });
});

/** Concurrent adds to a simulated store; `lose` drops some acknowledged adds. */
function simulateSet(seed: number, lose: boolean): HistoryEvent[] {
  const rnd = prng(seed);
  const h = new H();
  const stored = new Set<number>();
  const inFlight: { p: number; v: number; applies: boolean; outcome: 'ok' | 'fail' | 'info' }[] = [];
  let next = 0;
  let proc = 0;
  const free = [0, 1, 2, 3, 4].map(() => proc++);
  for (let step = 0; step < 400; step++) {
    if (free.length > 0 && (inFlight.length === 0 || rnd() < 0.5)) {
      const p = free.pop()!;
      const roll = rnd();
      const outcome = roll < 0.1 ? 'info' : roll < 0.2 ? 'fail' : 'ok';
      const applies = outcome === 'ok' || (outcome === 'info' && rnd() < 0.5);
      const v = next++;
      h.invoke(p, 'add', v, 'set');
      inFlight.push({ p, v, applies, outcome });
    } else {
      const op = inFlight.splice(Math.floor(rnd() * inFlight.length), 1)[0];
      if (op.applies && !(lose && op.outcome === 'ok' && rnd() < 0.05)) stored.add(op.v);
      if (op.outcome === 'ok') h.ok(op.p);
      else if (op.outcome === 'fail') h.fail(op.p);
      else h.info(op.p);
      free.push(op.outcome === 'info' ? proc++ : op.p);
    }
  }
  for (const op of inFlight) {
    if (op.applies) stored.add(op.v);
    h.info(op.p);
  }
  h.invoke(proc, 'read', null, 'set').ok(
    proc,
    [...stored].sort((x, y) => x - y),
  );
  return h.events;
}

t.test('set: random histories of a correct store are valid, of a lossy store invalid', async (t) => {
  for (let seed = 1; seed <= 20; seed++) {
    const good = checkSet(simulateSet(seed, false));
    t.equal(good.verdict, 'valid', `seed ${seed}: ${good.summary}`);
    const bad = checkSet(simulateSet(seed, true));
    t.equal(bad.verdict, 'invalid', `seed ${seed} lossy: ${bad.summary}`);
  }
});

// ---------------------------------------------------------------- watch

interface Ev {
  revision: number;
  value: unknown;
}

class WatchH extends H {
  write(p: number, v: number, outcome: 'ok' | 'fail' | 'info' = 'ok'): this {
    this.invoke(p, 'write', v, 'w');
    return outcome === 'ok' ? this.ok(p) : outcome === 'fail' ? this.fail(p) : this.info(p);
  }
  session(p: number, fromRevision: number, events: Ev[], member = 'http://127.0.0.1:1'): this {
    return this.invoke(p, 'watch', { member, fromRevision }, 'w').ok(p, { member, fromRevision, events });
  }
}

/** writes 1..n, one after the other, at revisions 2..n+1 */
function serialWrites(n: number): { h: WatchH; evs: Ev[] } {
  const h = new WatchH();
  const evs: Ev[] = [];
  for (let v = 1; v <= n; v++) {
    h.write(0, v);
    evs.push({ revision: v + 1, value: v });
  }
  return { h, evs };
}

function violations(res: { details?: unknown }): WatchViolationType[] {
  return Object.keys((res.details as WatchDetails).violations) as WatchViolationType[];
}

t.test('watch: watchers that saw the same gap-free sequence across sessions are valid', async (t) => {
  const { h, evs } = serialWrites(5);
  h.session(10, 1, evs.slice(0, 3)).session(10, 5, evs.slice(3), 'http://127.0.0.1:2');
  h.session(11, 1, evs);
  h.session(12, 1, []); // a session that delivered nothing covers nothing
  const res = checkWatch(h.events);
  t.equal(res.verdict, 'valid', res.summary);
  const d = res.details as WatchDetails;
  t.same(d.watchers.map((w) => [w.process, w.sessions, w.events, w.covered, w.lastRevision]), [
    [10, 2, 5, [[1, 6]], 6],
    [11, 1, 5, [[1, 6]], 6],
    [12, 1, 0, [], 0],
  ]);
  t.equal(d.maxRevision, 6);
  t.match(res.summary, /^valid: every watcher saw the same ordered, gap-free sequence; 3 watchers, 4 sessions, 5 revisions seen; 5 writes \(5 ok\)/);
});

t.test('watch: each violation is caught, the first by revision named', async (t) => {
  {
    const { h, evs } = serialWrites(5);
    h.session(10, 1, evs).session(11, 1, [evs[0], evs[1], evs[3], evs[4]]);
    const res = checkWatch(h.events);
    t.equal(res.verdict, 'invalid');
    t.same(violations(res), ['gap']);
    t.match(res.summary, /first: watcher 11's session on http:\/\/127.0.0.1:1 from revision 1 delivered up to revision 6 but not revision 4 \(3\)/);
  }
  {
    const { h, evs } = serialWrites(3);
    h.session(10, 1, evs).session(11, 1, [evs[0], { revision: 3, value: 3 }, evs[2]]);
    const res = checkWatch(h.events);
    t.equal(res.verdict, 'invalid');
    t.ok(violations(res).includes('divergence'), res.summary);
    t.equal((res.details as WatchDetails).first!.revision, 3);
  }
  {
    const { h, evs } = serialWrites(3);
    h.session(10, 1, [evs[1], evs[0], evs[2]]).session(11, 3, [evs[0]]);
    const res = checkWatch(h.events);
    t.same(violations(res), ['order']);
    t.equal((res.details as WatchDetails).violations.order, 2, 'a revision going back, and one below the start');
  }
  {
    const { h, evs } = serialWrites(2);
    h.write(1, 77, 'fail');
    h.session(10, 1, [...evs, { revision: 4, value: 77 }, { revision: 5, value: 'deleted' }, { revision: 6, value: 1 }]);
    const res = checkWatch(h.events);
    t.same(violations(res).sort(), ['duplicate', 'failed-write', 'unexpected']);
  }
  {
    // write 3 acknowledged, seen by nobody: writes 2 and 4 bound its revision, which watcher 10 covered
    const h = new WatchH().write(0, 1).write(0, 2).write(0, 3).write(0, 4);
    h.session(10, 1, [
      { revision: 2, value: 1 },
      { revision: 3, value: 2 },
      { revision: 5, value: 4 },
    ]);
    const res = checkWatch(h.events);
    t.same(violations(res), ['lost-write']);
    t.match(res.summary, 'the acknowledged write of 3 (operation 2 (process 0)) was seen by no watcher, although real time puts its revision between 3 and 5');
    // an info write may be lost; an ok write not bounded above by a later observed write is not judged
    const h2 = new WatchH().write(0, 1).write(0, 2).write(0, 3, 'info').write(1, 4);
    h2.session(10, 1, [
      { revision: 2, value: 1 },
      { revision: 3, value: 2 },
      { revision: 5, value: 4 },
    ]);
    t.equal(checkWatch(h2.events).verdict, 'valid');
    const h3 = new WatchH().write(0, 1).write(0, 2);
    h3.session(10, 1, [{ revision: 2, value: 1 }]);
    t.equal(checkWatch(h3.events).verdict, 'valid');
  }
  {
    // write 1 completed before write 2 was invoked, yet came after it
    const h = new WatchH().write(0, 1).write(0, 2);
    h.session(10, 1, [
      { revision: 2, value: 2 },
      { revision: 3, value: 1 },
    ]);
    const res = checkWatch(h.events);
    t.same(violations(res), ['realtime']);
  }
});

t.test('watch: nothing seen is unknown; malformed sessions are refused', async (t) => {
  t.equal(checkWatch(new WatchH().write(0, 1).session(10, 1, []).events).verdict, 'unknown');
  const bad = withLines(new WatchH().session(10, 1, []).events);
  bad[1].value = { member: 'm', fromRevision: 1, events: [{ revision: 'two', value: 1 }] };
  t.throws(() => checkWatch(bad), { message: /^line 2: watch session event 0 must be \{revision: positive integer, value\}/ });
  bad[1].value = 'nothing';
  t.throws(() => checkWatch(bad), { message: /^line 2: watch session value must be \{member, fromRevision, events\}, got "nothing"/ });
  t.throws(() => checkWatch(withLines(new WatchH().write(0, 1).write(0, 1).events)), { message: /^line 3: 1 is written again/ });
  t.throws(() => checkWatch(withLines(new H().invoke(0, 'read', null, 'w').ok(0, 1).events)), { message: /reads only f "write" and "watch"/ });
});

/**
 * Concurrent writers to a simulated store and watchers reading it in sessions that restart from their last
 * revision + 1. `gap`: one session drops an event; `lose`: the store forgets an acknowledged write.
 */
function simulateWatch(seed: number, bug?: 'gap' | 'lose'): HistoryEvent[] {
  const rnd = prng(seed);
  const h = new WatchH();
  const log: Ev[] = []; // the store's history of the key
  let revision = 1;
  let value = 0;
  const pending: { p: number; v: number; outcome: 'ok' | 'info' | 'fail'; applies: boolean }[] = [];
  let proc = 0;
  const free = [proc++, proc++, proc++];
  let lostOne = false;
  for (let step = 0; step < 300; step++) {
    if (free.length > 0 && (pending.length === 0 || rnd() < 0.5)) {
      const p = free.pop()!;
      const roll = rnd();
      const outcome = roll < 0.1 ? 'info' : roll < 0.15 ? 'fail' : 'ok';
      const v = ++value;
      pending.push({ p, v, outcome, applies: outcome === 'ok' || (outcome === 'info' && rnd() < 0.5) });
      h.invoke(p, 'write', v, 'w');
    } else {
      const w = pending.splice(Math.floor(rnd() * pending.length), 1)[0];
      revision++;
      if (w.applies) {
        // the store "loses" one acknowledged write in the middle: its revision passes without an event
        const lose = bug === 'lose' && !lostOne && w.outcome === 'ok' && step > 150;
        if (lose) lostOne = true;
        else log.push({ revision, value: w.v });
      }
      if (w.outcome === 'ok') h.ok(w.p);
      else if (w.outcome === 'fail') h.fail(w.p);
      else h.info(w.p);
      free.push(w.outcome === 'info' ? proc++ : w.p);
    }
  }
  for (const w of pending) h.info(w.p);
  // three watchers, each in sessions of random length over the whole log
  let dropped = false;
  for (let watcher = 100; watcher < 103; watcher++) {
    let last = 0;
    for (let s = 0; s < 50 && last < revision; s++) {
      const from = last + 1;
      const evs = log.filter((e) => e.revision >= from).slice(0, 1 + Math.floor(rnd() * 20));
      if (evs.length === 0) break;
      let delivered = evs;
      if (bug === 'gap' && !dropped && watcher === 101 && evs.length >= 3) {
        delivered = evs.filter((_e, i) => i !== 1);
        dropped = true;
      }
      h.session(watcher, from, delivered, `http://127.0.0.1:${1 + Math.floor(rnd() * 3)}`);
      last = evs[evs.length - 1].revision;
    }
  }
  return h.events;
}

t.test('watch: random histories of a correct store are valid; a gap or a lost write is caught', async (t) => {
  for (let seed = 1; seed <= 15; seed++) {
    const good = checkWatch(simulateWatch(seed));
    t.equal(good.verdict, 'valid', `seed ${seed}: ${good.summary}`);
    const gap = checkWatch(simulateWatch(seed, 'gap'));
    t.same(violations(gap), ['gap'], `seed ${seed} gap: ${gap.summary}`);
    const lost = checkWatch(simulateWatch(seed, 'lose'));
    t.same(violations(lost), ['lost-write'], `seed ${seed} lose: ${lost.summary}`);
  }
});

// ---------------------------------------------------------------- lock

class LockH extends H {
  acquire(p: number, rev: number): this {
    return this.invoke(p, 'acquire', null, 'lock/owner').ok(p, rev);
  }
  write(p: number, owner: number, revision?: number, outcome: 'ok' | 'fail' | 'info' = 'ok'): this {
    this.invoke(p, 'fenced-write', { owner }, 'lock/data');
    if (outcome === 'fail') return this.fail(p);
    if (outcome === 'info') return this.info(p);
    return this.ok(p, revision === undefined ? owner : { owner, revision });
  }
  release(p: number, owner: number): this {
    return this.invoke(p, 'release', owner, 'lock/owner').ok(p);
  }
  read(p: number, list: unknown): this {
    return this.invoke(p, 'read', null, 'lock/data').ok(p, list);
  }
}

t.test('lock: fenced writes that stay mutually exclusive are valid', async (t) => {
  const h = new LockH().acquire(0, 5).write(0, 5, 6).write(0, 5, 7);
  h.acquire(1, 9).write(1, 9, 10);
  h.write(0, 5, undefined, 'fail'); // paused past its lease: fenced out
  h.release(1, 9).read(2, [5, 5, 9]);
  const res = checkLock(h.events, { fenced: true });
  t.equal(res.verdict, 'valid', res.summary);
  t.equal(res.summary, 'valid: fenced writes stayed mutually exclusive; 2 acquisitions, 3 writes ok (1 fenced out, 0 info), final list of 3');
  t.equal((res.details as LockDetails).writesWithRevision, 3);
  t.equal(res.expectedViolations, undefined);
});

t.test('lock: interleaved holders are invalid when fenced, the expected demonstration when not', async (t) => {
  // owner 5 was paused, its lease expired, owner 9 took the lock and wrote; then 5 woke up and wrote anyway
  const h = new LockH().acquire(0, 5).write(0, 5, 6).acquire(1, 9).write(1, 9, 10).write(0, 5, 11).read(2, [5, 9, 5]);
  const fenced = checkLock(h.events, { fenced: true });
  t.equal(fenced.verdict, 'invalid');
  const d = fenced.details as LockDetails;
  t.same(
    d.exclusionViolations.map((v) => v.type),
    ['commit-order', 'list-order'],
  );
  t.match(fenced.summary, "invalid: 2 mutual exclusion violations; first: owner 5's write committed at revision 11");

  const unfenced = checkLock(h.events, { fenced: false });
  t.equal(unfenced.verdict, 'valid');
  t.equal(unfenced.checker, 'lock (unfenced)');
  t.match(unfenced.summary, /^unfenced: 2 violations \(expected under pauses\); first: owner 5's write/);
  t.equal(unfenced.expectedViolations, 2);

  // the workload's own format: the token as a bare number, no commit revision; a write overwritten (lost)
  const bare = new LockH();
  bare.invoke(0, 'acquire', null).ok(0, 5);
  bare.invoke(0, 'fenced-write', 5).ok(0, 5).invoke(0, 'fenced-write', 5).ok(0, 5);
  bare.read(1, [5]);
  const lost = checkLock(bare.events, { fenced: true });
  t.equal(lost.verdict, 'invalid');
  t.same(
    (lost.details as LockDetails).exclusionViolations.map((v) => v.type),
    ['lost-write'],
  );
  t.equal(checkLock(bare.events, { fenced: false }).expectedViolations, 1);
});

t.test('lock: store violations are invalid in both variants; nothing written is unknown', async (t) => {
  const garbage = new LockH().acquire(0, 5).write(0, 5, 6).read(1, [5, 42]);
  for (const fenced of [true, false]) {
    const res = checkLock(garbage.events, { fenced });
    t.equal(res.verdict, 'invalid', res.summary);
    t.match(res.summary, /invalid: 1 store violations; first: the resource holds 1 writes of owner 42, which attempted 0/);
  }
  const failedLanded = new LockH().acquire(0, 5).write(0, 5, undefined, 'fail').write(0, 5, 7).read(1, [5, 5]);
  t.equal(checkLock(failedLanded.events, { fenced: true }).verdict, 'invalid');
  const twice = new LockH().acquire(0, 5).acquire(1, 5).write(0, 5, 6).read(2, [5]);
  const tw = checkLock(twice.events, { fenced: false });
  t.equal(tw.verdict, 'invalid');
  t.same(
    (tw.details as LockDetails).storeViolations.map((v) => v.type),
    ['duplicate-owner'],
  );
  const notList = checkLock(new LockH().acquire(0, 5).write(0, 5, 6).read(1, 'junk').events, { fenced: true });
  t.equal(notList.verdict, 'invalid');

  const nothing = checkLock(new LockH().acquire(0, 5).write(0, 5, undefined, 'fail').read(1, []).events, { fenced: true });
  t.equal(nothing.verdict, 'unknown');
  t.match(nothing.summary, /^unknown: no fenced write succeeded/);
});

t.test('lock: malformed histories are refused', async (t) => {
  t.throws(() => checkLock(withLines(new H().invoke(0, 'fenced-write', 'x').ok(0).events), { fenced: true }), {
    message: /^line 1: a fenced-write must carry its owner's revision, as \{owner: r\} or r, got "x"/,
  });
  t.throws(() => checkLock(withLines(new H().invoke(0, 'acquire', null).ok(0, 'me').events), { fenced: true }), {
    message: /an ok acquire's value must be its ownership revision, got "me"/,
  });
  t.throws(() => checkLock(withLines(new H().invoke(0, 'cas', null).ok(0).events), { fenced: true }), { message: /reads only f "acquire"/ });
});
