// The Raft peer transport: one long-lived outgoing WebSocket per peer, dialed by this member (peer-link.ts),
// and the accepting side for the streams peers dial to us. Each direction between two members is therefore
// its own stream, written by one side and read by the other, so neither side ever has to decide which of two
// crossing connections to keep.
//
// Handshake: the dialer sends x-keel-transport-version, x-keel-cluster-id, x-keel-from and x-keel-to on the
// upgrade request to /raft/stream. The acceptor answers 101, or refuses with HTTP 412 (400 for a malformed
// request, 503 while shutting down) carrying x-keel-reject-reason, its own x-keel-cluster-id and
// x-keel-member-id, and a plain-text explanation. Frames: see codec.ts.

import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import pino from 'pino';
import type { Logger } from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import type { Message, NodeId } from '../core/types';
import { decodeFrame, encodeMessage, messageProblem } from './codec';
import { PeerLink, streamUrlOf, terminateAndWait } from './peer-link';
import type { LinkSettings, PeerStats } from './peer-link';
import {
  CLOSE_INVALID_PAYLOAD,
  HEADER_CLUSTER_ID,
  HEADER_FROM,
  HEADER_MEMBER_ID,
  HEADER_REJECT_REASON,
  HEADER_TO,
  HEADER_VERSION,
  MAX_PAYLOAD_BYTES,
  PROTOCOL_VERSION,
  STREAM_PATH,
  headerOf,
} from './protocol';
import type { RejectReason } from './protocol';
import { LogThrottle } from './throttle';
import { positive, refuseUpgrade } from '../../util/upgrade-refusal';

export interface TransportOptions {
  selfId: NodeId;
  /** 16 hex digits; peers of another cluster are refused. */
  clusterId: string;
  /** Peer id -> peer URL (http://127.0.0.1:port). Self may be present; it is ignored. */
  peers: Map<NodeId, string>;
  /** Called for each message received from a peer, in the order the peer sent them. */
  onMessage: (m: Message) => void;
  /** Default: a silent logger (a library must not write to stdout unasked). */
  logger?: Logger;
  /** Per peer, default 8 MiB: bound on the send queue, and on the socket buffer before messages are dropped. */
  maxQueueBytes?: number;
  /** Per peer, default 4096. */
  maxQueueMessages?: number;
  /** Default 1000. */
  dialTimeoutMs?: number;
  /** Reconnect back-off, default 50 .. 2000 ms, exponential with jitter. */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** How often the outgoing stream is pinged (liveness and RTT), default 1000 ms. */
  pingIntervalMs?: number;
  /** An outgoing stream whose ping stays unanswered this long (with its buffer not draining) is dropped and
   *  redialed, default 5000 ms. */
  pongTimeoutMs?: number;
  /** Told each round trip measured on an outgoing stream (ping to pong), in seconds (the member's
   *  etcd_network_peer_round_trip_time_seconds). Must not throw. */
  onRoundTrip?: (peer: NodeId, seconds: number) => void;
  /** Whether an id was removed from the cluster: its streams are refused with 'removed-member' (so that it
   *  learns it and stops), not 'unknown-member'. */
  isRemoved?: (id: NodeId) => boolean;
  /** A peer refused our stream because this member was removed. Must not throw. */
  onRemoved?: (by: NodeId) => void;
}

export type { PeerStats, DropReason } from './peer-link';

type UpgradeListener = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void;

/** Repetitive warnings (handshake refusals on the accepting side, messages dropped in send()) are repeated
 *  at most this often per peer and reason. */
const REPEAT_WARN_INTERVAL_MS = 60_000;

/** After asking a misbehaving peer to close, how long to wait for its close frame before cutting the socket. */
const CLOSE_GRACE_MS = 1000;

/** Ids travel in HTTP headers: printable ASCII without spaces keeps them header-safe. */
const ID_PATTERN = /^[\x21-\x7e]{1,64}$/;
const CLUSTER_ID_PATTERN = /^[0-9a-f]{16}$/;

const MiB = 1024 * 1024;

export class PeerTransport {
  private readonly settings: LinkSettings;
  private readonly log: Logger;
  private readonly onMessage: (m: Message) => void;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly wss: WebSocketServer;
  private readonly attached: { server: http.Server; listener: UpgradeListener }[] = [];
  /** Incoming sockets no longer tracked by a link (replaced, or closing after a protocol error), so that
   *  close() can still cut them. */
  private readonly stray = new Set<WebSocket>();
  private readonly refusalWarnings = new LogThrottle(REPEAT_WARN_INTERVAL_MS);
  private readonly sendWarnings = new LogThrottle(REPEAT_WARN_INTERVAL_MS);
  private closing: Promise<void> | undefined;
  private readonly isRemoved: ((id: NodeId) => boolean) | undefined;

