// Queries the binlog job needs beyond MetadataStore's generic ones.
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { BackupState } from './states.ts';
import type { MetadataStore } from './store.ts';

export interface ArchivedBinlogRow {
  backupUuid: string;
  binlogFile: string;
  state: BackupState;
  startTime: Date | null;
  endTime: Date | null;
  /** NULL on rows written before sql/005 and on the seed's rows. */
  serverUuid: string | null;
  gtidSet: string | null;
  objectKey: string | null;
  backupName: string;
  bucketName: string;
  /** Set on every row mcb writes; NULL on the seed's rows. */
  workerHost: string | null;
}

/** Every binlog row of an instance that names a file (gap and precondition rows have none), oldest first. */
export async function listBinlogRows(store: MetadataStore, instanceId: number): Promise<ArchivedBinlogRow[]> {
  const [rows] = await store.pool.query<RowDataPacket[]>(
    `SELECT backup_uuid, binlog_file, state, start_time, end_time, server_uuid, gtid_set, object_key, backup_name,
            bucket_name, worker_host
       FROM full_backup_metadata
      WHERE tb_instance_id = ? AND backup_type = 'binlog' AND binlog_file IS NOT NULL
      ORDER BY id`,
    [String(instanceId)],
  );
  return rows.map((r) => ({
    backupUuid: r.backup_uuid,
    binlogFile: r.binlog_file,
    state: r.state,
    startTime: r.start_time,
    endTime: r.end_time,
    serverUuid: r.server_uuid ?? null,
    gtidSet: r.gtid_set ?? null,
    objectKey: r.object_key ?? null,
    backupName: r.backup_name,
    bucketName: r.bucket_name,
    workerHost: r.worker_host ?? null,
  }));
}

/**
 * Start times (the first event's) of the Completed binlog rows of `binlogFile`: the file archived whole, once per
 * series that used the name. The streamer resumes after a file archived whole rather than streaming it again.
 */
export async function completedBinlogStarts(store: MetadataStore, instanceId: number, binlogFile: string): Promise<Date[]> {
  const [rows] = await store.pool.query<RowDataPacket[]>(
    `SELECT start_time FROM full_backup_metadata
      WHERE tb_instance_id = ? AND backup_type = 'binlog' AND binlog_file = ? AND state = 'Completed'`,
    [String(instanceId), binlogFile],
  );
  return rows.map((r) => r.start_time).filter((d): d is Date => d instanceof Date && !Number.isNaN(d.getTime()));
}

/** Gap rows (binlog rows without a file, named gap_…) of an instance, newest first. */
export async function listBinlogGapRows(store: MetadataStore, instanceId: number): Promise<Array<{ backupUuid: string; info: string | null }>> {
  const [rows] = await store.pool.query<RowDataPacket[]>(
    `SELECT backup_uuid, info FROM full_backup_metadata
      WHERE tb_instance_id = ? AND backup_type = 'binlog' AND binlog_file IS NULL AND LEFT(backup_name, 4) = 'gap_'
      ORDER BY id DESC`,
    [String(instanceId)],
  );
  return rows.map((r) => ({ backupUuid: r.backup_uuid, info: r.info }));
}

/**
 * Whether a row other than `exceptUuid` claims `objectKey` in `bucket` (as object_key, or as backup_name when it
 * has none: the seed's rows, and mcb rows not Completed yet). Expired rows no longer claim their key.
 */
export async function objectKeyClaimed(store: MetadataStore, bucket: string, instanceId: number, objectKey: string, exceptUuid: string): Promise<boolean> {
  const [rows] = await store.pool.query<RowDataPacket[]>(
    `SELECT 1 FROM full_backup_metadata
      WHERE tb_instance_id = ? AND bucket_name = ? AND backup_uuid <> ? AND state <> 'Expiration'
        AND (object_key = ? OR (object_key IS NULL AND backup_name = ?))
      LIMIT 1`,
    [String(instanceId), bucket, exceptUuid, objectKey, objectKey],
  );
  return rows.length > 0;
}

/**
 * The seed's binlog rows of one instance that still lack binlog_file / object_key (written after `mcb migrate`, by a
 * seed cron not switched off yet) get them, exactly as sql/005 does for the rows present at migration time. Returns
 * how many rows changed.
 */
export async function backfillSeedBinlogRows(store: MetadataStore, instanceId: number): Promise<number> {
  const id = String(instanceId);
  const prefix = `log_${id}_`;
  const fileName = '^[A-Za-z0-9][A-Za-z0-9_.-]*[.][0-9]+$';
  const seedRow = `tb_instance_id = ? AND backup_type = 'binlog' AND binlog_file IS NULL AND object_key IS NULL
    AND worker_host IS NULL AND LEFT(backup_name, 4) <> 'gap_'`;
  const [named] = await store.pool.query<ResultSetHeader>(
    `UPDATE full_backup_metadata
        SET binlog_file = SUBSTRING(backup_name, ?), object_key = backup_name, compression = COALESCE(compression, 'none')
      WHERE ${seedRow} AND LEFT(backup_name, ?) = ? AND SUBSTRING(backup_name, ?) REGEXP ?`,
    [prefix.length + 1, id, prefix.length, prefix, prefix.length + 1, fileName],
  );
  const [bare] = await store.pool.query<ResultSetHeader>(
    `UPDATE full_backup_metadata
        SET binlog_file = backup_name, object_key = CONCAT(?, backup_name), compression = COALESCE(compression, 'none')
      WHERE ${seedRow} AND backup_name NOT REGEXP '^log_[0-9]+_' AND backup_name REGEXP ?`,
    [prefix, id, fileName],
  );
  return named.affectedRows + bare.affectedRows;
}
