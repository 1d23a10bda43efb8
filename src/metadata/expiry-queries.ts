// The SQL the `expire` job needs, kept out of store.ts: which instances have rows in a bucket, the rows
// retention is planned on, every object key the metadata knows (to find orphans), per-instance retention
// overrides (sql/003_instance_retention.sql) and the overdue_day refresh. All parameterised.
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { BackupState } from './states.ts';
import type { MetadataStore } from './store.ts';
import { seedFullObjectName } from '../naming.ts';

/** What expiry reads of a full_backup_metadata row. */
export interface ExpiryRow {
  id: number;
  backupUuid: string;
  tbInstanceId: string;
  state: BackupState;
  backupType: string;
  startTime: Date | null;
  endTime: Date | null;
  backupName: string;
  bucketName: string;
  objectKey: string | null;
  isDelete: number;
  overdueDay: number | null;
  /** Binlog rows: the file; full rows: the clone's consistent-point file (sql/004), null on older rows. */
  binlogFile: string | null;
  /** Result of the last restore test of a full backup: ok, failed, or null (never tested). */
  verifyState: string | null;
}

/**
 * The key of a row's object: object_key (ours), else for the seed's rows the archive its full row names, else
 * backup_name (what the seed's cleaner deleted).
 */
export function objectKeyOf(row: Pick<ExpiryRow, 'objectKey' | 'backupName' | 'backupType'>): string {
  if (row.objectKey) return row.objectKey;
  return (row.backupType === 'full' ? seedFullObjectName(row.backupName) : undefined) ?? row.backupName;
}

function toExpiryRow(r: RowDataPacket): ExpiryRow {
  return {
    id: Number(r.id),
    backupUuid: r.backup_uuid,
    tbInstanceId: String(r.tb_instance_id),
    state: r.state,
    backupType: r.backup_type,
    startTime: r.start_time ?? null,
    endTime: r.end_time ?? null,
    backupName: r.backup_name,
    bucketName: r.bucket_name,
    objectKey: r.object_key ?? null,
    isDelete: Number(r.is_delete ?? 0),
    overdueDay: r.overdue_day === null || r.overdue_day === undefined ? null : Number(r.overdue_day),
    binlogFile: r.binlog_file ?? null,
    verifyState: r.verify_state ?? null,
  };
}

const expiryColumns =
  'id, backup_uuid, tb_instance_id, state, backup_type, start_time, end_time, backup_name, bucket_name, object_key, is_delete, overdue_day, binlog_file, verify_state';

/** tb_instance ids (numeric) that have at least one row in `bucket`, ascending. */
export async function instancesWithRowsInBucket(metadata: MetadataStore, bucket: string): Promise<number[]> {
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    'SELECT DISTINCT tb_instance_id FROM full_backup_metadata WHERE bucket_name = ?',
    [bucket],
  );
  return rows
    .map((r) => String(r.tb_instance_id))
    .filter((v) => /^\d+$/.test(v))
    .map(Number)
    .filter((n) => Number.isSafeInteger(n) && n > 0)
    .sort((a, b) => a - b);
}

/**
 * Every row of an instance that expiry plans on: all states but Expiration (already expired; they only
 * grow in number), in every bucket (so protection rules see the instance's whole history), oldest first.
 */
export async function rowsForExpiry(metadata: MetadataStore, instanceId: number): Promise<ExpiryRow[]> {
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    `SELECT ${expiryColumns} FROM full_backup_metadata
      WHERE tb_instance_id = ? AND state <> 'Expiration'
      ORDER BY start_time, id`,
    [String(instanceId)],
  );
  return rows.map(toExpiryRow);
}

/** Object key → row, for every row (any state) of an instance in `bucket`: what the bucket should hold. */
export async function knownObjectKeys(metadata: MetadataStore, instanceId: number, bucket: string): Promise<Map<string, ExpiryRow>> {
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    `SELECT ${expiryColumns} FROM full_backup_metadata WHERE tb_instance_id = ? AND bucket_name = ? ORDER BY id`,
    [String(instanceId), bucket],
  );
  const keys = new Map<string, ExpiryRow>();
  for (const row of rows.map(toExpiryRow)) {
    // A later live row wins over an Expiration one with the same key (a name reused after expiry).
    const key = objectKeyOf(row);
    const seen = keys.get(key);
    if (!seen || seen.state === 'Expiration') keys.set(key, row);
    if (row.backupName && row.backupName !== key && !keys.has(row.backupName)) keys.set(row.backupName, row);
  }
  return keys;
}

