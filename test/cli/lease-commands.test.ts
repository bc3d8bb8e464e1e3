// keel lease grant|revoke|keep-alive|timetolive|list and keel compaction against a scripted client: the
// requests, etcdctl's lines and JSON, lease ids in hex, errors.

import t from 'tap';
import { Errors, GrpcCode, KvError, type LeaseKeepAliveResponse } from '../../src/kv/api';
import { FakeClient, HEADER, keelWith } from './fixtures/fake-client';

const ID = 0x1234abcd5678;
const HEX = '1234abcd5678';
const TOP = '"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":7,"raft_term":2';

t.test('lease grant', async (t) => {
  const c = new FakeClient({ leaseGrant: async (ttl) => ({ header: HEADER, id: ID, ttl }) });
  t.same(await keelWith(c, ['lease', 'grant', '10']).then((r) => [r.code, r.stdout, r.stderr]), [
    0,
    'lease 00001234abcd5678 granted with TTL(10s)\n',
    '',
  ]);
  t.same(c.calls, [{ method: 'leaseGrant', args: [10, undefined] }]);
  t.equal(c.closed, 1);
  const j = await keelWith(c, ['lease', 'grant', '10', '-w', 'json']);
  t.equal(j.stdout, `{${TOP},"ID":${ID},"TTL":10,"Error":""}\n`);
  const bad = await keelWith(new FakeClient(), ['lease', 'grant', 'ten']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, 'bad TTL "ten": expected an integer number of seconds');
  const tooLong = await keelWith(new FakeClient({ leaseGrant: async () => { throw Errors.leaseTtlTooLarge(); } }), ['lease', 'grant', '9000000001']);
  t.equal(tooLong.code, 1);
  t.equal(tooLong.stderr, 'Error: failed to grant lease (etcdserver: too large lease TTL)\n', "etcdctl's wording");
});

t.test('lease revoke', async (t) => {
  const c = new FakeClient({ leaseRevoke: async () => ({ header: HEADER }) });
  const r = await keelWith(c, ['lease', 'revoke', HEX]);
  t.equal(r.stdout, 'lease 00001234abcd5678 revoked\n');
  t.same(c.calls, [{ method: 'leaseRevoke', args: [ID] }]);
  t.equal((await keelWith(c, ['lease', 'revoke', HEX, '--json'])).stdout, `{"header":{${TOP}}}\n`);
  const gone = await keelWith(new FakeClient({ leaseRevoke: async () => { throw Errors.leaseNotFound(); } }), ['lease', 'revoke', HEX]);
  t.equal(gone.code, 1);
  t.equal(gone.stderr, 'Error: failed to revoke lease (etcdserver: requested lease not found)\n');
  for (const bad of ['xyz', '0x12', '', '1fffffffffffff0']) {
    const r2 = await keelWith(new FakeClient(), ['lease', 'revoke', bad]);
    t.equal(r2.code, 2, `lease revoke ${JSON.stringify(bad)}`);
    t.match(r2.stderr, /bad lease ID/);
  }
});

t.test('lease timetolive', async (t) => {
  const c = new FakeClient({
    leaseTimeToLive: async (id, o) => ({ header: HEADER, id, ttl: 7, grantedTtl: 10, keys: o.keys === true ? [Buffer.from('k1'), Buffer.from('k2')] : [] }),
  });
  t.equal((await keelWith(c, ['lease', 'timetolive', HEX])).stdout, 'lease 00001234abcd5678 granted with TTL(10s), remaining(7s)\n');
  t.equal(
    (await keelWith(c, ['lease', 'timetolive', HEX, '--keys'])).stdout,
    'lease 00001234abcd5678 granted with TTL(10s), remaining(7s), attached keys([k1 k2])\n',
  );
  t.same(c.calls.map((x) => x.args), [[ID, { keys: false }], [ID, { keys: true }]]);
  t.equal(
    (await keelWith(c, ['lease', 'timetolive', HEX, '--keys', '-w', 'json'])).stdout,
    `{${TOP},"id":${ID},"ttl":7,"granted-ttl":10,"keys":["azE=","azI="]}\n`,
  );
  const gone = new FakeClient({ leaseTimeToLive: async (id) => ({ header: HEADER, id, ttl: -1, grantedTtl: 0, keys: [] }) });
  t.equal((await keelWith(gone, ['lease', 'timetolive', HEX])).stdout, 'lease 00001234abcd5678 already expired\n');
});

t.test('lease list', async (t) => {
  const c = new FakeClient({ leaseLeases: async () => ({ header: HEADER, leases: [{ id: ID }, { id: 2 }] }) });
  t.equal((await keelWith(c, ['lease', 'list'])).stdout, 'found 2 leases\n00001234abcd5678\n0000000000000002\n');
  t.equal((await keelWith(c, ['lease', 'list', '-w', 'json'])).stdout, `{${TOP},"leases":[{"id":${ID}},{"id":2}]}\n`);
  const none = new FakeClient({ leaseLeases: async () => ({ header: HEADER, leases: [] }) });
  t.equal((await keelWith(none, ['lease', 'list'])).stdout, 'found 0 leases\n');
  const usage = await keelWith(new FakeClient(), ['lease']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, "keel lease needs a subcommand: 'grant', 'revoke', 'keep-alive', 'timetolive' or 'list'");
});

