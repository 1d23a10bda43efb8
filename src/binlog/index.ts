// MySQL binary log file reader (pure, no MySQL needed; see reader.ts), and GTID set maths (gtid-set.ts).
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
export { GtidSet, GtidSetError, formatGtid, parseGtid, type Gtid } from './gtid-set.ts';
