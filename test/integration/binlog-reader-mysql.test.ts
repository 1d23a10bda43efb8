// The binlog reader against real binary logs, written at test time by the local MySQL 9.7 source
// (scripts/services.sh): nothing is committed, every file read here was produced a moment before.
//
// Transactions are recognised as this test's own by the thread id the server stamps on their QUERY events
// (BEGIN, DDL), which is this connection's CONNECTION_ID(): other tests may write to the same server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import {
  GtidSet,
  findRestoreStop,
  readBinlogStart,
  readEvents,
  summarizeBinlog,
  transactionGtids,
  type BinlogEvent,
} from '../../src/binlog/index.ts';
import { servicesEnv } from '../support/env.ts';

const env = servicesEnv();
const binlogDir = path.dirname(env.source.binlogIndex);
const db = `mcb_binlog_${randomBytes(4).toString('hex')}`;

let conn: mysql.Connection;
let threadId: number;
let serverUuid: string;
let serverVersion: string;
let serverId: number;

before(async () => {
  conn = await mysql.createConnection({
    host: env.source.host,
    port: env.source.port,
    user: env.source.rootUser,
    password: env.source.rootPassword,
  });
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    'SELECT CONNECTION_ID() AS id, @@server_uuid AS uuid, VERSION() AS version, @@server_id AS serverId, @@log_bin AS logBin, @@gtid_mode AS gtidMode',
  );
  const r = rows[0]!;
  assert.equal(Number(r.logBin), 1, 'the source must write binary logs');
  assert.equal(r.gtidMode, 'ON', 'the source must run with GTIDs');
  threadId = Number(r.id);
  serverUuid = String(r.uuid);
  serverVersion = String(r.version);
  serverId = Number(r.serverId);
  await conn.query(`CREATE DATABASE ${db}`);
  await conn.query(`CREATE TABLE ${db}.t (id int auto_increment primary key, v varchar(100))`);
});

after(async () => {
  if (!conn) return;
  await conn.query(`DROP DATABASE IF EXISTS ${db}`);
  await conn.end();
});

// ---- helpers ----------------------------------------------------------------------------------------------

/** The binlog being written now (last of SHOW BINARY LOGS; works on 8.0 and 9.x). */
async function activeBinlog(): Promise<string> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  return String(rows.at(-1)!.Log_name);
}

async function binlogNames(): Promise<string[]> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  return rows.map((r) => String(r.Log_name));
}

/** FLUSH BINARY LOGS; returns the new active file and the time bracket of the rotation (seconds). */
async function flush(): Promise<{ file: string; before: number; after: number }> {
  const before = Math.floor(Date.now() / 1000);
  await conn.query('FLUSH BINARY LOGS');
  const after = Math.ceil(Date.now() / 1000);
  return { file: await activeBinlog(), before, after };
}

async function insert(v: string): Promise<void> {
  await conn.query(`INSERT INTO ${db}.t (v) VALUES (?)`, [v]);
}

async function all(file: string): Promise<BinlogEvent[]> {
  const out: BinlogEvent[] = [];
  for await (const ev of readEvents(path.join(binlogDir, file))) out.push(ev);
  return out;
}

interface Trx {
  gtid: Extract<BinlogEvent, { kind: 'gtid' }>;
  events: BinlogEvent[];
  mine: boolean;
  xid?: Extract<BinlogEvent, { kind: 'xid' }>;
}

/** Groups the events after PREVIOUS_GTIDS into transactions, each starting at its GTID event. */
function transactions(events: BinlogEvent[]): Trx[] {
  const out: Trx[] = [];
  for (const ev of events) {
    if (ev.kind === 'gtid') {
      out.push({ gtid: ev, events: [ev], mine: false });
      continue;
    }
    const cur = out.at(-1);
    if (!cur || ev.kind === 'rotate' || ev.kind === 'stop') continue;
    cur.events.push(ev);
    if (ev.kind === 'query' && ev.threadId === threadId) cur.mine = true;
    if (ev.kind === 'xid') cur.xid = ev;
  }
  return out;
}

