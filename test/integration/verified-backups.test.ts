// A full backup whose restore test failed (verify_state = 'failed') against the real metadata center and S3:
// expiry does not let it stand in for the newest good full, restore never picks it unless it is named with
// --backup, and `mcb status`, /metrics and the status page report it as a failure.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { expireJob } from '../../src/jobs/expire.ts';
import { instanceStatuses } from '../../src/ops/status.ts';
import { renderMetrics } from '../../src/server/metrics.ts';
import { renderStatusPage } from '../../src/server/page.ts';
import { backupUuidFor } from '../../src/naming.ts';
import { directContext } from '../support/context.ts';
import { createWorld, randomId, type World } from '../support/world.ts';
import { runMcb } from '../support/spawn.ts';

const DAY = 24 * 3600_000;
let world: World;
before(async () => {
  world = await createWorld();
});
after(async () => {
  await world?.cleanup();
});

async function exists(key: string): Promise<boolean> {
  return world.minio.statObject(world.bucket, key).then(
    () => true,
    () => false,
  );
}

async function addFull(instanceId: number, key: string, start: Date, verifyState: 'ok' | 'failed' | null): Promise<string> {
  const uuid = backupUuidFor(`verified-test:${instanceId}:${key}:${randomId()}`);
  await world.metadata.createBackup({
    backupUuid: uuid,
    tbInstanceId: instanceId,
    state: 'Completed',
    backupType: 'full',
    startTime: start,
    endTime: new Date(start.getTime() + 60_000),
    backupPath: '/data/clone_bak',
    backupName: key,
    bucketName: world.bucket,
    objectKey: key,
    backupSize: '1K',
    overdueDay: 7,
    info: 'test row',
  });
  if (verifyState) {
    await world.metadata.update(uuid, {
      verifiedAt: new Date(start.getTime() + 3600_000),
      verifyState,
      ...(verifyState === 'failed' ? { errorDetail: 'verify: CHECK TABLE shop.orders: Corrupt' } : {}),
    });
  }
  await world.minio.putObject(world.bucket, key, Buffer.from(`${key}\n`));
  return uuid;
}

test('a full whose restore test failed protects nothing, is not restored unless named, and is reported as a failure', async () => {
  const name = `verified-${randomId()}`;
  const id = await world.metadata.addInstance({ instanceId: `10.0.0.9:${name}`, instanceName: name, stringLink: '10.0.0.9', dbPort: 3306, isClone: true });
  const now = new Date();
  // The good full is 10 days old (expired by the 7-day retention); the newest, 1 day old, failed its restore test.
  const goodKey = `bak_${id}_20250101020000.tar.gz`;
  const badKey = `bak_${id}_20250109020000.tar.gz`;
  await addFull(id, goodKey, new Date(now.getTime() - 10 * DAY), 'ok');
  await addFull(id, badKey, new Date(now.getTime() - 1 * DAY), 'failed');

  const result = await expireJob.handle(expireJob.parse({ instanceId: id }), directContext(world.config, world.metadata, { now: () => now, jobId: `expire-${randomId()}` }));
  assert.equal(result.deleted, 0, "nothing deleted");
  assert.ok(await exists(goodKey), 'the older verified full is kept: the failed one cannot stand in for it');
  const good = (await world.metadata.listBackups({ instanceId: id, type: 'full' })).find((r) => r.objectKey === goodKey)!;
  assert.equal(good.state, 'Completed');
  assert.equal(good.isDelete, 0);

  const plan = await runMcb(['-f', world.configFile, 'restore', 'plan', '--instance', String(id), '--at', 'latest', '--json']);
  assert.equal(plan.code, 0, plan.stderr);
  assert.equal(JSON.parse(plan.stdout).full.objectKey, goodKey, 'latest skips the full whose restore test failed');
  const named = await runMcb(['-f', world.configFile, 'restore', 'plan', '--instance', String(id), '--at', 'latest', '--backup', badKey, '--json']);
  assert.equal(named.code, 0, named.stderr);
  assert.equal(JSON.parse(named.stdout).full.objectKey, badKey, '--backup names it explicitly');

  const status = await runMcb(['-f', world.configFile, 'status', '--check']);
  assert.equal(status.code, 1, status.stdout + status.stderr);
  assert.match(status.stderr, new RegExp(`restore test FAILED for full backup ${badKey}.*CHECK TABLE shop\\.orders: Corrupt`));
  assert.match(status.stdout, new RegExp(`VERIFY FAILED ${badKey}`));

  const statuses = await instanceStatuses(world.config, world.metadata, undefined, { instanceId: id });
  assert.equal(statuses[0]!.lastFull?.backupName, goodKey, 'the last restorable full is the verified one');
  assert.match(renderMetrics({ statuses, counts: [], queueCounts: [] }), new RegExp(`mcb_backup_verify_failed\\{instance="${id}"\\} 1`));
  const page = renderStatusPage({ statuses, backups: [], generatedAt: now, refreshSeconds: 30, thresholds: { fullHours: 26, binlogMinutes: 60 } });
  assert.match(page, new RegExp(`restore test FAILED</b>: ${badKey}`));
});
