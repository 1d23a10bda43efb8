// A real `mcb worker` in a process group of its own, so a test can freeze (SIGSTOP) or kill -9 the whole group
// as a crash or a paused VM would, and read what it logged (pino JSON lines).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { mcbBin } from './spawn.ts';

export interface LogEvent {
  time: number;
  level: number;
  msg: string;
  event?: string;
  [key: string]: unknown;
}

export interface WorkerProcess {
  pid: number;
  child: ChildProcess;
  logFile: string;
  exited: Promise<number | null>;
  /** Sends a signal to the worker's whole process group. */
  signalGroup(signal: NodeJS.Signals): void;
  /** kill -9 of the process group, then waits for the worker to be gone. */
  killGroup(): Promise<void>;
  /** SIGTERM, then SIGKILL after timeoutMs; the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
  events(): LogEvent[];
  /** Waits for a logged event matching `match`. */
  waitForEvent(match: (e: LogEvent) => boolean, what: string, timeoutMs?: number): Promise<LogEvent>;
}

export function spawnWorker(configFile: string, logFile: string): WorkerProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [mcbBin, '-f', configFile, 'worker'], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env: { ...process.env, MCB_LOG_LEVEL: 'info' },
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const pid = child.pid!;
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  const events = (): LogEvent[] => {
    if (!existsSync(logFile)) return [];
    return readFileSync(logFile, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogEvent);
  };
  return {
    pid,
    child,
    logFile,
    exited,
    signalGroup,
    events,
    async killGroup() {
      signalGroup('SIGKILL');
      await exited;
    },
    async stop(timeoutMs = 30_000) {
      signalGroup('SIGCONT');
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async waitForEvent(match, what, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const found = events().find(match);
        if (found) return found;
        if (child.exitCode !== null || child.signalCode !== null) break;
        await sleep(50);
      }
      throw new Error(`worker ${pid} did not log ${what}; its log:\n${readFileSync(logFile, 'utf8').slice(-4000)}`);
    },
  };
}
