// Bad input gets one clear line and the right exit code, and the metadata never claims what did not happen.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { fullJob } from '../../src/jobs/full.ts';
import { cloneStage } from '../../src/jobs/full-clone.ts';
import { tarStage } from '../../src/jobs/full-tar.ts';
import { uploadStage } from '../../src/jobs/full-upload.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import { createLogger } from '../../src/log/index.ts';
import { findFreePort, initializeDatadir, mysqldFromSidRoot, startMysqld } from '../../src/mysql/mysqld.ts';
import { startWorker } from '../../src/workers/index.ts';
import { servicesEnv } from '../support/env.ts';
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

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line of error, got:\n${stderr}`);
  assert.ok(!/\n\s+at /.test(stderr), 'no stack trace without --debug');
  return lines[0]!;
}

test('unknown instance id: exit 2 naming the id, nothing enqueued or written', async () => {
  const r = await runMcb(['-f', world.configFile, 'enqueue', 'full', '--instance', '424242', '--wait']);
  assert.equal(r.code, 2);
  assert.match(oneLine(r.stderr), /^mcb: unknown instance 424242: no such id in tb_instance/);
  const bad = await runMcb(['-f', world.configFile, 'enqueue', 'full', '--instance', 'abc']);
  assert.equal(bad.code, 2);
  assert.match(oneLine(bad.stderr), /instance id must be a positive whole number, got "abc"/);
  assert.equal((await world.metadata.listBackups()).length, 0);
});

test('a wrong config key: exit 2 naming key, section, file and line', async () => {
  const file = path.join(world.dir, 'typo.ini');
  writeFileSync(file, (await import('node:fs')).readFileSync(world.configFile, 'utf8').replace('full_storage_days', 'full_storage_day'));
  const r = await runMcb(['-f', file, 'backups', 'list']);
  assert.equal(r.code, 2);
  assert.match(oneLine(r.stderr), new RegExp(`\\[backup-conf\\] full_storage_day in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} line \\d+: unknown key`));
  // The seed's crontab spelling `-f=FILE` works too.
  const seedStyle = await runMcb([`-f=${file}`, 'backups', 'list']);
  assert.equal(seedStyle.code, 2);
  assert.match(oneLine(seedStyle.stderr), /full_storage_day .*unknown key/);
  const missing = await runMcb(['-f', path.join(world.dir, 'nope.ini'), 'backups', 'list']);
  assert.equal(missing.code, 2);
  assert.match(oneLine(missing.stderr), /cannot read config file .*nope\.ini: ENOENT/);
});

test('wrong metadata password: a clear refusal, never the password itself', async () => {
  const file = world.writeConfig({ metadataPassword: 'definitely-wrong-pw' });
  const r = await runMcb(['-f', file, 'backups', 'list']);
  assert.notEqual(r.code, 0);
  const line = oneLine(r.stderr);
  assert.match(line, /metadata center root@127\.0\.0\.1:\d+\/mcb_test_\w+ refused the login: wrong user or password/);
  assert.ok(!line.includes('definitely-wrong-pw'));
  await assert.rejects(startWorker(loadConfig(file), { log: createLogger() }), /refused the login/);
});

test('dead Redis: exit 1 with one line saying which Redis', async () => {
  const port = await findFreePort();
  const file = world.writeConfig({ sections: { redis: { url: `redis://127.0.0.1:${port}`, prefix: world.prefix } } });
  const r = await runMcb(['-f', file, 'enqueue', 'full', '--instance', String(world.replicaInstanceId)]);
  assert.equal(r.code, 1);
  assert.match(oneLine(r.stderr), new RegExp(`Redis at redis://127\\.0\\.0\\.1:${port} is unreachable`));
});

test('bucket missing: the worker refuses to start; a bucket lost mid-backup ends the row in Error with the reason', async () => {
  const file = world.writeConfig({ bucket: 'no-such-bucket-mcb' });
  await assert.rejects(startWorker(loadConfig(file), { log: createLogger() }), /bucket "no-such-bucket-mcb" does not exist at http:\/\/127\.0\.0\.1:\d+\/no-such-bucket-mcb/);

  const ctx = directContext(loadConfig(file), world.metadata, { jobId: 'bucket-missing' });
  const started = await fullJob.handle({ instanceId: world.replicaInstanceId }, ctx);
  assert.ok(started.started);
  if (!started.started) return;
  const payload = { instanceId: world.replicaInstanceId, backupUuid: started.backupUuid };
  await cloneStage.handle(payload, ctx);
  await tarStage.handle(payload, ctx);
  await assert.rejects(uploadStage.handle(payload, ctx), /bucket "no-such-bucket-mcb" does not exist/);
  const row = (await world.metadata.getBackup(started.backupUuid))!;
  assert.equal(row.state, 'Uploading', 'the row says where it stopped while retries remain');
  assert.equal(row.objectKey, null, 'no object recorded');
  // The worker's final-failure path: Error with the reason; the whole files stay for a retry.
  await world.metadata.markError(started.backupUuid, 'upload failed: bucket "no-such-bucket-mcb" does not exist');
  await uploadStage.onFinalFailure!(payload, ctx, new Error('x'));
  const failed = (await world.metadata.getBackup(started.backupUuid))!;
  assert.equal(failed.state, 'Error');
  assert.match(failed.info!, /bucket "no-such-bucket-mcb" does not exist/);
  assert.match(failed.info!, /\[kept .* for `mcb jobs retry`/);
  assert.ok((await import('node:fs')).readdirSync(world.backupPath).length > 0);
  // The next full backup of the instance removes them before it starts.
  const next = await fullJob.handle({ instanceId: world.replicaInstanceId }, directContext(world.config, world.metadata, { jobId: 'after-bucket-missing' }));
  assert.ok(next.started);
  assert.deepEqual((await import('node:fs')).readdirSync(world.backupPath), []);
  if (next.started) await world.metadata.markError(next.backupUuid, 'test cleanup');
});

test('clone plugin missing: a permanent error that says how to install it, and no row', async () => {
  const env = servicesEnv();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-noclone-'));
  const bin = mysqldFromSidRoot(env.sidRoot);
  await initializeDatadir(bin, path.join(dir, 'data'));
  const server = await startMysqld(bin, { datadir: path.join(dir, 'data'), port: await findFreePort(), runDir: path.join(dir, 'run') });
  try {
    const file = world.writeConfig({ instanceId: world.replicaInstanceId });
    const config = loadConfig(file);
    config.mysql = { host: '127.0.0.1', port: server.port, user: 'root', password: '', charset: 'utf8mb4' };
    config.backup.isCluster = false;
    const ctx = directContext(config, world.metadata, { jobId: 'no-clone-plugin' });
    const before = (await world.metadata.listBackups()).length;
    await assert.rejects(
      fullJob.handle({ instanceId: world.replicaInstanceId }, ctx),
      (e: unknown) => e instanceof PermanentJobError && /clone plugin is not installed on 127\.0\.0\.1:\d+; run: INSTALL PLUGIN clone SONAME 'mysql_clone\.so'/.test((e as Error).message),
    );
    assert.equal((await world.metadata.listBackups()).length, before);
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
