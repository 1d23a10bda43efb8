// The binlog streamer against a private MySQL 9.7 (mysqlbinlog --raw --stop-never from the sid root), the metadata
// center and S3, started directly (no BullMQ): segments chain from 0 within a file, each ends at a transaction
// boundary, their bytes are the server's file, covered_at advances; a stop, a killed dump connection, a stalled
// mysqlbinlog or a purged file resume without a duplicate; the worker starts and stops it, and a worker killed with
// -9 leaves no mysqlbinlog behind.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable, type Duplex } from 'node:stream';
import type mysql from 'mysql2/promise';
import { decodersFor } from '../../src/archive/index.ts';
import { readEvents } from '../../src/binlog/index.ts';
import { loadConfig, requireOss, type Config } from '../../src/config/index.ts';
import { listBinlogSegments, streamStatuses, type BinlogSegment } from '../../src/metadata/binlog-segments.ts';
import { MinioObjectStore } from '../../src/storage/index.ts';
import { SPOOL_DIR_NAME, startBinlogStreamer, type BinlogStreamer } from '../../src/streamer/index.ts';
import { startWorker } from '../../src/workers/index.ts';
import { servicesEnv } from '../support/env.ts';
import { captureLog } from '../support/log-capture.ts';
import { waitFor } from '../support/poll.ts';
import { spawnWorker } from '../support/worker-process.ts';
import { testServers, type TestServer } from '../support/test-mysqld.ts';
import { createWorld, type World } from '../support/world.ts';

const servers = testServers('mcb-binlog-stream');
const captured = captureLog('test-stream');
let world: World;
let server: TestServer;
let instanceId: number;
let config: Config;
let configFile: string;
let streamer: BinlogStreamer | undefined;

before(async () => {
  world = await createWorld();
  server = await servers.start('s', 301);
  instanceId = await world.metadata.addInstance({ instanceId: `127.0.0.1:${server.port}:stream`, instanceName: `stream-${world.id}`, stringLink: '127.0.0.1', dbPort: server.port, isClone: true });
  configFile = writeStreamConfig('on');
  config = loadConfig(configFile);
  await server.conn.query('CREATE DATABASE d');
  await server.conn.query('CREATE TABLE d.t (id int auto_increment primary key, v varchar(200))');
});

after(async () => {
  await streamer?.stop();
  await servers.stopAll();
  await world?.cleanup();
});

// ---- helpers ----------------------------------------------------------------------------------------------

function writeStreamConfig(binlogStream: 'on' | 'off'): string {
  return world.writeConfig({
    instanceId,
    backupConf: { bin_index_path: server.binlogIndex, binlog_stream: binlogStream, binlog_stream_interval_seconds: '1', binlog_compression: 'gzip', max_rpo_minutes: '100000' },
    sections: { 'mysql-link': server.link, restore: { sid_root: servicesEnv().sidRoot } },
  });
}

/**
 * The mysqlbinlog processes writing into this test's spool. (Not the server's dump connections: on an idle server
 * a dump thread notices that its client is gone only when it next sends something.)
 */
function mysqlbinlogProcesses(): number[] {
  const spool = path.join(config.backup.backupPath!, SPOOL_DIR_NAME);
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
        return argv.some((a) => a.startsWith('--result-file=') && a.includes(spool)) && argv.includes('--stop-never');
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

function start(): BinlogStreamer {
  const oss = requireOss(config);
  streamer = startBinlogStreamer({ config, metadata: world.metadata, storage: new MinioObjectStore(oss, oss.bucket), instanceId, workerHost: 'test-host', log: captured.log });
  return streamer;
}

async function stop(): Promise<void> {
  await streamer?.stop();
  streamer = undefined;
}

async function insertRows(conn: mysql.Connection, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) await conn.query('INSERT INTO d.t (v) VALUES (?)', [`${tag}-${i}-${'x'.repeat(100)}`]);
}

async function serverPosition(): Promise<{ file: string; position: number; gtids: string }> {
  const [rows] = await server.conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOG STATUS');
  return { file: String(rows[0]!.File), position: Number(rows[0]!.Position), gtids: String(rows[0]!.Executed_Gtid_Set) };
}

/** Waits until the segments reach the server's position now; returns that position. */
async function waitForSegmentsAtServer(): Promise<{ file: string; position: number; gtids: string }> {
  const pos = await serverPosition();
  await waitFor(`segments of ${pos.file} up to ${pos.position}`, async () => {
    const segs = (await listBinlogSegments(world.metadata, instanceId)).filter((s) => s.binlogFile === pos.file);
    return segs.some((s) => s.endPos >= pos.position);
  }, 20_000);
  return pos;
}

