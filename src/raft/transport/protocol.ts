// Constants of the peer stream protocol, shared by the dialing and the accepting side.

import type { IncomingMessage } from 'node:http';

/** The HTTP path on a member's peer listener where peer streams are upgraded to WebSockets. */
export const STREAM_PATH = '/raft/stream';

/** Bumped on any incompatible change of the handshake or the frame format; both sides must agree. */
export const PROTOCOL_VERSION = '1';

// Handshake request headers, sent by the dialer.
export const HEADER_VERSION = 'x-keel-transport-version';
export const HEADER_CLUSTER_ID = 'x-keel-cluster-id';
export const HEADER_FROM = 'x-keel-from';
export const HEADER_TO = 'x-keel-to';

// Refusal response headers, sent by the acceptor along with the cluster id header above (its own cluster),
// so that the dialer can log exactly what does not match without parsing the body.
export const HEADER_MEMBER_ID = 'x-keel-member-id';
export const HEADER_REJECT_REASON = 'x-keel-reject-reason';

export type RejectReason =
  | 'version-mismatch'
  | 'cluster-mismatch'
  | 'member-mismatch'
  | 'unknown-member'
  /** The dialer was removed from the cluster: it must stop (etcd answers such a peer 410 Gone). */
  | 'removed-member'
  | 'bad-request'
  | 'shutting-down';

/**
 * Largest frame either side accepts. Snapshot chunks are 1 MiB and append messages at most 1 MiB of entries
 * plus overhead, and the dialer batches only up to MAX_BATCH_BYTES, so 64 MiB leaves a wide margin while still
 * refusing a frame that claims gigabytes before it is buffered.
 */
export const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;

/** The dialer packs queued messages into frames of about this size: big enough to amortize per-frame
 *  cost, small enough that one frame does not hold the socket (and the receiver's decoder) for long. */
export const MAX_BATCH_BYTES = 4 * 1024 * 1024;

/** WebSocket close codes the acceptor uses (RFC 6455 section 7.4.1). */
export const CLOSE_INVALID_PAYLOAD = 1007;
export const CLOSE_POLICY = 1008;
export const CLOSE_GOING_AWAY = 1001;

/** A single-valued header of a request or response; absent or repeated counts as absent. */
export function headerOf(msg: IncomingMessage, name: string): string | undefined {
  const v = msg.headers[name];
  return typeof v === 'string' ? v : undefined;
}
