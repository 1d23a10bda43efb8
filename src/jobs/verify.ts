// `verify`: a restore test of an instance's newest Completed full backup (weekly, [schedule] verify). Downloads it
// (sha256-checked) into a scratch directory, starts a temporary mysqld on it (src/restore/server.ts), runs CHECK
// TABLE on a sample of tables, records verified_at and verify_state on the row, and removes the scratch copy.
// A failed verification is a result, not a job failure: retrying does not repair a corrupt object. Only what says
// something about the backup is recorded as `failed` (a full marked so is never restored from nor protected by
// expiry, so a false verdict costs a good backup); anything else fails the job and records nothing
// (classifyVerifyError decides). A host with no mysqld configured and none usable on PATH skips the test.
import { chmod, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import type { Config } from '../config/index.ts';
import { removeTree } from '../fs/contained-rm.ts';
import { MysqldStartError, type RunningMysqld } from '../mysql/mysqld.ts';
import { probeMysqld, resolveRestoreBinaries } from '../restore/binaries.ts';
import { extractFullVerified, RestoreCorruptError, RestoreKeyMissingError } from '../restore/run.ts';
import { CheckTableError, checkSampleTables } from '../restore/check-tables.ts';
import { restoreServerLogFile, RestoreServerSetupError, shutdownRequest, startRestoreServer, stopRestoreServer } from '../restore/server.ts';
import { defineJob, PermanentJobError, requireInt } from './types.ts';

export interface VerifyPayload {
  instanceId: number;
  /** Verify this backup instead of the newest one. */
  backupUuid?: string;
}

export interface VerifyResult {
  /** skipped: this worker's host has no usable mysqld and none is configured; nothing was downloaded or recorded. */
  state: 'ok' | 'failed' | 'skipped';
  /** The backup tested (absent when skipped). */
  backupUuid?: string;
  objectKey?: string;
  tablesChecked: string[];
  reason?: string;
  /** The server version that ran the test. */
  mysqldVersion?: string;
}

const SAMPLE_TABLES = 20;

function errorOf(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** An error the server returned for a statement (it has an SQLSTATE), or the server dying under it. */
function isServerVerdict(err: unknown): boolean {
  const e = err as { sqlState?: string; code?: string };
  return typeof e.sqlState === 'string' || e.code === 'PROTOCOL_CONNECTION_LOST';
}

/**
 * What went wrong during a restore test: a `finding` about the backup (recorded as verify_state 'failed'), or a
 * `jobError`, a failure of the test itself that the job throws (retried unless a PermanentJobError), leaving the
 * row as it was.
 */
export type VerifyOutcome = { finding: string } | { jobError: Error };

type StartFailureCause = 'option' | 'version' | 'host' | 'data';

/**
 * Why mysqld exited while starting, read from the [ERROR] lines it logged; the first rule that matches decides,
 * so the data rule (any InnoDB error) comes last: InnoDB also reports a downgrade or a full disk. Warnings are
 * not read: every start warns about `--loose-` options the server does not know.
 */
const START_FAILURE_RULES: ReadonlyArray<{ cause: StartFailureCause; pattern: RegExp }> = [
  // MySQL 9.7: "[ERROR] [MY-000067] [Server] unknown variable 'x=1'.", "[ERROR] [MY-000068] [Server] unknown option '--x'."
  { cause: 'option', pattern: /unknown (variable|option)|ambiguous option|Error while setting value/i },
  // "[ERROR] [MY-014061] [InnoDB] Invalid MySQL server downgrade: Cannot downgrade from 90900 to 90704. …", upgrade refusals
  { cause: 'version', pattern: /\b(up|down)grade/i },
  { cause: 'host', pattern: /No space left|Permission denied|must be writable|Too many open files|Cannot allocate memory|Out of memory|Input\/output error|(error number|errno:?|Errcode:?) (5|12|13|24|28)\b|io_setup|Unable to lock|unix socket/i },
  // Corrupt pages, a missing redo log, a system tablespace of the wrong size, a data dictionary that does not load.
  { cause: 'data', pattern: /\[InnoDB\]|Data Dictionary|DD Storage Engine|corrupt|Incorrect information in file/i },
];

/** The cause of an exit while starting and the [ERROR] lines that show it; undefined when no rule matches. */
export function startFailureCause(errorLines: readonly string[]): { cause: StartFailureCause; lines: string[] } | undefined {
  for (const { cause, pattern } of START_FAILURE_RULES) {
    const lines = errorLines.filter((l) => pattern.test(l));
    if (lines.length) return { cause, lines };
  }
  return undefined;
}

/** The message of an [ERROR] line without its timestamp and thread id. */
function logLineMessage(line: string): string {
  return line.slice(Math.max(0, line.indexOf('[ERROR]'))).trim();
}

function describeLines(lines: readonly string[]): string {
  return lines.slice(0, 5).map(logLineMessage).join(' | ');
}

/** A temporary mysqld that did not start: only its refusing the data is a finding. */
function classifyStartFailure(err: MysqldStartError): VerifyOutcome {
  if (err.failure !== 'exited') return { jobError: err }; // aborted, timed out, or the binary could not be run
  const found = startFailureCause(err.errorLines);
  switch (found?.cause) {
    case 'data':
      return { finding: `mysqld does not start on the restored datadir: ${describeLines(found.lines)}` };
    case 'option':
      return { jobError: new PermanentJobError(`verify: the configured mysqld rejects an option of the temporary server: ${describeLines(found.lines)}`) };
    case 'version':
      return { jobError: new PermanentJobError(`verify: the configured mysqld cannot open a datadir of the backup's version: ${describeLines(found.lines)}`) };
    default:
      return { jobError: err }; // the host (disk, memory, permissions), or an exit that does not point at the data
  }
}

/**
 * Sorts an error of a restore test into a finding about the backup (a checksum mismatch, an archive that does not
 * extract, mysqld refusing the datadir's data, CHECK TABLE errors) or a failure of the job (everything else;
 * permanent for a mysqld that rejects an option or cannot open a datadir of that version). `serverShutdown`: the
 * temporary server's log line saying it was told to shut down (a signal from outside, e.g. systemd stopping every
 * process of the worker's service), when it says so.
 */
export function classifyVerifyError(err: unknown, signal: AbortSignal, serverShutdown?: string): VerifyOutcome {
  // Shutting down: whatever failed (mysqld stopped while starting, a connection cut) says nothing about the backup.
  if (signal.aborted) return { jobError: errorOf(err) };
  // The server was shut down under the test (CHECK TABLE then fails with a lost connection or "shutdown in
  // progress", which would otherwise read as the server's verdict): nothing about the backup either.
  if (serverShutdown) return { jobError: new Error(`the temporary mysqld was shut down from outside during the restore test (${serverShutdown}): ${errorOf(err).message}`) };
  if (err instanceof RestoreCorruptError) return { finding: err.message };
  if (err instanceof RestoreKeyMissingError) return { jobError: new PermanentJobError(`verify: ${err.message}`) };
  if (err instanceof CheckTableError) return isServerVerdict(err.error) ? { finding: err.message } : { jobError: errorOf(err.error) };
  // A scratch path the server's account cannot reach: a configuration error.
  if (err instanceof RestoreServerSetupError) return { jobError: new PermanentJobError(`verify: ${err.message}`) };
  if (err instanceof MysqldStartError) return classifyStartFailure(err);
  return { jobError: errorOf(err) }; // storage unreachable, a cut download, ENOSPC, a login refused…
}

export const verifyJob = defineJob<VerifyPayload, VerifyResult>({
  name: 'verify',
  parse: (data) => {
    const backupUuid = (data as Record<string, unknown> | null)?.backupUuid;
    if (backupUuid !== undefined && typeof backupUuid !== 'string') throw new PermanentJobError('job payload: backupUuid must be a string');
    return { instanceId: requireInt(data, 'instanceId'), ...(backupUuid ? { backupUuid } : {}) };
  },

  async handle({ instanceId, backupUuid }, ctx) {
    const resolved = resolveRestoreBinaries(ctx.config.restore);
    const probe = await probeMysqld(resolved.binaries.mysqld);
    if (!probe.ok) {
      if (resolved.from !== 'default') throw new PermanentJobError(`verify: cannot run the configured server, ${resolved.description}: ${probe.reason}`);
      const reason = `no usable mysqld on this worker's host (${probe.reason}); set [restore] sid_root or mysqld in ${ctx.config.file} to run restore tests here`;
      ctx.log.warn({ instance: instanceId, state: 'skipped', reason }, 'restore test skipped');
      return { state: 'skipped', tablesChecked: [], reason };
    }

    const rows = await ctx.metadata.listBackups({ instanceId, type: 'full', states: ['Completed'], limit: 1000 });
    const candidates = rows.filter((r) => r.objectKey && !r.isDelete && (!backupUuid || r.backupUuid === backupUuid));
    candidates.sort((a, b) => (b.endTime?.getTime() ?? 0) - (a.endTime?.getTime() ?? 0));
    const row = candidates[0];
    if (!row) throw new PermanentJobError(`instance ${instanceId} has no Completed full backup${backupUuid ? ` with uuid ${backupUuid}` : ''} to verify`);

    const { label, base } = scratchBase(ctx.config);
    const scratch = await mkdtemp(path.join(base, `verify_${instanceId}_`));
    await chmod(scratch, 0o711); // the temporary server may run as the mysql user: it must reach the datadir inside
    const datadir = path.join(scratch, 'data');
    const runDir = path.join(scratch, 'run');
    const tablesChecked: string[] = [];
    let server: RunningMysqld | undefined;
    let reason: string | undefined;
    try {
      await extractFullVerified(ctx.storage, row.objectKey!, row.sha256, datadir, {
        signal: ctx.signal,
        concurrency: ctx.config.restore.downloadConcurrency,
        keyring: ctx.config.encryption,
        log: (line) => ctx.log.info({ instance: instanceId, backupUuid: row.backupUuid }, line),
      });
      // The same clean server as a restore (src/restore/server.ts): no events fire, no replication, no TCP.
      server = await startRestoreServer(resolved.binaries.mysqld, { datadir, runDir, extraArgs: ['--skip-log-bin'], signal: ctx.signal, killOnAbort: true });
      // An account of the restored server (the backed-up instance's own accounts): [restore] user / password.
      // Failing to log in is a configuration problem (or the server went away): the job fails.
      const conn = await mysql.createConnection({ socketPath: server.socket, user: ctx.config.restore.user, password: ctx.config.restore.password });
      // A worker shutting down does not wait for a long CHECK TABLE: the query fails, the job is handed back.
      const cut = () => conn.destroy();
      ctx.signal.addEventListener('abort', cut, { once: true });
      try {
        reason = await checkSampleTables(conn, SAMPLE_TABLES, tablesChecked);
      } finally {
        ctx.signal.removeEventListener('abort', cut);
        await conn.end().catch(() => undefined);
      }
    } catch (err) {
      const outcome = classifyVerifyError(err, ctx.signal, await shutdownRequest(restoreServerLogFile(runDir)));
      if ('jobError' in outcome) {
        const what = ctx.signal.aborted ? 'restore test interrupted' : 'restore test could not run';
        ctx.log.warn({ instance: instanceId, backupUuid: row.backupUuid, err: outcome.jobError.message }, `${what}; nothing recorded, the job fails`);
        throw outcome.jobError;
      }
      reason = outcome.finding;
    } finally {
      // Interrupted by a shutdown: the scratch copy is thrown away, so its server is killed, not shut down cleanly.
      if (server) await stopRestoreServer(server, { kill: ctx.signal.aborted });
      await removeTree(scratch, { within: { [label]: base } });
    }

    const state = reason ? 'failed' : 'ok';
    await ctx.metadata.update(row.backupUuid, { verifiedAt: ctx.now(), verifyState: state, ...(reason ? { errorDetail: `verify: ${reason}` } : {}) });
    ctx.log[reason ? 'error' : 'info'](
      { instance: instanceId, backupUuid: row.backupUuid, objectKey: row.objectKey, state, tables: tablesChecked.length, reason, mysqld: resolved.description, version: probe.version },
      'restore test of full backup',
    );
    return { backupUuid: row.backupUuid, objectKey: row.objectKey!, state, tablesChecked, mysqldVersion: probe.version, ...(reason ? { reason } : {}) };
  },
});

/** Where restore tests unpack: [restore] scratch_path, else [backup-conf] backup_path, else the OS temp dir. */
function scratchBase(config: Config): { label: string; base: string } {
  if (config.restore.scratchPath) return { label: 'scratch_path', base: config.restore.scratchPath };
  if (config.backup.backupPath) return { label: 'backup_path', base: config.backup.backupPath };
  return { label: 'the temp dir', base: os.tmpdir() };
}
