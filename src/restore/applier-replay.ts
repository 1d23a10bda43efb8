// Binlog replay through the restored server's own SQL applier, the default replay method of a restore
// (docs/restore.md, "Run", step 8). The downloaded binlogs become the relay log of a channel whose receiver never
// starts; a relay log copied from a binlog keeps its positions, so `START REPLICA SQL_THREAD UNTIL` stops where
// replay.ts decided. What the clone holds is skipped by GTID, whole transactions. With
// replica_preserve_commit_order the workers commit in binlog order, so a failure leaves no gap. When the applier
// cannot be used, ApplierUnavailableError says why before anything is applied, with the files back where they
// were, and the caller replays with mysqlbinlog instead.
import { copyFile, chown, readdir, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { binlogFileName, readEvents, type GtidSet } from '../binlog/index.ts';
import { abortReason } from '../errors.ts';
import { RESTORE_RELAY_LOG, restoreServerAccount } from './server.ts';

/** The replication channel of the replay; it exists only while a restore replays. */
export const REPLAY_CHANNEL = 'mcb_replay';

/** START REPLICA/CHANGE REPLICATION SOURCE (8.0.22/23), the replica_* variables (8.0.26), LOGICAL_CLOCK by default (8.0.27). */
const MIN_VERSION: readonly [number, number, number] = [8, 0, 27];
const ER_SPECIFIC_ACCESS_DENIED = 1227;
/** An event larger than this cannot be scheduled to a worker; 1 GiB is the largest max_allowed_packet. */
const PENDING_JOBS_SIZE_MAX = 1024 * 1024 * 1024;
const PROGRESS_EVERY_MS = 30_000;

/** The applier cannot replay here; the message says why (the restore falls back to mysqlbinlog). */
export class ApplierUnavailableError extends Error {
  override readonly name = 'ApplierUnavailableError';
}

/** The applier stopped with an error, or short of the stop. */
export class ApplierReplayError extends Error {
  override readonly name = 'ApplierReplayError';
}

export interface ApplierReplayOptions {
  /** The temporary server, started with `relayLogReplay` (server.ts). */
  socket: string;
  user: string;
  password: string;
  /** Its datadir: the binlogs are moved there as its relay log. */
  datadir: string;
  /** Downloaded binlogs, in order (replay.ts's decision); the last one up to stopPosition when set. */
  files: string[];
  stopPosition?: number;
  /** The clone's gtid_executed: the applier skips these transactions. */
  clone: GtidSet;
  /** Applier workers; default one per core. */
  workers?: number;
  signal?: AbortSignal;
  log?: (message: string) => void;
}

/** Why a server version cannot use the applier, or undefined when it can. */
export function applierUnavailableForVersion(version: string): string | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) return `the server's version "${version}" is not a MySQL version`;
  const v = [Number(m[1]), Number(m[2]), Number(m[3])];
  for (let i = 0; i < 3; i++) {
    if (v[i]! > MIN_VERSION[i]!) return undefined;
    if (v[i]! < MIN_VERSION[i]!) return `mysqld ${version} is older than ${MIN_VERSION.join('.')}`;
  }
  return undefined;
}

/** The relay log file names of the replay channel for `count` binlogs, and its index. */
export function relayLogNames(count: number): { files: string[]; index: string } {
  const base = `${RESTORE_RELAY_LOG}-${REPLAY_CHANNEL}`;
  return { files: Array.from({ length: count }, (_, i) => binlogFileName(base, i + 1, 6)), index: `${base}.index` };
}

// `CREATE|ALTER [DEFINER = user] EVENT`, as the server logs it (`CREATE DEFINER=`root`@`localhost` EVENT …`).
const QUOTED = "(?:`(?:[^`]|``)*`|'(?:[^'\\\\]|\\\\.)*'|\"(?:[^\"\\\\]|\\\\.)*\"|[^\\s@`'\"]+)";
const EVENT_DDL = new RegExp(`^\\s*(?:CREATE|ALTER)\\s+(?:DEFINER\\s*=\\s*(?:CURRENT_USER(?:\\s*\\(\\s*\\))?|${QUOTED}(?:\\s*@\\s*${QUOTED})?)\\s+)?EVENT\\s`, 'i');

/** Whether a logged statement creates or alters an event. */
export function isEventDdl(statement: string): boolean {
  return EVENT_DDL.test(statement);
}

/**
 * The first statement of `files` (the last one up to `stopPosition`) that creates or alters an event, with where it
 * is; transactions whose GTID is in `skipped` (the clone's, which the applier skips) do not count.
 */
export async function firstEventDdl(files: string[], stopPosition: number | undefined, skipped: GtidSet): Promise<string | undefined> {
  for (const [i, file] of files.entries()) {
    const until = i === files.length - 1 ? (stopPosition ?? Number.POSITIVE_INFINITY) : Number.POSITIVE_INFINITY;
    let inSkipped = false;
    for await (const ev of readEvents(file, { verifyChecksums: false })) {
      if (ev.header.position >= until) break;
      if (ev.kind === 'gtid') inSkipped = !ev.anonymous && skipped.contains(ev.gtid);
      else if (ev.kind === 'query' && !inSkipped && isEventDdl(ev.query)) return `${path.basename(file)} at ${ev.header.position}: ${ev.query.replace(/\s+/g, ' ').slice(0, 100)}`;
    }
  }
  return undefined;
}

