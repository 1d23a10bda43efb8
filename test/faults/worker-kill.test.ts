// A worker process group killed with kill -9 in the middle of the clone and of the tar, and a worker frozen
// (SIGSTOP, as a paused VM) until BullMQ hands its running stage out again: the next attempt finishes the same
// backup, never beside a live one, and never touches a clone directory a CLONE still writes into.
//
// The stages run against a private MySQL 9.7 (not the shared replica) whose CLONE the test can hold in
// 'In Progress' for as long as it needs: with clone_block_ddl = ON a CLONE waits for the backup lock, and a DDL
// queued behind a LOCK TABLES holds that lock until the test releases it (the "gate").
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { fullBackupFiles } from '../../src/jobs/full-files.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { testServers, type TestServer } from '../support/test-mysqld.ts';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.ts';
import { createWorld, type World } from '../support/world.ts';

const STAGE_LOCK_SECONDS = 2;

let world: World;
let queues: Queues;
const servers = testServers('mcb-worker-kill');
let server: TestServer;
let instanceId: number;
let configFile: string;
const workers: WorkerProcess[] = [];

before(async () => {
  world = await createWorld();
  server = await servers.start('node', 31, ['--plugin-load-add=mysql_clone.so']);
  await server.conn.query('CREATE DATABASE gate');
  await server.conn.query('CREATE TABLE gate.t (id int primary key)');
  // Incompressible rows, so that gzip takes a few seconds: long enough to be caught mid-tar.
  await server.conn.query('CREATE TABLE gate.filler (id int auto_increment primary key, v varbinary(1024))');
  await server.conn.query('SET SESSION cte_max_recursion_depth = 100000');
  await server.conn.query('INSERT INTO gate.filler (v) WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 8192) SELECT RANDOM_BYTES(1024) FROM seq');
  instanceId = await world.metadata.addInstance({
    instanceId: `127.0.0.1:${server.port}`,
    instanceName: `worker-kill-${world.id}`,
    stringLink: '127.0.0.1',
    dbPort: server.port,
    isClone: true,
  });
  configFile = world.writeConfig({
    instanceId,
    backupConf: {
      is_cluster: 'off',
      bin_index_path: server.binlogIndex,
      stage_lock_seconds: String(STAGE_LOCK_SECONDS),
      stage_attempts: '3',
      stage_backoff_ms: '200',
    },
    sections: { 'mysql-link': server.link },
  });
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
  // Three workers of the one instance, started together: one takes the jobs, two stand by, and each kill below
  // leaves a standby to take over, as a supervisor's restart would (minus its start-up time).
  for (const name of ['w1', 'w2', 'w3']) startWorker(name);
  await until(async () => roleHolder() && workers.filter((w) => w.events().some((e) => e.event === 'worker.standby')).length === 2, 'one worker ready and two standing by');
});

after(async () => {
  for (const w of workers) await w.stop(5000).catch(() => undefined);
  await queues?.close();
  await queues?.connection.quit();
  await servers.stopAll();
  await world?.cleanup();
});

function startWorker(name: string): WorkerProcess {
  const w = spawnWorker(configFile, path.join(world.dir, `${name}.log`));
  workers.push(w);
  return w;
}

function alive(w: WorkerProcess): boolean {
  return w.child.exitCode === null && w.child.signalCode === null;
}

/** The live worker that takes the instance's jobs (a standby logs worker.ready only once it took over). */
function roleHolder(): WorkerProcess | undefined {
  return workers.find((w) => alive(w) && w.events().some((e) => e.event === 'worker.ready'));
}

/** The standby that took over after the holder was killed. */
async function newHolder(): Promise<WorkerProcess> {
  return until(async () => workers.find((w) => alive(w) && w.events().some((e) => e.event === 'worker.takeover')), 'a standby to take over', 30_000);
}

