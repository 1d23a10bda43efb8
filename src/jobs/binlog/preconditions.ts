// What point-in-time restore needs of the server whose binlogs are archived, checked at the start of every binlog
// run instead of assumed: binary logging on, row-based events, GTIDs, and on a replica the replicated transactions
// in its own binlogs. Each unmet condition is one visible Error row per instance and condition (a deterministic
// backup uuid: a later run updates its time and text instead of adding a row), and the job fails.
import type { BinlogSettings, DataNode } from '../../mysql/data-node.ts';
import { backupUuidFor } from '../../naming.ts';
import { PermanentJobError, type JobContext } from '../types.ts';

export type PreconditionName = 'log_bin' | 'binlog_format' | 'gtid_mode' | 'log_replica_updates';

export interface PreconditionFailure {
  condition: PreconditionName;
  /** What is wrong and what to set, for the row's info and the job's error. */
  message: string;
}

/** The unmet conditions (pure). */
export function pitrPreconditionFailures(s: BinlogSettings): PreconditionFailure[] {
  if (!s.logBin) {
    return [{ condition: 'log_bin', message: 'binary logging is off (log_bin = OFF): point-in-time restore needs it; start mysqld with --log-bin' }];
  }
  const out: PreconditionFailure[] = [];
  const format = s.binlogFormat?.toUpperCase();
  if (format !== undefined && format !== 'ROW') {
    out.push({ condition: 'binlog_format', message: `binlog_format is ${format}: point-in-time restore needs ROW; SET PERSIST binlog_format = ROW` });
  }
  const gtid = s.gtidMode?.toUpperCase() ?? 'unknown';
  if (gtid !== 'ON') {
    out.push({
      condition: 'gtid_mode',
      message:
        `gtid_mode is ${gtid}: point-in-time restore needs ON; SET PERSIST enforce_gtid_consistency = ON, then ` +
        'SET PERSIST gtid_mode = OFF_PERMISSIVE, ON_PERMISSIVE, ON (one step at a time)',
    });
  }
  if (s.replicaChannels > 0 && s.logReplicaUpdates === false) {
    out.push({
      condition: 'log_replica_updates',
      message:
        'this server is a replica with log_replica_updates = OFF: the transactions it replicates are not in its binlogs, so a ' +
        'point-in-time restore from them would miss them; set log_replica_updates = ON (not dynamic: my.cnf or SET PERSIST_ONLY, then restart)',
    });
  }
  return out;
}

/** Refuses to archive (an Error row per unmet condition, and a failed job) what could not be replayed to a point in time. */
export async function requirePitrPreconditions(instanceId: number, serverUuid: string, node: DataNode, ctx: JobContext): Promise<void> {
  const failures = pitrPreconditionFailures(await node.binlogSettings());
  if (!failures.length) return;
  for (const f of failures) await recordPreconditionFailure(instanceId, serverUuid, f, ctx);
  throw new PermanentJobError(`binlog archiving refused on ${node.where}: ${failures.map((f) => f.message).join('; ')}`);
}

/** The row of one unmet condition: created once, its time and text refreshed by every run that finds it again. */
async function recordPreconditionFailure(instanceId: number, serverUuid: string, f: PreconditionFailure, ctx: JobContext): Promise<string> {
  const backupUuid = backupUuidFor(`binlog-precondition:${instanceId}:${f.condition}`);
  const now = ctx.now();
  const info = `binlog archiving refused on server ${serverUuid}: ${f.message}`;
  const fields = { endTime: now, info, errorDetail: info, serverUuid, workerHost: ctx.workerHost, jobId: ctx.jobId };
  const existing = await ctx.metadata.getBackup(backupUuid);
  if (existing) {
    await ctx.metadata.update(backupUuid, { ...fields, state: 'Error' });
  } else {
    await ctx.metadata.createBackup({
      backupUuid,
      tbInstanceId: instanceId,
      state: 'Error',
      backupType: 'binlog',
      startTime: now,
      backupPath: '',
      backupName: `binlog_precondition_${instanceId}_${f.condition}`,
      bucketName: ctx.storage.bucket,
      ...fields,
    });
  }
  ctx.log.error({ instance: instanceId, condition: f.condition }, info);
  return backupUuid;
}
