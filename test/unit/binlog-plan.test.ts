// planBinlogArchive: what a binlog run archives, and which gaps it reports, from index names + archived rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filesToInspect, gtidsContinue, lastDone, type ArchivedBinlog } from '../../src/jobs/binlog/chain.ts';
import { describeMissing } from '../../src/jobs/binlog/gap.ts';
import { missingBetween, planBinlogArchive } from '../../src/jobs/binlog/plan.ts';
import { formatInZone, parseInZone, parseTimeZone } from '../../src/time/zone.ts';

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

test('names: the files between two, and a short description', () => {
  assert.deepEqual(missingBetween(f(9), f(12)), idx(10, 11));
  assert.deepEqual(missingBetween('a.000001', 'b.000005'), []);
  assert.equal(describeMissing(idx(10, 11), f(9), f(12)), `${f(10)}, ${f(11)}`);
  assert.equal(describeMissing(missingBetween(f(1), f(100)), f(1), f(100)), `${f(2)} … ${f(99)} (98 files)`);
  assert.throws(() => planBinlogArchive(['mysql-bin.index'], []), /not a binary log file name/);
  assert.throws(() => planBinlogArchive([], []), /empty/);
});

// ---- series: which server, which numbering ---------------------------------------------------------------------

const A = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const B = '8a94f357-aab4-11df-86ab-c80aa9429563';
const on = (serverUuid: string | null, r: ArchivedBinlog, gtidSet?: string): ArchivedBinlog => ({ ...r, serverUuid, gtidSet });
const heads = (entries: Record<number, [start: number, previousGtids?: string]>) =>
  new Map(Object.entries(entries).map(([n, [start, previousGtids = '']]) => [f(Number(n)), { start, previousGtids }]));

test('another server (server_uuid differs from the last archived row): one server-changed gap, its series from the start', () => {
  const archived = [on(A, row(1, 'Completed')), on(A, row(2, 'Completed')), on(A, row(3, 'Completed'))];
  const plan = planBinlogArchive(idx(1, 2, 3, 4, 5), archived, { serverUuid: B, heads: heads({ 3: [9000], 4: [9100] }) });
  assert.equal(plan.gap?.reason, 'server-changed');
  assert.match(plan.gap?.detail ?? '', new RegExp(`server_uuid is ${B}, ${f(3)} was archived from ${A}`));
  assert.equal(plan.gap?.afterFile, f(3));
  assert.equal(plan.gap?.firstAvailable, f(1));
  assert.deepEqual(plan.toArchive, idx(1, 2, 3, 4), 'names already archived from A are B\'s files: all of them');
  assert.deepEqual(plan.alreadyArchived, []);
});

test('same server, same name, another first-event time: the series was reset (numbering caught up)', () => {
  const archived = [on(A, row(1, 'Completed')), on(A, row(2, 'Completed'))];
  const plan = planBinlogArchive(idx(1, 2, 3), archived, { serverUuid: A, heads: heads({ 2: [5000], 3: [5100] }) });
  assert.equal(plan.gap?.reason, 'reset');
  assert.match(plan.gap?.detail ?? '', /mysql-bin\.000002 on the server started at .*, the archived mysql-bin\.000002 at /);
  assert.deepEqual(plan.toArchive, idx(1, 2));
});

test('same server, the last archived file still there with the same start: the chain simply continues', () => {
  const archived = [on(A, row(1, 'Completed')), on(A, row(2, 'Completed'))];
  const plan = planBinlogArchive(idx(1, 2, 3, 4), archived, { serverUuid: A, heads: heads({ 2: [200], 3: [300] }) });
  assert.equal(plan.gap, undefined);
  assert.deepEqual(plan.toArchive, idx(3));
  assert.deepEqual(plan.alreadyArchived, idx(1, 2));
});

test('the last archived file is gone and the next one does not carry its GTIDs on: a reset, not a purge', () => {
  const archived = [on(A, row(3, 'Completed'), `${A}:1-50`)];
  const reset = planBinlogArchive(idx(5, 6), archived, { serverUuid: A, heads: heads({ 5: [900, `${A}:1-3`] }) });
  assert.equal(reset.gap?.reason, 'reset');
  assert.match(reset.gap?.detail ?? '', /GTIDs executed before mysql-bin\.000005/);
  assert.deepEqual(reset.toArchive, idx(5));
  const purged = planBinlogArchive(idx(5, 6), archived, { serverUuid: A, heads: heads({ 5: [900, `${A}:1-70`] }) });
  assert.equal(purged.gap?.reason, 'purged');
  assert.deepEqual(purged.gap?.missing, idx(4));
});

