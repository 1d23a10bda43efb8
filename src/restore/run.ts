// Point-in-time restore: plan (plan.ts, from metadata rows or the bucket alone), download (parallel ranged GETs,
// sha256-verified, streamed), extract the full backup as a datadir, start a temporary mysqld on it (server.ts),
// replay archived binlogs from the clone's GTIDs up to an exact stop and no further (replay.ts; through the server's
// applier, applier-replay.ts, or mysqlbinlog | mysql), stop cleanly. The datadir must be empty at the start; on any
// failure, an abort (opts.signal) included, the server is stopped and the datadir emptied again (removed if we
// created it), so nothing half-restored can pass for a good restore. The whole story: docs/restore.md.
// May import: metadata, storage, mysql, archive, binlog, crypto, config, fs, time, streams.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, statSync } from 'node:fs';
import { chmod, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Duplex } from 'node:stream';
import mysql from 'mysql2/promise';
import { decodersFor, extractArchive } from '../archive/index.ts';
import { childEnvironment } from '../config/index.ts';
import { abortReason, SetupError } from '../errors.ts';
import { DecryptionError, emptyKeyring, type Keyring } from '../crypto/index.ts';
import { isEncryptedObjectName } from '../naming.ts';
import { GtidSet, type RestoreStop } from '../binlog/index.ts';
import { removeTree } from '../fs/contained-rm.ts';
import { localFileName } from '../fs/safe-name.ts';
import { mysqldFromPath, mysqldFromSidRoot, type MysqldBinary, type RunningMysqld } from '../mysql/mysqld.ts';
import { StorageError, type ObjectStore } from '../storage/index.ts';
import { HashingCounter } from '../streams/index.ts';
import { DEFAULT_DOWNLOAD_CONCURRENCY, openRangedDownload, type RangedDownloadOptions } from '../storage/ranged-download.ts';
import { describeTarget, type BinlogCandidate, type RestorePlan } from './plan.ts';
import { formatLocalTime, UTC, type TimeZone } from '../time/zone.ts';
import { checkReplayed, decideReplay, firstGtidMissingFromClone, previousGtidsOf } from './replay.ts';
import { removeReplicationConfiguration, startRestoreServer } from './server.ts';
import { ApplierUnavailableError, removeRelayLogLeftovers, replayThroughApplier } from './applier-replay.ts';
import { reportProgress } from './progress.ts';

/** The programs a restore runs. Each is an argv prefix plus arguments that must come first (`--no-defaults`). */
export interface RestoreBinaries {
  mysqld: MysqldBinary;
  mysqlbinlog: MysqldBinary;
  mysql: MysqldBinary;
}

/** mysqld, mysqlbinlog and mysql of a Debian root made by debootstrap, through that root's loader. */
export function binariesFromSidRoot(root: string): RestoreBinaries {
  const mysqld = mysqldFromSidRoot(root);
  const loader = mysqld.command.slice(0, -1);
  const charsets = `--character-sets-dir=${path.join(root, 'usr/share/mysql/charsets')}`;
  return {
    mysqld,
    mysqlbinlog: { command: [...loader, path.join(root, 'usr/bin/mysqlbinlog')], baseArgs: ['--no-defaults', charsets] },
    mysql: { command: [...loader, path.join(root, 'usr/bin/mysql')], baseArgs: ['--no-defaults', charsets] },
  };
}

/** A plainly installed server; mysqlbinlog and mysql default to the ones on PATH. */
export function binariesFromPath(mysqldPath: string, opts: { mysqlbinlog?: string; mysql?: string } = {}): RestoreBinaries {
  return {
    mysqld: mysqldFromPath(mysqldPath),
    mysqlbinlog: { command: [opts.mysqlbinlog ?? 'mysqlbinlog'], baseArgs: ['--no-defaults'] },
    mysql: { command: [opts.mysql ?? 'mysql'], baseArgs: ['--no-defaults'] },
  };
}

