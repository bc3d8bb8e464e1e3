// The nemesis schedule: healthy for intervalMs, one fault (chosen by the run's rng) for faultMs, repaired,
// and again, until the run is aborted. Every start and stop is recorded in the history (process "nemesis"),
// errors included; nothing a fault does is thrown out of the loop. On abort the active fault is stopped
// before returning, so the cluster is always left healed: links open, processes resumed and restarted.

import type { Nemesis, NemesisContext, NemesisEvent, Recorder } from '../types';
import { errorText } from './common';

export interface ScheduleContext extends NemesisContext {
  recorder: Recorder;
  signal: AbortSignal;
  /** healthy time before each fault */
  intervalMs: number;
  /** how long each fault is held */
  faultMs: number;
}

/** Waits `ms`, or less if `signal` aborts first. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

async function act(nemesis: Nemesis, phase: 'start' | 'stop', ctx: NemesisContext): Promise<NemesisEvent> {
  let ev: NemesisEvent;
  try {
    ev = await (phase === 'start' ? nemesis.start(ctx) : nemesis.stop(ctx));
  } catch (err) {
    ev = { f: `${phase}-${nemesis.kind}`, value: null, error: errorText(err) };
  }
  ctx.log(`nemesis ${ev.f} ${JSON.stringify(ev.value)}${ev.error ? ` error: ${ev.error}` : ''}`);
  return ev;
}

export async function runSchedule(ctx: ScheduleContext, nemeses: Nemesis[]): Promise<void> {
  for (const [name, ms] of [['intervalMs', ctx.intervalMs], ['faultMs', ctx.faultMs]] as const) {
    if (!Number.isFinite(ms) || ms < 0) throw new Error(`nemesis schedule ${name} must be a number >= 0, got ${String(ms)}`);
  }
  const { recorder, signal, intervalMs, faultMs, ...faultCtx } = ctx;
  if (nemeses.length === 0) {
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    return;
  }
  while (!signal.aborted) {
    await sleepUnlessAborted(intervalMs, signal);
    if (signal.aborted) break;
    const nemesis = ctx.rng.pick(nemeses);
    recorder.nemesis(await act(nemesis, 'start', faultCtx), 'start');
    await sleepUnlessAborted(faultMs, signal);
    recorder.nemesis(await act(nemesis, 'stop', faultCtx), 'stop');
  }
}
