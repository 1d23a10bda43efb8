// The `binlog` job against real servers, called directly: the shared source MySQL (binlogs + GTID; other tests may
// write to it and rotate its binlogs at the same time, so assertions are about this test's files and invariants,
// never exact totals), the metadata center and the S3 server (through a TCP proxy for the outage). Purge and the
// RPO bound run on a private mysqld: nothing is ever purged on the shared servers.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import mysql from 'mysql2/promise';
import { parseBinlogFileName, readEvents } from '../../src/binlog/index.ts';
import { binlogStartOfObject, candidatesFromBucket } from '../../src/restore/bucket.ts';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { binlogJob, BinlogBatchError } from '../../src/jobs/binlog.ts';
import { readBinlogHead } from '../../src/jobs/binlog/index-file.ts';
import { listBinlogGapRows, listBinlogRows } from '../../src/metadata/binlog-queries.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { findFreePort, initializeDatadir, startMysqld, type RunningMysqld } from '../../src/mysql/mysqld.ts';
import { MinioObjectStore, type ObjectStore } from '../../src/storage/index.ts';
import { requireOss } from '../../src/config/index.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import { directContext } from '../support/context.ts';
import { servicesEnv } from '../support/env.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';
import { createWorld, rootConnection, type World } from '../support/world.ts';

const env = servicesEnv();
const db = `mcb_binlogjob_${randomBytes(4).toString('hex')}`;
let world: World;
let source: mysql.Connection;

before(async () => {
  world = await createWorld();
  source = await rootConnection(env.source);
  await source.query(`CREATE DATABASE ${db}`);
  await source.query(`CREATE TABLE ${db}.t (id int auto_increment primary key, v varchar(100))`);
});

after(async () => {
  if (source) {
    await source.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
    await source.end();
  }
  await world?.cleanup();
});

// ---- helpers ----------------------------------------------------------------------------------------------

/** Rows and FLUSH BINARY LOGS on the shared source, `n` times; returns the binlogs closed by these flushes. */
async function writeAndRotate(conn: mysql.Connection, n: number, table = `${db}.t`): Promise<string[]> {
  const closed: string[] = [];
  for (let i = 0; i < n; i++) {
    await conn.query(`INSERT INTO ${table} (v) VALUES (?), (?)`, [`row-${i}-a`, `row-${i}-b`]);
    const [before] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
    await conn.query('FLUSH BINARY LOGS');
    closed.push(String(before.at(-1)!.Log_name));
  }
  return closed;
}

async function indexNames(conn: mysql.Connection): Promise<string[]> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  return rows.map((r) => String(r.Log_name));
}