/** The datadir is not usable (not empty, not a directory): exit code 2 like other bad usage. */
export class RestoreRefusedError extends SetupError {
  override readonly name = 'RestoreRefusedError';
}

export class RestoreFailedError extends Error {
  override readonly name: string = 'RestoreFailedError';
}

export interface RunRestoreOptions {
  plan: RestorePlan;
  datadir: string;
  binaries: RestoreBinaries;
  /** The store holding the objects of a bucket (plan entries name their bucket; undefined = the default one). */
  storeFor(bucket: string | undefined): ObjectStore;
  /** Account of the restored server (the backed-up instance's accounts). Default root with no password. */
  user?: string;
  password?: string;
  log?: (message: string) => void;
  /**
   * Aborting (the CLI does on SIGINT/SIGTERM) interrupts the step in progress (download, extraction, mysqld
   * start-up, replay) and goes through the failure clean-up: server stopped, work directory removed, datadir
   * emptied or removed. The RestoreFailedError then names the abort reason.
   */
  signal?: AbortSignal;
  /** The metadata time zone, for the times printed (default UTC). */
  zone?: TimeZone;
  /** Ranged GETs in flight per download ([restore] download_concurrency); default 4. */
  downloadConcurrency?: number;
  /** How binlogs are replayed ([restore] replay_method); default the server's applier, mysqlbinlog when it cannot be used. */
  replayMethod?: ReplayMethod;
  /** The keys that open encrypted objects ([encryption]); none: an encrypted object fails the restore before it starts. */
  keyring?: Keyring;
}

/** `applier`: the restored server's own SQL applier on the binlogs as relay logs; `mysqlbinlog`: `mysqlbinlog | mysql`. */
export const replayMethods = ['applier', 'mysqlbinlog'] as const;
export type ReplayMethod = (typeof replayMethods)[number];

export interface RestoreResult {
  datadir: string;
  fullObject: string;
  binlogsApplied: string[];
  /** The position in the last binlog where the replay was cut, when it was. */
  stopPosition?: number;
  /** The method that replayed the binlogs (absent when none was replayed). */
  replayMethod?: ReplayMethod;
  gtidExecuted: string;
  /** The last transaction replayed from binlogs (or the full backup's recovery point when none was). */
  lastTransactionTime: Date;
  lastTransactionGtid?: string;
  target: string;
}

export function checkDatadirUsable(dir: string): { created: boolean } {
  if (!existsSync(dir)) return { created: true };
  if (!statSync(dir).isDirectory()) throw new RestoreRefusedError(`--datadir ${dir} exists and is not a directory`);
  const entries = readdirSync(dir);
  if (entries.length) {
    throw new RestoreRefusedError(`--datadir ${dir} is not empty (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); restore only into an empty or new directory`);
  }
  return { created: false };
}

/** How a restore reads an object: ranged GETs in flight (default 4, [restore] download_concurrency), their size, abort, and the keys of encrypted objects. */
export type DownloadOptions = Partial<RangedDownloadOptions> & { keyring?: Keyring; /** Add to the end of the file instead of replacing it. */ append?: boolean };

function openDownload(store: ObjectStore, key: string, opts: DownloadOptions) {
  const { concurrency = DEFAULT_DOWNLOAD_CONCURRENCY, rangeBytes, signal, retryDelaysMs } = opts;
  return openRangedDownload(store, key, { concurrency, rangeBytes, signal, retryDelaysMs });
}

