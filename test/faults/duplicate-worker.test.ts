// Two `mcb worker` processes started with the same tb_instance_id: the second says which worker holds the
// instance and stands by; it runs no stage while the first lives, and finishes the first one's backup after a
// kill -9 of the first one's process group.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BackupRow } from '../../src/metadata/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.ts';
import { createWorld, type World } from '../support/world.ts';

let world: World;
let queues: Queues;
const workers: WorkerProcess[] = [];

before(async () => {
  world = await createWorld();
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
});

after(async () => {
  for (const w of workers) await w.stop(5000).catch(() => undefined);
  await queues?.close();
  await queues?.connection.quit();
  await world?.cleanup();
});

async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v) return v;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('a second worker of the same instance names the first and stands by, runs no stage beside it, and finishes its backup after it is killed', async () => {
  const configFile = world.writeConfig({ backupConf: { stage_lock_seconds: '2' } });
  // Started together: whichever takes the instance first is "first"; the two others stand by.
  for (const name of ['a', 'b', 'c']) workers.push(spawnWorker(configFile, path.join(world.dir, `${name}.log`)));
  const standsBy = (w: WorkerProcess) => w.events().some((e) => e.event === 'worker.standby');
  const first = await until(async () => {
    const ready = workers.filter((w) => w.events().some((e) => e.event === 'worker.ready'));
    return ready.length === 1 && workers.filter(standsBy).length === 2 ? ready[0] : undefined;
  }, 'one worker ready and two standing by');
  const [second, third] = workers.filter((w) => w !== first);
  const standby = second!.events().find((e) => e.event === 'worker.standby')!;
  const holder = standby.holder as { host: string; pid: number };
  assert.equal(holder.pid, first.pid, 'the standby names the running worker’s pid');
  assert.equal(holder.host, os.hostname(), 'and its host');
  assert.match(standby.msg, new RegExp(`pid ${first.pid} on host ${os.hostname()}`));

  const queue = queues.forInstance(world.replicaInstanceId);
  await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId: 'dup-full', attempts: 1 });
  const running = await until(async () => {
    const job = await queue.getJob('dup-full');
    if (job?.failedReason) throw new Error(`start job failed: ${job.failedReason}`);
    const uuid = (job?.returnvalue as { backupUuid?: string } | undefined)?.backupUuid;
    const row = uuid ? await world.metadata.getBackup(uuid) : undefined;
    return row && ['Tar', 'Uploading', 'Clearing', 'Completed'].includes(row.state) ? row : undefined;
  }, 'the first worker to reach tar');
  assert.notEqual(running.state, 'Completed', 'the backup was still running when the first worker was killed');
  const killedAt = Date.now();
  await first.killGroup();

  const { successor, takeover } = await until(async () => {
    for (const w of [second!, third!]) {
      const e = w.events().find((x) => x.event === 'worker.takeover');
      if (e) return { successor: w, takeover: e };
    }
    return undefined;
  }, 'a standby to take over', 30_000);
  const idle = successor === second ? third! : second!;
  const done: BackupRow = await until(async () => {
    const row = await world.metadata.getBackup(running.backupUuid);
    return row && ['Completed', 'Error'].includes(row.state) ? row : undefined;
  }, 'the backup to end');
  assert.equal(done.state, 'Completed', done.info ?? '');

  const successorStages = successor.events().filter((e) => e.event === 'stage.start');
  assert.ok(successorStages.length > 0, 'the standby finished the backup');
  assert.ok(successorStages.every((e) => e.time >= killedAt && e.time >= takeover.time), 'the standby ran no stage while the first worker lived');
  assert.equal(successor.events().filter((e) => e.event === 'worker.standby').length, 1, 'one line says why it waited');
  assert.ok(!idle.events().some((e) => e.event === 'worker.ready' || e.event === 'stage.start'), 'the other standby still waits and ran nothing');
  // A standby holds nothing: SIGTERM ends it at once (the default action, before a worker exists).
  await idle.stop(5000);
  assert.ok(idle.child.signalCode === 'SIGTERM' || idle.child.exitCode === 0, `standby stopped by SIGTERM: ${idle.child.exitCode} ${idle.child.signalCode}`);
  const firstStages = first.events().filter((e) => e.event === 'stage.start').map((e) => e.stage);
  assert.ok(firstStages.includes('clone') && firstStages.includes('tar'), `the first worker ran clone and tar: ${firstStages.join(', ')}`);

  assert.equal(await successor.stop(), 0, 'the standby that took over stops cleanly');
  await assertBackupInvariants(world, { completed: 1 });
});
