// Private MySQL 9.7 servers for tests that reset, corrupt or reconfigure binlogs: never the shared source/replica.
// One datadir is initialized per test file and copied for each server (auto.cnf removed, so each gets its own
// server_uuid): initializing is the slow part.
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { findFreePort, initializeDatadir, mysqldFromSidRoot, startMysqld, type RunningMysqld } from '../../src/mysql/mysqld.ts';
import { servicesEnv } from './env.ts';

export interface TestServer {
  name: string;
  port: number;
  datadir: string;
  binlogIndex: string;
  serverUuid: string;
  conn: mysql.Connection;
  running: RunningMysqld;
  /** The [mysql-link] section of a clone.ini for it. */
  link: Record<string, string>;
}

export interface TestServers {
  dir: string;
  start(name: string, serverId: number, extraArgs?: string[]): Promise<TestServer>;
  /** A clean shutdown and a start on the same datadir and port, as a DBA's restart (the server's conn is renewed). */
  restart(server: TestServer): Promise<void>;
  /** kill -9 of mysqld (a crash: no STOP event, no clean close), then a start on the same datadir and port. */
  crashAndStart(server: TestServer): Promise<void>;
  stopAll(): Promise<void>;
}

/** GTIDs and row-based logging, as point-in-time restore needs; extraArgs come after (and so override) these. */
export const pitrArgs = ['--log-bin=mysql-bin', '--gtid-mode=ON', '--enforce-gtid-consistency=ON', '--binlog-format=ROW', '--skip-replica-start'];

export function testServers(prefix: string): TestServers {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const bin = mysqldFromSidRoot(servicesEnv().sidRoot);
  const template = path.join(dir, 'template');
  let initialized: Promise<void> | undefined;
  const servers: TestServer[] = [];
  const startOptions = new Map<TestServer, Parameters<typeof startMysqld>[1] & { port: number }>();
  return {
    dir,
    async start(name, serverId, extraArgs = []) {
      initialized ??= initializeDatadir(bin, template);
      await initialized;
      const datadir = path.join(dir, name, 'data');
      cpSync(template, datadir, { recursive: true });
      rmSync(path.join(datadir, 'auto.cnf'), { force: true });
      const port = await findFreePort();
      const options = {
        datadir,
        port,
        runDir: path.join(dir, name, 'run'),
        extraArgs: [`--server-id=${serverId}`, '--innodb-buffer-pool-size=32M', ...pitrArgs, ...extraArgs],
      };
      const running = await startMysqld(bin, options);
      const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '', multipleStatements: false });
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@server_uuid AS u');
      const server: TestServer = {
        name,
        port,
        datadir,
        binlogIndex: path.join(datadir, 'mysql-bin.index'),
        serverUuid: String(rows[0]!.u),
        conn,
        running,
        link: { host: '127.0.0.1', port: String(port), user: 'root', password: '', charset: 'utf8mb4' },
      };
      servers.push(server);
      startOptions.set(server, options);
      return server;
    },
    async crashAndStart(server) {
      await server.conn.end().catch(() => undefined);
      const pid = server.running.pid;
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 200; i++) {
        try {
          process.kill(pid, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      server.running = await startMysqld(bin, startOptions.get(server)!);
      server.conn = await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root', password: '', multipleStatements: false });
    },
    async restart(server) {
      await server.conn.end().catch(() => undefined);
      await server.running.stop();
      server.running = await startMysqld(bin, startOptions.get(server)!);
      server.conn = await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root', password: '', multipleStatements: false });
    },
    async stopAll() {
      for (const s of servers) {
        await s.conn.end().catch(() => undefined);
        await s.running.stop().catch(() => undefined);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Rows and FLUSH BINARY LOGS, `n` times; returns the binlogs these flushes closed. */
export async function writeAndRotate(conn: mysql.Connection, n: number, table = 'd.t', value = 'x'): Promise<string[]> {
  await conn.query('CREATE DATABASE IF NOT EXISTS d');
  await conn.query(`CREATE TABLE IF NOT EXISTS ${table} (id int auto_increment primary key, v text)`);
  const closed: string[] = [];
  for (let i = 0; i < n; i++) {
    await conn.query(`INSERT INTO ${table} (v) VALUES (?), (?)`, [`${value}-${i}-a`, `${value}-${i}-b`]);
    const [before] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
    await conn.query('FLUSH BINARY LOGS');
    closed.push(String(before.at(-1)!.Log_name));
  }
  return closed;
}

export async function binlogNames(conn: mysql.Connection): Promise<string[]> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  return rows.map((r) => String(r.Log_name));
}

/** Waits until the wall clock is in a later second than now: binlogs opened after it get another first-event time. */
export async function nextSecond(): Promise<void> {
  const s = Math.floor(Date.now() / 1000);
  while (Math.floor(Date.now() / 1000) === s) await new Promise((r) => setTimeout(r, 50));
}
