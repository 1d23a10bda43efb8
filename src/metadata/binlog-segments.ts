// Segments of streamed binlogs (table mcb_binlog_segments) and each instance's streamer state (mcb_binlog_streams),
// sql/009_binlog_segments.sql. A segment is a byte range [startPos, endPos) of one binlog file, cut at a
// transaction boundary; the segments of a file chain when each starts where the previous one ended, from 0.
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { MetadataStore } from './store.ts';
import { readRowsIfMigrated as readRows } from './optional-table.ts';

export interface BinlogSegment {
  id: number;
  instanceId: number;
  binlogFile: string;
  /** Epoch seconds of the file's FORMAT_DESCRIPTION event (the series). */
  seriesStart: number;
  serverUuid: string | null;
  startPos: number;
  endPos: number;
  /** The segment ends with the file's ROTATE or STOP event: the file is complete. */
  closesFile: boolean;
  objectKey: string;
  bucketName: string;
  compression: string;
  storedBytes: number;
  sha256: string;
  encryptionKeyId: string | null;
  firstGtid: string | null;
  lastGtid: string | null;
  lastCommitTime: Date | null;
  createdAt: Date;
}

export type NewBinlogSegment = Omit<BinlogSegment, 'id'>;

/**
 * One binlog file of one series: its segments, and its whole archive (a binlog row starting at that second), share
 * this key. The file name alone repeats after RESET BINARY LOGS.
 */
export function binlogFileKey(file: string, seriesStart: number): string {
  return `${file}@${seriesStart}`;
}

/** The series start of a binlog row: the epoch second its start_time stands for. */
export function seriesStartOf(startTime: Date): number {
  return Math.round(startTime.getTime() / 1000);
}

export type StreamState = 'streaming' | 'reconnecting' | 'gap' | 'stopped';

export interface BinlogStreamStatus {
  instanceId: number;
  workerHost: string | null;
  state: StreamState;
  binlogFile: string | null;
  seriesStart: number | null;
  position: number | null;
  /** Everything the server had written by then is in the bucket: the achieved RPO is the age of this instant. */
  coveredAt: Date | null;
  lastCommitTime: Date | null;
  lastError: string | null;
  updatedAt: Date;
}

function dateOrNull(v: unknown): Date | null {
  return v instanceof Date && !Number.isNaN(v.getTime()) ? v : null;
}

function segmentOf(r: RowDataPacket): BinlogSegment {
  return {
    id: Number(r.id),
    instanceId: Number(r.tb_instance_id),
    binlogFile: String(r.binlog_file),
    seriesStart: Number(r.series_start),
    serverUuid: r.server_uuid ?? null,
    startPos: Number(r.start_pos),
    endPos: Number(r.end_pos),
    closesFile: Number(r.closes_file) === 1,
    objectKey: String(r.object_key),
    bucketName: String(r.bucket_name),
    compression: String(r.compression),
    storedBytes: Number(r.stored_bytes),
    sha256: String(r.sha256),
    encryptionKeyId: r.encryption_key_id ?? null,
    firstGtid: r.first_gtid ?? null,
    lastGtid: r.last_gtid ?? null,
    lastCommitTime: dateOrNull(r.last_commit_time),
    createdAt: dateOrNull(r.created_at) ?? new Date(0),
  };
}

/** Two segments that start at the same byte of a file end at different bytes: the rows would not chain. */
export class SegmentConflictError extends Error {}

/**
 * Records an uploaded segment. The same range recorded twice (a retry after a lost answer) is one row; a row that
 * starts at the same byte and ends elsewhere (two streams overlapping) is a SegmentConflictError, never dropped silently.
 */
export async function insertBinlogSegment(metadata: MetadataStore, s: NewBinlogSegment): Promise<void> {
  await metadata.pool.query(
    `INSERT INTO mcb_binlog_segments
       (tb_instance_id, binlog_file, series_start, server_uuid, start_pos, end_pos, closes_file, object_key, bucket_name,
        compression, stored_bytes, sha256, encryption_key_id, first_gtid, last_gtid, last_commit_time, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE id = id`,
    [
      s.instanceId, s.binlogFile, s.seriesStart, s.serverUuid, s.startPos, s.endPos, s.closesFile ? 1 : 0, s.objectKey, s.bucketName,
      s.compression, s.storedBytes, s.sha256, s.encryptionKeyId, s.firstGtid, s.lastGtid, s.lastCommitTime, s.createdAt,
    ],
  );
  // affectedRows cannot tell an unchanged duplicate from an insert (mysql2 connects with FOUND_ROWS): read it back.
  const [rows] = await metadata.pool.query<RowDataPacket[]>(
    'SELECT end_pos, object_key FROM mcb_binlog_segments WHERE tb_instance_id = ? AND binlog_file = ? AND series_start = ? AND start_pos = ?',
    [s.instanceId, s.binlogFile, s.seriesStart, s.startPos],
  );
  const other = rows[0];
  if (other && Number(other.end_pos) !== s.endPos) {
    throw new SegmentConflictError(
      `segment ${s.objectKey} overlaps ${String(other.object_key)}, recorded already from byte ${s.startPos} to ${Number(other.end_pos)} (another stream of this instance?)`,
    );
  }
}

