// Streaming reader for MySQL binary log files (v4 format, MySQL 5.6 - 9.x).
//
// The file is read through one FileHandle and a fixed 1 MiB window, event by event: memory stays bounded whatever
// the file size. Events whose body is not decoded (rows, table maps, ...) are never held whole: when larger than
// the window their checksum is computed while streaming them through a second buffer of the same size. Decoded
// events are small by nature, except QUERY (its statement text is decoded up to 1 MiB) and PREVIOUS_GTIDS (up to
// 64 MiB, far beyond any real GTID set).

import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from './crc32.ts';
import {
  CHECKSUM_LENGTH,
  DecodeError,
  FLAG_BINLOG_IN_USE,
  FLAGS_OFFSET,
  HEADER_LENGTH,
  decodeBody,
  decodeFormatDescription,
  parseHeader,
  type DecodedFde,
  type FormatContext,
  type RawHeader,
} from './decode.ts';
import {
  BinlogFormatError,
  EventType,
  eventTypeName,
  type BinlogEvent,
  type BinlogEventData,
  type BinlogEventHeader,
  type BinlogStart,
  type BinlogSummary,
  type GtidData,
  type ReadEventsOptions,
  type RestoreStop,
  type RestoreStopResult,
  type TransactionGtids,
  type TransactionPoint,
} from './types.ts';
import { GtidSet } from './gtid-set.ts';

export * from './types.ts';

const MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]); // \xfebin
const ENCRYPTED_MAGIC = Buffer.from([0xfd, 0x62, 0x69, 0x6e]); // binlog_encryption=ON
const WINDOW = 1 << 20;
const START_WINDOW = 4096;
const QUERY_DECODE_LIMIT = 1 << 20;
const MAX_DECODED_EVENT = 64 << 20;

const DECODED_TYPES = new Set<number>([
  EventType.QUERY_EVENT,
  EventType.STOP_EVENT,
  EventType.ROTATE_EVENT,
  EventType.FORMAT_DESCRIPTION_EVENT,
  EventType.XID_EVENT,
  EventType.GTID_LOG_EVENT,
  EventType.ANONYMOUS_GTID_LOG_EVENT,
  EventType.PREVIOUS_GTIDS_LOG_EVENT,
  EventType.GTID_TAGGED_LOG_EVENT,
]);
const HEARTBEATS = new Set<number>([EventType.HEARTBEAT_LOG_EVENT, EventType.HEARTBEAT_LOG_EVENT_V2]);

/**
 * Reads only the magic bytes and the FORMAT_DESCRIPTION event (a few hundred bytes): what the archive needs to
 * date a binlog file and know how it is checksummed.
 */
export async function readBinlogStart(file: string): Promise<BinlogStart> {
  const s = await BinlogSession.open(file, { verifyChecksums: true }, START_WINDOW);
  try {
    const { fde } = s;
    return {
      checksum: fde.checksum,
      serverVersion: fde.serverVersion,
      serverId: s.fdeEvent.header.serverId,
      firstEventTimestamp: s.fdeEvent.header.timestamp,
    };
  } finally {
    await s.close();
  }
}

/**
 * Yields the events of a binlog file in order, FORMAT_DESCRIPTION first (unless `fromPosition` skips it).
 * Heartbeat events are skipped. Throws BinlogFormatError when the file is not a binlog, is corrupt, or (unless
 * `allowTruncatedTail`) ends mid-event. Breaking out of the loop closes the file.
 */
export async function* readEvents(file: string, opts: ReadEventsOptions = {}): AsyncGenerator<BinlogEvent> {
  const s = await BinlogSession.open(file, opts, WINDOW);
  try {
    if (s.yieldFde) yield s.fdeEvent;
    for (let ev = s.nextBuffered() ?? (await s.next()); ev; ev = s.nextBuffered() ?? (await s.next())) yield ev;
  } finally {
    await s.close();
  }
}

