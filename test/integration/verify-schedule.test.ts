// The restore test (`verify` job) as it runs in production: scheduled weekly per instance by the
// producer, and on demand with `mcb enqueue verify --instance ID --wait` through a real worker whose [restore]
// section names the server binaries; against a real CLONE full backup of the replica. Also: a worker with no
// usable mysqld skips (no failure every week), a configured but broken one fails, --wait exits 1 on a failed job,
// and object storage being unreachable or a worker shutdown while the temporary mysqld starts fails the job
// without touching the row's verify result.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { fullJob } from '../../src/jobs/full.ts';
import { cloneStage } from '../../src/jobs/full-clone.ts';
import { tarStage } from '../../src/jobs/full-tar.ts';
import { uploadStage } from '../../src/jobs/full-upload.ts';
import { cleanupStage } from '../../src/jobs/full-cleanup.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import { verifyJob } from '../../src/jobs/verify.ts';
import { createLogger } from '../../src/log/index.ts';
import { schedulerId, syncSchedules } from '../../src/producer/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startWorker, type RunningWorker } from '../../src/workers/index.ts';
import { directContext } from '../support/context.ts';
import { servicesEnv } from '../support/env.ts';
import { runMcb } from '../support/spawn.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { createWorld, type World } from '../support/world.ts';
import { requireOss } from '../../src/config/index.ts';
import { MinioObjectStore } from '../../src/storage/index.ts';

let world: World;
let queues: Queues;
let worker: RunningWorker | undefined;
let config: Config;
let configFile: string;
let scratch: string;
let backupUuid: string;
const log = createLogger({ name: 'test-verify' });
const savedEnv = { MCB_SID_ROOT: process.env.MCB_SID_ROOT, MCB_MYSQLD: process.env.MCB_MYSQLD };

before(async () => {
  // The worker must find mysqld through its [restore] section, not through the environment.
  delete process.env.MCB_SID_ROOT;
  delete process.env.MCB_MYSQLD;
  world = await createWorld();
  scratch = path.join(world.dir, 'verify-scratch');
  mkdirSync(scratch);
  configFile = world.writeConfig({ sections: { restore: { sid_root: servicesEnv().sidRoot, scratch_path: scratch } } });
  config = loadConfig(configFile);
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
});
after(async () => {
  await worker?.close();
  await queues?.close();
  await queues?.connection.quit();
  await world?.cleanup();
  for (const [k, v] of Object.entries(savedEnv)) if (v !== undefined) process.env[k] = v;
});

test('the producer keeps a weekly verify schedule per instance', async () => {
  await syncSchedules(world.config, world.metadata, queues, log);
  try {
    for (const id of [world.sourceInstanceId, world.replicaInstanceId]) {
      const queue = queues.forInstance(id);
      const verify = (await queue.getJobSchedulers()).find((s) => s.key === schedulerId('verify', id));
      assert.ok(verify, `instance ${id} has a verify scheduler`);
      assert.equal(verify.pattern, '0 4 * * 0', 'weekly, Sunday 04:00, by default');
      const next = (await queue.getJobs(['delayed', 'waiting'])).filter((j) => j.name === 'verify');
      assert.equal(next.length, 1, 'exactly one next verify job');
      assert.deepEqual(next[0]!.data, { instanceId: id });
    }
  } finally {
    // The worker below must not pick up scheduled jobs that happen to come due (binlog every 30 minutes).
    for (const id of [world.sourceInstanceId, world.replicaInstanceId]) {
      const queue = queues.forInstance(id);
      for (const s of await queue.getJobSchedulers()) await queue.removeJobScheduler(s.key);
      await queue.drain(true);
    }
  }
});

test('set-up: a real CLONE full backup of the replica, made with the stage handlers', async () => {
  const ctx = directContext(world.config, world.metadata, { jobId: `verify-full-${world.id}` });
  const started = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  assert.ok(started.started);
  backupUuid = started.backupUuid;
  for (const stage of [cloneStage, tarStage, uploadStage, cleanupStage]) await stage.handle({ instanceId: world.replicaInstanceId, backupUuid }, ctx);
  assert.equal((await world.metadata.getBackup(backupUuid))!.state, 'Completed');
});

test('mcb enqueue verify --wait through a real worker: exit 0, the row is verified, the scratch copy is gone', async () => {
  worker = await startWorker(config, { log });
  const before = Date.now();
  const r = await runMcb(['-f', configFile, 'enqueue', 'verify', '--instance', String(world.replicaInstanceId), '--wait', '--timeout', '280'], { timeoutMs: 300_000 });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /enqueued restore test of instance \d+ .* as job verify-adhoc-/);
  assert.match(r.stdout, new RegExp(`backup: +${backupUuid}`));
  assert.match(r.stdout, /tables: +\d+ checked .*`mysql`\.`user`.* with mysqld 9\.\d+/s);
  assert.match(r.stdout, /state: +ok/);
  const row = (await world.metadata.getBackup(backupUuid))!;
  assert.equal(row.verifyState, 'ok');
  assert.ok(row.verifiedAt && row.verifiedAt.getTime() >= before - 1000, `verified_at ${row.verifiedAt?.toISOString()} recorded by this run`);
  assert.equal(row.state, 'Completed');
  assert.deepEqual(readdirSync(scratch), [], '[restore] scratch_path was used and emptied');
});

