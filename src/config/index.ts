// Configuration is read once, at start-up, into a typed object. The file layout is the seed's clone.ini
// ([mysql-link], [metadata-link], [backup-conf]) plus sections the seed kept in code ([redis], [oss]) and
// ours ([schedule], [server], [restore]). Unknown sections or keys are errors: a typo must not silently fall back
// to a default. Values are checked with the code that will use them (codec levels, key files, time zones).
// May import: archive, crypto, time.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IniSyntaxError, parseIni, type IniEntry } from './ini.ts';
import { levelProblem } from '../archive/codec.ts';
import { codecNames, type CodecName } from '../naming.ts';
import { parseTimeZone, TimeError, type TimeZone } from '../time/zone.ts';
import { Keyring, KeyError, loadKeyFile, parseKeyHex, type EncryptionKey } from '../crypto/index.ts';
import { SetupError } from '../errors.ts';

export class ConfigError extends SetupError {}

export interface MysqlLinkConfig {
  host: string;
  port: number;
  user: string;
  password: string;
  charset: string;
}

/** How every mysql2 connection to a configured server is made (the data node, the metadata center). */
export function mysqlConnectionOptions(link: MysqlLinkConfig) {
  return {
    host: link.host,
    port: link.port,
    user: link.user,
    password: link.password,
    charset: link.charset,
    connectTimeout: 10_000,
    supportBigNumbers: true,
  };
}

export interface MetadataLinkConfig extends MysqlLinkConfig {
  database: string;
  /** The zone of every DATETIME in the metadata center; absent: the metadata server's own, found at connect. */
  timeZone?: TimeZone;
  /** How long a query keeps retrying while the metadata center is unreachable (src/metadata/retry.ts); default 300. */
  retrySeconds?: number;
}

/** How an upload is verified (see BackupConfig.verify). */
export const verifyModes = ['parts', 'download', 'size'] as const;
export type VerifyMode = (typeof verifyModes)[number];

export interface BackupConfig {
  backupPath?: string;
  binIndexPath?: string;
  tbInstanceId?: number;
  bucketName?: string;
  fullStorageDays: number;
  binlogStorageDays: number;
  isCluster: boolean;
  debug: boolean;
  compression: CodecName;
  /** Applies to `compression` and `binlog_compression`; absent: each codec's default (gzip 6, zstd 3). */
  compressionLevel?: number;
  /** Threads compressing an archive or a binlog (gzip blocks, zstd workers); default: every core. */
  compressionThreads: number;
  /** Limit on the archive's reads of the clone, MiB/s; 0: none. */
  maxReadMbPerS: number;
  /**
   * parts: every part's MD5 checked by the server on the way up, the sha256 computed while uploading, the stored
   * size and `mcb-sha256`; download: that and the object read back whole; size: the stored size and `mcb-sha256` only.
   */
  verify: VerifyMode;
  maxRpoMinutes: number;
  /** Stream the active binlog into the bucket as segments (docs/binlog-streaming.md); off by default. */
  binlogStream: boolean;
  /** How often the streamer uploads what is new, seconds. */
  binlogStreamIntervalSeconds: number;
  /** The server id the streamer's replication connection announces; absent: one derived from tb_instance_id (src/streamer). */
  binlogStreamServerId?: number;
  /** The achieved RPO (age of the newest instant the bucket is complete to) above which status alerts. */
  maxRpoSeconds: number;
  binlogCompression: CodecName;
  minFullBackups: number;
  keepBinlogsForOldestFull: boolean;
  stageAttempts: number;
  stageBackoffMs: number;
  shutdownGraceSeconds: number;
  /** A running stage's BullMQ lock; a dead worker's stage goes back to the queue about twice this long after. */
  stageLockSeconds: number;
}

export interface RedisNode {
  host: string;
  port: number;
}

/** Where Redis is: one server (url), a primary found through Sentinel, or a Cluster. */
export interface RedisConfig {
  /** Printable, without secrets: a single server's url, `redis+sentinel://h:p,h:p/<master>` or `redis+cluster://h:p,h:p`. */
  url: string;
  prefix: string;
  /** Sentinel: the sentinels asked for the current primary of `sentinelMaster`. */
  sentinels?: RedisNode[];
  sentinelMaster?: string;
  sentinelPassword?: string;
  /** Cluster: seed nodes (the rest are discovered); the prefix is then a hash tag such as `{mcb}`. */
  clusterNodes?: RedisNode[];
  /** The Redis servers' password (AUTH), for every mode; a single server's may instead be in its url. */
  password?: string;
}

