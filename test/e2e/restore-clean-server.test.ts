// The temporary mysqld of a restore changes nothing by itself (real MySQL 9.7):
//  1. A source of our own (the shared one is used by other tests and replicated) with an EVENT inserting a row every
//     second: full backup with the real stage handlers, rows accumulate, target T, binlogs archived, `mcb restore run
//     --at T`. This source's backups use zstd (`compression` and `binlog_compression`; the other restore tests gzip),
//     so the restore reads a .tar.zst full and .zst binlogs. The restored table holds exactly the source's rows inserted at or before T (ids contiguous from 1),
//     and the event is still defined. While the restore runs, its mysqld is the mysql user's (we are root) and
//     has no TCP listener.
//  2. A restore of the shared replica's full backup leaves no replication channel, although the backup has one.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { binlogJob } from '../../src/jobs/binlog.ts';
import { fullJob } from '../../src/jobs/full.ts';
import { cloneStage } from '../../src/jobs/full-clone.ts';
import { tarStage } from '../../src/jobs/full-tar.ts';
import { uploadStage } from '../../src/jobs/full-upload.ts';
import { cleanupStage } from '../../src/jobs/full-cleanup.ts';
import { findFreePort, initializeDatadir, mysqldFromSidRoot, startMysqld, type RunningMysqld } from '../../src/mysql/mysqld.ts';
import { extractFullVerified } from '../../src/restore/run.ts';
import { restoreServerAccount } from '../../src/restore/server.ts';
import { MinioObjectStore } from '../../src/storage/index.ts';
import { makeCompletedFullBackup } from '../support/backup.ts';
import { directContext } from '../support/context.ts';
import { servicesEnv } from '../support/env.ts';
import { runMcb, startMcb } from '../support/spawn.ts';
import { listensOnTcp, processUid } from '../support/proc.ts';
import { createWorld, type World } from '../support/world.ts';

const BACKUP_USER = 'backup_clone';
const BACKUP_PASSWORD = 'events-pw';
const FILLER_ROWS = 10_000;

let world: World;
let own: RunningMysqld | undefined;
let ownRoot: mysql.Connection;
let ownInstanceId: number;
let ownIni: string;
let ownConfig: Config;

const bin = () => mysqldFromSidRoot(servicesEnv().sidRoot);

/** `YYYY-MM-DD HH:MM:SS` in this host's zone (the zone of the servers and of the metadata center here). */
function localSecond(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

before(async () => {
  world = await createWorld();
  const datadir = path.join(world.dir, 'events-source', 'data');
  await initializeDatadir(bin(), datadir);
  const port = await findFreePort();
  own = await startMysqld(bin(), {
    datadir,
    port,
    runDir: path.join(world.dir, 'events-source', 'run'),
    extraArgs: [
      '--plugin-load-add=mysql_clone.so',
      '--log-bin=mysql-bin',
      '--server-id=71',
      '--gtid-mode=ON',
      '--enforce-gtid-consistency=ON',
      '--event-scheduler=ON',
      '--sync-binlog=0', // speed only: the filler transactions below
      '--innodb-flush-log-at-trx-commit=2',
    ],
  });
  ownRoot = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '', multipleStatements: true });
  for (const host of ['127.0.0.1', 'localhost']) {
    await ownRoot.query(
      `CREATE USER '${BACKUP_USER}'@'${host}' IDENTIFIED BY '${BACKUP_PASSWORD}';
       GRANT BACKUP_ADMIN, RELOAD, REPLICATION CLIENT ON *.* TO '${BACKUP_USER}'@'${host}';
       GRANT SELECT ON performance_schema.* TO '${BACKUP_USER}'@'${host}';`,
    );
  }
  ownInstanceId = await world.metadata.addInstance({ instanceId: `127.0.0.1:${port}`, instanceName: `events-${world.id}`, stringLink: '127.0.0.1', dbPort: port, isClone: true });
  ownIni = world.writeConfig({
    instanceId: ownInstanceId,
    sections: { 'mysql-link': { host: '127.0.0.1', port: String(port), user: BACKUP_USER, password: BACKUP_PASSWORD, charset: 'utf8mb4' } },
    backupConf: {
      bin_index_path: path.join(datadir, 'mysql-bin.index'),
      tb_instance_id: String(ownInstanceId),
      is_cluster: 'off',
      max_rpo_minutes: '100000',
      compression: 'zstd',
      binlog_compression: 'zstd',
    },
  });
  ownConfig = loadConfig(ownIni);
});

after(async () => {
  await ownRoot?.end().catch(() => undefined);
  await own?.stop();
  await world?.cleanup();
});

