// Object names are part of the seed's contract: restore scripts and DBAs look for these exact names. A leaf every
// folder may import: names, backup uuids and human sizes, nothing that does I/O.
// May import: time.
import { createHash } from 'node:crypto';
import { formatCompact, type TimeZone } from './time/zone.ts';

/** The compressions an object name can say (`.gz`, `.zst`, no suffix); src/archive has a codec for each. */
export const codecNames = ['gzip', 'zstd', 'none'] as const;
export type CodecName = (typeof codecNames)[number];

/**
 * YYYYmmddHHMMSS, the seed's format, in the metadata time zone (the seed wrote the worker's local time; one zone
 * for every worker keeps names comparable with the DATETIMEs beside them).
 */
export function compactTimestamp(d: Date, zone: TimeZone): string {
  return formatCompact(d, zone);
}

/** bak_<tb_instance_id>_<YYYYmmddHHMMSS>: the clone directory name and the archive's top-level folder. */
export function fullBackupBaseName(instanceId: number, startedAt: Date, zone: TimeZone): string {
  return `bak_${instanceId}_${compactTimestamp(startedAt, zone)}`;
}

/** bak_<id>_<ts>.tar.gz (gzip), .tar.zst (zstd) or .tar (none), and `.enc` after it when encrypted. */
export function fullBackupObjectName(instanceId: number, startedAt: Date, zone: TimeZone, extension: string): string {
  return `${fullBackupBaseName(instanceId, startedAt, zone)}.tar${extension}`;
}

/** log_<tb_instance_id>_<binlog file name>[.gz|.zst][.enc] */
export function binlogObjectName(instanceId: number, binlogFile: string, extension = ''): string {
  return `log_${instanceId}_${binlogFile}${extension}`;
}

/**
 * seg_<tb_instance_id>_<binlog file>.<series start>_<from>-<to>[.gz|.zst][.enc]: bytes [from, to) of a binlog that
 * was still being written, uploaded by the streamer (docs/binlog-streaming.md). The series start (epoch seconds of
 * the file's first event) keeps files of another series apart; the range makes the name unique and lets a restore
 * without the metadata center chain the segments by name alone.
 */
export function binlogSegmentObjectName(instanceId: number, binlogFile: string, seriesStart: number, from: number, to: number, extension = ''): string {
  return `${binlogSegmentObjectPrefix(instanceId, binlogFile, seriesStart)}${from}-${to}${extension}`;
}

/** What the names of every segment of one binlog file (of one series) start with. */
export function binlogSegmentObjectPrefix(instanceId: number, binlogFile: string, seriesStart: number): string {
  return `seg_${instanceId}_${binlogFile}.${seriesStart}_`;
}

const MAX_SERIES_SUFFIXES = 99;

/**
 * The names a binlog may take, in order of preference, so that no binlog is stored on top of another: the seed's
 * name; then, for a binlog of another series (another server, or after RESET BINARY LOGS) holding it,
 * `<file>.<start>` (the epoch seconds of its first event); then `<file>.<start * 1000 + n>`.
 */
export function* binlogObjectNameCandidates(instanceId: number, file: string, startSeconds: number, extension: string): Generator<string> {
  yield binlogObjectName(instanceId, file, extension);
  yield binlogObjectName(instanceId, `${file}.${startSeconds}`, extension);
  for (let n = 1; n <= MAX_SERIES_SUFFIXES; n++) yield binlogObjectName(instanceId, `${file}.${startSeconds * 1000 + n}`, extension);
}

/** The binlog's own file name from the `binlogFile` of a parsed object name: without a series suffix (9+ digits). */
export function binlogFileOfObject(binlogFile: string): string {
  return /^(.*\.\d+)\.\d{9,}$/.exec(binlogFile)?.[1] ?? binlogFile;
}

/**
 * The archive a seed-era full row names: the seed's script recorded the archive (`bak_<id>_<ts>.tar.gz`) or its
 * folder (`bak_<id>_<ts>`, archived as `.tar.gz`) in backup_name. Undefined when the name is neither.
 */
export function seedFullObjectName(backupName: string | null | undefined): string | undefined {
  const name = backupName?.trim();
  if (!name) return undefined;
  if (/^bak_\d+_\d{14}$/.test(name)) return `${name}.tar.gz`;
  if (/^bak_\d+_\d{14}\.tar(\.gz)?$/.test(name)) return name;
  return undefined;
}

const fullNamePattern = /^bak_(\d+)_(\d{14})\.tar(\.gz|\.zst)?(\.enc)?$/;
const binlogNamePattern = /^log_(\d+)_(.+?)(\.gz|\.zst)?(\.enc)?$/;
const segmentNamePattern = /^seg_(\d+)_(.+\.\d+)\.(\d+)_(\d+)-(\d+)(\.gz|\.zst)?(\.enc)?$/;

function compressionOfSuffix(suffix: string | undefined): CodecName {
  return suffix === '.gz' ? 'gzip' : suffix === '.zst' ? 'zstd' : 'none';
}

/** The compression of an object, from its name: `.gz` gzip, `.zst` zstd (either before `.enc`), anything else none. */
export function compressionOfObjectName(name: string): CodecName {
  return compressionOfSuffix(/(\.gz|\.zst)(\.enc)?$/.exec(name)?.[1]);
}

/** An object whose name ends in `.enc` is encrypted (src/crypto); every other one is not. */
export function isEncryptedObjectName(name: string): boolean {
  return name.endsWith('.enc');
}

export type ParsedObjectName =
  | { type: 'full'; instanceId: number; timestamp: string; compression: CodecName; encrypted: boolean }
  | { type: 'binlog'; instanceId: number; binlogFile: string; compression: CodecName; encrypted: boolean }
  | { type: 'segment'; instanceId: number; binlogFile: string; seriesStart: number; from: number; to: number; compression: CodecName; encrypted: boolean };

export function parseObjectName(name: string): ParsedObjectName | undefined {
  const full = fullNamePattern.exec(name);
  if (full) return { type: 'full', instanceId: Number(full[1]), timestamp: full[2]!, compression: compressionOfSuffix(full[3]), encrypted: !!full[4] };
  const seg = segmentNamePattern.exec(name);
  if (seg) {
    const [, id, binlogFile, seriesStart, from, to, codec, enc] = seg;
    return { type: 'segment', instanceId: Number(id), binlogFile: binlogFile!, seriesStart: Number(seriesStart), from: Number(from), to: Number(to), compression: compressionOfSuffix(codec), encrypted: !!enc };
  }
  const log = binlogNamePattern.exec(name);
  if (log) return { type: 'binlog', instanceId: Number(log[1]), binlogFile: log[2]!, compression: compressionOfSuffix(log[3]), encrypted: !!log[4] };
  return undefined;
}

/** The object key without its `.tar[.gz|.zst][.enc]` suffix: the archive's top-level folder. */
export function fullBackupBaseOf(objectKey: string): string {
  return objectKey.replace(/\.tar(\.gz|\.zst)?(\.enc)?$/, '');
}

/**
 * A backup uuid derived from the job that started it, so a retried start job finds the row it already made
 * instead of inserting a second one. Formatted like a v4 uuid (char(36) in the seed's schema).
 */
export function backupUuidFor(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Human-readable size for the seed's varchar(10) backup_size column (e.g. 1.5G). */
export function humanBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value}B` : `${value >= 100 ? value.toFixed(0) : value.toFixed(1)}${units[unit]}`;
}
