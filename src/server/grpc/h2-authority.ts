// Repairs the :authority of gRPC requests on their way from a client to the grpc-js server (used by the
// protocol mux, which proxies the client's HTTP/2 bytes).
//
// Why: etcd's Go client (etcdctl 3.4's `endpoint status`, `endpoint hashkv`, `defrag`, `move-leader`) dials
// each endpoint as "passthrough:///http://127.0.0.1:2379", and grpc-go sends that whole string as the
// request's :authority. grpc-go's server accepts it; Node's HTTP/2 (nghttp2) checks the authority's
// characters and resets the stream with PROTOCOL_ERROR, and Node has no option to turn that check off.
//
// How: the client-to-server byte stream is read frame by frame. HEADERS (+ CONTINUATION) blocks are
// HPACK-decoded, following the client's dynamic table; a literal :authority (or Host) whose value nghttp2
// would refuse gets a value of the SAME length that it accepts ("http://h:p" -> "------@h:p": the scheme
// becomes userinfo), re-encoded without Huffman coding and re-framed. The same length keeps the dynamic
// table entry the same size, so the server's table stays in step with the client's and the client's later
// references to that entry (by index) resolve to the repaired value. Every other byte is passed unchanged.
// A connection whose first request carries an acceptable authority is passed through untouched from then
// on (grpc-js, etcd3 and etcd's balanced client connections); so is one that breaks HTTP/2 (the server
// answers it).

import { Transform, type TransformCallback } from 'node:stream';

const FRAME_HEADER = 9;
const HEADERS = 0x1;
const CONTINUATION = 0x9;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
/** The smallest SETTINGS_MAX_FRAME_SIZE a peer may set: frames this size are always accepted. */
const MAX_FRAME_PAYLOAD = 16_384;
const DEFAULT_TABLE_SIZE = 4096;
const ENTRY_OVERHEAD = 32;

/** HPACK's static table (RFC 7541, Appendix A): only the names matter here. */
const STATIC_NAMES = [
  '', // HPACK indexes from 1
  ':authority', ':method', ':method', ':path', ':path', ':scheme', ':scheme', ':status', ':status', ':status',
  ':status', ':status', ':status', ':status', 'accept-charset', 'accept-encoding', 'accept-language',
  'accept-ranges', 'accept', 'access-control-allow-origin', 'age', 'allow', 'authorization', 'cache-control',
  'content-disposition', 'content-encoding', 'content-language', 'content-length', 'content-location',
  'content-range', 'content-type', 'cookie', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match',
  'if-modified-since', 'if-none-match', 'if-range', 'if-unmodified-since', 'last-modified', 'link', 'location',
  'max-forwards', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'refresh', 'retry-after',
  'server', 'set-cookie', 'strict-transport-security', 'transfer-encoding', 'user-agent', 'vary', 'via',
  'www-authenticate',
];

/**
 * HPACK's Huffman code (RFC 7541, Appendix B) is canonical, so the code length of each of its 257 symbols
 * (bytes 0-255, then EOS) defines it. One character per symbol: the length is its char code minus 48.
 */
const HUFFMAN_LENGTHS =
  '=GLLLLLLLHNLLNLLLLLLLLNLLLLLLLLL6::<=68;::8;8666555666666678?6<:=67777777777777777777777878=C=>6?56565' +
  '666577666567655677777?;>=LDFDDFFFGFGGGGGHGHHFGHGGGGEFGFGGHFEDFFGGEGFFHEFGGEEFEGFGGDFFFGFFGJJDCFGFIJJJKK' +
  'JHICEJKKJKHEEJJLKKKDHDEFEEGFFIIHHJGJKJJKKKKKLKKKKKJN';

interface Canonical {
  /** By length: the first code of that length, how many codes have it, where its symbols start. */
  first: number[];
  count: number[];
  offset: number[];
  /** Symbols ordered by (length, symbol). */
  symbols: number[];
}

