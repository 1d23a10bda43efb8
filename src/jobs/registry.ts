// Job name → definition. The worker runs whatever is registered here; the producer schedules `scheduled`.
import { expireJob } from './expire.ts';
import { binlogJob } from './binlog.ts';
import { cleanupStage } from './full-cleanup.ts';
import { cloneStage } from './full-clone.ts';
import { tarStage } from './full-tar.ts';
import { uploadStage } from './full-upload.ts';
import { fullJob } from './full.ts';
import type { JobDefinition } from './types.ts';
import { verifyJob } from './verify.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const jobRegistry: Record<string, JobDefinition<any, unknown>> = {
  [fullJob.name]: fullJob,
  [cloneStage.name]: cloneStage,
  [tarStage.name]: tarStage,
  [uploadStage.name]: uploadStage,
  [cleanupStage.name]: cleanupStage,
  [binlogJob.name]: binlogJob,
  [expireJob.name]: expireJob,
  [verifyJob.name]: verifyJob,
};

/** Job types the producer keeps a repeatable schedule for, per instance, with their config key. */
export const scheduledJobTypes = ['full', 'binlog', 'expire', 'verify'] as const;
export type ScheduledJobType = (typeof scheduledJobTypes)[number];