/**
 * The id of another row of the instance in `bucket`, neither expired nor deleted, whose object is `key`, or
 * undefined. Such an object must outlive the row being expired: e.g. a binlog the seed archived and a row that
 * recorded the same object again. A row names its object in object_key; a Completed row without one (the seed's)
 * in backup_name. Rows not Completed and without object_key (an upload that failed) hold no object.
 */
export async function liveRowSharingObject(metadata: MetadataStore, instanceId: number, bucket: string, key: string, exceptId: number): Promise<number | undefined> {
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    `SELECT id FROM full_backup_metadata
      WHERE tb_instance_id = ? AND bucket_name = ? AND id <> ? AND state <> 'Expiration' AND COALESCE(is_delete, 0) = 0
        AND (object_key = ? OR (object_key IS NULL AND backup_name = ? AND state = 'Completed'))
      ORDER BY id LIMIT 1`,
    [String(instanceId), bucket, exceptId, key, key],
  );
  return rows[0] ? Number(rows[0].id) : undefined;
}

export interface InstanceRetention {
  fullStorageDays: number | null;
  binlogStorageDays: number | null;
  minFullBackups: number | null;
}

function isNoSuchTable(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'ER_NO_SUCH_TABLE';
}

/** The override row of an instance, or undefined when there is none (or migration 003 was not applied). */
export async function getInstanceRetention(metadata: MetadataStore, instanceId: number): Promise<InstanceRetention | undefined> {
  try {
    const [rows] = await metadata.pool.query<RowDataPacket[]>(
      'SELECT full_storage_days, binlog_storage_days, min_full_backups FROM mcb_instance_retention WHERE tb_instance_id = ?',
      [instanceId],
    );
    const r = rows[0];
    if (!r) return undefined;
    const n = (v: unknown) => (v === null || v === undefined ? null : Number(v));
    return { fullStorageDays: n(r.full_storage_days), binlogStorageDays: n(r.binlog_storage_days), minFullBackups: n(r.min_full_backups) };
  } catch (err) {
    if (isNoSuchTable(err)) return undefined;
    throw err;
  }
}

/** Creates or replaces the override of an instance (NULL fields fall back to the config). */
export async function setInstanceRetention(metadata: MetadataStore, instanceId: number, r: Partial<InstanceRetention>): Promise<void> {
  await metadata.pool.query(
    `INSERT INTO mcb_instance_retention (tb_instance_id, full_storage_days, binlog_storage_days, min_full_backups)
     VALUES (?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE full_storage_days = VALUES(full_storage_days),
       binlog_storage_days = VALUES(binlog_storage_days), min_full_backups = VALUES(min_full_backups)`,
    [instanceId, r.fullStorageDays ?? null, r.binlogStorageDays ?? null, r.minFullBackups ?? null],
  );
}

export async function removeInstanceRetention(metadata: MetadataStore, instanceId: number): Promise<boolean> {
  const [res] = await metadata.pool.query<ResultSetHeader>('DELETE FROM mcb_instance_retention WHERE tb_instance_id = ?', [instanceId]);
  return res.affectedRows === 1;
}

/**
 * Writes overdue_day for Completed, not deleted rows, only where it differs (so updated_at moves only on a
 * real change). Grouped by value: one UPDATE per distinct value. Returns how many rows changed.
 */
export async function setOverdueDays(metadata: MetadataStore, updates: ReadonlyArray<{ id: number; overdueDay: number }>): Promise<number> {
  const byValue = new Map<number, number[]>();
  for (const u of updates) {
    const ids = byValue.get(u.overdueDay);
    if (ids) ids.push(u.id);
    else byValue.set(u.overdueDay, [u.id]);
  }
  let changed = 0;
  for (const [value, ids] of byValue) {
    for (let i = 0; i < ids.length; i += 500) {
      const chunk = ids.slice(i, i + 500);
      const [res] = await metadata.pool.query<ResultSetHeader>(
        `UPDATE full_backup_metadata SET overdue_day = ?
          WHERE id IN (${chunk.map(() => '?').join(', ')})
            AND state = 'Completed' AND is_delete = 0 AND (overdue_day IS NULL OR overdue_day <> ?)`,
        [value, ...chunk, value],
      );
      changed += res.affectedRows;
    }
  }
  return changed;
}
