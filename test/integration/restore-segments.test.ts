// Restore from streamed segments, against a real MySQL 9.7 (a private server), S3 and the metadata center: T1 rows,
// a real CLONE full backup, T2 rows in a binlog then closed and archived by the real binlog job, T3 rows in the
// active binlog uploaded as segment objects with their rows (cut at transaction ends by the scanner, as the
// streamer does; one gzip-compressed), and a T4 row the segments do not hold. `restore run --at latest` then has
// T1-T3 and not T4: from the metadata center (replayed by the server's applier) and from the bucket alone
// (mysqlbinlog | mysql): the active file, with its in-use flag and no ROTATE at its end, replays by either method.
// The plan shows the segments; a time inside the streamed window plans, one after the last segment is too late; a
// lingering segment of the archived file is not used.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { loadConfig, requireOss, type Config } from '../../src/config/index.ts';
import { readBinlogHead, scanCompleteTransactions } from '../../src/binlog/index.ts';
import { binlogJob } from '../../src/jobs/binlog.ts';
import { insertBinlogSegment } from '../../src/metadata/binlog-segments.ts';
import { binlogSegmentObjectName } from '../../src/naming.ts';
import { MinioObjectStore } from '../../src/storage/index.ts';
import { servicesEnv } from '../support/env.ts';
import { directContext } from '../support/context.ts';
import { makeCompletedFullBackup } from '../support/backup.ts';
import { phaseRowsIn } from '../support/restored.ts';
import { runMcb } from '../support/spawn.ts';
import { binlogNames, testServers, type TestServer } from '../support/test-mysqld.ts';
import { createWorld, type World } from '../support/world.ts';

const servers = testServers('mcb-restore-segments');
let world: World;
let server: TestServer;
let instanceId: number;
let ini: string;
let config: Config;
/** An instant between the first and the second segment's commits. */
let inWindow: string;
let activeFile: string;
let archivedFile: string;

before(async () => {
  world = await createWorld();
  server = await servers.start('node', 43, ['--plugin-load-add=mysql_clone.so']);
  instanceId = await world.metadata.addInstance({ instanceId: `127.0.0.1:${server.port}`, instanceName: `segments-${world.id}`, stringLink: '127.0.0.1', dbPort: server.port, isClone: true });
  ini = world.writeConfig({
    instanceId,
    backupConf: { is_cluster: 'off', bin_index_path: server.binlogIndex, max_rpo_minutes: '100000' },
    sections: { 'mysql-link': server.link },
  });
  config = loadConfig(ini);
});

after(async () => {
  await servers.stopAll();
  await world?.cleanup();
});

async function insert(phase: string, ids: number[]): Promise<void> {
  for (const id of ids) await server.conn.query('INSERT INTO d.t VALUES (?, ?)', [id, phase]);
}

/** Uploads bytes [from, end of the complete transactions) of the active binlog as a segment object and its row, as the streamer does. */
async function uploadSegment(file: string, from: number, compression: 'none' | 'gzip'): Promise<number> {
  const local = path.join(server.datadir, file);
  const head = (await readBinlogHead(local))!;
  const scan = await scanCompleteTransactions(local, from, head);
  assert.ok(scan.end > from, `complete transactions after byte ${from} of ${file}`);
  const plain = readFileSync(local).subarray(from, scan.end);
  const stored = compression === 'gzip' ? gzipSync(plain) : plain;
  const sha256 = createHash('sha256').update(stored).digest('hex');
  const key = binlogSegmentObjectName(instanceId, file, head.seriesStart, from, scan.end, compression === 'gzip' ? '.gz' : '');
  const store = new MinioObjectStore(requireOss(config), world.bucket);
  await store.putStream(key, Readable.from([stored]), { size: stored.length, metadata: { 'mcb-sha256': sha256 } });
  await insertBinlogSegment(world.metadata, {
    instanceId,
    binlogFile: file,
    seriesStart: head.seriesStart,
    serverUuid: server.serverUuid,
    startPos: from,
    endPos: scan.end,
    closesFile: scan.closesFile,
    objectKey: key,
    bucketName: world.bucket,
    compression,
    storedBytes: stored.length,
    sha256,
    encryptionKeyId: null,
    firstGtid: scan.firstGtid,
    lastGtid: scan.lastGtid,
    lastCommitTime: scan.lastCommitMicros === null ? null : new Date(Math.floor(scan.lastCommitMicros / 1000)),
    createdAt: new Date(),
  });
  return scan.end;
}

function mcb(args: string[], configFile = ini) {
  return runMcb(['-f', configFile, 'restore', ...args, '--instance', String(instanceId)], { timeoutMs: 120_000, env: { MCB_SID_ROOT: servicesEnv().sidRoot } });
}