/** Starts mysqld on a restored datadir (the event scheduler off, so the reading does not change it), runs `fn`. */
async function inspect<T>(datadir: string, fn: (conn: mysql.Connection) => Promise<T>, extraArgs: string[] = ['--event-scheduler=DISABLED']): Promise<T> {
  const server = await startMysqld(bin(), {
    datadir,
    port: await findFreePort(),
    runDir: `${datadir}-inspect-run`,
    extraArgs: ['--server-id=95', '--skip-log-bin', ...extraArgs],
  });
  try {
    const conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', password: servicesEnv().source.rootPassword });
    try {
      return await fn(conn);
    } finally {
      await conn.end();
    }
  } finally {
    await server.stop();
  }
}

type Tick = { id: number; at: string };

async function ticks(conn: mysql.Connection, upTo?: string): Promise<Tick[]> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>(
    `SELECT id, DATE_FORMAT(at, '%Y-%m-%d %H:%i:%s.%f') AS at FROM ev.ticks ${upTo ? 'WHERE at <= ?' : ''} ORDER BY id`,
    upTo ? [upTo] : [],
  );
  return rows.map((r) => ({ id: Number(r.id), at: String(r.at) }));
}



test('an event inserting a row every second: the restore to T has exactly the rows of T, and keeps the event', async () => {
  await ownRoot.query(
    `CREATE DATABASE ev;
     CREATE TABLE ev.ticks (id int AUTO_INCREMENT PRIMARY KEY, at DATETIME(6) NOT NULL);
     CREATE EVENT ev.tick ON SCHEDULE EVERY 1 SECOND DO INSERT INTO ev.ticks (at) VALUES (NOW(6));
     CREATE TABLE ev.filler (id int AUTO_INCREMENT PRIMARY KEY, x int NOT NULL);
     CREATE PROCEDURE ev.fill(n int) BEGIN DECLARE i int DEFAULT 0; WHILE i < n DO INSERT INTO ev.filler (x) VALUES (i); SET i = i + 1; END WHILE; END;`,
  );
  await sleep(3000);

  const ctx = directContext(ownConfig, world.metadata, { jobId: `events-full-${world.id}` });
  const started = await fullJob.handle({ instanceId: ownInstanceId }, ctx);
  assert.ok(started.started, `full backup of our source starts: ${JSON.stringify(started)}`);
  const payload = { instanceId: ownInstanceId, backupUuid: started.backupUuid };
  for (const stage of [cloneStage, tarStage, uploadStage, cleanupStage]) await stage.handle(payload, ctx);
  const full = await world.metadata.getBackup(started.backupUuid);
  assert.equal(full?.state, 'Completed');
  assert.match(full.objectKey ?? '', /^bak_\d+_\d{14}\.tar\.zst$/);
  assert.equal(full.compression, 'zstd');
  const inClone = (await ticks(ownRoot)).length;

  // Enough transactions that the replay lasts seconds, while an event left to fire would insert rows (and ids)
  // of its own between them.
  await ownRoot.query(`CALL ev.fill(${FILLER_ROWS})`);
  await sleep(3500);
  const target = localSecond(new Date());
  await sleep(3500);
  await ownRoot.query('FLUSH BINARY LOGS');
  const archived = await binlogJob.handle({ instanceId: ownInstanceId }, directContext(ownConfig, world.metadata, { jobId: `events-binlog-${world.id}` }));
  assert.ok(archived.archived.length > 0, 'binlogs archived');
  for (const a of archived.archived) assert.match(a.objectKey, /\.zst$/);
  const expected = await ticks(ownRoot, target);
  assert.ok(expected.length > inClone, `rows after the clone's ${inClone} are to be replayed (${expected.length} at T)`);

  const datadir = path.join(world.dir, 'events-restored');
  const daemon = startMcb(['-f', ownIni, 'restore', 'run', '--instance', String(ownInstanceId), '--at', target, '--datadir', datadir], path.join(world.dir, 'events-restore.log'), {
    MCB_SID_ROOT: servicesEnv().sidRoot,
  });
  const exited = new Promise<number | null>((resolve) => daemon.child.once('exit', (code) => resolve(code)));
  // While the restore's mysqld runs (its socket exists once it accepts connections): whose it is, and no TCP.
  const runDir = path.join(world.dir, `.mcb-restore-${path.basename(datadir)}-${daemon.child.pid}`, 'run');
  let seen: { uid: number; tcp: boolean } | undefined;
  while (!seen && daemon.child.exitCode === null) {
    try {
      if (existsSync(path.join(runDir, 'mysqld.sock'))) {
        const pid = Number(readFileSync(path.join(runDir, 'mysqld.pid'), 'utf8').trim());
        seen = { uid: processUid(pid), tcp: listensOnTcp(pid) };
      }
    } catch {
      // the server went away between two looks: the next round (or the exit) decides
    }
    if (!seen) await sleep(20);
  }
  const code = await exited;
  const log = readFileSync(daemon.logFile, 'utf8');
  assert.equal(code, 0, log);
  assert.ok(seen, `the restore's mysqld was seen running; log:\n${log}`);
  assert.equal(seen.tcp, false, 'the restore server has no TCP listener');
  const account = restoreServerAccount();
  if (process.getuid?.() === 0) assert.ok(account, 'the test machines have a mysql user');
  assert.equal(seen.uid, account?.uid ?? process.getuid!(), 'the restore server runs as the mysql user when we are root');

  const restored = await inspect(datadir, async (conn) => {
    const rows = await ticks(conn);
    const [filler] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM ev.filler');
    assert.equal(Number(filler[0]!.n), FILLER_ROWS, 'the filler transactions were replayed');
    const [events] = await conn.query<mysql.RowDataPacket[]>(
      "SELECT EVENT_NAME AS name, STATUS AS status, INTERVAL_VALUE AS every, INTERVAL_FIELD AS unit FROM information_schema.EVENTS WHERE EVENT_SCHEMA = 'ev'",
    );
    return { rows, events: events.map((e) => ({ ...e })) };
  });
  assert.deepEqual(restored.rows.map((r) => r.id), Array.from({ length: restored.rows.length }, (_, i) => i + 1), 'ids contiguous from 1');
  assert.deepEqual(restored.rows, expected, `exactly the source's rows inserted at or before ${target}`);
  assert.deepEqual(restored.events, [{ name: 'tick', status: 'ENABLED', every: '1', unit: 'SECOND' }], 'the event is kept as defined');
});

