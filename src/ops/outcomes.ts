// The worker's side of mcb_job_outcomes: which counter a failed job counts under (the SQL is in
// src/metadata/job-outcomes.ts).
import { scheduledJobTypes } from '../config/index.ts';
import type { JobContext } from '../jobs/types.ts';
import { fullStages } from '../metadata/index.ts';
import { countFinalFailure, type OutcomeType } from '../metadata/job-outcomes.ts';

const fullBackupJobs = new Set<string>(['full', ...fullStages]);

/** The job type a job name counts under, or undefined for a job that is not one of ours. */
export function outcomeTypeOfJob(jobName: string): OutcomeType | undefined {
  if (fullBackupJobs.has(jobName)) return 'full';
  return scheduledJobTypes.find((type) => type === jobName);
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