let huffman: Canonical | undefined;

function huffmanTable(): Canonical {
  if (huffman !== undefined) return huffman;
  const lengths = [...HUFFMAN_LENGTHS].map((c) => c.charCodeAt(0) - 48);
  const symbols = lengths.map((_l, s) => s).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const first: number[] = [];
  const count: number[] = new Array<number>(31).fill(0);
  const offset: number[] = [];
  for (const l of lengths) count[l]++;
  let code = 0;
  let at = 0;
  for (let l = 1; l <= 30; l++) {
    first[l] = code;
    offset[l] = at;
    at += count[l];
    code = (code + count[l]) * 2;
  }
  huffman = { first, count, offset, symbols };
  return huffman;
}

class HpackError extends Error {}

export function huffmanDecode(data: Buffer): Buffer {
  const t = huffmanTable();
  const out: number[] = [];
  let code = 0;
  let len = 0;
  for (const byte of data) {
    for (let bit = 7; bit >= 0; bit--) {
      code = code * 2 + ((byte >> bit) & 1);
      len++;
      if (len > 30) throw new HpackError('bad Huffman code');
      const i = code - t.first[len];
      if (i >= 0 && i < t.count[len]) {
        const sym = t.symbols[t.offset[len] + i];
        if (sym === 256) throw new HpackError('EOS in a Huffman string');
        out.push(sym);
        code = 0;
        len = 0;
      }
    }
  }
  // The padding is the most significant bits of EOS (all ones), shorter than a byte.
  if (len > 7 || code !== 2 ** len - 1) throw new HpackError('bad Huffman padding');
  return Buffer.from(out);
}

/** nghttp2_check_authority: the characters it accepts in :authority and Host. */
const AUTHORITY_OK = /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]*$/;

export function authorityAcceptable(v: string): boolean {
  return AUTHORITY_OK.test(v);
}

/** A value nghttp2 accepts, of the same length as `v`. */
export function repairAuthority(v: string): string {
  const m = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(.*)$/s.exec(v);
  if (m !== null && authorityAcceptable(m[1])) {
    // "http://host:port" -> "------@host:port": the scheme's place taken by a userinfo nobody reads.
    return '-'.repeat(v.length - m[1].length - 1) + '@' + m[1];
  }
  return v.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]/g, '-');
}

// ---- HPACK primitives --------------------------------------------------------------------------------

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  int(prefixBits: number): number {
    if (this.pos >= this.buf.length) throw new HpackError('truncated integer');
    const max = (1 << prefixBits) - 1;
    let v = this.buf[this.pos++] & max;
    if (v < max) return v;
    let shift = 0;
    for (;;) {
      if (this.pos >= this.buf.length) throw new HpackError('truncated integer');
      const b = this.buf[this.pos++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (shift > 28) throw new HpackError('integer too large');
      if ((b & 0x80) === 0) return v;
    }
  }

  string(): Buffer {
    if (this.pos >= this.buf.length) throw new HpackError('truncated string');
    const huff = (this.buf[this.pos] & 0x80) !== 0;
    const n = this.int(7);
    if (this.pos + n > this.buf.length) throw new HpackError('truncated string');
    const raw = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return huff ? huffmanDecode(raw) : raw;
  }
}

