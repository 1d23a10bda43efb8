// The one time zone every DATETIME, object name, restore target and printed time is read and written in
// (docs/architecture.md, "Time zones"). Pure: offsets come from Intl.DateTimeFormat, never from the process's TZ
// (processTimeZone alone reports what that is). A wall time a DST change makes occur twice is the earlier instant;
// one it skips is moved forward by the gap when stored (parseInZone: a DATETIME or object name always parses) and
// refused when typed as a restore target (parseInstant asks for an explicit offset).
// May import: nothing from src.

export type TimeZone =
  /** An IANA name (Asia/Shanghai, UTC, Europe/Berlin), as Intl resolves it. */
  | { readonly kind: 'iana'; readonly name: string }
  /** A fixed offset east of UTC; `name` is its ±HH:MM form. */
  | { readonly kind: 'offset'; readonly name: string; readonly offsetSeconds: number };

export class TimeError extends Error {
  override readonly name = 'TimeError';
}

export const UTC: TimeZone = { kind: 'iana', name: 'UTC' };

const MAX_OFFSET_SECONDS = 14 * 3600;

interface WallTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

// ---- zones ----

/** An IANA name (case-insensitive) or a fixed offset `±HH:MM` (also `±HHMM`, `UTC±HH:MM`). Throws TimeError. */
export function parseTimeZone(text: string): TimeZone {
  const trimmed = text.trim();
  if (!trimmed) throw new TimeError('time zone is empty');
  const offset = /^(?:(?:UTC|GMT)(?=[+-]))?([+-])(\d{2}):?(\d{2})$/i.exec(trimmed);
  if (offset) return fixedOffset(offset[1] === '-' ? -1 : 1, Number(offset[2]), Number(offset[3]), trimmed);
  // Intl would also take an offset like "+08:00" on newer engines; anything with a digit-only body is not a name.
  if (/^[+-]?\d/.test(trimmed)) throw new TimeError(`"${trimmed}" is not a time zone: give an IANA name (Asia/Shanghai) or an offset ±HH:MM`);
  let name: string;
  try {
    name = new Intl.DateTimeFormat('en-US', { timeZone: trimmed }).resolvedOptions().timeZone;
  } catch {
    throw new TimeError(`unknown time zone "${trimmed}": give an IANA name (Asia/Shanghai, UTC) or an offset ±HH:MM`);
  }
  // Intl also takes abbreviations, and CST becomes America/Chicago where MySQL on a Chinese host means +08:00.
  if (!trimmed.includes('/') && name !== 'UTC') {
    throw new TimeError(`"${trimmed}" is an abbreviation, and abbreviations are ambiguous: give an IANA area/location name (Asia/Shanghai, America/Chicago, UTC) or an offset ±HH:MM`);
  }
  return { kind: 'iana', name };
}

function fixedOffset(sign: number, hours: number, minutes: number, text: string): TimeZone {
  const seconds = sign * (hours * 3600 + minutes * 60);
  if (minutes > 59 || Math.abs(seconds) > MAX_OFFSET_SECONDS) throw new TimeError(`time zone offset "${text}" is out of range (-14:00 to +14:00)`);
  return offsetZone(seconds);
}

/** The fixed-offset zone `seconds` east of UTC (rounded to the minute). */
export function offsetZone(seconds: number): TimeZone {
  const rounded = Math.round(seconds / 60) * 60 || 0; // no -0
  return { kind: 'offset', name: formatOffset(rounded), offsetSeconds: rounded };
}

/** Whether two zones are the same zone (not merely the same offset today). */
export function sameZone(a: TimeZone, b: TimeZone): boolean {
  return a.kind === b.kind && a.name === b.name;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(name: string): Intl.DateTimeFormat {
  let f = formatters.get(name);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(name, f);
  }
  return f;
}

/** Seconds east of UTC that `zone` is at the instant `epochMs`. */
export function offsetSecondsAt(epochMs: number, zone: TimeZone): number {
  if (zone.kind === 'offset') return zone.offsetSeconds;
  const wholeSecondMs = Math.floor(epochMs / 1000) * 1000;
  const parts: Record<string, string> = {};
  for (const p of formatterFor(zone.name).formatToParts(new Date(wholeSecondMs))) parts[p.type] = p.value;
  const year = parts.era === 'BC' || parts.era === 'B' ? 1 - Number(parts.year) : Number(parts.year);
  const wall = { year, month: Number(parts.month), day: Number(parts.day), hour: Number(parts.hour), minute: Number(parts.minute), second: Number(parts.second) };
  return (wallAsUtcMs(wall) - wholeSecondMs) / 1000;
}

