// The checker of the lock workload. Clients acquire a lease-based lock (f "acquire", ok value: the ownership
// revision, their fencing token), write the protected resource under it (f "fenced-write", invoked with the token
// as {owner: r} or r; ok: the write took effect, its value {owner, revision} carrying the write's commit revision
// when known; fail: the fence refused it) and release it (f "release"). The resource, "lock/data", is a list
// to which every write appends its token; a final f "read" returns that list.
//
// Mutual exclusion of the resource means that the writes that took effect form a sequence in which a holder never
// writes after a newer holder: ordered by commit, the tokens never decrease. Checked two ways:
//   - the ok fenced-writes that carry their commit revision, sorted by it;
//   - the final list, which is the order in which the writes landed (each write appends to what it read).
// And no acknowledged write may be missing from the list: under fencing only the owner can write between its read
// of the list and its guarded put, so an overwrite means two holders wrote at once.
// These are exclusion violations: a bug with fenced = true, the expected demonstration with fenced = false
// (the verdict stays valid and `expectedViolations` counts them). Whatever the variant, these are store
// violations and make the verdict invalid: an element in the list no write attempted (or more copies of a
// token than writes attempted with it, or not a list at all), and one ownership revision granted twice.

import { HistoryError, pairHistory, type HistoryEvent, type Operation } from '../history';
import type { CheckResult } from '../types';

export type LockViolationType = 'commit-order' | 'list-order' | 'lost-write' | 'unexpected' | 'duplicate-owner';

export interface LockViolation {
  type: LockViolationType;
  explain: string;
}

export interface LockDetails {
  fenced: boolean;
  acquires: { ok: number; info: number; fail: number };
  writes: { ok: number; info: number; fail: number };
  /** ok writes that carry their commit revision */
  writesWithRevision: number;
  /** the final list's length, when a final read succeeded */
  finalList?: number;
  /** mutual exclusion broken (expected with fenced = false) */
  exclusionViolations: LockViolation[];
  /** the store misbehaved (invalid in both variants) */
  storeViolations: LockViolation[];
}

const EXCLUSION: ReadonlySet<LockViolationType> = new Set(['commit-order', 'list-order', 'lost-write']);
const KEEP = 20;

function where(op: Operation): string {
  return op.invokeLine !== undefined ? `line ${op.invokeLine}` : `operation ${op.index} (process ${op.process})`;
}

function ownerOf(op: Operation): number {
  const v = op.value;
  const owner = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>).owner : v;
  if (!Number.isSafeInteger(owner)) {
    throw new HistoryError(`${where(op)}: a fenced-write must carry its owner's revision, as {owner: r} or r, got ${JSON.stringify(v)}`, op.invokeLine);
  }
  return owner as number;
}

/** The commit revision of an ok write, when its value carries one ({owner, revision}). */
function commitRevision(op: Operation): number | undefined {
  const v = op.output;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const rev = (v as Record<string, unknown>).revision;
  if (rev === undefined) return undefined;
  if (!Number.isSafeInteger(rev)) throw new HistoryError(`${where(op)}: a fenced-write's revision must be an integer, got ${JSON.stringify(rev)}`, op.completeLine);
  return rev as number;
}

