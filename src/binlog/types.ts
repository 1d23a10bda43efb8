// Public types of the binary log reader, and the event type codes MySQL 5.6 - 9.x write.

import type { GtidSet } from './gtid-set.ts';

/** The file is not a MySQL binary log, is truncated, or is corrupt (bad checksum, impossible event size ...). */
export class BinlogFormatError extends Error {
  override readonly name = 'BinlogFormatError';
  /** The file being read. */
  readonly file: string;
  /** Byte offset in the file where the problem was found (the start of the offending event when there is one). */
  readonly offset: number;

  constructor(file: string, offset: number, detail: string) {
    super(`${file}: ${detail} (at byte offset ${offset})`);
    this.file = file;
    this.offset = offset;
  }
}

export type BinlogChecksum = 'none' | 'crc32';

/** The common v4 event header (19 bytes), plus where the event starts in the file. */
export interface BinlogEventHeader {
  /** Byte offset of the event in the file. */
  position: number;
  /** Seconds since the epoch (the start time of the statement that wrote the event). */
  timestamp: number;
  typeCode: number;
  /** MySQL's name for the type, e.g. `XID_EVENT`; `UNKNOWN_EVENT_<code>` for codes this reader does not know. */
  typeName: string;
  serverId: number;
  /** Whole event: header + body + checksum. */
  eventSize: number;
  /** `log_pos`: the offset just past this event in the binlog of the server that wrote it. */
  nextPosition: number;
  flags: number;
}

export interface FormatDescriptionData {
  kind: 'format_description';
  binlogVersion: number;
  /** E.g. `9.7.4-2`, `8.0.36`. */
  serverVersion: string;
  /** Seconds; 0 for a server that does not set it. */
  createTimestamp: number;
  /** The common header length, 19 for v4. */
  headerLength: number;
  checksum: BinlogChecksum;
  /** LOG_EVENT_BINLOG_IN_USE_F: the server had not closed the file (still being written, or it crashed). */
  inUse: boolean;
}

export interface RotateData {
  kind: 'rotate';
  nextFile: string;
  /** Position in `nextFile` where reading continues (4). */
  nextPosition: number;
}

export interface GtidData {
  kind: 'gtid';
  /** The source UUID; all zeros for an anonymous GTID. */
  uuid: string;
  /** Group number (0 for anonymous). Exact up to 2^53; `gtid` is exact always. */
  gno: number;
  /** Set only for tagged GTIDs (MySQL 8.3+, GTID_TAGGED_LOG_EVENT). */
  tag?: string;
  /** `uuid:gno` or `uuid:tag:gno`, as MySQL prints it; `ANONYMOUS` for an anonymous GTID. */
  gtid: string;
  anonymous: boolean;
  /** GTID flags byte (bit 0: the transaction may contain statement-based events). */
  flags: number;
  /** Logical clock (multi-threaded replica scheduling), when present (5.7+). */
  lastCommitted?: number;
  sequenceNumber?: number;
  /** Commit time on the originating source, microseconds since the epoch (8.0.1+). */
  originalCommitMicros?: number;
  /** Commit time on the server that wrote this binlog, microseconds since the epoch (8.0.1+). */
  immediateCommitMicros?: number;
  /** Length in bytes of the whole transaction, GTID event included (8.0.2+). */
  transactionLength?: number;
}

export interface XidData {
  kind: 'xid';
  xid: bigint;
}

export interface QueryData {
  kind: 'query';
  /** The statement text (BEGIN, COMMIT, DDL, or DML in statement format), decoded as UTF-8. */
  query: string;
  /** The default database of the session ('' when none). */
  database: string;
  threadId: number;
  /** Seconds the statement took. */
  execTime: number;
  errorCode: number;
  /** True when the statement was longer than this reader decodes (1 MiB); `query` then holds its beginning. */
  truncated: boolean;
}

export interface PreviousGtidsData {
  kind: 'previous_gtids';
  /** The GTIDs written before this file, e.g. `3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5:7`, '' when none. */
  gtidSet: string;
}

export interface StopData {
  kind: 'stop';
}

export interface OtherData {
  kind: 'other';
}

export type BinlogEventData =
  | FormatDescriptionData
  | RotateData
  | GtidData
  | XidData
  | QueryData
  | PreviousGtidsData
  | StopData
  | OtherData;

export type BinlogEvent = { header: BinlogEventHeader } & BinlogEventData;

export interface ReadEventsOptions {
  /** Verify the CRC32 of every event when the binlog has checksums (default true). */
  verifyChecksums?: boolean;
  /**
   * Start at this event boundary (default 4, the first event). The FORMAT_DESCRIPTION event is still read to learn
   * the checksum setting, but only yielded when reading from the start.
   */
  fromPosition?: number;
  /**
   * A binlog that is still being written (or was cut by a crash) may end in the middle of an event. When true,
   * reading stops cleanly after the last whole event; when false (default) that is a BinlogFormatError.
   */
  allowTruncatedTail?: boolean;
}

export interface BinlogStart {
  checksum: BinlogChecksum;
  serverVersion: string;
  serverId: number;
  /** Seconds: the header timestamp of the FORMAT_DESCRIPTION event, i.e. when the server opened the file. */
  firstEventTimestamp: number;
}

