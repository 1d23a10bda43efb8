// Unit tests of the scanner of growing binlog files (complete transactions after an offset), on synthetic binlogs
// cut at every byte the way a file being appended to can be.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, writeFile } from 'node:fs/promises';
import {
  BinlogFormatError,
  findRestoreStop,
  readBinlogHead,
  scanCompleteTransactions,
  type BinlogFileHead,
  type SegmentScan,
} from '../../src/binlog/index.ts';
import { BinlogBuilder, T, UUID_A, UUID_B, tempBinlogFiles } from '../support/binlog-builder.ts';

const file = tempBinlogFiles('segment-scan');

async function headOf(f: string): Promise<BinlogFileHead> {
  const head = await readBinlogHead(f);
  assert.ok(head, `${f} has a whole FORMAT_DESCRIPTION event`);
  return head;
}

async function rejectsAt(p: Promise<unknown>, f: string, offset: number, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BinlogFormatError, `expected BinlogFormatError, got ${String(err)}`);
    assert.equal(err.file, f);
    assert.equal(err.offset, offset);
    assert.match(err.message, pattern);
    return true;
  });
}

const TS = 1_700_000_100;

/** PREVIOUS_GTIDS then `n` row transactions UUID_A:1..n, one second apart. Returns the boundaries too. */
function rowsBinlog(checksum: 'crc32' | 'none', n: number): { b: BinlogBuilder; boundaries: number[]; fdeEnd: number } {
  const b = new BinlogBuilder(checksum);
  const fdeEnd = b.size;
  b.previousGtids([]);
  const boundaries = [fdeEnd, b.size];
  for (let i = 1; i <= n; i++) {
    b.transaction(UUID_A, i, 100 + i, TS + i);
    boundaries.push(b.size);
  }
  return { b, boundaries, fdeEnd };
}

/** The largest boundary at or below `n` (0 when none). */
function lastBoundaryAtOrBelow(boundaries: number[], n: number): number {
  return boundaries.filter((x) => x <= n).at(-1) ?? 0;
}

// ---- readBinlogHead -------------------------------------------------------------------------------------------

describe('readBinlogHead', () => {
  test('undefined while the magic bytes or the FORMAT_DESCRIPTION event are only partly written', async () => {
    const { b, fdeEnd } = rowsBinlog('crc32', 1);
    const buf = b.build();
    for (const n of [0, 1, 3, 4, 10, 4 + 19, fdeEnd - 1]) {
      assert.equal(await readBinlogHead(await file(buf.subarray(0, n))), undefined, `cut at ${n}`);
    }
    const head = await readBinlogHead(await file(buf.subarray(0, fdeEnd)));
    assert.deepEqual(head, { checksum: 'crc32', seriesStart: 1_700_000_000, serverVersion: '9.7.4-2', serverId: 1, fdeEnd });
    assert.deepEqual(await readBinlogHead(await file(buf)), head);
  });

  test('checksum none, and the in-use flag of an open binlog', async () => {
    const b = new BinlogBuilder('none', 1_700_000_555, { inUse: true, serverVersion: '8.4.3' });
    const head = await headOf(await file(b.build()));
    assert.deepEqual(head, { checksum: 'none', seriesStart: 1_700_000_555, serverVersion: '8.4.3', serverId: 1, fdeEnd: b.size });
  });

  test('a file that is not a binlog, or is encrypted, is an error at offset 0', async () => {
    const text = await file('not a binlog at all, just some text\n');
    await rejectsAt(readBinlogHead(text), text, 0, /not a MySQL binary log/);
    const short = await file('ab');
    await rejectsAt(readBinlogHead(short), short, 0, /not a MySQL binary log/);
    const encrypted = await file(Buffer.concat([Buffer.from([0xfd, 0x62, 0x69, 0x6e]), Buffer.alloc(600, 7)]));
    await rejectsAt(readBinlogHead(encrypted), encrypted, 0, /encrypted/);
  });

  test('magic followed by another event than FORMAT_DESCRIPTION is an error, not "not yet written"', async () => {
    const b = new BinlogBuilder('crc32');
    const buf = Buffer.from(b.build());
    buf[4 + 4] = T.QUERY; // type code of the first event
    const f = await file(buf);
    await rejectsAt(readBinlogHead(f), f, 4, /expected FORMAT_DESCRIPTION_EVENT/);
  });
});