async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function objectBytes(w: World, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await w.minio.getObject(w.bucket, key)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function rowsByFile(w: World, instanceId: number): Promise<Map<string, BackupRow>> {
  const rows = await listBinlogRows(w.metadata, instanceId);
  const out = new Map<string, BackupRow>();
  for (const r of rows) {
    assert.ok(!out.has(r.binlogFile), `one row per binlog file, ${r.binlogFile} has several`);
    out.set(r.binlogFile, (await w.metadata.getBackup(r.backupUuid))!);
  }
  return out;
}

/**
 * No holes, no duplicates: every closed binlog in `closed` has exactly one Completed row, and each row's end_time
 * is the start_time of the next file (read from the file itself when the next one is not archived yet).
 */
async function assertChain(w: World, instanceId: number, closed: string[], binlogDir: string, next: string): Promise<Map<string, BackupRow>> {
  const rows = await rowsByFile(w, instanceId);
  const all = [...closed, next];
  for (let i = 0; i < closed.length; i++) {
    const row = rows.get(closed[i]!);
    assert.ok(row, `${closed[i]} has a row`);
    assert.equal(row.state, 'Completed', `${closed[i]} is Completed (${row.info})`);
    const nextStart = rows.get(all[i + 1]!)?.startTime ?? new Date((await readBinlogHead(path.join(binlogDir, all[i + 1]!))).start * 1000);
    assert.equal(row.endTime!.getTime(), nextStart.getTime(), `end of ${closed[i]} = start of ${all[i + 1]}`);
  }
  return rows;
}

function sourceConfig(w: World, backupConf: Record<string, string> = {}, s3Port?: number): Config {
  return loadConfig(w.writeConfig({ node: 'source', backupConf: { max_rpo_minutes: '100000', ...backupConf }, s3Port }));
}

// ---- the shared source ------------------------------------------------------------------------------------

test('archives every closed binlog once, in order: objects, rows, chained times, sha256; a second run uploads nothing again', async () => {
  const binlogDir = path.dirname(env.source.binlogIndex);
  const mine = await writeAndRotate(source, 3);
  const config = sourceConfig(world);
  const id = world.sourceInstanceId;

  const first = await binlogJob.handle({ instanceId: id }, directContext(config, world.metadata, { jobId: 'binlog-1' }));
  assert.equal(first.flushed, false);
  assert.equal(first.gap, undefined);
  const archivedNames = first.archived.map((a) => a.file);
  for (const f of mine) assert.ok(archivedNames.includes(f), `${f} (closed by this test) archived`);
  assert.ok(!archivedNames.includes(first.active), 'the active binlog is not archived');
  const sorted = [...archivedNames].sort((a, b) => parseBinlogFileName(a)!.seq - parseBinlogFileName(b)!.seq);
  assert.deepEqual(archivedNames, sorted, 'archived in order');

  // Every file in the index before the active one is archived, exactly once, chained.
  const index = await readFile(env.source.binlogIndex, 'utf8');
  const names = index.split('\n').filter(Boolean).map((l) => path.basename(l.trim()));
  const activeAt = names.indexOf(first.active);
  const closed = names.slice(0, activeAt);
  assert.deepEqual(archivedNames, closed, 'first run: the whole index but the active binlog');
  const rows = await assertChain(world, id, closed, binlogDir, first.active);

  for (const a of first.archived) {
    const row = rows.get(a.file)!;
    assert.equal(row.backupType, 'binlog');
    assert.equal(row.tbInstanceId, String(id));
    assert.equal(row.backupName, `log_${id}_${a.file}`);
    assert.equal(row.objectKey, row.backupName);
    assert.equal(row.compression, 'none');
    assert.equal(row.bucketName, world.bucket);
    assert.equal(row.backupPath, binlogDir);
    assert.equal(row.overdueDay, 7);
    assert.equal(row.binlogFile, a.file);
    assert.ok(row.backupSize !== '0' && row.backupSize.length <= 10);
    const head = await readBinlogHead(path.join(binlogDir, a.file));
    assert.equal(row.startTime!.getTime(), head.start * 1000, 'start_time = first event timestamp');
    assert.equal(row.gtidSet, head.previousGtids);
    const stored = await objectBytes(world, row.objectKey!);
    assert.equal(stored.length, row.backupBytes);
    assert.equal(sha256(stored), row.sha256, 'sha256 recorded = sha256 of the stored object');
    assert.equal(row.sha256, await sha256File(path.join(binlogDir, a.file)), 'stored object = the binlog file');
    assert.equal((await world.minio.statObject(world.bucket, row.objectKey!)).metaData['mcb-sha256'], row.sha256, 'mcb-sha256 object metadata (for --from-bucket)');
  }
  // The test's own writes are in the previous_gtids chain: mine[1] starts after mine[0]'s transactions.
  assert.ok(rows.get(mine[1]!)!.gtidSet, 'gtid_set recorded');

  // Run again: nothing archived twice (only files other tests may have rotated since are new).
  const objectsBefore = new Map<string, Date>();
  for await (const o of world.minio.listObjectsV2(world.bucket, '', true) as AsyncIterable<{ name: string; lastModified: Date }>) {
    objectsBefore.set(o.name, o.lastModified);
  }
  const second = await binlogJob.handle({ instanceId: id }, directContext(config, world.metadata, { jobId: 'binlog-2' }));
  for (const a of second.archived) assert.ok(!archivedNames.includes(a.file), `${a.file} not uploaded twice`);
  assert.ok(second.skipped >= closed.length, 'earlier files counted as already archived');
  for await (const o of world.minio.listObjectsV2(world.bucket, '', true) as AsyncIterable<{ name: string; lastModified: Date }>) {
    if (objectsBefore.has(o.name)) assert.equal(o.lastModified.getTime(), objectsBefore.get(o.name)!.getTime(), `${o.name} not rewritten`);
  }
  await rowsByFile(world, id); // still one row per file
});

for (const codec of ['gzip', 'zstd'] as const) {
  const extension = codec === 'gzip' ? '.gz' : '.zst';
  test(`binlog_compression = ${codec}: log_<id>_<file>${extension}, compression recorded, sha256 of the stored object, read back by the CLI and from the bucket`, async () => {
    const w = await createWorld();
    try {
      const binlogDir = path.dirname(env.source.binlogIndex);
      const [mine] = await writeAndRotate(source, 1);
      // zstd at a level of its own: the digest pass and the upload must compress alike.
      const config = sourceConfig(w, { binlog_compression: codec, ...(codec === 'zstd' ? { compression_level: '7', compression_threads: '2' } : {}) });
      const result = await binlogJob.handle({ instanceId: w.sourceInstanceId }, directContext(config, w.metadata));
      const a = result.archived.find((x) => x.file === mine)!;
      assert.ok(a, `${mine} archived`);
      assert.equal(a.objectKey, `log_${w.sourceInstanceId}_${mine}${extension}`);
      const row = (await rowsByFile(w, w.sourceInstanceId)).get(mine!)!;
      assert.equal(row.compression, codec);
      assert.equal(row.backupName, a.objectKey);
      const stored = await objectBytes(w, a.objectKey);
      assert.equal(sha256(stored), row.sha256);
      assert.equal(stored.length, row.backupBytes);
      const cli = codec === 'gzip' ? ['gunzip', ['-c']] as const : ['zstd', ['-d', '-c']] as const;
      assert.equal(sha256(execFileSync(cli[0], [...cli[1]], { input: stored, maxBuffer: 1 << 30 })), await sha256File(path.join(binlogDir, mine!)), `${cli[0]} reads it`);
      assert.equal((await w.minio.statObject(w.bucket, a.objectKey)).metaData['mcb-sha256'], row.sha256, `mcb-sha256 = sha256 of the stored (${codec}) bytes`);
      // What restore and --from-bucket read: the object decompressed by its name.
      const store = new MinioObjectStore(requireOss(config), w.bucket);
      assert.equal((await binlogStartOfObject(store, a.objectKey)).getTime(), row.startTime!.getTime());
      const fromBucket = await candidatesFromBucket(store, w.sourceInstanceId, w.metadata.timeZone);
      assert.equal(fromBucket.binlogs.find((b) => b.objectKey === a.objectKey)?.compression, codec);
    } finally {
      await w.cleanup();
    }
  });
}

test('S3 down in the middle of a batch: files before it Completed, it Error, none after; the next run archives exactly the rest', async () => {
  const w = await createWorld();
  const proxy = await startTcpProxy(env.s3.endPoint, env.s3.port);
  try {
    const binlogDir = path.dirname(env.source.binlogIndex);
    const id = w.sourceInstanceId;
    const config = sourceConfig(w, { verify: 'download' }, proxy.port);
    const oss = requireOss(config);
    // First run archives what the source has now (so the interrupted batch below is about this test's files).
    await binlogJob.handle({ instanceId: id }, directContext(config, w.metadata));
    const mine = await writeAndRotate(source, 4);

    let puts = 0;
    const real = new MinioObjectStore(oss, oss.bucket);
    const flaky: ObjectStore = Object.assign(Object.create(real) as ObjectStore, {
      putStream: (...args: Parameters<ObjectStore['putStream']>) => {
        if (++puts === 2) proxy.down(); // a real outage: connections refused and cut
        return real.putStream(...args);
      },
      putFile: (...args: Parameters<ObjectStore['putFile']>) => {
        if (++puts === 2) proxy.down();
        return real.putFile(...args);
      },
    });
    let failure: unknown;
    await binlogJob.handle({ instanceId: id }, directContext(config, w.metadata, { storage: flaky })).catch((e) => (failure = e));
    assert.ok(failure instanceof BinlogBatchError, `the run fails: ${String(failure)}`);
    const firstBatch = failure.archived.map((a) => a.file);
    assert.equal(firstBatch.length, 1, 'one file archived before the outage');
    let rows = await rowsByFile(w, id);
    const failedFile = [...rows.values()].find((r) => r.state === 'Error')!;
    assert.ok(failedFile, 'the file being uploaded when S3 went down is Error');
    assert.match(failedFile.info ?? '', /failed/);
    const failedSeq = parseBinlogFileName(failedFile.binlogFile!)!.seq;
    for (const r of rows.values()) {
      if (parseBinlogFileName(r.binlogFile!)!.seq > failedSeq) assert.fail(`${r.binlogFile} after the failed one must not have a row (got ${r.state})`);
    }
    assert.equal(await w.minio.statObject(w.bucket, failedFile.objectKey ?? failedFile.backupName).catch(() => undefined), undefined, 'no partial object');

    proxy.up();
    const retry = await binlogJob.handle({ instanceId: id }, directContext(config, w.metadata));
    const retried = retry.archived.map((a) => a.file);
    assert.equal(retried[0], failedFile.binlogFile, 'the next run starts with the failed file');
    for (const f of firstBatch) assert.ok(!retried.includes(f), `${f} not archived twice`);
    for (const f of mine) assert.ok(firstBatch.includes(f) || retried.includes(f), `${f} archived by one of the runs`);

    const names = (await indexNames(source)).filter((n) => parseBinlogFileName(n)!.seq <= parseBinlogFileName(retry.active)!.seq);
    rows = await assertChain(w, id, names.slice(0, -1), binlogDir, retry.active);
    assert.equal(rows.get(failedFile.binlogFile!)!.state, 'Completed');
    assert.equal(rows.get(failedFile.binlogFile!)!.backupUuid, failedFile.backupUuid, 'the Error row was retried, not duplicated');
  } finally {
    proxy.up();
    await proxy.close();
    await w.cleanup();
  }
});

test('a bin_index_path that does not list the server\'s active binlog (another server\'s index) is refused clearly', async () => {
  const fake = path.join(world.dir, 'other-mysql-bin.index');
  await writeFile(fake, `${path.join(path.dirname(env.source.binlogIndex), 'mysql-bin.000001')}\n`);
  const config = loadConfig(world.writeConfig({ node: 'source', backupConf: { bin_index_path: fake } }));
  await assert.rejects(
    binlogJob.handle({ instanceId: world.sourceInstanceId }, directContext(config, world.metadata)),
    (e: Error) => e instanceof PermanentJobError && /does not list mysql-bin\.\d+, the active binlog of 127\.0\.0\.1:\d+/.test(e.message),
  );
});

// ---- a private mysqld: purge before archive, and the RPO bound ---------------------------------------------------

test('private mysqld: purged before archived → one gap Error row, the rest archived; RPO flush puts a single write in storage', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-binlog-job-'));
  const w = await createWorld();
  let server: RunningMysqld | undefined;
  let conn: mysql.Connection | undefined;
  try {
    const datadir = path.join(dir, 'data');
    const bin = { command: env.mysqld, baseArgs: env.mysqldBaseArgs };
    await initializeDatadir(bin, datadir);
    const port = await findFreePort();
    server = await startMysqld(bin, {
      datadir,
      port,
      runDir: path.join(dir, 'run'),
      extraArgs: ['--log-bin=mysql-bin', '--server-id=77', '--gtid-mode=ON', '--enforce-gtid-consistency=ON', '--skip-replica-start'],
    });
    conn = await mysql.createConnection({ host: '127.0.0.1', port, user: 'root', password: '' });
    await conn.query('CREATE DATABASE d');
    await conn.query('CREATE TABLE d.t (id int auto_increment primary key, v varchar(100))');
    const id = await w.metadata.addInstance({ instanceId: `127.0.0.1:${port}`, instanceName: `private-${w.id}`, stringLink: '127.0.0.1', dbPort: port, isClone: true });
    const configFor = (maxRpo: string) =>
      loadConfig(
        w.writeConfig({
          instanceId: id,
          // No bin_index_path: the job asks the server (@@log_bin_index), whose index holds relative names.
          backupConf: { bin_index_path: '', max_rpo_minutes: maxRpo },
          sections: { 'mysql-link': { host: '127.0.0.1', port: String(port), user: 'root', password: '', charset: 'utf8mb4' } },
        }),
      );
    const config = configFor('100000');
    const run = (c = config) => binlogJob.handle({ instanceId: id }, directContext(c, w.metadata));

    await writeAndRotate(conn, 2, 'd.t');
    const first = await run();
    assert.equal(first.archived.length, (await indexNames(conn)).length - 1);
    const lastArchived = first.archived.at(-1)!;

    // Two binlogs closed, then the older one purged before the job saw it.
    const [lost, kept] = await writeAndRotate(conn, 2, 'd.t');
    await conn.query(`PURGE BINARY LOGS TO '${kept}'`);
    const second = await run();
    assert.ok(second.gap, 'gap reported');
    assert.equal(second.gap.reason, 'purged');
    assert.deepEqual(second.gap.missing, [lost]);
    assert.equal(second.gap.recorded, true);
    assert.equal(second.gap.from, lastArchived.endTime);
    assert.deepEqual(second.archived.map((a) => a.file), [kept], 'carries on with the rest');
    const gaps = await listBinlogGapRows(w.metadata, id);
    assert.equal(gaps.length, 1);
    const gapRow = (await w.metadata.getBackup(gaps[0]!.backupUuid))!;
    assert.equal(gapRow.state, 'Error');
    assert.equal(gapRow.backupType, 'binlog');
    assert.match(gapRow.info ?? '', /point-in-time chain broken from \S+ \(end of \S+\) to \S+ \(start of \S+\)/);
    assert.ok(gapRow.info!.includes(lost!), 'names the missing file');
    assert.equal(gapRow.startTime!.toISOString(), lastArchived.endTime);
    assert.equal(gapRow.endTime!.toISOString(), second.archived[0]!.startTime);

    // Again: the gap is not recorded twice, nothing is archived again.
    const third = await run();
    assert.equal(third.archived.length, 0);
    assert.equal(third.gap, undefined, 'the chain continues after the archived file: no gap any more');
    assert.equal((await listBinlogGapRows(w.metadata, id)).length, 1);

    // RPO: one write, no manual flush, max_rpo_minutes = 0 → in storage after one run.
    await conn.query("INSERT INTO d.t (v) VALUES ('rpo')");
    const [g] = await conn.query<mysql.RowDataPacket[]>('SELECT @@global.gtid_executed AS g');
    const gno = Number(/:(?:\d+-)?(\d+)$/.exec(String(g[0]!.g).replace(/\s/g, ''))![1]);
    const activeBefore = (await indexNames(conn)).at(-1)!;
    const rpo = await run(configFor('0'));
    assert.equal(rpo.flushed, true, 'FLUSH BINARY LOGS issued');
    assert.deepEqual(rpo.archived.map((a) => a.file), [activeBefore], 'the binlog that held the write is archived');
    const local = path.join(dir, 'fetched.bin');
    await pipeline(await w.minio.getObject(w.bucket, rpo.archived[0]!.objectKey), createWriteStream(local));
    const gnos: number[] = [];
    for await (const ev of readEvents(local)) if (ev.kind === 'gtid') gnos.push(ev.gno);
    assert.ok(gnos.includes(gno), `the write's GTID (gno ${gno}) is in the stored binlog`);

    // Nothing written since: no flush (an empty binlog gains nothing), nothing archived.
    const idle = await run(configFor('0'));
    assert.equal(idle.flushed, false);
    assert.equal(idle.archived.length, 0);
    const names = await indexNames(conn);
    await assertChain(w, id, names.slice(0, -1), datadir, names.at(-1)!);
  } finally {
    await conn?.end().catch(() => undefined);
    await server?.stop();
    await w.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a row left Uploading (worker died mid-upload) whose file was purged since is marked Error, not left running', async () => {
  const w = await createWorld();
  try {
    const config = sourceConfig(w);
    const uuid = `00000000-0000-4000-8000-${randomBytes(6).toString('hex')}`;
    await w.metadata.createBackup({
      backupUuid: uuid,
      tbInstanceId: w.sourceInstanceId,
      state: 'Uploading',
      backupType: 'binlog',
      startTime: new Date(Date.now() - 3600_000),
      endTime: new Date(Date.now() - 1800_000),
      binlogFile: 'purged-bin.000007',
      backupPath: '/var/lib/mysql',
      backupName: `log_${w.sourceInstanceId}_purged-bin.000007`,
      bucketName: w.bucket,
      info: 'uploading',
    });
    await writeAndRotate(source, 1);
    await binlogJob.handle({ instanceId: w.sourceInstanceId }, directContext(config, w.metadata, { jobId: `abandoned-${w.id}` }));
    const row = (await w.metadata.getBackup(uuid))!;
    assert.equal(row.state, 'Error');
    assert.match(row.info ?? '', /abandoned: purged-bin\.000007 left the server's binlog index/);
  } finally {
    await w.cleanup();
  }
});
