// Switching from the seed: a metadata database made with the seed's schema only (sql/001), binlog rows and objects
// exactly as the seed's script wrote them, then `mcb migrate` and the binlog job on a private MySQL 9.7 server: no
// binlog archived twice or uploaded again, and expiring the seed's rows keeps every object another live row needs.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { binlogJob } from '../../src/jobs/binlog.ts';
import { readBinlogHead } from '../../src/jobs/binlog/index-file.ts';
import { expireJob } from '../../src/jobs/expire.ts';
import { listBinlogRows } from '../../src/metadata/binlog-queries.ts';
import { MetadataStore, migrate, type BackupRow } from '../../src/metadata/index.ts';
import { directContext } from '../support/context.ts';
import { servicesEnv } from '../support/env.ts';
import { binlogNames, testServers, writeAndRotate, type TestServer } from '../support/test-mysqld.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

const env = servicesEnv();
const servers = testServers('mcb-seed-switch');
const seedDb = `mcb_seed_${randomId()}`;
const link = { host: env.metadata.host, port: env.metadata.port, user: env.metadata.user, password: env.metadata.password, database: seedDb, charset: 'utf8mb4' };
let world: World;
let server: TestServer;
let admin: mysql.Connection;
let store: MetadataStore | undefined;

before(async () => {
  world = await createWorld();
  server = await servers.start('s', 201);
  admin = await mysql.createConnection({ host: link.host, port: link.port, user: link.user, password: link.password });
});

after(async () => {
  await store?.close();
  await admin?.query(`DROP DATABASE IF EXISTS \`${seedDb}\``).catch(() => undefined);
  await admin?.end();
  await servers.stopAll();
  await world?.cleanup();
});

interface ObjectState {
  etag: string;
  lastModified: number;
}

async function objectState(key: string): Promise<ObjectState | undefined> {
  const s = await world.minio.statObject(world.bucket, key).catch(() => undefined);
  return s ? { etag: s.etag, lastModified: s.lastModified.getTime() } : undefined;
}

/** What the seed's `mode=binlog` left behind: a row (no binlog_file / object_key columns yet) and the raw binlog. */
async function seedArchive(instanceId: number, file: string, backupName: string): Promise<{ uuid: string; key: string }> {
  const uuid = randomUUID();
  const key = `log_${instanceId}_${file}`;
  const body = readFileSync(path.join(server.datadir, file));
  await world.minio.putObject(world.bucket, key, body, body.length);
  await admin.query(
    `INSERT INTO \`${seedDb}\`.full_backup_metadata (backup_uuid, tb_instance_id, state, backup_type, backup_size, backup_path, backup_name, bucket_name)
     VALUES (?, ?, 'Completed', 'binlog', ?, ?, ?, ?)`,
    [uuid, String(instanceId), `${(body.length / 1024).toFixed(1)}K`, server.datadir, backupName, world.bucket],
  );
  return { uuid, key };
}

function configFor(instanceId: number): Config {
  return loadConfig(
    world.writeConfig({
      instanceId,
      backupConf: { bin_index_path: server.binlogIndex, max_rpo_minutes: '100000', binlog_storage_days: '7' },
      sections: { 'mysql-link': server.link, 'metadata-link': { ...link, port: String(link.port) } },
    }),
  );
}

/** Rows not expired or deleted, per binlog file. */
async function liveRowsByFile(instanceId: number): Promise<Map<string, BackupRow[]>> {
  const out = new Map<string, BackupRow[]>();
  for (const r of await listBinlogRows(store!, instanceId)) {
    const row = (await store!.getBackup(r.backupUuid))!;
    if (row.state === 'Expiration' || row.isDelete) continue;
    out.set(r.binlogFile, [...(out.get(r.binlogFile) ?? []), row]);
  }
  return out;
}

