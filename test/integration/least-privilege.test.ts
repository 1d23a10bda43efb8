// Least privilege on the DB host, against the real replica MySQL, metadata center and S3 server: paths derived from
// metadata rows and object keys cannot make a job delete outside backup_path or write outside its directory, the
// backup_path mcb creates is private, and a clone.ini others can read while it holds secrets is warned about.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig, requireOss } from '../../src/config/index.ts';
import { cloneStage } from '../../src/jobs/full-clone.ts';
import { fullJob } from '../../src/jobs/full.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import { candidatesFromBucket } from '../../src/restore/bucket.ts';
import { MinioObjectStore } from '../../src/storage/index.ts';
import { UTC } from '../../src/time/zone.ts';
import { captureLog } from '../support/log-capture.ts';
import { directContext } from '../support/context.ts';
import { runMcb } from '../support/spawn.ts';
import { createWorld, type World } from '../support/world.ts';

let world: World;
before(async () => {
  world = await createWorld();
});
after(async () => {
  await world?.cleanup();
});

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A directory outside backup_path with a file in it that nothing may remove. */
function victim(name: string): string {
  const dir = path.join(world.dir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'keep'), 'precious');
  return dir;
}

test('failed rows pointing outside backup_path are not swept, and a row edited to point outside is refused by the clone stage', async () => {
  const backupPath = path.join(world.dir, 'created-by-mcb');
  const config = loadConfig(world.writeConfig({ backupConf: { backup_path: backupPath } }));
  victim('victim');
  // Rows a DBA (or an attacker) edited: another backup_path, and a backup_name that climbs out of backup_path.
  for (const [n, backupPathOfRow, backupName] of [
    [1, world.dir, 'victim.tar.gz'],
    [2, backupPath, '..'],
  ] as const) {
    await world.metadata.createBackup({
      backupUuid: `edited-row-${n}-${world.id}`.padEnd(36, '0').slice(0, 36),
      tbInstanceId: world.replicaInstanceId,
      state: 'Error',
      backupType: 'full',
      startTime: new Date(Date.now() - n * 60_000),
      backupPath: backupPathOfRow,
      backupName,
      info: 'edited by hand',
    });
  }
  const captured = captureLog();
  const ctx = { ...directContext(config, world.metadata, { jobId: 'least-privilege-1' }), log: captured.log };
  const started = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  assert.ok(started.started, 'the full backup starts all the same');
  if (!started.started) return;
  try {
    assert.equal(statSync(backupPath).mode & 0o777, 0o700, 'the backup_path mcb creates is private');
    const refusals = captured.named('full.sweep-refused').map((e) => e.msg);
    assert.equal(refusals.length, 2, JSON.stringify(refusals));
    assert.ok(refusals.some((m) => new RegExp(`^files of failed backup victim\\.tar\\.gz not removed: refusing to delete ${escape(path.join(world.dir, 'victim'))}: outside backup_path ${escape(backupPath)}$`).test(m)), refusals.join('\n'));
    assert.ok(refusals.some((m) => new RegExp(`^files of failed backup \\.\\. not removed: refusing to delete ${escape(world.dir)}: outside backup_path `).test(m)), refusals.join('\n'));
    assert.ok(existsSync(path.join(world.dir, 'victim', 'keep')) && existsSync(world.configFile), 'nothing outside backup_path was removed');

    // The started row, edited to another backup_path where a directory of its name holds data.
    const row = (await world.metadata.getBackup(started.backupUuid))!;
    const hijacked = victim(row.backupName.replace(/\.tar\.gz$/, ''));
    await world.metadata.update(started.backupUuid, { backupPath: world.dir });
    const payload = { instanceId: world.replicaInstanceId, backupUuid: started.backupUuid };
    await assert.rejects(cloneStage.handle(payload, ctx), (err: Error) => {
      assert.ok(err instanceof PermanentJobError, `${err.name}: ${err.message}`);
      assert.equal(err.message, `backup ${row.backupName}: refusing to delete ${hijacked}: outside backup_path ${backupPath}`);
      return true;
    });
    assert.ok(existsSync(path.join(hijacked, 'keep')), 'the directory the edited row names was not touched');
  } finally {
    await world.metadata.markError(started.backupUuid, 'test cleanup');
  }
});

test('--from-bucket refuses a binlog object whose name would leave the restore directory, naming the key', async () => {
  const oss = requireOss(world.config);
  const store = new MinioObjectStore(oss, world.bucket);
  const instanceId = 4242;
  const key = `log_${instanceId}_../../etc/cron.d/mysql-bin.000001`;
  await world.minio.putObject(world.bucket, key, Buffer.from('not a binlog'));
  await assert.rejects(candidatesFromBucket(store, instanceId, UTC), (err: Error) => {
    assert.equal(err.message, `object "${key}": the file name "../../etc/cron.d/mysql-bin.000001" contains a path separator; refusing to use it as a local file name`);
    return true;
  });
});

test('the CLI warns once on stderr when clone.ini holds secrets and others can read it, not when it is 0600', async () => {
  const file = path.join(world.dir, 'readable.ini');
  copyFileSync(world.configFile, file);
  chmodSync(file, 0o644);
  const args = ['-f', file, 'backups', 'list', '--instance', String(world.replicaInstanceId)];
  const readable = await runMcb(args);
  assert.equal(readable.code, 0, readable.stderr);
  const warnings = readable.stderr.split('\n').filter((l) => l.startsWith('warning: '));
  assert.equal(warnings.length, 1, readable.stderr);
  assert.match(warnings[0]!, new RegExp(`^warning: ${escape(file)} is readable by others \\(mode 0644\\) and holds secrets \\(\\[mysql-link\\] password, .*\\[oss\\] secret_key\\): chmod 600 ${escape(file)}$`));
  chmodSync(file, 0o600);
  const private_ = await runMcb(args);
  assert.equal(private_.code, 0, private_.stderr);
  assert.doesNotMatch(private_.stderr, /readable by/);
});
