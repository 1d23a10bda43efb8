// How well an instance's data compressed last time: the free-space checks before a clone and a tar estimate the
// archive from it (src/jobs/free-space.ts) instead of assuming nothing compresses.
import type { RowDataPacket } from 'mysql2/promise';
import type { MetadataStore } from './store.ts';

/** archive bytes / source bytes of one earlier full backup. */
export interface ArchiveRatio {
  ratio: number;
  /** The backup it was measured on. */
  backupName: string;
  codec: string;
}

/**
 * The ratio of the instance's newest Completed full made with `codec` that records both sizes (backup_bytes and
 * source_bytes, sql/007); undefined when there is none (a first backup, a codec never used before, older rows).
 */
export async function lastArchiveRatio(metadata: MetadataStore, instanceId: number, codec: string): Promise<ArchiveRatio | undefined> {
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    `SELECT backup_name, backup_bytes, source_bytes FROM full_backup_metadata
      WHERE tb_instance_id = ? AND backup_type = 'full' AND state = 'Completed' AND compression = ? AND backup_bytes > 0 AND source_bytes > 0
      ORDER BY id DESC LIMIT 1`,
    [String(instanceId), codec],
  );
  const row = rows[0];
  if (!row) return undefined;
  return { ratio: Number(row.backup_bytes) / Number(row.source_bytes), backupName: String(row.backup_name), codec };
}
