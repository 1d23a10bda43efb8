// Restores that are exactly right, against the real services: a worker in TZ=Asia/Shanghai takes the full backup
// and archives the binlogs; a DBA in TZ=UTC restores.
//  - By commit time: a statement that starts before the target and commits after it (nothing else committing
//    meanwhile) is absent; one that committed a second before the target is present.
//  - By GTID: --at-gtid stops just before a transaction, --inclusive just after it.
//  - The plan is the same from a UTC and a Shanghai shell, and the target is printed with its offset.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { formatInZone, parseTimeZone } from '../../src/time/zone.ts';
import { servicesEnv } from '../support/env.ts';
import { runMcb, startMcb, type Daemon } from '../support/spawn.ts';
import { phaseRowsIn } from '../support/restored.ts';
import { createWorld, rootConnection, type World } from '../support/world.ts';

const SHANGHAI = parseTimeZone('Asia/Shanghai');
let world: World;
let ini: string;
let worker: Daemon;
let source: mysql.Connection;
let db: string;
let target: string;
const gtid: Record<string, string> = {};

before(async () => {
  world = await createWorld();
  ini = world.writeConfig({ node: 'source', backupConf: { is_cluster: 'off', max_rpo_minutes: '100000' } });
  worker = startMcb(['-f', ini, 'worker'], path.join(world.dir, 'worker.log'), { TZ: 'Asia/Shanghai' });
  source = await rootConnection(servicesEnv().source);
  db = `exact_${world.id}`;
});
after(async () => {
  await worker?.stop();
  await source?.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
  await source?.end();
  await world?.cleanup();
});

function connectionOptions(): mysql.ConnectionOptions {
  const node = servicesEnv().source;
  return { host: node.host, port: node.port, user: node.rootUser, password: node.rootPassword };
}

/** Inserts one row in its own transaction on `conn`, returns that transaction's GTID. */
async function insertRow(conn: mysql.Connection, id: number, phase: string, sql = `INSERT INTO ${db}.t (id, phase) VALUES (?, ?)`): Promise<string> {
  await conn.query(sql, [id, phase]);
  const [rows] = await conn.query(
    'SELECT GTID FROM performance_schema.events_transactions_history WHERE THREAD_ID = PS_CURRENT_THREAD_ID() AND GTID <> ? ORDER BY EVENT_ID DESC LIMIT 1',
    ['AUTOMATIC'],
  );
  return String((rows as Array<{ GTID: string }>)[0]!.GTID);
}

function mcb(args: string[], tz: string) {
  return runMcb(['-f', ini, ...args], { timeoutMs: 300_000, env: { TZ: tz, MCB_SID_ROOT: servicesEnv().sidRoot } });
}

const rowsIn = (datadir: string) => phaseRowsIn(datadir, `${db}.t`);

async function restoreRun(name: string, args: string[]): Promise<{ rows: string[]; result: { gtidExecuted: string } }> {
  const datadir = path.join(world.dir, name);
  const r = await mcb(['restore', 'run', '--instance', String(world.sourceInstanceId), ...args, '--datadir', datadir, '--json'], 'UTC');
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return { rows: await rowsIn(datadir), result: JSON.parse(r.stdout) };
}

test('set-up: full backup and binlogs by a worker in Asia/Shanghai; a long statement straddles the target', async () => {
  await source.query(`CREATE DATABASE ${db}`);
  await source.query(`CREATE TABLE ${db}.t (id int PRIMARY KEY, phase varchar(10))`);
  await insertRow(source, 1, 'before');
  // A database used (as a session's default database) and dropped before the clone, in the binlog the replay
  // starts with: the transactions the clone holds must be left out, not reach the server as `USE gone; …`.
  await source.query(`CREATE DATABASE ${db}_gone`);
  const user = await mysql.createConnection({ ...connectionOptions(), database: `${db}_gone` });
  await user.query('CREATE TABLE x (a int PRIMARY KEY)');
  await user.query('INSERT INTO x VALUES (1)');
  await user.end();
  await source.query(`DROP DATABASE ${db}_gone`);
  const full = await mcb(['enqueue', 'full', '--instance', String(world.sourceInstanceId), '--wait', '--timeout', '280'], 'Asia/Shanghai');
  assert.equal(full.code, 0, `${full.stdout}\n${full.stderr}`);

  gtid.early = await insertRow(source, 2, 'early');
  await sleep(1000);
  const other = await rootConnection(servicesEnv().source);
  try {
    // Starts now, commits ~3 s later; its events carry its start time, its GTID event the commit time.
    const long = insertRow(other, 3, 'long', `INSERT INTO ${db}.t (id, phase) SELECT ?, ? FROM DUAL WHERE SLEEP(3) = 0`);
    await sleep(1000);
    // The target, as a DBA in Shanghai reads it off a clock, with its offset and microseconds.
    target = `${formatInZone(new Date(), SHANGHAI, { fraction: true })}+08:00`;
    gtid.long = await long;
  } finally {
    await other.end();
  }
  gtid.late = await insertRow(source, 4, 'late');
  await source.query('FLUSH BINARY LOGS');
  const binlog = await mcb(['enqueue', 'binlog', '--instance', String(world.sourceInstanceId), '--wait', '--timeout', '120'], 'Asia/Shanghai');
  assert.equal(binlog.code, 0, `${binlog.stdout}\n${binlog.stderr}`);
});

test('the plan is the same from a UTC and a Shanghai shell, with the target printed with its offset', async () => {
  const plan = (tz: string) => mcb(['restore', 'plan', '--instance', String(world.sourceInstanceId), '--at', target, '--json'], tz);
  const utc = await plan('UTC');
  const sh = await plan('Asia/Shanghai');
  assert.equal(utc.code, 0, utc.stderr);
  assert.equal(sh.stdout, utc.stdout, 'byte-identical plans');
  const p = JSON.parse(utc.stdout);
  assert.match(p.target, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} [+-]\d\d:\d\d/);
  assert.ok(p.binlogs.length >= 1);
});

test('--at: the statement committed before the target is there, the one that started before it but committed after is not', async () => {
  const { rows, result } = await restoreRun('restore-at-target', ['--at', target]);
  assert.deepEqual(rows, ['before:1', 'early:2']);
  assert.ok(result.gtidExecuted.length > 0);
});

test('--at-gtid stops just before the transaction; --inclusive just after it', async () => {
  const beforeLong = await restoreRun('restore-before-long', ['--at-gtid', gtid.long!]);
  assert.deepEqual(beforeLong.rows, ['before:1', 'early:2']);
  const throughLong = await restoreRun('restore-through-long', ['--at-gtid', gtid.long!, '--inclusive']);
  assert.deepEqual(throughLong.rows, ['before:1', 'early:2', 'long:3']);
  const latest = await restoreRun('restore-latest', ['--at', 'latest']);
  assert.deepEqual(latest.rows, ['before:1', 'early:2', 'long:3', 'late:4']);
});

test('bad --at-gtid and both targets at once are usage errors', async () => {
  const both = await mcb(['restore', 'plan', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--at-gtid', gtid.long!], 'UTC');
  assert.equal(both.code, 2);
  assert.match(both.stderr, /exactly one of --at/);
  const bad = await mcb(['restore', 'plan', '--instance', String(world.sourceInstanceId), '--at-gtid', 'not-a-gtid'], 'UTC');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--at-gtid/);
});