export interface OssConfig {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region?: string;
  /** The preferred (and smallest) part size of multipart uploads; grows per upload to stay within maxParts. */
  partSizeBytes: number;
  /** The store's limit on parts per multipart upload (S3: 10,000). */
  maxParts?: number;
  /** Parts of one upload in flight at once; a stream's upload holds about (this + 1) × the part size, a file's no part. */
  uploadConcurrency?: number;
  /** Upload rate limit in MiB/s over all parts of an upload; 0 or absent: unlimited. */
  maxUploadMbPerS?: number;
}

/** The job types with a cron pattern in [schedule]: the producer keeps one repeatable job of each per instance. */
export const scheduledJobTypes = ['full', 'binlog', 'expire', 'verify'] as const;
export type ScheduledJobType = (typeof scheduledJobTypes)[number];

/** A cron pattern per scheduled job type (`verify`: the weekly restore test of the newest full backup). */
export interface ScheduleConfig extends Record<ScheduledJobType, string> {
  /** The zone the cron patterns run in; absent: the metadata time zone (docs/architecture.md, Time zones). */
  timezone?: TimeZone;
  syncIntervalSeconds: number;
}

/** [restore]: how this host runs a restore (`mcb restore run`) or a restore test (the `verify` job, on the worker).
 * The binary keys hold only what the file says: `--sid-root`/`--mysqld` flags, then MCB_SID_ROOT/MCB_MYSQLD, take
 * precedence over them (src/restore/binaries.ts). */
export interface RestoreConfig {
  /** A Debian root holding mysqld, mysqlbinlog and mysql, run through its own loader (no chroot). */
  sidRoot?: string;
  /** A MySQL 8.0.17+ mysqld: an absolute path, or a name looked up on PATH. */
  mysqld?: string;
  mysqlbinlog?: string;
  mysql?: string;
  /** Where the verify job makes its scratch datadir. Default [backup-conf] backup_path, else the OS temp dir. */
  scratchPath?: string;
  /** Account of the restored server (the backed-up instance's own accounts) used to replay binlogs and CHECK TABLE. */
  user: string;
  password: string;
  /** Ranged GETs in flight while a restore (or restore test) downloads an object. */
  downloadConcurrency: number;
  /** How a restore replays binlogs: the restored server's applier (falling back to mysqlbinlog when it cannot), or `mysqlbinlog | mysql`. */
  replayMethod: 'applier' | 'mysqlbinlog';
}

export interface ServerConfig {
  listen: { host: string; port: number };
  token?: string;
  user?: string;
  password?: string;
  /** With credentials configured, whether the read-only routes (status page, /api GETs, /metrics) are open anyway. */
  publicRead: boolean;
  staleFullHours: number;
  staleBinlogMinutes: number;
}

export interface Config {
  file: string;
  mysql?: MysqlLinkConfig;
  metadata: MetadataLinkConfig;
  backup: BackupConfig;
  redis: RedisConfig;
  oss?: OssConfig;
  schedule: ScheduleConfig;
  server: ServerConfig;
  restore: RestoreConfig;
  /** [encryption]: `current` encrypts every object written; all of them decrypt. Empty: nothing is encrypted. */
  encryption: Keyring;
}

type Section = Map<string, IniEntry>;

