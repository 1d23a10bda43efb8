// `verify`: a restore test of the newest Completed full backup of an instance (issue 6, item 4). Downloads it
// (sha256-checked while extracting) into a scratch directory on the worker's host, starts a temporary mysqld on
// it, runs CHECK TABLE on a sample of tables, records verified_at and verify_state ('ok' / 'failed', the reason
// in error_detail) on the row, and removes the scratch copy whatever happened.
//
// A failed verification is a result, not a job failure: retrying does not repair a corrupt object. Only a
// failure to reach the metadata center (nothing could be recorded) fails the job.
// Binaries: MCB_SID_ROOT (a Debian root with mysqld) or MCB_MYSQLD, else `mysqld` on PATH.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { findFreePort, mysqldFromPath, mysqldFromSidRoot, startMysqld, type MysqldBinary, type RunningMysqld } from '../mysql/mysqld.ts';
import { extractFullVerified } from '../restore/run.ts';
import { defineJob, PermanentJobError, requireInt } from './types.ts';

export interface VerifyPayload {
  instanceId: number;
  /** Verify this backup instead of the newest one. */
  backupUuid?: string;
}

export interface VerifyResult {
  backupUuid: string;
  objectKey: string;
  state: 'ok' | 'failed';
  tablesChecked: string[];
  reason?: string;
}

const SAMPLE_TABLES = 20;

function mysqldBinary(): MysqldBinary {
  if (process.env.MCB_SID_ROOT) return mysqldFromSidRoot(process.env.MCB_SID_ROOT);
  return mysqldFromPath(process.env.MCB_MYSQLD ?? 'mysqld');
}

export const verifyJob = defineJob<VerifyPayload, VerifyResult>({
  name: 'verify',
  parse: (data) => {
    const backupUuid = (data as Record<string, unknown> | null)?.backupUuid;
    if (backupUuid !== undefined && typeof backupUuid !== 'string') throw new PermanentJobError('job payload: backupUuid must be a string');
    return { instanceId: requireInt(data, 'instanceId'), ...(backupUuid ? { backupUuid } : {}) };
  },

  async handle({ instanceId, backupUuid }, ctx) {
    const rows = await ctx.metadata.listBackups({ instanceId, type: 'full', states: ['Completed'], limit: 1000 });
    const candidates = rows.filter((r) => r.objectKey && !r.isDelete && (!backupUuid || r.backupUuid === backupUuid));
    candidates.sort((a, b) => (b.endTime?.getTime() ?? 0) - (a.endTime?.getTime() ?? 0));
    const row = candidates[0];
    if (!row) throw new PermanentJobError(`instance ${instanceId} has no Completed full backup${backupUuid ? ` with uuid ${backupUuid}` : ''} to verify`);

    const base = ctx.config.backup.backupPath ?? os.tmpdir();
    const scratch = await mkdtemp(path.join(base, `verify_${instanceId}_`));
    const datadir = path.join(scratch, 'data');
    const tablesChecked: string[] = [];
    let server: RunningMysqld | undefined;
    let reason: string | undefined;
    try {
      await extractFullVerified(ctx.storage, row.objectKey!, row.sha256, datadir);
      server = await startMysqld(mysqldBinary(), {
        datadir,
        port: await findFreePort(),
        runDir: path.join(scratch, 'run'),
        extraArgs: ['--skip-replica-start', '--server-id=4000000001', '--skip-log-bin'],
      });
      // The restored server's own root account (as on the backed-up instance; MCB_RESTORE_PASSWORD if it has one).
      const conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', password: process.env.MCB_RESTORE_PASSWORD ?? '' });
      try {
        const [tables] = await conn.query(
          `SELECT table_schema AS s, table_name AS t FROM information_schema.tables
           WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema')
           ORDER BY RAND() LIMIT ?`,
          [SAMPLE_TABLES],
        );
        const sample = (tables as Array<{ s: string; t: string }>).map((x) => `\`${x.s.replace(/`/g, '``')}\`.\`${x.t.replace(/`/g, '``')}\``);
        sample.push('`mysql`.`user`'); // always at least one table
        for (const name of sample) {
          const [res] = await conn.query(`CHECK TABLE ${name}`);
          const bad = (res as Array<{ Msg_type: string; Msg_text: string }>).filter((m) => m.Msg_type.toLowerCase() === 'error' || (m.Msg_type.toLowerCase() === 'status' && m.Msg_text !== 'OK'));
          tablesChecked.push(name);
          if (bad.length) {
            reason = `CHECK TABLE ${name}: ${bad.map((m) => m.Msg_text).join('; ')}`;
            break;
          }
        }
      } finally {
        await conn.end();
      }
    } catch (err) {
      reason = (err as Error).message;
    } finally {
      if (server) await server.stop().catch(() => undefined);
      await rm(scratch, { recursive: true, force: true });
    }

    const state = reason ? 'failed' : 'ok';
    await ctx.metadata.update(row.backupUuid, { verifiedAt: ctx.now(), verifyState: state, ...(reason ? { errorDetail: `verify: ${reason}` } : {}) });
    ctx.log[reason ? 'error' : 'info']({ instance: instanceId, backupUuid: row.backupUuid, objectKey: row.objectKey, state, tables: tablesChecked.length, reason }, 'restore test of full backup');
    return { backupUuid: row.backupUuid, objectKey: row.objectKey!, state, tablesChecked, ...(reason ? { reason } : {}) };
  },
});