/** Streams an object to `dest` (decompressed by its name's codec), checking the sha256 of the stored bytes. */
export async function downloadVerified(store: ObjectStore, key: string, expectedSha256: string | null, dest: string, opts: DownloadOptions = {}): Promise<{ bytes: number; sha256: string }> {
  const counter = new HashingCounter();
  const { stream } = await openDownload(store, key, opts);
  try {
    await pipeline(stream, counter, ...(decodersFor(key, opts.keyring) as [Duplex]), createWriteStream(dest, { mode: 0o600, flags: opts.append ? 'a' : 'w' }), { signal: opts.signal });
  } catch (err) {
    if (err instanceof DecryptionError) throw decryptionFailure(err, store);
    throw err;
  }
  const sha256 = counter.digest();
  if (expectedSha256 && sha256 !== expectedSha256) {
    throw new RestoreFailedError(`${key} in ${store.location}: sha256 is ${sha256}, the archive recorded ${expectedSha256}; the object is corrupt`);
  }
  return { bytes: counter.bytes, sha256 };
}

/**
 * A binlog held only as streamed segments: each segment's object in order (sha256-checked like any object),
 * appended into `dest`. Each must decode to exactly its range's length, so the file is the binlog's bytes
 * [0, last segment's end) as the server wrote them.
 */
export async function downloadSegments(storeFor: (bucket: string | undefined) => ObjectStore, b: BinlogCandidate, dest: string, opts: DownloadOptions = {}): Promise<void> {
  await writeFile(dest, '', { mode: 0o600 });
  for (const s of b.segments ?? []) {
    const store = storeFor(s.bucket ?? b.bucket);
    await downloadVerified(store, s.objectKey, s.sha256, dest, { ...opts, append: true });
    const size = (await stat(dest)).size;
    if (size !== s.to) {
      throw new RestoreCorruptError(`${s.objectKey} in ${store.location} holds ${size - s.from} bytes of ${b.file}, its name says ${s.to - s.from} (bytes ${s.from}-${s.to}); the segment is not what the streamer uploaded`);
    }
  }
}

/**
 * The stored backup itself is bad: its sha256 differs from the recorded one, it does not decompress or untar, or
 * it holds no datadir. A restore test records this as its result; anything else (storage unreachable, a cut
 * download, a local disk error) is an I/O failure worth retrying, not a verdict on the backup.
 */
export class RestoreCorruptError extends RestoreFailedError {
  override readonly name = 'RestoreCorruptError';
}

/** Local file-system errors while writing the datadir: the disk's fault, not the backup's. */
const LOCAL_IO_CODES = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'EMFILE', 'ENFILE', 'ENOMEM', 'EBUSY']);

/** Hashes the whole stored object (no extraction): the second opinion before calling an archive corrupt. */
async function storedSha256(store: ObjectStore, key: string, opts: DownloadOptions): Promise<string> {
  const counter = new HashingCounter();
  const { stream } = await openDownload(store, key, opts);
  await pipeline(stream, counter, async function* (source: AsyncIterable<Buffer>) {
    for await (const _ of source) void _;
  }, { signal: opts.signal });
  return counter.digest();
}

export interface ExtractFullOptions extends DownloadOptions {
  /** The stored length recorded with the backup (checked when there is no sha256 to check). */
  expectedBytes?: number | null;
  /** Progress lines every few seconds, and the totals at the end. */
  log?: (line: string) => void;
}

/**
 * Extracts the full backup into `datadir` (its top folder stripped) while hashing the stored bytes. Throws
 * RestoreCorruptError only when the object is bad; storage and local I/O errors are RestoreFailedError or the
 * store's own error. An archive that fails to extract for another reason (gzip or tar format errors, possibly a
 * truncated download) is downloaded once more and hashed whole before being called corrupt.
 */
