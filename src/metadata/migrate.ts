// Versioned, idempotent schema migrations from sql/NNN_name.sql. Applied versions are recorded in
// mcb_schema_migrations; a named lock keeps two `mcb migrate` runs from racing.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { mysqlConnectionOptions, type MetadataLinkConfig } from '../config/index.ts';

export const sqlDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'sql');

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

export function loadMigrations(dir = sqlDir): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number(file.split('_')[0]),
      name: file,
      statements: splitStatements(readFileSync(path.join(dir, file), 'utf8')),
    }));
}

/** Splits on `;` at the end of a line; our SQL files keep one statement per `;`-terminated block. */
export function splitStatements(sql: string): string[] {
  const withoutComments = sql
    .split('\n')
    .filter((line) => !line.trim().startsWith('--'))
    .join('\n');
  return withoutComments
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export interface MigrateResult {
  applied: string[];
  alreadyApplied: string[];
}

export async function migrate(link: MetadataLinkConfig, migrations = loadMigrations()): Promise<MigrateResult> {
  const conn = await mysql.createConnection({ ...mysqlConnectionOptions(link), multipleStatements: false });
  try {
    // Identifiers cannot be parameters; the config loader only admits [A-Za-z0-9_$] here.
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${link.database}\` DEFAULT CHARACTER SET utf8mb4`);
    await conn.query(`USE \`${link.database}\``);
    const [lockRows] = await conn.query('SELECT GET_LOCK(?, 60) AS got', [`mcb_migrate_${link.database}`]);
    if ((lockRows as Array<{ got: number }>)[0]?.got !== 1) throw new Error('another mcb migrate holds the migration lock');
    try {
      await conn.query(
        `CREATE TABLE IF NOT EXISTS mcb_schema_migrations (
           version int NOT NULL PRIMARY KEY,
           name varchar(255) NOT NULL,
           applied_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
      );
      const [rows] = await conn.query('SELECT version FROM mcb_schema_migrations');
      const done = new Set((rows as Array<{ version: number }>).map((r) => r.version));
      const result: MigrateResult = { applied: [], alreadyApplied: [] };
      for (const m of migrations) {
        if (done.has(m.version)) {
          result.alreadyApplied.push(m.name);
          continue;
        }
        for (const statement of m.statements) await conn.query(statement);
        await conn.query('INSERT INTO mcb_schema_migrations (version, name) VALUES (?, ?)', [m.version, m.name]);
        result.applied.push(m.name);
      }
      return result;
    } finally {
      await conn.query('SELECT RELEASE_LOCK(?)', [`mcb_migrate_${link.database}`]);
    }
  } finally {
    await conn.end();
  }
}