/** Reads the whole file (checksums verified) and sums it up. */
export async function summarizeBinlog(
  file: string,
  opts: Pick<ReadEventsOptions, 'verifyChecksums' | 'allowTruncatedTail'> = {},
): Promise<BinlogSummary> {
  const s = await BinlogSession.open(file, { ...opts, fromPosition: undefined }, WINDOW);
  try {
    const { fde, fdeEvent } = s;
    let last: BinlogEvent = fdeEvent;
    let eventCount = 1;
    let previousGtids: string | undefined;
    for (let ev = s.nextBuffered() ?? (await s.next()); ev; ev = s.nextBuffered() ?? (await s.next())) {
      eventCount++;
      if (ev.kind === 'previous_gtids' && previousGtids === undefined) previousGtids = ev.gtidSet;
      last = ev;
    }
    const summary: BinlogSummary = {
      file,
      size: s.size,
      checksum: fde.checksum,
      serverVersion: fde.serverVersion,
      serverId: fdeEvent.header.serverId,
      firstEventTimestamp: fdeEvent.header.timestamp,
      lastEventTimestamp: last.header.timestamp,
      previousGtids: previousGtids ?? '',
      eventCount,
      closed: last.kind === 'rotate' || last.kind === 'stop',
      inUse: fde.inUse,
    };
    if (last.kind === 'rotate') summary.nextFile = last.nextFile;
    return summary;
  } finally {
    await s.close();
  }
}

/**
 * For point-in-time restore: where to stop replaying this file, and the last transaction replayed. Always a prefix
 * ending at a transaction boundary, cut at the first transaction past the stop even when a later one has an earlier
 * commit time again (clock stepped back, several sources relayed). `time` compares the commit time the GTID event
 * carries (the originating source's, what a DBA means on a replica's binlog, else this server's); only without one
 * the header time of the event ending the transaction, which is when a statement started. `gtid`: the first
 * transaction whose GTID is in the set (GtidSetError when the text is malformed). `end`: every transaction.
 */
export async function findRestoreStop(
  file: string,
  stop: RestoreStop,
  opts: Pick<ReadEventsOptions, 'verifyChecksums' | 'allowTruncatedTail'> & { listGtids?: boolean } = {},
): Promise<RestoreStopResult> {
  const isPast = stopTest(stop);
  const includeMatch = stop.kind === 'gtid' && stop.include;
  const s = await BinlogSession.open(file, { ...opts, fromPosition: undefined }, WINDOW);
  try {
    const result: RestoreStopResult = { reached: false, stoppedEarly: false };
    // With listGtids the rest of the file is read too, for the GTIDs after the stop: one pass instead of two.
    const gtids: TransactionGtids | undefined = opts.listGtids ? { before: new GtidSet(), after: new GtidSet() } : undefined;
    const tracker = new TransactionTracker();
    for (let ev = s.nextBuffered() ?? (await s.next()); ev; ev = s.nextBuffered() ?? (await s.next())) {
      const trx = tracker.push(ev);
      if (!trx) continue;
      if (result.stoppedEarly) {
        if (trx.gtid) gtids!.after.add(trx.gtid);
        continue;
      }
      if (result.reached || isPast(trx)) {
        const firstMatch = !result.reached;
        result.reached = true;
        if (!(includeMatch && firstMatch)) {
          result.stoppedEarly = true;
          result.next = trx;
          if (!gtids) break;
          if (trx.gtid) gtids.after.add(trx.gtid);
          continue;
        }
      }
      result.last = trx;
      if (trx.gtid) gtids?.before.add(trx.gtid);
    }
    if (gtids) {
      const unfinished = tracker.pendingGtid();
      if (unfinished) gtids.after.add(unfinished);
      result.gtids = gtids;
    }
    return result;
  } finally {
    await s.close();
  }
}

/**
 * The GTIDs of the file's transactions, split at `untilPosition` (a transaction end, e.g. a stop position):
 * what a replay up to there must have applied, and what it must not have. Anonymous transactions have none.
 */
