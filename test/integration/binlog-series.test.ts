// Binlog series identity, no overwrites, checksums and PITR preconditions, against private MySQL 9.7 servers (RESET
// BINARY LOGS, corrupt files and reconfiguration never touch the shared source/replica), the metadata center and S3.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { binlogJob, BinlogBatchError, type BinlogResult } from '../../src/jobs/binlog.ts';
import { readBinlogHead } from '../../src/jobs/binlog/index-file.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import { listBinlogGapRows, listBinlogRows } from '../../src/metadata/binlog-queries.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { instanceStatuses, statusProblems } from '../../src/ops/status.ts';
import { directContext } from '../support/context.ts';
import { binlogNames, nextSecond, testServers, writeAndRotate, type TestServer } from '../support/test-mysqld.ts';
import { createWorld, type World } from '../support/world.ts';

const servers = testServers('mcb-binlog-series');
let world: World;
let a: TestServer;
let b: TestServer;

before(async () => {
  world = await createWorld();
  a = await servers.start('a', 101);
  b = await servers.start('b', 102);
});

after(async () => {
  await servers.stopAll();
  await world?.cleanup();
});

// ---- helpers ----------------------------------------------------------------------------------------------

async function addInstance(name: string, server: TestServer): Promise<number> {
  return world.metadata.addInstance({ instanceId: `127.0.0.1:${server.port}:${name}`, instanceName: `${name}-${world.id}`, stringLink: '127.0.0.1', dbPort: server.port, isClone: true });
}

function configFor(instanceId: number, server: TestServer): Config {
  return loadConfig(
    world.writeConfig({
      instanceId,
      backupConf: { bin_index_path: server.binlogIndex, max_rpo_minutes: '100000' },
      sections: { 'mysql-link': server.link },
    }),
  );
}

