// A metadata server of the test's own, that it may crash and restart: MariaDB (mariadb-install-db + mariadbd) when
// this machine has it, like the shared metadata center, else MySQL 9.7 from the sid root. It listens on a spare
// port of 127.0.0.1 with a temporary datadir; root has no password.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { findFreePort, initializeDatadir, mysqldFromSidRoot, startMysqld } from '../../src/mysql/mysqld.ts';
import { servicesEnv } from './env.ts';

export interface PrivateMetadataServer {
  flavor: 'mariadb' | 'mysql';
  host: string;
  port: number;
  user: string;
  password: string;
  /** SIGKILL, as a crash or a pulled plug would; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same datadir and port; resolves once it answers. */
  restart(): Promise<void>;
  /** Stops it and removes its files. */
  destroy(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;

function hasMariadb(): boolean {
  return ['mariadbd', 'mariadb-install-db'].every((p) => spawnSync('sh', ['-c', `command -v ${p}`]).status === 0);
}

/** flavor: MariaDB when this machine has it, else MySQL 9.7 from the sid root. */
export async function startPrivateMetadataServer(prefix = 'mcb-meta', flavor: 'mariadb' | 'mysql' = hasMariadb() ? 'mariadb' : 'mysql'): Promise<PrivateMetadataServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  const port = await findFreePort();
  try {
    return flavor === 'mariadb' ? await startMariadb(dir, port) : await startMysql(dir, port);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

async function startMariadb(dir: string, port: number): Promise<PrivateMetadataServer> {
  const datadir = path.join(dir, 'data');
  const install = spawnSync(
    'mariadb-install-db',
    ['--no-defaults', `--datadir=${datadir}`, '--auth-root-authentication-method=normal', '--skip-test-db', '--user=root'],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (install.status !== 0) throw new Error(`mariadb-install-db failed: ${install.stderr || install.stdout}`);
  let child: ChildProcess | undefined;
  const start = async () => {
    const log = openSync(path.join(dir, 'mariadbd.log'), 'a');
    try {
      child = spawn(
        'mariadbd',
        [
          '--no-defaults',
          '--user=root',
          `--datadir=${datadir}`,
          `--port=${port}`,
          '--bind-address=127.0.0.1',
          `--socket=${path.join(dir, 'mariadbd.sock')}`,
          `--pid-file=${path.join(dir, 'mariadbd.pid')}`,
          '--skip-log-bin',
          '--skip-name-resolve',
          '--innodb-buffer-pool-size=16M',
        ],
        { stdio: ['ignore', log, log] },
      );
    } finally {
      closeSync(log);
    }
    await waitUntilAnswers(port, () => child?.exitCode !== null || child?.signalCode !== null, path.join(dir, 'mariadbd.log'));
  };
  const kill = async () => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((resolve) => c.once('exit', resolve));
    c.kill('SIGKILL');
    await gone;
  };
  // A test process that exits early must not leave its server behind.
  const killOnExit = () => child?.kill('SIGKILL');
  process.on('exit', killOnExit);
  try {
    await start();
  } catch (err) {
    await kill();
    process.off('exit', killOnExit);
    throw err;
  }
  return {
    flavor: 'mariadb',
    host: '127.0.0.1',
    port,
    user: 'root',
    password: '',
    kill,
    restart: start,
    async destroy() {
      await kill();
      process.off('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startMysql(dir: string, port: number): Promise<PrivateMetadataServer> {
  const bin = mysqldFromSidRoot(servicesEnv().sidRoot);
  const datadir = path.join(dir, 'data');
  await initializeDatadir(bin, datadir);
  const run = () => startMysqld(bin, { datadir, port, runDir: path.join(dir, 'run'), extraArgs: ['--skip-log-bin', '--innodb-buffer-pool-size=32M'] });
  let running = await run();
  const kill = async () => {
    try {
      process.kill(running.pid, 'SIGKILL');
    } catch {
      return; // already gone
    }
    while (isAlive(running.pid)) await sleep(20);
  };
  return {
    flavor: 'mysql',
    host: '127.0.0.1',
    port,
    user: 'root',
    password: '',
    kill,
    async restart() {
      running = await run();
    },
    async destroy() {
      await running.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilAnswers(port: number, exited: () => boolean, logFile: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '', connectTimeout: 2000 }).catch(() => undefined);
    if (conn) {
      await conn.end().catch(() => undefined);
      return;
    }
    if (exited()) throw new Error(`the private metadata server on port ${port} exited while starting; see ${logFile}`);
    if (Date.now() > deadline) throw new Error(`the private metadata server on port ${port} did not answer within ${READY_TIMEOUT_MS / 1000} s; see ${logFile}`);
    await sleep(100);
  }
}
