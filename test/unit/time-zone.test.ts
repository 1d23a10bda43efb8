import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatLocalTime,
  isoOrNull,
  cronTimeZone,
  formatCompact,
  instantsAtWallOf,
  formatInstant,
  formatInZone,
  offsetString,
  parseCompact,
  parseInstant,
  parseInZone,
  parseTimeZone,
  sameWallSecond,
  seasonalOffsets,
  seasonalWallTimes,
  TimeError,
  UTC,
  type TimeZone,
} from '../../src/time/zone.ts';
import { serverSeasons, serverTimeZone, zonedValue, type ServerClock } from '../../src/metadata/zoned-pool.ts';
import { scheduleTimeZone } from '../../src/producer/index.ts';
import type { Config } from '../../src/config/index.ts';

const shanghai = parseTimeZone('Asia/Shanghai');
const newYork = parseTimeZone('America/New_York');
const berlin = parseTimeZone('Europe/Berlin');
const iso = (d: Date) => d.toISOString();

test('parseTimeZone: IANA names (canonical case), fixed offsets, and clear errors', () => {
  assert.deepEqual(parseTimeZone('Asia/Shanghai'), { kind: 'iana', name: 'Asia/Shanghai' });
  assert.deepEqual(parseTimeZone('asia/shanghai'), { kind: 'iana', name: 'Asia/Shanghai' });
  assert.deepEqual(parseTimeZone('UTC'), { kind: 'iana', name: 'UTC' });
  assert.deepEqual(parseTimeZone('+08:00'), { kind: 'offset', name: '+08:00', offsetSeconds: 8 * 3600 });
  assert.deepEqual(parseTimeZone('-0530'), { kind: 'offset', name: '-05:30', offsetSeconds: -(5 * 3600 + 30 * 60) });
  assert.deepEqual(parseTimeZone('UTC+08:00'), parseTimeZone('+08:00'));
  assert.deepEqual(parseTimeZone('-00:00'), parseTimeZone('+00:00'));
  for (const bad of ['', 'Mars/Olympus', 'CST', '+8', '+15:00', '+08:60', '8:00', 'Asia/Shanghai ; DROP']) {
    assert.throws(() => parseTimeZone(bad), TimeError, bad);
  }
});

test('formatInZone and offsetString do not depend on the process TZ', () => {
  const d = new Date('2026-12-01T07:04:05.123Z');
  assert.equal(formatInZone(d, shanghai), '2026-12-01 15:04:05');
  assert.equal(formatInZone(d, shanghai, { fraction: true }), '2026-12-01 15:04:05.123');
  assert.equal(formatInZone(d, UTC), '2026-12-01 07:04:05');
  assert.equal(formatInZone(d, parseTimeZone('-03:30')), '2026-12-01 03:34:05');
  assert.equal(formatInZone(new Date('2026-12-31T16:00:00Z'), shanghai), '2027-01-01 00:00:00', 'midnight is 00, not 24');
  assert.equal(offsetString(d, shanghai), '+08:00');
  assert.equal(offsetString(d, UTC), '+00:00');
  assert.equal(offsetString(new Date('2026-07-01T12:00:00Z'), newYork), '-04:00');
  assert.equal(offsetString(new Date('2026-01-01T12:00:00Z'), newYork), '-05:00');
  assert.equal(offsetString(new Date('2026-07-01T12:00:00Z'), berlin), '+02:00');
  assert.throws(() => formatInZone(new Date(NaN), UTC), TimeError);
});

test('parseInZone: whole seconds and fractions, in IANA zones and fixed offsets', () => {
  assert.equal(iso(parseInZone('2026-12-01 15:04:05', shanghai)), '2026-12-01T07:04:05.000Z');
  assert.equal(iso(parseInZone('2026-12-01T15:04:05', shanghai)), '2026-12-01T07:04:05.000Z');
  assert.equal(iso(parseInZone('2026-12-01 15:04:05.123456', shanghai)), '2026-12-01T07:04:05.123Z', 'cut to the millisecond');
  assert.equal(iso(parseInZone('2026-12-01 15:04:05.5', parseTimeZone('+08:00'))), '2026-12-01T07:04:05.500Z');
  assert.equal(iso(parseInZone('2024-02-29 00:00:00', UTC)), '2024-02-29T00:00:00.000Z');
  assert.equal(iso(parseInZone('0099-01-01 00:00:00', UTC)), '0099-01-01T00:00:00.000Z', 'no 1900s for two-digit years');
});