/** Reads one section, rejecting keys it does not know. */
class SectionReader {
  private readonly used = new Set<string>();
  constructor(
    private readonly file: string,
    private readonly name: string,
    private readonly section: Section | undefined,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  get present(): boolean {
    return this.section !== undefined;
  }

  private where(key: string): string {
    const line = this.section?.get(key)?.line;
    return `[${this.name}] ${key} in ${this.file}${line ? ` line ${line}` : ''}`;
  }

  fail(key: string, message: string): never {
    throw new ConfigError(`${this.where(key)}: ${message}`);
  }

  raw(key: string, envName?: string): string | undefined {
    this.used.add(key);
    const fromEnv = envName ? this.env[envName] : undefined;
    if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
    return this.section?.get(key)?.value;
  }

  string(key: string, fallback?: string, envName?: string): string {
    const value = this.raw(key, envName);
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    return this.fail(key, 'is required and missing');
  }

  optionalString(key: string, envName?: string): string | undefined {
    const value = this.raw(key, envName);
    return value === undefined || value === '' ? undefined : value;
  }

  secret(key: string, envName: string): string {
    // An empty password is legitimate (a local root without one), so only absence is an error.
    const value = this.raw(key, envName);
    if (value === undefined) return this.fail(key, `is required and missing (or set ${envName})`);
    return value;
  }

  int(key: string, fallback: number | undefined, min: number, max: number): number {
    const value = this.raw(key);
    if (value === undefined || value === '') {
      if (fallback !== undefined) return fallback;
      return this.fail(key, 'is required and missing');
    }
    if (!/^-?\d+$/.test(value)) this.fail(key, `must be a whole number, got "${value}"`);
    const n = Number(value);
    if (n < min || n > max) this.fail(key, `must be between ${min} and ${max}, got ${n}`);
    return n;
  }

  optionalInt(key: string, min: number, max: number): number | undefined {
    const value = this.raw(key);
    if (value === undefined || value === '') return undefined;
    return this.int(key, undefined, min, max);
  }

  bool(key: string, fallback: boolean): boolean {
    const value = this.raw(key)?.toLowerCase();
    if (value === undefined || value === '') return fallback;
    if (['on', 'true', 'yes', '1'].includes(value)) return true;
    if (['off', 'false', 'no', '0'].includes(value)) return false;
    return this.fail(key, `must be on or off, got "${value}"`);
  }

  timeZone(key: string): TimeZone | undefined {
    const value = this.optionalString(key);
    if (value === undefined) return undefined;
    try {
      return parseTimeZone(value);
    } catch (err) {
      if (err instanceof TimeError) this.fail(key, err.message);
      throw err;
    }
  }

  choice<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const value = this.raw(key)?.toLowerCase();
    if (value === undefined || value === '') return fallback;
    if (!(choices as readonly string[]).includes(value)) this.fail(key, `must be one of ${choices.join(', ')}, got "${value}"`);
    return value as T;
  }

  rejectUnknownKeys(): void {
    for (const key of this.section?.keys() ?? []) {
      if (!this.used.has(key)) this.fail(key, `unknown key (known keys: ${[...this.used].sort().join(', ')})`);
    }
  }
}

const knownSections = ['mysql-link', 'metadata-link', 'backup-conf', 'redis', 'oss', 'schedule', 'server', 'restore', 'encryption'] as const;

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const resolved = path.resolve(file);
  let text: string;
  try {
    text = readFileSync(resolved, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${resolved}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseConfig(text, resolved, env);
}

export function parseConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let doc;
  try {
    doc = parseIni(text);
  } catch (err) {
    if (err instanceof IniSyntaxError) throw new ConfigError(`${file} line ${err.line}: ${err.message}`);
    throw err;
  }
  for (const name of doc.keys()) {
    if (!(knownSections as readonly string[]).includes(name)) {
      throw new ConfigError(`unknown section [${name}] in ${file} (known sections: ${knownSections.join(', ')})`);
    }
  }
  /** Reads one section with `read`, then refuses the keys `read` did not ask for. */
  const section = <T>(name: (typeof knownSections)[number], read: (s: SectionReader) => T): T => {
    const reader = new SectionReader(file, name, doc.get(name), env);
    const value = read(reader);
    reader.rejectUnknownKeys();
    return value;
  };
  const mysql = section('mysql-link', (s) => (s.present ? readMysqlLink(s, 'MCB_MYSQL_PASSWORD') : undefined));
  const metadata = section('metadata-link', (s) => {
    if (!s.present) throw new ConfigError(`section [metadata-link] is required and missing in ${file}`);
    return readMetadataLink(s);
  });
  const backup = section('backup-conf', readBackup);
  const redis = section('redis', readRedis);
  const oss = section('oss', (s) => (s.present ? readOss(s) : undefined));
  const schedule = section('schedule', readSchedule);
  const server = section('server', readServer);
  const restore = section('restore', readRestore);
  const encryption = section('encryption', (s) => readEncryption(s, env));
  return { file, mysql, metadata, backup, redis, oss, schedule, server, restore, encryption };
}