export async function transactionGtids(
  file: string,
  opts: { untilPosition?: number } & Pick<ReadEventsOptions, 'verifyChecksums' | 'allowTruncatedTail'> = {},
): Promise<TransactionGtids> {
  const until = opts.untilPosition ?? Number.POSITIVE_INFINITY;
  const s = await BinlogSession.open(file, { ...opts, fromPosition: undefined }, WINDOW);
  try {
    const result: TransactionGtids = { before: new GtidSet(), after: new GtidSet() };
    const tracker = new TransactionTracker();
    for (let ev = s.nextBuffered() ?? (await s.next()); ev; ev = s.nextBuffered() ?? (await s.next())) {
      const trx = tracker.push(ev);
      if (trx?.gtid) (trx.endPosition <= until ? result.before : result.after).add(trx.gtid);
    }
    const unfinished = tracker.pendingGtid();
    if (unfinished) result.after.add(unfinished);
    return result;
  } finally {
    await s.close();
  }
}

/** Whether a transaction is past the stop (for `gtid`: is the one to stop at). */
function stopTest(stop: RestoreStop): (trx: TransactionPoint) => boolean {
  switch (stop.kind) {
    case 'time':
      return (trx) => trx.commitMicros > stop.atMicros;
    case 'gtid': {
      const set = GtidSet.parse(stop.gtids);
      return (trx) => trx.gtid !== undefined && set.contains(trx.gtid);
    }
    case 'end':
      return () => false;
  }
}

/**
 * Finds transaction boundaries in a stream of events. A transaction ends with an XID event, a COMMIT or ROLLBACK
 * query (not ROLLBACK TO SAVEPOINT), a statement outside BEGIN ... COMMIT (DDL; CREATE TABLE ... SELECT is
 * wrapped in BEGIN ... XID since 8.0.21), an XA_PREPARE event, or a TRANSACTION_PAYLOAD event
 * (binlog_transaction_compression: the whole transaction is inside). A GTID event starts one.
 */
export class TransactionTracker {
  private gtid: GtidData | undefined;
  private startPosition: number | undefined;
  private inTransaction = false;

  /** Feeds the next event; returns the transaction it ends, if it ends one. */
  push(ev: BinlogEvent): TransactionPoint | undefined {
    const { header } = ev;
    if (ev.kind === 'gtid') {
      this.gtid = ev;
      this.startPosition = header.position;
      this.inTransaction = false;
      return undefined;
    }
    if (ev.kind === 'format_description' || ev.kind === 'previous_gtids' || ev.kind === 'rotate' || ev.kind === 'stop') {
      return undefined;
    }
    this.startPosition ??= header.position;
    if (!this.ends(ev)) return undefined;
    const point = this.point(header);
    this.gtid = undefined;
    this.startPosition = undefined;
    this.inTransaction = false;
    return point;
  }

  /** No transaction is open: the events pushed so far end at a transaction boundary. */
  get idle(): boolean {
    return this.gtid === undefined && this.startPosition === undefined;
  }

  /** The GTID of a transaction begun but not ended (the file is cut in its middle). */
  pendingGtid(): string | undefined {
    return this.gtid && !this.gtid.anonymous ? this.gtid.gtid : undefined;
  }

  private ends(ev: BinlogEvent): boolean {
    if (ev.kind === 'xid') return true;
    if (ev.kind === 'query') {
      const q = ev.query.trimStart().slice(0, 24).toUpperCase();
      if (/^(BEGIN|XA START)\b/.test(q)) {
        this.inTransaction = true;
        return false;
      }
      if (/^(COMMIT|ROLLBACK)\b(?!\s+TO\b)/.test(q)) return true;
      return !this.inTransaction; // DDL, or any statement that is its own transaction (XA COMMIT, ...)
    }
    const { typeCode } = ev.header;
    return typeCode === EventType.XA_PREPARE_LOG_EVENT || typeCode === EventType.TRANSACTION_PAYLOAD_EVENT;
  }