test('parseInZone rejects dates that do not exist and malformed text', () => {
  for (const bad of ['2026-02-30 00:00:00', '2025-02-29 00:00:00', '2026-13-01 00:00:00', '2026-04-31 12:00:00', '2026-05-01 24:00:00', '2026-05-01 10:60:00', '2026-05-01 10:00:60', '0000-00-00 00:00:00', '2026-05-01', '2026-05-01 10:00:00.1234567', 'x']) {
    assert.throws(() => parseInZone(bad, UTC), TimeError, bad);
  }
});

test('DST fold (a wall time that happens twice): the earlier instant', () => {
  // New York, 2026-11-01: 02:00 EDT → 01:00 EST, so 01:30 happens at -04:00 and again at -05:00.
  assert.equal(iso(parseInZone('2026-11-01 01:30:00', newYork)), '2026-11-01T05:30:00.000Z');
  assert.equal(parseInstant('2026-11-01 01:30:00', newYork).date.toISOString(), '2026-11-01T05:30:00.000Z');
  assert.equal(iso(parseInstant('2026-11-01 01:30:00-05:00', newYork).date), '2026-11-01T06:30:00.000Z', 'an explicit offset picks the later one');
  // Berlin, 2026-10-25: 03:00 CEST → 02:00 CET.
  assert.equal(iso(parseInZone('2026-10-25 02:30:00', berlin)), '2026-10-25T00:30:00.000Z');
  assert.equal(formatInstant(parseInstant('2026-10-25 02:30:00', berlin).micros, berlin), '2026-10-25 02:30:00 +02:00 (Europe/Berlin)');
});

test('DST gap (a wall time that never happens): shifted forward when read, refused as a restore target', () => {
  // New York, 2026-03-08: 02:00 EST → 03:00 EDT; Berlin, 2026-03-29: 02:00 CET → 03:00 CEST.
  assert.equal(iso(parseInZone('2026-03-08 02:30:00', newYork)), '2026-03-08T07:30:00.000Z');
  assert.equal(formatInZone(parseInZone('2026-03-08 02:30:00', newYork), newYork), '2026-03-08 03:30:00');
  assert.equal(formatInZone(parseInZone('2026-03-29 02:15:00', berlin), berlin), '2026-03-29 03:15:00');
  assert.throws(() => parseInstant('2026-03-08 02:30:00', newYork), /does not exist in America\/New_York.*explicit offset/);
  assert.throws(() => parseInstant('2026-03-29 02:15:00', berlin), TimeError);
  assert.equal(iso(parseInstant('2026-03-29 02:15:00+01:00', berlin).date), '2026-03-29T01:15:00.000Z', 'fine with an offset');
  assert.equal(iso(parseInstant('2026-03-29 01:59:59', berlin).date), '2026-03-29T00:59:59.000Z');
  assert.equal(iso(parseInstant('2026-03-29 03:00:00', berlin).date), '2026-03-29T01:00:00.000Z');
});

test('parseInstant: epoch microseconds; Z or ±HH:MM win over the zone', () => {
  const base = Date.UTC(2026, 11, 1, 7, 4, 5);
  assert.deepEqual(parseInstant('2026-12-01 15:04:05', shanghai), { micros: base * 1000, date: new Date(base) });
  assert.deepEqual(parseInstant('2026-12-01T15:04:05.123456', shanghai), { micros: base * 1000 + 123456, date: new Date(base + 123) });
  assert.equal(parseInstant('2026-12-01 15:04:05.000001', shanghai).micros, base * 1000 + 1);
  assert.equal(parseInstant('2026-12-01 07:04:05Z', shanghai).micros, base * 1000);
  assert.equal(parseInstant('2026-12-01T07:04:05.5z', shanghai).micros, base * 1000 + 500000);
  assert.equal(parseInstant('2026-12-01 02:04:05-05:00', shanghai).micros, base * 1000);
  assert.equal(parseInstant('2026-12-01 15:04:05 +08:00', UTC).micros, base * 1000, 'a space before the offset is fine');
  assert.ok(Number.isSafeInteger(parseInstant('2200-12-31 23:59:59.999999', UTC).micros));
  for (const bad of ['latest', '2026-12-01', '2026-02-30 00:00:00', '2026-12-01 15:04:05+8', '2026-12-01 15:04:05+15:00', '2026-12-01 15:04:05 Asia/Shanghai', '9999-12-31 23:59:59']) {
    assert.throws(() => parseInstant(bad, shanghai), TimeError, bad);
  }
});

