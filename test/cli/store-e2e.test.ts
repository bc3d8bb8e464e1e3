// The store commands end to end against a real member (in this process): put/get/del, txn, leases, watch and
// compaction, through both clients (--transport http: the etcd JSON gateway; stream: the native stream).

import t from 'tap';
import { runCli } from '../../src/cli/app';
import type { ClientFactory } from '../../src/cli/context';
import { captureIo } from '../../src/cli/io';
import { KeelHttpClient } from '../../src/client/http-client';
import { KeelClient } from '../../src/client/stream-client';
import { Readable } from 'node:stream';
import { startOneMember } from '../server/fixtures/one-member';

// Each transport with its real client (the default factory may still map "stream" to the HTTP client).
const factory: ClientFactory = (transport, opts) =>
  transport === 'stream' ? new KeelClient(opts) : new KeelHttpClient(opts);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], input: { stdin?: string; signal?: AbortSignal } = {}): Promise<Run> {
  const stdin = input.stdin === undefined ? undefined : Readable.from([Buffer.from(input.stdin)]);
  const io = captureIo({}, { stdin, signal: input.signal });
  const code = await runCli(args, io, { clientFactory: factory });
  return { code, stdout: io.stdout(), stderr: io.stderr() };
}

const ok = (stdout: string): Run => ({ code: 0, stdout, stderr: '' });

