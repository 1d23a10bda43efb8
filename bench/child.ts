// Each measured step runs in a child process of its own, so the peak RSS it reports is that step's alone.
// A child prints one JSON line last: its figures plus `seconds` and `maxRssMiB`.
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Measured {
  seconds: number;
  /** Peak resident set of the process (or, for a pipeline of CLIs, of its largest process); undefined: not known. */
  maxRssMiB?: number;
  [key: string]: unknown;
}

/** In a child: times `work`, then prints its result with the seconds and this process's peak RSS. */
export async function measureAndPrint(work: () => Promise<Record<string, unknown>>): Promise<void> {
  const started = process.hrtime.bigint();
  const result = await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(JSON.stringify({ ...result, seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
}

/** The child's argument: one JSON object. */
export function childArgs<T>(): T {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: node --import tsx <script> <json options>');
  return JSON.parse(raw) as T;
}

function run(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-16000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs a bench script (TypeScript, through tsx) with one JSON argument and returns the JSON line it printed last. */
export async function runNodeChild(script: string, options: unknown): Promise<Measured> {
  const r = await run(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)]);
  if (r.code !== 0) throw new Error(`${path.basename(script)} failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-12).join('\n')}`);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(last) as Measured;
  } catch {
    throw new Error(`${path.basename(script)} printed no JSON line: ${r.stdout.slice(-2000)}`);
  }
}

/**
 * Times a shell command line. Peak RSS comes from GNU time when installed (`%M` of the shell, which is the largest
 * process of the pipeline it waited for, not their sum).
 */
export async function runShell(commandLine: string): Promise<Measured> {
  const gnuTime = '/usr/bin/time';
  const hasTime = await run(gnuTime, ['-f', '%M', 'true']).then((r) => r.code === 0, () => false);
  const rssFile = path.join(os.tmpdir(), `mcb-bench-rss-${process.pid}-${Date.now()}`);
  const started = process.hrtime.bigint();
  const r = hasTime ? await run(gnuTime, ['-f', '%M', '-o', rssFile, 'bash', '-c', commandLine]) : await run('bash', ['-c', commandLine]);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.code !== 0) throw new Error(`${commandLine} failed (exit ${r.code}): ${r.stderr.trim().slice(-2000)}`);
  let maxRssMiB: number | undefined;
  if (hasTime) {
    maxRssMiB = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) / 1024;
    rmSync(rssFile, { force: true });
  }
  return { seconds, maxRssMiB };
}

export function commandExists(name: string): Promise<boolean> {
  return run('bash', ['-c', `command -v ${name}`]).then((r) => r.code === 0, () => false);
}

/** Whether a command is there, installing its Debian package with apt-get when it is missing and we are root. */
export async function ensureCommand(name: string, debianPackage: string, log: (line: string) => void): Promise<boolean> {
  if (await commandExists(name)) return true;
  if (process.getuid?.() !== 0) return false;
  log(`${name} is missing: apt-get install -y ${debianPackage}`);
  const r = await run('apt-get', ['install', '-y', debianPackage], { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }).catch(() => undefined);
  return r?.code === 0 && commandExists(name);
}
