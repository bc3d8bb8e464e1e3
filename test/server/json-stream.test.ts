import t from 'tap';
import { GrpcCode, KvError } from '../../src/kv/api';
import { JsonObjectSplitter } from '../../src/server/json-stream';

/** Feeds `text` cut at every position in `cuts`, collecting the objects. */
function feed(text: string, cuts: number[], max = 1 << 20): string[] {
  const bytes = Buffer.from(text);
  const s = new JsonObjectSplitter(max);
  const out: string[] = [];
  let at = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(...s.push(bytes.subarray(at, c)));
    at = c;
  }
  s.end();
  return out;
}

t.test('objects back to back, separated by whitespace or nothing, cut anywhere', async (t) => {
  const objects = [
    '{"create_request":{"key":"Zm9v"}}',
    '{"a":"} { \\" ]","b":[{"c":[]}]}',
    '{"é":"日本","x":"\\\\"}',
    '{}',
  ];
  const text = `${objects[0]}\n${objects[1]}${objects[2]} \r\n\t${objects[3]}\n`;
  const bytes = Buffer.byteLength(text);
  for (let cut = 0; cut <= bytes; cut++) {
    const got = feed(text, [cut]);
    if (JSON.stringify(got) !== JSON.stringify(objects)) {
      t.fail(`cut at ${cut}: ${JSON.stringify(got)}`);
      return;
    }
  }
  t.same(feed(text, Array.from({ length: bytes - 1 }, (_, i) => i + 1)), objects, 'one byte at a time (UTF-8 split too)');
  for (const o of objects) t.doesNotThrow(() => JSON.parse(o));
});

t.test('what is not a stream of objects is refused', async (t) => {
  const err = t.throws(() => feed('{"a":1} [1]', [])) as KvError;
  t.equal(err.code, GrpcCode.InvalidArgument);
  t.equal(err.message, 'invalid JSON body: expected a JSON object, got "["');
  t.throws(() => feed('5', []), { message: 'invalid JSON body: expected a JSON object, got "5"' });
  t.throws(() => feed('{"a":', [3]), { message: 'invalid JSON body: unexpected end of JSON input' });
  t.same(feed('  \n ', []), [], 'whitespace only: no object');
});

t.test('an object over the limit is refused, even when it arrives in small pieces', async (t) => {
  const big = `{"k":"${'x'.repeat(100)}"}`;
  t.same(feed(big, [], 200), [big]);
  const err = t.throws(() => feed(big, [10, 20, 30, 40, 50, 60, 70, 80, 90], 50)) as KvError;
  t.equal(err.message, 'etcdserver: request is too large');
  t.same(feed(`${big}${big}`, [], 200), [big, big], 'the limit is per object');
});
