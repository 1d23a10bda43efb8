// The metadata center goes away for 30 s in the middle of a full backup: a real metadata server of the test's own
// (test/support/private-mariadb.ts) is killed while the clone stage runs and started again on the same datadir.
// The worker's metadata queries wait for it ([metadata-link] retry_seconds) instead of failing the stage, so no
// attempt is spent (the test's 3 attempts, 200 ms apart, would be gone in under a second) and the row ends
// Completed, never stuck in a running state nor Error.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/index.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startWorker } from '../../src/workers/index.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { captureLog } from '../support/log-capture.ts';
import { startPrivateMetadataServer, type PrivateMetadataServer } from '../support/private-mariadb.ts';
import { createWorld, type World } from '../support/world.ts';

const OUTAGE_MS = 30_000;
const stages = ['clone', 'tar', 'upload', 'cleanup'];

let server: PrivateMetadataServer;
let world: World;
let queues: Queues;

before(async () => {
  server = await startPrivateMetadataServer('mcb-meta-outage');
  world = await createWorld({ metadata: server });
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
});

after(async () => {
  await queues?.close();
  await queues?.connection.quit();
  await world?.cleanup();
  await server?.destroy();
});

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test('metadata center killed for 30 s while the clone stage runs: the stage waits, spends no attempt, and the backup completes', async () => {
  const captured = captureLog();
  const config = loadConfig(
    world.writeConfig({
      sections: {
        'metadata-link': { host: server.host, port: String(server.port), user: server.user, password: server.password, database: world.database, retry_seconds: '120' },
      },
    }),
  );
  assert.equal(config.backup.stageAttempts, 3);
  const worker = await startWorker(config, { log: captured.log });
  let restarted = false;
  try {
    const queue = queues.forInstance(world.replicaInstanceId);
    await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId: 'metadata-outage', attempts: 1 });
    const backupUuid = await until(
      'the full job to create the row',
      async () => ((await queue.getJob('metadata-outage'))?.returnvalue as { backupUuid?: string } | undefined)?.backupUuid,
      60_000,
    );
    await until('the clone stage to start', async () => {
      const row = await world.metadata.getBackup(backupUuid);
      return row?.state === 'Doing' && row.info === 'cloning' ? row : undefined;
    }, 60_000);

    await server.kill();
    const killedAt = Date.now();
    await until('the worker to meet the outage', async () => captured.named('metadata.retry')[0], 20_000);
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - killedAt)));
    assert.deepEqual(captured.named('stage.failed'), [], 'no stage failed while the metadata center was down');
    await server.restart();
    restarted = true;

    const row = await until(
      'the backup to finish',
      async () => {
        const r = await world.metadata.getBackup(backupUuid);
        return r && ['Completed', 'Error'].includes(r.state) ? r : undefined;
      },
      120_000,
    );
    assert.equal(row.state, 'Completed', row.info ?? '');
    assert.match(row.info ?? '', /^completed: /);
    assert.deepEqual(captured.named('stage.failed'), [], 'no stage attempt was spent on the outage');
    const starts = captured.named('stage.start').filter((e) => stages.includes(String(e.stage)));
    assert.deepEqual(starts.map((e) => `${e.stage}#${e.attempt}`), stages.map((s) => `${s}#1`), 'each stage ran once, on its first attempt');
    assert.ok(captured.named('metadata.recovered').length > 0, 'the worker said when the metadata center was back');
    for (const stage of stages) assert.equal(await (await queue.getJob(`${backupUuid}-${stage}`))!.getState(), 'completed', stage);
    assertRecoveryPoint(row);
  } finally {
    if (!restarted) await server.restart().catch(() => undefined);
    await worker.close();
  }
  await assertBackupInvariants(world, { completed: 1 });
});

function assertRecoveryPoint(row: BackupRow): void {
  assert.ok(row.endTime && row.startTime && row.endTime >= new Date(row.startTime.getTime() - 1000), 'the clone recorded its recovery point');
}
