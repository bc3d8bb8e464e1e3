// One member's OS process: spawned with stdout and stderr appended to its log file (so that every run of the
// member, restarts included, lands in one file), tracked by pid, signalled by pid, and waited for with a
// bound. Nothing here ever kills anything it did not spawn.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';

/** How a process ended: `code` when it exited, `signal` when a signal ended it. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export function describeExit(s: ExitStatus): string {
  return s.signal !== null ? `killed by ${s.signal}` : `exit code ${s.code}`;
}

/** The last `n` non-empty lines of a file ('' when it cannot be read): for errors about a member that died. */
export function lastLines(file: string, n: number): string {
  let text: string;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      // Only the tail: a member's log can grow large over a run.
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      text = buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-n)
    .join('\n');
}

/** A command line that can be run again exactly as it was (restart reuses it). */
export interface CommandLine {
  command: string;
  args: readonly string[];
}

export class NodeProcess {
  private child: ChildProcess | undefined;
  private exit: ExitStatus | undefined;
  private exited: Promise<ExitStatus> | undefined;

  constructor(
    readonly name: string,
    readonly commandLine: CommandLine,
    readonly logFile: string,
    private readonly cwd: string,
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Spawned and not yet exited (a stopped, i.e. paused, process counts as alive). */
  get alive(): boolean {
    return this.child !== undefined && this.exit === undefined;
  }

  /** How the last run ended; undefined while it runs or before the first start. */
  get exitStatus(): ExitStatus | undefined {
    return this.exit;
  }

  /** Spawns the command line; throws if this process is still alive or the spawn itself fails. */
  start(): void {
    if (this.alive) throw new Error(`${this.name} is already running (pid ${this.pid})`);
    fs.appendFileSync(this.logFile, `--- harness: starting ${this.name}: ${this.commandLine.command} ${this.commandLine.args.join(' ')}\n`);
    const fd = fs.openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.commandLine.command, [...this.commandLine.args], { stdio: ['ignore', fd, fd], cwd: this.cwd });
    } finally {
      fs.closeSync(fd); // the child holds its own copy
    }
    this.exit = undefined;
    this.child = child;
    this.exited = new Promise<ExitStatus>((resolve) => {
      // 'error' without 'exit' happens when the binary cannot be spawned at all (ENOENT).
      child.once('error', (err) => {
        fs.appendFileSync(this.logFile, `--- harness: ${this.name} could not be spawned: ${err.message}\n`);
        const status: ExitStatus = { code: null, signal: null };
        if (this.child === child && this.exit === undefined) this.exit = status;
        resolve(status);
      });
      child.once('exit', (code, signal) => {
        const status: ExitStatus = { code, signal };
        if (this.child === child && this.exit === undefined) this.exit = status;
        resolve(status);
      });
    });
    if (child.pid === undefined) {
      // The spawn failed (the binary is missing or not executable): there is no process to track.
      this.exit = { code: null, signal: null };
      throw new Error(`${this.name}: could not spawn ${this.commandLine.command} (is it installed and executable?)`);
    }
  }

  /** Sends a signal to the process by pid; false when it is not alive. */
  signal(sig: NodeJS.Signals): boolean {
    const pid = this.pid;
    if (!this.alive || pid === undefined) return false;
    try {
      process.kill(pid, sig);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false; // exited an instant ago
      throw err;
    }
  }

  /** Resolves with the exit status once the process has exited, or undefined after `timeoutMs`. */
  async waitForExit(timeoutMs: number): Promise<ExitStatus | undefined> {
    if (this.exited === undefined) return undefined;
    if (this.exit !== undefined) return this.exit;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * SIGKILL (after SIGCONT, so that a paused process dies at once) and waits until it is gone. A process
   * that is already dead is fine. Throws only if it is still there after `timeoutMs`.
   */
  async kill(timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGCONT');
    this.signal('SIGKILL');
    const status = await this.waitForExit(timeoutMs);
    if (status === undefined) throw new Error(`${this.name} (pid ${this.pid}) still runs ${timeoutMs} ms after SIGKILL`);
  }
}
