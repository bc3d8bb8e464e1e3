// When a command that runs until stopped (watch, lease keep-alive) should stop: the io's signal (tests), or
// else SIGINT / SIGTERM of this process.

import type { CliIo } from './io';

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export interface StopHandle {
  readonly signal: AbortSignal;
  /** Removes the process signal handlers (if any were installed). */
  dispose(): void;
}

export function stopHandle(io: CliIo): StopHandle {
  if (io.signal !== undefined) return { signal: io.signal, dispose: () => {} };
  const ac = new AbortController();
  const onSignal = (): void => ac.abort();
  for (const s of STOP_SIGNALS) process.on(s, onSignal);
  return {
    signal: ac.signal,
    dispose: () => {
      for (const s of STOP_SIGNALS) process.off(s, onSignal);
    },
  };
}

/** Resolves when the signal is aborted (at once if it already is). */
export function whenAborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Waits `ms`, or less if the signal is aborted first. Resolves true if it was aborted. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
