// S3 cut in the middle of an upload (a TCP proxy between the worker and the real S3 server refuses and resets
// every connection): for 20 s, the upload stage retries and completes; for longer than the retries, the row is
// Error with the reason, the verified archive stays for `mcb jobs retry`, and the real `mcb jobs retry` completes
// the backup once S3 is back.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, parseConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startWorker } from '../../src/workers/index.ts';
import { servicesEnv } from '../support/env.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { runMcb } from '../support/spawn.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { waitForBackupOfJob } from '../support/backup.ts';
import { createWorld, type World } from '../support/world.ts';

const OUTAGE_MS = 20_000;

let world: World;
let proxy: TcpProxy;
let queues: Queues;
const log = createLogger({ name: 'fault-s3-outage' });

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

function workerConfig(backupConf: Record<string, string>): Config {
  return loadConfig(world.writeConfig({ s3Port: proxy.port, backupConf }));
}

/** Total wait between the attempts of a stage: BullMQ's exponential backoff doubles from stage_backoff_ms. */
function retrySpanMs(config: Config): number {
  let total = 0;
  for (let retry = 0; retry < config.backup.stageAttempts - 1; retry++) total += config.backup.stageBackoffMs * 2 ** retry;
  return total;
}

async function enqueueFull(jobId: string): Promise<void> {
  await queues.forInstance(world.replicaInstanceId).add('full', { instanceId: world.replicaInstanceId }, { jobId, attempts: 1 });
}

async function rowOf(jobId: string, until: (row: BackupRow) => boolean, timeoutMs = 120_000): Promise<BackupRow> {
  return waitForBackupOfJob(queues.forInstance(world.replicaInstanceId), world.metadata, jobId, until, timeoutMs);
}

test('the retry schedule spans the outage: 20 s with the test settings, minutes with the defaults', () => {
  const defaults = parseConfig('[metadata-link]\nhost = h\nuser = u\npassword = p\n', '/defaults.ini');
  assert.ok(retrySpanMs(defaults) >= 5 * 60_000, `the default schedule waits ${retrySpanMs(defaults)} ms in all`);
  assert.ok(retrySpanMs(workerConfig({ stage_attempts: '6', stage_backoff_ms: '1000' })) > OUTAGE_MS + 5000);
});

test('S3 unreachable for 20 s in the middle of an upload: the upload stage retries and the backup completes', async () => {
  const config = workerConfig({ stage_attempts: '6', stage_backoff_ms: '1000' });
  const worker = await startWorker(config, { log });
  try {
    // Only the archive's upload sends this much: S3 goes down with a third of it sent.
    const cut = proxy.after(512 * 1024, 'down');
    await enqueueFull('outage-20s');
    await cut;
    const cutAt = Date.now();
    const during = await rowOf('outage-20s', () => true);
    assert.equal(during.state, 'Uploading', 'S3 went down while the archive was being sent');
    await sleep(Math.max(0, cutAt + OUTAGE_MS - Date.now()));
    const upload = await queues.forInstance(world.replicaInstanceId).getJob(`${during.backupUuid}-upload`);
    assert.ok(upload!.attemptsMade >= 1, 'the upload stage failed at least once during the outage');
    assert.equal((await world.metadata.getBackup(during.backupUuid))!.state, 'Uploading', 'still Uploading, not Error, during the outage');
    proxy.up();

    const row = await rowOf('outage-20s', (r) => r.state === 'Completed' || r.state === 'Error');
    assert.equal(row.state, 'Completed', row.info ?? '');
    // BullMQ counts the successful attempt too.
    assert.ok((await queues.forInstance(world.replicaInstanceId).getJob(`${row.backupUuid}-upload`))!.attemptsMade >= 2);
    await assertBackupInvariants(world, { completed: 1 });
  } finally {
    proxy.up();
    await worker.close();
  }
});

test('S3 unreachable for longer than the retries: Error with the reason, the archive kept; `mcb jobs retry` completes it', async () => {
  const config = workerConfig({ stage_attempts: '2', stage_backoff_ms: '200' });
  const worker = await startWorker(config, { log });
  try {
    proxy.down();
    await enqueueFull('outage-long');
    // The row is marked Error, then told which files were kept for a retry: wait for both.
    const failed = await rowOf('outage-long', (r) => (r.state === 'Error' && (r.info ?? '').includes('[kept')) || r.state === 'Completed');
    assert.equal(failed.state, 'Error');
    assert.match(failed.info ?? '', /^upload failed: object storage http:\/\/127\.0\.0\.1:\d+\/\S+ is unreachable or refused the request/);
    assert.match(failed.info ?? '', /\[kept .*\.tar\.gz for `mcb jobs retry`; the next full backup removes them\]/);
    assert.equal(failed.objectKey, null, 'no object recorded');
    assert.ok(existsSync(path.join(world.backupPath, failed.backupName)), 'the verified archive is kept');
    assert.equal(await world.minio.statObject(world.bucket, failed.backupName).catch(() => undefined), undefined, 'nothing stored');
    await assertBackupInvariants(world, { completed: 1 });

    proxy.up();
    const retry = await runMcb(['-f', world.writeConfig({ s3Port: proxy.port }), 'jobs', 'retry', `${failed.backupUuid}-upload`]);
    assert.equal(retry.code, 0, retry.stdout + retry.stderr);
    const done = await rowOf('outage-long', (r) => r.state === 'Completed' || (r.state === 'Error' && r.info !== failed.info));
    assert.equal(done.state, 'Completed', done.info ?? '');
    assert.equal(done.backupUuid, failed.backupUuid);
    await assertBackupInvariants(world, { completed: 2 });
  } finally {
    proxy.up();
    await worker.close();
  }
});