test('mcb enqueue verify --wait exits 1 when the job fails (no such backup)', async () => {
  const r = await runMcb(['-f', configFile, 'enqueue', 'verify', '--instance', String(world.replicaInstanceId), '--backup', 'no-such-uuid', '--wait', '--timeout', '120']);
  assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /restore test of instance \d+ failed: instance \d+ has no Completed full backup with uuid no-such-uuid/);
});

test('a worker with no usable mysqld and nothing configured skips (warn, no row change); a configured broken one fails', async () => {
  const verifiedAt = (await world.metadata.getBackup(backupUuid))!.verifiedAt;
  const savedPath = process.env.PATH;
  process.env.PATH = mkdtempSync(path.join(world.dir, 'empty-path-')); // no mysqld on PATH, whatever this host has
  try {
    const plain = loadConfig(world.writeConfig());
    const skipped = await verifyJob.handle({ instanceId: world.replicaInstanceId }, directContext(plain, world.metadata));
    assert.equal(skipped.state, 'skipped');
    assert.match(skipped.reason!, /no usable mysqld on this worker's host \(cannot run mysqld: ENOENT\); set \[restore\] sid_root or mysqld/);
    assert.equal(skipped.backupUuid, undefined);
    assert.deepEqual((await world.metadata.getBackup(backupUuid))!.verifiedAt, verifiedAt, 'nothing recorded for a skip');

    const broken = loadConfig(world.writeConfig({ sections: { restore: { mysqld: '/nonexistent/mysqld' } } }));
    await assert.rejects(
      verifyJob.handle({ instanceId: world.replicaInstanceId }, directContext(broken, world.metadata)),
      (e: unknown) => e instanceof PermanentJobError && /cannot run the configured server, mysqld \/nonexistent\/mysqld \(\[restore\] sid_root\/mysqld\): cannot run \/nonexistent\/mysqld: ENOENT/.test((e as Error).message),
    );
  } finally {
    process.env.PATH = savedPath;
  }
});

test('S3 unreachable: the job fails (retryable), the row keeps its verify_state, verified_at and error_detail', async () => {
  const before = (await world.metadata.getBackup(backupUuid))!;
  assert.equal(before.verifyState, 'ok', 'verified ok by the test above');
  const s3 = servicesEnv().s3;
  const proxy = await startTcpProxy(s3.endPoint, s3.port);
  try {
    proxy.down(); // connections are accepted and cut at once: the download fails
    const oss = requireOss(config);
    const storage = new MinioObjectStore({ ...oss, endPoint: '127.0.0.1', port: proxy.port }, oss.bucket);
    await assert.rejects(verifyJob.handle({ instanceId: world.replicaInstanceId }, directContext(config, world.metadata, { storage })), (e: unknown) => {
      assert.ok(!(e instanceof PermanentJobError), `a storage outage is retried, not permanent: ${String(e)}`);
      return true;
    });
    assert.ok(proxy.connections > 0, 'the job did try the object storage');
  } finally {
    await proxy.close();
  }
  const after = (await world.metadata.getBackup(backupUuid))!;
  assert.equal(after.verifyState, 'ok', 'verify_state not overwritten by an outage');
  assert.deepEqual(after.verifiedAt, before.verifiedAt);
  assert.equal(after.errorDetail, before.errorDetail);
  assert.deepEqual(readdirSync(scratch), [], 'the scratch copy is removed after a failed job too');
});

/** The log of the verify job's temporary mysqld once InnoDB is starting (the server runs, and is not ready yet). */
async function mysqldStarting(timeoutMs: number, jobEnded: () => boolean): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !jobEnded()) {
    for (const d of readdirSync(scratch).filter((f) => f.startsWith('verify_'))) {
      const log = path.join(scratch, d, 'run', 'mysqld.log');
      if (existsSync(log) && readFileSync(log, 'utf8').includes('InnoDB initialization has started')) return log;
    }
    await sleep(20);
  }
  throw new Error(`no temporary mysqld started under ${scratch} ${jobEnded() ? 'before the job ended' : `within ${timeoutMs / 1000}s`}`);
}

/** Processes whose command line mentions `text` (the temporary server names its datadir). */
function processesMentioning(text: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc').filter((f) => /^\d+$/.test(f))) {
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text)) pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test('a worker shutdown while the temporary mysqld starts: the job fails, not a finding; the row keeps its verify result', async () => {
  const before = (await world.metadata.getBackup(backupUuid))!;
  assert.equal(before.verifyState, 'ok', 'verified ok by the test above');
  const shutdown = new AbortController();
  const ctx = { ...directContext(config, world.metadata), signal: shutdown.signal };
  const job = verifyJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  let ended = false;
  void job.then(
    () => (ended = true),
    () => (ended = true),
  );
  const log = await mysqldStarting(240_000, () => ended);
  shutdown.abort(new Error('worker shutting down'));
  await assert.rejects(job, (e: unknown) => {
    assert.ok(!(e instanceof PermanentJobError), `handed back, not a permanent failure: ${String(e)}`);
    assert.match((e as Error).message, /stopped while starting: worker shutting down/);
    return true;
  });
  assert.ok(!existsSync(log), 'the server log went with the scratch copy');
  const after = (await world.metadata.getBackup(backupUuid))!;
  assert.equal(after.verifyState, 'ok', 'a good backup is not marked failed by an interrupted test');
  assert.deepEqual(after.verifiedAt, before.verifiedAt);
  assert.equal(after.errorDetail, before.errorDetail);
  assert.deepEqual(readdirSync(scratch), [], 'the scratch copy is removed');
  assert.deepEqual(processesMentioning(scratch), [], 'the temporary mysqld was stopped');
});