export async function extractFullVerified(
  store: ObjectStore,
  key: string,
  expectedSha256: string | null,
  datadir: string,
  opts: ExtractFullOptions = {},
): Promise<void> {
  const { signal, expectedBytes } = opts;
  const counter = new HashingCounter();
  const download = await openDownload(store, key, opts);
  const source = download.stream;
  let sourceError: Error | undefined;
  source.on('error', (err) => {
    sourceError = err;
    counter.destroy(err);
  });
  source.pipe(counter);
  const progress = opts.log ? reportProgress(`downloading and extracting ${key}`, download.size, () => counter.bytes, opts.log) : undefined;
  try {
    await extractArchive(counter, { decoders: decodersFor(key, opts.keyring), destDir: datadir, strip: 1, signal });
    progress?.stop(true);
  } catch (err) {
    progress?.stop(false);
    source.destroy();
    const e = err as NodeJS.ErrnoException;
    if (signal?.aborted) throw new RestoreFailedError(`extracting ${key} was interrupted: ${abortReason(signal)}`);
    if (err instanceof DecryptionError && !sourceError) throw decryptionFailure(err, store);
    if (sourceError) {
      // The ranged download's own errors name the object and the store already.
      throw new RestoreFailedError(sourceError instanceof StorageError ? sourceError.message : `downloading ${key} from ${store.location} failed: ${sourceError.message}`);
    }
    if (e.code && LOCAL_IO_CODES.has(e.code)) throw new RestoreFailedError(`extracting ${key} into ${datadir} failed (local disk): ${e.message}`);
    let sha256: string;
    try {
      sha256 = await storedSha256(store, key, opts);
    } catch (again) {
      throw new RestoreFailedError(`extracting ${key} from ${store.location} failed (${e.message}), and downloading it again to check it failed too: ${(again as Error).message}`);
    }
    if (expectedSha256 && sha256 !== expectedSha256) {
      throw new RestoreCorruptError(`${key} in ${store.location}: sha256 is ${sha256}, the archive recorded ${expectedSha256}; the object is corrupt (extracting it failed: ${e.message})`);
    }
    throw new RestoreCorruptError(`extracting ${key} from ${store.location} failed: ${e.message}; the stored object is the one archived (sha256 ${sha256}), so the archive itself is corrupt`);
  }
  const sha256 = counter.digest();
  if (expectedSha256 && sha256 !== expectedSha256) {
    throw new RestoreCorruptError(`${key} in ${store.location}: sha256 is ${sha256}, the archive recorded ${expectedSha256}; the object is corrupt`);
  }
  // Without a checksum (seed-era archives) the size and the gzip trailer (CRC32 and length, checked by zlib) are what can be checked.
  if (expectedBytes != null && counter.bytes !== expectedBytes) {
    throw new RestoreCorruptError(`${key} in ${store.location}: ${counter.bytes} bytes were read, ${expectedBytes} expected; the object is truncated or changed`);
  }
  if (!existsSync(path.join(datadir, 'mysql.ibd'))) throw new RestoreCorruptError(`${key} does not hold a MySQL datadir (no mysql.ibd after extraction)`);
}

/**
 * Removes what a failed restore wrote: the datadir it created, or what it put in one it was given. A failed
 * extraction may still have file writes in flight (tar does not wait for them when its input fails), which can put
 * a file back after it was removed: the removal is repeated until the directory stays gone (or empty).
 */
async function undoRestore(datadir: string, created: boolean): Promise<boolean> {
  const within = { '--datadir': datadir };
  const leftovers = async () => (created ? existsSync(datadir) : (await readdir(datadir).catch(() => [] as string[])).length > 0);
  for (let attempt = 0; attempt < 10; attempt++) {
    if (created) await removeTree(datadir, { within, allowRoot: true }).catch(() => undefined);
    else for (const e of await readdir(datadir).catch(() => [] as string[])) await removeTree(path.join(datadir, e), { within }).catch(() => undefined);
    await sleep(200);
    if (!(await leftovers())) return true;
  }
  return false;
}

/**
 * A missing key is this host's configuration, not the backup's fault; any other decryption failure (a changed
 * byte, a moved or missing chunk, a cut object) means the stored object is not what was written.
 */
function decryptionFailure(err: DecryptionError, store: ObjectStore): RestoreFailedError {
  const message = `${err.message} (in ${store.location})`;
  return err.problem === 'unknown-key' ? new RestoreKeyMissingError(message) : new RestoreCorruptError(message);
}

