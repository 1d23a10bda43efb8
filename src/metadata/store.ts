// The metadata center: tb_instance (what to back up) and full_backup_metadata (every backup and where it
// stands). All SQL is parameterised; column names come only from the fixed maps below. Every DATETIME is read
// and written in one time zone, `timeZone` (zoned-pool.ts, docs/architecture.md "Time zones").
import mysql, { type Connection, type ConnectionOptions, type Pool, type ResultSetHeader, type RowDataPacket } from 'mysql2/promise';
import { mysqlConnectionOptions, type MetadataLinkConfig } from '../config/index.ts';
import { observesDst, offsetString, processTimeZone, seasonalOffsets, seasonalWallTimes, type TimeZone } from '../time/zone.ts';
import { BackupState, finalStates, inProgressStates } from './states.ts';
import { HeldLock, metadataLockName, type AcquireOptions } from './locks.ts';
import type { Logger } from '../log/index.ts';
import { defaultRetrySeconds, withConnectionRetry, type RetryPolicy } from './retry.ts';
import { serverKeepsZone, serverSeasons, serverTimeZone, serverZoneLabel, zonedPool, zonedReadOptions, type ServerClock } from './zoned-pool.ts';

export interface InstanceRow {
  id: number;
  instanceId: string;
  instanceName: string;
  stringLink: string;
  dbPort: number;
  systemName: string;
  ownerName: string;
  dbType: string;
  instanceType: string;
  serviceLine: string;
  enabled: number;
  isClone: boolean;
}

export interface BackupRow {
  id: number;
  backupUuid: string;
  tbInstanceId: string;
  state: BackupState;
  startTime: Date | null;
  endTime: Date | null;
  backupType: 'full' | 'binlog';
  backupSize: string;
  backupPath: string;
  backupName: string;
  bucketName: string;
  createdAt: Date;
  updatedAt: Date;
  isDelete: number;
  overdueDay: number | null;
  info: string | null;
  backupBytes: number | null;
  /** Full rows: bytes of the clone the archive was made from (sql/007); NULL on older rows and binlog rows. */
  sourceBytes: number | null;
  sha256: string | null;
  objectKey: string | null;
  compression: string | null;
  /** The id of the key the object is encrypted with (sql/008); NULL: not encrypted. */
  encryptionKeyId: string | null;
  workerHost: string | null;
  jobId: string | null;
  stageStartedAt: Date | null;
  errorDetail: string | null;
  binlogFile: string | null;
  /** Full rows: the clone's position in binlogFile (sql/004); NULL on older rows and binlog rows. */
  binlogPosition: number | null;
  gtidSet: string | null;
  /** Binlog rows: server_uuid of the server whose binlog it is (sql/005); NULL on older rows and rows the seed wrote. */
  serverUuid: string | null;
  verifiedAt: Date | null;
  verifyState: string | null;
}

/** Columns a caller may set, camelCase → column. */
const backupColumns = {
  state: 'state',
  startTime: 'start_time',
  endTime: 'end_time',
  backupType: 'backup_type',
  backupSize: 'backup_size',
  backupPath: 'backup_path',
  backupName: 'backup_name',
  bucketName: 'bucket_name',
  isDelete: 'is_delete',
  overdueDay: 'overdue_day',
  info: 'info',
  backupBytes: 'backup_bytes',
  sourceBytes: 'source_bytes',
  sha256: 'sha256',
  objectKey: 'object_key',
  compression: 'compression',
  encryptionKeyId: 'encryption_key_id',
  workerHost: 'worker_host',
  jobId: 'job_id',
  errorDetail: 'error_detail',
  binlogFile: 'binlog_file',
  binlogPosition: 'binlog_position',
  gtidSet: 'gtid_set',
  serverUuid: 'server_uuid',
  verifiedAt: 'verified_at',
  verifyState: 'verify_state',
} as const satisfies Partial<Record<keyof BackupRow, string>>;

export type BackupFields = Partial<Pick<BackupRow, keyof typeof backupColumns>>;

export class MetadataError extends Error {}

