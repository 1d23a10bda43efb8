// Queries the binlog job needs beyond MetadataStore's generic ones.
import type { RowDataPacket } from 'mysql2/promise';
import type { BackupState } from './states.ts';
import type { MetadataStore } from './store.ts';

export interface ArchivedBinlogRow {
  backupUuid: string;
  binlogFile: string;
  state: BackupState;
  startTime: Date | null;
  endTime: Date | null;
}

/** Every binlog row of an instance that names a file (gap rows have none), oldest first. */
export async function listBinlogRows(store: MetadataStore, instanceId: number): Promise<ArchivedBinlogRow[]> {
  const [rows] = await store.pool.query<RowDataPacket[]>(
    `SELECT backup_uuid, binlog_file, state, start_time, end_time FROM full_backup_metadata
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
  }));
}

/** Gap rows (binlog rows without a file) of an instance, newest first. */
export async function listBinlogGapRows(store: MetadataStore, instanceId: number): Promise<Array<{ backupUuid: string; info: string | null }>> {
  const [rows] = await store.pool.query<RowDataPacket[]>(
    `SELECT backup_uuid, info FROM full_backup_metadata
      WHERE tb_instance_id = ? AND backup_type = 'binlog' AND binlog_file IS NULL
      ORDER BY id DESC`,
    [String(instanceId)],
  );
  return rows.map((r) => ({ backupUuid: r.backup_uuid, info: r.info }));
}

/** Whether another row (not `exceptUuid`) still holds `objectKey` in storage (Completed): its object must not be overwritten. */
export async function objectKeyHeldByOther(store: MetadataStore, instanceId: number, objectKey: string, exceptUuid: string): Promise<boolean> {
  const [rows] = await store.pool.query<RowDataPacket[]>(
    `SELECT 1 FROM full_backup_metadata
      WHERE tb_instance_id = ? AND backup_type = 'binlog' AND state = 'Completed' AND object_key = ? AND backup_uuid <> ? LIMIT 1`,
    [String(instanceId), objectKey, exceptUuid],
  );
  return rows.length > 0;
}
