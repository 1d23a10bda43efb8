// Point-in-time restore against the real services: rows at T1, a real CLONE full backup of the source,
// rows at T2, binlogs archived by the real binlog job, one more T2 row, rows at T3 (the last T2 row and the T3 rows
// share a binlog, so the replay must stop inside it), binlogs archived again; then `mcb restore run`
// to a time between T2 and T3 into a fresh datadir (T1 and T2 present, T3 absent), `--at latest` (all three),
// the same from the bucket alone, and the refusals (too early, gap, corrupt object, non-empty datadir) leaving
// nothing half-restored behind, and a run interrupted by SIGTERM cleaning up the same way. Last, the verify job
// on a good and on a corrupted (flipped byte) stored object.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { binlogJob } from '../../src/jobs/binlog.ts';
import { verifyJob } from '../../src/jobs/verify.ts';
import { formatInZone, UTC } from '../../src/time/zone.ts';
import { servicesEnv } from '../support/env.ts';
import { directContext } from '../support/context.ts';
import { createWorld, rootConnection, type World } from '../support/world.ts';
import { runMcb, startMcb } from '../support/spawn.ts';
import { phaseRowsIn } from '../support/restored.ts';
import { makeCompletedFullBackup } from '../support/backup.ts';

let world: World;
let config: Config;
let ini: string;
let source: mysql.Connection;
let db: string;
let target: string;
let fullKey: string;

before(async () => {
  world = await createWorld();
  ini = world.writeConfig({ node: 'source', backupConf: { is_cluster: 'off', max_rpo_minutes: '100000' } });
  config = loadConfig(ini);
  source = await rootConnection(servicesEnv().source);
  db = `pitr_${world.id}`;
});
after(async () => {
  await source?.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
  await source?.end();
  await world?.cleanup();
});

async function insert(phase: string, ids: number[]): Promise<void> {
  for (const id of ids) await source.query(`INSERT INTO ${db}.t VALUES (?, ?)`, [id, phase]);
}

async function archiveBinlogs(jobId: string): Promise<void> {
  await source.query('FLUSH BINARY LOGS'); // closes the binlog holding our rows (never PURGE: the source is shared)
  const r = await binlogJob.handle({ instanceId: world.sourceInstanceId }, directContext(config, world.metadata, { jobId }));
  assert.ok(r.archived.length > 0, 'the binlog job archived the closed binlog');
}

const rowsIn = (datadir: string) => phaseRowsIn(datadir, `${db}.t`);

function restore(args: string[]) {
  return runMcb(['-f', ini, 'restore', ...args], { timeoutMs: 300_000, env: { MCB_SID_ROOT: servicesEnv().sidRoot } });
}

test('set-up: T1 rows, full backup (real CLONE), T2 rows, binlogs archived, T3 rows, binlogs archived', async () => {
  await source.query(`CREATE DATABASE ${db}`);
  await source.query(`CREATE TABLE ${db}.t (id int PRIMARY KEY, phase varchar(10))`);
  await insert('T1', [1, 2]);

  // Throws unless the backup of the source starts (is_cluster = off) and ends Completed.
  const full = await makeCompletedFullBackup(world, `pitr-full-${world.id}`, { config, instanceId: world.sourceInstanceId });
  fullKey = full.objectKey!;

  await sleep(1100);
  await insert('T2', [3, 4]);
  await archiveBinlogs(`pitr-binlog-1-${world.id}`);
  // More T2 rows in the binlog that T3 will share: the replay must stop inside that file, not at a file boundary.
  await insert('T2', [5]);
  await sleep(1100);
  target = `${formatInZone(new Date(), UTC)}Z`; // after every T2 commit's second, before every T3 commit's second
  await sleep(1100);
  await insert('T3', [6, 7]);
  await archiveBinlogs(`pitr-binlog-2-${world.id}`);
});

