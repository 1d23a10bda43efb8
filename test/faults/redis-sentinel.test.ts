// Redis behind Sentinel loses its primary (a primary, a replica and three sentinels, private, on spare ports; the
// primary is killed for real): the worker and the producer follow the primary Sentinel promotes, schedules and
// queued jobs are still there, and a full backup enqueued after the failover completes.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig } from '../../src/config/index.ts';
import { closeRedis, pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { schedulerId } from '../../src/producer/index.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { logEvents, waitFor, waitForLogEvent, withLogsOnFailure } from '../support/poll.ts';
import { redisCli, startRedisServer, startSentinels, type RedisServer, type SentinelSet } from '../support/redis-server.ts';
import { runMcb, startMcb, type Daemon } from '../support/spawn.ts';
import { createWorld, type World } from '../support/world.ts';

let world: World;
let primary: RedisServer;
let replica: RedisServer;
let sentinels: SentinelSet;
let queues: Queues;
let configFile: string;
let daemons: Daemon[] = [];

before(async () => {
  world = await createWorld();
  primary = await startRedisServer();
  replica = await startRedisServer({ replicaOf: { host: '127.0.0.1', port: primary.port } });
  sentinels = await startSentinels(primary.port);
  configFile = world.writeConfig({
    sections: {
      redis: { sentinels: sentinels.addresses, sentinel_master: sentinels.masterName, prefix: world.prefix },
      schedule: { sync_interval_seconds: '1' },
    },
  });
  const config = loadConfig(configFile);
  const connection = redisConnection(config, 'daemon');
  await pingRedis(connection, config.redis.url);
  queues = new Queues(config, connection);
});

after(async () => {
  await Promise.all(daemons.map((d) => d.stop(10_000)));
  await queues?.close().catch(() => undefined);
  if (queues) await closeRedis(queues.connection);
  await sentinels?.destroy();
  await Promise.all([primary?.destroy(), replica?.destroy()]);
  await world?.cleanup();
});

function start(args: string[], name: string): Daemon {
  const daemon = startMcb(['-f', configFile, ...args], path.join(world.dir, `${name}.log`));
  daemons.push(daemon);
  return daemon;
}

test('the Redis primary dies, then a planned failover: worker and producer follow each primary Sentinel names, schedules and queued jobs survive, and a full backup enqueued afterwards completes', async () => {
  await withLogsOnFailure(
    () => daemons.map((d) => d.logFile),
    async () => {
      const worker = start(['worker'], 'worker');
      const producer = start(['producer'], 'producer');
      await waitFor('the replica in sync and known to the sentinels', () =>
        redisCli(replica.port, 'INFO', 'replication').includes('master_link_status:up') &&
        redisCli(sentinels.ports[0]!, 'SENTINEL', 'replicas', sentinels.masterName).includes(String(replica.port)),
      );
      await waitForLogEvent(worker.logFile, 'worker.ready');
      await waitForLogEvent(producer.logFile, 'schedule.synced');
      const queue = queues.forInstance(world.replicaInstanceId);
      // A job waiting its turn (an hour away) when the primary dies.
      await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId: 'queued-before-failover', delay: 3600_000 });
      // Sentinel promotes whatever the replica has: let it have every write (WAIT for one replica's ack).
      assert.equal(redisCli(primary.port, 'WAIT', '1', '5000'), '1');

      await primary.stop('SIGKILL');
      const newPort = await sentinels.waitForNewPrimary(primary.port);
      assert.equal(newPort, replica.port);
      const promotedAt = Date.now();

      assert.ok(await queue.getJob('queued-before-failover'), 'the queued job survived the failover');
      assert.equal(await queue.getJobState('queued-before-failover'), 'delayed');
      for (const id of [world.sourceInstanceId, world.replicaInstanceId]) {
        assert.ok(await queues.forInstance(id).getJobScheduler(schedulerId('full', id)), `the full schedule of instance ${id} survived`);
      }
      // The producer syncs every second: a sync that ran on the new primary.
      await waitForLogEvent(producer.logFile, 'schedule.synced', { where: (e) => Number(e.time) > promotedAt });

      // The old primary comes back as a replica; a planned failover (SENTINEL FAILOVER) makes it primary again.
      // The demoted primary stays up and answers as one for a while: every daemon must move at once, or what it
      // writes there is lost.
      await primary.start();
      redisCli(primary.port, 'REPLICAOF', '127.0.0.1', String(replica.port));
      await waitFor('the old primary in sync as a replica', () => redisCli(primary.port, 'INFO', 'replication').includes('master_link_status:up'));
      await waitFor('the sentinels to list it as a replica', () => redisCli(sentinels.ports[0]!, 'SENTINEL', 'replicas', sentinels.masterName).includes(String(primary.port)));
      // This process's own daemon connection shows the mechanism: it reconnects as soon as Sentinel announces the
      // switch, instead of writing to the demoted primary until that one is reconfigured.
      const moved = new Promise((resolve) => queues.connection.once('ready', resolve));
      assert.equal(redisCli(sentinels.ports[0]!, 'SENTINEL', 'FAILOVER', sentinels.masterName), 'OK');
      assert.equal(await sentinels.waitForNewPrimary(replica.port), primary.port);
      await moved;
      // It moved while the demoted primary still answered as one (Sentinel reconfigures it seconds later): until
      // then, anything written there would have been lost.
      assert.equal(redisCli(replica.port, 'ROLE').split('\n')[0], 'master', 'moved before the demoted primary was reconfigured');
      await queues.connection.set(`${world.prefix}:after-planned-failover`, '1');
      assert.equal(redisCli(primary.port, 'EXISTS', `${world.prefix}:after-planned-failover`), '1', 'written to the primary of now');

      const r = await runMcb(['-f', configFile, 'enqueue', 'full', '--instance', String(world.replicaInstanceId), '--wait', '--timeout', '120']);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /Completed/);
      // Everything went to the primary of now: the backup's chain is there, not on the demoted one.
      const backupName = /backup (bak_\d+_\d{14}\.tar\.gz):/.exec(r.stdout)?.[1];
      const { backupUuid } = (await world.metadata.listBackups({ instanceId: world.replicaInstanceId, type: 'full' })).find((row) => row.backupName === backupName)!;
      const chainKey = `${world.prefix}:${queue.name}:${backupUuid}-cleanup`;
      assert.equal(redisCli(primary.port, 'EXISTS', chainKey), '1', `${chainKey} on the new primary (${r.stdout})`);
      const events = logEvents(producer.logFile).map((e) => e.event);
      assert.ok(events.lastIndexOf('schedule.synced') > events.lastIndexOf('schedule.sync-failed'), 'the producer syncs again');
      await queue.remove('queued-before-failover');
      for (const d of daemons) assert.equal(await d.stop(), 0, `${d.logFile} exit code`);
      daemons = [];
      await assertBackupInvariants(world, { completed: 1 });
    },
  );
});

test('a command run while no sentinel answers fails at once with one line naming the sentinels', async () => {
  await sentinels.destroy();
  const r = await runMcb(['-f', configFile, 'jobs', 'list'], { timeoutMs: 60_000 });
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, /^mcb: Redis at redis\+sentinel:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\/mymaster is unreachable: /);
});