function readMetadataLink(s: SectionReader): MetadataLinkConfig {
  const timeZone = s.timeZone('time_zone');
  const metadata: MetadataLinkConfig = {
    ...readMysqlLink(s, 'MCB_METADATA_PASSWORD'),
    database: s.string('database', 'op_service_db'),
    ...(timeZone ? { timeZone } : {}),
    // Five minutes rides out a restart or failover of the metadata center without spending a stage attempt.
    retrySeconds: s.int('retry_seconds', 300, 0, 86400),
  };
  if (!/^[A-Za-z0-9_$]+$/.test(metadata.database)) s.fail('database', 'must be a plain identifier (letters, digits, _ or $)');
  return metadata;
}

function readSchedule(s: SectionReader): ScheduleConfig {
  const schedule: ScheduleConfig = {
    full: s.string('full', '0 2 * * *'),
    binlog: s.string('binlog', '*/30 * * * *'),
    expire: s.string('expire', '30 9 * * *'),
    verify: s.string('verify', '0 4 * * 0'),
    timezone: s.timeZone('timezone'),
    syncIntervalSeconds: s.int('sync_interval_seconds', 60, 1, 86400),
  };
  for (const key of scheduledJobTypes) {
    const fields = schedule[key].trim().split(/\s+/).length;
    if (fields < 5 || fields > 6) s.fail(key, `must be a cron pattern with 5 or 6 fields, got "${schedule[key]}"`);
  }
  return schedule;
}

/**
 * key_file (or MCB_ENCRYPTION_KEY, the key's 64 hex characters) encrypts what is written; key_files lists older
 * keys, kept to read what they encrypted. The files are read here, once: a missing or malformed key stops start-up.
 */
function readEncryption(s: SectionReader, env: NodeJS.ProcessEnv): Keyring {
  const load = (key: string, file: string): EncryptionKey => {
    if (!path.isAbsolute(file)) s.fail(key, `must be an absolute path, got "${file}"`);
    try {
      return loadKeyFile(file);
    } catch (err) {
      if (err instanceof KeyError) s.fail(key, err.message);
      throw err;
    }
  };
  const keyFile = s.optionalString('key_file');
  const older = (s.optionalString('key_files') ?? '').split(',').map((f) => f.trim()).filter(Boolean).map((f) => load('key_files', f));
  const fromEnv = env.MCB_ENCRYPTION_KEY;
  let current: EncryptionKey | undefined;
  if (fromEnv !== undefined && fromEnv !== '') {
    try {
      current = parseKeyHex(fromEnv, 'MCB_ENCRYPTION_KEY');
    } catch (err) {
      if (err instanceof KeyError) throw new ConfigError(err.message);
      throw err;
    }
  } else if (keyFile !== undefined) current = load('key_file', keyFile);
  if (!current && older.length) {
    s.fail('key_files', 'lists keys to read older objects with, and needs key_file (or MCB_ENCRYPTION_KEY): the key new objects are encrypted with');
  }
  return new Keyring(current, older);
}

function readMysqlLink(s: SectionReader, passwordEnv: string): MysqlLinkConfig {
  return {
    host: s.string('host'),
    port: s.int('port', 3306, 1, 65535),
    user: s.string('user'),
    password: s.secret('password', passwordEnv),
    charset: s.string('charset', 'utf8mb4'),
  };
}

