// `verify`: a restore test of the newest Completed full backup of an instance (issue 6, item 4). Downloads it
// (sha256-checked while extracting) into a scratch directory on the worker's host, starts a temporary mysqld on
// it, runs CHECK TABLE on a sample of tables, records verified_at and verify_state ('ok' / 'failed', the reason
// in error_detail) on the row, and removes the scratch copy whatever happened.
//
// A failed verification is a result, not a job failure: retrying does not repair a corrupt object. Only what
// says something about the backup is recorded as `failed`: a checksum mismatch or an archive that does not
// extract (RestoreCorruptError), mysqld refusing to start on the data, CHECK TABLE errors. Storage, network and
// local disk errors (download failures, ENOSPC, timeouts, the restored server unreachable) and a metadata
// center that cannot be reached fail the job (retried) and leave the row's verify_state/error_detail as they were.
//
// Scheduled weekly per instance by the producer ([schedule] verify, default `0 4 * * 0`), run by the instance's
// worker. The server binary: MCB_SID_ROOT / MCB_MYSQLD, else [restore] sid_root / mysqld, else `mysqld` on PATH
// (src/restore/binaries.ts); the scratch directory: [restore] scratch_path, else [backup-conf] backup_path, else
// the OS temp dir; the restored server's account: [restore] user / password (MCB_RESTORE_PASSWORD).
// Before downloading anything the job runs `mysqld --version`. When nothing is configured and no usable MySQL
// mysqld is on PATH (none, or MariaDB's), the job completes with state `skipped` and a warning: a worker host
// without a server does not fail every week. A configured binary that is missing or unusable fails the job
// (permanently): that is a configuration error to fix.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import type { RunningMysqld } from '../mysql/mysqld.ts';
import { probeMysqld, resolveRestoreBinaries } from '../restore/binaries.ts';
import { extractFullVerified, RestoreCorruptError } from '../restore/run.ts';
import { RestoreServerSetupError, startRestoreServer } from '../restore/server.ts';
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

/** A verdict on the backup (recorded as verify_state 'failed'), as opposed to an error of the test itself. */
class VerifyFinding extends Error {}

/** An error the server returned for a statement (it has an SQLSTATE), or the server dying under it. */
function isServerVerdict(err: unknown): boolean {
  const e = err as { sqlState?: string; code?: string };
  return typeof e.sqlState === 'string' || e.code === 'PROTOCOL_CONNECTION_LOST';
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

    const base = ctx.config.restore.scratchPath ?? ctx.config.backup.backupPath ?? os.tmpdir();
    const scratch = await mkdtemp(path.join(base, `verify_${instanceId}_`));
    await chmod(scratch, 0o711); // the temporary server may run as the mysql user: it must reach the datadir inside
    const datadir = path.join(scratch, 'data');
    const tablesChecked: string[] = [];
    let server: RunningMysqld | undefined;
    let reason: string | undefined;
    try {
      try {
        await extractFullVerified(ctx.storage, row.objectKey!, row.sha256, datadir, ctx.signal);
      } catch (err) {
        if (err instanceof RestoreCorruptError) throw new VerifyFinding(err.message);
        throw err; // storage unreachable, a cut download, ENOSPC…: not the backup's fault
      }
      try {
        // The same clean server as a restore (src/restore/server.ts): no events fire, no replication, no TCP.
        server = await startRestoreServer(resolved.binaries.mysqld, { datadir, runDir: path.join(scratch, 'run'), extraArgs: ['--skip-log-bin'], signal: ctx.signal });
      } catch (err) {
        // A scratch path the server's account cannot reach: a configuration error. Could not even run the binary
        // (probed above, so rare): the worker's problem. Otherwise mysqld refused the data (exited, or never
        // accepted connections).
        if (err instanceof RestoreServerSetupError) throw new PermanentJobError(`verify: ${err.message}`);
        if (/^cannot run /.test((err as Error).message)) throw err;
        throw new VerifyFinding(`mysqld does not start on the restored datadir: ${(err as Error).message}`);
      }
      // An account of the restored server (the backed-up instance's own accounts): [restore] user / password.
      // Failing to log in is a configuration problem (or the server went away): the job fails.
      const conn = await mysql.createConnection({ socketPath: server.socket, user: ctx.config.restore.user, password: ctx.config.restore.password });
      try {
        const [tables] = await conn.query(
          `SELECT table_schema AS s, table_name AS t FROM information_schema.tables
           WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema')
           ORDER BY RAND() LIMIT ?`,
          [SAMPLE_TABLES],
        );
        const sample = (tables as Array<{ s: string; t: string }>).map((x) => `\`${x.s.replace(/`/g, '``')}\`.\`${x.t.replace(/`/g, '``')}\``);
        sample.unshift('`mysql`.`user`'); // always at least one table, and listed first
        for (const name of sample) {
          let res: unknown;
          try {
            [res] = await conn.query(`CHECK TABLE ${name}`);
          } catch (err) {
            if (isServerVerdict(err)) throw new VerifyFinding(`CHECK TABLE ${name}: ${(err as Error).message}`);
            throw err;
          }
          const bad = (res as Array<{ Msg_type: string; Msg_text: string }>).filter((m) => m.Msg_type.toLowerCase() === 'error' || (m.Msg_type.toLowerCase() === 'status' && m.Msg_text !== 'OK'));
          tablesChecked.push(name);
          if (bad.length) {
            reason = `CHECK TABLE ${name}: ${bad.map((m) => m.Msg_text).join('; ')}`;
            break;
          }
        }
      } finally {
        await conn.end().catch(() => undefined);
      }
    } catch (err) {
      if (!(err instanceof VerifyFinding)) {
        ctx.log.warn({ instance: instanceId, backupUuid: row.backupUuid, err: (err as Error).message }, 'restore test could not run; nothing recorded, the job fails');
        throw err;
      }
      reason = err.message;
    } finally {
      if (server) await server.stop().catch(() => undefined);
      await rm(scratch, { recursive: true, force: true });
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