test('formatInstant prints the instant with its offset, the fraction only when there is one', () => {
  const micros = Date.UTC(2026, 11, 1, 7, 4, 5) * 1000 + 123456;
  assert.equal(formatInstant(micros, shanghai), '2026-12-01 15:04:05.123456 +08:00 (Asia/Shanghai)');
  assert.equal(formatInstant(new Date(Date.UTC(2026, 11, 1, 7, 4, 5)), UTC), '2026-12-01 07:04:05 +00:00 (UTC)');
  assert.equal(formatInstant(new Date(Date.UTC(2026, 6, 1, 7, 4, 5)), newYork), '2026-07-01 03:04:05 -04:00 (America/New_York)');
  assert.equal(formatInstant(micros, parseTimeZone('+08:00')), '2026-12-01 15:04:05.123456 +08:00');
  assert.equal(parseInstant(formatInstant(micros, shanghai).replace(/ \(.*\)$/, ''), UTC).micros, micros, 'round trip');
});

test('compact object-name timestamps in a zone', () => {
  const d = new Date('2023-10-26T02:25:57Z');
  assert.equal(formatCompact(d, shanghai), '20231026102557');
  assert.equal(formatCompact(d, UTC), '20231026022557');
  assert.equal(iso(parseCompact('20231026102557', shanghai)), iso(d));
  assert.throws(() => parseCompact('20230230102557', UTC), TimeError);
  assert.throws(() => parseCompact('2023102610255', UTC), TimeError);
});

test('cronTimeZone: IANA names as they are, fixed offsets as UTC±HH:MM (what BullMQ/luxon takes)', () => {
  assert.equal(cronTimeZone(shanghai), 'Asia/Shanghai');
  assert.equal(cronTimeZone(parseTimeZone('+08:00')), 'UTC+08:00');
  assert.equal(cronTimeZone(parseTimeZone('-05:30')), 'UTC-05:30');
});

/** A server clock in `year` 2026 at `now`, its January/July offsets in hours. */
function clockAt(globalTimeZone: string, systemTimeZone: string, hours: { now: number; january: number; july: number }): ServerClock {
  return { globalTimeZone, systemTimeZone, offsetSeconds: hours.now * 3600, year: 2026, seasons: { january: hours.january * 3600, july: hours.july * 3600 } };
}
const steady = (h: number) => ({ now: h, january: h, july: h });

test('the metadata server zone: SYSTEM resolves to @@system_time_zone only when it is a real zone at the server offsets', () => {
  const now = new Date('2026-12-01T00:00:00Z');
  const zoneOf = (g: string, s: string, hours: { now: number; january: number; july: number }) => serverTimeZone(clockAt(g, s, hours), { now });
  assert.deepEqual(zoneOf('SYSTEM', 'UTC', steady(0)), UTC);
  assert.deepEqual(zoneOf('SYSTEM', 'Asia/Shanghai', steady(8)), shanghai);
  assert.deepEqual(zoneOf('SYSTEM', 'CST', steady(8)), parseTimeZone('+08:00'), 'CST without DST is no IANA name: the measured offset, fixed');
  assert.deepEqual(zoneOf('SYSTEM', 'Europe/Berlin', steady(8)), parseTimeZone('+08:00'), 'a name at other offsets is not trusted');
  assert.deepEqual(zoneOf('+05:30', 'UTC', steady(5.5)), parseTimeZone('+05:30'));
  assert.deepEqual(zoneOf('Europe/Berlin', 'UTC', { now: 1, january: 1, july: 2 }), berlin);
  assert.deepEqual(zoneOf('posix/Europe/Berlin', 'UTC', steady(1)), parseTimeZone('+01:00'));
});

test('the metadata server zone with DST and no IANA name: the process zone when it keeps the same offsets, else an error', () => {
  const winter = new Date('2026-12-01T00:00:00Z');
  const cet = clockAt('SYSTEM', 'CET', { now: 1, january: 1, july: 2 });
  assert.deepEqual(serverTimeZone(cet, { processZone: berlin, now: winter }), berlin);
  assert.throws(
    () => serverTimeZone(cet, { processZone: UTC, now: winter }),
    (err: Error) =>
      err instanceof TimeError &&
      err.message ===
        "the metadata server's time zone (SYSTEM = CET) observes daylight saving time and is not an IANA name: set [metadata-link] time_zone, e.g. Europe/Berlin",
  );
  assert.throws(() => serverTimeZone(cet, { now: winter }), /observes daylight saving time/, 'no process zone');
  // New York (-05:00/-04:00, DST from March) is at other offsets than a Berlin-configured server.
  assert.throws(() => serverTimeZone(cet, { processZone: newYork, now: winter }), /SYSTEM = CET/);
  const est = clockAt('SYSTEM', 'EST', { now: -5, january: -5, july: -4 });
  assert.deepEqual(serverTimeZone(est, { processZone: newYork, now: winter }), newYork);
  assert.throws(() => serverTimeZone(est, { processZone: shanghai, now: winter }), /e\.g\. America\/New_York/);
  // The process zone must also be at the server's offset now (DST rules of the same offsets differ in their dates).
  const summerTimeNow = clockAt('SYSTEM', 'CET', { now: 2, january: 1, july: 2 });
  assert.throws(() => serverTimeZone(summerTimeNow, { processZone: berlin, now: winter }), TimeError);
});

