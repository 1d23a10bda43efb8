// The full backup as chained BullMQ stage jobs run by the real worker, against real Redis, MySQL and S3:
// retries through a real S3 outage, a stage that gives up, and a worker shut down mid-stage.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startWorker, type RunningWorker } from '../../src/workers/index.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { servicesEnv } from '../support/env.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { waitForBackupOfJob } from '../support/backup.ts';
import { createWorld, type World } from '../support/world.ts';
import { runMcb } from '../support/spawn.ts';

let world: World;
let proxy: TcpProxy;
let queues: Queues;
const log = createLogger({ name: 'test-worker' });

before(async () => {
  world = await createWorld();
  const s3 = servicesEnv().s3;
  proxy = await startTcpProxy(s3.endPoint, s3.port);
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
});
after(async () => {
  await queues?.close();
  await queues?.connection.quit();
  await proxy?.close();
  await world?.cleanup();
});

function workerConfig(extra: Record<string, string>): Config {
  return loadConfig(world.writeConfig({ s3Port: proxy.port, backupConf: extra }));
}

async function enqueueFull(config: Config, jobId: string): Promise<void> {
  await queues.forInstance(world.replicaInstanceId).add('full', { instanceId: world.replicaInstanceId }, { jobId, attempts: 1 });
  void config;
}

async function waitForRow(jobId: string, until: (row: BackupRow) => boolean, timeoutMs = 180_000): Promise<BackupRow> {
  return waitForBackupOfJob(queues.forInstance(world.replicaInstanceId), world.metadata, jobId, until, timeoutMs);
}

test('S3 unreachable for the first upload attempt: the upload stage retries and the chain reaches Completed', async () => {
  const config = workerConfig({ stage_attempts: '6', stage_backoff_ms: '500' });
  const worker = await startWorker(config, { log });
  try {
    await enqueueFull(config, 'retry-upload');
    const doing = await waitForRow('retry-upload', () => true);
    proxy.down();
    const queue = queues.forInstance(world.replicaInstanceId);
    // Bring S3 back only once the upload stage has failed at least once.
    const deadline = Date.now() + 120_000;
    let failedAttempts = 0;
    while (Date.now() < deadline) {
      const upload = await queue.getJob(`${doing.backupUuid}-upload`);
      failedAttempts = upload?.attemptsMade ?? 0;
      if (failedAttempts >= 1) break;
      await sleep(50);
    }
    assert.ok(failedAttempts >= 1, 'the first upload attempt failed while S3 was down');
    assert.equal((await world.metadata.getBackup(doing.backupUuid))!.state, 'Uploading', 'row says where it stands during the retry');
    proxy.up();
    const row = await waitForRow('retry-upload', (r) => r.state === 'Completed' || r.state === 'Error');
    assert.equal(row.state, 'Completed', row.info ?? '');
    const upload = await queue.getJob(`${row.backupUuid}-upload`);
    assert.ok(upload!.attemptsMade >= 1, 'upload needed more than one attempt');
    assert.equal(await upload!.getState(), 'completed');
    assert.equal(await (await queue.getJob(`${row.backupUuid}-cleanup`))!.getState(), 'completed');
    const stat = await world.minio.statObject(world.bucket, row.objectKey!);
    assert.equal(stat.size, row.backupBytes);
  } finally {
    proxy.up();
    await worker.close();
  }
});

test('a stage that exhausts its retries sets Error with the reason and fails the rest of the chain; `mcb jobs retry` resumes it from the kept archive', async () => {
  const config = workerConfig({ stage_attempts: '2', stage_backoff_ms: '100' });
  const worker = await startWorker(config, { log });
  try {
    await enqueueFull(config, 'upload-gives-up');
    await waitForRow('upload-gives-up', (r) => r.state === 'Tar' || r.state === 'Done' || r.state === 'Doing');
    proxy.down();
    const row = await waitForRow('upload-gives-up', (r) => r.state === 'Error' || r.state === 'Completed');
    assert.equal(row.state, 'Error');
    assert.match(row.info ?? '', /^upload failed: /);
    assert.match(row.info ?? '', /unreachable|upload of .* failed|ECONNRESET|socket/i);
    const queue = queues.forInstance(world.replicaInstanceId);
    // The row is marked before the job itself moves to failed; then the parent stages must fail too
    // instead of waiting forever for a child that gave up.
    const stateOf = async (stage: string) => {
      const deadline = Date.now() + 10_000;
      let state = '';
      while (Date.now() < deadline && state !== 'failed') {
        state = await (await queue.getJob(`${row.backupUuid}-${stage}`))!.getState();
        await sleep(100);
      }
      return state;
    };
    assert.equal(await stateOf('upload'), 'failed');
    assert.equal(await stateOf('cleanup'), 'failed');
    assert.equal(await world.minio.statObject(world.bucket, row.backupName).catch(() => undefined), undefined, 'no object left');
    // The whole clone and the verified archive stay for a retry, and the row says so.
    const kept = (await world.metadata.getBackup(row.backupUuid))!;
    assert.match(kept.info ?? '', /\[kept .*\.tar\.gz for `mcb jobs retry`; the next full backup removes them\]/);
    assert.ok((await readdir(world.backupPath)).includes(row.backupName), 'archive kept');

    // S3 is back: the DBA retries the failed stage; the chain resumes from it and completes.
    proxy.up();
    const retry = await runMcb(['-f', world.writeConfig({ s3Port: proxy.port }), 'jobs', 'retry', `${row.backupUuid}-upload`]);
    assert.equal(retry.code, 0, retry.stdout + retry.stderr);
    const done = await waitForRow('upload-gives-up', (r) => r.state === 'Completed');
    assert.equal(done.backupUuid, row.backupUuid);
    assert.deepEqual(await readdir(world.backupPath), [], 'cleanup removed the local files');
    assert.equal((await world.minio.statObject(world.bucket, row.backupName)).size, done.backupBytes);
  } finally {
    proxy.up();
    await worker.close();
  }
});

