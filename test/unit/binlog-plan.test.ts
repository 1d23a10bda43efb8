// planBinlogArchive: what a binlog run archives, and which gaps it reports, from index names + archived rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeMissing, lastDone, missingBetween, parseBinlogName, planBinlogArchive, type ArchivedBinlog } from '../../src/jobs/binlog-plan.ts';

const f = (n: number) => `mysql-bin.${String(n).padStart(6, '0')}`;
const idx = (...ns: number[]) => ns.map(f);
const row = (n: number, state: ArchivedBinlog['state'], start = n * 100, name = f(n)): ArchivedBinlog => ({
  binlogFile: name,
  state,
  startTime: new Date(start * 1000),
  endTime: new Date((start + 100) * 1000),
});

test('first run: every binlog but the active one, in order', () => {
  const plan = planBinlogArchive(idx(1, 2, 3, 4), []);
  assert.equal(plan.active, f(4));
  assert.deepEqual(plan.toArchive, idx(1, 2, 3));
  assert.deepEqual(plan.alreadyArchived, []);
  assert.equal(plan.gap, undefined);
});

test('only the active binlog: nothing to archive', () => {
  assert.deepEqual(planBinlogArchive(idx(7), []).toArchive, []);
  assert.deepEqual(planBinlogArchive(idx(7), [row(6, 'Completed')]).toArchive, []);
});

test('later runs: the files after the last archived one; done ones are counted, not re-archived', () => {
  const plan = planBinlogArchive(idx(1, 2, 3, 4, 5), [row(1, 'Completed'), row(2, 'Completed')]);
  assert.deepEqual(plan.toArchive, idx(3, 4));
  assert.deepEqual(plan.alreadyArchived, idx(1, 2));
  assert.equal(plan.gap, undefined);
});

test('an interrupted run: the Uploading / Error rows after the last Completed one are retried, in order', () => {
  const plan = planBinlogArchive(idx(1, 2, 3, 4, 5), [row(1, 'Completed'), row(2, 'Completed'), row(3, 'Error'), row(4, 'Uploading')]);
  assert.deepEqual(plan.toArchive, idx(3, 4));
  assert.equal(plan.gap, undefined);
});

test('expired binlogs (Expiration) count as archived: never uploaded again while the server keeps them', () => {
  const plan = planBinlogArchive(idx(1, 2, 3, 4), [row(1, 'Expiration'), row(2, 'Expiration'), row(3, 'Completed')]);
  assert.deepEqual(plan.toArchive, []);
  assert.deepEqual(plan.alreadyArchived, idx(1, 2, 3));
});

test('purged before archived: one gap naming the missing files; the chain carries on after it', () => {
  const archived = [row(1, 'Completed'), row(2, 'Completed')];
  const plan = planBinlogArchive(idx(5, 6, 7), archived);
  assert.deepEqual(plan.toArchive, idx(5, 6));
  assert.ok(plan.gap);
  assert.equal(plan.gap.reason, 'purged');
  assert.equal(plan.gap.afterFile, f(2));
  assert.deepEqual(plan.gap.afterEnd, archived[1]!.endTime);
  assert.equal(plan.gap.firstAvailable, f(5));
  assert.deepEqual(plan.gap.missing, idx(3, 4));
});

test('the missing file was the one before the active binlog: the gap ends at the active binlog', () => {
  const plan = planBinlogArchive(idx(4), [row(2, 'Completed')]);
  assert.deepEqual(plan.toArchive, []);
  assert.equal(plan.gap?.firstAvailable, f(4));
  assert.deepEqual(plan.gap?.missing, idx(3));
});

test('old binlogs purged after they were archived are not a gap', () => {
  const plan = planBinlogArchive(idx(3, 4, 5), [row(1, 'Completed'), row(2, 'Completed')]);
  assert.deepEqual(plan.toArchive, idx(3, 4));
  assert.equal(plan.gap, undefined);
});

test('a file that failed for good before the purge still leaves a gap after the last Completed one', () => {
  const plan = planBinlogArchive(idx(4, 5), [row(1, 'Completed'), row(2, 'Error')]);
  assert.equal(plan.gap?.afterFile, f(1));
  assert.deepEqual(plan.gap?.missing, idx(2, 3));
});

test('numbering restarted (RESET BINARY LOGS): a reset gap, and the new series is archived from its start', () => {
  const plan = planBinlogArchive(idx(1, 2, 3), [row(40, 'Completed', 1000), row(41, 'Completed', 1100)]);
  assert.equal(plan.gap?.reason, 'reset');
  assert.equal(plan.gap?.afterFile, f(41));
  assert.deepEqual(plan.toArchive, idx(1, 2));
  // Once the new series has a Completed file (it started later), it is the chain's end: no more reset.
  const next = planBinlogArchive(idx(1, 2, 3, 4), [row(40, 'Completed', 1000), row(41, 'Completed', 1100), row(1, 'Completed', 2000), row(2, 'Completed', 2100)]);
  assert.equal(next.gap, undefined);
  assert.deepEqual(next.toArchive, idx(3));
});

test('lastDone: latest start, by name within the same second; rows not done are ignored', () => {
  assert.equal(lastDone([row(3, 'Completed', 50), row(4, 'Completed', 50), row(5, 'Error', 60)])?.binlogFile, f(4));
  assert.equal(lastDone([row(3, 'Uploading')]), undefined);
});

test('names: parse, the files between two, and a short description', () => {
  assert.deepEqual(parseBinlogName('binlog.1000000'), { base: 'binlog', seq: 1000000, width: 7 });
  assert.equal(parseBinlogName('mysql-bin.index'), undefined);
  assert.deepEqual(missingBetween(f(9), f(12)), idx(10, 11));
  assert.deepEqual(missingBetween('a.000001', 'b.000005'), []);
  assert.equal(describeMissing(idx(10, 11), f(9), f(12)), `${f(10)}, ${f(11)}`);
  assert.equal(describeMissing(missingBetween(f(1), f(100)), f(1), f(100)), `${f(2)} … ${f(99)} (98 files)`);
  assert.throws(() => planBinlogArchive(['mysql-bin.index'], []), /not a binary log file name/);
  assert.throws(() => planBinlogArchive([], []), /empty/);
});
