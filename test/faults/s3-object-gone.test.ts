// A verified object that disappears before the cleanup stage (a lifecycle rule, a DBA's delete): cleanup stats
// the object before it removes anything, so the row is never Completed and the archive, the only copy left, stays.
// An upload that starts again clears object_key first, so the row never points at an object this attempt has not
// verified, and completes the same backup.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, requireOss } from '../../src/config/index.ts';
import { cleanupStage } from '../../src/jobs/full-cleanup.ts';
import { cloneStage } from '../../src/jobs/full-clone.ts';
import { tarStage } from '../../src/jobs/full-tar.ts';
import { uploadStage } from '../../src/jobs/full-upload.ts';
import { fullJob } from '../../src/jobs/full.ts';
import { createLogger } from '../../src/log/index.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { pingRedis, Queues, redisConnection, stageJobOptions } from '../../src/queues/index.ts';
import { MinioObjectStore } from '../../src/storage/index.ts';
import { startWorker } from '../../src/workers/index.ts';
import { directContext } from '../support/context.ts';
import { servicesEnv } from '../support/env.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { createWorld, type World } from '../support/world.ts';

let world: World;
let proxy: TcpProxy;
let queues: Queues;
let payload: { instanceId: number; backupUuid: string };

before(async () => {
  world = await createWorld();
  const s3 = servicesEnv().s3;
  proxy = await startTcpProxy(s3.endPoint, s3.port);
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
});
after(async () => {
  proxy?.up();
  await queues?.close();
  await queues?.connection.quit();
  await proxy?.close();
  await world?.cleanup();
});

async function waitForState(uuid: string, states: string[]): Promise<BackupRow> {
  for (let i = 0; i < 300; i++) {
    const row = (await world.metadata.getBackup(uuid))!;
    if (states.includes(row.state)) return row;
    await sleep(100);
  }
  throw new Error(`backup ${uuid} never reached ${states.join(' or ')}`);
}

test('cleanup of a row whose object is gone: Error with the reason, never Completed, the archive kept', async () => {
  const ctx = directContext(world.config, world.metadata);
  const started = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  assert.ok(started.started);
  payload = { instanceId: world.replicaInstanceId, backupUuid: started.backupUuid };
  await cloneStage.handle(payload, ctx);
  await tarStage.handle(payload, ctx);
  await uploadStage.handle(payload, ctx);
  const uploaded = (await world.metadata.getBackup(payload.backupUuid))!;
  assert.equal(uploaded.objectKey, uploaded.backupName);
  await world.minio.removeObject(world.bucket, uploaded.objectKey!);

  // The chain's last stage, as the worker runs it.
  const config = loadConfig(world.writeConfig({ backupConf: { stage_attempts: '2', stage_backoff_ms: '200' } }));
  const worker = await startWorker(config, { log: createLogger({ name: 'fault-s3-object-gone' }) });
  try {
    await queues.forInstance(world.replicaInstanceId).add('cleanup', payload, { ...stageJobOptions(config), jobId: `${payload.backupUuid}-cleanup` });
    await waitForState(payload.backupUuid, ['Error', 'Completed']);
    const job = (await queues.forInstance(world.replicaInstanceId).getJob(`${payload.backupUuid}-cleanup`))!;
    for (let i = 0; i < 100 && (await job.getState()) !== 'failed'; i++) await sleep(100);
    const row = (await world.metadata.getBackup(payload.backupUuid))!;
    assert.equal(row.state, 'Error');
    const finished = (await queues.forInstance(world.replicaInstanceId).getJob(job.id!))!;
    assert.equal(await finished.getState(), 'failed');
    assert.equal(finished.attemptsMade, 1, 'not retried: the object will not come back by itself');
    assert.match(row.info ?? '', new RegExp(`^cleanup failed: object ${row.backupName} is not in http://\\S+/${world.bucket}; the backup is not completed`));
    assert.ok(existsSync(path.join(world.backupPath, row.backupName)), 'the archive, the only copy left, is kept');
    assert.match(row.info ?? '', /\[kept .*\.tar\.gz for `mcb jobs retry`/);
  } finally {
    await worker.close();
  }
  await assertBackupInvariants(world, { completed: 0 });
});

test('the upload stage clears object_key when it starts; a new upload then completes the same backup', async () => {
  assert.ok((await world.metadata.getBackup(payload.backupUuid))!.objectKey, 'the Error row still names the missing object');
  const oss = requireOss(world.config);
  const throughProxy = directContext(world.config, world.metadata, { storage: new MinioObjectStore({ ...oss, port: proxy.port }, oss.bucket) });
  proxy.down();
  await assert.rejects(uploadStage.handle(payload, throughProxy), /unreachable/);
  const failed = (await world.metadata.getBackup(payload.backupUuid))!;
  assert.equal(failed.objectKey, null, 'an upload that started clears object_key before anything else');
  await assert.rejects(cleanupStage.handle(payload, throughProxy), /has no verified object/);

  proxy.up();
  await uploadStage.handle(payload, throughProxy);
  await cleanupStage.handle(payload, throughProxy);
  const done = (await world.metadata.getBackup(payload.backupUuid))!;
  assert.equal(done.state, 'Completed', done.info ?? '');
  await assertBackupInvariants(world, { completed: 1 });
});
