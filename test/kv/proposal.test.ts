import t from 'tap';
import { Packr } from 'msgpackr';
import { decodeProposal, encodeProposal } from '../../src/kv/proposal';
import type { Command, Proposal } from '../../src/kv/state-machine';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const packr = new Packr({ useRecords: false });

t.test('every command shape round-trips', async (t) => {
  const commands: Command[] = [
    { op: 'put', req: { key: b('k'), value: Buffer.alloc(0) } },
    {
      op: 'put',
      req: { key: b('k\x00'), value: b('v'), lease: 7, prevKv: true, ignoreValue: false, ignoreLease: true },
    },
    { op: 'delete', req: { key: b('a'), rangeEnd: b('b'), prevKv: true } },
    { op: 'delete', req: { key: b('a') } },
    {
      op: 'txn',
      req: {
        compare: [
          { key: b('a'), result: 'EQUAL', target: 'VERSION', version: 0 },
          { key: b('a'), rangeEnd: b('\x00'), result: 'GREATER', target: 'CREATE', createRevision: 3 },
          { key: b('a'), result: 'LESS', target: 'MOD', modRevision: -1 },
          { key: b('a'), result: 'NOT_EQUAL', target: 'VALUE', value: b('x') },
          { key: b('a'), result: 'EQUAL', target: 'LEASE', lease: 9 },
        ],
        success: [
          {
            type: 'range',
            range: {
              key: b('a'),
              rangeEnd: b('z'),
              limit: 3,
              revision: 5,
              sortOrder: 'DESCEND',
              sortTarget: 'MOD',
              keysOnly: true,
              countOnly: false,
              serializable: true,
              minModRevision: 1,
              maxModRevision: 9,
              minCreateRevision: 2,
              maxCreateRevision: 8,
            },
          },
          { type: 'put', put: { key: b('p'), value: b('q'), lease: 1 } },
          { type: 'deleteRange', deleteRange: { key: b('d'), rangeEnd: b('e'), prevKv: true } },
          {
            type: 'txn',
            txn: { compare: [], success: [{ type: 'range', range: { key: b('n') } }], failure: [] },
          },
        ],
        failure: [{ type: 'put', put: { key: b('f'), value: b('g'), prevKv: true } }],
      },
    },
    { op: 'compact', req: { revision: 12 } },
    { op: 'compact', req: { revision: 12, physical: true } },
    { op: 'leaseGrant', id: 2 ** 52, ttl: 60 },
    { op: 'leaseRevoke', id: 1 },
    { op: 'leaseKeepAlive', id: 3 },
    { op: 'leaseCheckpoint', checkpoints: [{ id: 3, remainingTtl: 0 }, { id: 4, remainingTtl: 17 }] },
    { op: 'memberAttrs', memberId: '8e9e05c52164694d', name: 'n1', clientUrls: ['http://127.0.0.1:2379'] },
    { op: 'alarm', action: 'ACTIVATE', memberId: '8e9e05c52164694d', alarm: 'NOSPACE' },
    { op: 'alarm', action: 'DEACTIVATE', memberId: '', alarm: 'NONE' },
  ];
  for (const cmd of commands) {
    const p: Proposal = { id: 'm-1-2', cmd };
    t.same(decodeProposal(encodeProposal(p)), p, cmd.op);
    const q: Proposal = { id: 'm-1-3', requestId: { client: '0123456789abcdef', seq: 42 }, cmd };
    t.same(decodeProposal(encodeProposal(q)), q, `${cmd.op} with a request id`);
  }
});

t.test('only the fields of the shape are encoded', async (t) => {
  const req = { key: b('k'), value: b('v'), requestId: { client: 'x', seq: 1 }, stray: 'yes', lease: undefined };
  const wire = packr.unpack(encodeProposal({ id: 'a', cmd: { op: 'put', req } })) as { cmd: { req: object } };
  t.same(Object.keys(wire.cmd.req).sort(), ['key', 'value']);
  const decoded = decodeProposal(encodeProposal({ id: 'a', cmd: { op: 'put', req } }));
  t.same(decoded, { id: 'a', cmd: { op: 'put', req: { key: b('k'), value: b('v') } } });
  t.notOk('lease' in (decoded.cmd as { req: object }).req, 'no key set to undefined');
});

t.test('well-formed but wrong requests decode (the store refuses them with etcd errors)', async (t) => {
  const p = decodeProposal(encodeProposal({ id: 'a', cmd: { op: 'put', req: { key: Buffer.alloc(0), value: b('v') } } }));
  t.same(p.cmd, { op: 'put', req: { key: Buffer.alloc(0), value: b('v') } });
});

