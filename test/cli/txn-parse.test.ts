// etcdctl's txn input: Go quoted strings, argify's word splitting, compares, request lines with their flags,
// the three sections, and errors that name the line and the problem.

import t from 'tap';
import { QuoteError, unquoteGo } from '../../src/cli/go-quote';
import { argify, parseCompare, parseRequestOp, parseTxnText, readTxn, TxnInputError } from '../../src/cli/txn-parse';

const B = (s: string): Buffer => Buffer.from(s);

t.test('Go quoted strings, as etcdctl reads them with %q', async (t) => {
  t.same(unquoteGo('"key1"'), B('key1'));
  t.same(unquoteGo('""'), B(''));
  t.same(unquoteGo('"a b\\tc\\n"'), B('a b\tc\n'));
  t.same(unquoteGo('"q\\"uote\\\\"'), B('q"uote\\'));
  t.same(unquoteGo('"\\x00\\xff"'), Buffer.from([0, 0xff]), 'hex escapes give raw bytes');
  t.same(unquoteGo('"\\101\\377"'), Buffer.from([0x41, 0xff]), 'octal escapes');
  t.same(unquoteGo('"\\u00e9\\U0001F600"'), B('é😀'));
  t.same(unquoteGo('"é"'), B('é'), 'UTF-8 as is');
  t.same(unquoteGo('`raw \\n "x"`'), B('raw \\n "x"'), 'backquotes: raw');
  for (const bad of ['"\\q"', '"\\x4"', '"\\400"', '"abc', 'abc', '"a"b"', "'x'", '"\\\'"', '"\\uD800"']) {
    t.type(t.throws(() => unquoteGo(bad)), QuoteError, `${bad} is refused`);
  }
});

t.test('argify splits words as etcdctl does', async (t) => {
  t.same(argify('put key1 "overwrote-key1"'), [B('put'), B('key1'), B('overwrote-key1')]);
  t.same(argify('  put   k  "a b"  '), [B('put'), B('k'), B('a b')], 'spaces around and inside quotes');
  t.same(argify("put k 'single \\n quoted'"), [B('put'), B('k'), B('single \\n quoted')], 'single quotes as is');
  t.same(argify('put k "\\x00"'), [B('put'), B('k'), Buffer.from([0])]);
  t.same(argify('get k --limit=3 --prefix'), [B('get'), B('k'), B('--limit=3'), B('--prefix')]);
  t.same(argify('put k ""'), [B('put'), B('k'), B('')], 'an empty quoted value is a word');
  t.throws(() => argify('put k "abc'), /unterminated quote at column 7/);
  t.throws(() => argify("put k 'abc"), /unterminated quote at column 7/);
});

t.test('compares: every target, every operator, etcdctl short names', async (t) => {
  t.same(parseCompare('mod("key1") > "0"'), { key: B('key1'), result: 'GREATER', target: 'MOD', modRevision: 0 });
  t.same(parseCompare('m("k") < "12"'), { key: B('k'), result: 'LESS', target: 'MOD', modRevision: 12 });
  t.same(parseCompare('version("k") = "3"'), { key: B('k'), result: 'EQUAL', target: 'VERSION', version: 3 });
  t.same(parseCompare('ver("k") != "0"'), { key: B('k'), result: 'NOT_EQUAL', target: 'VERSION', version: 0 });
  t.same(parseCompare('create("k") = "5"'), { key: B('k'), result: 'EQUAL', target: 'CREATE', createRevision: 5 });
  t.same(parseCompare('c("k") > "5"'), { key: B('k'), result: 'GREATER', target: 'CREATE', createRevision: 5 });
  t.same(parseCompare('value("k") = "v 1"'), { key: B('k'), result: 'EQUAL', target: 'VALUE', value: B('v 1') });
  t.same(parseCompare('val("k") != ""'), { key: B('k'), result: 'NOT_EQUAL', target: 'VALUE', value: B('') });
  t.same(parseCompare('lease("k") = "1234abcd5678"'), {
    key: B('k'),
    result: 'EQUAL',
    target: 'LEASE',
    lease: 0x1234abcd5678,
  });
  t.same(parseCompare('lease("k") = "0"'), { key: B('k'), result: 'EQUAL', target: 'LEASE', lease: 0 });
  t.same(parseCompare('value("a\\x00b") = `raw`'), { key: Buffer.from([0x61, 0, 0x62]), result: 'EQUAL', target: 'VALUE', value: B('raw') });
  t.same(parseCompare('mod( "k" )>"1"'), { key: B('k'), result: 'GREATER', target: 'MOD', modRevision: 1 }, 'spaces optional');
});

