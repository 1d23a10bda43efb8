import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExpiryRow } from '../../src/metadata/expiry-queries.ts';
import { overdueDayFor, planInstance, resolvePolicy } from '../../src/jobs/expire/plan.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import type { RetentionPolicy } from '../../src/retention/index.ts';

const DAY = 86_400_000;
const now = new Date('2026-06-01T00:00:00Z');
const policy: RetentionPolicy = { fullDays: 7, binlogDays: 7, minFullBackups: 1, keepBinlogsForOldestFull: true };

function full(id: number, daysAgo: number, bucketName = 'mine'): ExpiryRow {
  const start = new Date(now.getTime() - daysAgo * DAY);
  return {
    id,
    backupUuid: `uuid-${id}`,
    tbInstanceId: '3',
    state: 'Completed',
    backupType: 'full',
    startTime: start,
    endTime: new Date(start.getTime() + 60_000),
    backupName: `bak_3_${id}`,
    bucketName,
    objectKey: `bak_3_${id}.tar.gz`,
    isDelete: 0,
    overdueDay: null,
    binlogFile: null,
    verifyState: null,
  };
}

test('planInstance: deletes expired rows of this bucket only, writes overdue_day on the kept ones', () => {
  const rows = [full(1, 30), full(2, 20, 'other'), full(3, 2)];
  const plan = planInstance(rows, policy, now, 'mine', false);
  const byId = Object.fromEntries(plan.decisions.map((d) => [d.id, d]));
  assert.equal(byId[1]!.action, 'delete');
  assert.equal(byId[1]!.overdueDay, 0);
  assert.equal(byId[2]!.outcome, 'other-bucket');
  assert.match(byId[2]!.reason, /not acted on: object is in bucket other/);
  assert.deepEqual(plan.toDelete.map((d) => d.id), [1]);
  assert.deepEqual(plan.overdueUpdates, [{ id: 3, overdueDay: 5 }]);
  assert.equal(byId[1]!.startTime, rows[0]!.startTime!.toISOString());
});

test('planInstance: a dry run marks what it would delete', () => {
  const plan = planInstance([full(1, 30), full(3, 2)], policy, now, 'mine', true);
  assert.deepEqual(plan.decisions.filter((d) => d.outcome === 'would-delete').map((d) => d.id), [1]);
});

test('overdueDayFor never gives 0 to a kept row; resolvePolicy refuses a bad override', () => {
  assert.equal(overdueDayFor(0), 1);
  assert.equal(overdueDayFor(4), 4);
  const config = { backup: { fullStorageDays: 7, binlogStorageDays: 7, minFullBackups: 1, keepBinlogsForOldestFull: true } } as Parameters<typeof resolvePolicy>[0];
  assert.equal(resolvePolicy(config, { fullStorageDays: 30 } as Parameters<typeof resolvePolicy>[1]).fullDays, 30);
  assert.throws(() => resolvePolicy(config, { fullStorageDays: 0 } as Parameters<typeof resolvePolicy>[1]), PermanentJobError);
});
