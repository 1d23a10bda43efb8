// The schema works on both metadata centers users run: MariaDB 10.11 and MySQL 8.0+/9.x; migrate is idempotent
// and keeps a seed-era table and its rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';
import { loadMigrations, migrate, MetadataStore } from '../../src/metadata/index.ts';
import { servicesEnv } from '../support/env.ts';
import { randomId } from '../support/world.ts';

const targets = () => {
  const env = servicesEnv();
  return [
    { name: `metadata center (${env.metadata.flavor})`, host: env.metadata.host, port: env.metadata.port, user: env.metadata.user, password: env.metadata.password },
    { name: 'MySQL 9.7 (source)', host: env.source.host, port: env.source.port, user: env.source.rootUser, password: env.source.rootPassword },
  ];
};

for (const t of targets()) {
  test(`migrate on ${t.name}: seed tables upgraded in place, rows kept, second run a no-op`, async () => {
    const database = `mcb_schema_${randomId()}`;
    const link = { host: t.host, port: t.port, user: t.user, password: t.password, database, charset: 'utf8mb4' };
    const conn = await mysql.createConnection({ host: t.host, port: t.port, user: t.user, password: t.password, multipleStatements: false });
    try {
      // A seed-era database: the seed's own tables with a row, before mcb ever ran.
      await conn.query(`CREATE DATABASE ${database}`);
      await conn.query(`USE ${database}`);
      const seedSql = (await import('node:fs')).readFileSync(new URL('../../sql/001_seed_schema.sql', import.meta.url), 'utf8');
      for (const s of seedSql.split(/;\s*\n/).map((x) => x.replace(/^--.*$/gm, '').trim()).filter(Boolean)) await conn.query(s);
      await conn.query(
        `INSERT INTO full_backup_metadata (backup_uuid, tb_instance_id, state, backup_path, backup_name, bucket_name)
         VALUES ('11111111-2222-3333-4444-555555555555', '106', 'Completed', '/data/clone_bak', 'bak_106_20231026102557.tar.gz', 'local')`,
      );
      const first = await migrate(link);
      assert.deepEqual(first.applied, ['001_seed_schema.sql', '002_backup_detail_columns.sql', ...first.applied.slice(2)]);
      const second = await migrate(link);
      assert.deepEqual(second.applied, []);
      assert.equal(second.alreadyApplied.length, first.applied.length);

      const store = await MetadataStore.connect(link);
      try {
        const rows = await store.listBackups();
        assert.equal(rows.length, 1);
        assert.equal(rows[0]!.backupName, 'bak_106_20231026102557.tar.gz');
        assert.equal(rows[0]!.overdueDay, 7, "the seed's default survives");
        assert.equal(rows[0]!.info, '0');
        assert.equal(rows[0]!.sha256, null);
      } finally {
        await store.close();
      }
      const [cols] = await conn.query(`SHOW COLUMNS FROM ${database}.full_backup_metadata`);
      const names = (cols as Array<{ Field: string }>).map((c) => c.Field);
      for (const c of ['backup_uuid', 'tb_instance_id', 'state', 'start_time', 'end_time', 'backup_type', 'backup_size', 'backup_path', 'backup_name', 'bucket_name', 'created_at', 'updated_at', 'is_delete', 'overdue_day', 'info', 'backup_bytes', 'sha256', 'object_key', 'worker_host', 'job_id', 'error_detail']) {
        assert.ok(names.includes(c), `column ${c}`);
      }
    } finally {
      await conn.query(`DROP DATABASE IF EXISTS ${database}`);
      await conn.end();
    }
  });
}

const seedSql = () => readFileSync(new URL('../../sql/001_seed_schema.sql', import.meta.url), 'utf8');