export interface BinlogSummary {
  /** The path given. */
  file: string;
  /** Bytes. */
  size: number;
  checksum: BinlogChecksum;
  serverVersion: string;
  serverId: number;
  /** Seconds, the FORMAT_DESCRIPTION event header timestamp. */
  firstEventTimestamp: number;
  /** Seconds, the header timestamp of the last event. */
  lastEventTimestamp: number;
  /** The PREVIOUS_GTIDS set ('' when the file has none or it is empty). */
  previousGtids: string;
  /** Events read (heartbeats are not counted: they never belong in a file). */
  eventCount: number;
  /** The file ends with ROTATE or STOP, i.e. the server finished it. */
  closed: boolean;
  /** The FORMAT_DESCRIPTION event still carries the in-use flag (the active binlog, or the server crashed). */
  inUse: boolean;
  /** The file named by the final ROTATE event. */
  nextFile?: string;
}

/** Where a restore stops replaying a binlog file (see findRestoreStop). */
export type RestoreStop =
  /** Every transaction committed at or before `atMicros` (microseconds since the epoch), none after. */
  | { kind: 'time'; atMicros: number }
  /**
   * Stop at the first transaction whose GTID is in `gtids` (a GTID set text): right before it (`include` false)
   * or right after it (`include` true).
   */
  | { kind: 'gtid'; gtids: string; include: boolean }
  /** Everything. */
  | { kind: 'end' };

export interface TransactionPoint {
  /** Byte offset of the transaction's first event (its GTID event when it has one). */
  startPosition: number;
  /** Byte offset just past the transaction's last event (a `--stop-position` for mysqlbinlog). */
  endPosition: number;
  /** Commit time, microseconds since the epoch. */
  commitMicros: number;
  /**
   * `gtid-commit`: from the GTID event (the commit time on the originating source, else on the server that wrote
   * the binlog). `event-header`: no such timestamp (pre-8.0 binlog, or no GTID event), so the whole second of the
   * header of the event that ended the transaction, which is when its last statement started.
   */
  timeSource: 'gtid-commit' | 'event-header';
  /** The transaction's GTID, when it has one (not anonymous). */
  gtid?: string;
}

export interface RestoreStopResult {
  /** The last transaction of this file to replay; undefined when none is (or the file has none). */
  last?: TransactionPoint;
  /**
   * The stop was met in this file, so no later file is replayed: for `time`, a transaction of this file committed
   * after the target; for `gtid`, a transaction of this file is in the set. Never for `end`.
   */
  reached: boolean;
  /** A transaction after `last` exists in this file (then replay with `--stop-position` = `last.endPosition`). */
  stoppedEarly: boolean;
  /** The first transaction of this file that is not replayed, when `stoppedEarly`. */
  next?: TransactionPoint;
  /** With `listGtids`: the GTIDs of the transactions replayed from this file, and of those after the stop. */
  gtids?: TransactionGtids;
}

/** The GTIDs of the transactions of one file, split at a position (see transactionGtids). */
export interface TransactionGtids {
  /** Transactions that end at or before the position (all the file's transactions without one). */
  before: GtidSet;
  /** The others, including one the file ends in the middle of (a truncated tail). */
  after: GtidSet;
}

// ---- event type codes (Log_event_type in MySQL's binlog_event.h) ----

export const EventType = {
  UNKNOWN_EVENT: 0,
  START_EVENT_V3: 1,
  QUERY_EVENT: 2,
  STOP_EVENT: 3,
  ROTATE_EVENT: 4,
  INTVAR_EVENT: 5,
  SLAVE_EVENT: 7,
  APPEND_BLOCK_EVENT: 9,
  DELETE_FILE_EVENT: 11,
  RAND_EVENT: 13,
  USER_VAR_EVENT: 14,
  FORMAT_DESCRIPTION_EVENT: 15,
  XID_EVENT: 16,
  BEGIN_LOAD_QUERY_EVENT: 17,
  EXECUTE_LOAD_QUERY_EVENT: 18,
  TABLE_MAP_EVENT: 19,
  WRITE_ROWS_EVENT_V1: 23,
  UPDATE_ROWS_EVENT_V1: 24,
  DELETE_ROWS_EVENT_V1: 25,
  INCIDENT_EVENT: 26,
  HEARTBEAT_LOG_EVENT: 27,
  IGNORABLE_LOG_EVENT: 28,
  ROWS_QUERY_LOG_EVENT: 29,
  WRITE_ROWS_EVENT: 30,
  UPDATE_ROWS_EVENT: 31,
  DELETE_ROWS_EVENT: 32,
  GTID_LOG_EVENT: 33,
  ANONYMOUS_GTID_LOG_EVENT: 34,
  PREVIOUS_GTIDS_LOG_EVENT: 35,
  TRANSACTION_CONTEXT_EVENT: 36,
  VIEW_CHANGE_EVENT: 37,
  XA_PREPARE_LOG_EVENT: 38,
  PARTIAL_UPDATE_ROWS_EVENT: 39,
  TRANSACTION_PAYLOAD_EVENT: 40,
  HEARTBEAT_LOG_EVENT_V2: 41,
  GTID_TAGGED_LOG_EVENT: 42,
} as const;

const NAMES: Record<number, string> = {
  ...Object.fromEntries(Object.entries(EventType).map(([name, code]) => [code, name])),
  // Obsolete codes MySQL still reserves.
  6: 'LOAD_EVENT',
  8: 'CREATE_FILE_EVENT',
  10: 'EXEC_LOAD_EVENT',
  12: 'NEW_LOAD_EVENT',
  20: 'PRE_GA_WRITE_ROWS_EVENT',
  21: 'PRE_GA_UPDATE_ROWS_EVENT',
  22: 'PRE_GA_DELETE_ROWS_EVENT',
};

export function eventTypeName(typeCode: number): string {
  return NAMES[typeCode] ?? `UNKNOWN_EVENT_${typeCode}`;
}
