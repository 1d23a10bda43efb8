// SIGTERM while Redis is unreachable (a private redis-server on a spare port, stopped for real): the worker and
// the producer exit within shutdown_grace_seconds instead of waiting for Redis for ever; a stage that was running
// goes back to the queue when its job lock expires, and the next worker finishes the backup.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import { closeRedis, pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startWorker } from '../../src/workers/index.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { waitFor, waitForLogEvent, withLogsOnFailure } from '../support/poll.ts';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startMcb, type Daemon } from '../support/spawn.ts';
import { createWorld, type World } from '../support/world.ts';

const graceSeconds = 3;
let world: World;
let redis: RedisServer;
let queues: Queues;
let configFile: string;
let daemons: Daemon[] = [];

before(async () => {
  world = await createWorld();
  // Append-only: what was in Redis when it went away is there when it comes back, as on a production Redis.
  redis = await startRedisServer({ appendonly: true });
  configFile = world.writeConfig({
    sections: { redis: { url: redis.url, prefix: world.prefix } },
    backupConf: { shutdown_grace_seconds: String(graceSeconds), stage_lock_seconds: '2' },
  });
  const config = loadConfig(configFile);
  const connection = redisConnection(config, 'daemon');
  await pingRedis(connection, config.redis.url);
  queues = new Queues(config, connection);
});

after(async () => {
  await stopDaemons();
  await queues?.close().catch(() => undefined);
  if (queues) await closeRedis(queues.connection);
  await redis?.destroy();
  await world?.cleanup();
});

async function stopDaemons(): Promise<void> {
  await Promise.all(daemons.map((d) => d.stop(10_000)));
  daemons = [];
}

const logs = () => daemons.map((d) => d.logFile);

function start(args: string[], name: string): Daemon {
  const daemon = startMcb(['-f', configFile, ...args], path.join(world.dir, `${name}.log`));
  daemons.push(daemon);
  return daemon;
}

/** SIGTERM; resolves with the exit code and how long the process took to exit. */
async function terminate(daemon: Daemon): Promise<{ code: number | null; ms: number }> {
  const started = Date.now();
  const exited = new Promise<number | null>((resolve) => daemon.child.once('exit', (code) => resolve(code)));
  daemon.child.kill('SIGTERM');
  // Past this the process counts as hung: SIGKILL so the test reports it instead of waiting.
  const timer = setTimeout(() => daemon.child.kill('SIGKILL'), (graceSeconds + 20) * 1000);
  const code = await exited;
  clearTimeout(timer);
  return { code, ms: Date.now() - started };
}

test('idle worker and producer get SIGTERM while Redis is down: both exit within shutdown_grace_seconds', async (t) => {
  t.after(stopDaemons);
  await withLogsOnFailure(logs, async () => {
    const worker = start(['worker'], 'worker-idle');
    const producer = start(['producer'], 'producer-idle');
    await waitForLogEvent(worker.logFile, 'worker.ready');
    await waitForLogEvent(producer.logFile, 'schedule.synced');
    await redis.stop('SIGKILL');
    await waitForLogEvent(worker.logFile, 'redis.unreachable');

    const [w, p] = await Promise.all([terminate(worker), terminate(producer)]);
    assert.equal(w.code, 0, 'worker exit code');
    assert.equal(p.code, 0, 'producer exit code');
    assert.ok(w.ms < graceSeconds * 1000, `worker exited after ${w.ms} ms, grace is ${graceSeconds} s`);
    assert.ok(p.ms < graceSeconds * 1000, `producer exited after ${p.ms} ms, grace is ${graceSeconds} s`);
    await waitForLogEvent(worker.logFile, 'worker.stopped');
    await redis.start();
  });
});

test('worker gets SIGTERM mid-backup while Redis is down: it exits within the grace period, and once Redis is back the next worker finishes the backup', async (t) => {
  t.after(stopDaemons);
  await withLogsOnFailure(logs, async () => {
    if (!redis.running()) await redis.start();
    const worker = start(['worker'], 'worker-busy');
    await waitForLogEvent(worker.logFile, 'worker.ready');
    const queue = queues.forInstance(world.replicaInstanceId);
    await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId: 'full-sigterm-redis-down', attempts: 1 });
    const row = await waitFor('a backup in a stage', async () =>
      (await world.metadata.listBackups({ instanceId: world.replicaInstanceId, type: 'full' })).find((r) => ['Doing', 'Done', 'Tar'].includes(r.state)),
    );
    await redis.stop('SIGKILL');
    const w = await terminate(worker);
    assert.equal(w.code, 0, 'worker exit code');
    // A running stage gets the grace period to finish; aborting it (KILL QUERY, stopping tar) takes a moment more.
    assert.ok(w.ms < (graceSeconds + 2) * 1000, `worker exited after ${w.ms} ms, grace is ${graceSeconds} s`);
    const stopped = (await world.metadata.getBackup(row.backupUuid))!;
    assert.notEqual(stopped.state, 'Error', `an interrupted backup is not a failure: ${stopped.info}`);

    await redis.start();
    // The next worker (in this process: what matters here is that the stage comes back to one).
    const next = await startWorker(loadConfig(configFile), { log: createLogger({ name: 'test-next-worker', quiet: true }) });
    try {
      const done = await waitFor('the backup to end', async () => {
        const r = await world.metadata.getBackup(row.backupUuid);
        return r && ['Completed', 'Error'].includes(r.state) ? r : undefined;
      }, 120_000);
      assert.equal(done.state, 'Completed', done.info ?? '');
    } finally {
      await next.close();
    }
    await assertBackupInvariants(world, { completed: 1 });
  });
});
