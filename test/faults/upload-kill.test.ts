// A worker killed with SIGKILL in the middle of an upload (a real `mcb worker` process group, its S3 traffic held
// by a TCP proxy after some parts were sent, so the kill lands mid-multipart-upload): once the dead worker's stage
// lock expires, a new worker finishes the same backup, and neither the unfinished multipart upload nor a partial
// object is left behind.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BackupRow } from '../../src/metadata/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { servicesEnv } from '../support/env.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { mcbBin } from '../support/spawn.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { waitForBackupOfJob } from '../support/backup.ts';
import { createWorld, type World } from '../support/world.ts';

const MiB = 1024 * 1024;

let world: World;
let proxy: TcpProxy;
let queues: Queues;
const workers: ChildProcess[] = [];

before(async () => {
  world = await createWorld();
  const s3 = servicesEnv().s3;
  proxy = await startTcpProxy(s3.endPoint, s3.port);
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
});
after(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) killGroup(w, 'SIGKILL');
  proxy?.up();
  await queues?.close();
  await queues?.connection.quit();
  await proxy?.close();
  await world?.cleanup();
});

/** `mcb worker` in a process group of its own, as systemd runs it. */
function startWorkerProcess(configFile: string, name: string): { child: ChildProcess; logFile: string; exited: Promise<unknown> } {
  const logFile = path.join(world.dir, `${name}.log`);
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, [mcbBin, '-f', configFile, 'worker'], { detached: true, stdio: ['ignore', out, out], env: { ...process.env, MCB_LOG_LEVEL: 'info' } });
  workers.push(child);
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return { child, logFile, exited };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // already gone
  }
}

function ossSection(extra: Record<string, string>): Record<string, string> {
  const s3 = servicesEnv().s3;
  return { endpoint: `${s3.endPoint}:${proxy.port}`, access_key: s3.accessKey, secret_key: s3.secretKey, secure: 'off', ...extra };
}

async function unfinishedUploads(key: string): Promise<number> {
  const page = await world.minio.listIncompleteUploadsQuery(world.bucket, key, '', '', '');
  return page.uploads.filter((u) => u.key === key).length;
}

async function rowOf(jobId: string, until: (row: BackupRow) => boolean, timeoutMs = 90_000): Promise<BackupRow> {
  return waitForBackupOfJob(queues.forInstance(world.replicaInstanceId), world.metadata, jobId, until, timeoutMs);
}

test('worker kill -9 during upload: a new worker finishes the same backup; no unfinished upload or partial object is left', async () => {
  // Uncompressed, the archive is many 5 MiB parts; a 2 s stage lock lets the next worker notice the dead one soon.
  const configFile = world.writeConfig({
    backupConf: { compression: 'none', stage_lock_seconds: '2', stage_attempts: '3' },
    sections: { oss: ossSection({ part_size_mb: '5' }) },
  });
  const held = proxy.after(12 * MiB, 'stall');
  const first = startWorkerProcess(configFile, 'worker-1');
  await queues.forInstance(world.replicaInstanceId).add('full', { instanceId: world.replicaInstanceId }, { jobId: 'kill-upload', attempts: 1 });
  await held;

  const uploading = await rowOf('kill-upload', () => true);
  assert.equal(uploading.state, 'Uploading');
  assert.equal(await unfinishedUploads(uploading.backupName), 1, 'the kill lands in the middle of a multipart upload');
  killGroup(first.child, 'SIGKILL');
  await first.exited;
  proxy.up();

  const second = startWorkerProcess(configFile, 'worker-2');
  try {
    const row = await rowOf('kill-upload', (r) => r.state === 'Completed' || r.state === 'Error');
    assert.equal(row.state, 'Completed', row.info ?? '');
    assert.equal(row.backupUuid, uploading.backupUuid, 'the same backup, finished');
    assert.match(readFileSync(second.logFile, 'utf8'), /"event":"upload.incomplete-removed"/, 'the new attempt aborted the dead worker\'s upload');
    assert.equal(await unfinishedUploads(row.backupName), 0);
  } finally {
    killGroup(second.child, 'SIGTERM');
    await second.exited;
  }
  await assertBackupInvariants(world, { completed: 1 });
});
