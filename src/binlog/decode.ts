// Decoders for the bodies of the binlog events this reader understands. Pure functions over one event's bytes;
// they throw DecodeError with an offset relative to the event start, which the reader turns into a
// BinlogFormatError naming the file and the absolute offset.

import {
  EventType,
  type BinlogChecksum,
  type BinlogEventData,
  type FormatDescriptionData,
  type GtidData,
  type QueryData,
} from './types.ts';

export const HEADER_LENGTH = 19;
export const CHECKSUM_LENGTH = 4;
/** LOG_EVENT_BINLOG_IN_USE_F, set in the FORMAT_DESCRIPTION event header flags while the file is open. */
export const FLAG_BINLOG_IN_USE = 0x1;
/** Offset of the flags field in the common header. */
export const FLAGS_OFFSET = 17;

export class DecodeError extends Error {
  constructor(
    message: string,
    readonly relativeOffset = 0,
  ) {
    super(message);
  }
}

export interface RawHeader {
  timestamp: number;
  typeCode: number;
  serverId: number;
  eventSize: number;
  nextPosition: number;
  flags: number;
}

export function parseHeader(b: Buffer, at: number): RawHeader {
  return {
    timestamp: b.readUInt32LE(at),
    typeCode: b[at + 4]!,
    serverId: b.readUInt32LE(at + 5),
    eventSize: b.readUInt32LE(at + 9),
    nextPosition: b.readUInt32LE(at + 13),
    flags: b.readUInt16LE(at + 17),
  };
}

/** What the FORMAT_DESCRIPTION event says about how to read the rest of the file. */
export interface FormatContext {
  checksum: BinlogChecksum;
  /** Post-header length per event type code (index = code - 1), as announced by the FDE. */
  postHeaderLengths: number[];
}

// ---- FORMAT_DESCRIPTION_EVENT ----

const FDE_FIXED = 2 + 50 + 4 + 1; // binlog version, server version, create timestamp, header length