t.test('malformed proposals are refused with the field named', async (t) => {
  const put = { op: 'put', req: { key: b('k'), value: b('v') } };
  const txn = (op: unknown) => ({ op: 'txn', req: { compare: [], success: [op], failure: [] } });
  const cases: [unknown, RegExp][] = [
    ['string', /proposal is not a map/],
    [{ id: 1, cmd: put }, /id is not a string/],
    [{ id: 'x', cmd: 7 }, /cmd is not a map/],
    [{ id: 'x', cmd: { op: 'get' } }, /unknown op "get"/],
    [{ id: 'x', cmd: { op: 'put', req: { key: 'k', value: b('v') } } }, /cmd\.req\.key is not binary/],
    [{ id: 'x', cmd: { op: 'put', req: { key: b('k') } } }, /cmd\.req\.value is not binary/],
    [{ id: 'x', cmd: { op: 'put', req: { key: b('k'), value: b('v'), prevKv: 'yes' } } }, /prevKv is not a boolean/],
    [{ id: 'x', cmd: { op: 'put', req: { key: b('k'), value: b('v'), lease: -1 } } }, /lease is negative/],
    [{ id: 'x', cmd: { op: 'put', req: { key: b('k'), value: b('v'), lease: 1.5 } } }, /lease is not an integer/],
    [{ id: 'x', cmd: { op: 'delete', req: { key: b('k'), rangeEnd: 5 } } }, /rangeEnd is not binary/],
    [{ id: 'x', cmd: { op: 'txn', req: { compare: [], success: [] } } }, /cmd\.req\.failure is not a list/],
    [{ id: 'x', cmd: txn({ type: 'get' }) }, /success\[0\]\.type is not/],
    [{ id: 'x', cmd: txn({ type: 'range', range: { key: b('k'), sortOrder: 'UP' } }) }, /sortOrder is not one of/],
    [
      { id: 'x', cmd: { op: 'txn', req: { compare: [{ key: b('k'), result: 'EQUAL', target: 'VERSION' }], success: [], failure: [] } } },
      /compare\[0\]\.version is not an integer/,
    ],
    [
      { id: 'x', cmd: { op: 'txn', req: { compare: [{ key: b('k'), result: 'SAME', target: 'VALUE', value: b('') }], success: [], failure: [] } } },
      /compare\[0\]\.result is not one of/,
    ],
    [{ id: 'x', cmd: { op: 'compact', req: { revision: -3 } } }, /cmd\.req\.revision is negative/],
    [{ id: 'x', cmd: { op: 'leaseGrant', id: 0, ttl: 5 } }, /cmd\.id is not a positive integer/],
    [{ id: 'x', cmd: { op: 'leaseGrant', id: 2 ** 53, ttl: 5 } }, /cmd\.id is not an integer/],
    [{ id: 'x', cmd: { op: 'leaseCheckpoint', checkpoints: [{ id: 1 }] } }, /remainingTtl is not an integer/],
    [{ id: 'x', cmd: { op: 'memberAttrs', memberId: '', name: 'n', clientUrls: [] } }, /cmd\.memberId/],
    [{ id: 'x', cmd: { op: 'memberAttrs', memberId: 'a', name: 'n', clientUrls: [1] } }, /cmd\.clientUrls/],
    [{ id: 'x', cmd: { op: 'alarm', action: 'GET', memberId: 'a', alarm: 'NOSPACE' } }, /cmd\.action/],
    [{ id: 'x', cmd: { op: 'alarm', action: 'ACTIVATE', memberId: 'a', alarm: 'FULL' } }, /cmd\.alarm/],
    [{ id: 'x', requestId: { client: '', seq: 1 }, cmd: put }, /requestId\.client/],
    [{ id: 'x', requestId: { client: 'has space', seq: 1 }, cmd: put }, /requestId\.client/],
    [{ id: 'x', requestId: { client: 'c'.repeat(65), seq: 1 }, cmd: put }, /requestId\.client/],
    [{ id: 'x', requestId: { client: 'c', seq: -1 }, cmd: put }, /requestId\.seq is negative/],
  ];
  for (const [v, msg] of cases) {
    t.throws(() => decodeProposal(packr.pack(v)), { name: 'MalformedProposalError', message: msg }, String(msg));
  }
  t.throws(() => decodeProposal(Buffer.from([0x92, 0x01])), { name: 'MalformedProposalError', message: /not msgpack/ });

  // A txn nested deeper than any txn within etcd's op budget can be.
  let deep: unknown = { compare: [], success: [], failure: [] };
  for (let i = 0; i < 202; i++) deep = { compare: [], success: [{ type: 'txn', txn: deep }], failure: [] };
  t.throws(() => decodeProposal(packr.pack({ id: 'x', cmd: { op: 'txn', req: deep } })), { message: /nested more than 200 deep/ });
});