test('restore plan names the full backup and the binlogs to the target', async () => {
  const r = await restore(['plan', '--instance', String(world.sourceInstanceId), '--at', target, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  assert.equal(plan.full.objectKey, fullKey);
  assert.ok(plan.binlogs.length >= 1);
  for (const b of plan.binlogs) assert.match(b.sha256, /^[0-9a-f]{64}$/);
  const text = await restore(['plan', '--instance', String(world.sourceInstanceId), '--at', target]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`full backup: +${fullKey.replace(/\./g, '\\.')}`));
});

test('restore run to a time between T2 and T3: T1 and T2 rows, not T3', async () => {
  const datadir = path.join(world.dir, 'restore-at-target');
  const r = await restore(['run', '--instance', String(world.sourceInstanceId), '--at', target, '--datadir', datadir, '--json']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const result = JSON.parse(r.stdout);
  assert.ok(result.stopPosition > 0, `the replay stopped at a position inside the last binlog: ${r.stdout}`);
  assert.equal(result.replayMethod, 'applier', 'replayed by the server\'s applier, the default');
  assert.ok(result.lastTransactionTime <= target, `last applied transaction ${result.lastTransactionTime} is at or before ${target}`);
  assert.match(result.gtidExecuted, /^[0-9a-f-]{36}:/);
  assert.deepEqual(readdirSync(world.dir).filter((f) => f.startsWith('.mcb-restore-')), [], 'no work directory left behind');
  assert.deepEqual(await rowsIn(datadir), ['T1:1', 'T1:2', 'T2:3', 'T2:4', 'T2:5']);
});

test('restore run --at latest has all three', async () => {
  const datadir = path.join(world.dir, 'restore-latest');
  const r = await restore(['run', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--datadir', datadir]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /gtid_executed: +\S+/);
  assert.match(r.stdout, /replayed by: +the server's applier/);
  assert.deepEqual(await rowsIn(datadir), ['T1:1', 'T1:2', 'T2:3', 'T2:4', 'T2:5', 'T3:6', 'T3:7']);
  assert.deepEqual(readdirSync(world.dir).filter((f) => f.startsWith('.mcb-restore-')), [], 'no work directory left behind');
});

test('--from-bucket: the same plan and restore without the metadata center', async () => {
  const fromDb = JSON.parse((await restore(['plan', '--instance', String(world.sourceInstanceId), '--at', target, '--json'])).stdout);
  const r = await restore(['plan', '--from-bucket', '--instance', String(world.sourceInstanceId), '--at', target, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  assert.equal(plan.full.objectKey, fullKey);
  assert.equal(plan.full.endTimeExact, true, 'recovery point read from the object metadata');
  assert.equal(plan.full.recoveryPoint, fromDb.full.recoveryPoint);
  assert.match(fromDb.full.binlogFile, /^mysql-bin\.\d+$/, "the clone's binlog file is on the row");
  assert.equal(plan.full.binlogFile, fromDb.full.binlogFile, 'and on the object, so --from-bucket anchors the same way');
  assert.deepEqual(plan.binlogs.map((b: { file: string }) => b.file), fromDb.binlogs.map((b: { file: string }) => b.file));
  // Binlog objects carry mcb-sha256: the same checksums as the metadata center, verified by the download.
  assert.deepEqual(plan.binlogs.map((b: { sha256: string }) => b.sha256), fromDb.binlogs.map((b: { sha256: string }) => b.sha256));
  assert.doesNotMatch(r.stderr, /not checksum-verified/);

  const datadir = path.join(world.dir, 'restore-from-bucket');
  // The metadata center is unreachable for this run: a wrong password proves it is not used.
  const noMeta = world.writeConfig({ node: 'source', metadataPassword: 'wrong-password', backupConf: { is_cluster: 'off' } });
  const run = await runMcb(['-f', noMeta, 'restore', 'run', '--from-bucket', '--instance', String(world.sourceInstanceId), '--at', target, '--datadir', datadir], {
    timeoutMs: 300_000,
    env: { MCB_SID_ROOT: servicesEnv().sidRoot },
  });
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.deepEqual(await rowsIn(datadir), ['T1:1', 'T1:2', 'T2:3', 'T2:4', 'T2:5']);
});

test('too early: refused with the oldest recovery point, nothing created', async () => {
  const datadir = path.join(world.dir, 'restore-too-early');
  const r = await restore(['run', '--instance', String(world.sourceInstanceId), '--at', '2001-01-01 00:00:00', '--datadir', datadir]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /target 2001-01-01 00:00:00 [+-]\d\d:\d\d \([^)]+\) is before the oldest full backup: bak_\d+_\d{14}\.tar\.gz has recovery point/);
  assert.ok(!existsSync(datadir), 'no datadir created');
});

test('gap in the binlog chain: refused, nothing created', async () => {
  const binlogs = (await world.metadata.listBackups({ instanceId: world.sourceInstanceId, type: 'binlog', states: ['Completed'], limit: 1000 })).sort((a, b) =>
    a.binlogFile!.localeCompare(b.binlogFile!),
  );
  // Hide the second-to-last archived binlog (as if it were never archived): the chain to `latest` breaks.
  const hidden = binlogs[binlogs.length - 2]!;
  await world.metadata.update(hidden.backupUuid, { isDelete: 1 });
  try {
    const datadir = path.join(world.dir, 'restore-gap');
    const r = await restore(['run', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--datadir', datadir]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, new RegExp(`gap in the binlog chain between \\S+ and \\S+: 1 binlog file\\(s\\) between them are not archived`));
    assert.ok(!existsSync(datadir), 'no datadir created');
    const plan = await restore(['plan', '--instance', String(world.sourceInstanceId), '--at', 'latest']);
    assert.equal(plan.code, 1);
    assert.match(plan.stderr, /gap in the binlog chain/);
  } finally {
    await world.metadata.update(hidden.backupUuid, { isDelete: 0 });
  }
});

test('a corrupt object fails the restore after extraction and the datadir is emptied; a non-empty datadir is refused', async () => {
  const full = (await world.metadata.listBackups({ instanceId: world.sourceInstanceId, type: 'full', states: ['Completed'] }))[0]!;
  const good = full.sha256!;
  await world.metadata.update(full.backupUuid, { sha256: '0'.repeat(64) });
  const datadir = path.join(world.dir, 'restore-corrupt');
  mkdirSync(datadir);
  try {
    const r = await restore(['run', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--datadir', datadir]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /sha256 is [0-9a-f]{64}, the archive recorded 0{64}; the object is corrupt/);
    assert.match(r.stderr, /the directory was emptied, nothing half-restored is left/);
    assert.deepEqual(readdirSync(datadir), [], 'the extracted files were removed');
  } finally {
    await world.metadata.update(full.backupUuid, { sha256: good });
  }
  writeFileSync(path.join(datadir, 'precious'), 'x');
  const r = await restore(['run', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--datadir', datadir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is not empty .*precious/);
  assert.deepEqual(readdirSync(datadir), ['precious'], 'a refused directory is left untouched');
});

test('restore run interrupted by SIGTERM once its mysqld runs: exit 1, server stopped, datadir removed', async () => {
  const datadir = path.join(world.dir, 'restore-interrupted');
  const daemon = startMcb(['-f', ini, 'restore', 'run', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--datadir', datadir], path.join(world.dir, 'restore-interrupted.log'), {
    MCB_SID_ROOT: servicesEnv().sidRoot,
  });
  const exited = new Promise<void>((resolve) => daemon.child.once('exit', () => resolve()));
  // The temporary server's pid file is in the restore's work directory, named after the mcb process.
  const pidFile = path.join(world.dir, `.mcb-restore-${path.basename(datadir)}-${daemon.child.pid}`, 'run', 'mysqld.pid');
  let mysqldPid = 0;
  const deadline = Date.now() + 240_000;
  while (!mysqldPid && Date.now() < deadline && daemon.child.exitCode === null) {
    if (existsSync(pidFile)) mysqldPid = Number(readFileSync(pidFile, 'utf8').trim()) || 0;
    if (!mysqldPid) await sleep(50);
  }
  assert.ok(mysqldPid > 0, `the restore started its mysqld (${pidFile}); log:\n${existsSync(daemon.logFile) ? readFileSync(daemon.logFile, 'utf8') : ''}`);
  assert.ok(existsSync(path.join(datadir, 'mysql.ibd')), 'the datadir was extracted');
  const code = await daemon.stop(120_000);
  await exited;
  const log = readFileSync(daemon.logFile, 'utf8');
  assert.equal(code, 1, log);
  const lastLine = log.trim().split('\n').pop()!;
  assert.match(lastLine, /^mcb: restore into \S+ failed; the directory was removed, nothing half-restored is left: interrupted by SIGTERM$/);
  assert.throws(() => process.kill(mysqldPid, 0), /ESRCH/, `mysqld ${mysqldPid} is not running any more`);
  assert.ok(!existsSync(datadir), 'the datadir the restore created was removed');
  assert.deepEqual(readdirSync(world.dir).filter((f) => f.startsWith('.mcb-restore-')), [], 'no work directory left behind');
});

test('verify job: a good backup is marked ok, one with a flipped byte in the stored object failed; scratch removed', async () => {
  process.env.MCB_SID_ROOT = servicesEnv().sidRoot;
  const full = (await world.metadata.listBackups({ instanceId: world.sourceInstanceId, type: 'full', states: ['Completed'] }))[0]!;
  const ctx = directContext(config, world.metadata, { jobId: `verify-${world.id}` });
  const ok = await verifyJob.handle(verifyJob.parse({ instanceId: world.sourceInstanceId }), ctx);
  assert.equal(ok.state, 'ok', ok.reason);
  assert.ok(ok.tablesChecked.includes('`mysql`.`user`') && ok.tablesChecked.length >= 2, `checked ${ok.tablesChecked.join(', ')}`);
  let row = (await world.metadata.getBackup(full.backupUuid))!;
  assert.equal(row.verifyState, 'ok');
  assert.ok(row.verifiedAt, 'verified_at recorded');
  assert.deepEqual(readdirSync(world.backupPath).filter((f) => f.startsWith('verify_')), [], 'scratch copy removed');

  // Flip one byte in the middle of the stored object (same size, same key).
  const local = path.join(world.dir, 'flip.tar.gz');
  await world.minio.fGetObject(world.bucket, full.objectKey!, local);
  const fh = await open(local, 'r+');
  const { size } = await fh.stat();
  const b = Buffer.alloc(1);
  await fh.read(b, 0, 1, Math.floor(size / 2));
  b[0] = b[0]! ^ 0xff;
  await fh.write(b, 0, 1, Math.floor(size / 2));
  await fh.close();
  await world.minio.fPutObject(world.bucket, full.objectKey!, local);

  const bad = await verifyJob.handle(verifyJob.parse({ instanceId: world.sourceInstanceId }), ctx);
  assert.equal(bad.state, 'failed');
  assert.match(bad.reason!, /sha256|extracting|corrupt/);
  row = (await world.metadata.getBackup(full.backupUuid))!;
  assert.equal(row.verifyState, 'failed');
  assert.match(row.errorDetail ?? '', /^verify: /);
  assert.equal(row.state, 'Completed', 'the backup state itself is not changed by a restore test');
  assert.deepEqual(readdirSync(world.backupPath).filter((f) => f.startsWith('verify_')), [], 'scratch copy removed after a failure too');
});