export function checkLock(events: readonly HistoryEvent[], opts: { fenced: boolean; source?: string }): CheckResult {
  const checker = opts.fenced ? 'lock' : 'lock (unfenced)';
  const acquires: Operation[] = [];
  const writes: { op: Operation; owner: number }[] = [];
  let finalRead: Operation | undefined;
  for (const op of pairHistory(events, opts.source)) {
    if (op.f === 'acquire') acquires.push(op);
    else if (op.f === 'fenced-write') writes.push({ op, owner: ownerOf(op) });
    else if (op.f === 'read') {
      if (op.type === 'ok' && (!finalRead || op.completeTime >= finalRead.completeTime)) finalRead = op;
    } else if (op.f !== 'release') {
      throw new HistoryError(`${where(op)}: the lock checker reads only f "acquire", "fenced-write", "release" and "read", got ${JSON.stringify(op.f)}`, op.invokeLine);
    }
  }

  const exclusion: LockViolation[] = [];
  const store: LockViolation[] = [];
  let exclusionCount = 0;
  let storeCount = 0;
  const report = (v: LockViolation): void => {
    if (EXCLUSION.has(v.type)) {
      exclusionCount++;
      if (exclusion.length < KEEP) exclusion.push(v);
    } else {
      storeCount++;
      if (store.length < KEEP) store.push(v);
    }
  };

  // one ownership revision, one owner
  const granted = new Map<number, Operation>();
  for (const a of acquires) {
    if (a.type !== 'ok') continue;
    const r = a.output;
    if (!Number.isSafeInteger(r)) throw new HistoryError(`${where(a)}: an ok acquire's value must be its ownership revision, got ${JSON.stringify(r)}`, a.completeLine);
    const other = granted.get(r as number);
    if (other) report({ type: 'duplicate-owner', explain: `ownership revision ${r as number} was granted to process ${other.process} (${where(other)}) and process ${a.process} (${where(a)})` });
    else granted.set(r as number, a);
  }

  // commit order of the writes that carry their revision
  const committed = writes
    .filter((w) => w.op.type === 'ok')
    .map((w) => ({ ...w, rev: commitRevision(w.op) }))
    .filter((w): w is { op: Operation; owner: number; rev: number } => w.rev !== undefined)
    .sort((x, y) => x.rev - y.rev);
  let newest: (typeof committed)[number] | undefined;
  for (const w of committed) {
    if (newest && w.owner < newest.owner) {
      report({
        type: 'commit-order',
        explain: `owner ${w.owner}'s write committed at revision ${w.rev} (${where(w.op)}), after owner ${newest.owner}'s write at revision ${newest.rev} (${where(newest.op)})`,
      });
    }
    if (!newest || w.owner > newest.owner) newest = w;
  }

  // the final list: the order in which writes landed
  let finalList: number | undefined;
  if (finalRead) {
    const list = finalRead.output;
    if (!Array.isArray(list) || !list.every((x) => Number.isSafeInteger(x))) {
      report({ type: 'unexpected', explain: `the final read of the resource (${where(finalRead)}) returned ${JSON.stringify(list)}, not a list of revisions` });
    } else {
      const xs = list as number[];
      finalList = xs.length;
      const attempted = new Map<number, { ok: number; maybe: number }>(); // owner -> ok writes, ok + info writes
      for (const w of writes) {
        const c = attempted.get(w.owner) ?? { ok: 0, maybe: 0 };
        if (w.op.type === 'ok') c.ok++;
        if (w.op.type !== 'fail') c.maybe++;
        attempted.set(w.owner, c);
      }
      const inList = new Map<number, number>();
      let max: { owner: number; at: number } | undefined;
      xs.forEach((x, i) => {
        inList.set(x, (inList.get(x) ?? 0) + 1);
        if (max && x < max.owner) {
          report({ type: 'list-order', explain: `the resource holds owner ${x}'s write at position ${i}, after owner ${max.owner}'s at position ${max.at}` });
        }
        if (!max || x > max.owner) max = { owner: x, at: i };
      });
      for (const [owner, n] of inList) {
        const c = attempted.get(owner);
        if (!c || n > c.maybe) {
          report({ type: 'unexpected', explain: `the resource holds ${n} writes of owner ${owner}, which attempted ${c ? c.maybe : 0} that may have taken effect` });
        }
      }
      for (const [owner, c] of attempted) {
        const n = inList.get(owner) ?? 0;
        if (n < c.ok) report({ type: 'lost-write', explain: `owner ${owner} had ${c.ok} acknowledged writes, but the resource holds ${n} of them` });
      }
    }
  }

  const count = <T extends { type: string }>(xs: T[], type: string): number => xs.filter((x) => x.type === type).length;
  const details: LockDetails = {
    fenced: opts.fenced,
    acquires: { ok: count(acquires, 'ok'), info: count(acquires, 'info'), fail: count(acquires, 'fail') },
    writes: { ok: count(writes.map((w) => w.op), 'ok'), info: count(writes.map((w) => w.op), 'info'), fail: count(writes.map((w) => w.op), 'fail') },
    writesWithRevision: committed.length,
    exclusionViolations: exclusion,
    storeViolations: store,
  };
  if (finalList !== undefined) details.finalList = finalList;
  const size =
    `${details.acquires.ok} acquisitions, ${details.writes.ok} writes ok (${details.writes.fail} fenced out, ${details.writes.info} info)` +
    (finalList !== undefined ? `, final list of ${finalList}` : ', no final read');

  if (storeCount > 0) {
    const also = exclusionCount > 0 ? ` (and ${exclusionCount} mutual exclusion violations)` : '';
    return { checker, verdict: 'invalid', summary: `invalid: ${storeCount} store violations${also}; first: ${store[0].explain}; ${size}`, details };
  }
  if (!opts.fenced) {
    return {
      checker,
      verdict: 'valid',
      summary: `unfenced: ${exclusionCount} violations (expected under pauses)${exclusionCount > 0 ? `; first: ${exclusion[0].explain}` : ''}; ${size}`,
      details,
      expectedViolations: exclusionCount,
    };
  }
  if (exclusionCount > 0) {
    return { checker, verdict: 'invalid', summary: `invalid: ${exclusionCount} mutual exclusion violations; first: ${exclusion[0].explain}; ${size}`, details };
  }
  if (details.writes.ok === 0 || (committed.length === 0 && finalList === undefined)) {
    const why = details.writes.ok === 0 ? 'no fenced write succeeded' : 'no write carries its revision and no final read succeeded';
    return { checker, verdict: 'unknown', summary: `unknown: ${why}; ${size}`, details };
  }
  return { checker, verdict: 'valid', summary: `valid: fenced writes stayed mutually exclusive; ${size}`, details };
}