t.test('bad compares name the line and the problem', async (t) => {
  const cases: [string, RegExp][] = [
    ['mod "k" > "0"', /malformed comparison \(expected TARGET\("KEY"\) OP "VALUE"/],
    ['modd("k") > "0"', /unknown comparison target "modd"/],
    ['mod(k) > "0"', /expected the key in double quotes/],
    ['mod("k" > "0"', /expected "\)" after the key/],
    ['mod("k") >= "0"', /unknown comparison operator ">="/],
    ['mod("k") "0"', /no comparison operator/],
    ['mod("k") > 0', /expected the value in double quotes/],
    ['mod("k") > "x"', /"x" is not an integer \(for mod revision\)/],
    ['version("k") = "1.5"', /"1.5" is not an integer \(for version\)/],
    ['lease("k") = "xyz"', /"xyz" is not a lease ID in hex/],
    ['mod("k") > "0" extra', /unexpected text after the value/],
    ['mod("k) > "0"', /malformed comparison/],
  ];
  for (const [line, re] of cases) {
    const e = t.throws(() => parseCompare(line, 4)) as unknown;
    t.type(e, TxnInputError, line);
    t.match((e as Error).message, re, line);
    t.match((e as Error).message, /^txn input line 4: /, 'names the line');
    t.ok((e as Error).message.endsWith(`: ${line}`), 'quotes the input');
  }
});

t.test('request lines: put, get, del with their flags', async (t) => {
  t.same(parseRequestOp('put key1 "overwrote-key1"'), { type: 'put', put: { key: B('key1'), value: B('overwrote-key1') } });
  t.same(parseRequestOp('put k v --lease=1234abcd5678 --prev-kv'), {
    type: 'put',
    put: { key: B('k'), value: B('v'), lease: 0x1234abcd5678, prevKv: true },
  });
  t.same(parseRequestOp('put k --ignore-value --ignore-lease'), {
    type: 'put',
    put: { key: B('k'), value: B(''), ignoreValue: true, ignoreLease: true },
  });
  t.same(parseRequestOp('put -- k -v'), { type: 'put', put: { key: B('k'), value: B('-v') } }, '-- ends the flags');
  t.same(parseRequestOp('get k'), { type: 'range', range: { key: B('k') } });
  t.same(parseRequestOp('get k --prefix --limit 2 --rev=5 --keys-only'), {
    type: 'range',
    range: { key: B('k'), rangeEnd: B('l'), limit: 2, revision: 5, keysOnly: true },
  });
  t.same(parseRequestOp('get a c --sort-by=modify --order=descend --count-only'), {
    type: 'range',
    range: { key: B('a'), rangeEnd: B('c'), sortTarget: 'MOD', sortOrder: 'DESCEND', countOnly: true },
  });
  t.same(parseRequestOp('get "" --from-key'), { type: 'range', range: { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) } });
  t.same(parseRequestOp('del k'), { type: 'deleteRange', deleteRange: { key: B('k') } });
  t.same(parseRequestOp('del k --prefix --prev-kv'), {
    type: 'deleteRange',
    deleteRange: { key: B('k'), rangeEnd: B('l'), prevKv: true },
  });
  t.same(parseRequestOp('del a b'), { type: 'deleteRange', deleteRange: { key: B('a'), rangeEnd: B('b') } });
  t.same(parseRequestOp('get k --prefix=false'), { type: 'range', range: { key: B('k') } }, '--flag=false');
});