async function segmentsOf(file: string): Promise<BinlogSegment[]> {
  return (await listBinlogSegments(world.metadata, instanceId)).filter((s) => s.binlogFile === file).sort((a, b) => a.startPos - b.startPos);
}

async function storedObject(key: string): Promise<{ stored: Buffer; plain: Buffer; metadata: Record<string, string> }> {
  const chunks: Buffer[] = [];
  for await (const c of await world.minio.getObject(world.bucket, key)) chunks.push(c as Buffer);
  const stored = Buffer.concat(chunks);
  const plain: Buffer[] = [];
  await pipeline(Readable.from([stored]), ...(decodersFor(key, config.encryption) as [Duplex]), new Writable({ write: (c: Buffer, _e, done) => (plain.push(c), done()) }));
  const stat = await world.minio.statObject(world.bucket, key);
  return { stored, plain: Buffer.concat(plain), metadata: stat.metaData as Record<string, string> };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A file's FORMAT_DESCRIPTION flags are at byte 21: the server sets "in use" (bit 0) on the file it is writing
 * and sends the event with it cleared; the server clears it in the file when it closes it. */
function withoutInUseFlag(b: Buffer): Buffer {
  const copy = Buffer.from(b);
  if (copy.length > 21) copy[21]! &= ~1;
  return copy;
}

/** Offsets where a transaction (its GTID event), a ROTATE or a STOP event starts, and the end of the last event. */
async function boundaries(file: string): Promise<Set<number>> {
  const out = new Set<number>();
  let end = 0;
  for await (const ev of readEvents(file, { allowTruncatedTail: true })) {
    if (ev.kind === 'gtid' || ev.kind === 'rotate' || ev.kind === 'stop') out.add(ev.header.position);
    end = ev.header.position + ev.header.eventSize;
  }
  out.add(end);
  return out;
}

/**
 * The file's segments chain from 0 without a hole or an overlap, each ends at a transaction boundary, each object
 * is what its row says (sha256, size, mcb-sha256) and their plaintexts concatenated are the server's file up to the
 * last end. Returns the segments.
 */
async function assertChainedAndEqual(file: string, closed: boolean): Promise<BinlogSegment[]> {
  const segs = await segmentsOf(file);
  assert.ok(segs.length > 0, `${file} has segments`);
  assert.equal(segs[0]!.startPos, 0, `${file}: the first segment starts at 0`);
  for (let i = 1; i < segs.length; i++) assert.equal(segs[i]!.startPos, segs[i - 1]!.endPos, `${file}: segment ${i} starts where ${i - 1} ended`);
  const serverFile = path.join(server.datadir, file);
  const bytes = readFileSync(serverFile);
  const ends = await boundaries(serverFile);
  const plains: Buffer[] = [];
  for (const s of segs) {
    const o = await storedObject(s.objectKey);
    assert.equal(o.stored.length, s.storedBytes, `${s.objectKey}: stored_bytes`);
    assert.equal(sha256(o.stored), s.sha256, `${s.objectKey}: sha256 of the stored bytes`);
    assert.equal(o.metadata['mcb-sha256'], s.sha256, `${s.objectKey}: mcb-sha256`);
    assert.equal(o.plain.length, s.endPos - s.startPos, `${s.objectKey}: holds [${s.startPos}, ${s.endPos})`);
    assert.ok(ends.has(s.endPos), `${s.objectKey}: ends at a transaction boundary (${s.endPos})`);
    plains.push(o.plain);
  }
  const joined = Buffer.concat(plains);
  const last = segs.at(-1)!;
  assert.equal(last.closesFile, closed, `${file}: the last segment ${closed ? 'closes' : 'does not close'} the file`);
  if (closed) assert.ok(joined.equals(bytes), `${file}: the segments are the closed file byte for byte`);
  else assert.ok(withoutInUseFlag(joined).equals(withoutInUseFlag(bytes.subarray(0, joined.length))), `${file}: the segments are the server's file prefix`);
  return segs;
}

async function streamStatus() {
  return (await streamStatuses(world.metadata, instanceId)).get(instanceId);
}

/** The GTID number after `uuid:` in `uuid:n`. */
const gno = (gtid: string | null) => Number(gtid?.split(':').at(-1));

// ---- tests --------------------------------------------------------------------------------------------------

test('streams the active binlog: segments chained from 0, cut at transaction ends, the server bytes, covered_at advancing', async () => {
  start();
  await insertRows(server.conn, 20, 'a');
  const t0 = new Date();
  const pos = await waitForSegmentsAtServer();
  const segs = await assertChainedAndEqual(pos.file, false);
  assert.equal(gno(segs.at(-1)!.lastGtid), Number(/:1-(\d+)/.exec(pos.gtids)![1]), 'the last segment ends with the last transaction committed');
  assert.ok(segs.every((s) => s.seriesStart > 0 && s.serverUuid === server.serverUuid && s.compression === 'gzip' && s.objectKey.endsWith('.gz')));
  const status = await waitFor('covered_at after the inserts', async () => {
    const s = await streamStatus();
    return s?.coveredAt && s.coveredAt.getTime() >= t0.getTime() ? s : undefined;
  }, 10_000);
  assert.equal(status.state, 'streaming');
  assert.equal(status.binlogFile, pos.file);
  assert.ok(status.position! >= pos.position);
  assert.ok(status.lastCommitTime && Math.abs(status.lastCommitTime.getTime() - t0.getTime()) < 10_000, 'last_commit_time is the last insert');
  // covered_at keeps advancing on an idle server
  const first = status.coveredAt!.getTime();
  await waitFor('covered_at advancing while idle', async () => ((await streamStatus())?.coveredAt?.getTime() ?? 0) > first + 1000, 10_000);
  const lines = captured.named('stream.segment');
  assert.ok(lines.length >= 1 && lines.every((l) => typeof l.from === 'number' && typeof l.to === 'number' && typeof l.ms === 'number'), 'one log line per segment');
});

test('a rotation closes the file: its last segment holds the ROTATE, the spool drops it, the next file starts at 0', async () => {
  const before = await serverPosition();
  await insertRows(server.conn, 3, 'r');
  await server.conn.query('FLUSH BINARY LOGS');
  await insertRows(server.conn, 3, 's');
  const pos = await waitForSegmentsAtServer();
  assert.notEqual(pos.file, before.file);
  await assertChainedAndEqual(before.file, true);
  await assertChainedAndEqual(pos.file, false);
  const spool = path.join(config.backup.backupPath!, SPOOL_DIR_NAME);
  await waitFor('the closed file gone from the spool', () => !existsSync(path.join(spool, before.file)), 5000);
  assert.ok(existsSync(path.join(spool, pos.file)));
  assert.equal(statSync(spool).mode & 0o777, 0o700, 'the spool is private');
});

test('stop, writes while stopped, start again: resumes at the last end, no duplicate, no gap', async () => {
  const lastBefore = (await segmentsOf((await serverPosition()).file)).at(-1)!;
  await stop();
  assert.equal((await streamStatus())?.state, 'stopped');
  await insertRows(server.conn, 5, 'b');
  start();
  const pos = await waitForSegmentsAtServer();
  const segs = await assertChainedAndEqual(pos.file, false);
  const next = segs.find((s) => s.startPos === lastBefore.endPos);
  assert.ok(next, 'the first new segment starts where the last one before the stop ended');
  assert.equal(gno(next.firstGtid), gno(lastBefore.lastGtid) + 1, 'GTIDs continue without a gap or a duplicate');
  assert.equal(segs.filter((s) => s.startPos === lastBefore.startPos).length, 1, 'nothing uploaded twice');
  const resumed = captured.named('stream.start').at(-1)!;
  assert.equal(resumed.skipTo, lastBefore.endPos, 'the file is read again and uploaded from the last end');
});

test('the dump connection killed on the server: reconnects and resumes without a duplicate', async () => {
  const [threads] = await server.conn.query<mysql.RowDataPacket[]>("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
  assert.ok(threads.length >= 1, "the streamer's dump connection (and maybe a stopped run's, not noticed yet by an idle server)");
  for (const t of threads) await server.conn.query('KILL ?', [t.ID]).catch(() => undefined);
  await waitFor('state reconnecting', async () => (await streamStatus())?.state === 'reconnecting' || captured.named('stream.reconnecting').length > 0, 10_000);
  await insertRows(server.conn, 5, 'c');
  const pos = await waitForSegmentsAtServer();
  const segs = await assertChainedAndEqual(pos.file, false);
  for (let i = 1; i < segs.length; i++) {
    if (segs[i]!.firstGtid && segs[i - 1]!.lastGtid) assert.equal(gno(segs[i]!.firstGtid), gno(segs[i - 1]!.lastGtid) + 1, 'GTIDs chain');
  }
  await waitFor('streaming again', async () => (await streamStatus())?.state === 'streaming', 10_000);
});

test('the file to resume from was purged: state gap naming it, then the active binlog is streamed', async () => {
  const was = await serverPosition();
  await stop();
  await insertRows(server.conn, 2, 'p');
  await server.conn.query('FLUSH BINARY LOGS');
  const active = await serverPosition();
  await server.conn.query('PURGE BINARY LOGS TO ?', [active.file]);
  start();
  const status = await waitFor('state gap', async () => {
    const s = await streamStatus();
    return s?.state === 'gap' ? s : undefined;
  }, 15_000);
  assert.match(status.lastError ?? '', new RegExp(`${was.file.replace('.', '\\.')} was purged`));
  await insertRows(server.conn, 3, 'q');
  const pos = await waitForSegmentsAtServer();
  assert.equal(pos.file, active.file);
  await assertChainedAndEqual(active.file, false);
  await stop();
});

test('a stalled mysqlbinlog (alive, receiving nothing while the server writes) is killed and restarted after 3 intervals', async () => {
  const starts = captured.named('stream.start').length;
  start();
  const started = await waitFor('stream.start', () => captured.named('stream.start')[starts], 10_000);
  const pid = Number(started.pid);
  await waitFor('mysqlbinlog running', () => mysqlbinlogProcesses().length === 1, 10_000);
  const reconnects = captured.named('stream.reconnecting').length;
  process.kill(pid, 'SIGSTOP');
  try {
    await waitFor('a stall restart', async () => {
      await insertRows(server.conn, 1, 'stall');
      return captured.named('stream.reconnecting').slice(reconnects).some((e) => /received nothing for 3 intervals/.test(JSON.stringify(e.err)));
    }, 15_000, 300);
  } finally {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // killed by the streamer, as it should be
    }
  }
  const pos = await waitForSegmentsAtServer();
  await assertChainedAndEqual(pos.file, false);
  await stop();
});

test('through the worker: it streams only with binlog_stream on, and close() stops the stream (state stopped, no mysqlbinlog left)', async () => {
  const off = await startWorker(loadConfig(writeStreamConfig('off')), { log: captured.log });
  const starts = captured.named('stream.start').length;
  await insertRows(server.conn, 2, 'off');
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal(captured.named('stream.start').length, starts, 'no stream started');
  assert.deepEqual(mysqlbinlogProcesses(), []);
  await off.close();

  const on = await startWorker(config, { log: captured.log });
  try {
    await insertRows(server.conn, 3, 'on');
    const pos = await waitForSegmentsAtServer();
    await assertChainedAndEqual(pos.file, false);
    assert.equal(mysqlbinlogProcesses().length, 1);
  } finally {
    await on.close();
  }
  assert.equal((await streamStatus())?.state, 'stopped');
  assert.deepEqual(mysqlbinlogProcesses(), [], 'mysqlbinlog stopped with the worker');
});

test('a worker killed with -9 leaves no mysqlbinlog behind (setpriv --pdeathsig)', { skip: !existsSync('/usr/bin/setpriv') && !existsSync('/bin/setpriv') }, async () => {
  const w = spawnWorker(configFile, path.join(world.dir, 'worker-kill9.log'));
  try {
    await w.waitForEvent((e) => e.event === 'stream.start', 'stream.start', 30_000);
    await waitFor('mysqlbinlog running', () => mysqlbinlogProcesses().length === 1, 10_000);
    w.child.kill('SIGKILL'); // the worker alone, not its process group
    await w.exited;
    await waitFor('mysqlbinlog gone with the worker', () => mysqlbinlogProcesses().length === 0, 5000);
  } finally {
    await w.killGroup();
  }
});

test('mysqld killed with -9 (no STOP event): the crashed file\'s last segment is marked as closing it and the stream goes on in the next file', async () => {
  start();
  await insertRows(server.conn, 3, 'before-crash');
  const crashed = await waitForSegmentsAtServer();
  await servers.crashAndStart(server);
  await insertRows(server.conn, 3, 'after-crash');
  const next = await waitForSegmentsAtServer();
  assert.notEqual(next.file, crashed.file, 'the restarted server writes a new file');
  const segs = await waitFor('the crashed file closed by its last segment', async () => {
    const s = await segmentsOf(crashed.file);
    return s.at(-1)?.closesFile ? s : undefined;
  }, 20_000);
  const serverBytes = readFileSync(path.join(server.datadir, crashed.file));
  assert.equal(segs.at(-1)!.endPos, serverBytes.length, 'the segments hold the crashed file to its end');
  for (let i = 1; i < segs.length; i++) assert.equal(segs[i]!.startPos, segs[i - 1]!.endPos);
  assert.ok(captured.named('stream.file-ended').some((e) => e.file === crashed.file), 'logged once as ended without ROTATE/STOP');
  await assertChainedAndEqual(next.file, false);
  await stop();
});
