// MySQL binary logs without a server: the file reader (pure, no MySQL needed; see reader.ts), where the complete
// transactions of a growing file end (segment-scan.ts), GTID set maths (gtid-set.ts) and binlog file names
// (file-name.ts). Knows nothing of backups, storage or the metadata center.
// May import: nothing from src.
export {
  BinlogFormatError,
  EventType,
  eventTypeName,
  findRestoreStop,
  readBinlogStart,
  readEvents,
  summarizeBinlog,
  transactionGtids,
} from './reader.ts';
export type {
  BinlogChecksum,
  BinlogEvent,
  BinlogEventData,
  BinlogEventHeader,
  BinlogStart,
  BinlogSummary,
  ReadEventsOptions,
  RestoreStop,
  RestoreStopResult,
  TransactionGtids,
  TransactionPoint,
} from './reader.ts';
export { readBinlogHead, scanCompleteTransactions, type BinlogFileHead, type SegmentScan } from './segment-scan.ts';
export { GtidSet, GtidSetError, formatGtid, parseGtid, type Gtid } from './gtid-set.ts';
export { binlogFileName, compareBinlogFiles, nextBinlogFile, parseBinlogFileName, type BinlogFileName } from './file-name.ts';