/** An encrypted object's key is not configured on this host: retrying cannot help until [encryption] lists it. */
export class RestoreKeyMissingError extends RestoreFailedError {
  override readonly name = 'RestoreKeyMissingError';
}

/**
 * Before anything is downloaded or written: every encrypted object of the plan names (in its `mcb-key-id`) a key
 * this host has. Objects without that metadata are checked by their header when read.
 */
export async function checkKeysForPlan(plan: Pick<RestorePlan, 'full' | 'binlogs'>, keyring: Keyring | undefined, storeFor: (bucket: string | undefined) => ObjectStore): Promise<void> {
  const segments = plan.binlogs.flatMap((b) => (b.segments ?? []).map((s) => ({ bucket: b.bucket, ...s })));
  const objects = [plan.full, ...plan.binlogs.filter((b) => !b.segments), ...segments].filter((o) => isEncryptedObjectName(o.objectKey));
  for (const o of objects) {
    const known = 'encryptionKeyId' in o ? o.encryptionKeyId : undefined;
    const keyId = known ?? (await storeFor(o.bucket).stat(o.objectKey))?.metadata['mcb-key-id'];
    if (keyId && !keyring?.find(keyId)) {
      throw new RestoreKeyMissingError(`${o.objectKey} is encrypted with key ${keyId}, which is not configured (${(keyring ?? emptyKeyring).describe()}): add its key file to [encryption] key_files; nothing was restored`);
    }
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** `mysqlbinlog … | mysql …`, both exit codes checked, stderr kept for the message. */
export async function pipeBinlogsIntoServer(
  binaries: RestoreBinaries,
  files: string[],
  opts: { stopPosition?: number; excludeGtids?: string; socket: string; user: string; password: string; signal?: AbortSignal },
): Promise<void> {
  const [mbFile, ...mbPrefix] = binaries.mysqlbinlog.command;
  const [myFile, ...myPrefix] = binaries.mysql.command;
  const mbArgs = [
    ...mbPrefix,
    ...binaries.mysqlbinlog.baseArgs,
    ...(opts.stopPosition ? [`--stop-position=${opts.stopPosition}`] : []),
    ...(opts.excludeGtids ? [`--exclude-gtids=${opts.excludeGtids}`] : []),
    ...files,
  ];
  const myArgs = [...myPrefix, ...binaries.mysql.baseArgs, '--binary-mode', '--protocol=SOCKET', `--socket=${opts.socket}`, `--user=${opts.user}`];
  const mb = spawn(mbFile!, mbArgs, { stdio: ['ignore', 'pipe', 'pipe'], env: childEnvironment() });
  const my = spawn(myFile!, myArgs, { stdio: ['pipe', 'ignore', 'pipe'], env: { ...childEnvironment(), MYSQL_PWD: opts.password } });
  const kill = () => {
    mb.kill('SIGTERM');
    my.kill('SIGTERM');
  };
  opts.signal?.addEventListener('abort', kill, { once: true });
  if (opts.signal?.aborted) kill();
  mb.stdout.pipe(my.stdin);
  my.stdin.on('error', () => undefined); // EPIPE when mysql stops early: its exit code tells why
  // mysql gone early (an error): mysqlbinlog would block for ever on the full pipe, so it is stopped too.
  my.on('close', () => {
    if (mb.exitCode === null && mb.signalCode === null) mb.kill('SIGTERM');
  });
  const wait = (child: typeof mb | typeof my): Promise<Exit> =>
    new Promise((resolve) => {
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString('utf8')).slice(-8000);
      });
      child.on('error', (err) => resolve({ code: -1, signal: null, stderr: `cannot run: ${err.message}` }));
      child.on('close', (code, signal) => resolve({ code, signal, stderr }));
    });
  const [a, b] = await Promise.all([wait(mb), wait(my)]).finally(() => opts.signal?.removeEventListener('abort', kill));
  if (opts.signal?.aborted) throw new RestoreFailedError(`replaying binlogs was interrupted: ${abortReason(opts.signal)}`);
  if (b.code !== 0) throw new RestoreFailedError(`replaying binlogs failed: mysql exited with ${b.signal ?? b.code}: ${b.stderr.trim()}`);
  if (a.code !== 0) throw new RestoreFailedError(`replaying binlogs failed: mysqlbinlog exited with ${a.signal ?? a.code}: ${a.stderr.trim()}`);
}

