// The reads behind `mcb status`, the status page, /api/instances and /metrics, one query per kind of fact for all
// instances at once (never one per instance): with hundreds of instances a page costs the same handful of
// queries. Each returns rows keyed by tb_instance id; `instanceId` narrows to one instance (`mcb status
// --instance`). All parameterised.
import type { RowDataPacket } from 'mysql2/promise';
import { inProgressStates } from './states.ts';
import { toBackup, type BackupRow, type MetadataStore } from './store.ts';

/** Rows of several instances, by tb_instance id (full_backup_metadata.tb_instance_id is text). */
export type ByInstance<T> = Map<string, T>;

function instanceFilter(instanceId: number | undefined, column = 'tb_instance_id'): { sql: string; params: string[] } {
  return instanceId === undefined ? { sql: '', params: [] } : { sql: ` AND ${column} = ?`, params: [String(instanceId)] };
}

/** The newest row (highest id) of each instance among the rows `where` selects. */
async function newestPerInstance(metadata: MetadataStore, where: string, params: unknown[], instanceId?: number): Promise<ByInstance<BackupRow>> {
  const only = instanceFilter(instanceId);
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    `SELECT f.* FROM full_backup_metadata f
       JOIN (SELECT MAX(id) AS id FROM full_backup_metadata WHERE ${where}${only.sql} GROUP BY tb_instance_id) newest ON newest.id = f.id`,
    [...params, ...only.params],
  );
  return new Map(rows.map((r) => [String(r.tb_instance_id), toBackup(r)]));
}

/** Rows of each instance, newest first. */
async function rowsPerInstance(metadata: MetadataStore, where: string, params: unknown[], instanceId?: number): Promise<ByInstance<BackupRow[]>> {
  const only = instanceFilter(instanceId);
  const [rows] = await metadata.pool.query<RowDataPacket[]>(`SELECT * FROM full_backup_metadata WHERE ${where}${only.sql} ORDER BY id DESC`, [...params, ...only.params]);
  const out: ByInstance<BackupRow[]> = new Map();
  for (const r of rows) {
    const key = String(r.tb_instance_id);
    const list = out.get(key) ?? [];
    list.push(toBackup(r));
    out.set(key, list);
  }
  return out;
}

/** Completed fulls still stored (is_delete 0 or NULL). */
const storedCompletedFull = "backup_type = 'full' AND state = 'Completed' AND COALESCE(is_delete, 0) = 0";

/**
 * Each instance's newest Completed full that can be restored from: still stored, and not one whose restore test
 * failed (which does not cover the instance).
 */
export function newestRestorableFulls(metadata: MetadataStore, instanceId?: number): Promise<ByInstance<BackupRow>> {
  return newestPerInstance(metadata, `${storedCompletedFull} AND (verify_state IS NULL OR verify_state <> ?)`, ['failed'], instanceId);
}

/** Each instance's Completed fulls still stored whose restore test failed, newest first. */
export function verifyFailedFulls(metadata: MetadataStore, instanceId?: number): Promise<ByInstance<BackupRow[]>> {
  return rowsPerInstance(metadata, `${storedCompletedFull} AND verify_state = ?`, ['failed'], instanceId);
}

/** Each instance's newest Completed binlog backup. */
export function newestCompletedBinlogs(metadata: MetadataStore, instanceId?: number): Promise<ByInstance<BackupRow>> {
  return newestPerInstance(metadata, "backup_type = 'binlog' AND state = 'Completed'", [], instanceId);
}

/** Each instance's rows in a running state (Doing … Clearing), newest first. */
export function runningBackups(metadata: MetadataStore, instanceId?: number): Promise<ByInstance<BackupRow[]>> {
  return rowsPerInstance(metadata, `state IN (${inProgressStates.map(() => '?').join(', ')})`, [...inProgressStates], instanceId);
}

/** Each instance's newest Error row. */
export function newestErrors(metadata: MetadataStore, instanceId?: number): Promise<ByInstance<BackupRow>> {
  return newestPerInstance(metadata, "state = 'Error'", [], instanceId);
}

/** How many rows of each instance are in Error and were last updated at or after `since`. */
export async function errorCountsSince(metadata: MetadataStore, since: Date, instanceId?: number): Promise<ByInstance<number>> {
  const only = instanceFilter(instanceId);
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    `SELECT tb_instance_id, COUNT(*) AS n FROM full_backup_metadata WHERE state = 'Error' AND updated_at >= ?${only.sql} GROUP BY tb_instance_id`,
    [since, ...only.params],
  );
  return new Map(rows.map((r) => [String(r.tb_instance_id), Number(r.n)]));
}

/** Rows per (instance, type, state): the states panel (mcb_backups). */
export async function backupCounts(metadata: MetadataStore): Promise<Array<{ instance: string; type: string; state: string; count: number }>> {
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    'SELECT tb_instance_id, backup_type, state, COUNT(*) AS n FROM full_backup_metadata GROUP BY tb_instance_id, backup_type, state',
  );
  return rows.map((r) => ({ instance: String(r.tb_instance_id), type: String(r.backup_type), state: String(r.state), count: Number(r.n) }));
}
