// Client-side encryption end to end against the real services: a plain full backup, then an era under key A (binlogs
// gzip + encrypted, a full), then key B (binlogs encrypted uncompressed, a full). Restores read across the eras
// with key_file = B and key_files = A: to a time inside A's era, to latest (B), and from the bucket alone starting
// at the plain full with A's binlogs after it. Only B configured, a flipped byte, a truncated object and two
// chunks swapped each fail with one line naming the object and the key id, exit code 1 and no datadir left.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { HEADER_BYTES, parseKeyHex } from '../../src/crypto/index.ts';
import { binlogJob } from '../../src/jobs/binlog.ts';
import { verifyJob } from '../../src/jobs/verify.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { formatInZone, UTC } from '../../src/time/zone.ts';
import { servicesEnv } from '../support/env.ts';
import { directContext } from '../support/context.ts';
import { createWorld, rootConnection, type World } from '../support/world.ts';
import { runMcb, type CliResult } from '../support/spawn.ts';
import { phaseRowsIn } from '../support/restored.ts';
import { makeCompletedFullBackup } from '../support/backup.ts';

const SECRET = 'xyzzy-secret-row-value-4711';
const RECORD = 2 ** 20 + 16;

let world: World;
let source: mysql.Connection;
let db: string;
const hex = { A: randomBytes(32).toString('hex'), B: randomBytes(32).toString('hex') };
const ids = { A: parseKeyHex(hex.A, 'A').id, B: parseKeyHex(hex.B, 'B').id };
let iniPlain: string;
let iniA: string;
let iniBA: string;
let iniB: string;
let targetInA: string;
let targetBeforeFullA: string;
const fulls: Record<'plain' | 'A' | 'B', BackupRow | undefined> = { plain: undefined, A: undefined, B: undefined };

