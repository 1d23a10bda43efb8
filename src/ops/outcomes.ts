// Outcomes of jobs that the backup rows cannot tell (table mcb_job_outcomes, sql/006_job_outcomes.sql):
//  - how many jobs of an instance failed for good, per job type: a counter that only goes up, for
//    mcb_backup_failures_total (Error rows go down when a failed row is retried or expired, so counting them
//    is not a counter);
//  - when the binlog job last left every closed binlog archived (a run with nothing new to archive included),
//    which is what the binlog staleness of an idle server is measured from.
// Kept in the metadata center rather than Redis: it is durable (a Redis restart or failover would lose
// increments), and it is where the status page and /metrics read everything else.
import type { RowDataPacket } from 'mysql2/promise';
import type { JobContext } from '../jobs/types.ts';
import type { MetadataStore } from '../metadata/index.ts';

/** The counter's `type` label: every stage of a full backup counts as `full`. */
export type OutcomeType = 'full' | 'binlog' | 'expire' | 'verify';

const fullBackupJobs = new Set(['full', 'clone', 'tar', 'upload', 'cleanup']);

/** The job type a job name counts under, or undefined for a job that is not one of ours. */
export function outcomeTypeOfJob(jobName: string): OutcomeType | undefined {
  if (fullBackupJobs.has(jobName)) return 'full';
  if (jobName === 'binlog' || jobName === 'expire' || jobName === 'verify') return jobName;
  return undefined;
}

/** One more job of this instance and type failed for good. */
export async function countFinalFailure(metadata: MetadataStore, instanceId: number, type: OutcomeType, at: Date): Promise<void> {
  await metadata.pool.query(
    `INSERT INTO mcb_job_outcomes (tb_instance_id, job_type, failures, last_failure_at) VALUES (?, ?, 1, ?)
     ON DUPLICATE KEY UPDATE failures = failures + 1, last_failure_at = ?`,
    [instanceId, type, at, at],
  );
}

/** A binlog run of this instance ended with every closed binlog archived (or found nothing new to archive). */
export async function recordBinlogCheck(metadata: MetadataStore, instanceId: number, at: Date): Promise<void> {
  await metadata.pool.query(
    `INSERT INTO mcb_job_outcomes (tb_instance_id, job_type, last_success_at) VALUES (?, 'binlog', ?)
     ON DUPLICATE KEY UPDATE last_success_at = GREATEST(COALESCE(last_success_at, ?), ?)`,
    [instanceId, at, at, at],
  );
}

const NO_SUCH_TABLE = 1146;

/** Rows of a read; none on a metadata center not migrated yet, so /metrics and `mcb status` keep working. */
async function readRows(metadata: MetadataStore, sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  try {
    const [rows] = await metadata.pool.query<RowDataPacket[]>(sql, params);
    return rows;
  } catch (err) {
    if ((err as { errno?: number }).errno === NO_SUCH_TABLE) return [];
    throw err;
  }
}

export interface FailureCount {
  instance: string;
  type: OutcomeType;
  failures: number;
}

/** Every counter there is (instances and types without a failure have no row). */
export async function failureCounts(metadata: MetadataStore): Promise<FailureCount[]> {
  const rows = await readRows(metadata, 'SELECT tb_instance_id, job_type, failures FROM mcb_job_outcomes WHERE failures > 0');
  return rows.map((r) => ({ instance: String(r.tb_instance_id), type: String(r.job_type) as OutcomeType, failures: Number(r.failures) }));
}

/** When the binlog job of an instance last succeeded, or null when it never did (or before this was recorded). */
export async function lastBinlogCheck(metadata: MetadataStore, instanceId: number): Promise<Date | null> {
  const rows = await readRows(metadata, "SELECT last_success_at FROM mcb_job_outcomes WHERE tb_instance_id = ? AND job_type = 'binlog'", [instanceId]);
  const at = rows[0]?.last_success_at as Date | null | undefined;
  return at instanceof Date && !Number.isNaN(at.getTime()) ? at : null;
}

/** When the binlog job of each instance last succeeded, by tb_instance id (instances where it never did have none). */
export async function lastBinlogChecks(metadata: MetadataStore, instanceId?: number): Promise<Map<string, Date>> {
  const only = instanceId === undefined ? '' : ' AND tb_instance_id = ?';
  const rows = await readRows(metadata, `SELECT tb_instance_id, last_success_at FROM mcb_job_outcomes WHERE job_type = 'binlog'${only}`, instanceId === undefined ? [] : [instanceId]);
  const out = new Map<string, Date>();
  for (const r of rows) {
    const at = r.last_success_at as Date | null | undefined;
    if (at instanceof Date && !Number.isNaN(at.getTime())) out.set(String(r.tb_instance_id), at);
  }
  return out;
}

/**
 * The worker's hook for a job that failed for good: counts it for this worker's instance (a worker only serves its
 * own instance's queue). Never throws: a metadata center that cannot be reached is logged, the failure handling
 * goes on.
 */
export async function countJobFailure(ctx: Pick<JobContext, 'config' | 'metadata' | 'now' | 'log'>, jobName: string): Promise<void> {
  const type = outcomeTypeOfJob(jobName);
  const instanceId = ctx.config.backup.tbInstanceId;
  if (!type || instanceId === undefined) return;
  try {
    await countFinalFailure(ctx.metadata, instanceId, type, ctx.now());
  } catch (err) {
    ctx.log.error({ event: 'failure-count.error', type, err: { message: (err as Error).message } }, 'could not count the failure in mcb_job_outcomes (run `mcb migrate` if the table is missing)');
  }
}