/** Whether a server of this version writes the checksum-algorithm byte (and CRC) in its FDE: 5.6.1 and later. */
export function versionHasChecksumByte(serverVersion: string): boolean {
  // Like the server's do_server_version_split(): missing parts count as 0.
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(serverVersion);
  if (!m) return false;
  const [maj, min, pat] = [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
  if (maj !== 5) return maj > 5;
  if (min !== 6) return min > 6;
  return pat >= 1;
}

export interface DecodedFde extends FormatDescriptionData {
  postHeaderLengths: number[];
  /** The FDE carries a trailing CRC32 (servers >= 5.6.1 always write one, even with binlog_checksum=NONE). */
  hasCrc: boolean;
}

/** `ev` is the whole event (header included). */
export function decodeFormatDescription(ev: Buffer, header: RawHeader): DecodedFde {
  const size = ev.length;
  if (size < HEADER_LENGTH + FDE_FIXED) {
    throw new DecodeError(`FORMAT_DESCRIPTION event is too short (${size} bytes)`);
  }
  const at = HEADER_LENGTH;
  const binlogVersion = ev.readUInt16LE(at);
  if (binlogVersion !== 4) {
    throw new DecodeError(`unsupported binlog format version ${binlogVersion} (only v4, MySQL 5.0+, is supported)`);
  }
  const serverVersion = cString(ev, at + 2, at + 52);
  const createTimestamp = ev.readUInt32LE(at + 52);
  const headerLength = ev[at + 56]!;
  if (headerLength !== HEADER_LENGTH) {
    throw new DecodeError(`FORMAT_DESCRIPTION event announces a common header of ${headerLength} bytes (v4 binlogs use 19)`, at + 56);
  }
  let checksum: BinlogChecksum = 'none';
  let end = size;
  // The FDE lists its own post-header length (entry 15 of the array): what follows it is the checksum-algorithm
  // byte and the CRC (5 bytes) or nothing. That is sturdier than the server version, which decides it for mysqld.
  const ownPostHeader = ev[at + FDE_FIXED + EventType.FORMAT_DESCRIPTION_EVENT - 1];
  const tail = ownPostHeader === undefined ? -1 : size - HEADER_LENGTH - ownPostHeader;
  const hasCrc = tail === 1 + CHECKSUM_LENGTH || (tail !== 0 && versionHasChecksumByte(serverVersion));
  if (hasCrc) {
    if (size < HEADER_LENGTH + FDE_FIXED + 1 + CHECKSUM_LENGTH) {
      throw new DecodeError(`FORMAT_DESCRIPTION event is too short (${size} bytes) for server ${serverVersion}`);
    }
    const alg = ev[size - CHECKSUM_LENGTH - 1]!;
    // 0 = OFF, 1 = CRC32, 255 = UNDEF (an FDE relayed from a server older than 5.6.1)
    if (alg === 1) checksum = 'crc32';
    else if (alg !== 0 && alg !== 255) {
      throw new DecodeError(`unknown binlog checksum algorithm ${alg} in FORMAT_DESCRIPTION event`, size - 5);
    }
    end = size - CHECKSUM_LENGTH - 1;
  }
  const postHeaderLengths = Array.from(ev.subarray(at + FDE_FIXED, end));
  return {
    kind: 'format_description',
    binlogVersion,
    serverVersion,
    createTimestamp,
    headerLength,
    checksum,
    inUse: (header.flags & FLAG_BINLOG_IN_USE) !== 0,
    postHeaderLengths,
    hasCrc,
  };
}

// ---- the other decoded events ----

/** Default post-header lengths of MySQL 8.0/9.x, used when an FDE does not list a type. */
const DEFAULT_POST_HEADER: Partial<Record<number, number>> = {
  [EventType.QUERY_EVENT]: 13,
  [EventType.ROTATE_EVENT]: 8,
  [EventType.GTID_LOG_EVENT]: 42,
  [EventType.ANONYMOUS_GTID_LOG_EVENT]: 42,
};

function postHeaderLength(ctx: FormatContext, typeCode: number): number {
  return ctx.postHeaderLengths[typeCode - 1] ?? DEFAULT_POST_HEADER[typeCode] ?? 0;
}

/**
 * Decodes the body of one event. `ev` holds the event from its first header byte; `bodyEnd` is the offset in `ev`
 * where the body ends (before the checksum). For a QUERY event `ev` may hold only the beginning of the event
 * (`truncated`), the statement text is then cut.
 */
export function decodeBody(ev: Buffer, typeCode: number, bodyEnd: number, ctx: FormatContext, truncated = false): BinlogEventData {
  const r = new Cursor(ev, HEADER_LENGTH, Math.min(bodyEnd, ev.length));
  switch (typeCode) {
    case EventType.ROTATE_EVENT: {
      const ph = postHeaderLength(ctx, typeCode);
      const nextPosition = ph >= 8 ? r.u64Number() : 4;
      r.skip(Math.max(0, ph - 8));
      return { kind: 'rotate', nextPosition, nextFile: r.rest().toString('utf8') };
    }
    case EventType.STOP_EVENT:
      return { kind: 'stop' };
    case EventType.XID_EVENT:
      return { kind: 'xid', xid: r.u64() };
    case EventType.QUERY_EVENT:
      return decodeQuery(r, postHeaderLength(ctx, typeCode), truncated);
    case EventType.GTID_LOG_EVENT:
    case EventType.ANONYMOUS_GTID_LOG_EVENT:
      return decodeGtid(r, typeCode === EventType.ANONYMOUS_GTID_LOG_EVENT, postHeaderLength(ctx, typeCode));
    case EventType.GTID_TAGGED_LOG_EVENT:
      return decodeTaggedGtid(r);
    case EventType.PREVIOUS_GTIDS_LOG_EVENT:
      return { kind: 'previous_gtids', gtidSet: decodeGtidSet(r) };
    default:
      return { kind: 'other' };
  }
}

function decodeQuery(r: Cursor, postHeader: number, truncated: boolean): QueryData {
  const threadId = r.u32();
  const execTime = r.u32();
  const dbLength = r.u8();
  const errorCode = r.u16();
  const statusVarsLength = postHeader >= 13 ? r.u16() : 0;
  r.skip(Math.max(0, postHeader - 13));
  r.skip(statusVarsLength);
  const database = r.bytes(dbLength).toString('utf8');
  r.skip(1); // NUL after the database name
  return { kind: 'query', threadId, execTime, errorCode, database, query: r.rest().toString('utf8'), truncated };
}

function decodeGtid(r: Cursor, anonymous: boolean, postHeader: number): GtidData {
  const flags = r.u8();
  const uuid = formatUuid(r.bytes(16));
  const gnoBig = r.i64();
  const gno = Number(gnoBig);
  const out: GtidData = { kind: 'gtid', uuid, gno, gtid: anonymous ? 'ANONYMOUS' : `${uuid}:${gnoBig}`, anonymous, flags };
  // 5.7.4+: logical clock type code (2) + last_committed + sequence_number
  if (postHeader >= 42 && r.remaining() >= 17) {
    const ltType = r.u8();
    if (ltType === 2) {
      out.lastCommitted = Number(r.i64());
      out.sequenceNumber = Number(r.i64());
    } else {
      r.skip(16);
    }
  }
  r.seek(HEADER_LENGTH + Math.max(postHeader, 25));
  // 8.0.1+: immediate commit timestamp (7 bytes, bit 55 = "an original commit timestamp follows")
  if (r.remaining() >= 7) {
    const { value: immediate, highBit: hasOriginal } = r.u56();
    out.immediateCommitMicros = immediate;
    out.originalCommitMicros = hasOriginal && r.remaining() >= 7 ? r.u56().value : immediate;
    // 8.0.2+: transaction length (packed integer); then server versions and the commit group ticket, not decoded.
    if (r.remaining() >= 1) out.transactionLength = r.packedInt();
  }
  return out;
}

/**
 * GTID_TAGGED_LOG_EVENT (MySQL 8.3+, written when the GTID has a tag): the body is one mysql::serialization
 * message: version, size, last non-ignorable field id (varints), then (field id, value) pairs in id order.
 * Field ids (Gtid_event::define_fields): 0 flags, 1 uuid (16 varints), 2 gno (signed), 3 tag (length + bytes),
 * 4 last_committed, 5 sequence_number (signed), 6 immediate commit ts, 7 original commit ts (only when it
 * differs), 8 transaction length, 9 immediate server version, 10 original server version, 11 commit group ticket.
 */
function decodeTaggedGtid(r: Cursor): GtidData {
  const start = r.pos;
  r.varUint(); // serialization format version
  const size = Number(r.varUint());
  const end = Math.min(start + size, r.end);
  r.varUint(); // last non-ignorable field id
  const uuidBytes = new Uint8Array(16);
  let flags = 0;
  let gno = 0n;
  let tag = '';
  const out: Partial<GtidData> = {};
  let original: number | undefined;
  fields: while (r.pos < end) {
    const id = Number(r.varUint());
    switch (id) {
      case 0:
        flags = Number(r.varUint());
        break;
      case 1:
        for (let i = 0; i < 16; i++) uuidBytes[i] = Number(r.varUint());
        break;
      case 2:
        gno = r.varInt();
        break;
      case 3:
        tag = r.bytes(Number(r.varUint())).toString('utf8');
        break;
      case 4:
        out.lastCommitted = Number(r.varInt());
        break;
      case 5:
        out.sequenceNumber = Number(r.varInt());
        break;
      case 6:
        out.immediateCommitMicros = Number(r.varUint());
        break;
      case 7:
        original = Number(r.varUint());
        break;
      case 8:
        out.transactionLength = Number(r.varUint());
        break;
      case 9:
      case 10:
      case 11:
        r.varUint();
        break;
      default:
        break fields; // a field from a newer server: its encoding is unknown, and nothing after it is needed
    }
  }
  const uuid = formatUuid(uuidBytes);
  const result: GtidData = {
    kind: 'gtid',
    uuid,
    gno: Number(gno),
    gtid: tag ? `${uuid}:${tag}:${gno}` : `${uuid}:${gno}`,
    anonymous: false,
    flags,
    ...out,
  };
  if (tag) result.tag = tag;
  if (result.immediateCommitMicros !== undefined) result.originalCommitMicros = original ?? result.immediateCommitMicros;
  return result;
}

/**
 * A GTID set as Gtid_set::encode writes it (PREVIOUS_GTIDS body): n_sids u64 (MySQL 8.3+ puts a format byte in
 * the top 8 bits; format 1 = tagged, with the count in bits 8-55), then per (uuid, tag): uuid (16 bytes), the tag
 * in the tagged format (varint length + bytes), n_intervals u64, intervals as [start, end) i64 pairs.
 * Printed like @@gtid_executed: `uuid:1-5:7:tag:1-2,uuid2:1`.
 */
export function decodeGtidSet(r: Cursor): string {
  const header = r.u64();
  const format = Number(header >> 56n);
  let count: bigint;
  if (format === 0) count = header;
  else if (format === 1) count = (header >> 8n) & 0xffff_ffff_ffffn;
  else throw new DecodeError(`unknown GTID set encoding format ${format}`, r.pos - 8);
  const groups = new Map<string, string[]>(); // uuid -> ["1-5:7", "tag:1-2"]
  for (let i = 0n; i < count; i++) {
    if (r.remaining() < 16 + 8) throw new DecodeError(`GTID set is truncated (entry ${i} of ${count})`, r.pos);
    const uuid = formatUuid(r.bytes(16));
    const tag = format === 1 ? r.bytes(Number(r.varUint())).toString('utf8') : '';
    const n = r.u64();
    if (BigInt(r.remaining()) < n * 16n) throw new DecodeError(`GTID set is truncated (${n} intervals for ${uuid})`, r.pos);
    const ranges: string[] = [];
    for (let j = 0n; j < n; j++) {
      const from = r.i64();
      const to = r.i64() - 1n; // stored end-exclusive
      ranges.push(from === to ? `${from}` : `${from}-${to}`);
    }
    if (ranges.length === 0) continue;
    const list = groups.get(uuid) ?? [];
    list.push((tag ? `${tag}:` : '') + ranges.join(':'));
    groups.set(uuid, list);
  }
  return [...groups].map(([uuid, parts]) => `${uuid}:${parts.join(':')}`).join(',');
}

export function formatUuid(b: Uint8Array): string {
  const h = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function cString(b: Buffer, from: number, to: number): string {
  let end = from;
  while (end < to && b[end] !== 0) end++;
  return b.toString('latin1', from, end);
}

/** Bounds-checked little-endian reader over [pos, end) of one event. */
export class Cursor {
  constructor(
    private readonly b: Buffer,
    public pos: number,
    public readonly end: number,
  ) {}

  remaining(): number {
    return this.end - this.pos;
  }

  seek(pos: number): void {
    this.pos = Math.min(pos, this.end);
  }

  private need(n: number): number {
    if (this.pos + n > this.end) {
      throw new DecodeError(`event body is shorter than its fields (needs ${n} more bytes, has ${this.end - this.pos})`, this.pos);
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  skip(n: number): void {
    this.need(n);
  }

  u8(): number {
    return this.b[this.need(1)]!;
  }

  u16(): number {
    return this.b.readUInt16LE(this.need(2));
  }

  u32(): number {
    return this.b.readUInt32LE(this.need(4));
  }

  /** 7-byte integer: the low 55 bits (exact as a number) and bit 55 apart. */
  u56(): { value: number; highBit: boolean } {
    const at = this.need(7);
    const top = this.b[at + 6]!;
    return {
      value: this.b.readUInt32LE(at) + this.b.readUInt16LE(at + 4) * 2 ** 32 + (top & 0x7f) * 2 ** 48,
      highBit: (top & 0x80) !== 0,
    };
  }

  u64(): bigint {
    return this.b.readBigUInt64LE(this.need(8));
  }

  i64(): bigint {
    return this.b.readBigInt64LE(this.need(8));
  }

  u64Number(): number {
    return Number(this.u64());
  }

  /** MySQL's packed (length-encoded) integer: < 251 in one byte, 252/253/254 prefix 2/3/8 bytes. */
  packedInt(): number {
    const first = this.u8();
    if (first < 251) return first;
    if (first === 252) return this.u16();
    if (first === 253) {
      const at = this.need(3);
      return this.b.readUInt16LE(at) + this.b[at + 2]! * 65536;
    }
    if (first === 254) return this.u64Number();
    throw new DecodeError(`invalid packed integer prefix ${first}`, this.pos - 1);
  }

  /**
   * mysql::serialization unsigned varint: the count of trailing 1 bits in the first byte is the count of bytes
   * that follow (8 when the first byte is 0xff); the value's low bits sit above those marker bits.
   */
  varUint(): bigint {
    const first = this.u8();
    let extra = 0;
    while (extra < 8 && (first >> extra) & 1) extra++;
    if (extra === 0) return BigInt(first >> 1);
    const at = this.need(extra);
    let rest = 0n;
    for (let i = extra - 1; i >= 0; i--) rest = (rest << 8n) | BigInt(this.b[at + i]!);
    if (extra === 8) return rest;
    const n = extra + 1; // total bytes
    return BigInt(first >> n) | (rest << BigInt(8 - n));
  }

  /** Signed variant: zigzag-like, bit 0 is the sign (value = ~(u >> 1) when set). */
  varInt(): bigint {
    const u = this.varUint();
    return u & 1n ? -(u >> 1n) - 1n : u >> 1n;
  }

  bytes(n: number): Buffer {
    const at = this.need(n);
    return this.b.subarray(at, at + n);
  }

  rest(): Buffer {
    return this.bytes(Math.max(0, this.end - this.pos));
  }
}
