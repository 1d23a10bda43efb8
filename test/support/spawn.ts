// Runs the real `mcb` command line, as a DBA would, from the sources (bin/mcb.js runs the compiled build).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './env.ts';

export const mcbBin = path.join(repoRoot, 'test', 'support', 'mcb-from-sources.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runMcb(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mcbBin, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Daemon {
  child: ChildProcess;
  logFile: string;
  /** SIGTERM, then the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

export function startMcb(args: string[], logFile: string, env: NodeJS.ProcessEnv = {}): Daemon {
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, [mcbBin, ...args], { env: { ...process.env, MCB_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    logFile,
    async stop(timeoutMs = 60_000) {
      if (child.exitCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
