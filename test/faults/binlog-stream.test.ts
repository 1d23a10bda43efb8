// Binlog streaming under faults, against a private MySQL 9.7, the real S3 server (behind a TCP proxy the test can
// cut) and real Redis (docs/binlog-streaming.md):
//  - a row committed, then `binlog_stream_interval_seconds + 5` s later the worker's process group is killed with
//    kill -9 and never restarted (the host is gone): a restore --at latest into a fresh datadir has the row, and
//    the source's binlog was never rotated;
//  - a new worker resumes from the metadata (its first segment starts where the dead one's last ended); the source
//    mysqld is restarted while a sysbench-shaped table is written throughout, then S3 is cut for 30 s: afterwards the
//    segments chain without a gap or a duplicate (every GTID once, in consecutive files, each file's segments
//    contiguous from byte 0), and a restore --at latest matches the source's CHECKSUM TABLE.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { readEvents } from '../../src/binlog/index.ts';
import { listBinlogSegments, streamStatuses, type BinlogSegment } from '../../src/metadata/binlog-segments.ts';
import { parseBinlogFileName } from '../../src/binlog/file-name.ts';
import { servicesEnv } from '../support/env.ts';
import { waitFor } from '../support/poll.ts';
import { queryRestored } from '../support/restored.ts';
import { runMcb } from '../support/spawn.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { testServers, type TestServer } from '../support/test-mysqld.ts';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.ts';
import { createWorld, type World } from '../support/world.ts';

const INTERVAL_SECONDS = 2;

let world: World;
const servers = testServers('mcb-binlog-stream');
let server: TestServer;
let instanceId: number;
let configFile: string;
let s3: TcpProxy;
const workers: WorkerProcess[] = [];

before(async () => {
  world = await createWorld();
  server = await servers.start('source', 41, ['--plugin-load-add=mysql_clone.so']);
  await server.conn.query('CREATE DATABASE app');
  await server.conn.query('CREATE TABLE app.t (id int primary key, phase varchar(32))');
  instanceId = await world.metadata.addInstance({
    instanceId: `127.0.0.1:${server.port}`,
    instanceName: `binlog-stream-${world.id}`,
    stringLink: '127.0.0.1',
    dbPort: server.port,
    isClone: true,
  });
  const env = servicesEnv();
  s3 = await startTcpProxy(env.s3.endPoint, env.s3.port);
  configFile = world.writeConfig({
    instanceId,
    s3Port: s3.port,
    backupConf: {
      is_cluster: 'off',
      bin_index_path: server.binlogIndex,
      binlog_stream: 'on',
      binlog_stream_interval_seconds: String(INTERVAL_SECONDS),
    },
    // MySQL's own mysqlbinlog (the one on PATH here is MariaDB's).
    sections: { 'mysql-link': server.link, restore: { sid_root: env.sidRoot } },
  });
});

after(async () => {
  for (const w of workers) await w.stop(5000).catch(() => undefined);
  await s3?.close();
  await servers.stopAll();
  await world?.cleanup();
});

function startWorker(name: string): WorkerProcess {
  const w = spawnWorker(configFile, path.join(world.dir, `${name}.log`));
  workers.push(w);
  return w;
}

function mcb(args: string[], timeoutMs = 300_000) {
  return runMcb(['-f', configFile, ...args], { timeoutMs, env: { MCB_SID_ROOT: servicesEnv().sidRoot } });
}

async function binaryLogs(): Promise<string[]> {
  const [rows] = await server.conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  return rows.map((r) => String(r.Log_name));
}

async function restoreLatest(name: string): Promise<string> {
  const datadir = path.join(world.dir, name);
  const r = await mcb(['restore', 'run', '--instance', String(instanceId), '--at', 'latest', '--datadir', datadir]);
  assert.equal(r.code, 0, `restore --at latest failed:\n${r.stdout}\n${r.stderr}`);
  return datadir;
}

let killedWorkerLastSegment: BinlogSegment | undefined;

test('kill -9 of the worker interval + 5 s after a commit: a restore --at latest has the row, and the binlog never rotated', async () => {
  const w1 = startWorker('w1');
  await w1.waitForEvent((e) => e.event === 'worker.ready', 'the worker to be ready', 60_000);
  const full = await mcb(['enqueue', 'full', '--instance', String(instanceId), '--wait', '--timeout', '240']);
  assert.equal(full.code, 0, `full backup failed:\n${full.stdout}\n${full.stderr}`);
  const logsBefore = await binaryLogs();

  await server.conn.query("INSERT INTO app.t VALUES (1, 'committed-before-the-crash')");
  await sleep((INTERVAL_SECONDS + 5) * 1000);
  await w1.killGroup();

  assert.deepEqual(await binaryLogs(), logsBefore, 'the source binlog was never rotated (no FLUSH BINARY LOGS for the RPO)');
  const segments = await listBinlogSegments(world.metadata, instanceId);
  assert.ok(segments.length > 0, 'segments were uploaded');
  killedWorkerLastSegment = segments[segments.length - 1];

  const datadir = await restoreLatest('restored-after-kill');
  const rows = await queryRestored<{ id: number; phase: string }>(datadir, 'SELECT id, phase FROM app.t ORDER BY id');
  assert.deepEqual(rows.map((r) => [Number(r.id), r.phase]), [[1, 'committed-before-the-crash']]);
});