// ---- scanCompleteTransactions ---------------------------------------------------------------------------------

describe('scanCompleteTransactions', () => {
  test('a whole file from 0: magic, FDE, PREVIOUS_GTIDS and every transaction, first/last GTID and commit time', async () => {
    const { b } = rowsBinlog('crc32', 3);
    const f = await file(b.build());
    const scan = await scanCompleteTransactions(f, 0, await headOf(f));
    assert.deepEqual(scan, {
      end: b.size,
      closesFile: false,
      firstGtid: `${UUID_A}:1`,
      lastGtid: `${UUID_A}:3`,
      lastCommitMicros: (TS + 3) * 1e6 + 123,
      transactions: 3,
    } satisfies SegmentScan);
  });

  test('a file with only the FORMAT_DESCRIPTION event, and a scan from the end of the file', async () => {
    const b = new BinlogBuilder('crc32');
    const f = await file(b.build());
    const head = await headOf(f);
    const none = { closesFile: false, firstGtid: null, lastGtid: null, lastCommitMicros: null, transactions: 0 };
    assert.deepEqual(await scanCompleteTransactions(f, 0, head), { end: head.fdeEnd, ...none });
    assert.deepEqual(await scanCompleteTransactions(f, head.fdeEnd, head), { end: head.fdeEnd, ...none });
  });

  for (const checksum of ['crc32', 'none'] as const) {
    test(`cut at every byte (checksum ${checksum}): the end is the last boundary the cut leaves whole`, async () => {
      const { b, boundaries, fdeEnd } = rowsBinlog(checksum, 3);
      const buf = b.build();
      const head = await headOf(await file(buf));
      const f = await file(buf.subarray(0, fdeEnd));
      for (let n = fdeEnd; n <= buf.length; n++) {
        await writeFile(f, buf.subarray(0, n));
        const whole = lastBoundaryAtOrBelow(boundaries, n);
        const scan = await scanCompleteTransactions(f, 0, head);
        assert.equal(scan.end, whole, `cut at ${n}`);
        assert.equal(scan.transactions, Math.max(0, boundaries.indexOf(whole) - 1), `cut at ${n}`);
        assert.equal(scan.closesFile, false);
      }
    });
  }

  test('cut between BEGIN and XID: the open transaction is left for the next scan', async () => {
    const b = new BinlogBuilder('crc32');
    b.previousGtids([]);
    b.transaction(UUID_A, 1, 11, TS + 1);
    const firstEnd = b.size;
    b.gtid(UUID_A, 2, { timestamp: TS + 2, immediate: (TS + 2) * 1e6 });
    b.query('BEGIN', { timestamp: TS + 2 });
    b.add(T.TABLE_MAP, Buffer.alloc(30, 1));
    const cut = b.size;
    b.add(T.WRITE_ROWS, Buffer.alloc(40, 2));
    b.xid(12);
    const buf = b.build();
    const f = await file(buf.subarray(0, cut));
    const head = await headOf(f);
    const partial = await scanCompleteTransactions(f, 0, head);
    assert.deepEqual(partial, {
      end: firstEnd,
      closesFile: false,
      firstGtid: `${UUID_A}:1`,
      lastGtid: `${UUID_A}:1`,
      lastCommitMicros: (TS + 1) * 1e6 + 123,
      transactions: 1,
    });
    assert.deepEqual(await scanCompleteTransactions(f, partial.end, head), { ...partial, end: firstEnd, firstGtid: null, lastGtid: null, lastCommitMicros: null, transactions: 0 });
    await writeFile(f, buf);
    assert.deepEqual(await scanCompleteTransactions(f, partial.end, head), {
      end: buf.length,
      closesFile: false,
      firstGtid: `${UUID_A}:2`,
      lastGtid: `${UUID_A}:2`,
      lastCommitMicros: (TS + 2) * 1e6,
      transactions: 1,
    });
  });

  test('DDL, COMMIT queries, ROLLBACK, compressed payloads and XA PREPARE end transactions', async () => {
    const b = new BinlogBuilder('crc32');
    b.previousGtids([]);
    const ends: number[] = [];
    b.gtid(UUID_A, 1, { immediate: 1_700_000_001_000_000 });
    b.query('CREATE TABLE t (a INT)', { database: 'd' });
    ends.push(b.size);
    b.gtid(UUID_A, 2, { immediate: 1_700_000_002_000_000 });
    b.query('BEGIN');
    b.query('INSERT INTO m VALUES (1)');
    b.query('COMMIT');
    ends.push(b.size);
    b.gtid(UUID_A, 3, { immediate: 1_700_000_003_000_000 });
    b.query('BEGIN');
    b.query('SAVEPOINT s');
    b.query('ROLLBACK TO SAVEPOINT s');
    b.query('ROLLBACK');
    ends.push(b.size);
    b.gtid(UUID_A, 4, { immediate: 1_700_000_004_000_000 });
    b.add(T.TRANSACTION_PAYLOAD, Buffer.alloc(200, 9));
    ends.push(b.size);
    b.gtid(UUID_A, 5, { immediate: 1_700_000_005_000_000 });
    b.query("XA START X'01'");
    b.add(T.WRITE_ROWS, Buffer.alloc(40, 2));
    b.query("XA END X'01'");
    b.add(T.XA_PREPARE, Buffer.alloc(20, 0));
    ends.push(b.size);
    b.gtid(UUID_A, 6, { immediate: 1_700_000_006_000_000 });
    b.query("XA COMMIT X'01'");
    ends.push(b.size);
    const buf = b.build();
    const head = await headOf(await file(buf));
    let from = 0;
    for (const [i, end] of ends.entries()) {
      // Cut one byte short of the end: the transaction is not whole yet; then whole.
      const f = await file(buf.subarray(0, end - 1));
      assert.equal((await scanCompleteTransactions(f, from, head)).transactions, 0, `transaction ${i + 1} cut`);
      await writeFile(f, buf.subarray(0, end));
      const scan = await scanCompleteTransactions(f, from, head);
      assert.equal(scan.end, end, `transaction ${i + 1}`);
      assert.equal(scan.transactions, 1);
      assert.equal(scan.lastGtid, `${UUID_A}:${i + 1}`);
      assert.equal(scan.lastCommitMicros, 1_700_000_000_000_000 + (i + 1) * 1_000_000);
      from = scan.end;
    }
  });

  test('maxBytes stops at the last boundary within the budget; one bigger transaction comes whole', async () => {
    const { b, boundaries } = rowsBinlog('crc32', 6);
    const f = await file(b.build());
    const head = await headOf(f);
    const trxSize = boundaries[3]! - boundaries[2]!;
    const from = boundaries[1]!; // after PREVIOUS_GTIDS
    const two = await scanCompleteTransactions(f, from, head, { maxBytes: Math.floor(2.5 * trxSize) });
    assert.equal(two.end, boundaries[3]);
    assert.equal(two.transactions, 2);
    assert.equal(two.firstGtid, `${UUID_A}:1`);
    assert.equal(two.lastGtid, `${UUID_A}:2`);
    const exact = await scanCompleteTransactions(f, from, head, { maxBytes: 2 * trxSize });
    assert.equal(exact.end, boundaries[3], 'a boundary exactly at from + maxBytes is taken');
    const big = await scanCompleteTransactions(f, from, head, { maxBytes: 10 });
    assert.equal(big.end, boundaries[2]);
    assert.equal(big.transactions, 1);
    // Continuing with maxBytes covers the file in pieces.
    const ends: number[] = [];
    for (let at = 0; at < b.size; ) {
      const scan = await scanCompleteTransactions(f, at, head, { maxBytes: Math.floor(1.5 * trxSize) });
      assert.ok(scan.end > at);
      ends.push((at = scan.end));
    }
    assert.deepEqual(ends, boundaries.slice(1));
  });

  test('ROTATE and STOP close the file', async () => {
    for (const last of ['rotate', 'stop'] as const) {
      const { b } = rowsBinlog('crc32', 2);
      const before = b.size;
      if (last === 'rotate') b.rotate('binlog.000002', { timestamp: TS + 9 });
      else b.add(T.STOP, Buffer.alloc(0), { timestamp: TS + 9 });
      const buf = b.build();
      const f = await file(buf.subarray(0, buf.length - 1));
      const head = await headOf(f);
      const open = await scanCompleteTransactions(f, 0, head);
      assert.equal(open.end, before);
      assert.equal(open.closesFile, false);
      await writeFile(f, buf);
      const closed = await scanCompleteTransactions(f, open.end, head);
      assert.deepEqual(closed, { end: buf.length, closesFile: true, firstGtid: null, lastGtid: null, lastCommitMicros: null, transactions: 0 }, last);
      const whole = await scanCompleteTransactions(f, 0, head);
      assert.equal(whole.end, buf.length);
      assert.equal(whole.closesFile, true);
      assert.equal(whole.transactions, 2);
      assert.equal(whole.lastCommitMicros, (TS + 2) * 1e6 + 123, 'ROTATE/STOP are not transactions');
    }
  });

  test('a corrupted event is a BinlogFormatError naming its offset; a partly written tail is not checked', async () => {
    const { b } = rowsBinlog('crc32', 3);
    const buf = Buffer.from(b.build());
    const head = await headOf(await file(buf));
    const rowsAt = b.positions.filter((p) => buf[p + 4] === T.WRITE_ROWS)[1]!; // in the second transaction
    buf[rowsAt + 25] = buf[rowsAt + 25]! ^ 0xff;
    const f = await file(buf);
    await rejectsAt(scanCompleteTransactions(f, 0, head), f, rowsAt, /checksum mismatch in the WRITE_ROWS_EVENT/);
    // The same bytes without the event's last byte: an incomplete event, whose CRC cannot be checked yet.
    const eventEnd = rowsAt + buf.readUInt32LE(rowsAt + 9);
    const cut = await file(buf.subarray(0, eventEnd - 1));
    const scan = await scanCompleteTransactions(cut, 0, head);
    assert.ok(scan.end < rowsAt);
  });

  test('scans continued from each end give the same total as one scan', async () => {
    const { b } = rowsBinlog('crc32', 8);
    b.rotate('binlog.000002');
    const buf = b.build();
    const head = await headOf(await file(buf));
    const once = await scanCompleteTransactions(await file(buf), 0, head);
    const f = await file(buf.subarray(0, head.fdeEnd));
    const scans: SegmentScan[] = [];
    let from = 0;
    // The file grows by a prime number of bytes at a time, so cuts fall everywhere in events and transactions.
    for (let size = head.fdeEnd; ; size = Math.min(buf.length, size + 37)) {
      await writeFile(f, buf.subarray(0, size));
      const scan = await scanCompleteTransactions(f, from, head);
      if (scan.end > from) scans.push(scan);
      from = scan.end;
      if (size === buf.length) break;
    }
    assert.equal(from, once.end);
    assert.equal(from, buf.length);
    assert.equal(scans.at(-1)!.closesFile, true);
    assert.equal(scans.reduce((n, s) => n + s.transactions, 0), once.transactions);
    const withGtids = scans.filter((s) => s.firstGtid !== null);
    assert.equal(withGtids[0]!.firstGtid, once.firstGtid);
    assert.equal(withGtids.at(-1)!.lastGtid, once.lastGtid);
    assert.equal(scans.filter((s) => s.lastCommitMicros !== null).at(-1)!.lastCommitMicros, once.lastCommitMicros);
  });

  test('segment ends are transaction ends the restore side sees too', async () => {
    const { b } = rowsBinlog('crc32', 4);
    const f = await file(b.build());
    const head = await headOf(f);
    const scan = await scanCompleteTransactions(f, 0, head);
    const stop = await findRestoreStop(f, { kind: 'end' });
    assert.equal(scan.end, stop.last!.endPosition);
    assert.equal(scan.lastGtid, stop.last!.gtid);
    assert.equal(scan.lastCommitMicros, stop.last!.commitMicros);
  });

  test('commit times: original over immediate, else the header time of the last event; anonymous GTIDs are null', async () => {
    const b = new BinlogBuilder('crc32');
    b.gtid(UUID_B, 7, { immediate: 1_700_000_200_000_001, original: 1_700_000_100_000_002 });
    b.query('DROP TABLE x', { timestamp: TS });
    const first = b.size;
    b.gtid(UUID_A, 0, { anonymous: true, timestamp: TS + 1 });
    b.query('BEGIN', { timestamp: TS + 1 });
    b.xid(5, { timestamp: TS + 2 });
    const f = await file(b.build());
    const head = await headOf(f);
    const scan = await scanCompleteTransactions(f, 0, head);
    assert.deepEqual(scan, {
      end: b.size,
      closesFile: false,
      firstGtid: `${UUID_B}:7`,
      lastGtid: `${UUID_B}:7`,
      lastCommitMicros: (TS + 2) * 1e6,
      transactions: 2,
    });
    const anonymousOnly = await scanCompleteTransactions(f, first, head);
    assert.deepEqual([anonymousOnly.firstGtid, anonymousOnly.lastGtid, anonymousOnly.transactions], [null, null, 1]);
    const gtidOnly = await scanCompleteTransactions(await file(b.build().subarray(0, first)), 0, head);
    assert.equal(gtidOnly.lastCommitMicros, 1_700_000_100_000_002);
  });

  test('an event larger than the read window, cut and then complete', async () => {
    const b = new BinlogBuilder('crc32');
    b.gtid(UUID_A, 1, { immediate: TS * 1e6 });
    b.query('BEGIN');
    b.add(T.WRITE_ROWS, Buffer.alloc(3 << 20, 5));
    b.xid(1);
    const buf = b.build();
    const f = await file(buf.subarray(0, buf.length - 100));
    const head = await headOf(f);
    assert.equal((await scanCompleteTransactions(f, 0, head)).end, head.fdeEnd);
    await appendFile(f, buf.subarray(buf.length - 100));
    const scan = await scanCompleteTransactions(f, head.fdeEnd, head);
    assert.equal(scan.end, buf.length);
    assert.equal(scan.lastGtid, `${UUID_A}:1`);
  });

  test('a missed transaction end still leaves a boundary at the next GTID event', async () => {
    const b = new BinlogBuilder('crc32');
    b.gtid(UUID_A, 1, { immediate: TS * 1e6 });
    b.query("XA START X'02'");
    b.add(T.WRITE_ROWS, Buffer.alloc(40, 2));
    b.query("XA END X'02'");
    b.query("XA COMMIT X'02' ONE PHASE"); // whether or not this is seen as the end, the next GTID event is one
    const next = b.gtid(UUID_A, 2, { immediate: (TS + 1) * 1e6 });
    b.query('BEGIN');
    const f = await file(b.build());
    const scan = await scanCompleteTransactions(f, 0, await headOf(f));
    assert.equal(scan.end, next);
  });

  test('a start inside the FORMAT_DESCRIPTION event, or a file replaced by a new series, is an error', async () => {
    const { b } = rowsBinlog('crc32', 1);
    const f = await file(b.build());
    const head = await headOf(f);
    await rejectsAt(scanCompleteTransactions(f, 4, head), f, 4, /a scan starts at 0 or at an event boundary/);
    const other = await file(new BinlogBuilder('crc32', 1_700_009_999).build());
    await rejectsAt(scanCompleteTransactions(other, 0, head), other, 4, /the file was replaced/);
  });
});
