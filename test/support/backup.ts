// A real Completed full backup (of the replica unless told otherwise), made quickly by calling the stage handlers
// directly (CLONE, tar, upload to S3, cleanup), as test/integration/full-stages.test.ts does.
import { fullJob } from '../../src/jobs/full.ts';
import { cloneStage } from '../../src/jobs/full-clone.ts';
import { tarStage } from '../../src/jobs/full-tar.ts';
import { uploadStage } from '../../src/jobs/full-upload.ts';
import { cleanupStage } from '../../src/jobs/full-cleanup.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Config } from '../../src/config/index.ts';
import type { BackupRow, MetadataStore } from '../../src/metadata/index.ts';
import { directContext } from './context.ts';
import type { World } from './world.ts';

export async function makeCompletedFullBackup(
  world: World,
  jobId = `direct-full-${Date.now()}`,
  opts: { config?: Config; instanceId?: number } = {},
): Promise<BackupRow> {
  const instanceId = opts.instanceId ?? world.replicaInstanceId;
  const ctx = directContext(opts.config ?? world.config, world.metadata, { jobId });
  const started = await fullJob.handle({ instanceId }, ctx);
  if (!started.started) throw new Error(`full backup did not start: ${started.reason}`);
  const payload = { instanceId, backupUuid: started.backupUuid };
  await cloneStage.handle(payload, ctx);
  await tarStage.handle(payload, ctx);
  await uploadStage.handle(payload, ctx);
  await cleanupStage.handle(payload, ctx);
  const row = await world.metadata.getBackup(started.backupUuid);
  if (row?.state !== 'Completed') throw new Error(`backup ended in ${row?.state}`);
  return row;
}

/** The metadata row a `full` start job created, once it has; throws when the start job itself failed. */
export async function backupRowOfStartJob(queue: Queue, metadata: MetadataStore, jobId: string): Promise<BackupRow | undefined> {
  const job = await queue.getJob(jobId);
  if (job?.failedReason) throw new Error(`start job failed: ${job.failedReason}`);
  const uuid = (job?.returnvalue as { backupUuid?: string } | undefined)?.backupUuid;
  return uuid ? metadata.getBackup(uuid) : undefined;
}

/** Polls the backup row of a `full` start job until `until(row)` holds. */
export async function waitForBackupOfJob(queue: Queue, metadata: MetadataStore, jobId: string, until: (row: BackupRow) => boolean, timeoutMs: number): Promise<BackupRow> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const row = await backupRowOfStartJob(queue, metadata, jobId);
    if (row && until(row)) return row;
    await sleep(100);
  }
  throw new Error(`timed out waiting for the backup of job ${jobId}`);
}
