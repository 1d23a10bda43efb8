// The temporary mysqld that `mcb restore run` replays binlogs into and the verify job checks tables on: one
// definition of a server that changes nothing by itself (no events, no replication start, no persisted settings)
// and cannot be reached from outside (socket only, in a private run directory; secure-file-priv an empty private
// directory), run as the `mysql` OS account when we are root. Each option and why: docs/restore.md, "Run", step 6.
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, lchown, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { startMysqld, type MysqldBinary, type MysqldUser, type RunningMysqld } from '../mysql/mysqld.ts';
import { SetupError } from '../errors.ts';

/** The temporary server cannot be set up (an unreachable datadir): a setup problem (exit code 2), not a fault of the backup. */
export class RestoreServerSetupError extends SetupError {
  override readonly name = 'RestoreServerSetupError';
}

export interface RestoreServerOptions {
  datadir: string;
  /** Socket, pid file, log and the secure-file-priv directory; created private (0700), given to the server's account. */
  runDir: string;
  /** Default: a random one between 1e9 and 2e9, unlikely to be any real server's. */
  serverId?: number;
  /** More mysqld options after the clean ones (e.g. `--skip-log-bin`, `--gtid-mode=ON`). */
  extraArgs?: readonly string[];
  startTimeoutMs?: number;
  signal?: AbortSignal;
  /** Relay log options for a replay through the server's applier (docs/restore.md, "Run", step 6). */
  relayLogReplay?: boolean;
  /**
   * Aborting while the server starts kills it (SIGKILL) instead of asking it to shut down: a server that already
   * handles signals finishes its start (crash recovery of a big datadir included) before it shuts down, which can
   * outlast a worker's shutdown grace. For a datadir that is thrown away afterwards (a restore test).
   */
  killOnAbort?: boolean;
}

export interface MysqldAccount extends MysqldUser {
  groups: number[];
}

const SERVER_ACCOUNT = 'mysql';

function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** uid, gid and groups of an OS account (through `id`, so NSS accounts count), or undefined when there is none. */
export function lookupAccount(name: string): MysqldAccount | undefined {
  const id = (flag: string) => execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { name, uid: Number(id('-u')), gid: Number(id('-g')), groups: id('-G').split(/\s+/).map(Number) };
  } catch {
    return undefined;
  }
}

/** The account the temporary server runs as: `mysql` when we are root and it exists; otherwise ourselves (undefined). */
export function restoreServerAccount(): MysqldAccount | undefined {
  return isRoot() ? lookupAccount(SERVER_ACCOUNT) : undefined;
}

/** Whether `account` may search (x) a directory, by its mode bits; one not created yet will be (mkdir -p, 0755). */
function canTraverse(dir: string, account: MysqldAccount): boolean {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (!st) return true;
  if (st.uid === account.uid) return (st.mode & 0o100) !== 0;
  if (account.groups.includes(st.gid)) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/** Every directory above `dir` must be searchable by `account`, or mysqld cannot open its datadir. */
export function checkReachable(dir: string, account: MysqldAccount): void {
  const target = path.resolve(dir);
  for (let d = path.dirname(target); ; d = path.dirname(d)) {
    if (!canTraverse(d, account)) {
      const mode = (statSync(d).mode & 0o777).toString(8).padStart(4, '0');
      throw new RestoreServerSetupError(
        `the temporary mysqld runs as the ${account.name} user, which cannot reach ${target}: ${d} (mode ${mode}) is not searchable by it; use a directory it can reach, or chmod o+x ${d}`,
      );
    }
    if (d === path.dirname(d)) return;
  }
}

/** For a restore's first steps: fails, before anything is downloaded, when the server's account could not reach `datadir`. */
export function checkRestoreServerCanReach(datadir: string): void {
  const account = restoreServerAccount();
  if (account) checkReachable(datadir, account);
}

/** chown -R, without following symbolic links. */
async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await lchown(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && !lstatSync(p).isSymbolicLink()) await chownTree(p, uid, gid);
    else await lchown(p, uid, gid);
  }
}

async function privateDir(dir: string, account: MysqldAccount | undefined): Promise<void> {
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o700);
  if (account) await chown(dir, account.uid, account.gid);
}

/** mysqld options of a server that changes nothing by itself (docs/restore.md, "Run", step 6). */
export function cleanServerArgs(secureFileDir: string, serverId: number): string[] {
  // Every server from 8.0.17 (the oldest that opens a CLONE datadir) must accept these: an unknown option stops
  // mysqld. skip_replica_start exists from 8.0.26, skip_slave_start is its older name, and the group replication
  // option belongs to a plugin that may not be loaded: hence `--loose-` (a server lacking one warns and goes on).
  return [
    '--event-scheduler=DISABLED',
    '--loose-skip-replica-start',
    '--loose-skip-slave-start',
    '--loose-group-replication-start-on-boot=OFF',
    '--persisted-globals-load=OFF',
    `--secure-file-priv=${secureFileDir}`,
    `--server-id=${serverId}`,
  ];
}