before(async () => {
  world = await createWorld();
  const keyFile = (name: 'A' | 'B') => {
    const file = path.join(world.dir, `key-${name}.hex`);
    writeFileSync(file, `${hex[name]}\n`, { mode: 0o600 });
    return file;
  };
  const [a, b] = [keyFile('A'), keyFile('B')];
  const backupConf = { is_cluster: 'off', max_rpo_minutes: '100000' };
  iniPlain = world.writeConfig({ node: 'source', backupConf });
  iniA = world.writeConfig({ node: 'source', backupConf: { ...backupConf, binlog_compression: 'gzip' }, sections: { encryption: { key_file: a } } });
  iniBA = world.writeConfig({ node: 'source', backupConf, sections: { encryption: { key_file: b, key_files: a } } });
  iniB = world.writeConfig({ node: 'source', backupConf, sections: { encryption: { key_file: b } } });
  source = await rootConnection(servicesEnv().source);
  db = `enc_${world.id}`;
});
after(async () => {
  await source?.query(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
  await source?.end();
  await world?.cleanup();
});

async function insert(phase: string, ids: number[]): Promise<void> {
  for (const id of ids) await source.query(`INSERT INTO ${db}.t VALUES (?, ?, ?)`, [id, phase, SECRET]);
}

function fullBackup(ini: string, name: string): Promise<BackupRow> {
  return makeCompletedFullBackup(world, `enc-full-${name}-${world.id}`, { config: loadConfig(ini), instanceId: world.sourceInstanceId });
}

async function archiveBinlogs(ini: string, jobId: string): Promise<void> {
  await source.query('FLUSH BINARY LOGS');
  const r = await binlogJob.handle({ instanceId: world.sourceInstanceId }, directContext(loadConfig(ini), world.metadata, { jobId: `${jobId}-${world.id}` }));
  assert.ok(r.archived.length > 0);
}

const nowTarget = () => `${formatInZone(new Date(), UTC)}Z`;

function restore(ini: string, args: string[]): Promise<CliResult> {
  return runMcb(['-f', ini, 'restore', ...args], { timeoutMs: 300_000, env: { MCB_SID_ROOT: servicesEnv().sidRoot } });
}

function assertNoKeyIn(...outputs: string[]): void {
  for (const text of outputs) for (const k of Object.values(hex)) assert.ok(!text.includes(k), 'a key appears in the output');
}

async function getObject(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await world.minio.getObject(world.bucket, key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

test('set-up: a plain full, an era under key A (gzip binlogs), then key B, rows in each', async () => {
  await source.query(`CREATE DATABASE ${db}`);
  await source.query(`CREATE TABLE ${db}.t (id int PRIMARY KEY, phase varchar(10), secret varchar(64))`);
  // 4 MB that do not compress: every archive spans several 1 MiB chunks, so chunks can be swapped.
  await source.query(`CREATE TABLE ${db}.filler (id int PRIMARY KEY, b longblob)`);
  for (let i = 0; i < 16; i++) await source.query(`INSERT INTO ${db}.filler VALUES (?, ?)`, [i, randomBytes(256 * 1024)]);
  await insert('T0', [1]);
  fulls.plain = await fullBackup(iniPlain, 'plain');
  await sleep(1100);
  await insert('T1', [2]);
  await sleep(1100);
  targetBeforeFullA = nowTarget();
  await sleep(1100);
  await archiveBinlogs(iniA, 'enc-binlog-a1');
  fulls.A = await fullBackup(iniA, 'a');
  await insert('T2', [3]);
  await archiveBinlogs(iniA, 'enc-binlog-a2');
  await sleep(1100);
  targetInA = nowTarget();
  await sleep(1100);
  await insert('T3', [4]);
  await archiveBinlogs(iniBA, 'enc-binlog-b1');
  fulls.B = await fullBackup(iniBA, 'b');
  await insert('T4', [5]);
  await archiveBinlogs(iniBA, 'enc-binlog-b2');
});

test('objects are named .enc, carry their key id (row and object), and hold no plaintext', async () => {
  assert.match(fulls.plain!.objectKey!, /^bak_\d+_\d{14}\.tar\.gz$/);
  assert.equal(fulls.plain!.encryptionKeyId, null);
  assert.match(fulls.A!.objectKey!, /^bak_\d+_\d{14}\.tar\.gz\.enc$/);
  assert.equal(fulls.A!.encryptionKeyId, ids.A);
  assert.equal(fulls.B!.encryptionKeyId, ids.B);
  const binlogs = await world.metadata.listBackups({ instanceId: world.sourceInstanceId, type: 'binlog', states: ['Completed'], limit: 1000 });
  const underA = binlogs.filter((b) => b.encryptionKeyId === ids.A);
  const underB = binlogs.filter((b) => b.encryptionKeyId === ids.B);
  assert.ok(underA.length >= 2 && underB.length >= 2, `binlogs under A: ${underA.length}, under B: ${underB.length}`);
  for (const b of underA) assert.match(b.objectKey!, /^log_\d+_mysql-bin\.\d+\.gz\.enc$/);
  for (const b of underB) assert.match(b.objectKey!, /^log_\d+_mysql-bin\.\d+\.enc$/);
  const stat = await world.minio.statObject(world.bucket, fulls.A!.objectKey!);
  assert.equal(stat.metaData['mcb-key-id'], ids.A);

  const stored = await getObject(fulls.A!.objectKey!);
  assert.notEqual(stored.subarray(0, 2).toString('hex'), '1f8b', 'the stored full backup is not readable as gzip');
  assert.equal(stored.subarray(0, 8).toString('latin1'), 'MCBENC01');
  // The uncompressed binlogs under B hold the row's bytes once decrypted (mcb storage get), never as stored.
  let found = 0;
  for (const b of underB) {
    assert.equal((await getObject(b.objectKey!)).indexOf(SECRET), -1, `${b.objectKey} holds the row's bytes as stored`);
    const out = path.join(world.dir, `${b.objectKey}.plain`);
    const got = await runMcb(['-f', iniBA, 'storage', 'get', b.objectKey!, '--out', out]);
    assert.equal(got.code, 0, got.stderr);
    if (readFileSync(out).includes(SECRET)) found++;
  }
  assert.ok(found > 0, 'a decrypted binlog of B holds the row (the check above could fail)');
  const tarGz = path.join(world.dir, 'full-a.tar.gz');
  const got = await runMcb(['-f', iniBA, 'storage', 'get', fulls.A!.objectKey!, '--out', tarGz]);
  assert.equal(got.code, 0, got.stderr);
  assert.equal(readFileSync(tarGz).subarray(0, 2).toString('hex'), '1f8b', 'decrypted, the object is the gzip a plain backup stores');
  const ls = await runMcb(['-f', iniBA, 'storage', 'ls', '--prefix', `bak_${world.sourceInstanceId}_`, '--json']);
  assert.deepEqual(JSON.parse(ls.stdout).map((o: { keyId: string }) => o.keyId).sort(), ['', ids.A, ids.B].sort());
  assertNoKeyIn(got.stdout, got.stderr, ls.stdout);
});

test('restore --at a time in A\'s era with key_file = B and key_files = A: A\'s full and binlogs', async () => {
  const datadir = path.join(world.dir, 'restore-in-a');
  const r = await restore(iniBA, ['run', '--instance', String(world.sourceInstanceId), '--at', targetInA, '--datadir', datadir, '--json']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.equal(JSON.parse(r.stdout).fullObject, fulls.A!.objectKey);
  assert.deepEqual(await phaseRowsIn(datadir, `${db}.t`), ['T0:1', 'T1:2', 'T2:3']);
  assertNoKeyIn(r.stdout, r.stderr);
});

test('restore --at latest: B\'s full and binlogs', async () => {
  const datadir = path.join(world.dir, 'restore-latest');
  const r = await restore(iniBA, ['run', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--datadir', datadir, '--json']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.equal(JSON.parse(r.stdout).fullObject, fulls.B!.objectKey);
  assert.deepEqual(await phaseRowsIn(datadir, `${db}.t`), ['T0:1', 'T1:2', 'T2:3', 'T3:4', 'T4:5']);
});

test('--from-bucket: the plain full, then binlogs encrypted under A (eras side by side)', async () => {
  const datadir = path.join(world.dir, 'restore-bucket');
  const noMeta = world.writeConfig({
    node: 'source',
    metadataPassword: 'wrong-password',
    backupConf: { is_cluster: 'off' },
    sections: { encryption: { key_file: path.join(world.dir, 'key-B.hex'), key_files: path.join(world.dir, 'key-A.hex') } },
  });
  const r = await restore(noMeta, ['run', '--from-bucket', '--instance', String(world.sourceInstanceId), '--at', targetBeforeFullA, '--datadir', datadir, '--json']);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const result = JSON.parse(r.stdout);
  assert.equal(result.fullObject, fulls.plain!.objectKey);
  const binlogs = await world.metadata.listBackups({ instanceId: world.sourceInstanceId, type: 'binlog', states: ['Completed'], limit: 1000 });
  const applied = binlogs.filter((b) => result.binlogsApplied.includes(b.binlogFile));
  assert.ok(applied.length > 0 && applied.every((b) => b.encryptionKeyId === ids.A && b.objectKey!.endsWith('.gz.enc')), `applied ${result.binlogsApplied.join(', ')}`);
  assert.deepEqual(await phaseRowsIn(datadir, `${db}.t`), ['T0:1', 'T1:2']);
});

test('only key B configured, or no key: a restore needing A (or B) fails before anything is written, naming the key', async () => {
  const datadir = path.join(world.dir, 'restore-only-b');
  const r = await restore(iniB, ['run', '--instance', String(world.sourceInstanceId), '--at', targetInA, '--datadir', datadir]);
  assert.equal(r.code, 1, r.stdout);
  const last = r.stderr.trim().split('\n').pop()!;
  assert.ok(last.includes(fulls.A!.objectKey!), last);
  assert.ok(last.includes(`is encrypted with key ${ids.A}, which is not configured (configured keys: ${ids.B})`), last);
  assert.ok(!existsSync(datadir), 'no datadir created');
  assertNoKeyIn(r.stdout, r.stderr);
  // No [encryption] at all: the same refusal, saying so.
  const none = await restore(iniPlain, ['run', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--datadir', datadir]);
  assert.equal(none.code, 1, none.stdout);
  assert.match(none.stderr.trim().split('\n').pop()!, new RegExp(`${fulls.B!.objectKey!.replace(/\./g, '\\.')} is encrypted with key ${ids.B}, which is not configured \\(no encryption key is configured`));
  assert.ok(!existsSync(datadir), 'no datadir created');
});

/** Stores `damaged` in place of the object of full B for one restore, which must fail with `expected` and leave nothing. */
async function restoreDamaged(name: string, damage: (stored: Buffer) => Buffer, expected: RegExp): Promise<void> {
  const key = fulls.B!.objectKey!;
  const original = await getObject(key);
  assert.ok(original.length > HEADER_BYTES + 3 * RECORD, `the object spans several chunks (${original.length} bytes)`);
  await world.minio.putObject(world.bucket, key, damage(Buffer.from(original)));
  try {
    const datadir = path.join(world.dir, `restore-${name}`);
    const r = await restore(iniBA, ['run', '--instance', String(world.sourceInstanceId), '--at', 'latest', '--datadir', datadir]);
    assert.equal(r.code, 1, `${name}: ${r.stdout}`);
    const last = r.stderr.trim().split('\n').pop()!;
    assert.match(last, expected, name);
    assert.ok(last.includes(key) && last.includes(`key ${ids.B}`), `${name}: ${last}`);
    assert.ok(!existsSync(datadir), `${name}: the datadir the restore created was removed`);
    assert.deepEqual(readdirSync(world.dir).filter((f) => f.startsWith('.mcb-restore-')), [], `${name}: no work directory left`);
    assertNoKeyIn(r.stdout, r.stderr);
  } finally {
    await world.minio.putObject(world.bucket, key, original, original.length, { 'mcb-key-id': ids.B });
  }
}

test('a flipped byte, a truncated object and two chunks swapped: one line naming the object and key, nothing left', async () => {
  await restoreDamaged('flipped', (b) => ((b[HEADER_BYTES + RECORD + 500]! ^= 0x40), b), /fails authentication at chunk 1 .*a byte was changed/);
  await restoreDamaged('truncated', (b) => b.subarray(0, HEADER_BYTES + 2 * RECORD), /is truncated after chunk 1 \(no final chunk\)/);
  await restoreDamaged(
    'swapped',
    (b) => Buffer.concat([b.subarray(0, HEADER_BYTES + RECORD), b.subarray(HEADER_BYTES + 2 * RECORD, HEADER_BYTES + 3 * RECORD), b.subarray(HEADER_BYTES + RECORD, HEADER_BYTES + 2 * RECORD), b.subarray(HEADER_BYTES + 3 * RECORD)]),
    /fails authentication at chunk 1 .*chunks were moved/,
  );
});

test('the verify job restores the encrypted newest full and marks it ok', async () => {
  process.env.MCB_SID_ROOT = servicesEnv().sidRoot;
  const config: Config = loadConfig(iniBA);
  const ok = await verifyJob.handle(verifyJob.parse({ instanceId: world.sourceInstanceId }), directContext(config, world.metadata, { jobId: `enc-verify-${world.id}` }));
  assert.equal(ok.state, 'ok', ok.reason);
  assert.equal((await world.metadata.getBackup(fulls.B!.backupUuid))!.verifyState, 'ok');
});
