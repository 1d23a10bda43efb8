import type { RowDataPacket } from 'mysql2/promise';
import type { MetadataStore } from './store.ts';

const NO_SUCH_TABLE = 1146;

/** Rows of a read of one of our tables; none on a metadata center not migrated yet, so status and restores keep working. */
export async function readRowsIfMigrated(metadata: MetadataStore, sql: string, params: unknown[] = []): Promise<RowDataPacket[]> {
  try {
    const [rows] = await metadata.pool.query<RowDataPacket[]>(sql, params);
    return rows;
  } catch (err) {
    if ((err as { errno?: number }).errno === NO_SUCH_TABLE) return [];
    throw err;
  }
}
