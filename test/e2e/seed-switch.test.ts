// Switching from the seed's Python scripts, against the real services: a metadata center made with the seed's SQL
// alone, holding a full backup and binlogs written exactly the way the seed's script writes them (CLONE into
// backup_path, `tar -zcf`, objects bak_<id>_<ts>.tar.gz and log_<id>_<binlog>, rows with no checksum and no object
// key). Then `mcb migrate` and mcb's own binlog job: no binlog is archived twice or uploaded again; and
// `restore --at latest` from the seed's full backup plus the seed's and mcb's binlogs has the rows from before
// and after it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { binlogJob } from '../../src/jobs/binlog.ts';
import { loadMigrations, MetadataStore } from '../../src/metadata/index.ts';
import { directContext } from '../support/context.ts';
import { servicesEnv } from '../support/env.ts';
import { runMcb } from '../support/spawn.ts';
import { phaseRowsIn } from '../support/restored.ts';
import { createWorld, rootConnection, type World } from '../support/world.ts';

let world: World;
let source: mysql.Connection;
let metaConn: mysql.Connection;
let seedDb: string;
let ini: string;
let config: Config;
let instanceId: number;
let db: string;
let metadata: MetadataStore | undefined;
const seedBinlogKeys: string[] = [];

before(async () => {
  world = await createWorld();
  const env = servicesEnv();
  source = await rootConnection(env.source);
  seedDb = `mcb_seed_${world.id}`;
  db = `seedswitch_${world.id}`;
  const m = env.metadata;
  metaConn = await mysql.createConnection({ host: m.host, port: m.port, user: m.user, password: m.password });
  await metaConn.query(`CREATE DATABASE ${seedDb} DEFAULT CHARACTER SET utf8mb4`);
  await metaConn.query(`USE ${seedDb}`);
  // The seed's schema, exactly: sql/001 is the seed's own DDL.
  for (const statement of loadMigrations()[0]!.statements) await metaConn.query(statement);
  // The seed's documented tb_instance insert.
  const [res] = await metaConn.query(
    `insert into tb_instance(instance_id, instance_name, string_link, db_port, system_name, db_type, instance_type, service_line, enabled, is_clone)
     value (?, ?, ?, ?, '财务系统', 'MySQL', 'machine', '财务', 0, 1)`,
    [`${env.source.host}:${env.source.port}`, `seed-source-${world.id}`, env.source.host, env.source.port],
  );
  instanceId = (res as mysql.ResultSetHeader).insertId;
  ini = world.writeConfig({
    node: 'source',
    instanceId,
    sections: { 'metadata-link': { host: m.host, port: String(m.port), user: m.user, password: m.password, database: seedDb, charset: 'utf8mb4' } },
    backupConf: { is_cluster: 'off', max_rpo_minutes: '100000' },
  });
  config = loadConfig(ini);
});

after(async () => {
  await metadata?.close().catch(() => undefined);
  await source?.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
  await source?.end();
  await metaConn?.query(`DROP DATABASE IF EXISTS ${seedDb}`).catch(() => undefined);
  await metaConn?.end();
  await world?.cleanup();
});

async function insert(phase: string, ids: number[]): Promise<void> {
  for (const id of ids) await source.query(`INSERT INTO ${db}.t VALUES (?, ?)`, [id, phase]);
}

/** YYYYmmddHHMMSS in this process's local time, as the seed's Python script named its backups. */
function seedTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

async function binaryLogs(): Promise<string[]> {
  const [rows] = await source.query('SHOW BINARY LOGS');
  return (rows as Array<{ Log_name: string }>).map((r) => r.Log_name);
}

/** What the seed's mode=full did: CLONE, tar -zcf, upload, one Completed row (no checksum, no object key). */
async function seedFullBackup(): Promise<{ key: string; activeAtClone: string }> {
  const start = new Date();
  const name = `bak_${instanceId}_${seedTimestamp(start)}`;
  const activeAtClone = (await binaryLogs()).at(-1)!;
  await source.query(`CLONE LOCAL DATA DIRECTORY = ?`, [path.join(world.backupPath, name)]);
  execFileSync('tar', ['-zcf', `${name}.tar.gz`, name], { cwd: world.backupPath });
  const key = `${name}.tar.gz`;
  await world.minio.fPutObject(world.bucket, key, path.join(world.backupPath, key));
  execFileSync('rm', ['-rf', name, key], { cwd: world.backupPath });
  await metaConn.query(
    `INSERT INTO full_backup_metadata (backup_uuid, tb_instance_id, state, start_time, end_time, backup_type, backup_size, backup_path, backup_name, bucket_name, overdue_day, info)
     VALUES (?, ?, 'Completed', ?, NOW(), 'full', '12M', ?, ?, ?, 7, 'backup success')`,
    [randomUUID(), String(instanceId), start, world.backupPath, key, world.bucket],
  );
  return { key, activeAtClone };
}