function encodeInt(firstBits: number, prefixBits: number, v: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (v < max) return Buffer.from([firstBits | v]);
  const out = [firstBits | max];
  let rest = v - max;
  while (rest >= 128) {
    out.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function encodeString(s: Buffer): Buffer {
  return Buffer.concat([encodeInt(0x00, 7, s.length), s]);
}

/** The decoder's dynamic table, newest first: names and entry sizes are all that is needed. */
class DynamicTable {
  private entries: { name: string; size: number }[] = [];
  private size = 0;
  private max = DEFAULT_TABLE_SIZE;

  name(index: number): string {
    if (index >= 1 && index < STATIC_NAMES.length) return STATIC_NAMES[index];
    const e = this.entries[index - STATIC_NAMES.length];
    if (e === undefined) throw new HpackError(`no table entry ${index}`);
    return e.name;
  }

  add(name: string, valueLength: number): void {
    const size = name.length + valueLength + ENTRY_OVERHEAD;
    this.entries.unshift({ name, size });
    this.size += size;
    this.evict();
  }

  resize(max: number): void {
    this.max = max;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.max && this.entries.length > 0) this.size -= this.entries.pop()!.size;
  }
}

// ---- the rewriter ------------------------------------------------------------------------------------------

/** A header block, its authority repaired; undefined when nothing needed it. `sawGoodAuthority`: it carried
 *  a literal :authority that needed no repair. */
function rewriteBlock(block: Buffer, table: DynamicTable): { block: Buffer | undefined; sawGoodAuthority: boolean } {
  const r = new Reader(block);
  const parts: Buffer[] = [];
  let copiedTo = 0;
  let changed = false;
  let sawGoodAuthority = false;
  while (r.pos < block.length) {
    const start = r.pos;
    const b = block[start];
    if (b & 0x80) {
      // Indexed: the value is the table's (repaired when it was added).
      const idx = r.int(7);
      if (idx === 0) throw new HpackError('index 0');
      table.name(idx);
      continue;
    }
    if ((b & 0xe0) === 0x20) {
      table.resize(r.int(5));
      continue;
    }
    const incremental = (b & 0x40) !== 0;
    const prefixBits = incremental ? 6 : 4;
    const firstBits = b & (incremental ? 0xc0 : 0xf0);
    const nameIndex = r.int(prefixBits);
    const nameStart = r.pos;
    const name = nameIndex === 0 ? r.string().toString('latin1') : table.name(nameIndex);
    const nameEnd = r.pos;
    const value = r.string().toString('latin1');
    if (incremental) table.add(name, value.length);
    if (name !== ':authority' && name !== 'host') continue;
    if (authorityAcceptable(value)) {
      if (name === ':authority') sawGoodAuthority = true;
      continue;
    }
    // Re-encoded: same representation and name, the repaired value as a plain string.
    parts.push(block.subarray(copiedTo, start));
    parts.push(encodeInt(firstBits, prefixBits, nameIndex));
    if (nameIndex === 0) parts.push(block.subarray(nameStart, nameEnd));
    parts.push(encodeString(Buffer.from(repairAuthority(value), 'latin1')));
    copiedTo = r.pos;
    changed = true;
  }
  if (!changed) return { block: undefined, sawGoodAuthority };
  parts.push(block.subarray(copiedTo));
  return { block: Buffer.concat(parts), sawGoodAuthority: false };
}

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const h = Buffer.alloc(FRAME_HEADER);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(streamId, 5);
  return h;
}

/** HEADERS (+ CONTINUATION) frames carrying `block`, with the first frame's END_STREAM and priority. */
function headerFrames(block: Buffer, flags: number, streamId: number, priority: Buffer | undefined): Buffer[] {
  const out: Buffer[] = [];
  const firstRoom = MAX_FRAME_PAYLOAD - (priority?.length ?? 0);
  let pos = Math.min(firstRoom, block.length);
  const firstFlags =
    (flags & (FLAG_END_STREAM | FLAG_PRIORITY)) | (pos === block.length ? FLAG_END_HEADERS : 0);
  const firstPayload = priority === undefined ? block.subarray(0, pos) : Buffer.concat([priority, block.subarray(0, pos)]);
  out.push(frameHeader(firstPayload.length, HEADERS, firstFlags, streamId), firstPayload);
  while (pos < block.length) {
    const end = Math.min(pos + MAX_FRAME_PAYLOAD, block.length);
    out.push(frameHeader(end - pos, CONTINUATION, end === block.length ? FLAG_END_HEADERS : 0, streamId));
    out.push(block.subarray(pos, end));
    pos = end;
  }
  return out;
}