/** A keep-alive script from a list of answers (a number: that TTL; an Error: thrown). */
function keepAliveScript(answers: (number | Error)[]): { client: FakeClient; times: number[] } {
  const times: number[] = [];
  let i = 0;
  const client = new FakeClient({
    leaseKeepAliveOnce: async (id): Promise<LeaseKeepAliveResponse> => {
      times.push(Date.now());
      const a = answers[Math.min(i++, answers.length - 1)];
      if (a instanceof Error) throw a;
      return { header: HEADER, id, ttl: a };
    },
  });
  return { client, times };
}

t.test('lease keep-alive --once', async (t) => {
  const { client } = keepAliveScript([10]);
  const r = await keelWith(client, ['lease', 'keep-alive', HEX, '--once']);
  t.same([r.code, r.stdout], [0, 'lease 00001234abcd5678 keepalived with TTL(10)\n']);
  t.equal(client.calls.length, 1);
  t.equal((await keelWith(keepAliveScript([10]).client, ['lease', 'keep-alive', HEX, '--once', '-w', 'json'])).stdout, `{${TOP},"ID":${ID},"TTL":10}\n`);
  const gone = await keelWith(keepAliveScript([0]).client, ['lease', 'keep-alive', HEX, '--once']);
  t.same([gone.code, gone.stderr], [1, 'Error: etcdserver: requested lease not found\n'], 'TTL 0: the lease is gone, as the Go client says');
});

t.test('lease keep-alive renews every TTL/3 until the lease is gone', async (t) => {
  const { client, times } = keepAliveScript([1, 1, 0]);
  const r = await keelWith(client, ['lease', 'keep-alive', HEX]);
  t.equal(r.code, 1, 'Keel exits 1 when the lease is gone');
  t.equal(
    r.stdout,
    'lease 00001234abcd5678 keepalived with TTL(1)\nlease 00001234abcd5678 keepalived with TTL(1)\nlease 00001234abcd5678 expired or revoked.\n',
  );
  t.equal(times.length, 3);
  for (let i = 1; i < times.length; i++) t.ok(times[i] - times[i - 1] >= 300, `renewal ${i} about TTL/3 after the one before`);
  t.equal(client.closed, 1);
});

t.test('lease keep-alive: a failure is retried; a stop ends it with exit 0', async (t) => {
  const ac = new AbortController();
  const { client, times } = keepAliveScript([new KvError(GrpcCode.Unavailable, 'etcdserver: no leader'), 30]);
  const run = keelWith(client, ['lease', 'keep-alive', HEX], { signal: ac.signal });
  const deadline = Date.now() + 3000;
  while (times.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  ac.abort();
  const r = await run;
  t.equal(r.code, 0);
  t.equal(r.stdout, 'lease 00001234abcd5678 keepalived with TTL(30)\n');
  t.equal(r.stderr, 'keep-alive of lease 1234abcd5678 failed (retrying): etcdserver: no leader\n');
  t.equal(times.length, 2, 'stopped while waiting TTL/3 (10 s) for the next renewal');
});

t.test('lease keep-alive: no renewal for a whole TTL is a lost lease; a not-found error too', async (t) => {
  const down = new KvError(GrpcCode.Unavailable, 'etcdserver: request timed out');
  const { client, times } = keepAliveScript([1, down]);
  const started = Date.now();
  const r = await keelWith(client, ['lease', 'keep-alive', HEX]);
  t.equal(r.code, 1);
  t.ok(Date.now() - started >= 1000, 'gave up only after the TTL');
  t.ok(times.length >= 3 && times.length <= 6, `retried every 0.5 s (${times.length} attempts)`);
  t.match(r.stderr, 'keep-alive of lease 1234abcd5678 failed for 1s: etcdserver: request timed out');
  t.match(r.stdout, /expired or revoked\.\n$/);
  const nf = await keelWith(keepAliveScript([Errors.leaseNotFound()]).client, ['lease', 'keep-alive', HEX]);
  t.same([nf.code, nf.stdout], [1, 'lease 00001234abcd5678 expired or revoked.\n']);
});

t.test('compaction', async (t) => {
  const c = new FakeClient({ compact: async () => ({ header: HEADER }) });
  t.same(await keelWith(c, ['compaction', '12']).then((r) => [r.code, r.stdout]), [0, 'compacted revision 12\n']);
  t.same(await keelWith(c, ['compaction', '13', '--physical']).then((r) => [r.code, r.stdout]), [0, 'compacted revision 13\n']);
  t.same(c.calls, [
    { method: 'compact', args: [12, { physical: false }] },
    { method: 'compact', args: [13, { physical: true }] },
  ]);
  t.equal((await keelWith(c, ['compaction', '14', '--json'])).stdout, `{"header":{${TOP}}}\n`);
  for (const bad of ['0', '-1', 'x', '1.5']) {
    const r = await keelWith(new FakeClient(), ['compaction', bad]);
    t.equal(r.code, 2, `compaction ${bad}`);
    t.match(r.stderr, 'compaction needs a revision, a positive integer');
  }
  const old = await keelWith(new FakeClient({ compact: async () => { throw Errors.compacted(); } }), ['compaction', '3']);
  t.same([old.code, old.stderr], [1, 'Error: etcdserver: mvcc: required revision has been compacted\n']);
});