test('unmatched seed rows (no server): they come before rows that know theirs; one still in the index means another series', () => {
  const seed = on(null, row(9, 'Completed', 99_999)); // the seed's start_time is its upload time
  assert.equal(lastDone([seed, on(A, row(4, 'Completed', 400))])?.binlogFile, f(4));
  assert.equal(lastDone([seed])?.binlogFile, f(9));
  const plan = planBinlogArchive(idx(8, 9, 10), [seed], { serverUuid: A, heads: heads({ 9: [900], 10: [1000] }) });
  assert.equal(plan.gap?.reason, 'reset');
  assert.match(plan.gap?.detail ?? '', /not the binlog the seed archived/);
  // Its file purged since: nothing to compare, the chain carries on after it.
  assert.deepEqual(planBinlogArchive(idx(10, 11), [seed], { serverUuid: A }).toArchive, idx(10));
});

test('filesToInspect: the last archived file when still listed, and the first one after it', () => {
  const archived = [row(1, 'Completed'), row(2, 'Completed')];
  assert.deepEqual(filesToInspect(idx(1, 2, 3, 4), archived), idx(2, 3));
  assert.deepEqual(filesToInspect(idx(4, 5), archived), idx(4));
  assert.deepEqual(filesToInspect(idx(1, 2), []), []);
});

// New York, 2026-11-01: 02:00 EDT → 01:00 EST, so 01:00-01:59 happens twice; a start_time written in the second
// 01:xx hour (EST) reads back as the first (EDT), one hour early.
const newYork = parseTimeZone('America/New_York');
const readBack = (seconds: number) => parseInZone(formatInZone(new Date(seconds * 1000), newYork), newYork);
const estSeconds = (iso: string) => Date.parse(iso) / 1000;

test('DST fall-back: a binlog opened in the repeated hour is the same file, not a reset', () => {
  const start = estSeconds('2026-11-01T06:20:00Z'); // 01:20 EST
  const last = { ...on(A, row(2, 'Completed')), startTime: readBack(start) };
  assert.equal(last.startTime.getTime(), (start - 3600) * 1000, 'read back one hour early');
  const plan = planBinlogArchive(idx(1, 2, 3, 4), [on(A, row(1, 'Completed')), last], { serverUuid: A, timeZone: newYork, heads: heads({ 2: [start], 3: [start + 600] }) });
  assert.equal(plan.gap, undefined);
  assert.deepEqual(plan.toArchive, idx(3));
  // Another first-event time is still a reset.
  const reset = planBinlogArchive(idx(1, 2, 3), [last], { serverUuid: A, timeZone: newYork, heads: heads({ 2: [start + 1] }) });
  assert.equal(reset.gap?.reason, 'reset');
});

test('DST fall-back: the order of rows whose read-back starts the fold makes ambiguous goes by name', () => {
  // 000010 opened at 01:45 EDT, 000011 at 01:10 EST (25 minutes later), read back at 01:10 EDT: before 000010.
  const r10 = { ...on(A, row(10, 'Completed')), startTime: readBack(estSeconds('2026-11-01T05:45:00Z')) };
  const r11 = { ...on(A, row(11, 'Completed')), startTime: readBack(estSeconds('2026-11-01T06:10:00Z')) };
  assert.ok(r11.startTime.getTime() < r10.startTime.getTime());
  assert.equal(lastDone([r10, r11], newYork)?.binlogFile, f(11));
  assert.equal(lastDone([r11, r10], newYork)?.binlogFile, f(11));
  assert.deepEqual(planBinlogArchive(idx(12, 13), [r10, r11], { serverUuid: A, timeZone: newYork }).gap, undefined, 'no purged gap for 000011');
  // Outside the fold the start times decide, as before (a reset numbering starts again at 1).
  const r1 = { ...on(A, row(1, 'Completed')), startTime: readBack(estSeconds('2026-11-01T08:00:00Z')) };
  assert.equal(lastDone([r10, r11, r1], newYork)?.binlogFile, f(1));
});

test('gtidsContinue: the earlier file\'s PREVIOUS_GTIDS must be a subset of the later one\'s', () => {
  assert.equal(gtidsContinue(`${A}:1-5`, `${A}:1-9,${B}:1-2`), true);
  assert.equal(gtidsContinue('', `${A}:1`), true);
  assert.equal(gtidsContinue(`${A}:1-5`, `${B}:1-5`), false);
  assert.equal(gtidsContinue('not a set', `${A}:1`), true, 'unreadable: proves nothing');
});
