// A request body that is a stream of JSON objects, as etcd's gateway reads the body of its streaming calls
// (watch, lease keep-alive) with a json.Decoder: {"create_request": ...}{"cancel_request": ...}, separated by
// any whitespace, arriving over time. This splits the bytes into one text per top-level object without
// parsing them (JSON.parse does that); its only state is the nesting depth and whether it is in a string.

import { Errors, GrpcCode, KvError } from '../kv/api';

const OPEN_OBJECT = 0x7b; // {
const CLOSE_OBJECT = 0x7d; // }
const OPEN_ARRAY = 0x5b; // [
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

export class JsonObjectSplitter {
  /** Bytes of the object under way, from earlier chunks. */
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  /** @param maxObjectBytes a larger object is refused (etcd's "request is too large"). */
  constructor(private readonly maxObjectBytes: number) {}

  /** The objects completed by this chunk, in order. Throws KvError (InvalidArgument) for a top-level value
   *  that is not an object, or an object over the limit. Multi-byte UTF-8 is safe: every byte of such a
   *  character is >= 0x80, so none is taken for a delimiter. */
  push(chunk: Buffer): string[] {
    const out: string[] = [];
    let start = this.depth > 0 ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i];
      if (this.depth === 0) {
        if (WHITESPACE.has(c)) continue;
        if (c !== OPEN_OBJECT) {
          throw new KvError(
            GrpcCode.InvalidArgument,
            `invalid JSON body: expected a JSON object, got ${JSON.stringify(String.fromCharCode(c))}`,
          );
        }
        this.depth = 1;
        start = i;
        continue;
      }
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === BACKSLASH) this.escaped = true;
        else if (c === QUOTE) this.inString = false;
        continue;
      }
      if (c === QUOTE) this.inString = true;
      else if (c === OPEN_OBJECT || c === OPEN_ARRAY) this.depth++;
      else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
        this.depth--;
        if (this.depth === 0) {
          const piece = chunk.subarray(start, i + 1);
          this.grow(piece.length);
          this.parts.push(piece);
          out.push(Buffer.concat(this.parts).toString('utf8'));
          this.parts = [];
          this.size = 0;
          start = -1;
        }
      }
    }
    if (this.depth > 0 && start >= 0) {
      const rest = chunk.subarray(start);
      this.grow(rest.length);
      // Copy: the caller may reuse the chunk's memory.
      this.parts.push(Buffer.from(rest));
    }
    return out;
  }

  /** At the end of the body: throws if an object was cut off. */
  end(): void {
    if (this.depth > 0) throw new KvError(GrpcCode.InvalidArgument, 'invalid JSON body: unexpected end of JSON input');
  }

  private grow(n: number): void {
    this.size += n;
    if (this.size > this.maxObjectBytes) throw Errors.tooLarge();
  }
}