/** Marks the segment of a file that ends at `endPos` as its last (the file ended without ROTATE/STOP). Whether one did. */
export async function markSegmentClosesFile(metadata: MetadataStore, instanceId: number, file: string, seriesStart: number, endPos: number): Promise<boolean> {
  const [result] = await metadata.pool.query<ResultSetHeader>(
    'UPDATE mcb_binlog_segments SET closes_file = 1 WHERE tb_instance_id = ? AND binlog_file = ? AND series_start = ? AND end_pos = ?',
    [instanceId, file, seriesStart, endPos],
  );
  return result.affectedRows > 0;
}

/** Every segment of the instance, by file, series and position. */
export async function listBinlogSegments(metadata: MetadataStore, instanceId: number): Promise<BinlogSegment[]> {
  const rows = await readRows(metadata, 'SELECT * FROM mcb_binlog_segments WHERE tb_instance_id = ? ORDER BY series_start, binlog_file, start_pos', [instanceId]);
  return rows.map(segmentOf);
}

/** The segment the streamer uploaded last (the highest end in the newest series and file), or undefined. */
export async function lastBinlogSegment(metadata: MetadataStore, instanceId: number): Promise<BinlogSegment | undefined> {
  const rows = await readRows(
    metadata,
    'SELECT * FROM mcb_binlog_segments WHERE tb_instance_id = ? ORDER BY series_start DESC, CHAR_LENGTH(binlog_file) DESC, binlog_file DESC, end_pos DESC LIMIT 1',
    [instanceId],
  );
  return rows[0] ? segmentOf(rows[0]) : undefined;
}

/** Removes the rows of these segments (their objects must be gone first). */
export async function deleteBinlogSegments(metadata: MetadataStore, ids: number[]): Promise<void> {
  if (!ids.length) return;
  await metadata.pool.query('DELETE FROM mcb_binlog_segments WHERE id IN (?)', [ids]);
}

/** Upserts the streamer's state; fields left undefined keep their stored value. */
export async function saveStreamStatus(
  metadata: MetadataStore,
  instanceId: number,
  s: Partial<Omit<BinlogStreamStatus, 'instanceId' | 'updatedAt'>> & { state: StreamState },
  at: Date,
): Promise<void> {
  const cols: Array<[string, unknown]> = [
    ['worker_host', s.workerHost],
    ['binlog_file', s.binlogFile],
    ['series_start', s.seriesStart],
    ['position', s.position],
    ['covered_at', s.coveredAt],
    ['last_commit_time', s.lastCommitTime],
    ['last_error', s.lastError],
  ];
  const given = cols.filter(([, v]) => v !== undefined);
  const names = ['tb_instance_id', 'state', 'updated_at', ...given.map(([c]) => c)];
  const values = [instanceId, s.state, at, ...given.map(([, v]) => v)];
  const updates = ['state = VALUES(state)', 'updated_at = VALUES(updated_at)', ...given.map(([c]) => `${c} = VALUES(${c})`)];
  await metadata.pool.query(
    `INSERT INTO mcb_binlog_streams (${names.join(', ')}) VALUES (${names.map(() => '?').join(', ')}) ON DUPLICATE KEY UPDATE ${updates.join(', ')}`,
    values,
  );
}

/** Streamer states, by tb_instance id (instances that never streamed have none). */
export async function streamStatuses(metadata: MetadataStore, instanceId?: number): Promise<Map<number, BinlogStreamStatus>> {
  const only = instanceId === undefined ? '' : ' WHERE tb_instance_id = ?';
  const rows = await readRows(metadata, `SELECT * FROM mcb_binlog_streams${only}`, instanceId === undefined ? [] : [instanceId]);
  const out = new Map<number, BinlogStreamStatus>();
  for (const r of rows) {
    out.set(Number(r.tb_instance_id), {
      instanceId: Number(r.tb_instance_id),
      workerHost: r.worker_host ?? null,
      state: String(r.state) as StreamState,
      binlogFile: r.binlog_file ?? null,
      seriesStart: r.series_start === null ? null : Number(r.series_start),
      position: r.position === null ? null : Number(r.position),
      coveredAt: dateOrNull(r.covered_at),
      lastCommitTime: dateOrNull(r.last_commit_time),
      lastError: r.last_error ?? null,
      updatedAt: dateOrNull(r.updated_at) ?? new Date(0),
    });
  }
  return out;
}
