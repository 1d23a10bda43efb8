// CHECK TABLE on a restored server: the part of a restore test that asks the server whether the data is sound.
import type { Connection } from 'mysql2/promise';
import { errorMessage } from '../errors.ts';

/** CHECK TABLE of one table did not return a result (the statement failed, or the connection went away). */
export class CheckTableError extends Error {
  constructor(
    readonly table: string,
    readonly error: unknown,
  ) {
    super(`CHECK TABLE ${table}: ${errorMessage(error)}`);
  }
}

/**
 * CHECK TABLE on `mysql`.`user` and a random sample of up to `sampleSize` user tables, in that order, stopping at
 * the first table with errors; returns what the server said of it, undefined when all are OK. `checked` gets every
 * table as it is checked (so it is complete when this throws). Throws CheckTableError when a CHECK fails.
 */
export async function checkSampleTables(conn: Connection, sampleSize: number, checked: string[]): Promise<string | undefined> {
  const [tables] = await conn.query(
    `SELECT table_schema AS s, table_name AS t FROM information_schema.tables
     WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema')
     ORDER BY RAND() LIMIT ?`,
    [sampleSize],
  );
  const sample = (tables as Array<{ s: string; t: string }>).map((x) => `\`${x.s.replace(/`/g, '``')}\`.\`${x.t.replace(/`/g, '``')}\``);
  sample.unshift('`mysql`.`user`'); // always at least one table, and listed first
  for (const name of sample) {
    let res: unknown;
    try {
      [res] = await conn.query(`CHECK TABLE ${name}`);
    } catch (err) {
      throw new CheckTableError(name, err);
    }
    const bad = (res as Array<{ Msg_type: string; Msg_text: string }>).filter((m) => m.Msg_type.toLowerCase() === 'error' || (m.Msg_type.toLowerCase() === 'status' && m.Msg_text !== 'OK'));
    checked.push(name);
    if (bad.length) return `CHECK TABLE ${name}: ${bad.map((m) => m.Msg_text).join('; ')}`;
  }
  return undefined;
}
