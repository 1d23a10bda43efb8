// Every query to the metadata center goes through this pool, so DATETIMEs are read and written in the one
// metadata time zone whatever the process's TZ (docs/architecture.md, "Time zones"): Date parameters become
// `YYYY-MM-DD HH:MM:SS[.mmm]` in that zone before mysql2 sees them, and DATETIME/TIMESTAMP values come back as
// text (dateStrings) that is parsed in that zone. Callers keep using `store.pool.query(sql, [date])`.
import type { Pool, PoolConnection, TypeCast } from 'mysql2/promise';
import {
  exampleZoneAt,
  formatInZone,
  observesDst,
  offsetSecondsAt,
  offsetZone,
  parseInZone,
  parseTimeZone,
  sameSeasons,
  seasonalOffsets,
  seasonalWallTimes,
  TimeError,
  UTC,
  type SeasonalOffsets,
  type TimeZone,
} from '../time/zone.ts';
import { withConnectionRetry, type RetryPolicy } from './retry.ts';

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

/**
 * The pool, its query/execute and the connections it hands out, writing Dates in `zone`. With `retry`, the pool's
 * own query/execute and getConnection ride out connection-level failures (retry.ts); queries on a connection it
 * handed out are not retried (that connection's session, or a lock it holds, would not survive a reconnect).
 */
export function zonedPool(pool: Pool, zone: TimeZone, retry?: RetryPolicy): Pool {
  const retried = <T>(op: () => Promise<T>) => (retry ? withConnectionRetry(op, retry) : op());
  return zoned(pool, (prop, value) => {
    if (prop === 'getConnection') return async () => zonedConnection(await retried(() => pool.getConnection()), zone);
    const run = runnerProp(pool, prop, value, zone);
    return run && (((sql, ...rest) => retried(() => run(sql, ...rest))) as Runner);
  });
}

/**
 * What the metadata server says about its clock: `SELECT @@global.time_zone, @@system_time_zone,
 * TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW())`, and its offsets in January and July of `year` (serverSeasons).
 */
export interface ServerClock {
  globalTimeZone: string;
  systemTimeZone: string;
  offsetSeconds: number;
  year: number;
  seasons: SeasonalOffsets;
}

/**
 * The server's offsets from `UNIX_TIMESTAMP(wall)` of seasonalWallTimes(year): the server reads those wall times in
 * its session zone, so each offset is the wall time taken as UTC minus what it returns.
 */
export function serverSeasons(year: number, unixJanuary: number, unixJuly: number): SeasonalOffsets {
  const walls = seasonalWallTimes(year);
  const asUtcSeconds = (text: string) => parseInZone(text, UTC).getTime() / 1000;
  return { january: asUtcSeconds(walls.january) - unixJanuary, july: asUtcSeconds(walls.july) - unixJuly };
}

/** The server's zone name as it states it: `SYSTEM = CET`, or @@global.time_zone. */
export function serverZoneLabel(clock: ServerClock): string {
  return isSystem(clock) ? `SYSTEM = ${clock.systemTimeZone}` : clock.globalTimeZone;
}

function isSystem(clock: ServerClock): boolean {
  return clock.globalTimeZone.toUpperCase() === 'SYSTEM';
}

/** Whether `zone` is at the server's offset now and in January and July: then it keeps agreeing across DST changes. */
export function serverKeepsZone(clock: ServerClock, zone: TimeZone, now = new Date()): boolean {
  return offsetSecondsAt(now.getTime(), zone) === clock.offsetSeconds && sameSeasons(seasonalOffsets(zone, clock.year), clock.seasons);
}

/**
 * The zone the server's DATETIMEs (and NOW()) are in: its named zone (`SYSTEM` → @@system_time_zone) when that is
 * an IANA name at the server's offsets; else, when the server observes no DST, the offset it measures now, fixed;
 * else `processZone` when it is at the server's offsets (the usual case: the same host configuration). A server
 * with DST and no usable name otherwise has no zone that would read the other half of the year's rows right after
 * a restart: TimeError, asking for [metadata-link] time_zone.
 */
export function serverTimeZone(clock: ServerClock, opts: { processZone?: TimeZone; now?: Date } = {}): TimeZone {
  const now = opts.now ?? new Date();
  const named = namedZone(clock);
  if (named && serverKeepsZone(clock, named, now)) return named;
  if (!observesDst(clock.seasons)) return offsetZone(clock.offsetSeconds);
  if (opts.processZone?.kind === 'iana' && serverKeepsZone(clock, opts.processZone, now)) return opts.processZone;
  const example = exampleZoneAt(clock.seasons, clock.year, clock.offsetSeconds, now);
  throw new TimeError(
    `the metadata server's time zone (${serverZoneLabel(clock)}) observes daylight saving time and ${named ? `is not at the offsets of ${named.name}` : 'is not an IANA name'}: set [metadata-link] time_zone${example ? `, e.g. ${example}` : ' to its IANA name'}`,
  );
}

function namedZone(clock: ServerClock): TimeZone | undefined {
  try {
    return parseTimeZone(isSystem(clock) ? clock.systemTimeZone : clock.globalTimeZone);
  } catch {
    return undefined; // e.g. CST, which is no IANA name (and means different zones on different hosts)
  }
}