const run = (instanceId: number, config: Config): Promise<BinlogResult> => binlogJob.handle({ instanceId }, directContext(config, world.metadata));

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function objectBytes(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await world.minio.getObject(world.bucket, key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

interface ObjectState {
  etag: string;
  lastModified: number;
  sha256: string;
}

/** Every object of the bucket: etag, last-modified time and the sha256 of its bytes. */
async function bucketObjects(): Promise<Map<string, ObjectState>> {
  const out = new Map<string, ObjectState>();
  for await (const o of world.minio.listObjectsV2(world.bucket, '', true) as AsyncIterable<{ name: string; etag: string; lastModified: Date }>) {
    out.set(o.name, { etag: o.etag, lastModified: o.lastModified.getTime(), sha256: sha256(await objectBytes(o.name)) });
  }
  return out;
}

async function assertUntouched(before: Map<string, ObjectState>): Promise<void> {
  const now = await bucketObjects();
  for (const [key, was] of before) assert.deepEqual(now.get(key), was, `${key} still in the bucket, not rewritten`);
}

async function rowsOf(instanceId: number): Promise<BackupRow[]> {
  return Promise.all((await listBinlogRows(world.metadata, instanceId)).map(async (r) => (await world.metadata.getBackup(r.backupUuid))!));
}

/** Every closed binlog of the server has exactly one Completed row of this server with its first-event time. */
async function assertAllArchived(instanceId: number, server: TestServer): Promise<Map<string, BackupRow>> {
  const names = await binlogNames(server.conn);
  const rows = (await rowsOf(instanceId)).filter((r) => r.serverUuid === server.serverUuid);
  const byFile = new Map<string, BackupRow>();
  for (const name of names.slice(0, -1)) {
    const start = (await readBinlogHead(path.join(server.datadir, name))).start * 1000;
    const mine = rows.filter((r) => r.binlogFile === name && r.startTime?.getTime() === start);
    assert.equal(mine.length, 1, `${name} of ${server.name}: one row`);
    assert.equal(mine[0]!.state, 'Completed', `${name}: ${mine[0]!.info}`);
    assert.equal(sha256(await objectBytes(mine[0]!.objectKey!)), sha256(readFileSync(path.join(server.datadir, name))), `${name}: the stored object is the file`);
    byFile.set(name, mine[0]!);
  }
  return byFile;
}

// ---- tests --------------------------------------------------------------------------------------------------

test('RESET BINARY LOGS AND GTIDS: one reset gap row, the new series archived from its start under new names; no old object overwritten, nothing skipped', async () => {
  const id = await addInstance('reset', a);
  const config = configFor(id, a);
  await writeAndRotate(a.conn, 3);
  const first = await run(id, config);
  assert.equal(first.gap, undefined);
  assert.ok(first.archived.length >= 3);
  const oldKeys = new Set(first.archived.map((x) => x.objectKey));
  for (const x of first.archived) assert.equal(x.objectKey, `log_${id}_${x.file}`, 'the seed\'s name while nothing collides');
  const before = await bucketObjects();

  await nextSecond();
  await a.conn.query('RESET BINARY LOGS AND GTIDS');
  await writeAndRotate(a.conn, 2, 'd.t', 'after-reset');
  const second = await run(id, config);
  assert.ok(second.gap, 'the reset is reported');
  assert.equal(second.gap.reason, 'reset');
  assert.equal(second.gap.recorded, true);
  assert.match(second.gap.detail ?? '', /mysql-bin\.000003 on the server started at .*, the archived mysql-bin\.000003 at/);
  const gaps = await listBinlogGapRows(world.metadata, id);
  assert.equal(gaps.length, 1);
  assert.match(gaps[0]!.info ?? '', /the binlog series restarted .*RESET BINARY LOGS/);

  const names = await binlogNames(a.conn);
  assert.deepEqual(second.archived.map((x) => x.file), names.slice(0, -1), 'the whole new series but the active binlog: nothing skipped');
  for (const x of second.archived) {
    assert.ok(!oldKeys.has(x.objectKey), `${x.objectKey} is not an old series' name`);
    const start = (await readBinlogHead(path.join(a.datadir, x.file))).start;
    assert.equal(x.objectKey, `log_${id}_${x.file}.${start}`, 'a colliding name gets .<first-event epoch>');
  }
  await assertUntouched(before);
  await assertAllArchived(id, a);

  const third = await run(id, config);
  assert.deepEqual(third.archived, [], 'nothing archived twice');
  assert.equal(third.gap, undefined, 'the new series is the chain now');
  assert.equal((await listBinlogGapRows(world.metadata, id)).length, 1, 'the gap is recorded once');
});

test('a worker re-pointed at another server whose binlog names collide: one server-changed gap, its binlogs archived under names that overwrite nothing', async () => {
  const id = await addInstance('moved', a);
  await writeAndRotate(a.conn, 1);
  const onA = await run(id, configFor(id, a));
  assert.ok(onA.archived.length >= 1);
  await writeAndRotate(b.conn, 2);
  const before = await bucketObjects();

  const configB = configFor(id, b); // same tb_instance_id, mysql-link and bin_index_path of another server
  const moved = await run(id, configB);
  assert.equal(moved.gap?.reason, 'server-changed');
  assert.match(moved.gap?.detail ?? '', new RegExp(`server_uuid is ${b.serverUuid}, mysql-bin\\.\\d+ was archived from ${a.serverUuid}`));
  const bNames = await binlogNames(b.conn);
  assert.deepEqual(moved.archived.map((x) => x.file), bNames.slice(0, -1), 'the new server\'s series from its start');
  const collided = moved.archived.filter((x) => onA.archived.some((y) => y.file === x.file));
  assert.ok(collided.length >= 1, 'the two servers have binlogs of the same name');
  for (const x of moved.archived) assert.ok(!before.has(x.objectKey), `${x.objectKey} was free`);
  await assertUntouched(before);
  await assertAllArchived(id, b);
  const gaps = await listBinlogGapRows(world.metadata, id);
  assert.equal(gaps.length, 1);
  assert.match(gaps[0]!.info ?? '', /the worker now reads another server's binlogs/);

  const again = await run(id, configB);
  assert.deepEqual(again.archived, []);
  assert.equal((await listBinlogGapRows(world.metadata, id)).length, 1);
});

test('a binlog with a corrupt byte in its middle is refused before upload: Error row naming the file and the offset, no object, later files wait', async () => {
  const id = await addInstance('corrupt', b);
  const config = configFor(id, b);
  await run(id, config);
  await b.conn.query('CREATE TABLE IF NOT EXISTS d.big (id int auto_increment primary key, v longtext)');
  await b.conn.query("INSERT INTO d.big (v) VALUES (REPEAT('x', 200000))");
  const [bad, later] = await writeAndRotate(b.conn, 2, 'd.t', 'corrupt');
  const file = path.join(b.datadir, bad!);
  const original = readFileSync(file);
  const flipped = Buffer.from(original);
  const at = Math.floor(statSync(file).size / 2);
  flipped[at] = flipped[at]! ^ 0xff;
  writeFileSync(file, flipped);
  try {
    const objectsBefore = await bucketObjects();
    let failure: unknown;
    await run(id, config).catch((e) => (failure = e));
    assert.ok(failure instanceof BinlogBatchError, `the job fails: ${String(failure)}`);
    assert.match(failure.message, new RegExp(`${bad!.replace('.', '\\.')} is corrupt at byte offset \\d+`));
    const row = (await rowsOf(id)).find((r) => r.binlogFile === bad);
    assert.equal(row?.state, 'Error');
    assert.match(row?.info ?? '', new RegExp(`archiving ${bad!.replace('.', '\\.')} failed: ${bad!.replace('.', '\\.')} is corrupt at byte offset \\d+ .*nothing was uploaded`));
    assert.equal((await rowsOf(id)).find((r) => r.binlogFile === later), undefined, 'the file after it waits');
    const objectsAfter = await bucketObjects();
    assert.deepEqual([...objectsAfter.keys()].filter((k) => !objectsBefore.has(k)), [], 'nothing uploaded');
  } finally {
    writeFileSync(file, original);
  }
  const retried = await run(id, config);
  assert.deepEqual(retried.archived.map((x) => x.file).slice(0, 2), [bad, later], 'once repaired, it and the files after it are archived');
  await assertAllArchived(id, b);
});

test('PITR preconditions: gtid_mode OFF, then binlog_format MIXED: one Error row per condition saying what to set, the job fails, mcb status shows it', async () => {
  const p = await servers.start('p', 103, ['--gtid-mode=OFF', '--enforce-gtid-consistency=OFF']);
  const id = await addInstance('preconditions', p);
  const config = configFor(id, p);
  await writeAndRotate(p.conn, 1);

  await assert.rejects(run(id, config), (e: Error) => e instanceof PermanentJobError && /gtid_mode is OFF: point-in-time restore needs ON/.test(e.message));
  const errorRows = async () => (await world.metadata.listBackups({ instanceId: id, states: ['Error'] })).filter((r) => r.backupName.startsWith('binlog_precondition_'));
  let rows = await errorRows();
  assert.deepEqual(rows.map((r) => r.backupName), [`binlog_precondition_${id}_gtid_mode`]);
  assert.match(rows[0]!.info ?? '', /gtid_mode is OFF: point-in-time restore needs ON; SET PERSIST enforce_gtid_consistency = ON/);
  assert.equal(rows[0]!.backupType, 'binlog');
  assert.equal(rows[0]!.serverUuid, p.serverUuid);

  await p.conn.query("SET GLOBAL binlog_format = 'MIXED'");
  await nextSecond();
  await assert.rejects(run(id, config), (e: Error) => e instanceof PermanentJobError && /binlog_format is MIXED/.test(e.message));
  rows = await errorRows();
  assert.deepEqual(rows.map((r) => r.backupName).sort(), [`binlog_precondition_${id}_binlog_format`, `binlog_precondition_${id}_gtid_mode`], 'one row per condition, not per run');
  const format = rows.find((r) => r.backupName.endsWith('binlog_format'))!;
  assert.match(format.info ?? '', /binlog_format is MIXED: point-in-time restore needs ROW; SET PERSIST binlog_format = ROW/);
  const gtid = rows.find((r) => r.backupName.endsWith('gtid_mode'))!;
  assert.ok(gtid.endTime!.getTime() > gtid.startTime!.getTime(), 'the second run refreshed the row\'s time');

  assert.deepEqual(await listBinlogRows(world.metadata, id), [], 'nothing archived');
  const objects = [...(await bucketObjects()).keys()].filter((k) => k.startsWith(`log_${id}_`));
  assert.deepEqual(objects, []);

  const [status] = await instanceStatuses(world.config, world.metadata, undefined, { instanceId: id });
  assert.equal(status!.failures24h, 2);
  assert.match(status!.lastFailure?.info ?? '', /binlog_format is MIXED|gtid_mode is OFF/);
  assert.ok(statusProblems([status!]).some((line) => line.includes('2 failed backup(s) in the last 24 h')), statusProblems([status!]).join('\n'));

  // Fixed by the DBA: the next run archives.
  await p.conn.query("SET GLOBAL binlog_format = 'ROW'");
  await p.conn.query('SET GLOBAL enforce_gtid_consistency = ON');
  for (const mode of ['OFF_PERMISSIVE', 'ON_PERMISSIVE', 'ON']) await p.conn.query(`SET GLOBAL gtid_mode = ${mode}`);
  await p.conn.query('FLUSH BINARY LOGS');
  const fixed = await run(id, config);
  assert.ok(fixed.archived.length >= 1);
});

test('rows archived before server_uuid was recorded are recognised by their backup_uuid: this server\'s are filled in, another\'s start a new series', async () => {
  const id = await addInstance('legacy', a);
  await writeAndRotate(a.conn, 1);
  const first = await run(id, configFor(id, a));
  assert.ok(first.archived.length >= 1);
  const forget = () => world.metadata.pool.query('UPDATE full_backup_metadata SET server_uuid = NULL WHERE tb_instance_id = ?', [String(id)]);
  await forget();

  const again = await run(id, configFor(id, a));
  assert.deepEqual(again.archived, []);
  assert.equal(again.gap, undefined);
  for (const r of await rowsOf(id)) assert.equal(r.serverUuid, a.serverUuid, `${r.binlogFile}: server_uuid filled in`);

  await forget();
  const moved = await run(id, configFor(id, b));
  assert.equal(moved.gap?.reason, 'server-changed');
  assert.match(moved.gap?.detail ?? '', /was archived from \(a server not recorded\)/);
  assert.deepEqual(moved.archived.map((x) => x.file), (await binlogNames(b.conn)).slice(0, -1));
});