/** The relay log name (`--relay-log`) of a server started with `relayLogReplay`, relative to its datadir. */
export const RESTORE_RELAY_LOG = 'mcb-restore-relay';

/** mysqld options of a server that replays binlogs through its applier (docs/restore.md, "Run", step 6). */
export function relayLogReplayArgs(): string[] {
  // replicate-same-server-id: no replayed event is skipped because its server id happens to be ours; with replica
  // updates logged it would loop on a server with a binlog, hence log_replica_updates off. That is 8.0.26's name;
  // an older server ignores the loose option (and warns that replicate-same-server-id is ignored with its
  // log_slave_updates on, harmless without a binlog).
  return [`--relay-log=${RESTORE_RELAY_LOG}`, '--replicate-same-server-id=ON', '--loose-log-replica-updates=OFF'];
}

/** The temporary server's log: in its run directory, there even when the server did not start. */
export function restoreServerLogFile(runDir: string): string {
  return path.join(path.resolve(runDir), 'mysqld.log');
}

/** Starts the clean temporary server on a restored datadir, socket only (docs/restore.md, "Run", step 6). */
export async function startRestoreServer(bin: MysqldBinary, opts: RestoreServerOptions): Promise<RunningMysqld> {
  const datadir = path.resolve(opts.datadir);
  const account = restoreServerAccount();
  if (account) checkReachable(datadir, account);
  const runDir = path.resolve(opts.runDir);
  const secureFileDir = path.join(runDir, 'files');
  await privateDir(runDir, account);
  await privateDir(secureFileDir, account);
  if (account) {
    await chmod(datadir, 0o750);
    await chownTree(datadir, account.uid, account.gid);
  }
  const kill = () => killChildrenOnDatadir(datadir);
  if (opts.killOnAbort) opts.signal?.addEventListener('abort', kill, { once: true });
  try {
    return await startMysqld(bin, {
      datadir,
      runDir,
      ...(account ? { user: account } : {}),
      extraArgs: [
        ...cleanServerArgs(secureFileDir, opts.serverId ?? randomInt(1_000_000_000, 2_000_000_000)),
        `--log-error=${restoreServerLogFile(runDir)}`,
        ...(opts.relayLogReplay ? relayLogReplayArgs() : []),
        ...(opts.extraArgs ?? []),
      ],
      ...(opts.startTimeoutMs ? { startTimeoutMs: opts.startTimeoutMs } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } finally {
    opts.signal?.removeEventListener('abort', kill);
  }
}

/**
 * SIGKILL to the processes this one started on `datadir` (their pid is not known before startMysqld returns): the
 * children of this process whose arguments include `--datadir=<datadir>`. Linux (/proc); elsewhere nothing is killed
 * and the server is asked to shut down as usual.
 */
function killChildrenOnDatadir(datadir: string): void {
  const arg = `--datadir=${datadir}`;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((f) => /^\d+$/.test(f));
  } catch {
    return;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid || !readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(arg)) continue;
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
}

/**
 * Stops the temporary server; `kill`: at once (SIGKILL), for a server whose datadir is thrown away anyway (a restore
 * test interrupted by a worker shutdown), where a clean InnoDB shutdown would only spend the shutdown grace.
 */
export async function stopRestoreServer(server: RunningMysqld, opts: { kill?: boolean } = {}): Promise<void> {
  if (opts.kill) {
    try {
      process.kill(server.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await server.stop().catch(() => undefined);
}

// "[System] [MY-013172] [Server] Received SHUTDOWN from user <via user signal>. Shutting down mysqld …" (a signal),
// "… Received SHUTDOWN from user root. …" (a SHUTDOWN statement): the server was told to stop, it did not crash.
const SHUTDOWN_REQUEST = /Received SHUTDOWN from user [^.]*/;

/** The log line saying the server was asked to shut down, if it was (the log is private to one run directory). */
export async function shutdownRequest(logFile: string): Promise<string | undefined> {
  const log = await readFile(logFile, 'utf8').catch(() => '');
  return SHUTDOWN_REQUEST.exec(log)?.[0];
}

const PARSE_ERROR = 1064;

/**
 * `RESET REPLICA ALL`: the restored datadir keeps no replication channel (a clone of a replica carries its
 * source's address, user and position). MySQL before 8.0.22 only knows `RESET SLAVE ALL`.
 */
export async function removeReplicationConfiguration(server: { socket: string }, user: string, password: string): Promise<void> {
  const conn = await mysql.createConnection({ socketPath: server.socket, user, password });
  try {
    await conn.query('RESET REPLICA ALL').catch(async (err: { errno?: number }) => {
      if (err.errno !== PARSE_ERROR) throw err;
      await conn.query('RESET SLAVE ALL');
    });
  } finally {
    await conn.end();
  }
}