function readBackup(s: SectionReader): BackupConfig {
  const backupPath = s.optionalString('backup_path');
  if (backupPath !== undefined && !path.isAbsolute(backupPath)) s.fail('backup_path', `must be an absolute path, got "${backupPath}"`);
  const bucketName = s.optionalString('bucket_name');
  if (bucketName !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucketName)) {
    s.fail('bucket_name', `"${bucketName}" is not a valid S3 bucket name (3-63 lower-case letters, digits, dots, hyphens)`);
  }
  const compression = s.choice('compression', codecNames, 'gzip');
  const binlogCompression = s.choice('binlog_compression', codecNames, 'none');
  const maxRpoMinutes = s.int('max_rpo_minutes', 5, 0, 100000);
  const binlogStream = s.bool('binlog_stream', false);
  const binlogStreamIntervalSeconds = s.int('binlog_stream_interval_seconds', 10, 1, 3600);
  return {
    backupPath,
    binIndexPath: s.optionalString('bin_index_path'),
    tbInstanceId: s.optionalInt('tb_instance_id', 1, Number.MAX_SAFE_INTEGER),
    bucketName,
    fullStorageDays: s.int('full_storage_days', 7, 1, 36500),
    binlogStorageDays: s.int('binlog_storage_days', 7, 1, 36500),
    isCluster: s.bool('is_cluster', false),
    debug: s.bool('debug', false),
    compression,
    compressionLevel: readCompressionLevel(s, { compression, binlog_compression: binlogCompression }),
    compressionThreads: s.int('compression_threads', os.availableParallelism(), 1, 1024),
    maxReadMbPerS: s.int('max_read_mb_per_s', 0, 0, 100_000),
    verify: s.choice('verify', verifyModes, 'parts'),
    maxRpoMinutes,
    binlogStream,
    binlogStreamIntervalSeconds,
    binlogStreamServerId: s.optionalInt('binlog_stream_server_id', 1, 4294967295),
    // The alert threshold: by default a minute above what the setup promises.
    maxRpoSeconds: s.int('max_rpo_seconds', (binlogStream ? binlogStreamIntervalSeconds : maxRpoMinutes * 60) + 60, 1, 100 * 86400),
    binlogCompression,
    minFullBackups: s.int('min_full_backups', 1, 0, 1000),
    keepBinlogsForOldestFull: s.bool('keep_binlogs_for_oldest_full', true),
    // 5 attempts, 30 s doubling: a stage rides out about 7.5 minutes of storage or network trouble.
    stageAttempts: s.int('stage_attempts', 5, 1, 100),
    stageBackoffMs: s.int('stage_backoff_ms', 30_000, 0, 3_600_000),
    shutdownGraceSeconds: s.int('shutdown_grace_seconds', 30, 0, 86400),
    // 60 s rides out a busy event loop during a big tar; a killed worker's stage is re-run after about 2 × this.
    stageLockSeconds: s.int('stage_lock_seconds', 60, 2, 3600),
  };
}

