// The jobs: per job type a typed payload and a plain async handler `(payload, ctx) => result`, testable without
// BullMQ: the full backup's stages (stage.ts), binlog (binlog/), expire (expire/), verify. Job name → definition:
// the worker runs whatever is registered here; the producer schedules config's `scheduledJobTypes`.
// May import: restore, metadata, storage, mysql, retention, archive, binlog, crypto, config, fs, log, time, streams.
import type { FullStage } from '../metadata/index.ts';
import { expireJob } from './expire.ts';
import { binlogJob } from './binlog.ts';
import { cleanupStage } from './full-cleanup.ts';
import { cloneStage } from './full-clone.ts';
import { tarStage } from './full-tar.ts';
import { uploadStage } from './full-upload.ts';
import { fullJob } from './full.ts';
import type { FullChainPayload, JobDefinition } from './types.ts';
import { verifyJob } from './verify.ts';

/** One job per stage of the chain: a stage without one does not compile. */
export const fullStageJobs: Record<FullStage, JobDefinition<FullChainPayload, unknown>> = {
  clone: cloneStage,
  tar: tarStage,
  upload: uploadStage,
  cleanup: cleanupStage,
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const jobRegistry: Record<string, JobDefinition<any, unknown>> = Object.fromEntries(
  [fullJob, ...Object.values(fullStageJobs), binlogJob, expireJob, verifyJob].map((job) => [job.name, job]),
);