  private point(end: BinlogEventHeader): TransactionPoint {
    const g = this.gtid;
    // 0 is what a replica writes as the original commit time of a transaction from a pre-8.0 source.
    const gtidMicros = [g?.originalCommitMicros, g?.immediateCommitMicros].find((t) => t !== undefined && t > 0);
    const point: TransactionPoint = {
      startPosition: this.startPosition ?? end.position,
      endPosition: end.position + end.eventSize,
      commitMicros: gtidMicros ?? end.timestamp * 1e6,
      timeSource: gtidMicros === undefined ? 'event-header' : 'gtid-commit',
    };
    if (g && !g.anonymous) point.gtid = g.gtid;
    return point;
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** A fixed-size read window over the file, plus a second buffer for streaming checksums of large events. */
class FileWindow {
  readonly buf: Buffer;
  /** File offset of buf[0]. */
  private start = 0;
  private length = 0;
  private scratch: Buffer | undefined;

  constructor(
    private readonly fh: FileHandle,
    private readonly file: string,
    readonly size: number,
    readonly capacity: number,
  ) {
    this.buf = Buffer.allocUnsafe(capacity);
  }

  /** Where [pos, pos + n) sits in `buf`, or -1 when it is not loaded. */
  offsetOf(pos: number, n: number): number {
    return pos >= this.start && pos + n <= this.start + this.length ? pos - this.start : -1;
  }

  /** `n` bytes at `pos`, valid until the next call of get(). The caller checks that they are inside the file. */
  async get(pos: number, n: number): Promise<Buffer> {
    const off = this.offsetOf(pos, n);
    if (off >= 0) return this.buf.subarray(off, off + n);
    if (n > this.capacity) {
      const big = Buffer.allocUnsafe(n);
      await this.readFully(big, n, pos);
      return big;
    }
    const want = Math.min(this.capacity, this.size - pos);
    this.length = 0; // invalid while reading
    await this.readFully(this.buf, want, pos);
    this.start = pos;
    this.length = want;
    return this.buf.subarray(0, n);
  }

  /** CRC32 of [from, to) continuing `crc`, read through the scratch buffer (the window is left untouched). */
  async crc(from: number, to: number, crc: number): Promise<number> {
    const scratch = (this.scratch ??= Buffer.allocUnsafe(this.capacity));
    for (let pos = from; pos < to; ) {
      const n = Math.min(scratch.length, to - pos);
      await this.readFully(scratch, n, pos);
      crc = crc32(scratch, 0, n, crc);
      pos += n;
    }
    return crc;
  }

  async u32(pos: number): Promise<number> {
    const b = Buffer.allocUnsafe(4);
    await this.readFully(b, 4, pos);
    return b.readUInt32LE(0);
  }

  private async readFully(into: Buffer, n: number, pos: number): Promise<void> {
    for (let done = 0; done < n; ) {
      const { bytesRead } = await this.fh.read(into, done, n - done, pos + done);
      if (bytesRead === 0) {
        throw new BinlogFormatError(this.file, pos + done, 'the file became shorter while it was being read');
      }
      done += bytesRead;
    }
  }
}

/**
 * One pass over one file. `nextBuffered()` returns the next event without any I/O or promise when it is already in
 * the read window (the common case, and what keeps millions of small events cheap); `next()` does the rest.
 */
export class BinlogSession {
  /** Where the next event starts. */
  private pos: number;
  private done = false;
  private readonly ctx: FormatContext;
  private readonly hasCrc: boolean;
  private readonly minEventSize: number;

  private constructor(
    private readonly fh: FileHandle,
    private readonly file: string,
    private readonly win: FileWindow,
    readonly size: number,
    readonly fde: DecodedFde,
    readonly fdeEvent: BinlogEvent,
    readonly yieldFde: boolean,
    start: number,
    private readonly verify: boolean,
    private readonly allowTruncatedTail: boolean,
  ) {
    this.pos = start;
    this.ctx = { checksum: fde.checksum, postHeaderLengths: fde.postHeaderLengths };
    this.hasCrc = fde.checksum === 'crc32';
    this.minEventSize = HEADER_LENGTH + (this.hasCrc ? CHECKSUM_LENGTH : 0);
  }

  static async open(file: string, opts: ReadEventsOptions, windowSize: number): Promise<BinlogSession> {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const win = new FileWindow(fh, file, size, Math.max(256, Math.min(windowSize, size)));
      const verify = opts.verifyChecksums ?? true;
      const magic = size >= 4 ? await win.get(0, 4) : Buffer.alloc(0);
      if (!magic.equals(MAGIC)) {
        if (magic.equals(ENCRYPTED_MAGIC)) {
          throw new BinlogFormatError(file, 0, 'this binary log is encrypted (binlog_encryption=ON); reading encrypted binlogs is not supported');
        }
        const seen = size < 4 ? `the file is only ${size} bytes` : `it starts with ${magic.toString('hex')}`;
        throw new BinlogFormatError(file, 0, `not a MySQL binary log: expected the magic bytes fe62696e ("\\xfebin"), but ${seen}`);
      }
      const { fde, event } = await readFde(file, win, verify);
      const fdeEnd = 4 + fde.eventSize;
      let start = fdeEnd;
      const from = opts.fromPosition ?? 4;
      if (from !== 4) {
        if (!Number.isInteger(from) || from < fdeEnd || from > size) {
          throw new BinlogFormatError(
            file,
            from,
            `fromPosition ${from} is not an event position (events after the FORMAT_DESCRIPTION event start at ${fdeEnd}; the file has ${size} bytes)`,
          );
        }
        start = from;
        if (size - from >= HEADER_LENGTH) {
          const h = parseHeader(await win.get(from, HEADER_LENGTH), 0);
          if (h.nextPosition !== 0 && h.nextPosition !== from + h.eventSize) {
            throw new BinlogFormatError(file, from, `fromPosition ${from} is not the start of an event`);
          }
        }
      }
      return new BinlogSession(fh, file, win, size, fde, event, from === 4, start, verify, opts.allowTruncatedTail ?? false);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  close(): Promise<void> {
    return this.fh.close();
  }

  /**
   * The next event if it can be had from the read window alone, else undefined: then call next(), which also
   * handles the end of the file, truncation, errors and large events.
   */
  nextBuffered(): BinlogEvent | undefined {
    for (;;) {
      if (this.done) return undefined;
      const { win, pos } = this;
      const off = win.offsetOf(pos, HEADER_LENGTH);
      if (off < 0) return undefined;
      const eventSize = win.buf.readUInt32LE(off + 9);
      if (eventSize < this.minEventSize || eventSize > this.size - pos) return undefined;
      const typeCode = win.buf[off + 4]!;
      const needed = DECODED_TYPES.has(typeCode) || (this.verify && this.hasCrc) ? eventSize : HEADER_LENGTH;
      if (win.offsetOf(pos, needed) < 0) return undefined;
      const ev = this.finish(pos, parseHeader(win.buf, off), win.buf, off, needed);
      if (!HEARTBEATS.has(typeCode)) return ev;
    }
  }

  /** The next event, or undefined at the end of the file. Skips heartbeats. */
  async next(): Promise<BinlogEvent | undefined> {
    for (;;) {
      const ev = this.nextBuffered() ?? (await this.readOne());
      if (!ev || !HEARTBEATS.has(ev.header.typeCode)) return ev;
    }
  }

  private truncated(detail: string): undefined {
    if (this.allowTruncatedTail) {
      this.done = true;
      return undefined;
    }
    throw new BinlogFormatError(this.file, this.pos, `${detail}: the file is truncated or corrupt`);
  }

  /** The general path: reads what the window lacks, checks sizes, streams the checksum of large events. */
  private async readOne(): Promise<BinlogEvent | undefined> {
    if (this.done || this.pos >= this.size) return undefined;
    const { file, win, size } = this;
    const pos = this.pos;
    const remaining = size - pos;
    if (remaining < HEADER_LENGTH) {
      return this.truncated(`the file ends ${remaining} bytes into an event header`);
    }
    const raw = parseHeader(await win.get(pos, HEADER_LENGTH), 0);
    const typeName = eventTypeName(raw.typeCode);
    if (raw.eventSize < this.minEventSize) {
      throw new BinlogFormatError(
        file,
        pos,
        `impossible event size ${raw.eventSize} (type code ${raw.typeCode}); the file is corrupt or this is not an event boundary`,
      );
    }
    if (raw.eventSize > remaining) {
      return this.truncated(`the ${typeName} at ${pos} claims ${raw.eventSize} bytes but only ${remaining} remain`);
    }
    const verifying = this.verify && this.hasCrc;
    let hold: number; // bytes of the event held in memory
    if (raw.typeCode === EventType.FORMAT_DESCRIPTION_EVENT) {
      hold = raw.eventSize; // at most 64 KiB, checked when decoding
    } else if (!DECODED_TYPES.has(raw.typeCode)) {
      hold = verifying && raw.eventSize <= win.capacity ? raw.eventSize : HEADER_LENGTH;
    } else if (raw.typeCode === EventType.QUERY_EVENT && raw.eventSize > QUERY_DECODE_LIMIT) {
      hold = QUERY_DECODE_LIMIT;
    } else if (raw.eventSize > MAX_DECODED_EVENT) {
      throw new BinlogFormatError(file, pos, `the ${typeName} at ${pos} is ${raw.eventSize} bytes, more than this reader decodes (${MAX_DECODED_EVENT})`);
    } else {
      hold = raw.eventSize;
    }
    const ev = await win.get(pos, hold);
    let streamed: { computed: number; stored: number } | undefined;
    if (verifying && hold < raw.eventSize) {
      const crcEnd = pos + raw.eventSize - CHECKSUM_LENGTH;
      streamed = { computed: await win.crc(pos + hold, crcEnd, crc32(ev, 0, hold)), stored: await win.u32(crcEnd) };
    }
    return this.finish(pos, raw, ev, 0, hold, streamed);
  }

  /** Verifies and decodes the event whose first `hold` bytes are at buf[off]; advances past it. No I/O. */
  private finish(
    pos: number,
    raw: RawHeader,
    buf: Buffer,
    off: number,
    hold: number,
    streamed?: { computed: number; stored: number },
  ): BinlogEvent {
    const { file, ctx } = this;
    const typeName = eventTypeName(raw.typeCode);
    const header = toHeader(raw, pos, typeName);
    const size = raw.eventSize;

    if (raw.typeCode === EventType.FORMAT_DESCRIPTION_EVENT) {
      // A second FDE does not occur in binlogs the server writes; decode it without changing how this file is read.
      const ev = Buffer.from(buf.subarray(off, off + size));
      const fde = decodeOrThrow(file, pos, typeName, () => decodeFormatDescription(ev, raw));
      if (this.verify) verifyFdeCrc(file, pos, ev, fde);
      this.pos = pos + size;
      return { header, ...publicFde(fde) };
    }

    if (this.verify && this.hasCrc) {
      const crcEnd = size - CHECKSUM_LENGTH;
      const computed = streamed ? streamed.computed : crc32(buf, off, off + crcEnd);
      const stored = streamed ? streamed.stored : buf.readUInt32LE(off + crcEnd);
      if (computed !== stored) {
        throw new BinlogFormatError(
          file,
          pos,
          `checksum mismatch in the ${typeName} (${size} bytes): stored CRC32 ${hex32(stored)}, computed ${hex32(computed)}; the file is corrupt`,
        );
      }
    }

    let data: BinlogEventData = OTHER;
    if (DECODED_TYPES.has(raw.typeCode)) {
      const ev = buf.subarray(off, off + hold);
      const bodyEnd = size - (this.hasCrc ? CHECKSUM_LENGTH : 0);
      data = decodeOrThrow(file, pos, typeName, () => decodeBody(ev, raw.typeCode, bodyEnd, ctx, hold < size));
    }
    this.pos = pos + size;
    return { header, ...data };
  }
}

const OTHER: BinlogEventData = { kind: 'other' };

async function readFde(file: string, win: FileWindow, verify: boolean): Promise<{ fde: DecodedFde & { eventSize: number }; event: BinlogEvent }> {
  const pos = 4;
  const remaining = win.size - pos;
  if (remaining < HEADER_LENGTH) {
    throw new BinlogFormatError(file, pos, `the file ends ${remaining} bytes into the first event header (a binlog starts with a FORMAT_DESCRIPTION event)`);
  }
  const raw = parseHeader(await win.get(pos, HEADER_LENGTH), 0);
  if (raw.typeCode !== EventType.FORMAT_DESCRIPTION_EVENT) {
    const why = raw.typeCode === EventType.START_EVENT_V3 ? ' (binlog format v1/v3 of MySQL < 5.0 is not supported)' : '';
    throw new BinlogFormatError(file, pos, `the first event is ${eventTypeName(raw.typeCode)}, expected FORMAT_DESCRIPTION_EVENT${why}`);
  }
  if (raw.eventSize < HEADER_LENGTH + 57 || raw.eventSize > 64 * 1024) {
    throw new BinlogFormatError(file, pos, `impossible FORMAT_DESCRIPTION event size ${raw.eventSize}`);
  }
  if (raw.eventSize > remaining) {
    throw new BinlogFormatError(file, pos, `the FORMAT_DESCRIPTION event claims ${raw.eventSize} bytes but only ${remaining} remain: the file is truncated`);
  }
  const ev = Buffer.from(await win.get(pos, raw.eventSize));
  const fde = decodeOrThrow(file, pos, 'FORMAT_DESCRIPTION_EVENT', () => decodeFormatDescription(ev, raw));
  if (verify) verifyFdeCrc(file, pos, ev, fde);
  const header = toHeader(raw, pos, 'FORMAT_DESCRIPTION_EVENT');
  return { fde: { ...fde, eventSize: raw.eventSize }, event: { header, ...publicFde(fde) } };
}

/**
 * Servers >= 5.6.1 always end the FDE with a CRC32, even with binlog_checksum=NONE, computed with the in-use
 * flag cleared (the server clears that flag in place when it closes the file, without rewriting the CRC).
 * With checksum NONE a zero CRC is tolerated (written by tools other than mysqld).
 */
function verifyFdeCrc(file: string, pos: number, ev: Buffer, fde: DecodedFde): void {
  if (!fde.hasCrc) return;
  const crcEnd = ev.length - CHECKSUM_LENGTH;
  const stored = ev.readUInt32LE(crcEnd);
  if (fde.checksum === 'none' && stored === 0) return;
  const copy = Buffer.from(ev.subarray(0, crcEnd));
  copy[FLAGS_OFFSET] = copy[FLAGS_OFFSET]! & ~FLAG_BINLOG_IN_USE;
  const computed = crc32(copy);
  if (computed !== stored) {
    throw new BinlogFormatError(
      file,
      pos,
      `checksum mismatch in the FORMAT_DESCRIPTION_EVENT: stored CRC32 ${hex32(stored)}, computed ${hex32(computed)}; the file is corrupt`,
    );
  }
}

function publicFde(fde: DecodedFde): BinlogEventData {
  const { binlogVersion, serverVersion, createTimestamp, headerLength, checksum, inUse } = fde;
  return { kind: 'format_description', binlogVersion, serverVersion, createTimestamp, headerLength, checksum, inUse };
}

function toHeader(raw: RawHeader, position: number, typeName: string): BinlogEventHeader {
  return {
    position,
    timestamp: raw.timestamp,
    typeCode: raw.typeCode,
    typeName,
    serverId: raw.serverId,
    eventSize: raw.eventSize,
    nextPosition: raw.nextPosition,
    flags: raw.flags,
  };
}

function decodeOrThrow<T>(file: string, pos: number, typeName: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof DecodeError) {
      throw new BinlogFormatError(file, pos + err.relativeOffset, `cannot decode the ${typeName} that starts at ${pos}: ${err.message}`);
    }
    throw err;
  }
}

function hex32(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}
