// A tiny encoder of synthetic MySQL binlog files for unit tests (the events a restore and the archive read).
import { crc32 } from '../../src/binlog/crc32.ts';
import { after, before } from 'node:test';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

// ---- a tiny binlog encoder ----------------------------------------------------------------------------------

export const T = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  FDE: 15,
  XID: 16,
  TABLE_MAP: 19,
  HEARTBEAT: 27,
  WRITE_ROWS: 30,
  GTID: 33,
  ANONYMOUS_GTID: 34,
  PREVIOUS_GTIDS: 35,
  XA_PREPARE: 38,
  TRANSACTION_PAYLOAD: 40,
} as const;

export const UUID_A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
export const UUID_B = 'c9efa1db-e8de-11f1-b3ba-02fc00000001';

// The post-header lengths MySQL 9.7 announces (42 event types).
const POST_HEADERS_97 = [
  0, 13, 0, 8, 0, 0, 0, 0, 4, 0, 4, 0, 0, 0, 99, 0, 4, 26, 8, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 10, 10, 10, 42, 42, 0, 18, 52, 0,
  10, 40, 0, 0,
];

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}
function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}
function u64(n: number | bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}
function u56(n: number, highBit = false): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n) | (highBit ? 1n << 55n : 0n));
  return b.subarray(0, 7);
}
function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

interface EventOpts {
  timestamp?: number;
  flags?: number;
  serverId?: number;
}

export class BinlogBuilder {
  private readonly parts: Buffer[] = [Buffer.from([0xfe, 0x62, 0x69, 0x6e])];
  private pos = 4;
  readonly positions: number[] = [];

  constructor(
    readonly checksum: 'crc32' | 'none',
    readonly timestamp = 1_700_000_000,
    opts: { serverVersion?: string; inUse?: boolean } = {},
  ) {
    const version = Buffer.alloc(50);
    version.write(opts.serverVersion ?? '9.7.4-2', 'latin1');
    const body = Buffer.concat([u16(4), version, u32(0), Buffer.from([19]), Buffer.from(POST_HEADERS_97), Buffer.from([checksum === 'crc32' ? 1 : 0])]);
    // Like mysqld: the FDE always carries a CRC, computed with the in-use flag cleared.
    this.add(T.FDE, body, { flags: opts.inUse ? 1 : 0 }, true);
  }

  /** Appends one event; returns its position. */
  add(type: number, body: Buffer, opts: EventOpts = {}, forceCrc = false): number {
    const withCrc = forceCrc || this.checksum === 'crc32';
    const size = 19 + body.length + (withCrc ? 4 : 0);
    const header = Buffer.concat([
      u32(opts.timestamp ?? this.timestamp),
      Buffer.from([type]),
      u32(opts.serverId ?? 1),
      u32(size),
      u32(this.pos + size),
      // Like mysqld, the CRC of the FDE is computed with the in-use flag (0x1) cleared.
      u16((opts.flags ?? 0) & (type === T.FDE ? ~1 : 0xffff)),
    ]);
    let event = Buffer.concat([header, body]);
    if (withCrc) event = Buffer.concat([event, u32(crc32(event))]);
    event.writeUInt16LE(opts.flags ?? 0, 17);
    const at = this.pos;
    this.positions.push(at);
    this.parts.push(event);
    this.pos += size;
    return at;
  }

  previousGtids(entries: Array<[string, Array<[number, number]>]>, opts?: EventOpts): number {
    const parts = [u64(entries.length)];
    for (const [uuid, intervals] of entries) {
      parts.push(uuidBytes(uuid), u64(intervals.length));
      for (const [from, to] of intervals) parts.push(u64(from), u64(to + 1));
    }
    return this.add(T.PREVIOUS_GTIDS, Buffer.concat(parts), opts);
  }

  gtid(
    uuid: string,
    gno: number,
    opts: EventOpts & { immediate?: number; original?: number; trxLength?: number; anonymous?: boolean; lastCommitted?: number; seq?: number } = {},
  ): number {
    const parts = [Buffer.from([1]), uuidBytes(uuid), u64(gno), Buffer.from([2]), u64(opts.lastCommitted ?? 0), u64(opts.seq ?? 1)];
    if (opts.immediate !== undefined) {
      const differs = opts.original !== undefined && opts.original !== opts.immediate;
      parts.push(u56(opts.immediate, differs));
      if (differs) parts.push(u56(opts.original!));
      const len = opts.trxLength ?? 100;
      parts.push(len < 251 ? Buffer.from([len]) : Buffer.concat([Buffer.from([252]), u16(len)]));
      parts.push(u32(90704)); // immediate_server_version
    }
    return this.add(opts.anonymous ? T.ANONYMOUS_GTID : T.GTID, Buffer.concat(parts), opts);
  }

  query(query: string, opts: EventOpts & { database?: string; threadId?: number } = {}): number {
    const db = Buffer.from(opts.database ?? '');
    const status = Buffer.from([0x00, 0, 0, 0, 0]); // Q_FLAGS2_CODE = 0
    const body = Buffer.concat([
      u32(opts.threadId ?? 7),
      u32(0),
      Buffer.from([db.length]),
      u16(0),
      u16(status.length),
      status,
      db,
      Buffer.from([0]),
      Buffer.from(query),
    ]);
    return this.add(T.QUERY, body, { flags: 0x8, ...opts }); // LOG_EVENT_SUPPRESS_USE_F, as mysqld sets it
  }

  xid(xid: number, opts?: EventOpts): number {
    return this.add(T.XID, u64(xid), opts);
  }

  rotate(nextFile: string, opts?: EventOpts): number {
    return this.add(T.ROTATE, Buffer.concat([u64(4), Buffer.from(nextFile)]), opts);
  }

  /** GTID, BEGIN, TABLE_MAP, WRITE_ROWS, XID. */
  transaction(uuid: string, gno: number, xid: number, timestamp: number): { gtidAt: number; xidAt: number } {
    const gtidAt = this.gtid(uuid, gno, { timestamp, immediate: timestamp * 1e6 + 123 });
    this.query('BEGIN', { timestamp });
    this.add(T.TABLE_MAP, Buffer.alloc(30, 1), { timestamp });
    this.add(T.WRITE_ROWS, Buffer.alloc(40, 2), { timestamp });
    const xidAt = this.xid(xid, { timestamp });
    return { gtidAt, xidAt };
  }

  get size(): number {
    return this.pos;
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}


/**
 * Writes binlog files (binlog.000001, binlog.000002, …) into a temp directory of the calling test file's own, made
 * before its tests and removed after them; returns the writer.
 */
export function tempBinlogFiles(prefix: string): (content: Buffer | string) => Promise<string> {
  let dir = '';
  let counter = 0;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), `${prefix}-`));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  return async (content) => {
    const f = path.join(dir, `binlog.${String(++counter).padStart(6, '0')}`);
    await writeFile(f, content);
    return f;
  };
}
