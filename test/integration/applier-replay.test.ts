// Binlog replay through the restored server's own applier (src/restore/applier-replay.ts) against a real MySQL 9.7:
// a private source, a CLONE of it, binlogs written after the clone (and before it, in the same file), then the
// clone restored and replayed on the temporary restore server by each method, on the same binlogs.
//  - cut in the middle of a file: the applier and mysqlbinlog give the same rows (CHECKSUM TABLE) and the same
//    gtid_executed, exactly the decided GTIDs; what the clone holds (a database dropped before the clone among
//    them) is skipped by GTID; no relay log and no channel is left;
//  - a restore account that may not set up a channel: the applier falls back to mysqlbinlog, saying why;
//  - a transaction that fails (its table is not in the clone): one line naming its GTID, binlog and the error;
//  - binlogs that create events: mysqlbinlog replays them (the applier would store them REPLICA_SIDE_DISABLED).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { GtidSet } from '../../src/binlog/index.ts';
import { mysqldFromSidRoot, type RunningMysqld } from '../../src/mysql/mysqld.ts';
import { ApplierReplayError } from '../../src/restore/applier-replay.ts';
import { checkReplayed, decideReplay, type ReplayDecision } from '../../src/restore/replay.ts';
import { binariesFromSidRoot, replayBinlogs, RESTORE_SERVER_ARGS, type ReplayMethod } from '../../src/restore/run.ts';
import { removeReplicationConfiguration, RESTORE_RELAY_LOG, startRestoreServer } from '../../src/restore/server.ts';
import { servicesEnv } from '../support/env.ts';
import { testServers, type TestServer, type TestServers } from '../support/test-mysqld.ts';

const TABLES = ['d.t', 'd.u'];
let servers: TestServers;
let source: TestServer;
let cloneDir: string;
let binlogs: string[];
let cloneGtids: GtidSet;
/** GTIDs of some transactions written after the clone. */
const gtid: Record<string, string> = {};

before(async () => {
  servers = testServers('mcb-applier');
  chmodSync(servers.dir, 0o711); // the restore server runs as the mysql user
  source = await servers.start('source', 7, ['--plugin-load-add=mysql_clone.so']);
  const c = source.conn;
  const last = async (name: string) => {
    const [rows] = await c.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.gtid_executed AS g');
    gtid[name] = `${source.serverUuid}:${/:1-(\d+)$/.exec(String(rows[0]!.g).replace(/\s+/g, ''))![1]}`;
  };
  await c.query('CREATE DATABASE d');
  await c.query('CREATE TABLE d.t (id int PRIMARY KEY, v varchar(40))');
  await c.query('CREATE TABLE d.u (id int PRIMARY KEY, n int)');
  await c.query('CREATE TABLE d.f (id int PRIMARY KEY)');
  await c.query("CREATE USER restorer@localhost IDENTIFIED BY 'pw'");
  await c.query('GRANT ALL ON *.* TO restorer@localhost');
  await c.query('REVOKE SUPER, SYSTEM_VARIABLES_ADMIN, REPLICATION_SLAVE_ADMIN ON *.* FROM restorer@localhost');
  // Used as a session's default database and dropped before the clone, in the binlog the replay starts with.
  await c.query('CREATE DATABASE gone');
  const user = await mysql.createConnection({ host: '127.0.0.1', port: source.port, user: 'root', password: '', database: 'gone' });
  await user.query('CREATE TABLE x (a int PRIMARY KEY)');
  await user.query('INSERT INTO x VALUES (1)');
  await user.end();
  await c.query('DROP DATABASE gone');
  // An event created before the clone: the applier skips it with the clone's other transactions (no fallback).
  await c.query('CREATE EVENT d.early ON SCHEDULE EVERY 1 DAY DO DELETE FROM d.u');
  for (let i = 1; i <= 5; i++) await c.query('INSERT INTO d.t VALUES (?, ?)', [i, `before-${i}`]);
  cloneDir = path.join(servers.dir, 'clone');
  await c.query('CLONE LOCAL DATA DIRECTORY = ?', [cloneDir]);
  const [g] = await c.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.gtid_executed AS g');
  cloneGtids = GtidSet.parse(String(g[0]!.g));

  // The rest of the first binlog, after the clone.
  for (let i = 6; i <= 8; i++) await c.query('INSERT INTO d.t VALUES (?, ?)', [i, `after-${i}`]);
  await c.query("UPDATE d.t SET v = CONCAT(v, '-updated') WHERE id IN (3, 6)");
  await c.query('DELETE FROM d.t WHERE id = 2');
  await c.beginTransaction();
  await c.query("INSERT INTO d.t VALUES (9, 'in a transaction')");
  await c.query('INSERT INTO d.u VALUES (1, 1), (2, 2)');
  await c.commit();
  await c.query('FLUSH BINARY LOGS');
  // The second binlog: its first transaction touches d.f (dropped from one restored copy below); cut before `cut`.
  await c.query('INSERT INTO d.f VALUES (1)');
  await last('f');
  await c.query('UPDATE d.u SET n = n + 10');
  for (let i = 10; i <= 11; i++) await c.query('INSERT INTO d.t VALUES (?, ?)', [i, `file2-${i}`]);
  await c.query("INSERT INTO d.t VALUES (12, 'past the target')");
  await last('cut');
  await c.query('ALTER TABLE d.t ADD COLUMN w int');
  await c.query("INSERT INTO d.t VALUES (13, 'past the target', 1)");
  await c.query('FLUSH BINARY LOGS');
  await c.query("INSERT INTO d.t VALUES (14, 'third file', 2)");
  await last('third');
  await c.query('FLUSH BINARY LOGS');
  await c.query('CREATE EVENT d.tick ON SCHEDULE EVERY 1 DAY DO INSERT INTO d.u VALUES (100, 0)');
  await c.query('CREATE EVENT d.off ON SCHEDULE EVERY 1 DAY DISABLE DO INSERT INTO d.u VALUES (101, 0)');
  await c.query('FLUSH BINARY LOGS');
  const [logs] = await c.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  binlogs = logs.slice(0, -1).map((l) => path.join(source.datadir, String(l.Log_name)));
  assert.equal(binlogs.length, 4);
});
after(async () => {
  await servers?.stopAll();
});