interface Placed {
  from: string;
  to: string;
  copied: boolean;
}

/**
 * Moves the binlogs into the datadir as relay log files (a rename; a copy when the datadir is another file
 * system, the original kept until commit()), writes the index, all given to the server's account. undo() puts
 * everything back as it was.
 */
async function placeRelayLogs(datadir: string, files: string[]): Promise<{ undo(): Promise<void>; commit(): Promise<void> }> {
  const names = relayLogNames(files.length);
  const account = restoreServerAccount();
  const give = async (p: string) => {
    if (account) await chown(p, account.uid, account.gid);
  };
  const placed: Placed[] = [];
  const indexFile = path.join(datadir, names.index);
  const undo = async () => {
    await rm(indexFile, { force: true });
    for (const p of placed.reverse()) {
      if (p.copied) await rm(p.to, { force: true });
      else await rename(p.to, p.from);
    }
  };
  try {
    for (const [i, from] of files.entries()) {
      const to = path.join(datadir, names.files[i]!);
      try {
        await rename(from, to);
        placed.push({ from, to, copied: false });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await copyFile(from, to);
        placed.push({ from, to, copied: true });
      }
      await give(to);
    }
    await writeFile(indexFile, names.files.map((f) => `./${f}\n`).join(''), { mode: 0o640 });
    await give(indexFile);
  } catch (err) {
    await undo().catch(() => undefined);
    throw err;
  }
  return {
    undo,
    async commit() {
      for (const p of placed) if (p.copied) await unlink(p.from).catch(() => undefined);
    },
  };
}

type Conn = mysql.Connection;

async function one<T>(conn: Conn, sql: string, params: unknown[] = []): Promise<T | undefined> {
  const [rows] = await conn.query(sql, params);
  return (rows as T[])[0];
}

/** Runs the setup statements; a missing privilege makes the applier unavailable rather than failing the restore. */
async function setUp(conn: Conn, user: string, sql: string, params: unknown[] = []): Promise<void> {
  try {
    await conn.query(sql, params);
  } catch (err) {
    const e = err as { errno?: number; message: string };
    if (e.errno === ER_SPECIFIC_ACCESS_DENIED) throw new ApplierUnavailableError(`the restore account ${user} may not set up a replication channel: ${e.message}`);
    throw err;
  }
}

interface ApplierState {
  running: boolean;
  relayFile: string;
  relayPos: number;
}

async function applierState(conn: Conn): Promise<ApplierState> {
  const [rows] = await conn.query(`SHOW REPLICA STATUS FOR CHANNEL '${REPLAY_CHANNEL}'`);
  const s = (rows as Array<Record<string, unknown>>)[0];
  if (!s) throw new ApplierReplayError(`the replication channel ${REPLAY_CHANNEL} is gone`);
  return { running: s.Replica_SQL_Running !== 'No', relayFile: String(s.Relay_Log_File), relayPos: Number(s.Relay_Log_Pos) };
}

/** The first error a worker or the coordinator stopped with, as one line naming the transaction. */
async function applierError(conn: Conn, binlogOf: (relayFile: string) => string): Promise<string | undefined> {
  const worker = await one<{ n: number; m: string; trx: string }>(
    conn,
    `SELECT LAST_ERROR_NUMBER AS n, LAST_ERROR_MESSAGE AS m, APPLYING_TRANSACTION AS trx FROM performance_schema.replication_applier_status_by_worker
      WHERE CHANNEL_NAME = ? AND LAST_ERROR_NUMBER <> 0 ORDER BY LAST_ERROR_TIMESTAMP LIMIT 1`,
    [REPLAY_CHANNEL],
  );
  const coordinator = await one<{ n: number; m: string }>(
    conn,
    'SELECT LAST_ERROR_NUMBER AS n, LAST_ERROR_MESSAGE AS m FROM performance_schema.replication_applier_status_by_coordinator WHERE CHANNEL_NAME = ?',
    [REPLAY_CHANNEL],
  );
  const error = worker ?? (coordinator && Number(coordinator.n) !== 0 ? coordinator : undefined);
  if (!error) return undefined;
  const message = String(error.m).replace(/\s+/g, ' ');
  // "Worker 1 failed executing transaction 'uuid:19' at source log , end_log_pos 4715; Error executing row event: …"
  // (no source log name: a binlog used as relay log has no rotate event naming it).
  const failed = /failed executing transaction '([^']+)' at source log [^,]*, end_log_pos (\d+); (.*)$/.exec(message);
  const { relayFile } = await applierState(conn);
  const where = `binlog ${binlogOf(relayFile)}`;
  if (failed) return `transaction ${failed[1]} (${where}, end_log_pos ${failed[2]}) failed: ${failed[3]} (error ${error.n})`;
  const trx = worker?.trx ? `transaction ${worker.trx} (${where})` : where;
  return `${trx}: ${message} (error ${error.n})`;
}

