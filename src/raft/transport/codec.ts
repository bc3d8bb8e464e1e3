// Wire format of the peer stream: every WebSocket message is one binary frame holding a MessagePack array of
// Raft messages, each a MessagePack map with the field names of `Message` (see types.ts). Fields whose value is
// `undefined` are left out. Byte fields (Entry.data, chunk, context) travel as MessagePack bin and decode as
// Buffers (a Uint8Array subclass).
//
// Each message is encoded once, when it is queued, so the queue knows its exact byte size; a frame is then an
// array header followed by the already-encoded messages, which is valid MessagePack because with records off
// every encoded value is self-contained.

import { Packr } from 'msgpackr';
import type { Options as PackrOptions } from 'msgpackr';
import type { Entry, Message, MessageType, NodeId, SnapshotMeta } from '../core/types';

// `skipValues` is documented in msgpackr's README but missing from its typings.
type CodecOptions = PackrOptions & { skipValues: unknown[] };

const options: CodecOptions = {
  // Plain maps, not msgpackr's record extension: records pay off only for many same-shaped objects, and
  // plain maps keep the frames readable by any MessagePack decoder (handy when debugging a capture).
  useRecords: false,
  mapsAsObjects: true,
  // Decoded byte fields get their own memory. Without this they would be views into the received frame
  // (or into the socket's read chunk), so one small retained entry could pin megabytes.
  copyBuffers: true,
  skipValues: [undefined],
};

const packr = new Packr(options);

/** Encodes one message. The result may share an ArrayBuffer with other results but is never overwritten. */
export function encodeMessage(m: Message): Buffer {
  return packr.pack(m);
}

/** Concatenates already-encoded messages into one frame (a MessagePack array). */
export function encodeFrame(parts: readonly Buffer[], partsBytes: number): Buffer {
  const n = parts.length;
  const headerBytes = n < 16 ? 1 : n < 0x10000 ? 3 : 5;
  const frame = Buffer.allocUnsafe(headerBytes + partsBytes);
  if (n < 16) {
    frame[0] = 0x90 | n; // fixarray
  } else if (n < 0x10000) {
    frame[0] = 0xdc; // array 16
    frame.writeUInt16BE(n, 1);
  } else {
    frame[0] = 0xdd; // array 32
    frame.writeUInt32BE(n, 1);
  }
  let at = headerBytes;
  for (const p of parts) {
    p.copy(frame, at);
    at += p.length;
  }
  return frame;
}

/** A frame that cannot be decoded or does not hold valid messages: the stream that carried it is closed. */
export class FrameError extends Error {
  override name = 'FrameError';
}

/**
 * Decodes and validates one frame received from `from`. Validation is strict because whatever passes goes
 * straight into the Raft core, which trusts its input types; a message claiming another sender or another
 * recipient than the stream's handshake said is refused too, so one peer cannot speak for another.
 */
export function decodeFrame(frame: Buffer, from: NodeId, to: NodeId): Message[] {
  let value: unknown;
  try {
    value = packr.unpack(frame);
  } catch (err) {
    throw new FrameError(`undecodable frame: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!Array.isArray(value) || value.length === 0) {
    throw new FrameError('frame is not a non-empty array of messages');
  }
  const messages: Message[] = [];
  for (let i = 0; i < value.length; i++) {
    const m: unknown = value[i];
    const problem = messageProblem(m);
    if (problem !== undefined) throw new FrameError(`message ${i} of the frame: ${problem}`);
    const msg = m as Message;
    if (msg.from !== from) {
      throw new FrameError(`message ${i} claims to be from ${msg.from}, the stream is from ${from}`);
    }
    if (msg.to !== to) throw new FrameError(`message ${i} is for ${msg.to}, this member is ${to}`);
    messages.push(msg);
  }
  return messages;
}

type Fields = Record<string, unknown>;

function isFields(v: unknown): v is Fields {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

// The range of MessageType (a const enum in types.ts, so it has no runtime object to enumerate).
const FIRST_TYPE = 1;
const LAST_TYPE = 14;

/** Returns what is wrong with `m` as a Message, or undefined if it is one. */
export function messageProblem(m: unknown): string | undefined {
  if (!isFields(m)) return 'not a map';
  const t = m.type;
  if (typeof t !== 'number' || !Number.isInteger(t) || t < FIRST_TYPE || t > LAST_TYPE) return `bad type ${String(t)}`;
  if (typeof m.from !== 'string' || typeof m.to !== 'string') return 'from/to must be strings';
  for (const k of ['term', 'index', 'logTerm'] as const) {
    if (!isIndex(m[k])) return `${k} must be a non-negative integer`;
  }
  for (const k of ['commit', 'rejectHint', 'hintTerm', 'offset'] as const) {
    if (m[k] !== undefined && !isIndex(m[k])) return `${k} must be a non-negative integer`;
  }
  for (const k of ['reject', 'done'] as const) {
    if (m[k] !== undefined && typeof m[k] !== 'boolean') return `${k} must be a boolean`;
  }
  for (const k of ['chunk', 'context'] as const) {
    if (m[k] !== undefined && !(m[k] instanceof Uint8Array)) return `${k} must be bytes`;
  }
  if (m.entries !== undefined) {
    if (!Array.isArray(m.entries)) return 'entries must be an array';
    for (let i = 0; i < m.entries.length; i++) {
      const problem = checkEntry(m.entries[i]);
      if (problem !== undefined) return `entry ${i}: ${problem}`;
    }
  }
  if (m.snapshot !== undefined) {
    const problem = checkSnapshotMeta(m.snapshot);
    if (problem !== undefined) return `snapshot: ${problem}`;
  }
  return undefined;
}

function checkEntry(e: unknown): string | undefined {
  if (!isFields(e)) return 'not a map';
  if (!isIndex(e.term) || !isIndex(e.index)) return 'term and index must be non-negative integers';
  // EntryType: Normal = 0, ConfChange = 1.
  if (e.type !== 0 && e.type !== 1) return `bad type ${String(e.type)}`;
  if (!(e.data instanceof Uint8Array)) return 'data must be bytes';
  return undefined;
}

function checkSnapshotMeta(s: unknown): string | undefined {
  if (!isFields(s)) return 'not a map';
  if (!isIndex(s.index) || !isIndex(s.term)) return 'index and term must be non-negative integers';
  if (!Array.isArray(s.voters) || !s.voters.every((v: unknown) => typeof v === 'string')) {
    return 'voters must be an array of strings';
  }
  for (const field of ['learners', 'removed'] as const) {
    const v = s[field];
    if (v !== undefined && (!Array.isArray(v) || !v.every((x: unknown) => typeof x === 'string'))) {
      return `${field} must be an array of strings`;
    }
  }
  return undefined;
}

// Compile-time reminders: if Message, Entry or SnapshotMeta gain a field, or MessageType a member, the
// checks above need a look (FIRST_TYPE..LAST_TYPE must be exactly MessageType's values).
type Exact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const entryFields: Exact<keyof Entry, 'term' | 'index' | 'type' | 'data'> = true;
const metaFields: Exact<keyof SnapshotMeta, 'index' | 'term' | 'voters' | 'learners' | 'removed'> = true;
void entryFields;
void metaFields;
const messageFields: Exact<
  keyof Message,
  | 'type' | 'from' | 'to' | 'term' | 'index' | 'logTerm' | 'entries' | 'commit' | 'reject' | 'rejectHint'
  | 'hintTerm' | 'snapshot' | 'offset' | 'chunk' | 'done' | 'context'
> = true;
const typeRange: Exact<`${MessageType}`, `${1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14}`> = true;
void messageFields;
void typeRange;
