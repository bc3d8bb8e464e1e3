// Encoding of Entry.data for normal entries: a msgpackr map {id, cmd}. Decoding validates the shape,
// because the bytes come from the replicated log: a member must never crash on them, and every member
// must reach the same verdict (a malformed entry is a no-op everywhere).

import { Packr } from 'msgpackr';
import type { Command, Proposal } from './state-machine';

/** Plain msgpack maps without msgpackr's record extension: records depend on a structure table shared
 *  between encoder and decoder, which members (and restarts of one member) do not share. */
export const packr = new Packr({ useRecords: false });

export class MalformedProposalError extends Error {
  constructor(message: string) {
    super(`malformed proposal: ${message}`);
    this.name = 'MalformedProposalError';
  }
}

export function encodeProposal(p: Proposal): Uint8Array {
  // Built field by field so that absent options are absent on the wire too (not encoded as undefined),
  // and so that no stray property of the caller's object ends up in the log.
  const cmd = p.cmd;
  let wire: Record<string, unknown>;
  if (cmd.op === 'put') {
    wire = { op: 'put', key: cmd.key, value: cmd.value };
    if (cmd.prevKv) wire.prevKv = true;
  } else {
    wire = { op: 'delete', key: cmd.key };
    if (cmd.rangeEnd !== undefined) wire.rangeEnd = cmd.rangeEnd;
    if (cmd.prevKv) wire.prevKv = true;
  }
  return packr.pack({ id: p.id, cmd: wire });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** A copy, so that a decoded key does not pin the (possibly large) buffer it was decoded from. */
function bytes(v: unknown, field: string): Buffer {
  if (!(v instanceof Uint8Array)) throw new MalformedProposalError(`${field} is not binary`);
  return Buffer.from(v);
}

function optionalBool(v: unknown, field: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new MalformedProposalError(`${field} is not a boolean`);
  return v;
}

/** Throws MalformedProposalError if `data` is not a Proposal. Unknown extra fields are ignored. */
export function decodeProposal(data: Uint8Array): Proposal {
  let raw: unknown;
  try {
    raw = packr.unpack(data);
  } catch (err) {
    throw new MalformedProposalError(`not msgpack (${(err as Error).message})`);
  }
  if (!isRecord(raw)) throw new MalformedProposalError('not a map');
  if (typeof raw.id !== 'string') throw new MalformedProposalError('id is not a string');
  const c = raw.cmd;
  if (!isRecord(c)) throw new MalformedProposalError('cmd is not a map');
  const key = bytes(c.key, 'cmd.key');
  // The member refuses empty keys before proposing (validate.ts), so one in the log is not a request.
  if (key.length === 0) throw new MalformedProposalError('cmd.key is empty');
  let cmd: Command;
  if (c.op === 'put') {
    cmd = { op: 'put', key, value: bytes(c.value, 'cmd.value') };
    if (optionalBool(c.prevKv, 'cmd.prevKv')) cmd.prevKv = true;
  } else if (c.op === 'delete') {
    cmd = { op: 'delete', key };
    if (c.rangeEnd !== undefined && c.rangeEnd !== null) cmd.rangeEnd = bytes(c.rangeEnd, 'cmd.rangeEnd');
    if (optionalBool(c.prevKv, 'cmd.prevKv')) cmd.prevKv = true;
  } else {
    throw new MalformedProposalError(
      `unknown op ${typeof c.op === 'string' ? JSON.stringify(c.op) : `of type ${typeof c.op}`}`,
    );
  }
  return { id: raw.id, cmd };
}