test("a restore of a replica's backup leaves no replication channel", async () => {
  const full = await makeCompletedFullBackup(world, `replica-full-${world.id}`);

  // The backup itself carries the replica's channel (what makes this test mean something).
  const control = path.join(world.dir, 'replica-control');
  await extractFullVerified(new MinioObjectStore(world.config.oss!, world.bucket), full.objectKey!, full.sha256, control);
  const channels = await inspect(control, async (conn) => (await conn.query<mysql.RowDataPacket[]>('SHOW REPLICA STATUS'))[0].length, ['--skip-replica-start']);
  assert.equal(channels, 1, 'the cloned replica has its channel');

  const datadir = path.join(world.dir, 'replica-restored');
  const r = await runMcb(['-f', world.configFile, 'restore', 'run', '--instance', String(world.replicaInstanceId), '--at', 'latest', '--datadir', datadir], {
    timeoutMs: 300_000,
    env: { MCB_SID_ROOT: servicesEnv().sidRoot },
  });
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  // Started as a DBA would (replica threads allowed to start): nothing to start.
  const after = await inspect(
    datadir,
    async (conn) => {
      const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW REPLICA STATUS');
      const [info] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM mysql.slave_master_info');
      const [config] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM performance_schema.replication_connection_configuration');
      return { status: status.length, masterInfo: Number(info[0]!.n), connectionConfig: Number(config[0]!.n) };
    },
    [],
  );
  assert.deepEqual(after, { status: 0, masterInfo: 0, connectionConfig: 0 });
});

test('refused before anything is downloaded: MariaDB tools beside --mysqld, a datadir the mysql user cannot reach', async (t) => {
  const tools = path.join(world.dir, 'fake-tools', 'bin');
  mkdirSync(tools, { recursive: true });
  const fake = (name: string, line: string) => {
    writeFileSync(path.join(tools, name), `#!/bin/sh\necho '${line}'\n`);
    chmodSync(path.join(tools, name), 0o755);
  };
  fake('mysqld', 'mysqld  Ver 9.7.4-2 for Linux on x86_64 ((Debian))');
  fake('mysqlbinlog', 'mysqlbinlog Ver 3.5 for debian-linux-gnu at x86_64');
  fake('mysql', 'mysql  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64) using  EditLine wrapper');
  const datadir = path.join(world.dir, 'never-created');
  const env = { MCB_SID_ROOT: '', MCB_MYSQLD: '' };
  const r = await runMcb(['-f', ownIni, 'restore', 'run', '--instance', String(ownInstanceId), '--at', 'latest', '--datadir', datadir, '--mysqld', path.join(tools, 'mysqld')], { env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr.trim(), new RegExp(`^mcb: mysqlbinlog ${tools}/mysqlbinlog is not a MySQL 8\\.0\\+ mysqlbinlog \\(its --version says "mysqlbinlog Ver 3\\.5[^\\n]*$`));
  assert.ok(!existsSync(datadir));

  if (!restoreServerAccount()) return t.skip('not root, or no mysql user: the restore server runs as ourselves');
  const closed = path.join(world.dir, 'closed');
  mkdirSync(closed, { mode: 0o700 });
  chmodSync(closed, 0o700);
  const unreachable = path.join(closed, 'data');
  const u = await runMcb(['-f', ownIni, 'restore', 'run', '--instance', String(ownInstanceId), '--at', 'latest', '--datadir', unreachable], { env: { MCB_SID_ROOT: servicesEnv().sidRoot } });
  assert.equal(u.code, 2, u.stderr);
  assert.match(u.stderr.trim(), new RegExp(`^mcb: the temporary mysqld runs as the mysql user, which cannot reach ${unreachable}: ${closed} \\(mode 0700\\) is not searchable by it[^\\n]*$`));
  assert.ok(!existsSync(unreachable));
});
