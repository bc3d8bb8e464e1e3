// Who dialed: the member id a peer connection announces in the head of its first HTTP/1.1 request. Keel's
// stream handshake (GET /raft/stream, an upgrade) carries `x-keel-from`; etcd's peer requests (streams
// GET /raft/stream/{message,msgappv2}/<id> and pipeline POST /raft) carry `X-Server-From`. Both are the
// sender's member id in hex. A connection is the sender's from the first request that names it on.

/** How much of a connection's first bytes the proxy reads looking for the request head. */
export const MAX_HEAD_BYTES = 16 * 1024;

const HEAD_END = Buffer.from('\r\n\r\n');
/** a sender header line, with the line break that ends the line before it (the request line or a header) */
const SENDER_LINE = /\r\n(?:x-keel-from|x-server-from)[ \t]*:[ \t]*([0-9a-f]{1,16})[ \t]*\r\n/i;
/** longer than any sender header line: what a scanner keeps of one chunk to find a line split across two */
const SCAN_TAIL_CHARS = 64;

/** True once `bytes` hold a complete request head (its blank line) or as much as the proxy will read. */
export function headComplete(bytes: Buffer): boolean {
  return bytes.length >= MAX_HEAD_BYTES || bytes.includes(HEAD_END);
}

/** The sender's member id found in a request head (possibly cut short), undefined when there is none. */
export function senderIdOf(bytes: Buffer): bigint | undefined {
  const end = bytes.indexOf(HEAD_END);
  // Up to and including the first line break of the blank line, so that the last header line is complete.
  const head = bytes.subarray(0, end >= 0 ? end + 2 : Math.min(bytes.length, MAX_HEAD_BYTES)).toString('latin1');
  const m = SENDER_LINE.exec(head);
  return m ? BigInt(`0x${m[1]}`) : undefined;
}

/**
 * Finds the sender in the bytes a dialer sends after its first request. HTTP/1.1 clients reuse idle
 * connections: etcd's prober opens a connection with GET /raft/probing (no sender header) and its pipeline
 * then sends POST /raft, which names the sender, on that same connection. A connection belongs to one
 * process, so the first sender header seen anywhere in its requests names it.
 */
export class SenderScanner {
  private tail = '';

  /** the sender id, once some request head in the bytes fed so far names it */
  feed(chunk: Buffer): bigint | undefined {
    const text = this.tail + chunk.toString('latin1');
    const m = SENDER_LINE.exec(text);
    if (m) return BigInt(`0x${m[1]}`);
    this.tail = text.slice(-SCAN_TAIL_CHARS);
    return undefined;
  }
}

/** A member id as the harness writes it (16 hex digits) -> the number both headers denote. */
export function parseMemberId(idHex: string): bigint {
  if (!/^[0-9a-f]{1,16}$/i.test(idHex)) throw new Error(`member id must be 1 to 16 hex digits, got "${idHex}"`);
  return BigInt(`0x${idHex}`);
}