export class IllegalTransitionError extends MetadataError {
  constructor(
    readonly backupUuid: string,
    readonly from: string | undefined,
    readonly to: string,
  ) {
    super(
      from === undefined
        ? `backup ${backupUuid} has no metadata row`
        : `backup ${backupUuid} is in state ${from}; it cannot move to ${to}`,
    );
  }
}

const INFO_MAX = 2000;

export interface NewInstance {
  instanceId: string;
  instanceName: string;
  stringLink: string;
  dbPort: number;
  systemName?: string;
  ownerName?: string;
  serviceLine?: string;
  isClone: boolean;
}

export interface BackupFilter {
  instanceId?: number;
  type?: 'full' | 'binlog';
  states?: readonly BackupState[];
  limit?: number;
}

/** The metadata time zone and where it came from (for one log line at start-up). */
export interface MetadataTimeZone {
  zone: TimeZone;
  source: string;
  /** The session time_zone every connection sets, when [metadata-link] time_zone is given. */
  sessionTimeZone?: string;
}

export class MetadataStore {
  private constructor(
    /** Writes Date parameters and reads DATETIMEs in `timeZone` (zoned-pool.ts): use it for every query. */
    readonly pool: Pool,
    readonly link: MetadataLinkConfig,
    readonly timeZoneInfo: MetadataTimeZone,
    private readonly retries = new AbortController(),
    /** How a lock's own connection is opened through an outage (the pool's queries use the same policy). */
    private readonly retry?: RetryPolicy,
  ) {}

  /** The one time zone of the metadata center's DATETIMEs, object names and printed times. */
  get timeZone(): TimeZone {
    return this.timeZoneInfo.zone;
  }

  /**
   * Connects and checks the login and the schema, so a wrong password fails here with a clear message. The time
   * zone is settled here, once: [metadata-link] time_zone, else the server's own.
   */
  static async connect(link: MetadataLinkConfig, opts: { log?: Logger; retrySeconds?: number } = {}): Promise<MetadataStore> {
    let info: MetadataTimeZone;
    const probe = await mysql.createConnection(connectionOptions(link)).catch((err: unknown) => {
      throw new MetadataError(describeConnectError(err, link));
    });
    try {
      await probe.query('SELECT 1 FROM full_backup_metadata LIMIT 0');
      info = await settleTimeZone(probe, link.timeZone);
    } catch (err) {
      throw new MetadataError(describeConnectError(err, link));
    } finally {
      await probe.end().catch(() => undefined);
    }
    const pool = mysql.createPool({ ...connectionOptions(link), ...zonedReadOptions(info.zone), connectionLimit: 4 });
    const session = info.sessionTimeZone;
    if (session !== undefined) {
      // The session zone makes NOW() and the CURRENT_TIMESTAMP defaults write in the configured zone too. The SET is
      // queued before any query of the new connection; a failure (already checked above) fails those queries.
      pool.pool.on('connection', (conn) => conn.query('SET time_zone = ?', [session], () => undefined));
    }
    const retries = new AbortController();
    const retrySeconds = opts.retrySeconds ?? link.retrySeconds ?? defaultRetrySeconds;
    const policy = retryPolicy(link, retrySeconds, retries.signal, opts.log);
    return new MetadataStore(zonedPool(pool, info.zone, policy), link, info, retries, policy);
  }

  async close(): Promise<void> {
    this.stopRetrying();
    await this.pool.end();
  }

  /** One round trip through the pool (/healthz); rejects with the pool's error when the metadata center does not answer. */
  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  /** Queries waiting for an unreachable metadata center fail now instead of at [metadata-link] retry_seconds. */
  stopRetrying(): void {
    this.retries.abort();
  }

