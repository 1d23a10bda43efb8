// The producer keeps exactly one schedule per (instance, job type) in Redis, in step with tb_instance.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../src/log/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { schedulerId, syncSchedules } from '../../src/producer/index.ts';
import { scheduledJobTypes } from '../../src/jobs/registry.ts';
import { createWorld, type World } from '../support/world.ts';
import { cronTimeZone } from '../../src/time/zone.ts';

let world: World;
const opened: Queues[] = [];
const log = createLogger({ name: 'test-producer' });

async function newQueues(): Promise<Queues> {
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  const q = new Queues(world.config, redis);
  opened.push(q);
  return q;
}

before(async () => {
  world = await createWorld({ bucket: false });
});
after(async () => {
  for (const q of opened) {
    await q.close();
    await q.connection.quit();
  }
  await world?.cleanup();
});

test('two producers syncing at once leave one schedule per instance and type, and one pending job each', async () => {
  const [a, b] = [await newQueues(), await newQueues()];
  await Promise.all([
    syncSchedules(world.config, world.metadata, a, log),
    syncSchedules(world.config, world.metadata, b, log),
    syncSchedules(world.config, world.metadata, a, log),
  ]);
  for (const id of [world.sourceInstanceId, world.replicaInstanceId]) {
    const queue = a.forInstance(id);
    const schedulers = await queue.getJobSchedulers();
    assert.deepEqual(schedulers.map((s) => s.key).sort(), scheduledJobTypes.map((t) => schedulerId(t, id)).sort());
    const full = schedulers.find((s) => s.key === schedulerId('full', id))!;
    assert.equal(full.pattern, '0 2 * * *', "the seed's crontab time by default");
    assert.equal(full.tz, cronTimeZone(world.metadata.timeZone), "in the metadata time zone, not the producer's own TZ");
    const delayed = await queue.getJobs(['delayed', 'waiting']);
    assert.equal(delayed.filter((j) => j.name === 'full').length, 1, 'exactly one next full job');
    assert.deepEqual(delayed.find((j) => j.name === 'full')!.data, { instanceId: id });
  }
});

test('instances disabled, removed or added gain and lose schedules on the next sync', async () => {
  const q = await newQueues();
  await world.metadata.setCloneEnabled(world.sourceInstanceId, false);
  await world.metadata.removeInstance(world.replicaInstanceId);
  const added = await world.metadata.addInstance({ instanceId: '10.9.9.9:3306', instanceName: `added-${world.id}`, stringLink: '10.9.9.9', dbPort: 3306, isClone: true });
  const result = await syncSchedules(world.config, world.metadata, q, log);
  assert.deepEqual(result.scheduled, [added]);
  assert.deepEqual(result.unscheduled.sort(), [world.sourceInstanceId, world.replicaInstanceId].sort());
  assert.equal(await q.forInstance(world.sourceInstanceId).getJobSchedulersCount(), 0);
  assert.equal(await q.forInstance(world.replicaInstanceId).getJobSchedulersCount(), 0);
  assert.equal(await q.forInstance(added).getJobSchedulersCount(), scheduledJobTypes.length);
  // Idempotent: nothing more to remove.
  assert.deepEqual((await syncSchedules(world.config, world.metadata, q, log)).unscheduled, []);
});
