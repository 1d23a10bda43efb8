// Every query to the metadata center goes through this pool, so DATETIMEs are read and written in the one
// metadata time zone whatever the process's TZ (docs/architecture.md, "Time zones"): Date parameters become
// `YYYY-MM-DD HH:MM:SS[.mmm]` in that zone before mysql2 sees them, and DATETIME/TIMESTAMP values come back as
// text (dateStrings) that is parsed in that zone. Callers keep using `store.pool.query(sql, [date])`.
import type { Pool, PoolConnection, TypeCast } from 'mysql2/promise';
import { formatInZone, offsetSecondsAt, offsetZone, parseInZone, parseTimeZone, type TimeZone } from '../time/zone.ts';

/** The pool options that make mysql2 hand DATETIME/TIMESTAMP values over as text, parsed in `zone`. */
export function zonedReadOptions(zone: TimeZone): { dateStrings: Array<'DATETIME' | 'TIMESTAMP'>; typeCast: TypeCast } {
  return {
    dateStrings: ['DATETIME', 'TIMESTAMP'],
    typeCast: (field, next) => {
      if (field.type !== 'DATETIME' && field.type !== 'TIMESTAMP') return next();
      const text = next() as unknown;
      return typeof text === 'string' ? readDateTime(text, zone) : text;
    },
  };
}

function readDateTime(text: string, zone: TimeZone): Date {
  // Zero dates ('0000-00-00 00:00:00', allowed by lax sql_modes) give an invalid Date, as mysql2 itself does.
  try {
    return parseInZone(text, zone);
  } catch {
    return new Date(NaN);
  }
}

/** A query parameter with every Date (also inside arrays and `SET ?` objects) written in `zone`. */
export function zonedValue(value: unknown, zone: TimeZone): unknown {
  if (value instanceof Date) {
    // mysql2 writes an invalid Date as NULL; milliseconds are kept, as mysql2 keeps them.
    if (Number.isNaN(value.getTime())) return null;
    return formatInZone(value, zone, { fraction: value.getTime() % 1000 !== 0 });
  }
  if (Array.isArray(value)) return value.map((v) => zonedValue(v, zone));
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, zonedValue(v, zone)]));
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

type Runner = (sql: unknown, values?: unknown) => Promise<unknown>;

/** query/execute with `(sql, values)` or `({ sql, values })`, values converted; the arity is kept (mysql2 checks it). */
function zonedRunner(run: Runner, zone: TimeZone): Runner {
  return (sql, ...rest) => {
    const options = isPlainObject(sql) && 'values' in sql ? { ...sql, values: zonedValue(sql.values, zone) } : sql;
    return rest.length && rest[0] !== undefined ? run(options, zonedValue(rest[0], zone)) : run(options);
  };
}

function zoned<T extends object>(target: T, wrap: (prop: string | symbol, value: unknown) => unknown): T {
  return new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t) as unknown;
      const wrapped = wrap(prop, value);
      if (wrapped !== undefined) return wrapped;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(t) : value;
    },
  });
}

function runnerProp(target: object, prop: string | symbol, value: unknown, zone: TimeZone): Runner | undefined {
  if ((prop === 'query' || prop === 'execute') && typeof value === 'function') return zonedRunner((value as Runner).bind(target), zone);
  return undefined;
}

export function zonedConnection(conn: PoolConnection, zone: TimeZone): PoolConnection {
  return zoned(conn, (prop, value) => runnerProp(conn, prop, value, zone));
}

/** The pool, its query/execute and the connections it hands out, writing Dates in `zone`. */
export function zonedPool(pool: Pool, zone: TimeZone): Pool {
  return zoned(pool, (prop, value) => {
    if (prop === 'getConnection') return async () => zonedConnection(await pool.getConnection(), zone);
    return runnerProp(pool, prop, value, zone);
  });
}

/** What the metadata server says about its clock: `SELECT @@global.time_zone, @@system_time_zone, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())`. */
export interface ServerClock {
  globalTimeZone: string;
  systemTimeZone: string;
  offsetSeconds: number;
}

/**
 * The zone the server's DATETIMEs (and NOW()) are in: its named zone when that is a real IANA name at the offset
 * the server measures now (`SYSTEM` → @@system_time_zone), else that measured offset, fixed.
 */
export function serverTimeZone(clock: ServerClock, now = new Date()): TimeZone {
  const measured = offsetZone(clock.offsetSeconds);
  const named = clock.globalTimeZone.toUpperCase() === 'SYSTEM' ? clock.systemTimeZone : clock.globalTimeZone;
  let zone: TimeZone;
  try {
    zone = parseTimeZone(named);
  } catch {
    return measured; // e.g. CST, which is no IANA name (and means different zones on different hosts)
  }
  return offsetSecondsAt(now.getTime(), zone) === offsetSecondsAt(now.getTime(), measured) ? zone : measured;
}