test('a worker shut down mid-stage hands the stage back; the next worker finishes the backup', async () => {
  const config = workerConfig({ shutdown_grace_seconds: '0', stage_attempts: '3' });
  let worker: RunningWorker | undefined = await startWorker(config, { log });
  try {
    await enqueueFull(config, 'shutdown-mid-stage');
    const running = await waitForRow('shutdown-mid-stage', (r) => ['Doing', 'Done', 'Tar'].includes(r.state));
    await worker.close();
    worker = undefined;
    const queue = queues.forInstance(world.replicaInstanceId);
    const counts = await queue.getJobCounts('active');
    assert.equal(counts.active, 0, 'no job left active after shutdown');
    const before = (await world.metadata.getBackup(running.backupUuid))!;
    assert.notEqual(before.state, 'Error', 'an interrupted stage is not a failure');

    worker = await startWorker(config, { log });
    const row = await waitForRow('shutdown-mid-stage', (r) => r.state === 'Completed' || r.state === 'Error');
    assert.equal(row.state, 'Completed', row.info ?? '');
    assert.ok(!existsSync(`${world.backupPath}/${row.backupName}`));
  } finally {
    await worker?.close();
  }
});

test('`mcb enqueue full --wait` prints each stage and exits 0 on Completed', async () => {
  const config = workerConfig({});
  const worker = await startWorker(config, { log });
  try {
    const r = await runMcb(['-f', world.writeConfig({ s3Port: proxy.port }), 'enqueue', 'full', '--instance', String(world.replicaInstanceId), '--wait', '--timeout', '300']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /enqueued full backup of instance \d+ .* as job full-adhoc-/);
    assert.match(r.stdout, /Completed/);
    const m = /backup (bak_\d+_\d{14}\.tar\.gz): \S+ \((\d+) bytes\), sha256 ([0-9a-f]{64}), in (\S+)\/\1/.exec(r.stdout);
    assert.ok(m, r.stdout);
    const rows = await world.metadata.listBackups({ instanceId: world.replicaInstanceId, states: ['Completed'] });
    const row = rows.find((x) => x.backupName === m[1])!;
    assert.equal(row.sha256, m[3]);
    assert.equal(String(row.backupBytes), m[2]);
  } finally {
    await worker.close();
  }
});

test('a running row whose stage jobs Redis lost is marked Error by the next full backup, which then runs', async () => {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const orphanUuid = '0ddba110-0000-4000-8000-000000000001';
  const orphan = await world.metadata.createBackup({
    backupUuid: orphanUuid,
    tbInstanceId: world.replicaInstanceId,
    state: 'Tar',
    backupType: 'full',
    startTime: new Date(Date.now() - 3600_000),
    backupPath: world.backupPath,
    backupName: `bak_${world.replicaInstanceId}_20200101000000.tar.gz`,
    bucketName: world.bucket,
  });
  mkdirSync(`${world.backupPath}/bak_${world.replicaInstanceId}_20200101000000`);
  writeFileSync(`${world.backupPath}/bak_${world.replicaInstanceId}_20200101000000.tar.gz`, 'half an archive');
  const config = workerConfig({});
  const worker = await startWorker(config, { log });
  try {
    const r = await runMcb(['-f', world.writeConfig({ s3Port: proxy.port }), 'enqueue', 'full', '--instance', String(world.replicaInstanceId), '--wait', '--timeout', '300']);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const abandoned = (await world.metadata.getBackup(orphan.backupUuid))!;
    assert.equal(abandoned.state, 'Error');
    assert.match(abandoned.info!, /^abandoned: no stage job of this backup is left in Redis .*state Tar/);
    const left = (await import('node:fs')).readdirSync(world.backupPath);
    assert.ok(!left.some((f) => f.startsWith(`bak_${world.replicaInstanceId}_20200101000000`)), `orphan files removed, left: ${left}`);
  } finally {
    await worker.close();
  }
});