export interface ReplayBinlogsOptions {
  binaries: RestoreBinaries;
  /** The temporary server (started with `relayLogReplay` for the applier) and its datadir. */
  socket: string;
  datadir: string;
  /** Binlogs in order, the last one up to stopPosition when set (replay.ts); the applier moves them into the datadir. */
  files: string[];
  stopPosition?: number;
  /** The clone's gtid_executed: mysqlbinlog leaves these transactions out. */
  clone: GtidSet;
  method: ReplayMethod;
  user: string;
  password: string;
  signal?: AbortSignal;
  log?: (message: string) => void;
}

/** Replays by `method`; the applier falls back to mysqlbinlog, with a log line saying why, when it cannot be used. Returns the method that ran. */
export async function replayBinlogs(opts: ReplayBinlogsOptions): Promise<ReplayMethod> {
  const log = opts.log ?? (() => undefined);
  const { socket, user, password, signal, stopPosition } = opts;
  if (opts.method === 'applier') {
    try {
      await replayThroughApplier({ socket, user, password, datadir: opts.datadir, files: opts.files, stopPosition, clone: opts.clone, signal, log });
      return 'applier';
    } catch (err) {
      if (!(err instanceof ApplierUnavailableError)) throw err;
      log(`replaying with mysqlbinlog | mysql, not the server's applier: ${err.message}`);
    }
  }
  // Transactions the clone holds are left out by mysqlbinlog itself rather than skipped by GTID on the server:
  // the `USE db` mysqlbinlog writes before them would fail for a database dropped before the clone.
  await pipeBinlogsIntoServer(opts.binaries, opts.files, { stopPosition, excludeGtids: opts.clone.toString(), socket, user, password, signal });
  return 'mysqlbinlog';
}

/**
 * mysqld options of the restore's temporary server, beyond the clean ones (server.ts). No redo log flush at each
 * replayed commit (`innodb_flush_log_at_trx_commit=2`: written to the OS at each commit, flushed once a second),
 * so a crash of mysqld loses nothing; only a crash of the host could lose the last second, and that interrupts the
 * restore itself. The clean shutdown at the end flushes everything. With a flush per commit, a replay on a disk with a 2 ms fsync is bound to about 400 transactions a second whatever the method.
 */
export const RESTORE_SERVER_ARGS: readonly string[] = ['--skip-log-bin', '--gtid-mode=ON', '--enforce-gtid-consistency=ON', '--innodb-flush-log-at-trx-commit=2'];

/** The binlog reader's stop for a restore target. */
export function restoreStopOf(target: RestorePlan['target']): RestoreStop {
  if (target.kind === 'latest') return { kind: 'end' };
  if (target.kind === 'gtid') return { kind: 'gtid', gtids: target.gtids, include: target.include };
  return { kind: 'time', atMicros: target.atMicros };
}

/**
 * The chain must begin at or before the clone's consistent point: every GTID executed before the first binlog
 * began must be in the clone (seed-era and --from-bucket backups have no recorded binlog position to trust).
 */
