// src/restore/server.ts against the sid root's real mysqld: the temporary server of restores and restore tests
// listens on no TCP port, runs as the mysql user when we are root, with the event scheduler disabled, no replica
// started, a private secure-file-priv directory, and every option it passes known to the server (the loose ones
// for older versions only warn); a datadir the mysql user cannot reach is a one-line error; and
// removeReplicationConfiguration leaves no channel. How the verify job reads a start that fails: a datadir without
// its redo log is a finding about the backup, an unknown option or a start timeout an error of the job.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { classifyVerifyError } from '../../src/jobs/verify.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import { initializeDatadir, MysqldStartError, mysqldFromSidRoot, type RunningMysqld } from '../../src/mysql/mysqld.ts';
import { checkReachable, removeReplicationConfiguration, restoreServerAccount, RestoreServerSetupError, startRestoreServer } from '../../src/restore/server.ts';
import { servicesEnv } from '../support/env.ts';
import { listensOnTcp, processUid } from '../support/proc.ts';

const bin = () => mysqldFromSidRoot(servicesEnv().sidRoot);
let dir: string;
let datadir: string;
const running: RunningMysqld[] = [];

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-restore-server-'));
  chmodSync(dir, 0o711);
  datadir = path.join(dir, 'data');
  await initializeDatadir(bin(), datadir); // as whoever we are (root here): the start gives it to mysql
});
after(async () => {
  for (const s of running) await s.stop().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

async function start(runName: string): Promise<RunningMysqld> {
  const server = await startRestoreServer(bin(), { datadir, runDir: path.join(dir, runName), extraArgs: ['--skip-log-bin'] });
  running.push(server);
  return server;
}




test('the restore server: socket only, as the mysql user when root, scheduler off, private secure-file-priv', async () => {
  const server = await start('run');
  const account = restoreServerAccount();
  const isRoot = process.getuid?.() === 0;
  if (isRoot) assert.ok(account, 'this host has a mysql user (the test machines do)');
  const expectedUid = account?.uid ?? process.getuid!();
  assert.equal(processUid(server.pid), expectedUid, `mysqld ${server.pid} runs as uid ${expectedUid}`);
  assert.equal(server.port, undefined);

  assert.equal(listensOnTcp(server.pid), false, 'mysqld has no listening TCP socket');

  const runDir = path.join(dir, 'run');
  for (const d of [runDir, path.join(runDir, 'files')]) {
    const st = statSync(d);
    assert.equal(st.mode & 0o777, 0o700, `${d} is private`);
    assert.equal(st.uid, expectedUid, `${d} belongs to the server's account`);
  }
  assert.equal(path.dirname(server.socket), runDir, 'the socket is in the private run directory');
  assert.equal(statSync(path.join(datadir, 'mysql.ibd')).uid, expectedUid, 'the datadir was given to the account');

  const conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', password: '' });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT @@event_scheduler AS ev, @@skip_networking AS net, @@secure_file_priv AS sfp, @@server_id AS id, @@persisted_globals_load AS pgl, @@skip_replica_start AS srs',
    );
    const v = rows[0]!;
    assert.equal(v.ev, 'DISABLED');
    assert.equal(Number(v.srs), 1, 'skip_replica_start, from --loose-skip-replica-start / --loose-skip-slave-start');
    assert.equal(Number(v.net), 1);
    assert.equal(String(v.sfp).replace(/\/$/, ''), path.join(runDir, 'files'));
    assert.ok(Number(v.id) >= 1_000_000_000, `a random server id, not a real server's: ${v.id}`);
    assert.equal(Number(v.pgl), 0);
    const [threads] = await conn.query<mysql.RowDataPacket[]>("SELECT COUNT(*) AS n FROM performance_schema.threads WHERE NAME LIKE 'thread/sql/replica%' OR NAME = 'thread/sql/event_scheduler'");
    assert.equal(Number(threads[0]!.n), 0, 'no replica threads, no event scheduler thread');
  } finally {
    await conn.end();
  }
  await server.stop();
  const log = readFileSync(server.logFile, 'utf8');
  assert.doesNotMatch(log, /\[ERROR\]/, log);
  // The group replication plugin is not loaded: its loose option is the only one this server does not know.
  const unknown = log.split('\n').filter((l) => /unknown (variable|option)/i.test(l));
  assert.ok(unknown.every((l) => l.includes("'loose-group-replication-start-on-boot=OFF'")), unknown.join('\n'));
});

