// Each full-backup stage against the real replica MySQL (CLONE), metadata center and S3 server, called
// directly as plain functions: the states the seed's dashboards read, the files, the object and its checksum.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { fullJob } from '../../src/jobs/full.ts';
import { cloneStage } from '../../src/jobs/full-clone.ts';
import { tarStage } from '../../src/jobs/full-tar.ts';
import { uploadStage } from '../../src/jobs/full-upload.ts';
import { cleanupStage } from '../../src/jobs/full-cleanup.ts';
import { fullBackupFiles } from '../../src/jobs/full-files.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createWorld, type World } from '../support/world.ts';
import { directContext } from '../support/context.ts';

let world: World;
before(async () => {
  world = await createWorld();
});
after(async () => {
  await world?.cleanup();
});

test('clone → tar → upload → cleanup moves the row Doing → Done → Tar → Uploading → Clearing → Completed', async () => {
  const ctx = directContext(world.config, world.metadata, { jobId: 'full-stage-test-1' });
  const started = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  assert.equal(started.started, true);
  if (!started.started) return;
  assert.match(started.backupName, new RegExp(`^bak_${world.replicaInstanceId}_\\d{14}\\.tar\\.gz$`));
  assert.deepEqual(ctx.chains, [{ instanceId: world.replicaInstanceId, backupUuid: started.backupUuid }]);
  const uuid = started.backupUuid;
  let row = (await world.metadata.getBackup(uuid))!;
  assert.equal(row.state, 'Doing');
  assert.equal(row.backupType, 'full');
  assert.equal(row.tbInstanceId, String(world.replicaInstanceId));
  assert.equal(row.bucketName, world.bucket);
  assert.equal(row.backupPath, world.backupPath);

  // Running the start job again (a BullMQ retry) finds the same row instead of making a second one.
  const again = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  assert.equal(again.started && again.backupUuid, uuid);
  assert.equal((await world.metadata.listBackups({ instanceId: world.replicaInstanceId })).length, 1);

  const payload = { instanceId: world.replicaInstanceId, backupUuid: uuid };
  const clone = await cloneStage.handle(payload, ctx);
  row = (await world.metadata.getBackup(uuid))!;
  assert.equal(row.state, 'Done');
  assert.ok(row.endTime, 'end_time is the clone recovery point');
  assert.equal(row.endTime!.toISOString().slice(0, 19), clone.recoveryPoint.slice(0, 19));
  const files = fullBackupFiles(row);
  assert.ok(existsSync(`${files.cloneDir}/mysql.ibd`), 'clone directory holds a datadir');
  assert.equal(statSync(files.cloneDir).mode & 0o777, 0o700, 'the clone is private to its owner');

  const tar = await tarStage.handle(payload, ctx);
  row = (await world.metadata.getBackup(uuid))!;
  assert.equal(row.state, 'Tar');
  assert.equal(row.backupBytes, tar.bytes);
  assert.equal(row.sha256, tar.sha256);
  assert.equal(row.compression, 'gzip');
  assert.ok(row.backupSize.length <= 10 && row.backupSize !== '0');
  assert.ok(existsSync(files.archiveFile));
  assert.equal(statSync(files.archiveFile).mode & 0o777, 0o600, 'the archive is private to its owner');

  const upload = await uploadStage.handle(payload, ctx);
  row = (await world.metadata.getBackup(uuid))!;
  assert.equal(row.state, 'Uploading');
  assert.equal(row.objectKey, started.backupName);
  const stat = await world.minio.statObject(world.bucket, row.objectKey!);
  assert.equal(stat.size, upload.bytes);
  const hash = createHash('sha256');
  for await (const chunk of await world.minio.getObject(world.bucket, row.objectKey!)) hash.update(chunk as Buffer);
  assert.equal(hash.digest('hex'), row.sha256, 'stored object has the recorded sha256');

  await cleanupStage.handle(payload, ctx);
  row = (await world.metadata.getBackup(uuid))!;
  assert.equal(row.state, 'Completed');
  assert.equal(row.overdueDay, 7);
  assert.equal(row.isDelete, 0);
  assert.ok(!existsSync(files.cloneDir) && !existsSync(files.archiveFile), 'local clone and archive removed');
  assert.deepEqual(await readdir(world.backupPath), []);
  assert.ok(ctx.progressValues.length > 0, 'stages report progress');
});