/** A sysbench-shaped table (sbtest1) written by one connection until stopped, through restarts and errors. */
function startWriter(): { stop(): Promise<number> } {
  let running = true;
  let committed = 0;
  const loop = (async () => {
    let conn: mysql.Connection | undefined;
    for (let i = 0; running; i++) {
      try {
        conn ??= await mysql.createConnection({ host: '127.0.0.1', port: server.port, user: 'root', password: '' });
        const id = 1 + (i % 500);
        await conn.query('BEGIN');
        await conn.query('UPDATE app.sbtest1 SET k = k + 1 WHERE id = ?', [id]);
        await conn.query("UPDATE app.sbtest1 SET c = CONCAT('c-', ?, '-', RAND()) WHERE id = ?", [i, 1 + ((i * 7) % 500)]);
        await conn.query('DELETE FROM app.sbtest1 WHERE id = ?', [501 + (i % 200)]);
        await conn.query("INSERT INTO app.sbtest1 (id, k, c, pad) VALUES (?, ?, REPEAT('x', 120), 'pad')", [501 + (i % 200), i]);
        await conn.query('COMMIT');
        committed++;
      } catch {
        await conn?.end().catch(() => undefined);
        conn = undefined;
        await sleep(200);
      }
      await sleep(20);
    }
    await conn?.end().catch(() => undefined);
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return committed;
    },
  };
}

async function streamCoveredSince(t: Date): Promise<boolean> {
  const s = (await streamStatuses(world.metadata, instanceId)).get(instanceId);
  return !!s?.coveredAt && s.coveredAt.getTime() >= t.getTime();
}

test('mysqld restarted and S3 cut for 30 s while streaming: segments chain without gap or duplicate, and restore matches CHECKSUM TABLE', async () => {
  await server.conn.query('CREATE TABLE app.sbtest1 (id int NOT NULL, k int NOT NULL DEFAULT 0, c char(120) NOT NULL DEFAULT "", pad char(60) NOT NULL DEFAULT "", PRIMARY KEY (id), KEY k_1 (k))');
  await server.conn.query("INSERT INTO app.sbtest1 (id, k, c, pad) WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < 700) SELECT n, n, REPEAT('c', 120), 'pad' FROM seq");

  // The host came back: a new worker resumes from the metadata, not from zero.
  const w2 = startWorker('w2');
  await w2.waitForEvent((e) => e.event === 'worker.ready', 'the second worker to be ready', 60_000);
  const writer = startWriter();
  if (killedWorkerLastSegment) {
    const resumed = await waitFor('the restarted worker to upload a segment', async () => {
      const all = await listBinlogSegments(world.metadata, instanceId);
      return all.find((s) => s.id > killedWorkerLastSegment!.id);
    });
    const prev = killedWorkerLastSegment;
    if (resumed.binlogFile === prev.binlogFile) assert.equal(resumed.startPos, prev.endPos, 'the resumed stream continues at the last uploaded byte');
  }

  await sleep(4000);
  await servers.restart(server);
  await sleep(4000);
  s3.down();
  await sleep(30_000);
  s3.up();
  await sleep(3000);
  const committed = await writer.stop();
  assert.ok(committed > 50, `the writer committed throughout (${committed})`);

  const [[{ Checksum: sourceChecksum }]] = (await server.conn.query('CHECKSUM TABLE app.sbtest1')) as unknown as [[{ Checksum: number }]];
  const [[{ g: executed }]] = (await server.conn.query('SELECT @@GLOBAL.gtid_executed AS g')) as unknown as [[{ g: string }]];
  const stoppedAt = new Date();
  await waitFor('the bucket to hold everything written', () => streamCoveredSince(stoppedAt), 90_000, 250);

  await assertSegmentsChain(executed);

  const datadir = await restoreLatest('restored-after-faults');
  const [restored] = await queryRestored<{ Checksum: number }>(datadir, 'CHECKSUM TABLE app.sbtest1');
  assert.equal(Number(restored!.Checksum), Number(sourceChecksum), 'the restored sbtest1 matches the source');
});

