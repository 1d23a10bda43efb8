// MySQL binary log file reader (pure: reads files, needs no server). See reader.ts.
export {
  BinlogFormatError,
  EventType,
  eventTypeName,
  findLastTransactionAtOrBefore,
  readBinlogStart,
  readEvents,
  summarizeBinlog,
} from './reader.ts';
export type {
  BinlogChecksum,
  BinlogEvent,
  BinlogEventData,
  BinlogEventHeader,
  BinlogStart,
  BinlogSummary,
  ReadEventsOptions,
  TransactionPoint,
} from './reader.ts';