  constructor(opts: TransportOptions) {
    if (!ID_PATTERN.test(opts.selfId)) {
      throw new TypeError(`selfId ${JSON.stringify(opts.selfId)} is not a valid member id`);
    }
    const clusterId = opts.clusterId.toLowerCase();
    if (!CLUSTER_ID_PATTERN.test(clusterId)) {
      throw new TypeError(`clusterId ${JSON.stringify(opts.clusterId)} is not 16 hex digits`);
    }
    const backoffMinMs = positive('backoffMinMs', opts.backoffMinMs, 50);
    const backoffMaxMs = positive('backoffMaxMs', opts.backoffMaxMs, 2000);
    if (backoffMinMs > backoffMaxMs) throw new RangeError('backoffMinMs must not exceed backoffMaxMs');
    this.log = (opts.logger ?? pino({ level: 'silent' })).child({ component: 'raft-transport' });
    this.settings = {
      selfId: opts.selfId,
      clusterId,
      logger: this.log,
      maxQueueBytes: positive('maxQueueBytes', opts.maxQueueBytes, 8 * MiB),
      maxQueueMessages: positive('maxQueueMessages', opts.maxQueueMessages, 4096),
      dialTimeoutMs: positive('dialTimeoutMs', opts.dialTimeoutMs, 1000),
      backoffMinMs,
      backoffMaxMs,
      pingIntervalMs: positive('pingIntervalMs', opts.pingIntervalMs, 1000),
      pongTimeoutMs: positive('pongTimeoutMs', opts.pongTimeoutMs, 5000),
      onRoundTrip: opts.onRoundTrip,
      onRemoved: opts.onRemoved,
    };
    this.isRemoved = opts.isRemoved;
    this.onMessage = opts.onMessage;
    this.wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: MAX_PAYLOAD_BYTES,
      // Links track their own incoming socket; the server's set would be a second copy to keep in sync.
      clientTracking: false,
    });
    // Validate every URL before dialing any, so a bad configuration fails the constructor cleanly.
    for (const [id, url] of opts.peers) checkPeer(id, url);
    for (const [id, url] of opts.peers) this.setPeer(id, url);
  }

  /** Accepts incoming peer streams on this HTTP server (the member's peer listener) at path /raft/stream.
   *  Upgrade requests for other paths are left to other listeners. */
  attach(server: http.Server): void {
    if (this.closing !== undefined || this.attached.some((a) => a.server === server)) return;
    const listener: UpgradeListener = (req, socket, head) => this.onUpgrade(req, socket, head);
    server.on('upgrade', listener);
    this.attached.push({ server, listener });
  }

  /** Queues messages for their `to` peers; never blocks, never throws for an unreachable peer: drops (Raft
   *  retries). Messages are encoded here, so the caller may reuse the objects afterwards. */
  send(msgs: readonly Message[]): void {
    if (this.closing !== undefined) return;
    for (const m of msgs) {
      const link = this.links.get(m.to);
      if (link === undefined) {
        if (this.sendWarnings.allow(`unknown:${m.to}`)) {
          this.log.warn({ to: m.to, type: m.type }, m.to === this.settings.selfId
            ? 'dropping a message addressed to this member itself'
            : 'dropping a message for a peer the transport does not know');
        }
        continue;
      }
      if (!link.accepting) {
        // Cheaper than encoding it only to have the link drop it.
        link.countDrop('disconnected');
        continue;
      }
      // A message the receiver would refuse makes it close the whole stream, losing everything in flight
      // with it; refuse it here instead, where the bug is.
      const problem = m.from !== this.settings.selfId ? `from is ${m.from}, not this member` : messageProblem(m);
      if (problem !== undefined) {
        link.countDrop('encodeError');
        if (this.sendWarnings.allow(`invalid:${problem}`)) {
          this.log.error({ peer: m.to, type: m.type, problem }, 'dropping an invalid outgoing message');
        }
        continue;
      }
      let encoded: Buffer;
      try {
        encoded = encodeMessage(m);
      } catch (err) {
        link.countDrop('encodeError');
        this.log.error({ peer: m.to, type: m.type, err }, 'cannot encode outgoing message; dropped');
        continue;
      }
      link.enqueue(encoded);
    }
  }

  /** Adds a peer, or changes its URL (the current stream is dropped and the new URL dialed at once).
   *  Throws on an invalid id or URL. Self is ignored. */
  setPeer(id: NodeId, url: string): void {
    checkPeer(id, url);
    if (this.closing !== undefined || id === this.settings.selfId) return;
    const link = this.links.get(id);
    if (link !== undefined) {
      link.setUrl(url);
      return;
    }
    const created = new PeerLink(id, url, this.settings);
    this.links.set(id, created);
    this.log.info({ peer: id, url }, 'peer added');
    created.start();
  }

  /** Removes a peer: its queue is dropped, both streams are cut, and its future streams are refused. */
  removePeer(id: NodeId): void {
    const link = this.links.get(id);
    if (link === undefined) return;
    this.links.delete(id);
    this.log.info({ peer: id }, 'peer removed');
    void link.close();
  }

  /** Per peer: connection state, queue, drops, traffic, last RTT. A snapshot; later changes do not show. */
  stats(): Map<NodeId, PeerStats> {
    const out = new Map<NodeId, PeerStats>();
    for (const [id, link] of this.links) out.set(id, link.stats());
    return out;
  }

  /** True if the outgoing stream to this peer is up, or (when `ms` is given) a message from it arrived
   *  within the last `ms` ms. */
  isActive(id: NodeId, ms?: number): boolean {
    const link = this.links.get(id);
    if (link === undefined) return false;
    if (link.connected) return true;
    return ms !== undefined && link.lastReceivedMono !== undefined && performance.now() - link.lastReceivedMono <= ms;
  }

  /** Stops dialing and accepting, terminates every socket and timer. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    for (const { server, listener } of this.attached) server.off('upgrade', listener);
    this.attached.length = 0;
    const waits: Promise<void>[] = [];
    for (const link of this.links.values()) waits.push(link.close());
    for (const ws of this.stray) waits.push(terminateAndWait(ws));
    this.stray.clear();
    this.wss.close();
    this.closing = Promise.all(waits).then(() => undefined);
    return this.closing;
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    const path = (req.url ?? '').split('?', 1)[0];
    if (path !== STREAM_PATH) return; // someone else's upgrade (e.g. another API on the same listener)
    // After 'upgrade' the socket is ours, errors included: an unhandled one would crash the process.
    socket.on('error', (err) => this.log.debug({ err }, 'peer stream socket error'));
    const remote = `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`;
    const self = this.settings.selfId;
    const ours = this.settings.clusterId;

    if (this.closing !== undefined) {
      this.refuse(socket, 503, 'shutting-down', 'this member is shutting down');
      return;
    }
    const version = headerOf(req, HEADER_VERSION);
    const clusterHeader = headerOf(req, HEADER_CLUSTER_ID);
    const from = headerOf(req, HEADER_FROM);
    const to = headerOf(req, HEADER_TO);
    if (version !== PROTOCOL_VERSION) {
      const text = `peer ${clip(from)} connecting from ${remote} speaks transport protocol ${clip(version)}, ` +
        `we speak ${PROTOCOL_VERSION}`;
      this.warnRefusal(`version:${clip(from)}`, text);
      this.refuse(socket, 412, 'version-mismatch', text);
      return;
    }
    if (clusterHeader === undefined || from === undefined || to === undefined) {
      this.refuse(socket, 400, 'bad-request', `missing ${HEADER_CLUSTER_ID}, ${HEADER_FROM} or ${HEADER_TO}`);
      return;
    }
    const theirs = clusterHeader.toLowerCase();
    if (theirs !== ours) {
      const text = `peer ${clip(from)} connecting from ${remote} belongs to cluster ${clip(theirs)}, ` +
        `we are cluster ${ours}`;
      this.warnRefusal(`cluster:${clip(from)}:${clip(theirs)}`, text);
      this.refuse(socket, 412, 'cluster-mismatch', text);
      return;
    }
    if (to !== self) {
      const text = `peer ${clip(from)} connecting from ${remote} dialed member ${clip(to)}, ` +
        `but this is member ${self} (was a member replaced at this URL?)`;
      this.warnRefusal(`member:${clip(from)}:${clip(to)}`, text);
      this.refuse(socket, 412, 'member-mismatch', text);
      return;
    }
    const link = this.links.get(from);
    if (link === undefined && this.isRemoved?.(from) === true) {
      const text = `refused a stream from ${clip(from)} (connecting from ${remote}): that member was removed ` +
        `from the cluster`;
      this.warnRefusal(`removed:${clip(from)}`, text);
      this.refuse(socket, 410, 'removed-member', text);
      return;
    }
    if (link === undefined) {
      const text = `refused a stream from ${clip(from)} (connecting from ${remote}): not a member of this ` +
        `cluster as far as this member knows (removed, or not added yet)`;
      this.warnRefusal(`unknown:${clip(from)}`, text);
      this.refuse(socket, 412, 'unknown-member', text);
      return;
    }
    if (socket instanceof net.Socket) socket.setKeepAlive(true, 10_000);
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onInbound(link, ws, remote));
  }

  private onInbound(link: PeerLink, ws: WebSocket, remote: string): void {
    if (this.closing !== undefined || this.links.get(link.id) !== link) {
      ws.terminate();
      return;
    }
    const prev = link.inbound;
    link.inbound = ws;
    if (prev !== undefined) {
      // The peer redialed, so the old stream is dead or dying; anything still arriving on it is stale.
      this.log.debug({ peer: link.id }, 'a new incoming stream replaces the previous one');
      this.cutStray(prev);
    }
    this.log.debug({ peer: link.id, remote }, 'accepted incoming stream');
    ws.on('message', (data, isBinary) => this.onFrame(link, ws, data, isBinary));
    ws.on('error', (err) => {
      // ws reports the peer's protocol violations here (e.g. a frame above maxPayload) and then closes.
      this.log.warn({ peer: link.id, err: err.message }, 'incoming stream from peer failed');
    });
    ws.on('close', () => {
      if (link.inbound === ws) link.inbound = undefined;
      this.stray.delete(ws);
    });
  }

  private onFrame(link: PeerLink, ws: WebSocket, data: WebSocket.RawData, isBinary: boolean): void {
    if (link.inbound !== ws || this.closing !== undefined) return;
    if (!isBinary) {
      this.rejectStream(link, ws, 'text frame on a binary stream');
      return;
    }
    const frame = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    let msgs: Message[];
    try {
      msgs = decodeFrame(frame, link.id, this.settings.selfId);
    } catch (err) {
      this.rejectStream(link, ws, err instanceof Error ? err.message : String(err));
      return;
    }
    link.noteReceived(frame.length, msgs.length);
    for (const m of msgs) {
      // onMessage may have removed the peer or closed the transport.
      if (link.inbound !== ws || this.closing !== undefined) return;
      try {
        this.onMessage(m);
      } catch (err) {
        // The caller's bug, not the peer's: keep the stream, but do not let it crash the process from
        // inside a socket event.
        this.log.error({ peer: link.id, type: m.type, err }, 'onMessage threw; message dropped');
      }
    }
  }

  /** Closes an incoming stream whose peer broke the protocol, telling it why in the close frame. */
  private rejectStream(link: PeerLink, ws: WebSocket, problem: string): void {
    this.log.warn({ peer: link.id, problem }, 'malformed frame from peer; closing its stream');
    if (link.inbound === ws) link.inbound = undefined;
    this.stray.add(ws);
    ws.close(CLOSE_INVALID_PAYLOAD, 'malformed frame');
    const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    ws.once('close', () => clearTimeout(timer));
  }

  private cutStray(ws: WebSocket): void {
    if (ws.readyState === WebSocket.CLOSED) return;
    this.stray.add(ws);
    ws.terminate();
  }

  private warnRefusal(key: string, text: string): void {
    if (this.refusalWarnings.allow(key)) this.log.warn(text);
    else this.log.debug(text);
  }

  private refuse(socket: Duplex, status: number, reason: RejectReason, text: string): void {
    refuseUpgrade(socket, status, text, [
      `${HEADER_REJECT_REASON}: ${reason}`,
      `${HEADER_CLUSTER_ID}: ${this.settings.clusterId}`,
      `${HEADER_MEMBER_ID}: ${this.settings.selfId}`,
      `${HEADER_VERSION}: ${PROTOCOL_VERSION}`,
    ]);
  }

}


function checkPeer(id: NodeId, url: string): void {
  if (!ID_PATTERN.test(id)) throw new TypeError(`peer id ${JSON.stringify(id)} is not a valid member id`);
  streamUrlOf(url);
}

/** Values from a peer's headers end up in log lines and response bodies: keep them short. Header values
 *  cannot hold CR/LF (Node's parser rejects them), so they cannot forge response headers either. */
function clip(v: string | undefined): string {
  if (v === undefined) return '(none)';
  return v.length > 64 ? `${v.slice(0, 64)}...` : v;
}