/** Each file's segments contiguous from 0; files consecutive; every transaction of the segments once, and none missing. */
async function assertSegmentsChain(executed: string): Promise<void> {
  const segments = await listBinlogSegments(world.metadata, instanceId);
  const byFile = new Map<string, BinlogSegment[]>();
  for (const s of segments) byFile.set(s.binlogFile, [...(byFile.get(s.binlogFile) ?? []), s]);
  const files = [...byFile.keys()].sort((a, b) => parseBinlogFileName(a)!.seq - parseBinlogFileName(b)!.seq);
  assert.ok(files.length >= 2, `the restart opened a new binlog, streamed too (${files.join(', ')})`);
  for (let i = 1; i < files.length; i++) assert.equal(parseBinlogFileName(files[i]!)!.seq, parseBinlogFileName(files[i - 1]!)!.seq + 1, 'consecutive files');

  const seen = new Map<string, number>();
  for (const file of files) {
    const parts = byFile.get(file)!.sort((a, b) => a.startPos - b.startPos);
    let at = 0;
    const chunks: Buffer[] = [];
    for (const s of parts) {
      assert.equal(s.startPos, at, `${file}: segment ${s.objectKey} starts where the previous one ended (no gap, no overlap)`);
      at = s.endPos;
      const body = await world.minio.getObject(world.bucket, s.objectKey);
      const bytes: Buffer[] = [];
      for await (const b of body) bytes.push(b as Buffer);
      chunks.push(Buffer.concat(bytes));
      assert.equal(chunks[chunks.length - 1]!.length, s.endPos - s.startPos, `${s.objectKey} holds its range`);
    }
    const local = path.join(world.dir, `joined-${file}`);
    writeFileSync(local, Buffer.concat(chunks));
    for await (const ev of readEvents(local)) {
      if ('kind' in ev && ev.kind === 'gtid' && !ev.anonymous) seen.set(ev.gtid, (seen.get(ev.gtid) ?? 0) + 1);
    }
    if (file !== files[files.length - 1]) assert.ok(parts[parts.length - 1]!.closesFile, `${file} is closed: its last segment ends with the ROTATE/STOP event`);
  }
  const duplicates = [...seen].filter(([, n]) => n > 1).map(([g]) => g);
  assert.deepEqual(duplicates, [], 'no transaction is in the segments twice');
  // Every transaction the server executed after the first streamed file began is in the segments.
  const uuid = server.serverUuid;
  const gnos = [...seen.keys()].filter((g) => g.startsWith(`${uuid}:`)).map((g) => Number(g.split(':').pop()));
  const first = Math.min(...gnos);
  const last = Number(/:(?:\d+-)?(\d+)$/.exec(executed.replace(/\s/g, '').split(',').find((p) => p.startsWith(uuid))!)![1]);
  const missing = [];
  for (let n = first; n <= last; n++) if (!seen.has(`${uuid}:${n}`)) missing.push(n);
  assert.deepEqual(missing, [], `every GTID from ${uuid}:${first} to ${last} is in the segments`);
}

test('the binlog job archives the file the restart closed, then removes its segments (objects and rows); the active file keeps its own', async () => {
  const before = await listBinlogSegments(world.metadata, instanceId);
  const closed = [...new Set(before.filter((s) => s.closesFile).map((s) => s.binlogFile))];
  assert.ok(closed.length >= 1, 'a streamed file was closed by the restart');
  const r = await mcb(['enqueue', 'binlog', '--instance', String(instanceId), '--wait', '--timeout', '120']);
  assert.equal(r.code, 0, `binlog job failed:\n${r.stdout}\n${r.stderr}`);

  const after = await listBinlogSegments(world.metadata, instanceId);
  const keys = new Set<string>();
  for await (const o of world.minio.listObjectsV2(world.bucket, `seg_${instanceId}_`, true) as AsyncIterable<{ name?: string }>) if (o.name) keys.add(o.name);
  for (const file of closed) {
    assert.deepEqual(after.filter((s) => s.binlogFile === file), [], `${file}: no segment row left once archived whole`);
    assert.deepEqual([...keys].filter((k) => k.startsWith(`seg_${instanceId}_${file}.`)), [], `${file}: no segment object left`);
  }
  const active = after.filter((s) => !closed.includes(s.binlogFile));
  assert.ok(active.length > 0, 'the active file keeps its segments');
  for (const s of active) assert.ok(keys.has(s.objectKey), `${s.objectKey} is still stored`);

  const plan = await mcb(['restore', 'plan', '--instance', String(instanceId), '--at', 'latest', '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  const binlogs = (JSON.parse(plan.stdout) as { binlogs: Array<{ file: string; objectKey: string; segments?: unknown[] }> }).binlogs;
  for (const file of closed) {
    const b = binlogs.find((x) => x.file === file);
    assert.ok(b && !b.segments && b.objectKey.startsWith(`log_${instanceId}_`), `${file} is restored from its log_ object`);
  }
  assert.ok(binlogs[binlogs.length - 1]!.segments?.length, 'the active file from its segments');
});