t.test('bad request lines name the line and the problem', async (t) => {
  const cases: [string, RegExp][] = [
    ['delete k', /unknown request "delete" \(expected put, get or del\)/],
    ['put k', /put takes KEY and VALUE/],
    ['put k v w', /put takes KEY \[VALUE\] \(got 3 arguments\)/],
    ['put k v --ignore-value', /put takes only KEY with --ignore-value/],
    ['put k v --lease=xyz', /bad lease ID "xyz" \(--lease\), expecting ID in Hex/],
    ['put k v --bogus', /unknown flag --bogus for put \(known: --lease, --prev-kv, --ignore-value, --ignore-lease\)/],
    ['get', /get takes KEY \[RANGE_END\] \(got 0 arguments\)/],
    ['get k --limit', /--limit needs a value/],
    ['get k --limit=x', /--limit must be an integer \(got "x"\)/],
    ['get k --limit=-1', /--limit must be a non-negative integer \(got -1\)/],
    ['get k --sort-by=size', /bad sort target "size"/],
    ['get k --order=up', /bad sort order "up"/],
    ['get k --prefix --from-key', /--prefix and --from-key cannot be used together/],
    ['get k z --prefix', /a range end cannot be given with --prefix or --from-key/],
    ['get k --keys-only --count-only', /--keys-only and --count-only cannot be used together/],
    ['del k --prefix=maybe', /--prefix takes true or false/],
    ['put k "v', /unterminated quote/],
  ];
  for (const [line, re] of cases) {
    const e = t.throws(() => parseRequestOp(line, 9)) as unknown;
    t.type(e, TxnInputError, line);
    t.match((e as Error).message, /^txn input line 9: invalid txn request \(/, line);
    t.match((e as Error).message, re, line);
  }
});

t.test('the three sections', async (t) => {
  // etcdctl's own example (txn_command.go).
  const req = await parseTxnText(
    'mod("key1") > "0"\n\nput key1 "overwrote-key1"\n\nput key1 "created-key1"\nput key2 "some extra key"\n\n',
  );
  t.same(req, {
    compare: [{ key: B('key1'), result: 'GREATER', target: 'MOD', modRevision: 0 }],
    success: [{ type: 'put', put: { key: B('key1'), value: B('overwrote-key1') } }],
    failure: [
      { type: 'put', put: { key: B('key1'), value: B('created-key1') } },
      { type: 'put', put: { key: B('key2'), value: B('some extra key') } },
    ],
  });
  t.same(await parseTxnText('\n\n\n'), { compare: [], success: [], failure: [] }, 'all empty');
  t.same(
    await parseTxnText('\nget a\n'),
    { compare: [], success: [{ type: 'range', range: { key: B('a') } }], failure: [] },
    'the end of input ends a section',
  );
  t.same(
    await parseTxnText('  value("k") = "v"  \r\n   \r\n del k \r\n'),
    {
      compare: [{ key: B('k'), result: 'EQUAL', target: 'VALUE', value: B('v') }],
      success: [{ type: 'deleteRange', deleteRange: { key: B('k') } }],
      failure: [],
    },
    'spaces trimmed, CRLF, a line of spaces is blank',
  );
  t.same(await parseTxnText(''), { compare: [], success: [], failure: [] }, 'no input at all');
  await t.rejects(parseTxnText('mod("a") > "0"\n\nput a b\nput a\n'), /^txn input line 4: invalid txn request \(put takes KEY and VALUE\): put a$/);
  await t.rejects(parseTxnText('\nput a b\n\nbogus\n'), /^txn input line 4: invalid txn request \(unknown request "bogus"/);
  await t.rejects(parseTxnText('put a b\n'), /^txn input line 1: malformed comparison/, 'a request where a compare belongs');
});

t.test('readTxn announces each section before reading it (interactive prompts)', async (t) => {
  const lines = ['mod("a") > "0"', '', 'put a b', '', ''];
  const seen: string[] = [];
  let i = 0;
  const src = {
    next: async () => {
      const l = lines[i++];
      if (l !== undefined) seen.push(`read:${l}`);
      return l;
    },
    get lineNo() {
      return i;
    },
  };
  await readTxn(src, (s) => seen.push(`prompt:${s}`));
  t.same(seen, [
    'prompt:compares',
    'read:mod("a") > "0"',
    'read:',
    'prompt:success',
    'read:put a b',
    'read:',
    'prompt:failure',
    'read:',
  ]);
});