/** Holds every CLONE of the private server in 'In Progress' (waiting for the backup lock) until opened. */
async function closeGate(): Promise<{ open(): Promise<void> }> {
  const connect = () => mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root', password: '' });
  await server.conn.query('SET GLOBAL clone_block_ddl = ON');
  const reader = await connect();
  const ddl = await connect();
  await reader.query('LOCK TABLES gate.t READ');
  // Settled here, so a test that fails with the gate closed leaves no unhandled rejection behind.
  const queued = ddl.query('ALTER TABLE gate.t ENGINE = InnoDB, ALGORITHM = COPY').then(
    () => undefined,
    (err: Error) => err,
  );
  await until(async () => {
    const [rows] = await server.conn.query<mysql.RowDataPacket[]>("SELECT 1 FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock'");
    return rows.length > 0;
  }, 'the gate DDL to queue');
  return {
    async open() {
      await reader.query('UNLOCK TABLES');
      const err = await queued;
      if (err) throw err;
      await server.conn.query('SET GLOBAL clone_block_ddl = OFF');
      await Promise.all([reader.end(), ddl.end()]);
    },
  };
}

async function cloneInProgress(): Promise<{ pid: number; destination: string } | undefined> {
  const [rows] = await server.conn.query<mysql.RowDataPacket[]>("SELECT PID, DESTINATION FROM performance_schema.clone_status WHERE STATE = 'In Progress'");
  return rows[0] ? { pid: Number(rows[0].PID), destination: String(rows[0].DESTINATION) } : undefined;
}

async function connectionAlive(id: number): Promise<boolean> {
  const [rows] = await server.conn.query<mysql.RowDataPacket[]>('SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = ?', [id]);
  return rows.length > 0;
}

async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v) return v;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function enqueueFull(jobId: string): Promise<BackupRow> {
  const queue = queues.forInstance(instanceId);
  await queue.add('full', { instanceId }, { jobId, attempts: 1 });
  return until(async () => {
    const job = await queue.getJob(jobId);
    if (job?.failedReason) throw new Error(`start job failed: ${job.failedReason}`);
    const uuid = (job?.returnvalue as { backupUuid?: string } | undefined)?.backupUuid;
    return uuid ? world.metadata.getBackup(uuid) : undefined;
  }, `the backup row of job ${jobId}`);
}

async function rowIn(uuid: string, states: string[], timeoutMs = 90_000): Promise<BackupRow> {
  return until(async () => {
    const row = await world.metadata.getBackup(uuid);
    return row && states.includes(row.state) ? row : undefined;
  }, `backup ${uuid} in ${states.join('/')}`, timeoutMs);
}

test('kill -9 of the worker mid-clone: its CLONE, still running in mysqld, is killed before the directory is touched; a new worker finishes the same backup', async () => {
  const first = roleHolder()!;
  const gate = await closeGate();
  const started = await enqueueFull('kill-mid-clone');
  const { cloneDir } = fullBackupFiles(started);
  const orphan = await until(async () => {
    const c = await cloneInProgress();
    return c && c.destination.replace(/\/$/, '') === cloneDir ? c : undefined;
  }, 'the first worker’s CLONE');

  await first.killGroup();
  // The CLONE outlives its client: mysqld goes on with it after the worker is gone.
  await sleep(200);
  assert.deepEqual(await cloneInProgress(), orphan, 'the dead worker’s CLONE is still running inside mysqld');
  // What the orphan would have written had it got further: a half-written clone directory.
  mkdirSync(cloneDir, { recursive: true });
  writeFileSync(path.join(cloneDir, 'ibdata1'), Buffer.alloc(4096));

  const second = await newHolder();

  const killed = await second.waitForEvent((e) => e.event === 'clone.orphan-killed', 'clone.orphan-killed', 60_000);
  assert.equal(killed.processlistId, orphan.pid);
  assert.equal(killed.cloneDir, cloneDir);
  assert.equal(await connectionAlive(orphan.pid), false, 'the orphan CLONE’s connection is gone');
  // The new attempt's own CLONE now waits at the gate: a CLONE of another connection, into the same directory.
  const own = await until(async () => {
    const c = await cloneInProgress();
    return c && c.pid !== orphan.pid ? c : undefined;
  }, 'the second worker’s CLONE');
  assert.equal(own.destination.replace(/\/$/, ''), cloneDir);
  await gate.open();

  const done = await rowIn(started.backupUuid, ['Completed', 'Error']);
  assert.equal(done.state, 'Completed', done.info ?? '');
  const rows = await world.metadata.listBackups({ instanceId, type: 'full' });
  assert.deepEqual(rows.map((r) => r.backupUuid), [started.backupUuid], 'the same backup row, no second one');
  assert.ok(second.events().some((e) => e.event === 'stage.start' && e.stage === 'clone'), 'the clone ran again on the new worker');
  await assertBackupInvariants(world, { completed: 1 });
});

