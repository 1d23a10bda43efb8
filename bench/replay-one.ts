// One binlog replay by one method (`applier` or `mysqlbinlog`), with the restore's own code (replayBinlogs of
// src/restore/run.ts) on the restore's temporary server, onto a copy of a clone. Only the replay is timed, not the
// server's start and stop, nor copying the binlogs (the applier moves them into the datadir, so they are copied
// first: a restore has them in its work directory).
//
//   node --import tsx bench/replay-one.ts '{"sidRoot":"…","method":"applier","datadir":"…","workDir":"…","binlogs":["…"],"cloneGtids":"…"}'
//
// prints one JSON line: {method, seconds, gtidExecuted, checksums}. `datadir` is replayed onto (throw it away
// afterwards); `workDir` gets the binlog copies and the run directory. `replayOnce` is the same, in-process.
import { copyFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import mysql from 'mysql2/promise';
import { GtidSet } from '../src/binlog/index.ts';
import { decideReplay } from '../src/restore/replay.ts';
import { binariesFromSidRoot, replayBinlogs, RESTORE_SERVER_ARGS, type ReplayMethod } from '../src/restore/run.ts';
import { removeReplicationConfiguration, startRestoreServer } from '../src/restore/server.ts';

export interface ReplayOnceArgs {
  sidRoot: string;
  method: ReplayMethod;
  /** A copy of the clone, replayed onto. */
  datadir: string;
  workDir: string;
  /** The binlogs written after (and around) the clone, oldest first; replayed to their end. */
  binlogs: string[];
  /** The clone's gtid_executed. */
  cloneGtids: string;
  /** Tables to CHECKSUM afterwards (e.g. sbtest.sbtest1), so two methods' results can be compared. */
  checksumTables?: string[];
  /** More mysqld options for the temporary server, after the restore's (to measure a setting). */
  extraServerArgs?: string[];
}

export interface ReplayOnceResult {
  /** The method that ran (the applier may fall back to mysqlbinlog, which the log line then says). */
  method: ReplayMethod;
  seconds: number;
  gtidExecuted: string;
  checksums: string;
  log: string[];
}

export async function replayOnce(args: ReplayOnceArgs): Promise<ReplayOnceResult> {
  const binlogDir = path.join(args.workDir, 'binlogs');
  mkdirSync(binlogDir, { recursive: true });
  const files = args.binlogs.map((b) => {
    const copy = path.join(binlogDir, path.basename(b));
    copyFileSync(b, copy);
    return copy;
  });
  const decision = await decideReplay(files, { kind: 'end' });
  const binaries = binariesFromSidRoot(args.sidRoot);
  const server = await startRestoreServer(binaries.mysqld, {
    datadir: args.datadir,
    runDir: path.join(args.workDir, 'run'),
    extraArgs: [...RESTORE_SERVER_ARGS, ...(args.extraServerArgs ?? [])],
    relayLogReplay: true,
  });
  const log: string[] = [];
  try {
    const started = process.hrtime.bigint();
    const method = await replayBinlogs({
      binaries,
      socket: server.socket,
      datadir: args.datadir,
      files: decision.files,
      ...(decision.stopPosition ? { stopPosition: decision.stopPosition } : {}),
      clone: GtidSet.parse(args.cloneGtids),
      method: args.method,
      user: 'root',
      password: '',
      log: (m) => log.push(m),
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    await removeReplicationConfiguration(server, 'root', '');
    const conn = await mysql.createConnection({ socketPath: server.socket, user: 'root', password: '' });
    try {
      const [g] = await conn.query<mysql.RowDataPacket[]>('SELECT @@GLOBAL.gtid_executed AS g');
      let checksums = '';
      if (args.checksumTables?.length) {
        const [sums] = await conn.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${args.checksumTables.join(', ')}`);
        checksums = sums.map((s) => `${s.Table}=${s.Checksum}`).join(' ');
      }
      return { method, seconds, gtidExecuted: String(g[0]!.g).replace(/\s+/g, ''), checksums, log };
    } finally {
      await conn.end();
    }
  } finally {
    await server.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const raw = process.argv[2];
  if (!raw) throw new Error('usage: node --import tsx bench/replay-one.ts <json options>');
  console.log(JSON.stringify(await replayOnce(JSON.parse(raw) as ReplayOnceArgs)));
}