test('from the seed: migrate backfills its binlog rows, the job adopts them, nothing is uploaded twice; expiring them keeps objects other live rows use', async () => {
  // The seed's metadata database: sql/001 only, the instance, and the binlogs it archived (both backup_name forms).
  await admin.query(`CREATE DATABASE \`${seedDb}\``);
  await admin.query(`USE \`${seedDb}\``);
  const seedSql = readFileSync(new URL('../../sql/001_seed_schema.sql', import.meta.url), 'utf8');
  for (const s of seedSql.split(/;\s*\n/).map((x) => x.replace(/^--.*$/gm, '').trim()).filter(Boolean)) await admin.query(s);
  const [ins] = await admin.query<mysql.ResultSetHeader>(
    `INSERT INTO \`${seedDb}\`.tb_instance (instance_id, instance_name, string_link, db_port, is_clone) VALUES (?, ?, '127.0.0.1', ?, 1)`,
    [`127.0.0.1:${server.port}`, `seed-${world.id}`, server.port],
  );
  const id = ins.insertId;
  await writeAndRotate(server.conn, 4);
  const closed = (await binlogNames(server.conn)).slice(0, -1);
  assert.ok(closed.length >= 4);
  const bySeed = closed.slice(0, 3);
  const seeded = [
    await seedArchive(id, bySeed[0]!, `log_${id}_${bySeed[0]}`),
    await seedArchive(id, bySeed[1]!, bySeed[1]!), // bare file name
    await seedArchive(id, bySeed[2]!, `log_${id}_${bySeed[2]}`),
  ];
  const objectsBefore = new Map(await Promise.all(seeded.map(async (s) => [s.key, await objectState(s.key)] as const)));

  // mcb migrate: 002..005 on top of the seed's tables; the seed's binlog rows now name their file and object.
  const migrated = await migrate(link);
  assert.ok(migrated.applied.includes('005_binlog_server_uuid.sql'));
  const meta = await MetadataStore.connect(link);
  store = meta;
  for (const [i, s] of seeded.entries()) {
    const row = (await meta.getBackup(s.uuid))!;
    assert.equal(row.binlogFile, bySeed[i]);
    assert.equal(row.objectKey, s.key);
  }

  const config = configFor(id);
  const first = await binlogJob.handle({ instanceId: id }, directContext(config, meta));
  assert.equal(first.gap, undefined, 'the seed\'s chain simply continues');
  assert.deepEqual(first.archived.map((a) => a.file), closed.slice(3), 'only what the seed had not archived');
  for (const [key, was] of objectsBefore) assert.deepEqual(await objectState(key), was, `${key} not uploaded again`);
  let live = await liveRowsByFile(id);
  for (const file of closed) assert.equal(live.get(file)?.length, 1, `${file}: exactly one live row`);
  for (const [i, s] of seeded.entries()) {
    const row = (await meta.getBackup(s.uuid))!;
    assert.equal(row.serverUuid, server.serverUuid, 'the seed\'s row is adopted: its object is this server\'s file');
    assert.equal(row.startTime!.getTime(), (await readBinlogHead(path.join(server.datadir, bySeed[i]!))).start * 1000, 'start_time = first event');
    assert.equal(row.state, 'Completed');
  }

  const second = await binlogJob.handle({ instanceId: id }, directContext(config, meta));
  assert.deepEqual(second.archived, []);
  assert.equal(second.gap, undefined);

  // What the pre-fix mcb did after a switch: a second live row for the seed's object (same key) of bySeed[1].
  await admin.query(
    `INSERT INTO \`${seedDb}\`.full_backup_metadata (backup_uuid, tb_instance_id, state, backup_type, backup_path, backup_name, bucket_name,
       binlog_file, object_key, compression, worker_host, start_time, end_time)
     SELECT ?, tb_instance_id, 'Completed', 'binlog', backup_path, object_key, bucket_name, binlog_file, object_key, 'none', 'old-mcb', start_time, end_time
       FROM \`${seedDb}\`.full_backup_metadata WHERE backup_uuid = ?`,
    [randomUUID(), seeded[1]!.uuid],
  );
  // The seed archived these long ago: they expire; the rows mcb wrote stay within retention.
  await admin.query(
    `UPDATE \`${seedDb}\`.full_backup_metadata SET start_time = start_time - INTERVAL 30 DAY, end_time = end_time - INTERVAL 30 DAY
      WHERE backup_uuid IN (?, ?)`,
    [seeded[0]!.uuid, seeded[1]!.uuid],
  );
  const expired = await expireJob.handle({ instanceId: id }, directContext(config, meta));
  const decisions = expired.instances[0]!.decisions;
  assert.equal(decisions.find((d) => d.backupUuid === seeded[0]!.uuid)?.outcome, 'deleted', 'an object no other row uses is deleted');
  assert.equal(decisions.find((d) => d.backupUuid === seeded[1]!.uuid)?.outcome, 'expired-object-kept');
  assert.equal(await objectState(seeded[0]!.key), undefined);
  assert.deepEqual(await objectState(seeded[1]!.key), objectsBefore.get(seeded[1]!.key), 'the object the other live row needs is still there');
  const keptRow = (await meta.getBackup(seeded[1]!.uuid))!;
  assert.equal(keptRow.state, 'Expiration');
  assert.equal(keptRow.isDelete, 1);
  assert.match(keptRow.info ?? '', /object kept: row #\d+ uses it too/);
  live = await liveRowsByFile(id);
  assert.equal(live.get(bySeed[1]!)?.length, 1, 'the other row is still live');
  assert.deepEqual(expired.instances[0]!.orphans, [], 'the kept object belongs to a live row: no orphan');

  // And the job still archives nothing twice.
  const third = await binlogJob.handle({ instanceId: id }, directContext(config, meta));
  assert.deepEqual(third.archived, []);
});