test('kill -9 of the worker mid-tar: the half-written archive is rewritten by a new worker, which finishes the same backup', async () => {
  const victim = roleHolder()!;
  const started = await enqueueFull('kill-mid-tar');
  const { archiveFile } = fullBackupFiles(started);
  await until(async () => {
    const row = await world.metadata.getBackup(started.backupUuid);
    if (row && !['Doing', 'Done', 'Tar'].includes(row.state)) throw new Error(`tar ended before the test could stop it: ${row.state}`);
    return row?.state === 'Tar' && existsSync(archiveFile) && statSync(archiveFile).size > 0;
  }, 'the tar stage writing its archive');
  // Freeze the group first, so what is checked below is the state the kill leaves.
  victim.signalGroup('SIGSTOP');
  const frozen = (await world.metadata.getBackup(started.backupUuid))!;
  assert.equal(frozen.state, 'Tar');
  assert.equal(frozen.sha256, null, 'the archive was not finished');
  const halfSize = statSync(archiveFile).size;
  await victim.killGroup();
  const next = await newHolder();

  const done = await rowIn(started.backupUuid, ['Completed', 'Error']);
  assert.equal(done.state, 'Completed', done.info ?? '');
  assert.ok(done.backupBytes! > halfSize, `the stored archive (${done.backupBytes} bytes) is whole, not the ${halfSize} bytes left by the kill`);
  assert.ok(next.events().some((e) => e.event === 'stage.start' && e.stage === 'tar'), 'the tar ran again on the new worker');
  assert.ok(!existsSync(archiveFile), 'cleanup removed the archive');
  await assertBackupInvariants(world, { completed: 2 });
});

test('a stage handed out again while its first attempt still runs (a frozen worker whose job lock expired) waits for the backup fence and does not run twice', async () => {
  const worker = roleHolder()!;
  const gate = await closeGate();
  const started = await enqueueFull('redelivered');
  const { cloneDir } = fullBackupFiles(started);
  const first = await until(async () => {
    const c = await cloneInProgress();
    return c && c.destination.replace(/\/$/, '') === cloneDir ? c : undefined;
  }, 'the first attempt’s CLONE');

  // Frozen for longer than its BullMQ job lock: once it runs again, BullMQ sees the lock gone and hands the clone
  // job out again, to this same worker, while the first attempt is still in its CLONE.
  worker.signalGroup('SIGSTOP');
  await sleep(STAGE_LOCK_SECONDS * 2500);
  worker.signalGroup('SIGCONT');
  const fenced = await worker.waitForEvent((e) => e.event === 'stage.fenced' && e.backupUuid === started.backupUuid, 'stage.fenced', 30_000);
  assert.equal(fenced.stage, 'clone');
  // The second attempt waits: the first attempt's CLONE is untouched (not killed as an orphan), and no other runs.
  assert.deepEqual(await cloneInProgress(), first);
  await gate.open();

  const done = await rowIn(started.backupUuid, ['Completed', 'Error']);
  assert.equal(done.state, 'Completed', done.info ?? '');
  const cloneStarts = worker.events().filter((e) => e.event === 'stage.start' && e.jobId === `${started.backupUuid}-clone`);
  assert.ok(cloneStarts.length >= 2, 'the clone job was handed out twice');
  assert.ok(
    worker.events().some((e) => e.event === 'stage.already-finished' && e.backupUuid === started.backupUuid),
    'the second attempt found the clone finished by the first and did not clone again',
  );
  assert.equal(worker.events().filter((e) => e.event === 'clone.orphan-killed' && e.cloneDir === cloneDir).length, 0, 'no CLONE of a live attempt was killed');
  await assertBackupInvariants(world, { completed: 3 });
});