  /**
   * Runs fn while holding a metadata-center named lock (GET_LOCK; name it with lockName), so check-then-insert is
   * atomic across workers. The lock is held on a connection of its own, not one of the pool fn queries through,
   * and dies with it, so a crashed worker cannot leave it held (src/metadata/locks.ts).
   */
  async withLock<T>(name: string, fn: (lock: HeldLock) => Promise<T>, timeoutSeconds = 30): Promise<T> {
    const lock = await this.acquireLock(name, { waitSeconds: timeoutSeconds });
    if (!lock) throw new MetadataError(`could not take metadata lock ${name} within ${timeoutSeconds} s`);
    try {
      return await fn(lock);
    } finally {
      await lock.release();
    }
  }

  /** Takes a named lock on a connection of its own; undefined when it stayed busy for opts.waitSeconds. */
  acquireLock(name: string, opts: AcquireOptions): Promise<HeldLock | undefined> {
    // A stage that starts while the metadata center is away waits for it here too, instead of spending an attempt.
    const connect = () => mysql.createConnection(connectionOptions(this.link));
    const open = () =>
      (this.retry ? withConnectionRetry(connect, this.retry) : connect()).catch((err: unknown) => {
        throw new MetadataError(describeConnectError(err, this.link));
      });
    return HeldLock.acquire(open, name, opts);
  }

  /** A named lock's name, namespaced by this metadata database (metadataLockName). */
  lockName(kind: string, key: string | number): string {
    return metadataLockName(this.link.database, kind, key);
  }

  // ---- instances ----

