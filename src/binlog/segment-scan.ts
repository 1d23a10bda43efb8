// Where the complete transactions of a binlog file that is still being written end: what a streamer may cut and
// upload as a segment. Pure (a file, no server); reads through the reader's bounded window, so a scan over
// hundreds of MB holds about 2 MiB.
//
// Transaction boundaries come from the reader's TransactionTracker, the same logic findRestoreStop and
// transactionGtids use, so every segment end is a point the restore side also sees as a transaction end. The
// GTID event's transaction_length is deliberately not the authority: binlogs older than 8.0.2 lack it, a wrong
// one would cut a transaction in two with nothing to notice it, a second rule could disagree with the restore
// side's, and it says nothing about events outside transactions. As a fallback for an end the tracker does not
// recognise, the start of any GTID event is a boundary too (MySQL never interleaves transactions, so everything
// before a GTID event is whole): a missed end only delays the boundary to the next transaction.

import { open } from 'node:fs/promises';
import { HEADER_LENGTH, parseHeader } from './decode.ts';
import { BinlogSession, TransactionTracker } from './reader.ts';
import { BinlogFormatError, EventType, type BinlogChecksum, type BinlogEvent } from './types.ts';

export interface BinlogFileHead {
  checksum: BinlogChecksum;
  /** FDE header timestamp, epoch seconds */
  seriesStart: number;
  serverVersion: string;
  serverId: number;
  /** offset just past the FDE (and nothing else) */
  fdeEnd: number;
}

export interface SegmentScan {
  /** One past the last complete transaction (or event outside any transaction) found at or after `from`; === from when none. */
  end: number;
  /** `end` is past the file's ROTATE or STOP event: nothing more will be written to this file. */
  closesFile: boolean;
  /**
   * GTIDs (as MySQL prints them, uuid:n or uuid:tag:n) of the first and last complete transaction in [from, end)
   * that has one; null when none (or all anonymous).
   */
  firstGtid: string | null;
  lastGtid: string | null;
  /**
   * Commit time, epoch microseconds, of the last complete transaction in [from, end): the GTID event's original
   * (else immediate) commit timestamp, else the header time of its last event; null when none.
   */
  lastCommitMicros: number | null;
  transactions: number;
}

const MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
const SCAN_WINDOW = 1 << 20;
const HEAD_WINDOW = 4096;
const MAX_FDE_SIZE = 64 * 1024;

/**
 * The magic bytes and FORMAT_DESCRIPTION of a (possibly still growing) binlog file; undefined while the FDE is not
 * fully written yet. Throws BinlogFormatError on a file that is not a binlog (bad magic, encrypted).
 */
export async function readBinlogHead(file: string): Promise<BinlogFileHead | undefined> {
  if (!(await fdeComplete(file))) return undefined;
  const s = await BinlogSession.open(file, { verifyChecksums: true }, HEAD_WINDOW);
  try {
    const { header } = s.fdeEvent;
    return {
      checksum: s.fde.checksum,
      seriesStart: header.timestamp,
      serverVersion: s.fde.serverVersion,
      serverId: header.serverId,
      fdeEnd: header.position + header.eventSize,
    };
  } finally {
    await s.close();
  }
}

/**
 * Whether the file holds its whole FORMAT_DESCRIPTION event. False only for what looks like the beginning of a
 * binlog; anything else is true, and opening the file then reports what is wrong with it.
 */
async function fdeComplete(file: string): Promise<boolean> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    const prefix = Buffer.alloc(Math.min(size, MAGIC.length + HEADER_LENGTH));
    const { bytesRead } = await fh.read(prefix, 0, prefix.length, 0);
    const have = prefix.subarray(0, bytesRead);
    if (!have.subarray(0, MAGIC.length).equals(MAGIC.subarray(0, Math.min(have.length, MAGIC.length)))) return true;
    if (have.length < MAGIC.length + HEADER_LENGTH) return false;
    const fde = parseHeader(have, MAGIC.length);
    if (fde.typeCode !== EventType.FORMAT_DESCRIPTION_EVENT || fde.eventSize > MAX_FDE_SIZE) return true;
    return MAGIC.length + fde.eventSize <= size;
  } finally {
    await fh.close();
  }
}