/** `+08:00`, `-05:00`, `+00:00`: the offset of `zone` at that instant. */
export function offsetString(date: Date, zone: TimeZone): string {
  return formatOffset(offsetSecondsAt(validTime(date), zone));
}

function formatOffset(seconds: number): string {
  const abs = Math.abs(seconds);
  const hhmm = `${pad(Math.floor(abs / 3600))}:${pad(Math.floor((abs % 3600) / 60))}`;
  // Offsets before 1900 (local mean time) can have seconds; they are kept rather than silently rounded.
  return `${seconds < 0 ? '-' : '+'}${hhmm}${abs % 60 ? `:${pad(abs % 60)}` : ''}`;
}

// ---- wall times ----

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function validTime(date: Date): number {
  const t = date.getTime();
  if (Number.isNaN(t)) throw new TimeError('invalid date');
  return t;
}

/** The wall time read as if it were UTC, in ms (no Date.UTC: it maps years 0-99 to 1900-1999). */
function wallAsUtcMs(w: WallTime): number {
  const d = new Date(0);
  d.setUTCFullYear(w.year, w.month - 1, w.day);
  d.setUTCHours(w.hour, w.minute, w.second, 0);
  return d.getTime();
}

function wallOf(epochMs: number, zone: TimeZone): WallTime {
  const d = new Date(Math.floor(epochMs / 1000) * 1000 + offsetSecondsAt(epochMs, zone) * 1000);
  return {
    year: d.getUTCFullYear(),
    month: d.getUTCMonth() + 1,
    day: d.getUTCDate(),
    hour: d.getUTCHours(),
    minute: d.getUTCMinutes(),
    second: d.getUTCSeconds(),
  };
}

function formatWall(w: WallTime): string {
  return `${pad(w.year, 4)}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)}:${pad(w.second)}`;
}