  async getInstance(id: number): Promise<InstanceRow | undefined> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM tb_instance WHERE id = ?', [id]);
    return rows[0] ? toInstance(rows[0]) : undefined;
  }

  async listInstances(opts: { cloneOnly?: boolean } = {}): Promise<InstanceRow[]> {
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT * FROM tb_instance ${opts.cloneOnly ? 'WHERE is_clone = 1' : ''} ORDER BY id`,
    );
    return rows.map(toInstance);
  }

  async addInstance(i: NewInstance): Promise<number> {
    const [res] = await this.pool.query<ResultSetHeader>(
      `INSERT INTO tb_instance (instance_id, instance_name, string_link, db_port, system_name, owner_name,
         db_type, instance_type, service_line, enabled, is_clone)
       VALUES (?, ?, ?, ?, ?, ?, 'MySQL', 'machine', ?, 0, ?)`,
      [
        i.instanceId,
        i.instanceName,
        i.stringLink,
        i.dbPort,
        i.systemName ?? '未规划',
        i.ownerName ?? '未分配',
        i.serviceLine ?? '未分配',
        i.isClone ? 1 : 0,
      ],
    );
    return res.insertId;
  }

  async setCloneEnabled(id: number, enabled: boolean): Promise<boolean> {
    const [res] = await this.pool.query<ResultSetHeader>('UPDATE tb_instance SET is_clone = ? WHERE id = ?', [enabled ? 1 : 0, id]);
    return res.affectedRows === 1;
  }

  async removeInstance(id: number): Promise<boolean> {
    const [res] = await this.pool.query<ResultSetHeader>('DELETE FROM tb_instance WHERE id = ?', [id]);
    return res.affectedRows === 1;
  }

  // ---- backups ----

  /** Inserts a backup row unless one with this uuid exists (a retried job must not create a second row). */
  async createBackup(row: { backupUuid: string; tbInstanceId: number; state: BackupState } & BackupFields): Promise<BackupRow> {
    const fields: Record<string, unknown> = { ...row };
    delete fields.backupUuid;
    delete fields.tbInstanceId;
    const { columns, values } = columnsFor(fields as BackupFields);
    await this.pool.query(
      `INSERT IGNORE INTO full_backup_metadata (backup_uuid, tb_instance_id, ${columns.join(', ')}, stage_started_at)
       VALUES (?, ?, ${columns.map(() => '?').join(', ')}, NOW())`,
      [row.backupUuid, String(row.tbInstanceId), ...values],
    );
    const created = await this.getBackup(row.backupUuid);
    if (!created) throw new MetadataError(`backup row ${row.backupUuid} was not created`);
    return created;
  }

  async getBackup(uuid: string): Promise<BackupRow | undefined> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT * FROM full_backup_metadata WHERE backup_uuid = ?', [uuid]);
    return rows[0] ? toBackup(rows[0]) : undefined;
  }

  /** Whether any row already has this backup_name (names carry whole seconds, so two starts can meet). */
  async backupNameTaken(name: string): Promise<boolean> {
    const [rows] = await this.pool.query<RowDataPacket[]>('SELECT 1 FROM full_backup_metadata WHERE backup_name = ? LIMIT 1', [name]);
    return rows.length > 0;
  }

  async listBackups(filter: BackupFilter = {}): Promise<BackupRow[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.instanceId !== undefined) {
      where.push('tb_instance_id = ?');
      params.push(String(filter.instanceId));
    }
    if (filter.type) {
      where.push('backup_type = ?');
      params.push(filter.type);
    }
    if (filter.states?.length) {
      where.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
      params.push(...filter.states);
    }
    params.push(filter.limit ?? 100);
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT * FROM full_backup_metadata ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`,
      params,
    );
    return rows.map(toBackup);
  }

  /** Full backups of an instance that are still running (any state before Completed/Error). */
  async runningFullBackups(instanceId: number): Promise<BackupRow[]> {
    return this.listBackups({ instanceId, type: 'full', states: inProgressStates });
  }

  /**
   * Moves a row to `to` only if it is in one of `from` (compare-and-set), and sets `fields` with it.
   * Throws IllegalTransitionError otherwise, naming the state it is really in.
   */
  async transition(uuid: string, from: readonly BackupState[], to: BackupState, fields: BackupFields = {}): Promise<BackupRow> {
    const { columns, values } = columnsFor({ ...fields, state: to });
    const [res] = await this.pool.query<ResultSetHeader>(
      `UPDATE full_backup_metadata SET ${columns.map((c) => `${c} = ?`).join(', ')},
         stage_started_at = IF(state = ?, stage_started_at, NOW())
       WHERE backup_uuid = ? AND state IN (${from.map(() => '?').join(', ')})`,
      [...values, to, uuid, ...from],
    );
    const row = await this.getBackup(uuid);
    if (row && res.affectedRows === 0 && alreadyApplied(row, to, fields)) return row;
    if (res.affectedRows !== 1 || !row) throw new IllegalTransitionError(uuid, row?.state, to);
    return row;
  }

  /** Sets fields without changing the state. */
  async update(uuid: string, fields: BackupFields): Promise<void> {
    const { columns, values } = columnsFor(fields);
    if (!columns.length) return;
    await this.pool.query(`UPDATE full_backup_metadata SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE backup_uuid = ?`, [
      ...values,
      uuid,
    ]);
  }

  /**
   * Records a failure: state Error, the short reason in `info` (what the seed's dashboards show), the whole
   * error in error_detail. A row already final (Completed, Expiration, or Error) is left as it is.
   */
  async markError(uuid: string, reason: string, detail?: string): Promise<boolean> {
    const [res] = await this.pool.query<ResultSetHeader>(
      `UPDATE full_backup_metadata SET state = 'Error', info = ?, error_detail = ?, stage_started_at = NOW()
       WHERE backup_uuid = ? AND state NOT IN (${finalStates.map(() => '?').join(', ')})`,
      [reason.slice(0, INFO_MAX), detail ?? reason, uuid, ...finalStates],
    );
    return res.affectedRows === 1;
  }
}

/**
 * Whether the row already is in `to` with every field as asked: the UPDATE ran, but its reply was lost with the
 * connection and the pool replayed it (retry.ts). The replay then matches no row; the transition did happen.
 */
function alreadyApplied(row: BackupRow, to: BackupState, fields: BackupFields): boolean {
  if (row.state !== to) return false;
  return Object.entries(fields).every(([key, value]) => value === undefined || sameStoredValue(row[key as keyof BackupRow], value));
}

function sameStoredValue(stored: unknown, wanted: unknown): boolean {
  if (wanted instanceof Date) return stored instanceof Date && Math.floor(stored.getTime() / 1000) === Math.floor(wanted.getTime() / 1000);
  if (typeof wanted === 'string') return stored === wanted.slice(0, INFO_MAX) || stored === wanted;
  if (wanted === null) return stored === null;
  return String(stored) === String(wanted);
}

