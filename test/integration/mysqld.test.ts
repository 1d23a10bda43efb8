// src/mysql/mysqld.ts against the sid root's real mysqld: initialize, start on a free port, query, stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { servicesEnv } from '../support/env.ts';
import { findFreePort, initializeDatadir, mysqldFromSidRoot, startMysqld, type MysqldBinary } from '../../src/mysql/mysqld.ts';

function binary(): MysqldBinary {
  const env = servicesEnv();
  return { command: env.mysqld, baseArgs: env.mysqldBaseArgs };
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(false)));
    s.once('error', () => resolve(true));
  });
}

test('mysqldFromSidRoot gives the same argv as env.json', () => {
  const env = servicesEnv();
  assert.deepEqual(mysqldFromSidRoot(env.sidRoot), binary());
});

test('initializeDatadir + startMysqld on a free port: SELECT VERSION(), then a clean stop', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-mysqld-test-'));
  try {
    const datadir = path.join(dir, 'data');
    await initializeDatadir(binary(), datadir);
    assert.ok(existsSync(path.join(datadir, 'mysql.ibd')), 'the datadir holds the data dictionary');
    await assert.rejects(initializeDatadir(binary(), datadir), /not empty/);

    const port = await findFreePort();
    const server = await startMysqld(binary(), { datadir, port, runDir: path.join(dir, 'run') });
    try {
      assert.equal(server.port, port);
      assert.ok(server.pid > 0);
      assert.ok(existsSync(server.socket), 'the unix socket exists');
      const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '' });
      try {
        const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT VERSION() AS v, @@datadir AS d');
        assert.match(String(rows[0]?.v), /^\d+\.\d+\.\d+/);
        assert.equal(String(rows[0]?.d).replace(/\/$/, ''), datadir);
      } finally {
        await conn.end();
      }
    } finally {
      await server.stop();
    }
    await server.stop(); // a second stop is a no-op
    assert.throws(() => process.kill(server.pid, 0), 'the server process is gone');
    assert.ok(await refused(port), 'nothing listens on the port any more');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('startMysqld on a datadir that was never initialized fails with the log tail', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-mysqld-test-'));
  try {
    const datadir = path.join(dir, 'empty');
    mkdirSync(datadir);
    const port = await findFreePort();
    await assert.rejects(
      startMysqld(binary(), { datadir, port, startTimeoutMs: 60_000 }),
      (err: Error) => /exited before accepting connections/.test(err.message) && /\[ERROR\]/.test(err.message),
    );
    assert.ok(await refused(port));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
