// Fault: the worker process gets SIGTERM while its weekly restore test (`verify`) runs a temporary mysqld on a
// restored copy of the newest full backup. The worker must stop within shutdown_grace_seconds, stopping that
// mysqld (no process left) and removing the scratch copy, and hand the job back (or fail it with the true reason)
// without a verdict on the backup. The real `mcb worker` process, a real CLONE backup of the replica, the real
// mysqld of the services.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Job } from 'bullmq';
import type { BackupRow } from '../../src/metadata/index.ts';
import { instanceQueueName, pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { makeCompletedFullBackup } from '../support/backup.ts';
import { servicesEnv } from '../support/env.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { startMcb, type Daemon } from '../support/spawn.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

let world: World;
let queues: Queues;
let scratch: string;
let backup: BackupRow;
const daemons: Daemon[] = [];

before(async () => {
  world = await createWorld();
  scratch = path.join(world.dir, 'verify-scratch');
  mkdirSync(scratch);
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
  backup = await makeCompletedFullBackup(world);
});
after(async () => {
  for (const d of daemons) await d.stop(10_000).catch(() => undefined);
  await queues?.close();
  await queues?.connection.quit();
  await world?.cleanup();
});

function workerConfig(graceSeconds: number): string {
  return world.writeConfig({
    backupConf: { shutdown_grace_seconds: String(graceSeconds) },
    sections: { restore: { sid_root: servicesEnv().sidRoot, scratch_path: scratch } },
  });
}

function startWorkerProcess(configFile: string): Daemon {
  const daemon = startMcb(['-f', configFile, 'worker'], path.join(world.dir, `worker-${randomId()}.log`), { MCB_SID_ROOT: '', MCB_MYSQLD: '' });
  daemons.push(daemon);
  return daemon;
}

const queue = () => queues.queue(instanceQueueName(world.replicaInstanceId));

async function enqueueVerify(): Promise<string> {
  const jobId = `verify-${randomId()}`;
  await queue().add('verify', { instanceId: world.replicaInstanceId }, { jobId, attempts: 1 });
  return jobId;
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The verify job's temporary mysqld, once InnoDB is starting on the restored copy: its pids and log file. */
async function temporaryMysqldRunning(daemon: Daemon): Promise<{ pids: number[]; log: string }> {
  return until('the temporary mysqld of the restore test to start', () => {
    if (daemon.child.exitCode !== null) throw new Error(`the worker exited: ${readFileSync(daemon.logFile, 'utf8')}`);
    for (const d of readdirSync(scratch).filter((f) => f.startsWith('verify_'))) {
      const log = path.join(scratch, d, 'run', 'mysqld.log');
      const pids = processesMentioning(scratch);
      if (pids.length && existsSync(log) && readFileSync(log, 'utf8').includes('InnoDB initialization has started')) return { pids, log };
    }
    return undefined;
  });
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

async function jobState(jobId: string): Promise<{ job: Job; state: string }> {
  const job = (await queue().getJob(jobId))!;
  return { job, state: await job.getState() };
}

/** Nothing of the restore test is left on the host, and the backup row carries no verdict from it. */
async function assertNothingLeft(before: BackupRow): Promise<void> {
  assert.deepEqual(processesMentioning(scratch), [], 'no temporary mysqld is left running');
  assert.deepEqual(readdirSync(scratch), [], 'the scratch copy (datadir, socket, log) is removed');
  const row = (await world.metadata.getBackup(backup.backupUuid))!;
  assert.equal(row.verifyState, before.verifyState, 'an interrupted restore test records no verdict');
  assert.deepEqual(row.verifiedAt, before.verifiedAt);
  assert.equal(row.errorDetail, before.errorDetail);
}

test('SIGTERM to the worker during verify: it stops its temporary mysqld, removes the scratch copy and hands the job back', async () => {
  // No grace: the running stage is interrupted at once (a grace longer than the rest of the test would let it finish).
  const configFile = workerConfig(0);
  const before = (await world.metadata.getBackup(backup.backupUuid))!;
  const worker = startWorkerProcess(configFile);
  const jobId = await enqueueVerify();
  await temporaryMysqldRunning(worker);

  const code = await worker.stop(60_000); // SIGTERM; SIGKILL only if it has not exited a minute later
  const log = readFileSync(worker.logFile, 'utf8');
  assert.equal(code, 0, `the worker exits by itself, cleanly:\n${log}`);
  assert.match(log, /"event":"stage\.handed-back"/);
  await assertNothingLeft(before);
  const { job, state } = await jobState(jobId);
  assert.equal(state, 'waiting', 'handed back to the queue for the next worker');
  assert.equal(job.attemptsMade, 0, 'an interrupted restore test spends no attempt');
  await job.remove(); // the next test starts its own

  await assertBackupInvariants(world, { completed: 1 });
});

test('SIGTERM to the worker and its temporary mysqld at once (systemd stopping the service): no verdict, nothing left, the worker does not wait out its grace', async () => {
  const grace = 30;
  const before = (await world.metadata.getBackup(backup.backupUuid))!;
  const worker = startWorkerProcess(workerConfig(grace));
  const jobId = await enqueueVerify();
  const { pids } = await temporaryMysqldRunning(worker);

  // KillMode=control-group: every process of the service gets the signal, the worker once (a second one would
  // mean "hand everything back now").
  for (const pid of pids) process.kill(pid, 'SIGTERM');
  const signalled = Date.now();
  const code = await worker.stop((grace + 30) * 1000);
  assert.equal(code, 0, readFileSync(worker.logFile, 'utf8'));
  await assertNothingLeft(before);
  const { job, state } = await jobState(jobId);
  // The restore test could not run to the end: never a verdict against the backup. Its attempt fails with the true
  // reason (or, shutting down, the worker hands it back unspent).
  if (state === 'waiting') assert.equal(job.attemptsMade, 0);
  else assert.equal(state, 'failed');
  // Killed by the signal before it could handle it, or shut down by it (the log says so): both are named.
  if (state === 'failed') assert.match(job.failedReason, /exited before accepting connections \(SIGTERM\)|the temporary mysqld was shut down from outside during the restore test \(Received SHUTDOWN from user <via user signal>\)/);
  assert.ok(Date.now() - signalled < grace * 1000, 'the job ended with its server, without waiting out the grace');
  await assertBackupInvariants(world, { completed: 1 });
});
