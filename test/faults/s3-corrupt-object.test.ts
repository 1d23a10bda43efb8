// S3 answering wrongly after an upload, through an HTTP proxy in front of the real S3 server
// (test/support/s3-fault-proxy.ts), with `verify = download`: an object read back with a byte changed, or reported
// and served at half its length, is caught by verification, removed, and the backup never becomes Completed; a
// read back cut mid-body (connection reset) is a network fault, not corruption: it is retried, the good object is
// neither removed nor sent twice, and the backup completes.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startWorker, type RunningWorker } from '../../src/workers/index.ts';
import { servicesEnv } from '../support/env.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { startS3FaultProxy, type S3Call, type S3FaultProxy } from '../support/s3-fault-proxy.ts';
import { backupRowOfStartJob } from '../support/backup.ts';
import { createWorld, type World } from '../support/world.ts';

let world: World;
let proxy: S3FaultProxy;
let queues: Queues;
let worker: RunningWorker;
const log = createLogger({ name: 'fault-s3-corrupt' });

before(async () => {
  world = await createWorld();
  const s3 = servicesEnv().s3;
  proxy = await startS3FaultProxy(s3.endPoint, s3.port);
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
  // The full read-back (not the default `parts`) is what finds an object that reads back wrong.
  worker = await startWorker(loadConfig(world.writeConfig({ s3Port: proxy.port, backupConf: { stage_attempts: '2', stage_backoff_ms: '200', verify: 'download' } })), { log });
});
after(async () => {
  await worker?.close();
  await queues?.close();
  await queues?.connection.quit();
  await proxy?.close();
  await world?.cleanup();
});

/** Runs one full backup through the worker and returns its row once final and its stage jobs settled. */
async function fullBackup(jobId: string): Promise<BackupRow> {
  const queue = queues.forInstance(world.replicaInstanceId);
  await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId, attempts: 1 });
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const row = await backupRowOfStartJob(queue, world.metadata, jobId);
    // The row is final a moment before BullMQ records the end of the chain's last job.
    const chainEnd = row ? await (await queue.getJob(`${row.backupUuid}-cleanup`))?.getState() : undefined;
    if (row && ['Completed', 'Error'].includes(row.state) && ['completed', 'failed'].includes(chainEnd ?? '')) return row;
    await sleep(100);
  }
  throw new Error(`timed out waiting for the backup of job ${jobId}`);
}

const isArchive = (c: S3Call) => c.bucket === world.bucket && c.key?.startsWith('bak_') === true;
const isObjectRead = (c: S3Call) => isArchive(c) && c.method === 'GET' && c.query.size === 0;
/** A PUT of a whole object or the start of a multipart upload: one per upload. */
const isUploadStart = (c: S3Call) => isArchive(c) && ((c.method === 'PUT' && !c.query.has('partNumber')) || (c.method === 'POST' && c.query.has('uploads')));
const isObjectDelete = (c: S3Call) => isArchive(c) && c.method === 'DELETE' && !c.query.has('uploadId');

test('an object S3 reads back wrong (a byte changed, then half its length): verification removes it each time; Error, never Completed', async () => {
  proxy.calls = [];
  // The first attempt's object reads back with a byte changed; the second's is reported and served at half its length.
  let uploads = 0;
  proxy.fault = (c) => {
    if (isUploadStart(c)) uploads++;
    return isArchive(c) && (c.method === 'GET' || c.method === 'HEAD') && c.query.size === 0 ? (uploads <= 1 ? 'corrupt' : 'short') : undefined;
  };
  try {
    const row = await fullBackup('corrupt-object');
    assert.equal(row.state, 'Error', row.info ?? '');
    assert.match(row.info ?? '', /^upload failed: verification failed: \S+ is \d+ bytes in storage, \d+ were sent/);
    assert.equal(row.objectKey, null);
    const upload = await queues.forInstance(world.replicaInstanceId).getJob(`${row.backupUuid}-upload`);
    assert.match(upload!.stacktrace?.[0] ?? '', /verification failed: \S+ reads back with sha256 [0-9a-f]{64}, [0-9a-f]{64} was sent/, 'the first attempt caught the changed byte');
    const calls = proxy.calls.filter((c) => c.key === row.backupName);
    assert.equal(calls.filter(isUploadStart).length, 2, 'each of the two attempts uploaded');
    assert.equal(calls.filter(isObjectDelete).length, 2, 'each wrong object was removed');
    assert.equal(await world.minio.statObject(world.bucket, row.backupName).catch(() => undefined), undefined, 'no object left in the bucket');
    const cleanup = await queues.forInstance(world.replicaInstanceId).getJob(`${row.backupUuid}-cleanup`);
    assert.equal(await cleanup!.getState(), 'failed', 'cleanup never ran');
  } finally {
    proxy.fault = () => undefined;
  }
  await assertBackupInvariants(world, { completed: 0 });
});

test('a read back cut mid-body is retried, not taken for corruption: the object is kept, not sent twice, and the backup completes', async () => {
  proxy.calls = [];
  // The first four reads of the object are reset halfway: three tries of the first attempt's verification and
  // the first of the second attempt's.
  let reads = 0;
  proxy.fault = (c) => (isObjectRead(c) && ++reads <= 4 ? 'cut' : undefined);
  try {
    const row = await fullBackup('cut-read');
    assert.equal(row.state, 'Completed', row.info ?? '');
    const calls = proxy.calls.filter((c) => c.key === row.backupName);
    assert.equal(calls.filter(isObjectRead).length, 5, 'four cut reads, then one whole');
    assert.equal(calls.filter(isUploadStart).length, 1, 'the object was sent once: the second attempt verified the stored one');
    assert.equal(calls.filter(isObjectDelete).length, 0, 'the good object was never removed');
    const upload = await queues.forInstance(world.replicaInstanceId).getJob(`${row.backupUuid}-upload`);
    assert.equal(upload!.attemptsMade, 2, 'the first attempt failed on the unreadable object, the second completed');
  } finally {
    proxy.fault = () => undefined;
  }
  await assertBackupInvariants(world, { completed: 1 });
});
