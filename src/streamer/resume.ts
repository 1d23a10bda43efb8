// Where a stream (re)starts, and how long it waits before it does (pure). mysqlbinlog in raw mode starts at the
// beginning of a file (it cannot start mid-file and keep the server's offsets), so a stream resumes by reading the
// file of its last segment again and skipping what is already in the bucket.
import { nextBinlogFile } from '../binlog/index.ts';

/** What resuming needs of the last segment recorded. */
export interface LastSegment {
  binlogFile: string;
  seriesStart: number;
  endPos: number;
  closesFile: boolean;
}

export type ResumePoint =
  /** Read `file` from the server again; bytes below `skipTo` are in the bucket when its series is `seriesStart`. */
  | { kind: 'restream'; file: string; seriesStart: number; skipTo: number }
  /** Stream `file` from its start. */
  | { kind: 'from-start'; file: string; reason: string };

/**
 * Where to start: in the file of the last segment when that file is neither closed by it nor archived whole;
 * else the file after it; with nothing recorded, the server's active binlog (never the server's whole history).
 */
export function resumePoint(last: LastSegment | undefined, archivedWhole: boolean, activeFile: string): ResumePoint {
  if (!last) return { kind: 'from-start', file: activeFile, reason: 'no segment recorded: the active binlog' };
  if (!last.closesFile && !archivedWhole) return { kind: 'restream', file: last.binlogFile, seriesStart: last.seriesStart, skipTo: last.endPos };
  const why = last.closesFile ? 'its last segment closes it' : 'it is archived whole';
  return { kind: 'from-start', file: nextBinlogFile(last.binlogFile), reason: `the file after ${last.binlogFile} (${why})` };
}

/**
 * Where a first stream starts (no segment recorded): at the oldest of the server's files after the newest one
 * archived whole, so that covered_at never claims closed files the binlog job has not stored yet; at the active
 * binlog when nothing is archived (a first full backup's files are the binlog job's to catch up on).
 */
export function firstStreamFile(serverFiles: readonly string[], archived: ReadonlySet<string>, activeFile: string): string {
  if (!archived.size) return activeFile;
  let i = serverFiles.indexOf(activeFile);
  if (i < 0) return activeFile;
  while (i > 0 && !archived.has(serverFiles[i - 1]!)) i--;
  return serverFiles[i]!;
}

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30_000;

/** The wait before mysqlbinlog is started again: 1 s, doubling up to 30 s. */
export function reconnectBackoffMs(previousMs: number | undefined): number {
  return previousMs === undefined ? FIRST_BACKOFF_MS : Math.min(MAX_BACKOFF_MS, previousMs * 2);
}

/**
 * The server id the stream announces: `[backup-conf] binlog_stream_server_id`, else 4294967295 − 1000 −
 * tb_instance_id (ids of 2^31 and more are taken modulo 2^31). Distinct per instance and far from the small ids
 * servers are given; a server ends an older dump connection with the same id, so a restarted worker replaces its
 * own stale stream.
 */
export function streamServerId(configured: number | undefined, instanceId: number): number {
  return configured ?? 4294967295 - 1000 - (instanceId % 2 ** 31);
}

/** mysqlbinlog's error when the file to start from is no longer on the server (purged, or the binlogs reset). */
export function isMissingFileError(message: string): boolean {
  return /Could not find first log file name in binary log index file/i.test(message);
}