interface Restored {
  server: RunningMysqld;
  datadir: string;
  /** The binlogs, copied for this restore (the applier moves them into the datadir). */
  files: string[];
}

/** A copy of the clone on the restore server of `mcb restore run`, with its own copy of the binlogs. */
async function restoreClone(name: string): Promise<Restored> {
  const datadir = path.join(servers.dir, name, 'data');
  cpSync(cloneDir, datadir, { recursive: true });
  const binlogDir = path.join(servers.dir, name, 'binlogs');
  mkdirSync(binlogDir);
  const files = binlogs.map((b) => {
    cpSync(b, path.join(binlogDir, path.basename(b)));
    return path.join(binlogDir, path.basename(b));
  });
  const server = await startRestoreServer(mysqldFromSidRoot(servicesEnv().sidRoot), {
    datadir,
    runDir: path.join(servers.dir, name, 'run'),
    extraArgs: RESTORE_SERVER_ARGS,
    relayLogReplay: true,
  });
  return { server, datadir, files };
}

async function query<T = mysql.RowDataPacket>(server: RunningMysqld, sql: string): Promise<T[]> {
  const conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', password: '' });
  try {
    const [rows] = await conn.query(sql);
    return rows as T[];
  } finally {
    await conn.end();
  }
}

async function replay(r: Restored, decision: ReplayDecision, method: ReplayMethod, user = 'root', password = ''): Promise<{ ran: ReplayMethod; log: string[] }> {
  const log: string[] = [];
  const files = decision.files.map((f) => r.files.find((c) => path.basename(c) === path.basename(f))!);
  const ran = await replayBinlogs({
    binaries: binariesFromSidRoot(servicesEnv().sidRoot),
    socket: r.server.socket,
    datadir: r.datadir,
    files,
    ...(decision.stopPosition ? { stopPosition: decision.stopPosition } : {}),
    clone: cloneGtids,
    method,
    user,
    password,
    log: (m) => log.push(m),
  });
  return { ran, log };
}

/** After the replay, as runRestore finishes: no channel; the rows, gtid_executed and what is left in the datadir. */
async function finish(r: Restored): Promise<{ checksums: string; rows: string[]; gtidExecuted: string; gone: number; channels: number; relayFiles: string[] }> {
  await removeReplicationConfiguration(r.server, 'root', '');
  const rows = await query<{ id: number; v: string }>(r.server, 'SELECT id, v FROM d.t ORDER BY id');
  const sums = await query<{ Table: string; Checksum: number }>(r.server, `CHECKSUM TABLE ${TABLES.join(', ')}`);
  const [g] = await query<{ g: string; gone: number; channels: number }>(
    r.server,
    "SELECT @@GLOBAL.gtid_executed AS g, (SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = 'gone') AS gone, (SELECT COUNT(*) FROM performance_schema.replication_connection_configuration) AS channels",
  );
  await r.server.stop();
  return {
    checksums: sums.map((s) => `${s.Table}=${s.Checksum}`).join(' '),
    rows: rows.map((row) => `${row.id}:${row.v}`),
    gtidExecuted: String(g!.g).replace(/\s+/g, ''),
    gone: Number(g!.gone),
    channels: Number(g!.channels),
    relayFiles: readdirSync(r.datadir).filter((f) => f.startsWith(RESTORE_RELAY_LOG)),
  };
}

