// A real Completed full backup of the replica, made quickly by calling the stage handlers directly
// (CLONE, tar, upload to S3, cleanup), as test/integration/full-stages.test.ts does.
import { fullJob } from '../../src/jobs/full.ts';
import { cloneStage } from '../../src/jobs/full-clone.ts';
import { tarStage } from '../../src/jobs/full-tar.ts';
import { uploadStage } from '../../src/jobs/full-upload.ts';
import { cleanupStage } from '../../src/jobs/full-cleanup.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { directContext } from './context.ts';
import type { World } from './world.ts';

export async function makeCompletedFullBackup(world: World, jobId = `direct-full-${Date.now()}`): Promise<BackupRow> {
  const ctx = directContext(world.config, world.metadata, { jobId });
  const started = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  if (!started.started) throw new Error(`full backup did not start: ${started.reason}`);
  const payload = { instanceId: world.replicaInstanceId, backupUuid: started.backupUuid };
  await cloneStage.handle(payload, ctx);
  await tarStage.handle(payload, ctx);
  await uploadStage.handle(payload, ctx);
  await cleanupStage.handle(payload, ctx);
  const row = await world.metadata.getBackup(started.backupUuid);
  if (row?.state !== 'Completed') throw new Error(`backup ended in ${row?.state}`);
  return row;
}
