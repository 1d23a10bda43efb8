// The schema works on both metadata centers users run: MariaDB 10.11 and MySQL 8.0+/9.x; migrate is idempotent
// and keeps a seed-era table and its rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import mysql from 'mysql2/promise';
import { migrate, MetadataStore } from '../../src/metadata/index.ts';
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
