// The STREAM section: the binlog streamer (docs/binlog-streaming.md) following the bench server under a sysbench
// oltp_write_only load, in a child process of its own: the RPO it achieves (sampled every second as the age of
// covered_at), the bytes it uploads against the binlog bytes the server writes, and its CPU and mysqlbinlog's.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { listBinlogSegments, streamStatuses } from '../src/metadata/binlog-segments.ts';
import { MetadataStore, migrate } from '../src/metadata/index.ts';
import { runNodeChild } from './child.ts';
import type { Report } from './report.ts';
import { runSysbench, sysbenchArgs, type BenchSource } from './source.ts';
import type { StreamOnceArgs } from './stream-one.ts';

export interface StreamBenchContext {
  source: BenchSource;
  workDir: string;
  /** [oss] of the bench, and its bucket (made already). */
  oss: { endPoint: string; port: number; useSSL: boolean; accessKey: string; secretKey: string };
  bucket: string;
  metadata: { host: string; port: number; user: string; password: string };
  redisUrl: string;
  sidRoot: string;
  seconds: number;
  intervalSeconds: number;
  report: Report;
  log: (line: string) => void;
  script: (name: string) => string;
}

interface Position {
  file: string;
  position: number;
}

async function serverPosition(conn: mysql.Connection): Promise<Position> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOG STATUS');
  return { file: String(rows[0]!.File), position: Number(rows[0]!.Position) };
}