test('a replication channel in the datadir is not started, and removeReplicationConfiguration removes it', async () => {
  let server = await start('run-repl-1');
  let conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', password: '' });
  await conn.query("CHANGE REPLICATION SOURCE TO SOURCE_HOST='127.0.0.1', SOURCE_PORT=1, SOURCE_USER='nobody', SOURCE_AUTO_POSITION=1 FOR CHANNEL 'c1'");
  await conn.end();
  await server.stop();

  server = await start('run-repl-2');
  conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', password: '' });
  try {
    const [status] = await conn.query<mysql.RowDataPacket[]>('SHOW REPLICA STATUS');
    assert.equal(status.length, 1, 'the channel is still configured');
    assert.equal(status[0]!.Replica_IO_Running, 'No', 'but not started');
    assert.equal(status[0]!.Replica_SQL_Running, 'No');
    await removeReplicationConfiguration(server, 'root', '');
    const [after] = await conn.query<mysql.RowDataPacket[]>('SHOW REPLICA STATUS');
    assert.equal(after.length, 0);
    const [cfg] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM performance_schema.replication_connection_configuration');
    assert.equal(Number(cfg[0]!.n), 0);
  } finally {
    await conn.end();
    await server.stop();
  }
});

test('a datadir the mysql user cannot reach: one line naming the directory, nothing started', async (t) => {
  const account = restoreServerAccount();
  if (!account) return t.skip('not root, or no mysql user: the server runs as ourselves');
  const closed = path.join(dir, 'closed');
  mkdirSync(path.join(closed, 'inner'), { recursive: true });
  chmodSync(closed, 0o700);
  const inner = path.join(closed, 'inner', 'data');
  mkdirSync(inner);
  assert.throws(() => checkReachable(inner, account), (e: Error) => e instanceof RestoreServerSetupError && !e.message.includes('\n') && e.message.includes(`${closed} (mode 0700) is not searchable`));
  await assert.rejects(startRestoreServer(bin(), { datadir: inner, runDir: path.join(dir, 'run-closed') }), RestoreServerSetupError);
  assert.ok(!existsSync(path.join(dir, 'run-closed')), 'nothing was created');
});

/** Starts the restore server on a copy of the datadir (after `damage`) and returns how it failed. */
async function failedStart(name: string, opts: { damage?: (copy: string) => void; extraArgs?: string[]; startTimeoutMs?: number }): Promise<MysqldStartError> {
  const copy = path.join(dir, `data-${name}`);
  cpSync(datadir, copy, { recursive: true });
  opts.damage?.(copy);
  try {
    const server = await startRestoreServer(bin(), { datadir: copy, runDir: path.join(dir, `run-${name}`), extraArgs: ['--skip-log-bin', ...(opts.extraArgs ?? [])], ...(opts.startTimeoutMs ? { startTimeoutMs: opts.startTimeoutMs } : {}) });
    running.push(server);
  } catch (err) {
    assert.ok(err instanceof MysqldStartError, String(err));
    return err;
  }
  assert.fail(`mysqld started on ${copy}`);
}

test('a start that fails, as the verify job reads it: no redo log a finding; an unknown option, a timeout a job error', async () => {
  const notAborted = new AbortController().signal;

  const noRedo = await failedStart('no-redo', { damage: (copy) => rmSync(path.join(copy, '#innodb_redo'), { recursive: true }) });
  assert.equal(noRedo.failure, 'exited');
  const finding = classifyVerifyError(noRedo, notAborted);
  assert.ok('finding' in finding, noRedo.message);
  assert.match(finding.finding, /^mysqld does not start on the restored datadir: \[ERROR\] .*#innodb_redo/);

  const option = await failedStart('option', { extraArgs: ['--no-such-option-xyz'] });
  assert.equal(option.failure, 'exited');
  const optionOutcome = classifyVerifyError(option, notAborted);
  assert.ok('jobError' in optionOutcome && optionOutcome.jobError instanceof PermanentJobError, option.message);
  assert.match(optionOutcome.jobError.message, /rejects an option of the temporary server: \[ERROR\] \[MY-000068\] \[Server\] unknown option '--no-such-option-xyz'/);

  const slow = await failedStart('timeout', { startTimeoutMs: 1 });
  assert.equal(slow.failure, 'timeout');
  assert.match(slow.message, /did not accept connections within 0.001s/);
  const timeoutOutcome = classifyVerifyError(slow, notAborted);
  assert.ok('jobError' in timeoutOutcome && !(timeoutOutcome.jobError instanceof PermanentJobError), 'a timeout is retried, not recorded');
});