/**
 * Replays `files` through the server's applier up to `stopPosition` of the last one (or its end) and waits for it
 * to stop. Throws ApplierUnavailableError (nothing applied, files back in place) when it cannot be used,
 * ApplierReplayError when the replay fails. The channel is left for RESET REPLICA ALL.
 */
export async function replayThroughApplier(opts: ApplierReplayOptions): Promise<{ workers: number }> {
  const log = opts.log ?? (() => undefined);
  const workers = Math.max(1, opts.workers ?? os.availableParallelism());
  const last = opts.files.at(-1);
  if (!last) return { workers: 0 };
  const untilPos = opts.stopPosition ?? (await stat(last)).size;
  const names = relayLogNames(opts.files.length);
  const binlogOf = (relayFile: string) => {
    const i = names.files.indexOf(path.basename(relayFile));
    return i >= 0 ? path.basename(opts.files[i]!) : relayFile;
  };

  const conn = await mysql.createConnection({ socketPath: opts.socket, user: opts.user, password: opts.password });
  try {
    const info = await one<{ v: string; base: string }>(conn, 'SELECT VERSION() AS v, @@GLOBAL.relay_log_basename AS base');
    const tooOld = applierUnavailableForVersion(String(info!.v));
    if (tooOld) throw new ApplierUnavailableError(tooOld);
    const eventDdl = await firstEventDdl(opts.files, opts.stopPosition, opts.clone);
    if (eventDdl) throw new ApplierUnavailableError(`the binlogs create or alter an event, which the applier would store as REPLICA_SIDE_DISABLED (${eventDdl})`);
    const datadir = path.resolve(opts.datadir);
    if (path.resolve(String(info!.base)) !== path.join(datadir, RESTORE_RELAY_LOG)) {
      throw new ApplierReplayError(`the temporary server's relay log is ${info!.base}, not ${path.join(datadir, RESTORE_RELAY_LOG)}: it was not started for a relay-log replay`);
    }

    await setUp(conn, opts.user, 'SET GLOBAL replica_parallel_workers = ?, replica_preserve_commit_order = ON, replica_pending_jobs_size_max = ?', [workers, PENDING_JOBS_SIZE_MAX]);
    const placed = await placeRelayLogs(datadir, opts.files);
    try {
      // With RELAY_LOG_FILE given, the server keeps the relay logs it finds in the index instead of purging them.
      await setUp(conn, opts.user, `CHANGE REPLICATION SOURCE TO SOURCE_HOST = 'mcb-restore.invalid', RELAY_LOG_FILE = ?, RELAY_LOG_POS = 4 FOR CHANNEL '${REPLAY_CHANNEL}'`, [names.files[0]]);
    } catch (err) {
      await placed.undo();
      throw err;
    }
    await placed.commit();

    log(`replaying through the server's applier (${workers} worker${workers === 1 ? '' : 's'}) up to position ${untilPos} of ${path.basename(last)}`);
    const untilFile = names.files.at(-1)!;
    await conn.query(`START REPLICA SQL_THREAD UNTIL RELAY_LOG_FILE = ?, RELAY_LOG_POS = ? FOR CHANNEL '${REPLAY_CHANNEL}'`, [untilFile, untilPos]);

    let state = await applierState(conn);
    let nextProgress = Date.now() + PROGRESS_EVERY_MS;
    for (let delay = 20; state.running; delay = Math.min(delay * 2, 500)) {
      if (opts.signal?.aborted) throw new ApplierReplayError(`replaying binlogs was interrupted: ${abortReason(opts.signal)}`);
      await sleep(delay);
      state = await applierState(conn);
      if (Date.now() >= nextProgress) {
        nextProgress = Date.now() + PROGRESS_EVERY_MS;
        log(`applier: at position ${state.relayPos} of ${binlogOf(state.relayFile)} (file ${names.files.indexOf(path.basename(state.relayFile)) + 1} of ${names.files.length})`);
      }
    }
    const error = await applierError(conn, binlogOf);
    if (error) throw new ApplierReplayError(`replaying binlogs through the server's applier failed: ${error}`);
    if (path.basename(state.relayFile) !== untilFile || state.relayPos !== untilPos) {
      throw new ApplierReplayError(`the server's applier stopped at position ${state.relayPos} of ${binlogOf(state.relayFile)}, not at ${untilPos} of ${path.basename(last)}, without an error`);
    }
    return { workers };
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** Relay log files of the restore left in the datadir (RESET REPLICA ALL removes them; a server that died may not have). */
export async function removeRelayLogLeftovers(datadir: string): Promise<string[]> {
  const left = (await readdir(datadir).catch(() => [] as string[])).filter((f) => f.startsWith(`${RESTORE_RELAY_LOG}.`) || f.startsWith(`${RESTORE_RELAY_LOG}-`));
  for (const f of left) await rm(path.join(datadir, f), { force: true });
  return left;
}