/** compression_level must suit every codec it applies to (gzip 1-9, zstd 1-19). */
function readCompressionLevel(s: SectionReader, uses: Record<string, CodecName>): number | undefined {
  const level = s.optionalInt('compression_level', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  if (level === undefined) return undefined;
  for (const [key, codec] of Object.entries(uses)) {
    const problem = levelProblem(codec, level);
    if (problem) s.fail('compression_level', `${problem}, and ${key} = ${codec}`);
  }
  if (level < 1 || level > 19) s.fail('compression_level', `must be between 1 and 19 (gzip 1-9, zstd 1-19), got ${level}`);
  return level;
}

function readRedis(s: SectionReader): RedisConfig {
  const url = s.optionalString('url', 'MCB_REDIS_URL');
  const sentinelList = s.optionalString('sentinels');
  const clusterList = s.optionalString('cluster_nodes');
  const given = [url !== undefined && 'url', sentinelList !== undefined && 'sentinels', clusterList !== undefined && 'cluster_nodes'].filter(
    (k): k is string => !!k,
  );
  if (given.length > 1) s.fail(given[1]!, `give one of url (or MCB_REDIS_URL), sentinels or cluster_nodes, not ${given.join(' and ')}`);
  const sentinelMaster = s.optionalString('sentinel_master');
  const sentinelPassword = s.optionalString('sentinel_password', 'MCB_REDIS_SENTINEL_PASSWORD');
  const password = s.optionalString('password', 'MCB_REDIS_PASSWORD');
  const prefix = s.string('prefix', clusterList !== undefined ? '{mcb}' : 'mcb');
  if (prefix.includes(':')) s.fail('prefix', 'must not contain ":"');

  if (sentinelList === undefined) {
    if (sentinelMaster !== undefined) s.fail('sentinel_master', 'is only used with sentinels');
    if (sentinelPassword !== undefined) s.fail('sentinel_password', 'is only used with sentinels');
  }
  if (sentinelList !== undefined) {
    if (sentinelMaster === undefined) s.fail('sentinel_master', 'is required with sentinels (the name the sentinels monitor, e.g. mymaster)');
    const sentinels = readRedisNodes(s, 'sentinels', sentinelList, 26379);
    return { url: `redis+sentinel://${nodeList(sentinels)}/${sentinelMaster}`, prefix, sentinels, sentinelMaster, sentinelPassword, password };
  }
  if (clusterList !== undefined) {
    // BullMQ's scripts touch several keys of a queue at once; Redis Cluster runs them only when every key hashes
    // to one slot, which a prefix holding a hash tag ensures.
    if (!/^[^{]*\{[^}]+\}/.test(prefix)) {
      s.fail('prefix', `must hold a hash tag in braces with cluster_nodes, e.g. {mcb} (BullMQ needs every key of a queue in one cluster slot), got "${prefix}"`);
    }
    const clusterNodes = readRedisNodes(s, 'cluster_nodes', clusterList, 6379);
    return { url: `redis+cluster://${nodeList(clusterNodes)}`, prefix, clusterNodes, password };
  }
  const single = url ?? 'redis://127.0.0.1:6379';
  if (!/^rediss?:\/\//.test(single)) s.fail('url', `must start with redis:// or rediss://, got "${redactUrl(single)}"`);
  if (password !== undefined && /\/\/[^@/]*@/.test(single)) s.fail('password', 'the url already holds credentials: give the password in one place');
  return { url: single, prefix, password };
}

/** `host:port,host:port` (IPv6 as `[::1]:port`); a missing port is `defaultPort`. */
function readRedisNodes(s: SectionReader, key: string, list: string, defaultPort: number): RedisNode[] {
  const nodes = list.split(',').map((item) => {
    const m = /^(?:\[([^\]]+)\]|([^:\s[\]]+))(?::(\d+))?$/.exec(item.trim());
    if (!m) return s.fail(key, `must be host:port[,host:port...], got "${item.trim()}"`);
    const port = m[3] ? Number(m[3]) : defaultPort;
    if (port < 1 || port > 65535) s.fail(key, `port ${port} is out of range`);
    return { host: (m[1] ?? m[2])!, port };
  });
  if (!nodes.length) s.fail(key, 'names no node');
  return nodes;
}

function nodeList(nodes: RedisNode[]): string {
  return nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',');
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

function readOss(s: SectionReader): OssConfig {
  const endpoint = s.string('endpoint');
  const useSSL = s.bool('secure', false);
  const match = /^([^:/\s]+)(?::(\d+))?$/.exec(endpoint);
  if (!match) s.fail('endpoint', `must be host or host:port without a scheme, got "${endpoint}"`);
  const port = match[2] ? Number(match[2]) : useSSL ? 443 : 80;
  if (port < 1 || port > 65535) s.fail('endpoint', `port ${port} is out of range`);
  return {
    endPoint: match[1]!,
    port,
    useSSL,
    accessKey: s.string('access_key', undefined, 'MCB_OSS_ACCESS_KEY'),
    secretKey: s.string('secret_key', undefined, 'MCB_OSS_SECRET_KEY'),
    region: s.optionalString('region'),
    // One part is held in memory; 16 MiB keeps a worker's memory flat for backups up to 156 GiB (10,000 parts),
    // beyond which each upload computes a larger part size (src/storage/part-size.ts).
    partSizeBytes: s.int('part_size_mb', 16, 5, 5120) * 1024 * 1024,
    // Lower only for a store configured with a lower limit than S3's (e.g. Ceph's rgw_multipart_part_upload_limit).
    maxParts: s.int('max_parts', 10_000, 1, 10_000),
    // Parts in flight. A stream's upload holds about (upload_concurrency + 1) parts in memory; a file's none.
    uploadConcurrency: s.int('upload_concurrency', 4, 1, 64),
    maxUploadMbPerS: s.int('max_upload_mb_per_s', 0, 0, 100_000),
  };
}

function readRestore(s: SectionReader): RestoreConfig {
  const absolute = (key: string) => {
    const value = s.optionalString(key);
    if (value !== undefined && !path.isAbsolute(value)) s.fail(key, `must be an absolute path, got "${value}"`);
    return value;
  };
  // A program: an absolute path, or a bare name looked up on PATH (a relative path would depend on the cwd).
  const program = (key: string) => {
    const value = s.optionalString(key);
    if (value !== undefined && !path.isAbsolute(value) && value.includes('/')) s.fail(key, `must be an absolute path or a program name on PATH, got "${value}"`);
    return value;
  };
  const sidRoot = absolute('sid_root');
  const mysqld = program('mysqld');
  const mysqlbinlog = program('mysqlbinlog');
  const mysqlClient = program('mysql');
  if (sidRoot !== undefined && mysqld !== undefined) s.fail('mysqld', 'give sid_root or mysqld, not both');
  if (sidRoot !== undefined && (mysqlbinlog ?? mysqlClient) !== undefined) {
    s.fail(mysqlbinlog !== undefined ? 'mysqlbinlog' : 'mysql', 'sid_root provides mysqlbinlog and mysql; set them only with mysqld');
  }
  return {
    sidRoot,
    mysqld,
    mysqlbinlog,
    mysql: mysqlClient,
    scratchPath: absolute('scratch_path'),
    user: s.string('user', 'root'),
    // An empty password is legitimate (a restored root without one, the default).
    password: s.raw('password', 'MCB_RESTORE_PASSWORD') ?? '',
    downloadConcurrency: s.int('download_concurrency', 4, 1, 64),
    replayMethod: s.choice('replay_method', ['applier', 'mysqlbinlog'] as const, 'applier'),
  };
}

function readServer(s: SectionReader): ServerConfig {
  const listen = s.string('listen', '127.0.0.1:8080');
  const match = /^(.+):(\d+)$/.exec(listen);
  if (!match) s.fail('listen', `must be host:port, got "${listen}"`);
  const user = s.optionalString('user', 'MCB_SERVER_USER');
  const password = s.optionalString('password', 'MCB_SERVER_PASSWORD');
  if ((user === undefined) !== (password === undefined)) s.fail(user ? 'password' : 'user', 'user and password must be set together');
  return {
    listen: { host: match[1]!.replace(/^\[|\]$/g, ''), port: Number(match[2]) },
    token: s.optionalString('token', 'MCB_SERVER_TOKEN'),
    user,
    password,
    publicRead: s.bool('public_read', false),
    staleFullHours: s.int('stale_full_hours', 26, 1, 100000),
    staleBinlogMinutes: s.int('stale_binlog_minutes', 60, 1, 1000000),
  };
}

/** The sections a command needs, with an error that says what to add. */
export function requireMysqlLink(config: Config): MysqlLinkConfig {
  if (!config.mysql) throw new ConfigError(`section [mysql-link] is required for this command and missing in ${config.file}`);
  return config.mysql;
}

export function requireOss(config: Config): OssConfig & { bucket: string } {
  if (!config.oss) throw new ConfigError(`section [oss] is required for this command and missing in ${config.file}`);
  return { ...config.oss, bucket: requireBackupKey(config, 'bucketName', 'bucket_name') };
}

export function requireBackupKey<K extends 'backupPath' | 'tbInstanceId' | 'bucketName'>(
  config: Config,
  key: K,
  iniKey: string,
): NonNullable<BackupConfig[K]> {
  const value = config.backup[key];
  if (value === undefined || value === null) {
    throw new ConfigError(`[backup-conf] ${iniKey} in ${config.file}: is required for this command and missing`);
  }
  return value as NonNullable<BackupConfig[K]>;
}

/** A copy safe to print or log: every secret replaced. */
export function redactConfig(config: Config): unknown {
  const hide = (v: string | undefined) => (v === undefined ? undefined : '***');
  return {
    ...config,
    mysql: config.mysql && { ...config.mysql, password: hide(config.mysql.password) },
    metadata: { ...config.metadata, password: hide(config.metadata.password) },
    redis: {
      ...config.redis,
      url: redactUrl(config.redis.url),
      password: hide(config.redis.password),
      sentinelPassword: hide(config.redis.sentinelPassword),
    },
    oss: config.oss && { ...config.oss, accessKey: hide(config.oss.accessKey), secretKey: hide(config.oss.secretKey) },
    server: { ...config.server, token: hide(config.server.token), password: hide(config.server.password) },
    restore: { ...config.restore, password: config.restore.password ? '***' : '' },
  };
}

/** The environment variables that may hold a secret (a password, a storage key, the encryption key). */
export const secretEnvNames = [
  'MCB_MYSQL_PASSWORD',
  'MCB_METADATA_PASSWORD',
  'MCB_REDIS_URL',
  'MCB_REDIS_PASSWORD',
  'MCB_REDIS_SENTINEL_PASSWORD',
  'MCB_OSS_ACCESS_KEY',
  'MCB_OSS_SECRET_KEY',
  'MCB_SERVER_TOKEN',
  'MCB_SERVER_PASSWORD',
  'MCB_RESTORE_PASSWORD',
  'MCB_ENCRYPTION_KEY',
] as const;

/**
 * The environment for a program we start (mysqld, mysqlbinlog, mysql): ours without the secrets above. A child
 * such as mysqld may run as another account, which can read its own process's environment.
 */
export function childEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of secretEnvNames) delete out[name];
  return out;
}
