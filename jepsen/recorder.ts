// The Recorder of types.ts: every operation's invocation and completion, and every fault, as history events
// (history.ts) with monotonic nanosecond times. Each event is appended to the history file as it happens (so
// that a crash of the harness keeps what was recorded) and kept in memory for the checkers.
//
// The recorder enforces the history's rules at the source, because a history that breaks them is a harness bug
// that would otherwise surface only later, as a confusing checker error: one operation in flight per process,
// one completion per invocation, and no invocation by a process retired by an `info`.

import { HistoryWriter, type HistoryEvent } from './history';
import type { Completion, NemesisEvent, Recorder } from './types';

export interface RecorderOptions {
  /** the history file (JSON lines, appended to); none: in memory only */
  file?: string;
}

export interface FileRecorder extends Recorder {
  /** writes any buffered lines to the file */
  flush(): void;
  /** flushes and closes the file; later events are refused */
  close(): void;
}

export function createRecorder(opts: RecorderOptions = {}): FileRecorder {
  const start = process.hrtime.bigint();
  const writer = opts.file !== undefined ? new HistoryWriter(opts.file) : undefined;
  const events: HistoryEvent[] = [];
  const inFlight = new Map<number, string>();
  const retired = new Set<number>();
  let next = 0;
  let lastTime = 0;
  let closed = false;

  function now(): number {
    // hrtime is monotonic; the max() only guards against two events in the same nanosecond reading going
    // backwards after the conversion to a double (it cannot, below 2^53 ns ~ 104 days, but it costs nothing).
    const t = Number(process.hrtime.bigint() - start);
    lastTime = Math.max(lastTime, t);
    return lastTime;
  }

  function record(ev: HistoryEvent): void {
    if (closed) throw new Error(`recorder is closed: cannot record ${ev.type} ${ev.f} of process ${ev.process}`);
    events.push(ev);
    // The file is flushed at every event: the history must survive a crash of the harness, and a few thousand
    // small writes per second are cheap next to the operations they record.
    if (writer) {
      writer.write(ev);
      writer.flush();
    }
  }

  return {
    invoke(proc: number, f: string, key: string | undefined, value: unknown): Completion {
      if (!Number.isSafeInteger(proc) || proc < 0) throw new Error(`recorder: process must be a non-negative integer, got ${proc}`);
      if (retired.has(proc)) {
        throw new Error(`recorder: process ${proc} invokes ${f} after an info retired it (use nextProcess())`);
      }
      const cur = inFlight.get(proc);
      if (cur !== undefined) throw new Error(`recorder: process ${proc} invokes ${f} while its ${cur} is still in flight`);
      if (proc >= next) next = proc + 1; // nextProcess() never hands out a number already used
      inFlight.set(proc, f);
      const inv: HistoryEvent = { process: proc, type: 'invoke', f, value: value === undefined ? null : value, time: now() };
      if (key !== undefined) inv.key = key;
      record(inv);
      let done = false;
      const complete = (type: 'ok' | 'fail' | 'info', v: unknown, error?: string): void => {
        if (done) throw new Error(`recorder: ${f} of process ${proc} completed twice (now ${type})`);
        done = true;
        inFlight.delete(proc);
        if (type === 'info') retired.add(proc);
        const ev: HistoryEvent = { process: proc, type, f, value: v === undefined ? null : v, time: now() };
        if (key !== undefined) ev.key = key;
        if (error !== undefined) ev.error = error;
        record(ev);
      };
      return {
        ok: (v?: unknown) => complete('ok', v),
        // A failed or indeterminate operation repeats its invocation's value, as Jepsen does: the checkers read
        // what was attempted from either event.
        fail: (error: string) => complete('fail', inv.value, error),
        info: (error: string) => complete('info', inv.value, error),
      };
    },
    nemesis(ev: NemesisEvent, phase: 'start' | 'stop'): void {
      // Both phases are `info`, as in Jepsen's histories: a fault is not an operation to pair, and its f
      // (start-<kind> / stop-<kind>) already says which phase it is; `phase` is kept for reports that need it.
      const out: HistoryEvent = {
        process: 'nemesis',
        type: 'info',
        f: ev.f,
        value: ev.value === undefined ? null : ev.value,
        time: now(),
      };
      if (ev.error !== undefined) out.error = ev.error;
      out.extra = { phase };
      record(out);
    },
    nextProcess(): number {
      return next++;
    },
    events(): readonly HistoryEvent[] {
      return events;
    },
    flush(): void {
      writer?.flush();
    },
    close(): void {
      if (closed) return;
      closed = true;
      writer?.close();
    },
  };
}
