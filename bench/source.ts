// The bench's own MySQL: a private mysqld of the services' Debian root (never the shared source/replica), on its
// own port and socket under the work directory, with log-bin, GTIDs and the clone plugin, holding sysbench's
// oltp tables. Filling them (sysbench prepare) takes about a minute per GB on two cores, so the filled datadir is
// kept in a cache keyed by its shape and copied for each run.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { findFreePort, initializeDatadir, mysqldFromSidRoot, startMysqld, type MysqldBinary, type RunningMysqld } from '../src/mysql/mysqld.ts';

export interface SysbenchShape {
  tables: number;
  rowsPerTable: number;
}

/** About 8 tables × 1.2 M rows make 2.46 GB of datadir (≈ 256 bytes a row, overhead included). */
export function shapeForGb(gb: number): SysbenchShape {
  const rows = Math.max(10_000, Math.round(gb * 4.8e6));
  const tables = Math.min(32, Math.max(2, Math.round(gb * 4)));
  return { tables, rowsPerTable: Math.round(rows / tables) };
}

export interface ServicesEnv {
  sidRoot: string;
  redisUrl: string;
  metadata: { host: string; port: number; user: string; password: string };
  s3: { endPoint: string; port: number; useSSL: boolean; accessKey: string; secretKey: string; bucket: string };
}

export function readServicesEnv(repoRoot: string): ServicesEnv {
  const file = path.join(repoRoot, '.services', 'env.json');
  if (!existsSync(file)) throw new Error(`${file} is missing: run scripts/services.sh up first (the bench needs its Debian root and S3)`);
  return JSON.parse(readFileSync(file, 'utf8')) as ServicesEnv;
}

export interface BenchSource {
  port: number;
  socket: string;
  datadir: string;
  conn: mysql.Connection;
  shape: SysbenchShape;
  running: RunningMysqld;
  stop(): Promise<void>;
}

/** The options every start of the bench server gets; `--skip-log-bin` is added while filling the cache. */
function serverArgs(bufferPoolMb: number): string[] {
  return [
    '--server-id=1',
    '--gtid-mode=ON',
    '--enforce-gtid-consistency=ON',
    '--plugin-load-add=mysql_clone.so',
    `--innodb-buffer-pool-size=${bufferPoolMb}M`,
    '--max-binlog-size=1G',
    '--skip-replica-start',
  ];
}

function mysqldVersion(bin: MysqldBinary): string {
  const [file, ...prefix] = bin.command;
  return execFileSync(file!, [...prefix, '--version'], { encoding: 'utf8' }).trim();
}

/** sysbench's oltp scripts over the unix socket as root (no password), on database `sbtest`. */
export function sysbenchArgs(test: string, socket: string, shape: SysbenchShape, extra: string[]): string[] {
  return [
    test,
    '--db-driver=mysql',
    `--mysql-socket=${socket}`,
    '--mysql-user=root',
    '--mysql-password=',
    '--mysql-db=sbtest',
    `--tables=${shape.tables}`,
    `--table-size=${shape.rowsPerTable}`,
    ...extra,
  ];
}