test('a stage refuses a row in the wrong state and leaves it as it is', async () => {
  const rows = await world.metadata.listBackups({ instanceId: world.replicaInstanceId, states: ['Completed'] });
  const uuid = rows[0]!.backupUuid;
  const ctx = directContext(world.config, world.metadata);
  await assert.rejects(tarStage.handle({ instanceId: world.replicaInstanceId, backupUuid: uuid }, ctx), /is in state Completed; it cannot move to Tar/);
  assert.equal((await world.metadata.getBackup(uuid))!.state, 'Completed');
});

test('the source is skipped when is_cluster = on, and no row is written', async () => {
  const config = loadConfig(world.writeConfig({ node: 'source' }));
  const ctx = directContext(config, world.metadata);
  const result = await fullJob.handle({ instanceId: world.sourceInstanceId }, ctx);
  assert.equal(result.started, false);
  assert.match(!result.started ? result.reason : '', /primary \(read_only = 0\) and is_cluster = on/);
  assert.equal((await world.metadata.listBackups({ instanceId: world.sourceInstanceId })).length, 0);
});

test('unknown instance and disabled instance are permanent errors, with no row written', async () => {
  const ctx = directContext(loadConfig(world.writeConfig({ instanceId: 999999 })), world.metadata);
  await assert.rejects(fullJob.handle({ instanceId: 999999 }, ctx), (e: unknown) => e instanceof PermanentJobError && /instance 999999 does not exist in tb_instance/.test((e as Error).message));
  await world.metadata.setCloneEnabled(world.replicaInstanceId, false);
  try {
    const ctx2 = directContext(world.config, world.metadata);
    await assert.rejects(fullJob.handle({ instanceId: world.replicaInstanceId }, ctx2), /is_clone = 0/);
  } finally {
    await world.metadata.setCloneEnabled(world.replicaInstanceId, true);
  }
  const ctx3 = directContext(world.config, world.metadata);
  await assert.rejects(fullJob.handle({ instanceId: world.sourceInstanceId }, ctx3), /this worker backs up instance \d+ .*not \d+/);
});

test('a second full backup of the same instance is refused while one is running', async () => {
  const ctx = directContext(world.config, world.metadata, { jobId: 'running-1' });
  const first = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  assert.ok(first.started);
  const ctx2 = directContext(world.config, world.metadata, { jobId: 'running-2' });
  await assert.rejects(fullJob.handle({ instanceId: world.replicaInstanceId }, ctx2), /already running: bak_.* in state Doing/);
  if (first.started) await world.metadata.markError(first.backupUuid, 'test cleanup');
});

test('a verified backup is Completed even when FLUSH BINARY LOGS fails in cleanup (the reason is noted)', async () => {
  const ctx = directContext(world.config, world.metadata, { jobId: 'flush-fails' });
  const started = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  assert.ok(started.started);
  if (!started.started) return;
  const payload = { instanceId: world.replicaInstanceId, backupUuid: started.backupUuid };
  await cloneStage.handle(payload, ctx);
  await tarStage.handle(payload, ctx);
  await uploadStage.handle(payload, ctx);
  ctx.connectDataNode = () => Promise.reject(new Error('MySQL 127.0.0.1:13307 is unreachable: ECONNREFUSED'));
  await cleanupStage.handle(payload, ctx);
  const row = (await world.metadata.getBackup(started.backupUuid))!;
  assert.equal(row.state, 'Completed');
  assert.match(row.info!, /FLUSH BINARY LOGS failed: MySQL .* unreachable/);
});