t.test('store commands against a real member', async (t) => {
  const m = await startOneMember();
  t.teardown(() => m.stop());
  const probe = new KeelHttpClient({ endpoints: [m.clientUrl], requestTimeoutMs: 1000 });
  const deadline = Date.now() + 10_000;
  while (!(await probe.health(m.clientUrl).catch(() => undefined))?.health) {
    if (Date.now() > deadline) throw new Error('the member elected no leader within 10 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  await probe.close();

  for (const transport of ['http', 'stream']) {
    const g = ['--endpoints', m.clientUrl, '--transport', transport];
    const p = `${transport}/`;
    const keel = (args: string[], input?: { stdin?: string; signal?: AbortSignal }): Promise<Run> => run([...args, ...g], input);
    const revision = async (): Promise<number> => {
      const r = await keel(['get', 'nothing', '-w', 'json']);
      return (JSON.parse(r.stdout) as { header: { revision: number } }).header.revision;
    };

    await t.test(`put, get, del (--transport ${transport})`, async (t) => {
      t.same(await keel(['put', `${p}a`, '1']), ok('OK\n'));
      const r1 = await revision();
      t.same(await keel(['put', `${p}a`, '2', '--prev-kv']), ok(`OK\n${p}a\n1\n`));
      t.same(await keel(['put', `${p}b`], { stdin: 'from stdin' }), ok('OK\n'));
      t.same(await keel(['get', `${p}a`]), ok(`${p}a\n2\n`));
      t.same(await keel(['get', `${p}a`, '--rev', String(r1)]), ok(`${p}a\n1\n`), 'an older revision');
      t.same(await keel(['get', p, '--prefix']), ok(`${p}a\n2\n${p}b\nfrom stdin\n`));
      t.same(await keel(['get', p, '--prefix', '--sort-by', 'KEY', '--order', 'DESCEND', '--keys-only']), ok(`${p}b\n\n${p}a\n\n`));
      t.same(await keel(['get', p, '--prefix', '--sort-by', 'VALUE', '--print-value-only']), ok('2\nfrom stdin\n'));
      t.same(await keel(['get', p, '--prefix', '--limit', '1', '--print-value-only']), ok('2\n'));
      t.same(await keel(['get', p, '--prefix', '--count-only']), ok('2\n'));
      t.same(await keel(['get', `${p}a`, `${p}b`, '--consistency', 's']), ok(`${p}a\n2\n`), '[a, b), serializable');
      const json = JSON.parse((await keel(['get', `${p}a`, '-w', 'json'])).stdout) as { kvs: { key: string; version: number }[]; count: number };
      t.same([json.kvs[0].key, json.kvs[0].version, json.count], [Buffer.from(`${p}a`).toString('base64'), 2, 1]);
      t.same(await keel(['put', `${p}a`, '--ignore-value']), ok('OK\n'));
      t.same(await keel(['get', `${p}a`, '--print-value-only']), ok('2\n'), '--ignore-value keeps the value');
      t.same(await keel(['del', `${p}b`, '--prev-kv']), ok(`1\n${p}b\nfrom stdin\n`));
      t.same(await keel(['del', `${p}zzz`]), ok('0\n'));
      const future = await keel(['get', `${p}a`, '--rev', String((await revision()) + 100)]);
      t.same(future, { code: 1, stdout: '', stderr: 'Error: etcdserver: mvcc: required revision is a future revision\n' });
      const noKey = await keel(['put', `${p}missing`, '--ignore-value']);
      t.same(noKey, { code: 1, stdout: '', stderr: 'Error: etcdserver: key not found\n' });
    });

    await t.test(`txn (--transport ${transport})`, async (t) => {
      const input = `value("${p}a") = "2"\n\nput ${p}t "yes"\nget ${p}a\n\nput ${p}t "no"\n\n`;
      t.same(await keel(['txn'], { stdin: input }), ok(`SUCCESS\n\nOK\n\n${p}a\n2\n`));
      t.same(await keel(['get', `${p}t`, '--print-value-only']), ok('yes\n'));
      const failing = `mod("${p}a") < "1"\nversion("${p}t") = "1"\n\ndel ${p}t\n\nput ${p}t "no" --prev-kv\ndel ${p}nothing\n\n`;
      t.same(await keel(['txn'], { stdin: failing }), ok(`FAILURE\n\nOK\n${p}t\nyes\n\n0\n`));
      const j = JSON.parse((await keel(['txn', '-w', 'json'], { stdin: `\nget ${p}t\n\n` })).stdout) as {
        succeeded: boolean;
        responses: { Response: { response_range: { kvs: { value: string }[] } } }[];
      };
      t.same([j.succeeded, Buffer.from(j.responses[0].Response.response_range.kvs[0].value, 'base64').toString()], [true, 'no']);
      const dup = await keel(['txn'], { stdin: `\nput ${p}d 1\nput ${p}d 2\n\n` });
      t.same(dup, { code: 1, stdout: '', stderr: 'Error: etcdserver: duplicate key given in txn request\n' });
    });

    await t.test(`leases (--transport ${transport})`, async (t) => {
      const grant = await keel(['lease', 'grant', '60']);
      const m1 = /^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$/.exec(grant.stdout);
      t.ok(m1, `grant: ${grant.stdout}${grant.stderr}`);
      if (m1 === null) return;
      const id = m1[1];
      t.same(await keel(['put', `${p}l`, 'leased', '--lease', id]), ok('OK\n'));
      const ttl = await keel(['lease', 'timetolive', id, '--keys']);
      t.match(ttl.stdout, new RegExp(`^lease ${id} granted with TTL\\(60s\\), remaining\\((59|60)s\\), attached keys\\(\\[${p}l\\]\\)\\n$`));
      t.match((await keel(['lease', 'list'])).stdout, new RegExp(`^found \\d+ leases\\n(.*\\n)*${id}\\n`));
      t.same(await keel(['lease', 'keep-alive', id, '--once']), ok(`lease ${id} keepalived with TTL(60)\n`));
      // The endless keep-alive renews at once, then every 20 s: stopped after 1.5 s, it has renewed once.
      const ac = new AbortController();
      const stopper = setTimeout(() => ac.abort(), 1500);
      const ka = await keel(['lease', 'keep-alive', id], { signal: ac.signal });
      clearTimeout(stopper);
      t.same(ka, ok(`lease ${id} keepalived with TTL(60)\n`), 'one renewal, then stopped');
      t.same(await keel(['lease', 'revoke', id]), ok(`lease ${id} revoked\n`));
      t.same(await keel(['get', `${p}l`]), ok(''), 'the key went with its lease');
      t.same(await keel(['lease', 'timetolive', id]), ok(`lease ${id} already expired\n`));
      t.same(await keel(['lease', 'revoke', id]), {
        code: 1,
        stdout: '',
        stderr: 'Error: failed to revoke lease (etcdserver: requested lease not found)\n',
      });
      t.same(await keel(['lease', 'keep-alive', id]), { code: 1, stdout: `lease ${id} expired or revoked.\n`, stderr: '' });
      const put = await keel(['put', `${p}l`, 'x', '--lease', id]);
      t.same(put, { code: 1, stdout: '', stderr: 'Error: etcdserver: requested lease not found\n' });
    });

    await t.test(`watch and compaction (--transport ${transport})`, async (t) => {
      const from = (await revision()) + 1;
      const ac = new AbortController();
      const safety = setTimeout(() => ac.abort(), 15_000);
      const watching = keel(['watch', `${p}w`, '--prefix', '--rev', String(from), '--prev-kv', '--max-events', '3'], { signal: ac.signal });
      t.same(await keel(['put', `${p}w1`, 'a']), ok('OK\n'));
      t.same(await keel(['put', `${p}w1`, 'b']), ok('OK\n'));
      t.same(await keel(['del', `${p}w1`]), ok('1\n'));
      const w = await watching;
      clearTimeout(safety);
      t.same(w, ok(`PUT\n${p}w1\na\nPUT\n${p}w1\na\n${p}w1\nb\nDELETE\n${p}w1\nb\n${p}w1\n\n`), 'events with their previous key-values');
      const replay = await keel(['watch', `${p}w1`, '--rev', String(from), '--max-events', '2', '-w', 'json']);
      const docs = replay.stdout.trim().split('\n').map((l) => JSON.parse(l) as { Header: { revision: number }; Events: { kv: { value?: string } }[] });
      t.same(docs.map((d) => [d.Header.revision, Buffer.from(d.Events[0].kv.value ?? '', 'base64').toString()]), [
        [from, 'a'],
        [from + 1, 'b'],
      ], 'history replayed from --rev, one JSON document per revision');

      const now = await revision();
      t.same(await keel(['compaction', String(now), '--physical']), ok(`compacted revision ${now}\n`));
      t.same(await keel(['get', `${p}a`, '--rev', String(from)]), {
        code: 1,
        stdout: '',
        stderr: 'Error: etcdserver: mvcc: required revision has been compacted\n',
      });
      const canceled = await keel(['watch', `${p}w`, '--prefix', '--rev', String(from)]);
      t.same(canceled, {
        code: 1,
        stdout: '',
        stderr: 'watch was canceled (etcdserver: mvcc: required revision has been compacted)\nError: watch is canceled by the server\n',
      });
      t.same(await keel(['compaction', String(from)]), {
        code: 1,
        stdout: '',
        stderr: 'Error: etcdserver: mvcc: required revision has been compacted\n',
      });
    });
  }
});