/** What the seed's mode=binlog did for each closed binlog: upload log_<id>_<file>, one Completed row. */
async function seedArchiveBinlog(file: string): Promise<void> {
  const dir = path.dirname(servicesEnv().source.binlogIndex);
  const key = `log_${instanceId}_${file}`;
  await world.minio.fPutObject(world.bucket, key, path.join(dir, file));
  await metaConn.query(
    `INSERT INTO full_backup_metadata (backup_uuid, tb_instance_id, state, start_time, end_time, backup_type, backup_size, backup_path, backup_name, bucket_name, overdue_day, info)
     VALUES (?, ?, 'Completed', NOW(), NOW(), 'binlog', '1M', ?, ?, ?, 7, 'backup success')`,
    [randomUUID(), String(instanceId), dir, key, world.bucket],
  );
  seedBinlogKeys.push(key);
}

async function etags(keys: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const k of keys) {
    const s = await world.minio.statObject(world.bucket, k);
    out[k] = `${s.etag}@${s.lastModified.toISOString()}`;
  }
  return out;
}

test('seed-era full backup and binlogs, mcb migrate and binlog job: nothing archived twice, restore --at latest has every row', async () => {
  await source.query(`CREATE DATABASE ${db}`);
  await source.query(`CREATE TABLE ${db}.t (id int PRIMARY KEY, phase varchar(10))`);
  await insert('before', [1, 2]);
  const { key: fullKey, activeAtClone } = await seedFullBackup();
  await insert('seed', [3, 4]);
  await source.query('FLUSH BINARY LOGS');
  // The seed archives the closed binlogs from the one the clone ran in.
  const logs = await binaryLogs();
  const closed = logs.slice(logs.indexOf(activeAtClone), -1);
  assert.ok(closed.length >= 1);
  for (const f of closed) await seedArchiveBinlog(f);
  const before = await etags(seedBinlogKeys);

  const migrated = await runMcb(['-f', ini, 'migrate']);
  assert.equal(migrated.code, 0, migrated.stderr);
  metadata = await MetadataStore.connect(config.metadata);

  await insert('mcb', [5, 6]);
  await source.query('FLUSH BINARY LOGS');
  const result = await binlogJob.handle({ instanceId }, directContext(config, metadata, { jobId: `seed-switch-binlog-${world.id}` }));
  const archivedFiles = result.archived.map((a) => a.file);
  for (const f of closed) assert.ok(!archivedFiles.includes(f), `${f} (archived by the seed) is not archived again: ${archivedFiles.join(', ')}`);
  assert.ok(result.archived.length >= 1, 'the binlog closed after the switch is archived by mcb');
  assert.deepEqual(await etags(seedBinlogKeys), before, "the seed's objects were not uploaded again");
  const rows = (await metadata.listBackups({ instanceId, type: 'binlog', states: ['Completed'], limit: 10_000 })).filter((r) => !r.isDelete);
  for (const f of [...closed, ...archivedFiles]) assert.equal(rows.filter((r) => r.binlogFile === f).length, 1, `exactly one live row for ${f}`);

  const plan = await runMcb(['-f', ini, 'restore', 'plan', '--instance', String(instanceId), '--at', 'latest', '--json'], { env: { MCB_SID_ROOT: servicesEnv().sidRoot } });
  assert.equal(plan.code, 0, plan.stderr);
  const p = JSON.parse(plan.stdout);
  assert.equal(p.full.objectKey, fullKey, "the seed's full backup is the restore base");
  assert.equal(p.full.sha256, null);
  const text = await runMcb(['-f', ini, 'restore', 'plan', '--instance', String(instanceId), '--at', 'latest']);
  assert.match(text.stdout + text.stderr, /no checksum/i, 'the plan says the seed-era backup has no checksum to compare');

  const datadir = path.join(world.dir, 'restore-seed');
  const r = await runMcb(['-f', ini, 'restore', 'run', '--instance', String(instanceId), '--at', 'latest', '--datadir', datadir], {
    timeoutMs: 300_000,
    env: { MCB_SID_ROOT: servicesEnv().sidRoot },
  });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.deepEqual(await phaseRowsIn(datadir, `${db}.t`), ['before:1', 'before:2', 'seed:3', 'seed:4', 'mcb:5', 'mcb:6']);
});
