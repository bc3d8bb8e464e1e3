// The member-local lease clocks: expiry estimates, promotion, revoke retries, checkpoints. Time is passed in.

import t from 'tap';
import { Lessor } from '../../src/kv/lessor';

const rec = (id: number, ttl: number, remainingTtl = ttl) => ({ id, ttl, remainingTtl });

t.test('a grant expires TTL seconds after it was applied here, and is revoked once until the retry delay', async (t) => {
  const l = new Lessor({ revokeRetryMs: 2000 });
  l.onApplied({ upserted: [rec(1, 5)], removed: [] }, 1000);
  t.equal(l.remainingSeconds(1, 1000), 5);
  t.same(l.takeExpired(5999), [], 'not before TTL');
  t.same(l.takeExpired(6000), [1], 'at TTL');
  t.same(l.takeExpired(7000), [], 'revoke pending: not proposed again yet');
  t.same(l.takeExpired(8000), [1], 'proposed again after the retry delay');
  l.onApplied({ upserted: [], removed: [1] }, 8100);
  t.same(l.takeExpired(20000), [], 'gone once the revoke is applied');
  t.equal(l.remainingSeconds(1, 8100), undefined);
});

t.test('a keep-alive moves the expiry forward; a checkpoint never moves it back', async (t) => {
  const l = new Lessor({ revokeRetryMs: 1000 });
  l.onApplied({ upserted: [rec(7, 10)], removed: [] }, 0);
  l.onApplied({ upserted: [rec(7, 10)], removed: [] }, 4000);
  t.equal(l.remainingSeconds(7, 4000), 10);
  l.onApplied({ upserted: [rec(7, 10, 2)], removed: [] }, 5000);
  t.equal(l.remainingSeconds(7, 5000), 9, 'a stale checkpoint (2 s) does not shorten the 9 s left');
  t.same(l.takeExpired(13999), []);
  t.same(l.takeExpired(14000), [7]);
});

t.test('promotion extends every lease by the election timeout, counted from now for overdue ones', async (t) => {
  const l = new Lessor({ revokeRetryMs: 60_000 });
  l.reset([rec(1, 10, 3), rec(2, 10, 10)], 0);
  l.promote(1000, 5000);
  // Lease 1 was due at 3000 (overdue by now): now + extension. Lease 2 due at 10000: + extension.
  t.same(l.takeExpired(5999), []);
  t.same(l.takeExpired(6000), [1]);
  t.same(l.takeExpired(10999), []);
  t.same(l.takeExpired(11000), [2]);
});

t.test('checkpoints: leases with enough time left, capped at the TTL, at least 1 s', async (t) => {
  const l = new Lessor({ revokeRetryMs: 1000 });
  l.reset([rec(1, 60), rec(2, 3), rec(3, 20, 20)], 0);
  l.promote(5000, 0); // lease 3: 25 s left by estimate, more than its TTL
  const cps = l.checkpoints(1000, 10_000);
  t.same(
    cps.sort((a, b) => a.id - b.id),
    [
      { id: 1, remainingTtl: 60 },
      { id: 3, remainingTtl: 20 },
    ],
    'lease 2 (7 s left) would expire before the next checkpoint: not checkpointed',
  );
});

t.test('reset replaces every estimate with the replicated remaining TTLs', async (t) => {
  const l = new Lessor({ revokeRetryMs: 1000 });
  l.onApplied({ upserted: [rec(1, 100)], removed: [] }, 0);
  l.reset([rec(2, 30, 12)], 50_000);
  t.equal(l.has(1), false);
  t.equal(l.remainingSeconds(2, 50_000), 12);
  t.equal(l.size, 1);
});