for (const t of targets()) {
  test(`migrate 005 on ${t.name}: server_uuid column; the seed's binlog rows get binlog_file and object_key; gap and other rows untouched`, async () => {
    const database = `mcb_schema_${randomId()}`;
    const link = { host: t.host, port: t.port, user: t.user, password: t.password, database, charset: 'utf8mb4' };
    const conn = await mysql.createConnection({ host: t.host, port: t.port, user: t.user, password: t.password });
    try {
      await conn.query(`CREATE DATABASE ${database}`);
      await conn.query(`USE ${database}`);
      for (const s of seedSql().split(/;\s*\n/).map((x) => x.replace(/^--.*$/gm, '').trim()).filter(Boolean)) await conn.query(s);
      const seedRow = (uuid: string, type: string, name: string) =>
        conn.query(
          `INSERT INTO full_backup_metadata (backup_uuid, tb_instance_id, state, backup_type, backup_path, backup_name, bucket_name)
           VALUES (?, '7', 'Completed', ?, '/data/mysql', ?, 'local')`,
          [uuid, type, name],
        );
      await seedRow('00000000-0000-4000-8000-000000000001', 'binlog', 'log_7_mysql-bin.000012');
      await seedRow('00000000-0000-4000-8000-000000000002', 'binlog', 'mysql-bin.000013');
      await seedRow('00000000-0000-4000-8000-000000000003', 'binlog', 'log_8_mysql-bin.000014'); // another instance's name
      await seedRow('00000000-0000-4000-8000-000000000004', 'binlog', 'not a binlog');
      await seedRow('00000000-0000-4000-8000-000000000005', 'full', 'bak_7_20231026102557.tar.gz');

      await migrate(link, loadMigrations().filter((m) => m.version <= 4));
      // Rows mcb wrote before 005: a gap row (no binlog_file, a name ending in a file) and an archived binlog.
      await conn.query(
        `INSERT INTO full_backup_metadata (backup_uuid, tb_instance_id, state, backup_type, backup_path, backup_name, bucket_name, worker_host)
         VALUES ('00000000-0000-4000-8000-000000000006', '7', 'Error', 'binlog', '/data/mysql', 'gap_7_mysql-bin.000013_mysql-bin.000015', 'local', 'db1'),
                ('00000000-0000-4000-8000-000000000007', '7', 'Error', 'binlog', '/data/mysql', 'gap_7_mysql-bin.000015_mysql-bin.000016', 'local', NULL)`,
      );
      await conn.query(
        `INSERT INTO full_backup_metadata (backup_uuid, tb_instance_id, state, backup_type, backup_path, backup_name, bucket_name, worker_host,
           binlog_file, object_key, compression)
         VALUES ('00000000-0000-4000-8000-000000000008', '7', 'Completed', 'binlog', '/data/mysql', 'log_7_mysql-bin.000016', 'local', 'db1',
           'mysql-bin.000016', 'log_7_mysql-bin.000016', 'gzip')`,
      );
      const rest = await migrate(link);
      assert.ok(rest.applied.includes('005_binlog_server_uuid.sql'));

      const [rows] = await conn.query<mysql.RowDataPacket[]>(
        'SELECT backup_uuid AS u, binlog_file, object_key, compression, server_uuid FROM full_backup_metadata ORDER BY backup_uuid',
      );
      const by = new Map(rows.map((r) => [String(r.u).slice(-1), { file: r.binlog_file, key: r.object_key, compression: r.compression, server: r.server_uuid }]));
      assert.deepEqual(by.get('1'), { file: 'mysql-bin.000012', key: 'log_7_mysql-bin.000012', compression: 'none', server: null });
      assert.deepEqual(by.get('2'), { file: 'mysql-bin.000013', key: 'log_7_mysql-bin.000013', compression: 'none', server: null });
      for (const untouched of ['3', '4', '5', '6', '7']) assert.deepEqual(by.get(untouched), { file: null, key: null, compression: null, server: null }, `row ${untouched} untouched`);
      assert.deepEqual(by.get('8'), { file: 'mysql-bin.000016', key: 'log_7_mysql-bin.000016', compression: 'gzip', server: null });
      assert.deepEqual((await migrate(link)).applied, [], 'idempotent');
    } finally {
      await conn.query(`DROP DATABASE IF EXISTS ${database}`);
      await conn.end();
    }
  });
}
