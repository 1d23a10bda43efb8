// [redis] cluster_nodes against a real 3-node Redis Cluster (private, on spare ports): with the hash-tagged prefix
// every key lands in one slot, so BullMQ's multi-key scripts run; schedules sync, the queues are found across the
// cluster's primaries, and a full-backup chain runs its stages in order.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Worker, type ConnectionOptions } from 'bullmq';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import { syncSchedules } from '../../src/producer/index.ts';
import { closeRedis, instanceQueueName, pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { scheduledJobTypes } from '../../src/config/index.ts';
import { waitFor } from '../support/poll.ts';
import { startRedisCluster, type RedisCluster } from '../support/redis-server.ts';
import { createWorld, type World } from '../support/world.ts';

let world: World;
let cluster: RedisCluster;
let config: Config;
let queues: Queues;

before(async () => {
  world = await createWorld({ bucket: false });
  cluster = await startRedisCluster(3);
  config = loadConfig(world.writeConfig({ sections: { redis: { cluster_nodes: cluster.addresses, prefix: `{${world.prefix}}` } } }));
  const connection = redisConnection(config, 'daemon');
  await pingRedis(connection, config.redis.url);
  queues = new Queues(config, connection);
});

after(async () => {
  await queues?.close().catch(() => undefined);
  if (queues) await closeRedis(queues.connection);
  await cluster?.destroy();
  await world?.cleanup();
});

test('a Redis Cluster with a hash-tagged prefix: schedules sync, queues are found, a stage chain runs in order, all in one slot', async () => {
  await syncSchedules(config, world.metadata, queues, createLogger({ name: 'test-cluster', quiet: true }));
  for (const id of [world.sourceInstanceId, world.replicaInstanceId]) {
    assert.equal(await queues.forInstance(id).getJobSchedulersCount(), scheduledJobTypes.length);
  }
  assert.deepEqual(await queues.knownInstanceQueues(), [world.sourceInstanceId, world.replicaInstanceId].map(instanceQueueName).sort());

  const payload = { instanceId: world.replicaInstanceId, backupUuid: '00000000-0000-4000-8000-00000000c1a5' };
  await queues.addFullChain(payload);
  const ran: string[] = [];
  const connection = redisConnection(config, 'worker');
  const worker = new Worker(instanceQueueName(world.replicaInstanceId), async (job) => void ran.push(job.name), { connection: connection as ConnectionOptions, prefix: config.redis.prefix });
  worker.on('error', () => undefined);
  try {
    await waitFor('the chain to finish', async () => (await queues.fullChainStates(payload)).cleanup === 'completed', 20_000);
  } finally {
    await worker.close();
    await closeRedis(connection);
  }
  assert.deepEqual(ran.filter((n) => ['clone', 'tar', 'upload', 'cleanup'].includes(n)), ['clone', 'tar', 'upload', 'cleanup']);
  const holding = cluster.nodes.filter((n) => Number(n.cli('DBSIZE')) > 0);
  assert.equal(holding.length, 1, 'every key of the prefix is on one node (one slot)');
});