/** `uuid:1-5:7:tag:1,uuid2:3` → key (`uuid` or `uuid:tag`) → [from, to] intervals. */
function parseGtidSet(text: string): Map<string, Array<[bigint, bigint]>> {
  const set = new Map<string, Array<[bigint, bigint]>>();
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [uuid, ...rest] = part.split(':');
    let key = uuid!.toLowerCase();
    for (const seg of rest) {
      if (/^\d/.test(seg)) {
        const [a, b] = seg.split('-');
        const list = set.get(key) ?? [];
        list.push([BigInt(a!), BigInt(b ?? a!)]);
        set.set(key, list);
      } else {
        key = `${uuid!.toLowerCase()}:${seg}`;
      }
    }
  }
  return set;
}

function containsGtid(set: Map<string, Array<[bigint, bigint]>>, g: Extract<BinlogEvent, { kind: 'gtid' }>): boolean {
  const key = g.tag ? `${g.uuid}:${g.tag}` : g.uuid;
  const gno = BigInt(g.gtid.slice(g.gtid.lastIndexOf(':') + 1));
  return (set.get(key) ?? []).some(([a, b]) => a <= gno && gno <= b);
}

/** mysqlbinlog's view of a file: every event's position, end_log_pos and the XID values. */
async function mysqlbinlogView(file: string): Promise<{ positions: number[]; ends: number[]; xids: bigint[] }> {
  const [cmd, ...args] = env.mysqlbinlog;
  const { stdout } = await promisify(execFile)(cmd!, [...args, '--base64-output=DECODE-ROWS', path.join(binlogDir, file)], {
    maxBuffer: 64 << 20,
  });
  const positions = [...stdout.matchAll(/^# at (\d+)$/gm)].map((m) => Number(m[1]));
  const ends = [...stdout.matchAll(/^#\d{6} .* end_log_pos (\d+)/gm)].map((m) => Number(m[1]));
  const xids = [...stdout.matchAll(/\tXid = (\d+)$/gm)].map((m) => BigInt(m[1]!));
  return { positions, ends, xids };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- tests ------------------------------------------------------------------------------------------------

test('closed binlogs of MySQL: FDE, checksum, GTIDs, XIDs, ROTATE, PREVIOUS_GTIDS chain, same view as mysqlbinlog', async () => {
  const [vars] = await conn.query<mysql.RowDataPacket[]>('SELECT @@binlog_checksum AS c');
  const checksum = String(vars[0]!.c).toLowerCase();

  // Three files with 4, 2 and 0 transactions of ours (one of them with two statements).
  const opened = [await flush()];
  const expected = new Map<string, number>();
  const wrote = async (): Promise<void> => {
    const f = await activeBinlog();
    expected.set(f, (expected.get(f) ?? 0) + 1);
  };
  for (const v of ['a1', 'a2', 'a3']) {
    await insert(v);
    await wrote();
  }
  await conn.beginTransaction();
  await insert('a4');
  await insert('a5');
  await conn.commit();
  await wrote();
  opened.push(await flush());
  await insert('b1');
  await wrote();
  await insert('b2');
  await wrote();
  opened.push(await flush());
  opened.push(await flush());

  const names = await binlogNames();
  const files = opened.slice(0, 3).map((o) => o.file);
  const summaries = [];
  for (const [i, file] of files.entries()) {
    const full = path.join(binlogDir, file);
    const events = await all(file);
    const fde = events[0]!;
    assert.equal(fde.kind, 'format_description', `${file} starts with FORMAT_DESCRIPTION`);
    assert.ok(fde.kind === 'format_description');
    assert.equal(fde.serverVersion, serverVersion);
    assert.equal(fde.checksum, checksum);
    assert.equal(fde.binlogVersion, 4);
    assert.equal(fde.inUse, false, 'a rotated file has its in-use flag cleared');
    assert.equal(events[1]!.kind, 'previous_gtids');

    // Positions chain exactly, and match mysqlbinlog's.
    for (const [j, ev] of events.entries()) {
      assert.equal(ev.header.nextPosition, ev.header.position + ev.header.eventSize, `${file}: log_pos of event ${j}`);
      assert.equal(ev.header.serverId, serverId);
    }
    const mb = await mysqlbinlogView(file);
    assert.deepEqual(events.map((e) => e.header.position), mb.positions, `${file}: event positions as mysqlbinlog prints them`);
    assert.deepEqual(events.map((e) => e.header.nextPosition), mb.ends, `${file}: end_log_pos as mysqlbinlog prints them`);
    assert.deepEqual(events.flatMap((e) => (e.kind === 'xid' ? [e.xid] : [])), mb.xids, `${file}: XIDs`);

    // Our transactions: GTIDs of this server, one XID each, BEGIN from our connection.
    const mine = transactions(events).filter((t) => t.mine);
    assert.equal(mine.length, expected.get(file) ?? 0, `${file}: our transactions`);
    assert.equal(mine.filter((t) => t.xid).length, expected.get(file) ?? 0, `${file}: one XID per transaction of ours`);
    for (const t of mine) {
      assert.equal(t.gtid.uuid, serverUuid);
      assert.equal(t.gtid.anonymous, false);
      assert.ok(t.gtid.gno >= 1);
      assert.equal(t.gtid.gtid, `${serverUuid}:${t.gtid.gno}`);
      assert.ok(t.gtid.immediateCommitMicros! / 1e6 >= opened[i]!.before - 1, 'commit timestamp in microseconds, after the file was opened');
      assert.equal(t.gtid.originalCommitMicros, t.gtid.immediateCommitMicros, 'written here: original = immediate');
      const last = t.events.at(-1)!;
      assert.equal(t.gtid.transactionLength, last.header.nextPosition - t.gtid.header.position, 'transaction_length spans GTID .. XID');
      const begin = t.events[1]!;
      assert.ok(begin.kind === 'query' && begin.query === 'BEGIN', 'a row-format transaction opens with a BEGIN query');
    }
    if (i === 0) {
      const twoRows = mine[3]!.events.filter((e) => e.header.typeName === 'WRITE_ROWS_EVENT');
      assert.equal(twoRows.length, 2, 'the two-statement transaction has two WRITE_ROWS events');
    }

    // Ends with ROTATE to the next file in SHOW BINARY LOGS.
    const rotate = events.at(-1)!;
    assert.ok(rotate.kind === 'rotate', `${file} ends with ROTATE`);
    assert.equal(rotate.nextFile, names[names.indexOf(file) + 1]);
    assert.equal(rotate.nextPosition, 4);

    // Start and summary.
    const start = await readBinlogStart(full);
    assert.equal(start.checksum, checksum);
    assert.equal(start.serverVersion, serverVersion);
    assert.equal(start.serverId, serverId);
    assert.ok(
      start.firstEventTimestamp >= opened[i]!.before - 1 && start.firstEventTimestamp <= opened[i]!.after + 1,
      `firstEventTimestamp ${start.firstEventTimestamp} within the FLUSH that opened ${file} (${opened[i]!.before}..${opened[i]!.after})`,
    );
    const summary = await summarizeBinlog(full);
    assert.deepEqual(
      { ...summary },
      {
        file: full,
        size: summary.size,
        checksum,
        serverVersion,
        serverId,
        firstEventTimestamp: start.firstEventTimestamp,
        lastEventTimestamp: rotate.header.timestamp,
        previousGtids: events[1]!.kind === 'previous_gtids' ? events[1]!.gtidSet : 'missing',
        eventCount: events.length,
        closed: true,
        inUse: false,
        nextFile: rotate.nextFile,
      },
    );
    assert.equal(summary.size, rotate.header.nextPosition, 'the file ends where the ROTATE event ends');
    assert.ok(summary.lastEventTimestamp >= summary.firstEventTimestamp);
    assert.ok(summary.lastEventTimestamp <= opened[i + 1]!.after + 1, 'the ROTATE is written when the next file opens');
    summaries.push({ summary, events });
  }

  // PREVIOUS_GTIDS of file N+1 = PREVIOUS_GTIDS of file N + the GTIDs written in file N.
  for (let i = 0; i + 1 < summaries.length; i++) {
    const next = parseGtidSet(summaries[i + 1]!.summary.previousGtids);
    const prev = parseGtidSet(summaries[i]!.summary.previousGtids);
    for (const t of transactions(summaries[i]!.events)) {
      assert.ok(containsGtid(next, t.gtid), `${t.gtid.gtid} (in ${files[i]}) is in the PREVIOUS_GTIDS of ${files[i + 1]}`);
      assert.ok(!containsGtid(prev, t.gtid), `${t.gtid.gtid} is not in the PREVIOUS_GTIDS of its own file`);
    }
    for (const [key, intervals] of prev) {
      for (const [a, b] of intervals) {
        assert.ok(
          (next.get(key) ?? []).some(([c, d]) => c <= a && b <= d),
          `PREVIOUS_GTIDS only grows: ${key}:${a}-${b} of ${files[i]} is in that of ${files[i + 1]}`,
        );
      }
    }
  }
  assert.ok(parseGtidSet(summaries[1]!.summary.previousGtids).has(serverUuid));
});

test('the active binlog can be read up to its last whole event', async () => {
  await insert('active');
  const file = await activeBinlog();
  const summary = await summarizeBinlog(path.join(binlogDir, file), { allowTruncatedTail: true });
  assert.equal(summary.inUse, true, 'the active file carries the in-use flag');
  assert.equal(summary.closed, false);
  assert.equal(summary.nextFile, undefined);
  const mine = transactions(await all(file)).filter((t) => t.mine);
  assert.ok(mine.length >= 1);
});

test("binlog_checksum='NONE' files are read without per-event checksums", async () => {
  let file: string;
  try {
    await conn.query("SET GLOBAL binlog_checksum = 'NONE'"); // rotates the binlog by itself
    await conn.query('FLUSH BINARY LOGS');
    await insert('no-checksum-1');
    await insert('no-checksum-2');
    file = await activeBinlog();
    await conn.query('FLUSH BINARY LOGS');
  } finally {
    await conn.query("SET GLOBAL binlog_checksum = 'CRC32'");
  }
  const [vars] = await conn.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.binlog_checksum AS c');
  assert.equal(vars[0]!.c, 'CRC32', 'binlog_checksum restored');

  const full = path.join(binlogDir, file);
  const start = await readBinlogStart(full);
  assert.equal(start.checksum, 'none');
  const summary = await summarizeBinlog(full);
  assert.equal(summary.checksum, 'none');
  assert.equal(summary.closed, true);
  const events = await all(file);
  const mine = transactions(events).filter((t) => t.mine);
  assert.equal(mine.length, 2);
  assert.ok(mine.every((t) => t.xid && t.gtid.uuid === serverUuid));
  // Without the 4 checksum bytes an XID event is 19 + 8 bytes.
  assert.equal(mine[0]!.xid!.header.eventSize, 27);
  const mb = await mysqlbinlogView(file);
  assert.deepEqual(events.map((e) => e.header.position), mb.positions);
});

/** The server's clock, microseconds since the epoch. */
async function serverMicros(): Promise<number> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>("SELECT CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS UNSIGNED) AS t");
  return Number(rows[0]!.t);
}

async function gtidExecuted(): Promise<GtidSet> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.gtid_executed AS g');
  return GtidSet.parse(String(rows[0]!.g));
}

test('findRestoreStop by time finds the end of a transaction by its commit time', async () => {
  await flush();
  const file = await activeBinlog();
  await insert('pitr-1');
  const t1 = await serverMicros();
  await sleep(1100);
  await insert('pitr-2');
  const t2 = await serverMicros();
  await flush();

  const full = path.join(binlogDir, file);
  const mine = transactions(await all(file)).filter((t) => t.mine);
  assert.equal(mine.length, 2);
  const [first, second] = mine as [Trx, Trx];
  const firstEnd = first.xid!.header.nextPosition;
  assert.ok(first.gtid.immediateCommitMicros! <= t1);
  assert.ok(second.gtid.immediateCommitMicros! > t1);

  const p1 = await findRestoreStop(full, { kind: 'time', atMicros: t1 });
  assert.ok(p1.last, 'a transaction at or before t1');
  assert.equal(p1.reached, true);
  assert.equal(p1.stoppedEarly, true);
  // Another session could have committed between them; with this test alone it is exactly our first one.
  assert.ok(p1.last.endPosition >= firstEnd && p1.last.endPosition <= second.gtid.header.position, `endPosition ${p1.last.endPosition}`);
  assert.ok(p1.last.commitMicros <= t1);
  assert.equal(p1.last.timeSource, 'gtid-commit');
  if (p1.last.endPosition === firstEnd) assert.equal(p1.last.gtid, first.gtid.gtid);

  const p2 = await findRestoreStop(full, { kind: 'time', atMicros: t2 });
  assert.ok(p2.last && p2.last.endPosition >= second.xid!.header.nextPosition);
  const before = await findRestoreStop(full, { kind: 'time', atMicros: (await readBinlogStart(full)).firstEventTimestamp * 1e6 - 1 });
  assert.equal(before.last, undefined);
  assert.equal(before.stoppedEarly, true);
});

test('findRestoreStop excludes a statement that started before the target and committed after it', async () => {
  const gtidsBefore = await gtidExecuted();
  await flush();
  const file = await activeBinlog();
  await insert('committed-before');
  const target = (await serverMicros()) + 1_000_000;
  // Starts about a second before the target, commits about two seconds after it.
  await conn.query(`INSERT INTO ${db}.t (v) SELECT 'long' FROM DUAL WHERE SLEEP(3) = 0`);
  const { file: nextFile } = await flush();
  const gtidsAfter = await gtidExecuted();

  const full = path.join(binlogDir, file);
  const events = await all(file);
  const mine = transactions(events).filter((t) => t.mine);
  assert.equal(mine.length, 2);
  const [early, long] = mine as [Trx, Trx];
  assert.ok(early.gtid.originalCommitMicros! <= target - 900_000, 'the first one commits about a second before the target');
  assert.ok(long.xid!.header.timestamp * 1e6 <= target, 'the long statement is stamped with its start time, before the target');
  assert.ok(long.gtid.originalCommitMicros! > target, 'and it commits after the target');

  const stop = await findRestoreStop(full, { kind: 'time', atMicros: target });
  assert.ok(stop.last, 'the transaction before the target is found');
  assert.equal(stop.reached, true);
  assert.equal(stop.stoppedEarly, true);
  assert.ok(stop.last.endPosition >= early.xid!.header.nextPosition, 'the earlier statement is included');
  assert.ok(stop.last.endPosition <= long.gtid.header.position, 'the long statement is excluded');
  assert.ok(stop.last.commitMicros <= target);
  assert.equal(stop.last.timeSource, 'gtid-commit');
  assert.ok(stop.next && stop.next.commitMicros > target && stop.next.startPosition === stop.last.endPosition);
  if (stop.last.endPosition === early.xid!.header.nextPosition) assert.equal(stop.last.gtid, early.gtid.gtid);

  // By GTID: right before, or right after, the long statement.
  const beforeLong = await findRestoreStop(full, { kind: 'gtid', gtids: long.gtid.gtid, include: false });
  assert.equal(beforeLong.last?.endPosition, long.gtid.header.position);
  assert.equal(beforeLong.next?.gtid, long.gtid.gtid);
  const withLong = await findRestoreStop(full, { kind: 'gtid', gtids: long.gtid.gtid, include: true });
  assert.equal(withLong.last?.endPosition, long.xid!.header.nextPosition);
  assert.equal(withLong.reached, true);

  // The GTIDs of the file against @@gtid_executed: the file's PREVIOUS_GTIDS plus its transactions is what the
  // server had executed when it rotated (the PREVIOUS_GTIDS of the next file).
  const split = await transactionGtids(full, { untilPosition: stop.last.endPosition });
  const whole = await transactionGtids(full);
  assert.equal(whole.after.isEmpty(), true);
  assert.equal(split.before.union(split.after).toString(), whole.before.toString());
  assert.equal(split.before.intersection(split.after).isEmpty(), true);
  assert.ok(split.before.contains(early.gtid.gtid));
  assert.ok(split.after.contains(long.gtid.gtid));
  const previous = GtidSet.parse((await summarizeBinlog(full)).previousGtids);
  const nextPrevious = GtidSet.parse((await summarizeBinlog(path.join(binlogDir, nextFile))).previousGtids);
  assert.equal(previous.intersection(whole.before).isEmpty(), true, 'a transaction of the file is not in its PREVIOUS_GTIDS');
  assert.equal(previous.union(whole.before).toString(), nextPrevious.toString());
  assert.ok(gtidsBefore.isSubsetOf(previous), `executed before the file opened: ${gtidsBefore.firstNotIn(previous)} missing`);
  assert.ok(nextPrevious.isSubsetOf(gtidsAfter), `${nextPrevious.firstNotIn(gtidsAfter)} is not in @@gtid_executed`);
  assert.equal(whole.before.intersection(gtidsBefore).isEmpty(), true);
});
