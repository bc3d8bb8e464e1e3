// One connection through a member's link proxy: read the head of the first request to learn who dialed,
// connect to the member behind the proxy, replay what was read, then pipe both ways through the faults of
// the link (sender -> this member). Either side closing or failing closes both.

import net, { type Socket } from 'node:net';
import type { LinkFault } from '../types';
import { DelayedPipe, type PipeOwner } from './delayed-pipe';
import { SenderScanner, headComplete, senderIdOf } from './sender';

/**
 * How long the proxy waits for the head of the first request. A peer always speaks first (it sends an HTTP
 * request), so only something that is not a peer waits this long; it then passes unharmed, its sender unknown until
 * some later request names it.
 */
export const HEAD_TIMEOUT_MS = 2_000;

export interface ConnectionDeps {
  /** the member behind this proxy */
  to: string;
  backendHost: string;
  backendPort: number;
  /** the name of the member with this id, if identified (asked on every chunk: identify may come later) */
  senderName(id: bigint): string | undefined;
  linkFault(from: string, to: string): LinkFault | undefined;
  random(): number;
  onClose(conn: ProxiedConnection): void;
}

export class ProxiedConnection implements PipeOwner {
  private senderId: bigint | undefined;
  private backend: Socket | undefined;
  private readonly pipes: DelayedPipe[] = [];
  private closed = false;
  /** pending while the head is read: cleared on close, so a closed connection holds no timer */
  private headTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly client: Socket,
    private readonly deps: ConnectionDeps,
  ) {
    client.on('error', () => this.close());
    client.on('close', (hadError) => this.sideClosed(0, hadError));
    this.readHead();
  }

  /** the sender's name, undefined while unknown (no header, not identified, or head not read yet) */
  from(): string | undefined {
    return this.senderId === undefined ? undefined : this.deps.senderName(this.senderId);
  }

  get to(): string {
    return this.deps.to;
  }

  fault(): LinkFault | undefined {
    const from = this.from();
    return from === undefined ? undefined : this.deps.linkFault(from, this.deps.to);
  }

  random(): number {
    return this.deps.random();
  }

  cut(): void {
    this.close();
  }

  reset(): void {
    for (const s of [this.client, this.backend]) {
      if (!s || s.destroyed) continue;
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy(); // not connected yet: there is nothing to reset, only to close
      }
    }
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.headTimer);
    for (const p of this.pipes) p.stop();
    this.client.destroy();
    this.backend?.destroy();
    this.deps.onClose(this);
  }

  /**
   * One side's socket is closed (0: the client's, 1: the backend's). After an error, close at once; after an
   * orderly close, first let the bytes that side sent, still held by a delay, reach the other side.
   */
  private sideClosed(side: 0 | 1, hadError: boolean): void {
    const pipe = this.pipes[side];
    if (hadError || !pipe) this.close();
    else pipe.whenFinished(() => this.close());
  }

  private readHead(): void {
    const chunks: Buffer[] = [];
    let ended = false;
    const done = (): void => {
      clearTimeout(this.headTimer);
      this.client.pause();
      this.client.off('data', onData);
      this.client.off('end', onEnd);
      if (!this.closed) this.connect(Buffer.concat(chunks), ended);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      if (headComplete(Buffer.concat(chunks))) done();
    };
    const onEnd = (): void => {
      ended = true;
      done();
    };
    this.headTimer = setTimeout(done, HEAD_TIMEOUT_MS);
    this.client.on('data', onData);
    this.client.once('end', onEnd);
  }

  private connect(head: Buffer, clientEnded: boolean): void {
    this.senderId = senderIdOf(head);
    if (this.fault()?.block) return this.close();
    const backend = net.connect({ host: this.deps.backendHost, port: this.deps.backendPort, allowHalfOpen: true });
    this.backend = backend;
    // A refused or failed backend closes the client side too: the dialer sees its connection drop.
    backend.on('error', () => this.close());
    backend.on('close', (hadError) => this.sideClosed(1, hadError));
    backend.once('connect', () => {
      if (this.closed) return;
      // While the sender is unknown, later requests on the connection may still name it (keep-alive reuse).
      const scanner = new SenderScanner();
      const up = new DelayedPipe(this.client, backend, this, (chunk) => {
        if (this.senderId === undefined) this.senderId = scanner.feed(chunk);
      });
      const down = new DelayedPipe(backend, this.client, this);
      this.pipes.push(up, down);
      down.start(undefined, false);
      up.start(head, clientEnded);
    });
  }
}