/**
 * Reads a binlog file that another process may still be appending to, from `from` (an event boundary: 0, or an
 * `end` an earlier scan returned) to its current size, and returns where the complete transactions end. A partly
 * written last event or transaction is left for the next scan. Every event's CRC32 is checked when head.checksum is
 * crc32 (BinlogFormatError naming the offset otherwise). `maxBytes` (optional) stops at the last boundary before
 * from + maxBytes, except that one transaction bigger than that is returned whole.
 */
export async function scanCompleteTransactions(
  file: string,
  from: number,
  head: BinlogFileHead,
  opts: { maxBytes?: number } = {},
): Promise<SegmentScan> {
  if (!Number.isInteger(from) || from < 0 || (from > 0 && from < head.fdeEnd)) {
    throw new BinlogFormatError(file, from, `a scan starts at 0 or at an event boundary after the FORMAT_DESCRIPTION event (${head.fdeEnd}), not at ${from}`);
  }
  const s = await BinlogSession.open(
    file,
    { verifyChecksums: true, allowTruncatedTail: true, fromPosition: from === 0 ? undefined : from },
    SCAN_WINDOW,
  );
  try {
    checkSameFile(file, s, head);
    const limit = from + (opts.maxBytes ?? Number.POSITIVE_INFINITY);
    const scan = new BoundaryScan(from);
    if (s.yieldFde) scan.push(s.fdeEvent);
    for (let ev = s.nextBuffered() ?? (await s.next()); ev; ev = s.nextBuffered() ?? (await s.next())) {
      if (ev.header.position + ev.header.eventSize > limit && scan.end > from) break;
      scan.push(ev);
      if (scan.closesFile) break;
    }
    return scan.result();
  } finally {
    await s.close();
  }
}

/** The file still starts with the FORMAT_DESCRIPTION event `head` was read from (not replaced by a new series). */
function checkSameFile(file: string, s: BinlogSession, head: BinlogFileHead): void {
  const { timestamp } = s.fdeEvent.header;
  if (timestamp !== head.seriesStart || s.fde.checksum !== head.checksum) {
    throw new BinlogFormatError(
      file,
      4,
      `the FORMAT_DESCRIPTION event changed (header time ${timestamp}, checksum ${s.fde.checksum}; expected ${head.seriesStart}, ${head.checksum}): the file was replaced`,
    );
  }
}

/** Follows the events of a scan and keeps the last boundary with what the transactions before it were. */
class BoundaryScan implements SegmentScan {
  end: number;
  closesFile = false;
  firstGtid: string | null = null;
  lastGtid: string | null = null;
  lastCommitMicros: number | null = null;
  transactions = 0;
  private readonly tracker = new TransactionTracker();

  constructor(from: number) {
    this.end = from;
  }

  push(ev: BinlogEvent): void {
    const { position, eventSize } = ev.header;
    if (ev.kind === 'rotate' || ev.kind === 'stop') {
      // The server writes these between transactions, as the file's last event: the file ends here whatever the
      // tracker thinks, so that a file's segments always cover it whole.
      this.end = position + eventSize;
      this.closesFile = true;
      return;
    }
    if (ev.kind === 'gtid') this.end = position;
    const trx = this.tracker.push(ev);
    if (trx) {
      this.transactions++;
      this.lastCommitMicros = trx.commitMicros;
      if (trx.gtid) {
        this.firstGtid ??= trx.gtid;
        this.lastGtid = trx.gtid;
      }
      this.end = trx.endPosition;
    } else if (this.tracker.idle) {
      this.end = position + eventSize; // FORMAT_DESCRIPTION, PREVIOUS_GTIDS: events outside any transaction
    }
  }

  result(): SegmentScan {
    const { end, closesFile, firstGtid, lastGtid, lastCommitMicros, transactions } = this;
    return { end, closesFile, firstGtid, lastGtid, lastCommitMicros, transactions };
  }
}