export function runSysbench(args: string[], log: (line: string) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('sysbench', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.on('error', (err) => reject(new Error(`cannot run sysbench (apt-get install -y sysbench): ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`sysbench ${args[0]} ${args.at(-1)} exited with ${code}:\n${out.trim().split('\n').slice(-15).join('\n')}`));
    });
    log(`sysbench ${args.filter((a) => !a.startsWith('--mysql-')).join(' ')}`);
  });
}

/** A filled, cleanly shut down datadir of this shape in the cache (made now when missing). */
async function cachedDatadir(bin: MysqldBinary, cacheDir: string, shape: SysbenchShape, log: (line: string) => void): Promise<string> {
  const version = mysqldVersion(bin);
  const dir = path.join(cacheDir, `sbtest-${shape.tables}x${shape.rowsPerTable}`);
  const stamp = path.join(dir, 'filled.json');
  if (existsSync(stamp) && (JSON.parse(readFileSync(stamp, 'utf8')) as { version: string }).version === version) {
    log(`using the filled datadir cached in ${dir}`);
    return path.join(dir, 'data');
  }
  rmSync(dir, { recursive: true, force: true });
  const building = `${dir}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const datadir = path.join(building, 'data');
  log(`filling a new datadir (${shape.tables} tables × ${shape.rowsPerTable} rows) in ${building}; later runs reuse it`);
  await initializeDatadir(bin, datadir);
  const running = await startMysqld(bin, {
    datadir,
    runDir: path.join(building, 'run'),
    // No binlog while filling: the rows would be logged once more (as big as the data) for nothing.
    extraArgs: [...serverArgs(1024), '--skip-log-bin', '--innodb-flush-log-at-trx-commit=0'],
  });
  try {
    const conn = await mysql.createConnection({ socketPath: running.socket, user: 'root', password: '' });
    await conn.query('CREATE DATABASE sbtest');
    await conn.end();
    const started = Date.now();
    await runSysbench(sysbenchArgs('oltp_read_write', running.socket, shape, [`--threads=${Math.min(shape.tables, 8)}`, 'prepare']), log);
    log(`sysbench prepare took ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await running.stop();
  }
  rmSync(path.join(building, 'run'), { recursive: true, force: true });
  writeFileSync(path.join(building, 'filled.json'), JSON.stringify({ version, ...shape }));
  renameSync(building, dir);
  return path.join(dir, 'data');
}

/** Copies the cached datadir into `workDir` and starts the bench server on it (log-bin, GTIDs, clone plugin). */
export async function startBenchSource(opts: { sidRoot: string; cacheDir: string; workDir: string; shape: SysbenchShape; log: (line: string) => void }): Promise<BenchSource> {
  const bin = mysqldFromSidRoot(opts.sidRoot);
  mkdirSync(opts.cacheDir, { recursive: true });
  const cached = await cachedDatadir(bin, opts.cacheDir, opts.shape, opts.log);
  const datadir = path.join(opts.workDir, 'source', 'data');
  mkdirSync(path.dirname(datadir), { recursive: true });
  execFileSync('cp', ['-a', '--reflink=auto', cached, datadir]);
  const port = await findFreePort();
  const running = await startMysqld(bin, {
    datadir,
    port,
    runDir: path.join(opts.workDir, 'source', 'run'),
    extraArgs: [...serverArgs(512), '--log-bin=mysql-bin', '--binlog-format=ROW'],
  });
  const conn = await mysql.createConnection({ socketPath: running.socket, user: 'root', password: '', multipleStatements: false });
  // One logged transaction, so the clone's gtid_executed is not empty (the filling was not logged).
  await conn.query('CREATE DATABASE IF NOT EXISTS bench');
  return {
    port,
    socket: running.socket,
    datadir,
    conn,
    shape: opts.shape,
    running,
    async stop() {
      await conn.end().catch(() => undefined);
      await running.stop();
    },
  };
}

export async function currentBinlog(conn: mysql.Connection): Promise<string> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOG STATUS');
  return String(rows[0]!.File);
}

/** FLUSH BINARY LOGS; returns the file just closed. */
export async function rotateBinlog(conn: mysql.Connection): Promise<string> {
  const closed = await currentBinlog(conn);
  await conn.query('FLUSH BINARY LOGS');
  return closed;
}

export async function binlogsBetween(conn: mysql.Connection, first: string, last: string): Promise<Array<{ name: string; size: number }>> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  return rows.map((r) => ({ name: String(r.Log_name), size: Number(r.File_size) })).filter((b) => b.name >= first && b.name <= last);
}

export async function gtidExecuted(conn: mysql.Connection): Promise<string> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.gtid_executed AS g');
  return String(rows[0]!.g).replace(/\s+/g, '');
}
