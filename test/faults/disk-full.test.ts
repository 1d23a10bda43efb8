// backup_path on a small filesystem: a tmpfs the test mounts over the world's backup_path, sized from the server's
// own figures so the cases hold whatever the replica's data size. The free-space checks before the clone and the
// tar refuse with the numbers and spend no retry; a disk that fills up mid-way (inodes running out during CLONE,
// a filler written the moment the tar's check has passed) ends in Error with the reason, the backup's partial
// files removed, and the replica that was cloned unaffected.
import { test, after, before, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { cloneNeed } from '../../src/jobs/free-space.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { lastArchiveRatio } from '../../src/metadata/archive-ratio.ts';
import { DataNode, type CloneSizeEstimate } from '../../src/mysql/data-node.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startWorker, type RunningWorker } from '../../src/workers/index.ts';
import { servicesEnv } from '../support/env.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { captureLog, type LogEvent } from '../support/log-capture.ts';
import { nextSecond } from '../support/test-mysqld.ts';
import { createWorld, rootConnection, type World } from '../support/world.ts';

const MiB = 1024 * 1024;
const captured = captureLog();
let world: World;
let queues: Queues;
let config: Config;
let worker: RunningWorker;
let backupUser: string;
/** What a backup of the replica needs in backup_path, by the stage's own estimate (the worst case: no backup yet). */
let needed: number;
let estimate: CloneSizeEstimate;
let mounted = false;

before(async () => {
  world = await createWorld();
  backupUser = await createBackupUser(`mcb_df_${world.id}`);
  const env = servicesEnv();
  const link = { host: env.replica.host, port: String(env.replica.port), user: backupUser, password: 'df-secret', charset: 'utf8mb4' };
  config = loadConfig(world.writeConfig({ sections: { 'mysql-link': link } }));
  const node = await DataNode.connect({ ...link, port: env.replica.port });
  try {
    estimate = (await node.cloneSizeEstimate())!;
    assert.equal(estimate?.source, 'information_schema', 'the backup user has PROCESS, as the README asks');
    needed = cloneNeed(estimate, config.backup.compression).total;
  } finally {
    await node.close();
  }
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
  worker = await startWorker(config, { log: captured.log });
});

after(async () => {
  // Each step on its own: a failed one must not leave the others' servers, users or mounts behind.
  const steps: Array<() => unknown> = [() => worker?.close(), unmount, () => queues?.close(), () => queues?.connection.quit(), () => backupUser && dropBackupUser(backupUser), () => world?.cleanup()];
  for (const step of steps) await Promise.resolve().then(step).catch((err: Error) => console.error(`cleanup: ${err.message}`));
});

beforeEach(() => unmount());
afterEach(() => unmount());

/**
 * The README's grants plus PROCESS (tablespace sizes for the clone estimate), for an account of this test's own,
 * created on the source and replicated to the replica it backs up.
 */
async function createBackupUser(user: string): Promise<string> {
  const env = servicesEnv();
  const source = await rootConnection(env.source);
  try {
    for (const host of ['127.0.0.1', 'localhost']) {
      await source.query(`CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY 'df-secret'`, [user, host]);
      await source.query('GRANT BACKUP_ADMIN, RELOAD, REPLICATION CLIENT, PROCESS ON *.* TO ?@?', [user, host]);
      await source.query('GRANT SELECT ON performance_schema.* TO ?@?', [user, host]);
    }
  } finally {
    await source.end();
  }
  const replica = await rootConnection(env.replica);
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [rows] = await replica.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM mysql.user WHERE user = ? AND host = '127.0.0.1'", [user]);
      if (Number(rows[0]!.n) === 1) break;
      if (Date.now() > deadline) throw new Error(`user ${user} did not reach the replica`);
      await sleep(50);
    }
  } finally {
    await replica.end();
  }
  return user;
}

async function dropBackupUser(user: string): Promise<void> {
  const source = await rootConnection(servicesEnv().source);
  try {
    for (const host of ['127.0.0.1', 'localhost']) await source.query('DROP USER IF EXISTS ?@?', [user, host]);
  } finally {
    await source.end();
  }
}