function retryPolicy(link: MetadataLinkConfig, retrySeconds: number, signal: AbortSignal, log?: Logger): RetryPolicy {
  const where = `${link.user}@${link.host}:${link.port}/${link.database}`;
  return {
    retrySeconds,
    where,
    signal,
    onRetry: ({ code }) => log?.warn({ event: 'metadata.retry', code, retrySeconds }, `metadata center ${where} unreachable (${code}): retrying for up to ${retrySeconds} s`),
    onRecovered: ({ retries, elapsedMs }) => log?.info({ event: 'metadata.recovered', retries, durationMs: elapsedMs }, `metadata center ${where} reachable again`),
  };
}

function connectionOptions(link: MetadataLinkConfig): ConnectionOptions {
  return { ...mysqlConnectionOptions(link), database: link.database };
}

/**
 * The configured zone (and the session time_zone that makes the server's NOW() agree with it), or the server's own
 * zone (serverTimeZone). The server's clock is read first, in its own zone, before any SET.
 */
async function settleTimeZone(conn: Connection, configured: TimeZone | undefined): Promise<MetadataTimeZone> {
  const now = new Date();
  const clock = await readServerClock(conn, now.getUTCFullYear());
  if (configured) return configuredTimeZone(conn, configured, clock, now);
  const zone = serverTimeZone(clock, { processZone: processTimeZone(), now });
  return { zone, source: `metadata server (${serverZoneLabel(clock)}, now ${offsetString(now, zone)})` };
}

async function readServerClock(conn: Connection, year: number): Promise<ServerClock> {
  const walls = seasonalWallTimes(year);
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT @@global.time_zone AS global_tz, @@system_time_zone AS system_tz, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS offset_seconds,
       UNIX_TIMESTAMP(?) AS unix_january, UNIX_TIMESTAMP(?) AS unix_july`,
    [walls.january, walls.july],
  );
  const r = rows[0]!;
  return {
    globalTimeZone: String(r.global_tz),
    systemTimeZone: String(r.system_tz),
    offsetSeconds: Number(r.offset_seconds),
    year,
    seasons: serverSeasons(year, Number(r.unix_january), Number(r.unix_july)),
  };
}

/**
 * The session time_zone is the configured name when the server has time zone tables. Without them it can only be
 * an offset, which stays at today's offset after a DST change: fine for a zone without DST; for one with DST the
 * session keeps the server's own zone, which must then be at the configured zone's offsets.
 */
async function configuredTimeZone(conn: Connection, configured: TimeZone, clock: ServerClock, now: Date): Promise<MetadataTimeZone> {
  const source = '[metadata-link] time_zone';
  if (await acceptsTimeZone(conn, configured.name)) return { zone: configured, source, sessionTimeZone: configured.name };
  if (configured.kind === 'offset') throw new MetadataError(`the metadata server does not accept time_zone ${configured.name} (${source})`);
  if (!observesDst(seasonalOffsets(configured, clock.year))) {
    const offset = offsetString(now, configured);
    if (await acceptsTimeZone(conn, offset)) return { zone: configured, source, sessionTimeZone: offset };
    throw new MetadataError(`the metadata server does not accept time_zone ${configured.name} or ${offset} (${source} = ${configured.name})`);
  }
  if (serverKeepsZone(clock, configured, now)) {
    return { zone: configured, source: `${source} (the server's own zone, ${serverZoneLabel(clock)}, keeps its offsets)` };
  }
  throw new MetadataError(
    `${source} = ${configured.name} observes daylight saving time, and the metadata server has no time zone tables and its own time zone (${serverZoneLabel(clock)}) is at other offsets, so NOW() would drift from it after a DST change: load the tables (mysql_tzinfo_to_sql /usr/share/zoneinfo | mysql mysql) or set ${source} to a zone without DST (e.g. UTC)`,
  );
}

