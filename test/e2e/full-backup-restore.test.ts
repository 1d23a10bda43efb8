// End to end: the real producer and two real workers (source and replica hosts) run as processes; the
// replica is backed up with a real CLONE, the source (a primary, is_cluster = on) is skipped. Then the
// backup is downloaded, checked against its recorded sha256, extracted with plain `tar -xzf` (the seed's
// restore instructions), started as a mysqld, and must hold the rows written before the backup.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { findFreePort, mysqldFromSidRoot, startMysqld } from '../../src/mysql/mysqld.ts';
import { servicesEnv } from '../support/env.ts';
import { createWorld, rootConnection, type World } from '../support/world.ts';
import { runMcb, startMcb, type Daemon } from '../support/spawn.ts';

let world: World;
const daemons: Daemon[] = [];

before(async () => {
  world = await createWorld();
});
after(async () => {
  for (const d of daemons) await d.stop(10_000);
  await world?.cleanup();
});

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 240_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('producer + two workers + real CLONE, then the backup restores into a running mysqld', async () => {
  const env = servicesEnv();
  const db = `e2e_${world.id}`;
  const source = await rootConnection(env.source);
  await source.query(`CREATE DATABASE ${db}`);
  await source.query(`CREATE TABLE ${db}.orders (id int PRIMARY KEY, item varchar(50))`);
  await source.query(`INSERT INTO ${db}.orders VALUES (1, 'written before the backup'), (2, 'also before'), (3, 'and this one')`);
  const replica = await rootConnection(env.replica);
  await waitFor('replication of the test rows', async () => {
    const [rows] = await replica.query(`SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = ?`, [db]);
    if (Number((rows as Array<{ n: number }>)[0]!.n) !== 1) return undefined;
    const [c] = await replica.query(`SELECT COUNT(*) AS n FROM ${db}.orders`);
    return Number((c as Array<{ n: number }>)[0]!.n) === 3 ? true : undefined;
  });

  // Every second, so the test does not wait for 02:00; the producer re-reads tb_instance every second.
  const schedule = { schedule: { full: '*/3 * * * * *', binlog: '*/2 * * * * *', expire: '*/4 * * * * *', sync_interval_seconds: '1' } };
  const sourceIni = world.writeConfig({ node: 'source', sections: schedule });
  const replicaIni = world.writeConfig({ node: 'replica', sections: schedule });
  daemons.push(startMcb(['-f', sourceIni, 'worker'], path.join(world.dir, 'worker-source.log')));
  daemons.push(startMcb(['-f', replicaIni, 'worker'], path.join(world.dir, 'worker-replica.log')));
  daemons.push(startMcb(['-f', replicaIni, 'producer'], path.join(world.dir, 'producer.log')));

  const completed = await waitFor('a Completed full backup of the replica', async () => {
    const rows = await world.metadata.listBackups({ instanceId: world.replicaInstanceId, type: 'full' });
    const errored = rows.find((r) => r.state === 'Error' && !/already running/.test(r.info ?? ''));
    if (errored) throw new Error(`backup failed: ${errored.info}`);
    return rows.find((r) => r.state === 'Completed');
  });

  // The binlog and expire schedules ran on the replica's worker too.
  await waitFor('a Completed binlog archive of the replica', async () => {
    const rows = await world.metadata.listBackups({ instanceId: world.replicaInstanceId, type: 'binlog', states: ['Completed'] });
    return rows[0];
  });
  const redis = new Redis(env.redisUrl);
  const sourceQueue = new Queue(`mcb-instance-${world.sourceInstanceId}`, { connection: redis, prefix: world.prefix });
  const replicaQueue = new Queue(`mcb-instance-${world.replicaInstanceId}`, { connection: redis, prefix: world.prefix });
  const expired = await waitFor('a scheduled expire run on the replica', async () => {
    const jobs = await replicaQueue.getJobs(['completed']);
    return jobs.find((j) => j.name === 'expire');
  });
  assert.ok(expired.returnvalue, 'expire completed with a result');

  // The source's scheduled full job ran on the source's worker and was skipped, with the reason.
  const skipped = await waitFor('the source full job to be skipped', async () => {
    const jobs = await sourceQueue.getJobs(['completed']);
    return jobs.find((j) => j.name === 'full')?.returnvalue as { started: boolean; reason: string } | undefined;
  });
  assert.equal(skipped.started, false);
  assert.match(skipped.reason, /primary \(read_only = 0\) and is_cluster = on/);
  // (Binlogs of the primary are still archived: is_cluster only moves full backups to the replica.)
  assert.equal((await world.metadata.listBackups({ instanceId: world.sourceInstanceId, type: 'full' })).length, 0, 'no full backup row for the skipped primary');

  // Disabling both instances makes the producer drop their schedules without a restart.
  for (const id of [world.sourceInstanceId, world.replicaInstanceId]) {
    const r = await runMcb(['-f', replicaIni, 'instance', 'disable', String(id)]);
    assert.equal(r.code, 0, r.stderr);
  }
  await waitFor('schedules removed', async () => ((await sourceQueue.getJobSchedulersCount()) === 0 ? true : undefined), 30_000);
  await waitFor('replica schedules removed', async () => ((await replicaQueue.getJobSchedulersCount()) === 0 ? true : undefined), 30_000);
  for (const d of daemons.splice(0)) assert.equal(await d.stop(), 0, `${d.logFile} exited cleanly on SIGTERM`);
  assert.equal((await replicaQueue.getJobCounts('active')).active, 0, 'no job left active');
  await sourceQueue.close();
  await replicaQueue.close();
  await redis.quit();

  // Stage transitions are logged one line each, with instance, job id and duration.
  const workerLog = readdirSync(world.dir).includes('worker-replica.log') ? (await import('node:fs')).readFileSync(path.join(world.dir, 'worker-replica.log'), 'utf8') : '';
  for (const stage of ['clone', 'tar', 'upload', 'cleanup']) {
    const line = workerLog.split('\n').find((l) => l.includes('"event":"stage.done"') && l.includes(`"stage":"${stage}"`));
    assert.ok(line, `a stage.done log line for ${stage}`);
    const parsed = JSON.parse(line!);
    assert.equal(parsed.instance, world.replicaInstanceId);
    assert.ok(parsed.jobId && typeof parsed.durationMs === 'number');
  }
  assert.ok(!workerLog.includes(env.replica.password), 'the MySQL password is never logged');

  // `mcb backups list` shows it.
  const listed = await runMcb(['-f', replicaIni, 'backups', 'list', '--instance', String(world.replicaInstanceId), '--type', 'full', '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  assert.ok((JSON.parse(listed.stdout) as Array<{ backupName: string; state: string }>).some((r) => r.backupName === completed.backupName && r.state === 'Completed'));

  // Restore: download, check sha256 against metadata, extract with tar -xzf, start mysqld, read the rows.
  const restoreDir = path.join(world.dir, 'restore');
  mkdirSync(restoreDir);
  const archive = path.join(restoreDir, completed.backupName);
  const hash = createHash('sha256');
  const body = await world.minio.getObject(world.bucket, completed.objectKey!);
  body.on('data', (c: Buffer) => hash.update(c));
  await pipeline(body, createWriteStream(archive));
  assert.equal(hash.digest('hex'), completed.sha256, 'downloaded object matches the sha256 in metadata');
  execFileSync('tar', ['-xzf', archive, '-C', restoreDir]);
  const datadir = path.join(restoreDir, completed.backupName.replace(/\.tar\.gz$/, ''));
  const server = await startMysqld(mysqldFromSidRoot(env.sidRoot), {
    datadir,
    port: await findFreePort(),
    runDir: path.join(world.dir, 'restore-run'),
    extraArgs: ['--skip-replica-start', '--server-id=90'],
  });
  try {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: env.replica.rootUser, password: env.replica.rootPassword });
    const [rows] = await conn.query(`SELECT id, item FROM ${db}.orders ORDER BY id`);
    assert.deepEqual(rows, [
      { id: 1, item: 'written before the backup' },
      { id: 2, item: 'also before' },
      { id: 3, item: 'and this one' },
    ]);
    await conn.end();
  } finally {
    await server.stop();
  }
  await source.query(`DROP DATABASE ${db}`);
  await source.end();
  await replica.end();
});