async function checkChainReachesClone(socket: string, user: string, password: string, firstBinlog: string, fullKey: string): Promise<GtidSet> {
  const conn = await mysql.createConnection({ socketPath: socket, user, password });
  let clone: GtidSet;
  try {
    const [rows] = await conn.query('SELECT @@GLOBAL.gtid_executed AS g');
    clone = GtidSet.parse(String((rows as Array<{ g: string }>)[0]!.g));
  } finally {
    await conn.end();
  }
  if (clone.isEmpty()) {
    throw new RestoreFailedError(`the clone in ${fullKey} has an empty gtid_executed: point-in-time replay needs gtid_mode=ON on the backed-up server`);
  }
  const missing = firstGtidMissingFromClone(await previousGtidsOf(firstBinlog), clone);
  if (missing) {
    throw new RestoreFailedError(
      `gap between ${fullKey} and its first binlog ${path.basename(firstBinlog)}: ${missing} was executed before that binlog began but is not in the clone; an earlier binlog is needed`,
    );
  }
  return clone;
}

export async function runRestore(opts: RunRestoreOptions): Promise<RestoreResult> {
  const { plan, binaries, signal } = opts;
  const log = opts.log ?? (() => undefined);
  const checkAbort = () => {
    if (signal?.aborted) throw new RestoreFailedError(abortReason(signal));
  };
  const datadir = path.resolve(opts.datadir);
  const { created } = checkDatadirUsable(datadir);
  const user = opts.user ?? 'root';
  const password = opts.password ?? '';
  const workDir = path.join(path.dirname(datadir), `.mcb-restore-${path.basename(datadir)}-${process.pid}`);
  // A restore removes only what it made: its work directory, a datadir it created, what it put in the datadir.
  const ownWorkDir = { within: { 'the restore work dir': workDir }, allowRoot: true };
  let server: RunningMysqld | undefined;
  await checkKeysForPlan(plan, opts.keyring, opts.storeFor);
  await mkdir(datadir, { recursive: true });
  try {
    checkAbort();
    await removeTree(workDir, ownWorkDir);
    await mkdir(workDir);
    await chmod(workDir, 0o711); // the temporary server may run as the mysql user: it must reach its run directory inside
    await mkdir(path.join(workDir, 'binlogs'), { mode: 0o700 });

    const full = plan.full;
    log(`extracting ${full.objectKey} (recovery point ${formatLocalTime(full.endTime, opts.zone ?? UTC)}) into ${datadir}`);
    const reading = { signal, concurrency: opts.downloadConcurrency, keyring: opts.keyring };
    await extractFullVerified(opts.storeFor(full.bucket), full.objectKey, full.sha256, datadir, { ...reading, expectedBytes: full.bytes, log });

    const files: string[] = [];
    const downloaded: BinlogCandidate[] = [];
    const download = async (b: BinlogCandidate) => {
      const dest = path.join(workDir, 'binlogs', localFileName(b.file, b.objectKey));
      checkAbort();
      if (b.segments) {
        log(`downloading ${b.file} from ${b.segments.length} streamed segment(s), bytes 0-${b.segments[b.segments.length - 1]!.to}`);
        await downloadSegments(opts.storeFor, b, dest, reading);
      } else {
        log(`downloading ${b.objectKey}`);
        await downloadVerified(opts.storeFor(b.bucket), b.objectKey, b.sha256, dest, reading);
      }
      files.push(dest);
      downloaded.push(b);
    };
    for (const b of plan.binlogs) await download(b);

    // Where to stop: the first file holding a transaction past the target is cut before it; later files are not replayed.
    const stop = restoreStopOf(plan.target);
    let replay = await decideReplay(files, stop);
    for (const next of plan.following ?? []) {
      if (replay.reached) break;
      // The target was not passed in the chain: the next file may still hold transactions committed before it
      // (a replica writes its source's transactions after they committed there).
      await download(next);
      replay = await decideReplay(files, stop);
    }
    if (plan.target.kind === 'gtid' && !replay.reached) {
      throw new RestoreFailedError(`no archived binlog after ${full.objectKey} holds a transaction of ${plan.target.gtids}: the GTID is not in this restore's binlogs`);
    }
    const applied = downloaded.slice(0, replay.files.length);
    const stopPosition = replay.stopPosition;
    let lastTime = full.endTime;
    const lastGtid = replay.last?.gtid;
    if (replay.last && replay.last.commitMicros / 1000 > lastTime.getTime()) lastTime = new Date(Math.floor(replay.last.commitMicros / 1000));

    checkAbort();
    log('starting a temporary mysqld (socket only, event scheduler and replication off)');
    server = await startRestoreServer(binaries.mysqld, {
      datadir,
      runDir: path.join(workDir, 'run'),
      extraArgs: RESTORE_SERVER_ARGS,
      relayLogReplay: true,
      signal,
    });
    checkAbort();
    let replayMethod: ReplayMethod | undefined;
    if (replay.files.length) {
      const clone = await checkChainReachesClone(server.socket, user, password, replay.files[0]!, full.objectKey);
      log(`replaying ${replay.files.length} binlog(s)${stopPosition ? ` up to position ${stopPosition} of ${path.basename(replay.files[replay.files.length - 1]!)}` : ''}`);
      const method = opts.replayMethod ?? 'applier';
      replayMethod = await replayBinlogs({ binaries, socket: server.socket, datadir, files: replay.files, stopPosition, clone, method, user, password, signal, log });
      log(`binlogs replayed by ${replayMethod === 'applier' ? "the server's applier" : 'mysqlbinlog | mysql'}`);
    }
    checkAbort();
    await removeReplicationConfiguration(server, user, password);
    const conn = await mysql.createConnection({ socketPath: server.socket, user, password });
    let gtidExecuted: string;
    try {
      const [rows] = await conn.query('SELECT @@GLOBAL.gtid_executed AS g');
      gtidExecuted = String((rows as Array<{ g: string }>)[0]!.g).replace(/\s+/g, '');
    } finally {
      await conn.end();
    }
    const proof = checkReplayed(GtidSet.parse(gtidExecuted), replay);
    if (proof.missing) throw new RestoreFailedError(`after replay the restored server lacks ${proof.missing}, a transaction the plan replayed (gtid_executed ${gtidExecuted})`);
    if (proof.extra) throw new RestoreFailedError(`after replay the restored server holds ${proof.extra}, a transaction committed after the target ${describeTarget(plan.target, opts.zone)}`);
    checkAbort();
    log('stopping the temporary mysqld');
    await server.stop();
    server = undefined;
    await removeRelayLogLeftovers(datadir);
    // The restore is done: a work directory that cannot be removed is worth a warning, not the restored datadir.
    await removeTree(workDir, ownWorkDir).catch((err: Error) => log(`warning: could not remove ${workDir}: ${err.message}`));
    return {
      datadir,
      fullObject: full.objectKey,
      binlogsApplied: applied.map((b: BinlogCandidate) => b.file),
      stopPosition,
      ...(replayMethod ? { replayMethod } : {}),
      gtidExecuted,
      lastTransactionTime: lastTime,
      lastTransactionGtid: lastGtid,
      target: describeTarget(plan.target, opts.zone),
    };
  } catch (err) {
    if (server) await server.stop().catch(() => undefined);
    await removeTree(workDir, ownWorkDir).catch(() => undefined);
    const why = signal?.aborted ? abortReason(signal) : (err as Error).message;
    // Nothing half-restored may stay behind: the directory was empty when we started.
    if (!(await undoRestore(datadir, created))) {
      throw new RestoreFailedError(`restore into ${datadir} failed, and what it wrote there could not all be removed: remove ${datadir} by hand, it is not a restored datadir: ${why}`);
    }
    throw new RestoreFailedError(`restore into ${datadir} failed; ${created ? 'the directory was removed' : 'the directory was emptied'}, nothing half-restored is left: ${why}`);
  }
}