/** SET time_zone on this connection; false when the server does not know the zone. */
async function acceptsTimeZone(conn: Connection, timeZone: string): Promise<boolean> {
  try {
    await conn.query('SET time_zone = ?', [timeZone]);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'ER_UNKNOWN_TIME_ZONE') return false;
    throw err;
  }
}

function columnsFor(fields: BackupFields): { columns: string[]; values: unknown[] } {
  const columns: string[] = [];
  const values: unknown[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const column = backupColumns[key as keyof typeof backupColumns];
    if (!column) throw new MetadataError(`unknown backup field ${key}`);
    columns.push(column);
    values.push(key === 'info' && typeof value === 'string' ? value.slice(0, INFO_MAX) : wholeSeconds(value));
  }
  return { columns, values };
}

/**
 * The seed's DATETIME columns hold whole seconds. MySQL rounds a fraction (12:00:10.6 → 12:00:11) where MariaDB
 * truncates; a recovery point must never move later than the real one, so fractions are cut here.
 */
function wholeSeconds(value: unknown): unknown {
  return value instanceof Date ? new Date(Math.floor(value.getTime() / 1000) * 1000) : value;
}

function toInstance(r: RowDataPacket): InstanceRow {
  return {
    id: Number(r.id),
    instanceId: r.instance_id,
    instanceName: r.instance_name,
    stringLink: r.string_link,
    dbPort: Number(r.db_port),
    systemName: r.system_name,
    ownerName: r.owner_name,
    dbType: r.db_type,
    instanceType: r.instance_type,
    serviceLine: r.service_line,
    enabled: Number(r.enabled),
    isClone: Number(r.is_clone) === 1,
  };
}

/** A full_backup_metadata row as read by `SELECT *`. */
export function toBackup(r: RowDataPacket): BackupRow {
  return {
    id: Number(r.id),
    backupUuid: r.backup_uuid,
    tbInstanceId: r.tb_instance_id,
    state: r.state,
    startTime: r.start_time,
    endTime: r.end_time,
    backupType: r.backup_type,
    backupSize: r.backup_size,
    backupPath: r.backup_path,
    backupName: r.backup_name,
    bucketName: r.bucket_name,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    isDelete: Number(r.is_delete ?? 0),
    overdueDay: r.overdue_day === null ? null : Number(r.overdue_day),
    info: r.info,
    backupBytes: r.backup_bytes === null ? null : Number(r.backup_bytes),
    sourceBytes: r.source_bytes === null || r.source_bytes === undefined ? null : Number(r.source_bytes),
    sha256: r.sha256,
    objectKey: r.object_key,
    compression: r.compression,
    encryptionKeyId: r.encryption_key_id ?? null,
    workerHost: r.worker_host,
    jobId: r.job_id,
    stageStartedAt: r.stage_started_at,
    errorDetail: r.error_detail,
    binlogFile: r.binlog_file,
    binlogPosition: r.binlog_position === null || r.binlog_position === undefined ? null : Number(r.binlog_position),
    gtidSet: r.gtid_set,
    serverUuid: r.server_uuid ?? null,
    verifiedAt: r.verified_at,
    verifyState: r.verify_state,
  };
}

export function describeConnectError(err: unknown, link: { host: string; port: number; user: string; database?: string }): string {
  const e = err as { code?: string; message?: string };
  const where = `${link.user}@${link.host}:${link.port}${link.database ? `/${link.database}` : ''}`;
  switch (e.code) {
    case 'ER_ACCESS_DENIED_ERROR':
      return `metadata center ${where} refused the login: wrong user or password`;
    case 'ER_BAD_DB_ERROR':
      return `metadata center ${where}: database does not exist; run \`mcb migrate\``;
    case 'ER_NO_SUCH_TABLE':
      return `metadata center ${where}: tables missing; run \`mcb migrate\``;
    case 'ECONNREFUSED':
    case 'ETIMEDOUT':
    case 'ENOTFOUND':
    case 'EHOSTUNREACH':
      return `metadata center ${where} is unreachable (${e.code})`;
    default:
      return `metadata center ${where}: ${e.message ?? String(err)}`;
  }
}