function mountTmpfs(sizeBytes: number, inodes = 10_000): void {
  assert.ok(!mounted);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},nr_inodes=${inodes},mode=0755`, 'tmpfs', world.backupPath]);
  mounted = true;
}

/** A file the failed stage or mysqld just closed may keep the mount busy for a moment; then it is detached lazily. */
async function unmount(): Promise<void> {
  if (!mounted) return;
  for (let tries = 0; ; tries++) {
    try {
      execFileSync('umount', [world.backupPath], { stdio: 'pipe' });
      break;
    } catch (err) {
      if (tries < 50) await sleep(100);
      else {
        execFileSync('umount', ['-l', world.backupPath]);
        break;
      }
      void err;
    }
  }
  mounted = false;
}

function freeBytes(): number {
  const fs = statfsSync(world.backupPath);
  return fs.bavail * fs.bsize;
}

const fillerFile = () => path.join(world.backupPath, 'filler');

/** Takes the space of backup_path, leaving `leaveBytes` free: another program filling the disk. Synchronous on purpose. */
function fillDisk(leaveBytes: number): void {
  const take = freeBytes() - leaveBytes;
  if (take > 0) execFileSync('fallocate', ['-l', String(take), fillerFile()]);
}

/** Runs `hook` once, the moment a log line matches: it runs inside the worker's logging call, before the stage goes on. */
function onceLogged(match: (e: LogEvent) => boolean, hook: () => void): void {
  const off = captured.on((e) => {
    if (!match(e)) return;
    off();
    hook();
  });
}

async function runFull(jobId: string): Promise<BackupRow> {
  // Backup names have whole seconds (the seed's bak_<id>_<YYYYmmddHHMMSS>): two backups in one second share files.
  await nextSecond();
  const queue = queues.forInstance(world.replicaInstanceId);
  await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId, attempts: 1 });
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const job = await queue.getJob(jobId);
    if (job?.failedReason) throw new Error(`start job failed: ${job.failedReason}`);
    const uuid = (job?.returnvalue as { backupUuid?: string } | undefined)?.backupUuid;
    const row = uuid ? await world.metadata.getBackup(uuid) : undefined;
    if (row && ['Completed', 'Error'].includes(row.state)) {
      // The worker finishes recording a failure (info, kept files) before the job moves to failed.
      await waitChainSettled(row.backupUuid);
      return (await world.metadata.getBackup(row.backupUuid))!;
    }
    await sleep(50);
  }
  throw new Error(`backup of job ${jobId} did not finish`);
}

/** The worker marks the row before the job moves to failed; the stages after it fail with it. */
async function waitChainSettled(backupUuid: string): Promise<void> {
  const queue = queues.forInstance(world.replicaInstanceId);
  const deadline = Date.now() + 10_000;
  for (const stage of ['clone', 'tar', 'upload', 'cleanup']) {
    for (;;) {
      const state = await (await queue.getJob(`${backupUuid}-${stage}`))?.getState();
      if (state === 'completed' || state === 'failed') break;
      if (Date.now() > deadline) throw new Error(`stage ${stage} of ${backupUuid} still ${state}`);
      await sleep(50);
    }
  }
}

/** How often each stage of a backup started (stage.start lines): a permanent refusal starts once. */
function starts(backupUuid: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of captured.named('stage.start')) {
    const jobId = String(e.jobId ?? '');
    if (jobId.startsWith(`${backupUuid}-`)) counts[jobId.slice(backupUuid.length + 1)] = (counts[jobId.slice(backupUuid.length + 1)] ?? 0) + 1;
  }
  return counts;
}

/** The replica still answers, still replicates, and its datadir holds the same InnoDB files as before. */
async function assertReplicaUnaffected(datadirBefore: Record<string, number>): Promise<void> {
  const conn = await rootConnection(servicesEnv().replica);
  try {
    const [users] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM mysql.user');
    assert.ok(Number(users[0]!.n) > 0);
    const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW REPLICA STATUS');
    assert.equal(status[0]?.Replica_SQL_Running, 'Yes');
    assert.equal(status[0]?.Replica_IO_Running, 'Yes');
  } finally {
    await conn.end();
  }
  const after = datadirFiles();
  for (const [name, size] of Object.entries(datadirBefore)) assert.ok(after[name] !== undefined && after[name]! >= size, `replica datadir still has ${name}`);
}

function datadirFiles(): Record<string, number> {
  const dir = servicesEnv().replica.datadir;
  const files: Record<string, number> = {};
  for (const name of readdirSync(dir)) if (/^(ibdata\d+|mysql\.ibd|undo_\d+)$/.test(name)) files[name] = statSync(path.join(dir, name)).size;
  assert.ok(files['ibdata1'] && files['mysql.ibd'], 'the replica datadir has its system tablespaces');
  return files;
}

function assertBackupPathEmpty(): void {
  rmSync(fillerFile(), { force: true });
  assert.deepEqual(readdirSync(world.backupPath), [], 'nothing of the backup is left in backup_path');
}

test('backup_path too small for the clone and its archive: refused before CLONE, with the numbers, and not retried', async () => {
  const size = Math.floor(needed / 2 / MiB) * MiB;
  mountTmpfs(size);
  const row = await runFull('df-clone-refused');
  assert.equal(row.state, 'Error');
  const m = /^clone failed: not enough space in backup_path (\S+) for bak_\d+_\d{14}\.tar\.gz: needs \S+, \S+ free \((\d+) > (\d+) bytes\); clone about \S+ \(tablespaces \S+ from information_schema \+ redo capacity \S+\), archive up to \S+ \(worst case: no earlier Completed gzip full of this instance records its ratio\), margin \S+$/.exec(row.info ?? '');
  assert.ok(m, row.info ?? '');
  assert.equal(m[1], world.backupPath);
  assert.equal(Number(m[2]), needed, 'needed: the estimate');
  assert.equal(Number(m[3]), size, 'free: the whole (empty) tmpfs');
  assert.deepEqual(starts(row.backupUuid), { clone: 1 }, 'one attempt: the refusal is permanent');
  assertBackupPathEmpty();
  await assertBackupInvariants(world);
});

test('room for the clone, but the space is taken before the tar: refused before tar, with the numbers; the clone is kept for a retry', async () => {
  mountTmpfs(needed + 32 * MiB);
  // Another program fills the disk the moment the clone stage is done, before the tar stage starts.
  onceLogged((e) => e.event === 'stage.done' && e.stage === 'clone', () => fillDisk(8 * MiB));
  const row = await runFull('df-tar-refused');
  assert.equal(row.state, 'Error');
  assert.match(row.info ?? '', /^tar failed: not enough space in backup_path \S+ for bak_\d+_\d{14}\.tar\.gz: needs \S+, \S+ free \((\d+) > (\d+) bytes\); the archive is at most the clone's /);
  const [, need, free] = /\((\d+) > (\d+) bytes\)/.exec(row.info!)!;
  assert.ok(Number(free) <= 8 * MiB && Number(need) > Number(free), row.info!);
  assert.match(row.info ?? '', /\[kept \S+ for `mcb jobs retry`; the next full backup removes them\]/);
  assert.deepEqual(starts(row.backupUuid), { clone: 1, tar: 1 }, 'one tar attempt: the refusal is permanent');
  rmSync(fillerFile());
  assert.deepEqual(readdirSync(world.backupPath), [row.backupName.replace(/\.tar\.gz$/, '')], 'only the whole clone is left, and the row says so');
  await assertBackupInvariants(world);
});

test('the disk fills up during CLONE (its inodes run out): Error with the reason, the partial clone removed, the replica unaffected', async () => {
  const datadirBefore = datadirFiles();
  // Bytes to spare, so the checks pass; a handful of inodes, so CLONE fails after creating its first files.
  mountTmpfs(needed + 32 * MiB, 8);
  const row = await runFull('df-clone-enospc');
  assert.equal(row.state, 'Error');
  assert.match(row.info ?? '', /^clone failed: backup_path \S+ ran out of space while cloning: .*No space left on device.*; the partial clone was removed; \S+ free now$/);
  assert.deepEqual(starts(row.backupUuid), { clone: 1 }, 'not retried: a full disk needs a person');
  assertBackupPathEmpty();
  await assertReplicaUnaffected(datadirBefore);
  await assertBackupInvariants(world);
});

test('the disk fills up during the tar: Error with the reason, the partial archive and the clone removed', async () => {
  const datadirBefore = datadirFiles();
  mountTmpfs(needed + 32 * MiB);
  // The tar stage's check has passed; another program takes every byte left before the archive is written.
  onceLogged((e) => e.event === 'free-space.ok' && e.stage === 'tar', () => fillDisk(0));
  const row = await runFull('df-tar-enospc');
  assert.equal(row.state, 'Error');
  assert.match(row.info ?? '', /^tar failed: backup_path \S+ ran out of space while archiving: ENOSPC: no space left on device.*; the partial archive and the clone were removed to free the disk; the next full backup starts over; \S+ free now$/);
  assert.deepEqual(starts(row.backupUuid), { clone: 1, tar: 1 });
  assertBackupPathEmpty();
  await assertReplicaUnaffected(datadirBefore);
  await assertBackupInvariants(world);
});

// Last: from here on the instance has a Completed full, so the estimates above would use its ratio.
test('after a Completed full, the archive is estimated from its ratio: a backup_path the worst case would refuse holds the next backup', async (t) => {
  const first = await runFull('df-ratio-first');
  assert.equal(first.state, 'Completed', first.info ?? '');
  assert.ok(first.sourceBytes! > first.backupBytes!, `the row records what the archive was made from: ${first.sourceBytes} > ${first.backupBytes}`);
  const codec = config.backup.compression;
  const last = await lastArchiveRatio(world.metadata, world.replicaInstanceId, codec);
  assert.deepEqual(last, { ratio: first.backupBytes! / first.sourceBytes!, backupName: first.backupName, codec });
  const byRatio = cloneNeed(estimate, codec, last).total;
  const size = Math.ceil((byRatio + needed) / 2 / MiB) * MiB;
  assert.ok(byRatio <= size && size < needed, `room for the estimate from the ratio (${byRatio}), not for the worst case (${needed}): ${size}`);

  t.diagnostic(`ratio ${last!.ratio.toFixed(3)}: needs ${byRatio} bytes from the ratio, ${needed} in the worst case; tmpfs of ${size}`);
  mountTmpfs(size);
  const row = await runFull('df-ratio-second');
  assert.equal(row.state, 'Completed', row.info ?? '');
  const checks = captured.named('free-space.ok').filter((e) => String(e.jobId ?? '').startsWith(`${row.backupUuid}-`));
  assert.deepEqual(checks.map((e) => [e.stage, e.archiveEstimate]), [['clone', 'ratio'], ['tar', 'ratio']]);
  assert.equal(checks[0]!.needed, byRatio, 'the clone check asked for the estimate from the ratio');
  assertBackupPathEmpty();
  await assertBackupInvariants(world);
});