/** Binlog bytes the server wrote from `a` to `b` (files of one series, sizes from SHOW BINARY LOGS). */
async function bytesWritten(conn: mysql.Connection, a: Position, b: Position): Promise<number> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  let total = 0;
  for (const r of rows) {
    const name = String(r.Log_name);
    if (name < a.file || name > b.file) continue;
    const end = name === b.file ? b.position : Number(r.File_size);
    const start = name === a.file ? a.position : 0;
    total += Math.max(0, end - start);
  }
  return total;
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function sectionStream(c: StreamBenchContext): Promise<void> {
  c.report.section(`STREAM: the binlog streamer (interval ${c.intervalSeconds} s) under ${c.seconds} s of sysbench oltp_write_only, 4 threads`);
  const database = `mcb_bench_${randomBytes(4).toString('hex')}`;
  const link = { ...c.metadata, database, charset: 'utf8mb4' };
  await migrate(link);
  const metadata = await MetadataStore.connect(link);
  try {
    const instanceId = await metadata.addInstance({ instanceId: `127.0.0.1:${c.source.port}`, instanceName: 'bench', stringLink: '127.0.0.1', dbPort: c.source.port, isClone: true });
    const dir = path.join(c.workDir, 'stream');
    mkdirSync(path.join(dir, 'spool'), { recursive: true });
    const configFile = path.join(dir, 'clone.ini');
    const stopFile = path.join(dir, 'stop');
    writeFileSync(
      configFile,
      [
        `[mysql-link]\nhost = 127.0.0.1\nport = ${c.source.port}\nuser = root\npassword =\n`,
        `[metadata-link]\nhost = ${link.host}\nport = ${link.port}\nuser = ${link.user}\npassword = ${link.password}\ndatabase = ${database}\n`,
        `[backup-conf]\nbackup_path = ${path.join(dir, 'spool')}\nbin_index_path = ${path.join(c.source.datadir, 'mysql-bin.index')}\ntb_instance_id = ${instanceId}\nbucket_name = ${c.bucket}\nbinlog_stream = on\nbinlog_stream_interval_seconds = ${c.intervalSeconds}\n`,
        `[redis]\nurl = ${c.redisUrl}\n`,
        `[oss]\nendpoint = ${c.oss.endPoint}:${c.oss.port}\naccess_key = ${c.oss.accessKey}\nsecret_key = ${c.oss.secretKey}\nsecure = ${c.oss.useSSL ? 'on' : 'off'}\n`,
        `[restore]\nsid_root = ${c.sidRoot}\n`,
      ].join('\n'),
      { mode: 0o600 },
    );
    const args: StreamOnceArgs = { configFile, instanceId, stopFile };
    const child = runNodeChild(c.script('stream-one.ts'), args);
    const coveredAge = async () => {
      const s = (await streamStatuses(metadata, instanceId)).get(instanceId);
      return s?.coveredAt ? (Date.now() - s.coveredAt.getTime()) / 1000 : undefined;
    };
    // Caught up with the server before the load starts (it streams the active binlog from its start).
    for (let i = 0; i < 120 && (await coveredAge()) === undefined; i++) await sleep(1000);

    const from = await serverPosition(c.source.conn);
    const samples: number[] = [];
    let loadDone = false;
    const sampler = (async () => {
      while (!loadDone) {
        const age = await coveredAge();
        if (age !== undefined) samples.push(age);
        await sleep(1000);
      }
    })();
    const loadStarted = Date.now();
    const out = await runSysbench(sysbenchArgs('oltp_write_only', c.source.socket, c.source.shape, ['--threads=4', `--time=${c.seconds}`, '--report-interval=0', 'run']), c.log);
    const loadSeconds = (Date.now() - loadStarted) / 1000;
    loadDone = true;
    await sampler;
    const to = await serverPosition(c.source.conn);
    const written = await bytesWritten(c.source.conn, from, to);
    const endedAt = Date.now();
    let catchUp = NaN;
    for (let i = 0; i < 120; i++) {
      const s = (await streamStatuses(metadata, instanceId)).get(instanceId);
      if (s?.coveredAt && s.coveredAt.getTime() >= endedAt) {
        catchUp = (s.coveredAt.getTime() - endedAt) / 1000;
        break;
      }
      await sleep(500);
    }
    writeFileSync(stopFile, '');
    const m = await child;
    const segments = (await listBinlogSegments(metadata, instanceId)).filter((s) => s.createdAt.getTime() >= loadStarted);
    const uploaded = segments.reduce((sum, s) => sum + s.storedBytes, 0);
    const tps = /transactions:\s+(\d+)\s+\(([\d.]+) per sec/.exec(out);
    const sorted = [...samples].sort((a, b) => a - b);
    const nodeCpu = Number(m.nodeCpuSeconds);
    const binlogCpu = Number(m.mysqlbinlogCpuSeconds);
    const wall = Number(m.seconds);
    c.log(`load: ${tps ? `${tps[1]} transactions (${tps[2]}/s)` : 'done'} in ${loadSeconds.toFixed(0)} s, ${(written / 1e6).toFixed(0)} MB of binlog`);
    c.report.row('stream', `streamer, ${segments.length} segments`, { seconds: loadSeconds, maxRssMiB: m.maxRssMiB }, {
      sourceBytes: written,
      bytes: uploaded,
      worker: true,
      notes: [
        `achieved RPO p50 ${percentile(sorted, 50).toFixed(1)} s, p95 ${percentile(sorted, 95).toFixed(1)} s, max ${percentile(sorted, 100).toFixed(1)} s (${samples.length} samples)`,
        `caught up ${Number.isNaN(catchUp) ? 'not within 60 s' : `${catchUp.toFixed(1)} s`} after the load`,
        `uploaded ${(uploaded / 1e6).toFixed(1)} MB for ${(written / 1e6).toFixed(1)} MB written (${(uploaded / Math.max(1, written)).toFixed(3)}×)`,
        `CPU: node ${((100 * nodeCpu) / wall).toFixed(1)} %, mysqlbinlog ${((100 * binlogCpu) / wall).toFixed(1)} % of one core over ${wall.toFixed(0)} s`,
      ].join('; '),
    });
  } finally {
    await metadata.close();
    const conn = await mysql.createConnection({ host: c.metadata.host, port: c.metadata.port, user: c.metadata.user, password: c.metadata.password });
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``).catch(() => undefined);
    await conn.end();
  }
}