interface PendingHeaders {
  streamId: number;
  flags: number;
  priority: Buffer | undefined;
  fragments: Buffer[];
  /** The frames as received, passed on unchanged if nothing needs repair. */
  original: Buffer[];
}

/** A Transform for the client-to-server bytes of one HTTP/2 connection, after the connection preface. */
export class AuthorityRepair extends Transform {
  private buf: Buffer = Buffer.alloc(0);
  private passthrough = false;
  private readonly table = new DynamicTable();
  private pending: PendingHeaders | undefined;
  /** Something was repaired on this connection: keep looking to the end (the client sends the authority
   *  again as a literal whenever its table entry has been evicted). */
  private repaired = false;

  /** Whether it has stopped looking (every byte now passes unchanged). */
  get passingThrough(): boolean {
    return this.passthrough;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.passthrough) {
      done(null, chunk);
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Buffer[] = [];
    try {
      this.frames(out);
    } catch (err) {
      if (!(err instanceof HpackError)) throw err;
      // Not HTTP/2 as this reads it: stop looking and let the server judge the bytes.
      this.giveUp(out);
    }
    if (this.passthrough) this.giveUp(out);
    done(null, out.length === 0 ? undefined : out.length === 1 ? out[0] : Buffer.concat(out));
  }

  private giveUp(out: Buffer[]): void {
    this.passthrough = true;
    if (this.pending !== undefined) out.push(...this.pending.original);
    this.pending = undefined;
    if (this.buf.length > 0) out.push(this.buf);
    this.buf = Buffer.alloc(0);
  }

  private frames(out: Buffer[]): void {
    while (!this.passthrough && this.buf.length >= FRAME_HEADER) {
      const length = this.buf.readUIntBE(0, 3);
      if (this.buf.length < FRAME_HEADER + length) return;
      const frame = this.buf.subarray(0, FRAME_HEADER + length);
      this.buf = this.buf.subarray(FRAME_HEADER + length);
      const type = frame[3];
      const flags = frame[4];
      const streamId = frame.readUInt32BE(5) & 0x7fffffff;
      const payload = frame.subarray(FRAME_HEADER);
      if (this.pending !== undefined) {
        if (type !== CONTINUATION || streamId !== this.pending.streamId) throw new HpackError('CONTINUATION expected');
        this.pending.fragments.push(payload);
        this.pending.original.push(frame);
        if (flags & FLAG_END_HEADERS) this.endBlock(out);
        continue;
      }
      if (type !== HEADERS) {
        out.push(frame);
        continue;
      }
      let body = payload;
      let padding = 0;
      if (flags & FLAG_PADDED) {
        if (body.length < 1) throw new HpackError('bad padding');
        padding = body[0];
        body = body.subarray(1);
      }
      let priority: Buffer | undefined;
      if (flags & FLAG_PRIORITY) {
        if (body.length < 5) throw new HpackError('bad priority');
        priority = body.subarray(0, 5);
        body = body.subarray(5);
      }
      if (padding > body.length) throw new HpackError('bad padding');
      this.pending = {
        streamId,
        flags,
        priority,
        fragments: [body.subarray(0, body.length - padding)],
        original: [frame],
      };
      if (flags & FLAG_END_HEADERS) this.endBlock(out);
    }
  }

  private endBlock(out: Buffer[]): void {
    const p = this.pending!;
    // Throws before `pending` is cleared: giveUp() then passes its frames on unchanged.
    const { block, sawGoodAuthority } = rewriteBlock(Buffer.concat(p.fragments), this.table);
    this.pending = undefined;
    if (block === undefined) {
      out.push(...p.original);
      // A client that names its server acceptably does so on every request of the connection.
      if (sawGoodAuthority && !this.repaired) this.passthrough = true;
      return;
    }
    this.repaired = true;
    out.push(...headerFrames(block, p.flags, p.streamId, p.priority));
  }
}