test('set-up: T1, full backup, T2 archived, T3 streamed as segments of the active binlog, T4 not uploaded', async () => {
  await server.conn.query('CREATE DATABASE d');
  await server.conn.query('CREATE TABLE d.t (id int PRIMARY KEY, phase varchar(10))');
  await insert('T1', [1, 2]);
  await makeCompletedFullBackup(world, `segments-full-${world.id}`, { config, instanceId });

  await insert('T2', [3, 4]);
  archivedFile = (await binlogNames(server.conn)).at(-1)!;
  await server.conn.query('FLUSH BINARY LOGS');
  const archived = await binlogJob.handle({ instanceId }, directContext(config, world.metadata, { jobId: `segments-binlog-${world.id}` }));
  assert.ok(archived.archived.some((a) => a.file === archivedFile), `${archivedFile} archived whole`);
  // A segment the binlog job has not removed yet: the archived file wins over it.
  await uploadSegment(archivedFile, 0, 'none');

  activeFile = (await binlogNames(server.conn)).at(-1)!;
  await insert('T3', [5]);
  const first = await uploadSegment(activeFile, 0, 'none');
  inWindow = new Date().toISOString();
  await server.conn.beginTransaction();
  await insert('T3', [6, 7]);
  await server.conn.commit();
  await uploadSegment(activeFile, first, 'gzip');
  await insert('T4', [8]);
  assert.equal((await binlogNames(server.conn)).at(-1), activeFile, 'the active binlog was never rotated');
});

test('restore plan shows the segments of the active binlog; the archived file is its log_ object', async () => {
  const r = await mcb(['plan', '--at', 'latest', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  const files = plan.binlogs.map((b: { file: string }) => b.file);
  assert.deepEqual(files.slice(-2), [archivedFile, activeFile]);
  const [archived, active] = plan.binlogs.slice(-2);
  assert.match(archived.objectKey, /^log_/);
  assert.equal(archived.segments, undefined);
  assert.equal(active.segments.length, 2);
  assert.equal(active.segments[0].from, 0);
  assert.equal(active.segments[1].from, active.segments[0].to);
  assert.match(active.segments[1].objectKey, /^seg_\d+_mysql-bin\.\d+\.\d+_\d+-\d+\.gz$/);
  assert.match(active.segments[1].sha256, /^[0-9a-f]{64}$/);
  assert.equal(plan.coveredUntil, active.segments[1].lastCommitTime);

  const text = await mcb(['plan', '--at', 'latest']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`segments: +${activeFile.replace('.', '\\.')} bytes 0-${active.segments[1].to} in 2 streamed segment\\(s\\) \\(\\d+ bytes stored\\), last commit `));

  const inside = await mcb(['plan', '--at', inWindow, '--json']);
  assert.equal(inside.code, 0, inside.stderr);
  assert.equal(JSON.parse(inside.stdout).binlogs.at(-1).file, activeFile);
  const tooLate = await mcb(['plan', '--at', new Date(Date.now() + 3_600_000).toISOString()]);
  assert.equal(tooLate.code, 1);
  assert.match(tooLate.stderr, new RegExp(`after the last transaction in the bucket: ${activeFile.replace('.', '\\.')} is there only as streamed segments`));
});

test('restore run --at latest from the metadata center replays the segments through the applier: T1-T3, not T4', async () => {
  const datadir = path.join(world.dir, 'restore-latest');
  const r = await mcb(['run', '--at', 'latest', '--datadir', datadir]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`downloading ${activeFile.replace('.', '\\.')} from 2 streamed segment\\(s\\)`));
  assert.match(r.stdout, /replayed by: +the server's applier/);
  assert.match(r.stdout, new RegExp(`binlogs applied: .*${activeFile.replace('.', '\\.')}`));
  assert.deepEqual(await phaseRowsIn(datadir, 'd.t'), ['T1:1', 'T1:2', 'T2:3', 'T2:4', 'T3:5', 'T3:6', 'T3:7']);
});

test('restore run --at latest --from-bucket chains the segments by name, replayed by mysqlbinlog: T1-T3, not T4', async () => {
  const noMeta = world.writeConfig({
    instanceId,
    metadataPassword: 'wrong-password',
    backupConf: { is_cluster: 'off', bin_index_path: server.binlogIndex },
    sections: { 'mysql-link': server.link, restore: { replay_method: 'mysqlbinlog' } },
  });
  const plan = await mcb(['plan', '--from-bucket', '--at', 'latest', '--json'], noMeta);
  assert.equal(plan.code, 0, plan.stderr);
  const planned = JSON.parse(plan.stdout);
  assert.equal(planned.binlogs.at(-2).objectKey.startsWith('log_'), true, 'the archived file, not its lingering segment');
  assert.equal(planned.binlogs.at(-1).segments.length, 2);
  assert.doesNotMatch(plan.stderr, /not checksum-verified/);

  const datadir = path.join(world.dir, 'restore-from-bucket');
  const r = await mcb(['run', '--from-bucket', '--at', 'latest', '--datadir', datadir], noMeta);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /replayed by: +mysqlbinlog \| mysql/);
  assert.deepEqual(await phaseRowsIn(datadir, 'd.t'), ['T1:1', 'T1:2', 'T2:3', 'T2:4', 'T3:5', 'T3:6', 'T3:7']);
});
