// Where the stream stands against the server (pure): binlog file order, whether the bucket holds everything up to
// the position the server showed (covered_at), and whether mysqlbinlog has fallen behind it (a stall).
import { compareBinlogFiles } from '../binlog/index.ts';
import type { BinlogPosition } from '../mysql/data-node.ts';

/** What this mysqlbinlog run has written of one file and what of it is in the bucket. */
export interface StreamedFile {
  name: string;
  /** Bytes of the file in the bucket, counted from 0 (segments uploaded, or skipped as uploaded before). */
  uploadedEnd: number;
  /** Its last segment holds the file's ROTATE or STOP event: every byte of it is in the bucket. */
  closed: boolean;
  /** Bytes of it in the spool at the last look. */
  received: number;
}

/**
 * Whether the bucket holds every byte the server had written at `observed`: the observed file is one this run
 * streamed, and it is uploaded up to the observed position or whole. A file the run never streamed is not covered,
 * even when its name sorts before the run's files: a server whose binlogs were reset shows such a name.
 */
export function reachedObserved(files: readonly StreamedFile[], observed: BinlogPosition): boolean {
  const f = files.find((x) => x.name === observed.file);
  return f !== undefined && (f.closed || f.uploadedEnd >= observed.position);
}

/**
 * Whether mysqlbinlog has less of the server's binlog than the server showed: the observed file is not in the spool
 * yet (and sorts after every file of this run), or is shorter there than the observed position.
 */
export function spoolBehind(files: readonly StreamedFile[], observed: BinlogPosition): boolean {
  const f = files.find((x) => x.name === observed.file);
  if (f) return !f.closed && f.received < observed.position;
  const last = files.at(-1);
  return last === undefined || compareBinlogFiles(observed.file, last.name) > 0;
}

/** The server's position at an instant (SHOW BINARY LOG STATUS). */
export interface Observation {
  at: Date;
  position: BinlogPosition;
}

/** Index of the newest observation the bucket has reached (-1: none): covered_at is its instant. */
export function newestReached(observations: readonly Observation[], files: readonly StreamedFile[]): number {
  for (let i = observations.length - 1; i >= 0; i--) if (reachedObserved(files, observations[i]!.position)) return i;
  return -1;
}

/**
 * Intervals in a row mysqlbinlog has been stalled: it is alive, received nothing since the last look (`progressed`
 * false: a long catch-up after a restart, reading a file again from its start, is no stall) and still lacks what the server had written an
 * interval before (`previous`, the last observation). Measured against the previous observation, not the current
 * one, since under a steady write load the spool always lags the server by the events in flight.
 */
export function stallCount(stalls: number, previous: BinlogPosition | undefined, files: readonly StreamedFile[], alive: boolean, progressed: boolean): number {
  return previous && alive && !progressed && spoolBehind(files, previous) ? stalls + 1 : 0;
}
