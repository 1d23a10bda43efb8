// Reads a restored datadir the way a DBA checks one: start a throw-away mysqld on it (no events, no replication,
// no binlog), run one query as root over the socket, stop the server.
import mysql from 'mysql2/promise';
import { findFreePort, mysqldFromSidRoot, startMysqld } from '../../src/mysql/mysqld.ts';
import { servicesEnv } from './env.ts';

export async function queryRestored<T = Record<string, unknown>>(datadir: string, sql: string): Promise<T[]> {
  const env = servicesEnv();
  const server = await startMysqld(mysqldFromSidRoot(env.sidRoot), {
    datadir,
    port: await findFreePort(),
    runDir: `${datadir}-check-run`,
    extraArgs: ['--skip-replica-start', `--server-id=${90 + Math.floor(Math.random() * 9)}`, '--skip-log-bin', '--event-scheduler=DISABLED'],
  });
  try {
    const conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', password: env.source.rootPassword });
    try {
      const [rows] = await conn.query(sql);
      return rows as T[];
    } finally {
      await conn.end();
    }
  } finally {
    await server.stop();
  }
}

/** `phase:id` of every row of `table` (columns id, phase), ordered by id. */
export async function phaseRowsIn(datadir: string, table: string): Promise<string[]> {
  const rows = await queryRestored<{ id: number; phase: string }>(datadir, `SELECT id, phase FROM ${table} ORDER BY id`);
  return rows.map((r) => `${r.phase}:${r.id}`);
}
