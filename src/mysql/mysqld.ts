// Runs a temporary mysqld: for restores (start a server on a restored datadir and read it) and for tests.
// Node built-ins only. The server is a child of this process; it is asked to shut down (SIGTERM) when this
// process exits without having called stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, openSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, open } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { removeTree } from '../fs/contained-rm.ts';
import { childEnvironment } from '../config/index.ts';
import { abortReason } from '../errors.ts';

/** How to run mysqld: an argv prefix (the binary, or a loader and its arguments then the binary) and the
 * arguments that must come first (`--no-defaults` must be the very first one). */
export interface MysqldBinary {
  command: string[];
  baseArgs: string[];
}

/** mysqld from a Debian root made by debootstrap, run through that root's own dynamic loader (see
 * docs/local-services.md): no chroot, so every path the server sees is a host path. */
export function mysqldFromSidRoot(root: string): MysqldBinary {
  const r = (p: string) => path.join(root, p);
  return {
    command: [r('lib64/ld-linux-x86-64.so.2'), '--library-path', `${r('lib/x86_64-linux-gnu')}:${r('usr/lib/x86_64-linux-gnu')}`, r('usr/sbin/mysqld')],
    baseArgs: [
      '--no-defaults',
      '--user=root',
      `--basedir=${r('usr')}`,
      `--lc-messages-dir=${r('usr/share/mysql')}`,
      `--character-sets-dir=${r('usr/share/mysql/charsets')}`,
      `--plugin-dir=${r('usr/lib/mysql/plugin')}`,
    ],
  };
}

/** A plainly installed mysqld (e.g. /usr/sbin/mysqld of a MySQL 8.0 package): its compiled-in paths are right. */
export function mysqldFromPath(mysqldPath: string): MysqldBinary {
  return { command: [mysqldPath], baseArgs: ['--no-defaults'] };
}

/** An OS account mysqld switches to (`--user`) when started by root. */
export interface MysqldUser {
  name: string;
  uid: number;
  gid: number;
}

export interface StartMysqldOptions {
  datadir: string;
  /** TCP port on 127.0.0.1. Omitted: no TCP at all (`--skip-networking`), the unix socket only. */
  port?: number;
  /** Where the socket, pid file and log go. Default: a new temporary directory, removed by stop(). */
  runDir?: string;
  /**
   * Run as this account (we must be root): it replaces any `--user` of the binary's base arguments, and the run
   * directory, the socket's directory and the log file are given to it. The datadir is the caller's business.
   */
  user?: MysqldUser;
  /** More mysqld options, after the ones this module sets (so they can override them). */
  extraArgs?: string[];
  /** How long to wait for the server to accept connections. Default 120 s. */
  startTimeoutMs?: number;
  /** Aborting while the server starts stops it and rejects (a restore interrupted by SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** Why a start gave up: the server exited first, did not accept connections in time, the start was aborted
 * (opts.signal), or the binary could not be run at all. */
export type MysqldStartFailure = 'exited' | 'timeout' | 'aborted' | 'spawn';

/** startMysqld failed. `errorLines`: the `[ERROR]` lines the server logged during this start, so that a caller can
 * tell why it exited (the message only carries the end of the log, which may be a stack trace or a page dump). */
export class MysqldStartError extends Error {
  override readonly name = 'MysqldStartError';
  constructor(
    message: string,
    readonly failure: MysqldStartFailure,
    readonly errorLines: readonly string[] = [],
  ) {
    super(message);
  }
}

export interface RunningMysqld {
  /** Undefined when the server has no TCP listener. */
  port?: number;
  pid: number;
  socket: string;
  logFile: string;
  /** Clean shutdown: SIGTERM, wait for the exit (bounded, then SIGKILL). Safe to call more than once. */
  stop(): Promise<void>;
}

const INITIALIZE_TIMEOUT_MS = 300_000;
const STOP_TIMEOUT_MS = 120_000;
const LOG_TAIL_LINES = 30;

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** mysqld refuses to run as root without --user; as another user --user only earns a warning, so add it for root only. */
function userArgs(bin: MysqldBinary, extra: string[] = []): string[] {
  const given = [...bin.baseArgs, ...extra].some((a) => a === '--user' || a.startsWith('--user=') || a === '-u');
  return !given && isRoot() ? ['--user=root'] : [];
}

/** The arguments without any `--user=X`, `--user X` or `-u X`: mysqld keeps the first --user it is given and ignores later ones. */
function withoutUser(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--user' || a === '-u') i++;
    else if (!a.startsWith('--user=')) out.push(a);
  }
  return out;
}

