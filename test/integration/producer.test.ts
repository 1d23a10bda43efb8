// The producer keeps exactly one schedule per (instance, job type) in Redis, in step with tb_instance.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { RowDataPacket } from 'mysql2/promise';
import { createLogger } from '../../src/log/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { schedulerId, syncSchedules } from '../../src/producer/index.ts';
import { scheduledJobTypes } from '../../src/config/index.ts';
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

/** Registers `count` instances with is_clone = 1 in one INSERT; returns their ids. */
async function registerInstances(count: number): Promise<number[]> {
  const rows = Array.from({ length: count }, (_, i) => [`10.8.${Math.floor(i / 250)}.${i % 250}:3306`, `fleet-${world.id}-${i}`, `10.8.${Math.floor(i / 250)}.${i % 250}`, 3306, 1]);
  await world.metadata.pool.query('INSERT INTO tb_instance (instance_id, instance_name, string_link, db_port, is_clone) VALUES ?', [rows]);
  const [found] = await world.metadata.pool.query<RowDataPacket[]>('SELECT id FROM tb_instance WHERE instance_name LIKE ? ORDER BY id', [`fleet-${world.id}-%`]);
  return found.map((r) => Number(r.id));
}

/** Everything Redis holds for the schedulers of these queues: scheduler hashes, the repeat and delayed sets, each next job's hash. */
async function schedulerSnapshot(q: Queues, ids: number[]): Promise<unknown[]> {
  const pipe = q.connection.pipeline();
  for (const id of ids) {
    const queue = q.forInstance(id);
    pipe.zrange(queue.toKey('repeat'), 0, -1, 'WITHSCORES');
    pipe.zrange(queue.toKey('delayed'), 0, -1, 'WITHSCORES');
    for (const type of scheduledJobTypes) pipe.hgetall(queue.toKey(`repeat:${schedulerId(type, id)}`));
  }
  const first = (await pipe.exec())!.map(([err, value]) => (err ? err.message : value));
  // The next job of each scheduler, by the id the repeat set's score gives (repeat:<scheduler id>:<next millis>).
  const jobs = q.connection.pipeline();
  for (const [i, id] of ids.entries()) {
    const repeat = first[i * (2 + scheduledJobTypes.length)] as string[];
    for (let k = 0; k < repeat.length; k += 2) jobs.hgetall(q.forInstance(id).toKey(`repeat:${repeat[k]}:${repeat[k + 1]}`));
  }
  const next = (await jobs.exec())!.map(([err, value]) => (err ? err.message : value));
  return [first, next];
}

test('a changed pattern, and a next job Redis lost, rewrite only those schedulers', async () => {
  const q = await newQueues();
  const [id] = (await world.metadata.listInstances({ cloneOnly: true })).map((i) => i.id);
  const types = scheduledJobTypes.length;
  const changed = { ...world.config, schedule: { ...world.config.schedule, binlog: '*/15 * * * *' } };
  assert.deepEqual((await syncSchedules(changed, world.metadata, q, log)).schedulers, { created: 0, updated: 1, unchanged: types - 1, removed: 0 });
  assert.equal((await q.forInstance(id!).getJobScheduler(schedulerId('binlog', id!)))?.pattern, '*/15 * * * *');
  assert.deepEqual((await syncSchedules(world.config, world.metadata, q, log)).schedulers, { created: 0, updated: 1, unchanged: types - 1, removed: 0 }, 'and back');

  // The full schedule's next job is lost (BullMQ refuses to remove it; a key evicted under maxmemory is one way).
  const queue = q.forInstance(id!);
  const full = (await queue.getJobScheduler(schedulerId('full', id!)))!;
  const nextJob = `repeat:${full.key}:${full.next}`;
  await q.connection.zrem(queue.toKey('delayed'), nextJob);
  await q.connection.del(queue.toKey(nextJob));
  assert.deepEqual((await syncSchedules(world.config, world.metadata, q, log)).schedulers, { created: 0, updated: 1, unchanged: types - 1, removed: 0 });
  assert.equal((await queue.getJobs(['delayed'])).filter((j) => j.name === 'full').length, 1, 'the full schedule has its next job again');
});

test('500 instances: a second sync finds every scheduler as wanted and writes nothing', async (t) => {
  const q = await newQueues();
  const ids = await registerInstances(500);
  try {
    const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(2);
    let started = performance.now();
    const first = await syncSchedules(world.config, world.metadata, q, log);
    const firstSeconds = seconds(started);
    const types = scheduledJobTypes.length;
    assert.equal(first.scheduled.length, 501, 'the 500 and the instance the test above added');
    assert.deepEqual(first.schedulers, { created: 500 * types, updated: 0, unchanged: types, removed: 0 });
    const before = await schedulerSnapshot(q, ids);
    assert.equal((before[1] as Array<Record<string, string>>).filter((job) => job.name).length, 500 * types, 'every scheduler has its next job');

    started = performance.now();
    const second = await syncSchedules(world.config, world.metadata, q, log);
    const secondSeconds = seconds(started);
    assert.deepEqual(second.schedulers, { created: 0, updated: 0, unchanged: 501 * types, removed: 0 });
    assert.deepEqual(await schedulerSnapshot(q, ids), before, 'schedulers, their next jobs and the delayed set are as they were');
    t.diagnostic(`500 instances: first sync ${firstSeconds} s, second (nothing to change) ${secondSeconds} s`);
  } finally {
    // Their Redis keys go with the world's prefix.
    await world.metadata.pool.query('DELETE FROM tb_instance WHERE id IN (?)', [ids]);
  }
});