test('cut mid-file: the applier and mysqlbinlog (its fallback) give the same rows and gtid_executed, the clone\'s transactions skipped', async () => {
  const decision = await decideReplay(binlogs, { kind: 'gtid', gtids: gtid.cut!, include: false });
  assert.deepEqual(decision.files.map((f) => path.basename(f)), binlogs.slice(0, 2).map((f) => path.basename(f)));
  assert.ok(decision.stopPosition, 'the second binlog is cut');

  const byApplier = await restoreClone('applier');
  const applier = await replay(byApplier, decision, 'applier');
  assert.equal(applier.ran, 'applier');
  assert.match(applier.log.join('\n'), /replaying through the server's applier \(\d+ workers?\) up to position \d+ of mysql-bin\.000002/);
  const a = await finish(byApplier);

  // A restore account without SYSTEM_VARIABLES_ADMIN/REPLICATION_SLAVE_ADMIN cannot set up the channel: mysqlbinlog runs instead.
  const byMysqlbinlog = await restoreClone('mysqlbinlog');
  const fallback = await replay(byMysqlbinlog, decision, 'applier', 'restorer', 'pw');
  assert.equal(fallback.ran, 'mysqlbinlog');
  assert.match(fallback.log.join('\n'), /replaying with mysqlbinlog \| mysql, not the server's applier: the restore account restorer may not set up a replication channel: Access denied.*SYSTEM_VARIABLES_ADMIN/);
  const m = await finish(byMysqlbinlog);

  assert.equal(a.checksums, m.checksums);
  assert.equal(a.gtidExecuted, m.gtidExecuted);
  assert.deepEqual(checkReplayed(GtidSet.parse(a.gtidExecuted), decision), {}, 'every GTID up to the cut, none after it');
  assert.ok(GtidSet.parse(a.gtidExecuted).firstNotIn(cloneGtids.union(decision.expected)) === undefined);
  assert.deepEqual(
    a.rows,
    ['1:before-1', '3:before-3-updated', '4:before-4', '5:before-5', '6:after-6-updated', '7:after-7', '8:after-8', '9:in a transaction', '10:file2-10', '11:file2-11'],
  );
  for (const r of [a, m]) {
    assert.equal(r.gone, 0, 'the database dropped before the clone stays dropped');
    assert.equal(r.channels, 0, 'no replication channel is left');
    assert.deepEqual(r.relayFiles, [], 'no relay log is left in the datadir');
  }
});

test('a transaction that fails stops the replay with one line naming its GTID, its binlog and the error', async () => {
  const decision = await decideReplay(binlogs, { kind: 'gtid', gtids: gtid.third!, include: true });
  assert.equal(decision.files.length, 3);
  const restored = await restoreClone('failing');
  try {
    await query(restored.server, 'DROP TABLE d.f');
    await assert.rejects(replay(restored, decision, 'applier'), (err: Error) => {
      assert.ok(err instanceof ApplierReplayError, String(err));
      assert.ok(!err.message.includes('\n'), err.message);
      assert.equal(
        err.message.replace(/end_log_pos \d+/, 'end_log_pos N'),
        `replaying binlogs through the server's applier failed: transaction ${gtid.f} (binlog mysql-bin.000002, end_log_pos N) failed: Error executing row event: 'Table 'd.f' doesn't exist' (error 1146)`,
      );
      return true;
    });
  } finally {
    await restored.server.stop();
  }
});

test('binlogs that create events are replayed by mysqlbinlog, saying why; the events are as on the source', async () => {
  const decision = await decideReplay(binlogs, { kind: 'end' });
  const restored = await restoreClone('events');
  try {
    const { ran, log } = await replay(restored, decision, 'applier');
    assert.equal(ran, 'mysqlbinlog');
    assert.match(log.join('\n'), /not the server's applier: the binlogs create or alter an event, which the applier would store as REPLICA_SIDE_DISABLED \(mysql-bin\.000004 at \d+: CREATE DEFINER=`root`@`\S+` EVENT/);
    const events = await query<{ name: string; status: string }>(restored.server, "SELECT EVENT_NAME AS name, STATUS AS status FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'd' ORDER BY 1");
    assert.deepEqual(events.map((e) => `${e.name}:${e.status}`), ['early:ENABLED', 'off:DISABLED', 'tick:ENABLED']);
    assert.deepEqual(readdirSync(restored.datadir).filter((f) => f.startsWith(RESTORE_RELAY_LOG)), [], 'the binlogs were not left in the datadir');
  } finally {
    await restored.server.stop();
  }
});
