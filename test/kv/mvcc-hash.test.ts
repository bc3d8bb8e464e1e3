// etcd's HashKV over the store: equal on two stores that applied the same entries, whether or not the
// background compaction has removed the old history yet; different once the history differs; refused for a
// compacted or future revision.

import t from 'tap';
import { Log, del, openStore, put, run } from './fixtures/mvcc';
import { ZERO } from './fixtures/mvcc';

t.test('HashKV agrees across stores and follows the history', async (t) => {
  const a = await openStore(t);
  const b = await openStore(t, undefined, { compactionBatchKeys: 1 });
  const la = new Log();
  const lb = new Log();
  const both = async (cmd: Parameters<typeof run>[2]): Promise<void> => {
    await run(a, la, cmd);
    await run(b, lb, cmd);
  };
  for (let i = 0; i < 40; i++) await both(put(`k${i % 7}`, `v${i}`));
  await both(del('k3', ZERO, false));
  const h1 = await a.hashKV(0);
  t.same(await b.hashKV(0), h1, 'same entries, same hash');
  t.equal(h1.revision, a.revision());
  const at20 = await a.hashKV(20);
  t.not(at20.hash, h1.hash, 'an older revision hashes less history');
  t.same(await b.hashKV(20), at20);

  await both({ op: 'compact', req: { revision: 30 } });
  await a.compacted(30); // a has removed the old history; b may not have yet
  t.same(await a.hashKV(0), await b.hashKV(0), 'the background compaction does not change the hash');
  t.equal((await a.hashKV(0)).compactRevision, 30);
  await t.rejects(a.hashKV(20), { message: 'etcdserver: mvcc: required revision has been compacted' });
  await t.rejects(a.hashKV(a.revision() + 1), { message: 'etcdserver: mvcc: required revision is a future revision' });

  await run(a, la, put('k1', 'only on a'));
  t.not((await a.hashKV(0)).hash, (await b.hashKV(b.revision())).hash, 'different history, different hash');
  t.equal(typeof (await a.hash()), 'number');
  await a.defragment();
  t.equal((await a.hashKV(a.revision())).revision, a.revision(), 'still serves after a defragment');
});
