// One direction of a proxied connection: bytes from `src` to `dst`, each chunk checked against the link's
// fault when it arrives. A delayed chunk waits in a FIFO queue whose release times never decrease, so a
// delay (or a delay shortened or healed mid-stream) never reorders bytes; an undelayed chunk behind queued
// ones waits its turn for the same reason.

import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { LinkFault } from '../types';

/** Bytes a pipe holds in its delay queue before it stops reading its source (TCP backpressure does the rest). */
const QUEUE_HIGH_WATER_BYTES = 4 * 1024 * 1024;

/** What a pipe needs from the connection it belongs to. */
export interface PipeOwner {
  /** the fault on the connection's link right now (undefined: healthy, or the sender is unknown) */
  fault(): LinkFault | undefined;
  /** uniform in [0, 1), for jitter and drops */
  random(): number;
  /** blocked: the connection is destroyed */
  cut(): void;
  /** dropped: the connection is reset (RST), as a lossy network ends a TCP stream */
  reset(): void;
}

interface Queued {
  /** performance.now() at which it may be written */
  at: number;
  /** null: the source ended, end the destination */
  chunk: Buffer | null;
}

export class DelayedPipe {
  private readonly queue: Queued[] = [];
  private queuedBytes = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  private stopped = false;
  /** the end of src has been passed on to dst */
  private finished = false;
  private onFinished: (() => void) | undefined;

  constructor(
    private readonly src: Socket,
    private readonly dst: Socket,
    private readonly owner: PipeOwner,
    /** sees every chunk from src before its fault is decided (the connection learns its sender from it) */
    private readonly inspect?: (chunk: Buffer) => void,
  ) {}

  /** Sends `first` (bytes already read from src, if any) as the first chunk, then the rest of src. */
  start(first: Buffer | undefined, srcEnded: boolean): void {
    if (first && first.length > 0) this.onChunk(first);
    if (srcEnded) this.enqueue(null, 0);
    else {
      this.src.on('data', (chunk: Buffer) => this.onChunk(chunk));
      this.src.once('end', () => this.enqueue(null, 0));
    }
    this.updateFlow();
  }

  /** Calls `fn` once everything src sent, and its end, has been written to dst (at once if it has been). */
  whenFinished(fn: () => void): void {
    if (this.finished) fn();
    else this.onFinished = fn;
  }

  /** Forgets queued bytes; the connection is going away. */
  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private onChunk(chunk: Buffer): void {
    if (this.stopped) return;
    this.inspect?.(chunk);
    const f = this.owner.fault();
    if (f?.block) return this.owner.cut();
    if (f?.dropProbability && this.owner.random() < f.dropProbability) return this.owner.reset();
    const delay = (f?.delayMs ?? 0) + (f?.jitterMs ? this.owner.random() * f.jitterMs : 0);
    this.enqueue(chunk, delay);
  }

  private enqueue(chunk: Buffer | null, delayMs: number): void {
    if (this.stopped) return;
    if (delayMs <= 0 && this.queue.length === 0) {
      this.write(chunk);
      return;
    }
    const at = Math.max(performance.now() + delayMs, this.lastAt);
    this.lastAt = at;
    this.queue.push({ at, chunk });
    this.queuedBytes += chunk?.length ?? 0;
    this.schedule();
    this.updateFlow();
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const wait = Math.max(0, this.queue[0]!.at - performance.now());
    this.timer = setTimeout(() => this.release(), wait);
  }

  private release(): void {
    this.timer = undefined;
    const now = performance.now();
    while (!this.stopped && this.queue.length > 0 && this.queue[0]!.at <= now) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk?.length ?? 0;
      this.write(chunk);
    }
    this.schedule();
    this.updateFlow();
  }

  private write(chunk: Buffer | null): void {
    if (chunk === null) {
      if (!this.dst.destroyed) this.dst.end();
      this.finished = true;
      this.onFinished?.();
      return;
    }
    if (this.dst.destroyed) return;
    if (!this.dst.write(chunk) && !this.waitingForDrain) {
      this.waitingForDrain = true;
      this.dst.once('drain', () => {
        this.waitingForDrain = false;
        this.updateFlow();
      });
      this.updateFlow();
    }
  }

  /** Reads from src only while dst keeps up and the delay queue is not too full. */
  private updateFlow(): void {
    if (this.stopped || this.src.destroyed) return;
    if (this.waitingForDrain || this.queuedBytes > QUEUE_HIGH_WATER_BYTES) this.src.pause();
    else this.src.resume();
  }
}