function tail(text: string, lines = LOG_TAIL_LINES): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

const MAX_ERROR_LINES = 100;

/** The `[ERROR]` lines of a log, each message once (InnoDB repeats a failed page read a hundred times). */
export function errorLinesOf(log: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const line of log.split('\n')) {
    const at = line.indexOf('[ERROR]');
    if (at < 0) continue;
    const message = line.slice(at);
    if (seen.has(message)) continue;
    seen.add(message);
    out.push(line);
    if (out.length === MAX_ERROR_LINES) break;
  }
  return out;
}

function splitCommand(bin: MysqldBinary): [string, string[]] {
  const [file, ...prefix] = bin.command;
  if (!file) throw new Error('MysqldBinary.command is empty');
  return [file, prefix];
}

/** `mysqld --initialize-insecure`: a new datadir whose root@localhost has no password. The datadir must not
 * exist or be empty; its parent is created. */
export async function initializeDatadir(bin: MysqldBinary, datadir: string): Promise<void> {
  const dir = path.resolve(datadir);
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) throw new Error(`cannot initialize ${dir}: it is not a directory`);
    if (readdirSync(dir).length > 0) throw new Error(`cannot initialize ${dir}: the directory is not empty`);
  }
  await mkdir(path.dirname(dir), { recursive: true });
  const [file, prefix] = splitCommand(bin);
  const args = [...prefix, ...bin.baseArgs, ...userArgs(bin), '--initialize-insecure', `--datadir=${dir}`];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnvironment() });
    let output = '';
    const collect = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.length > 256 * 1024) output = output.slice(-128 * 1024);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`mysqld --initialize-insecure of ${dir} did not finish within ${INITIALIZE_TIMEOUT_MS / 1000}s:\n${tail(output)}`));
    }, INITIALIZE_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`mysqld --initialize-insecure of ${dir} failed (${signal ?? `exit code ${code}`}):\n${tail(output)}`));
    });
  });
}

/** A unix socket path must stay under ~107 bytes. */
async function socketPath(runDir: string): Promise<{ socket: string; extraDir?: string }> {
  const socket = path.join(runDir, 'mysqld.sock');
  if (Buffer.byteLength(socket) <= 100) return { socket };
  const extraDir = await mkdtemp(path.join(os.tmpdir(), 'mcb-sock-'));
  return { socket: path.join(extraDir, 'mysqld.sock'), extraDir };
}

/** Reads what the log got after `offset`. */
async function readFrom(file: string, offset: number): Promise<string> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await fh.stat();
    if (size <= offset) return '';
    const length = Math.min(size - offset, 4 * 1024 * 1024);
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, size - length);
    return buf.toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Resolves true when something on 127.0.0.1:port (or the unix socket) sends a first packet (a MySQL server greets first). */
function greets(where: { port: number } | { socket: string }, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = 'port' in where ? net.connect({ host: '127.0.0.1', port: where.port }) : net.connect({ path: where.socket });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('data', () => done(true));
    sock.once('error', () => done(false));
    sock.once('end', () => done(false));
  });
}

const READY = /(?<!X Plugin )ready for connections/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/** Starts mysqld on `datadir`, listening on 127.0.0.1:port only (or on its unix socket only, without a port), and
 * waits until it accepts connections. Throws (with the end of the server's log) when it exits first or does not
 * answer in time. */