function checkWall(w: WallTime, text: string): void {
  const daysInMonth = [31, isLeapYear(w.year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][w.month - 1] ?? 0;
  const ok = w.year >= 1 && w.day >= 1 && w.day <= daysInMonth && w.hour <= 23 && w.minute <= 59 && w.second <= 59;
  if (!ok) throw new TimeError(`"${text}" is not a valid date and time`);
}

function isLeapYear(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

type Resolution = { epochMs: number; gap: false } | { epochMs: number; gap: true; gapSeconds: number };

const DAY_MS = 86_400_000;

/** Every instant (ms) whose wall time in `zone` is `w`, earliest first: two in a fold, none in a gap. */
function instantsOfWall(w: WallTime, zone: TimeZone): number[] {
  const local = wallAsUtcMs(w);
  if (zone.kind === 'offset') return [local - zone.offsetSeconds * 1000];
  // A transition near this wall time has the offsets of the day before and the day after on its two sides.
  return [...new Set([offsetSecondsAt(local - DAY_MS, zone), offsetSecondsAt(local + DAY_MS, zone), offsetSecondsAt(local, zone)])]
    .map((o) => local - o * 1000)
    .filter((t) => local - offsetSecondsAt(t, zone) * 1000 === t)
    .sort((a, b) => a - b);
}

/** The instant a wall time names in `zone`: the earlier one in a fold; shifted forward past a gap (flagged). */
function resolveWall(w: WallTime, zone: TimeZone): Resolution {
  const matches = instantsOfWall(w, zone);
  if (matches.length) return { epochMs: matches[0]!, gap: false };
  const local = wallAsUtcMs(w);
  const before = offsetSecondsAt(local - DAY_MS, zone);
  const after = offsetSecondsAt(local + DAY_MS, zone);
  return { epochMs: local - before * 1000, gap: true, gapSeconds: after - before };
}

const wallPattern = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;

function parseWall(text: string): { wall: WallTime; micros: number } {
  const m = wallPattern.exec(text.trim());
  if (!m) throw new TimeError(`"${text}" is not a date and time of the form YYYY-MM-DD HH:MM:SS[.ffffff]`);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const wall = { year, month, day, hour, minute, second };
  checkWall(wall, text);
  return { wall, micros: m[7] ? Number(m[7].padEnd(6, '0')) : 0 };
}

// ---- the public conversions ----

/** `YYYY-MM-DD HH:MM:SS` of `date` in `zone`; with `fraction`, `.mmm` milliseconds are appended. */
export function formatInZone(date: Date, zone: TimeZone, opts: { fraction?: boolean } = {}): string {
  const t = validTime(date);
  const text = formatWall(wallOf(t, zone));
  return opts.fraction ? `${text}.${pad(((t % 1000) + 1000) % 1000, 3)}` : text;
}

/** `formatInZone` for display: '' for a missing or invalid date. */
export function formatLocalTime(date: Date | null | undefined, zone: TimeZone): string {
  return date && !Number.isNaN(date.getTime()) ? formatInZone(date, zone) : '';
}

/** ISO 8601 (UTC) of a date or epoch milliseconds; null for a missing or invalid one. */
export function isoOrNull(at: Date | number | null | undefined): string | null {
  if (at === null || at === undefined) return null;
  const d = typeof at === 'number' ? new Date(at) : at;
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/**
 * `YYYY-MM-DD HH:MM:SS[.ffffff]` (or `T` between date and time) in `zone` → Date (fractions below a millisecond
 * are cut). A fold gives the earlier instant, a gap the wall time shifted forward by the gap. Throws TimeError.
 */
export function parseInZone(text: string, zone: TimeZone): Date {
  const { wall, micros } = parseWall(text);
  return new Date(resolveWall(wall, zone).epochMs + Math.floor(micros / 1000));
}

/** `YYYYmmddHHMMSS` of `date` in `zone` (the timestamp in object names). */
export function formatCompact(date: Date, zone: TimeZone): string {
  return formatInZone(date, zone).replace(/[- :]/g, '');
}

/** `YYYYmmddHHMMSS` in `zone` → Date, resolved like parseInZone. Throws TimeError. */
export function parseCompact(text: string, zone: TimeZone): Date {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(text);
  if (!m) throw new TimeError(`"${text}" is not a timestamp of the form YYYYmmddHHMMSS`);
  return parseInZone(`${m[1]}-${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}`, zone);
}

export interface Instant {
  /** Microseconds since the epoch (below 2^53 for any year up to 2255). */
  micros: number;
  /** The same instant, cut to the millisecond. */
  date: Date;
}

const instantPattern = /^(\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?)\s*(Z|[+-]\d{2}:\d{2})?$/i;

/**
 * A point in time a person typed: `YYYY-MM-DD HH:MM:SS[.ffffff]` (space or `T`), optionally followed by `Z` or
 * `±HH:MM`, which then wins over `zone`. A fold is its earlier instant; a wall time in a gap is refused (there is
 * no such time in `zone`). Throws TimeError naming what is wrong.
 */
export function parseInstant(text: string, zone: TimeZone): Instant {
  const m = instantPattern.exec(text.trim());
  if (!m) throw new TimeError(`"${text}" is not a time of the form YYYY-MM-DD HH:MM:SS[.ffffff][Z|±HH:MM]`);
  const { wall, micros } = parseWall(m[1]!);
  let epochMs: number;
  if (m[2]) {
    const offset = m[2].toUpperCase() === 'Z' ? offsetZone(0) : parseTimeZone(m[2]);
    epochMs = resolveWall(wall, offset).epochMs;
  } else {
    const r = resolveWall(wall, zone);
    if (r.gap) {
      throw new TimeError(
        `${formatWall(wall)} does not exist in ${zone.name}: clocks moved forward ${r.gapSeconds / 60} minutes then; give an explicit offset (e.g. "${formatWall(wall)} ${formatOffset(offsetSecondsAt(r.epochMs - 86_400_000, zone))}")`,
      );
    }
    epochMs = r.epochMs;
  }
  const total = (epochMs / 1000) * 1_000_000 + micros;
  if (!Number.isSafeInteger(total)) throw new TimeError(`"${text}" is out of range`);
  return { micros: total, date: new Date(Math.floor(total / 1000)) };
}

/** `2026-12-01 15:04:05.123456 +08:00 (Asia/Shanghai)`: an instant with its offset (fraction only when non-zero). */
export function formatInstant(instant: number | Date, zone: TimeZone): string {
  const micros = typeof instant === 'number' ? instant : validTime(instant) * 1000;
  const ms = Math.floor(micros / 1000);
  const fraction = ((micros % 1_000_000) + 1_000_000) % 1_000_000;
  const date = new Date(ms);
  const text = `${formatInZone(date, zone)}${fraction ? `.${pad(fraction, 6)}` : ''} ${offsetString(date, zone)}`;
  return zone.kind === 'iana' ? `${text} (${zone.name})` : text;
}

/**
 * Whether two instants show the same wall-clock second in `zone`. A DATETIME read back from the metadata center is
 * the earlier instant of a wall time that occurs twice, so it equals the instant that was written only as a wall
 * time: compare it with another instant this way, not with getTime().
 */
export function sameWallSecond(a: Date, b: Date, zone: TimeZone): boolean {
  if (Number.isNaN(a.getTime()) || Number.isNaN(b.getTime())) return false; // as NaN !== NaN
  return formatInZone(a, zone) === formatInZone(b, zone);
}

/**
 * Every instant that shows the same wall time as `date` in `zone` (milliseconds kept), earliest first: one, or two
 * when a DST change repeats that wall time. The instants a DATETIME read back as `date` may have been written from.
 */
export function instantsAtWallOf(date: Date, zone: TimeZone): Date[] {
  const t = validTime(date);
  const ms = ((t % 1000) + 1000) % 1000;
  return instantsOfWall(wallOf(t, zone), zone).map((epochMs) => new Date(epochMs + ms));
}

/** A zone's offsets (seconds east of UTC) at noon on 15 January and on 15 July: they differ where DST is observed. */
export interface SeasonalOffsets {
  january: number;
  july: number;
}

/** The two wall times SeasonalOffsets are taken at, `YYYY-MM-DD HH:MM:SS` (never in a DST gap or fold). */
export function seasonalWallTimes(year: number): { january: string; july: string } {
  return { january: `${pad(year, 4)}-01-15 12:00:00`, july: `${pad(year, 4)}-07-15 12:00:00` };
}

export function seasonalOffsets(zone: TimeZone, year: number): SeasonalOffsets {
  const walls = seasonalWallTimes(year);
  const at = (text: string) => offsetSecondsAt(parseInZone(text, zone).getTime(), zone);
  return { january: at(walls.january), july: at(walls.july) };
}

export function observesDst(offsets: SeasonalOffsets): boolean {
  return offsets.january !== offsets.july;
}

export function sameSeasons(a: SeasonalOffsets, b: SeasonalOffsets): boolean {
  return a.january === b.january && a.july === b.july;
}

/** The process's own zone (its TZ, else the host's), when Intl names it as an IANA zone. */
export function processTimeZone(): TimeZone | undefined {
  try {
    return parseTimeZone(new Intl.DateTimeFormat().resolvedOptions().timeZone);
  } catch {
    return undefined;
  }
}

// Shown first when an error message suggests a zone at given offsets (any other zone at them comes after).
const wellKnownDstZones = [
  'Europe/London',
  'Europe/Berlin',
  'Europe/Athens',
  'America/New_York',
  'America/Chicago',
  'America/Denver',
  'America/Los_Angeles',
  'Australia/Sydney',
  'Pacific/Auckland',
];

/** An IANA zone at these offsets in `year` and at `nowOffsetSeconds` at `now`, to name as an example; undefined if none. */
export function exampleZoneAt(offsets: SeasonalOffsets, year: number, nowOffsetSeconds: number, now = new Date()): string | undefined {
  const fits = (name: string) => {
    const zone: TimeZone = { kind: 'iana', name };
    return sameSeasons(seasonalOffsets(zone, year), offsets) && offsetSecondsAt(now.getTime(), zone) === nowOffsetSeconds;
  };
  return [...wellKnownDstZones, ...Intl.supportedValuesOf('timeZone')].find(fits);
}

/** What BullMQ's cron parser (luxon) takes as `tz`: the IANA name, or `UTC±HH:MM` for a fixed offset. */
export function cronTimeZone(zone: TimeZone): string {
  return zone.kind === 'iana' ? zone.name : `UTC${zone.name}`;
}