test('serverSeasons: the server offsets from UNIX_TIMESTAMP of the January and July wall times', () => {
  const walls = seasonalWallTimes(2026);
  assert.deepEqual(walls, { january: '2026-01-15 12:00:00', july: '2026-07-15 12:00:00' });
  const unix = (text: string, zone: TimeZone) => parseInZone(text, zone).getTime() / 1000;
  assert.deepEqual(serverSeasons(2026, unix(walls.january, berlin), unix(walls.july, berlin)), { january: 3600, july: 7200 });
  assert.deepEqual(serverSeasons(2026, unix(walls.january, UTC), unix(walls.july, UTC)), { january: 0, july: 0 });
  assert.deepEqual(seasonalOffsets(newYork, 2026), { january: -5 * 3600, july: -4 * 3600 });
  assert.deepEqual(seasonalOffsets(parseTimeZone('Australia/Sydney'), 2026), { january: 11 * 3600, july: 10 * 3600 });
});

test('sameWallSecond and instantsAtWallOf: a DATETIME read back in the repeated hour of a fall-back', () => {
  // New York, 2026-11-01: 01:30 EST (06:30Z) is stored as "01:30:00" and read back as 01:30 EDT (05:30Z).
  const written = new Date('2026-11-01T06:30:00Z');
  const readBack = parseInZone(formatInZone(written, newYork), newYork);
  assert.equal(iso(readBack), '2026-11-01T05:30:00.000Z');
  assert.ok(sameWallSecond(readBack, written, newYork));
  assert.ok(!sameWallSecond(readBack, written, UTC));
  assert.ok(!sameWallSecond(readBack, new Date('2026-11-01T06:30:01Z'), newYork), 'another second');
  assert.deepEqual(instantsAtWallOf(readBack, newYork).map(iso), ['2026-11-01T05:30:00.000Z', '2026-11-01T06:30:00.000Z']);
  assert.deepEqual(instantsAtWallOf(new Date('2026-11-01T07:30:00.250Z'), newYork).map(iso), ['2026-11-01T07:30:00.250Z']);
  assert.deepEqual(instantsAtWallOf(written, parseTimeZone('-05:00')).map(iso), [iso(written)]);
});

test('query parameters: Dates become wall-clock text in the zone, everything else is left alone', () => {
  const d = new Date('2026-12-01T07:04:05Z');
  assert.equal(zonedValue(d, shanghai), '2026-12-01 15:04:05');
  assert.equal(zonedValue(new Date('2026-12-01T07:04:05.250Z'), shanghai), '2026-12-01 15:04:05.250');
  assert.equal(zonedValue(new Date(NaN), shanghai), null);
  assert.deepEqual(zonedValue([1, 'a', null, d, [d]], UTC), [1, 'a', null, '2026-12-01 07:04:05', ['2026-12-01 07:04:05']]);
  assert.deepEqual(zonedValue({ start_time: d, n: 1 }, UTC), { start_time: '2026-12-01 07:04:05', n: 1 });
  const buf = Buffer.from('x');
  assert.equal(zonedValue(buf, UTC), buf);
});

test('job schedulers run in [schedule] timezone when set, else in the metadata time zone', () => {
  const config = (timezone?: string) => ({ schedule: { timezone: timezone === undefined ? undefined : parseTimeZone(timezone) } }) as unknown as Config;
  assert.equal(scheduleTimeZone(config(), { timeZone: parseTimeZone('+08:00') }), 'UTC+08:00');
  assert.equal(scheduleTimeZone(config(), { timeZone: shanghai }), 'Asia/Shanghai');
  assert.equal(scheduleTimeZone(config('Europe/Berlin'), { timeZone: shanghai }), 'Europe/Berlin');
});

test('formatLocalTime and isoOrNull: missing and invalid dates give nothing, not "Invalid Date"', () => {
  const zone = parseTimeZone('+08:00');
  const at = new Date('2026-12-01T07:04:05Z');
  assert.equal(formatLocalTime(at, zone), '2026-12-01 15:04:05');
  assert.equal(formatLocalTime(null, zone), '');
  assert.equal(formatLocalTime(new Date('nope'), zone), '');
  assert.equal(isoOrNull(at), '2026-12-01T07:04:05.000Z');
  assert.equal(isoOrNull(at.getTime()), '2026-12-01T07:04:05.000Z');
  assert.equal(isoOrNull(undefined), null);
  assert.equal(isoOrNull(new Date(NaN)), null);
});
