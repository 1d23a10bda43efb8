// What the backup rows cannot tell (table mcb_job_outcomes, sql/006_job_outcomes.sql): per instance and job type,
// how many jobs failed for good (a counter that only goes up, unlike Error rows, which retries and expiry remove),
// and when the binlog job last left every closed binlog archived (an idle server's binlog staleness starts there).
// Here rather than in Redis so a Redis restart cannot lose it.
import type { ScheduledJobType } from '../config/index.ts';
import type { MetadataStore } from './store.ts';
import { readRowsIfMigrated as readRows } from './optional-table.ts';

/** The counter's `type` label: a scheduled job type (every stage of a full backup counts as `full`). */
export type OutcomeType = ScheduledJobType;

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