export async function startMysqld(bin: MysqldBinary, opts: StartMysqldOptions & { port: number }): Promise<RunningMysqld & { port: number }>;
export async function startMysqld(bin: MysqldBinary, opts: StartMysqldOptions): Promise<RunningMysqld>;
export async function startMysqld(bin: MysqldBinary, opts: StartMysqldOptions): Promise<RunningMysqld> {
  const datadir = path.resolve(opts.datadir);
  if (!existsSync(datadir)) throw new Error(`cannot start mysqld: datadir ${datadir} does not exist`);
  const ownsRunDir = opts.runDir === undefined;
  const runDir = opts.runDir === undefined ? await mkdtemp(path.join(os.tmpdir(), 'mcb-mysqld-')) : path.resolve(opts.runDir);
  await mkdir(runDir, { recursive: true });
  const { socket, extraDir } = await socketPath(runDir);
  const extraArgs = opts.extraArgs ?? [];
  const logOverride = [...extraArgs].reverse().find((a) => a.startsWith('--log-error='));
  const logFile = logOverride ? path.resolve(logOverride.slice('--log-error='.length)) : path.join(runDir, 'mysqld.log');
  const pidFile = path.join(runDir, 'mysqld.pid');
  const timeoutMs = opts.startTimeoutMs ?? 120_000;

  const { user } = opts;
  const [file, prefix] = splitCommand(bin);
  const args = [
    ...prefix,
    ...(user ? [...withoutUser(bin.baseArgs), `--user=${user.name}`] : [...bin.baseArgs, ...userArgs(bin, extraArgs)]),
    `--datadir=${datadir}`,
    ...(opts.port === undefined ? ['--skip-networking'] : [`--port=${opts.port}`, '--bind-address=127.0.0.1']),
    `--socket=${socket}`,
    `--pid-file=${pidFile}`,
    `--log-error=${logFile}`,
    '--loose-mysqlx=OFF', // loose: a server built without the X Plugin has no such option
    '--secure-file-priv=',
    ...(user ? withoutUser(extraArgs) : extraArgs),
  ];

  // The server's stdout/stderr go to the log too: a loader or option error comes before --log-error is used.
  const logFd = openSync(logFile, 'a');
  const startOffset = statSync(logFile).size;
  let child: ChildProcess;
  try {
    if (user) for (const p of [runDir, ...(extraDir ? [extraDir] : []), logFile]) chownSync(p, user.uid, user.gid);
    child = spawn(file, args, { stdio: ['ignore', logFd, logFd], env: childEnvironment() });
  } finally {
    closeSync(logFd);
  }
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  let spawnFailed: Error | undefined;
  void spawnError.then((e) => (spawnFailed = e));
  const onProcessExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  process.on('exit', onProcessExit);

  const cleanupDirs = async () => {
    // Both were made by mkdtemp in the temp dir.
    const within = { 'the temp dir': os.tmpdir() };
    if (extraDir) await removeTree(extraDir, { within });
    if (ownsRunDir) await removeTree(runDir, { within });
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        if (!(await waitExit(child, STOP_TIMEOUT_MS))) {
          child.kill('SIGKILL');
          await waitExit(child, 10_000);
        }
      }
      process.off('exit', onProcessExit);
      await cleanupDirs();
    })();
    return stopping;
  };

  const where = opts.port === undefined ? `socket ${socket}` : `127.0.0.1:${opts.port}`;
  const fail = async (why: string, failure: MysqldStartFailure): Promise<never> => {
    const log = await readFrom(logFile, startOffset);
    await stop();
    throw new MysqldStartError(`mysqld on ${where} (datadir ${datadir}) ${why}; log ${logFile}:\n${tail(log)}`, failure, errorLinesOf(log));
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await sleep(100);
    if (spawnFailed) {
      process.off('exit', onProcessExit);
      await cleanupDirs();
      throw new MysqldStartError(`cannot run ${file}: ${spawnFailed.message}`, 'spawn');
    }
    if (opts.signal?.aborted) {
      await stop();
      throw new MysqldStartError(`mysqld on ${where} (datadir ${datadir}) stopped while starting: ${abortReason(opts.signal)}`, 'aborted');
    }
    if (child.exitCode !== null || child.signalCode !== null) {
      return fail(`exited before accepting connections (${child.signalCode ?? `exit code ${child.exitCode}`})`, 'exited');
    }
    const log = await readFrom(logFile, startOffset);
    if (READY.test(log) && (await greets(opts.port === undefined ? { socket } : { port: opts.port }))) break;
    if (Date.now() > deadline) return fail(`did not accept connections within ${timeoutMs / 1000}s`, 'timeout');
  }

  const pid = child.pid;
  if (pid === undefined) return fail('has no pid', 'spawn');
  return { port: opts.port, pid, socket, logFile, stop };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (for tests). */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}
