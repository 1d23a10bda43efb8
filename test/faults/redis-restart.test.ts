// Redis restarted under running daemons (a private redis-server on a spare port, stopped and started for real):
// every daemon reconnects by itself, the producer puts back the schedules a Redis without persistence lost, and a
// backup whose stage jobs went with the old Redis is re-armed from its row's stage and completes.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.ts';
import { closeRedis, pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { schedulerId } from '../../src/producer/index.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { logEvents, waitFor, waitForLogEvent, withLogsOnFailure } from '../support/poll.ts';
import { sparePort, startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startMcb, type Daemon } from '../support/spawn.ts';
import { createWorld, type World } from '../support/world.ts';

let world: World;
let redis: RedisServer;
let queues: Queues;
let configFile: string;
let daemons: Daemon[] = [];
/** One worker for both tests: it lives through both restarts. */
let worker: Daemon;

before(async () => {
  world = await createWorld();
  redis = await startRedisServer({ appendonly: false });
  configFile = world.writeConfig({
    sections: {
      redis: { url: redis.url, prefix: world.prefix },
      schedule: { full: '*/2 * * * * *', sync_interval_seconds: '60' },
    },
  });
  const config = loadConfig(configFile);
  const connection = redisConnection(config, 'daemon');
  await pingRedis(connection, config.redis.url);
  queues = new Queues(config, connection);
  worker = startMcb(['-f', configFile, 'worker'], path.join(world.dir, 'worker.log'));
});

/** Stops what a test started, also when it failed half-way (a worker left running would keep the role). */
async function stopDaemons(): Promise<void> {
  await Promise.all(daemons.map((d) => d.stop(10_000)));
  daemons = [];
}

after(async () => {
  await stopDaemons();
  await worker?.stop(10_000);
  await queues?.close().catch(() => undefined);
  if (queues) await closeRedis(queues.connection);
  await redis?.destroy();
  await world?.cleanup();
});

const logs = () => [worker.logFile, ...daemons.map((d) => d.logFile)];

function start(args: string[], name: string): Daemon {
  const daemon = startMcb(['-f', configFile, ...args], path.join(world.dir, `${name}.log`));
  daemons.push(daemon);
  return daemon;
}

/** Stops Redis like a crash (nothing on disk: every key is lost) and starts it again after `downMs`. */
async function restartRedis(downMs: number): Promise<void> {
  await redis.stop('SIGKILL');
  await sleep(downMs);
  await redis.start();
}

const replicaQueue = () => queues.forInstance(world.replicaInstanceId);

test('Redis restarted while idle, losing every key: worker, producer and server reconnect; schedules come back; a scheduled and an ad-hoc full backup run', async (t) => {
  t.after(stopDaemons);
  await withLogsOnFailure(logs, async () => {
    // No schedule for the backed-up instance yet: the first scheduled full must come from a sync after the restart.
    await world.metadata.setCloneEnabled(world.replicaInstanceId, false);
    const producer = start(['producer'], 'producer-idle');
    const port = await sparePort();
    const server = start(['server', '--listen', `127.0.0.1:${port}`], 'server-idle');
    await waitForLogEvent(worker.logFile, 'worker.ready');
    await waitForLogEvent(producer.logFile, 'schedule.synced');
    await waitForLogEvent(server.logFile, 'server.listening');
    const sourceQueue = queues.forInstance(world.sourceInstanceId);
    assert.ok((await sourceQueue.getJobSchedulersCount()) > 0, 'the producer scheduled the enabled instance');

    // Down longer than the three reconnect attempts that used to end the connections for good.
    await queues.connection.set(`${world.prefix}:marker`, 'before the restart');
    await world.metadata.setCloneEnabled(world.replicaInstanceId, true);
    await restartRedis(2000);
    assert.equal(await queues.connection.get(`${world.prefix}:marker`), null, 'the restarted Redis kept nothing');

    // The producer syncs as soon as Redis is back (sync_interval_seconds is 60): both instances get their schedules.
    await waitForLogEvent(producer.logFile, 'schedule.resync');
    await waitFor('schedules of both instances', async () =>
      (await sourceQueue.getJobSchedulersCount()) > 0 && (await replicaQueue().getJobSchedulersCount()) > 0 ? true : undefined,
    );
    const health = await waitFor('server /healthz with Redis ok', async () => {
      const body = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { ok: boolean; redis: string };
      return body.ok ? body : undefined;
    });
    assert.equal(health.redis, 'ok');

    // The worker took the scheduled full (every 2 s); stop the schedule there so it does not start one after another.
    const scheduled = await waitFor('a scheduled full backup row', async () => (await world.metadata.listBackups({ instanceId: world.replicaInstanceId, type: 'full' }))[0]);
    await producer.stop();
    await replicaQueue().removeJobScheduler(schedulerId('full', world.replicaInstanceId));
    const done = await waitFor('the scheduled backup to end', () => finalRow(scheduled.backupUuid), 120_000);
    assert.equal(done.state, 'Completed', done.info ?? '');
    await waitFor('no full backup running', async () => (await world.metadata.runningFullBackups(world.replicaInstanceId)).length === 0);

    // An ad-hoc full, as `mcb enqueue full` adds it.
    await replicaQueue().add('full', { instanceId: world.replicaInstanceId }, { jobId: 'full-adhoc-after-restart', attempts: 1 });
    const adhocUuid = await waitFor('the ad-hoc backup started', async () => {
      const job = await replicaQueue().getJob('full-adhoc-after-restart');
      if (job?.failedReason) throw new Error(`the ad-hoc full failed: ${job.failedReason}`);
      return (job?.returnvalue as { backupUuid?: string } | undefined)?.backupUuid;
    });
    const adhocDone = await waitFor('the ad-hoc backup to end', () => finalRow(adhocUuid), 120_000);
    assert.equal(adhocDone.state, 'Completed', adhocDone.info ?? '');

    // Each daemon said it lost Redis and that it was back; the producer's failed syncs stopped.
    for (const d of [worker, server]) await waitForLogEvent(d.logFile, 'redis.reconnected');
    const producerEvents = logEvents(producer.logFile).map((e) => e.event);
    assert.ok(producerEvents.lastIndexOf('schedule.synced') > producerEvents.lastIndexOf('schedule.sync-failed'), 'the last sync succeeded');
    assert.equal(await server.stop(), 0);
    await assertBackupInvariants(world, { completed: 2 });
  });
});

test('Redis restarted in the middle of a stage, losing the chain: the worker re-arms it from the row and the backup completes', async (t) => {
  t.after(stopDaemons);
  await withLogsOnFailure(logs, async () => {
    const known = new Set((await world.metadata.listBackups({ instanceId: world.replicaInstanceId, type: 'full' })).map((r) => r.backupUuid));
    await replicaQueue().add('full', { instanceId: world.replicaInstanceId }, { jobId: 'full-mid-stage', attempts: 1 });
    const row = await waitFor('the new backup in a stage', async () => {
      const rows = await world.metadata.listBackups({ instanceId: world.replicaInstanceId, type: 'full' });
      return rows.find((r) => !known.has(r.backupUuid) && ['Doing', 'Done', 'Tar'].includes(r.state));
    });
    await restartRedis(1000);
    assert.equal(await replicaQueue().getJob(`${row.backupUuid}-cleanup`), undefined, 'the chain went with the old Redis');

    const rearmed = await waitForLogEvent(worker.logFile, 'chain.rearmed', { where: (e) => e.backupUuid === row.backupUuid });
    assert.ok(['clone', 'tar', 'upload', 'cleanup'].includes(String(rearmed.from)), `re-armed from ${rearmed.from}`);
    const done = await waitFor('the interrupted backup to end', () => finalRow(row.backupUuid), 120_000);
    assert.equal(done.state, 'Completed', done.info ?? '');
    assert.equal(await worker.stop(), 0, 'the worker stops cleanly after both restarts');
    await assertBackupInvariants(world, { completed: 3 });
  });
});

async function finalRow(backupUuid: string) {
  const row = await world.metadata.getBackup(backupUuid);
  return row && ['Completed', 'Error'].includes(row.state) ? row : undefined;
}
