import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  candidatesFromRows,
  describeTarget,
  parseTarget,
  planRestore,
  RestorePlanError,
  type BinlogCandidate,
  type FullCandidate,
  type RestoreTarget,
} from '../../src/restore/plan.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { chainSegments, segmentedCandidates, type SegmentObject } from '../../src/restore/segments.ts';
import { parseTimeZone, TimeError } from '../../src/time/zone.ts';

const t = (hms: string) => new Date(`2024-05-01T${hms}Z`); // planRestore writes its messages in UTC unless given a zone
const at = (hms: string): RestoreTarget => ({ kind: 'time', at: t(hms), atMicros: t(hms).getTime() * 1000 });

function full(end: string, key = `bak_1_${end.replace(/:/g, '')}.tar.gz`): FullCandidate {
  return { objectKey: key, endTime: t(end), endTimeExact: true, compression: 'gzip', bytes: 100, sha256: 'a'.repeat(64), gtidSet: 'u:1-5' };
}
function binlog(n: number, start: string, end: string | null): BinlogCandidate {
  const file = `mysql-bin.${String(n).padStart(6, '0')}`;
  return { file, objectKey: `log_1_${file}`, startTime: t(start), endTime: end ? t(end) : null, compression: 'none', bytes: 10, sha256: 'b'.repeat(64) };
}
// A continuous chain: 3 [09:00, 10:00), 4 [10:00, 11:00), 5 [11:00, 12:00), 6 [12:00, 13:00)
const chain = [binlog(3, '09:00:00', '10:00:00'), binlog(4, '10:00:00', '11:00:00'), binlog(5, '11:00:00', '12:00:00'), binlog(6, '12:00:00', '13:00:00')];
const fulls = [full('09:30:00'), full('11:30:00')];

function refusal(fn: () => unknown, reason: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof RestorePlanError, String(e));
    assert.equal(e.reason, reason);
    assert.match(e.message, message);
    return true;
  });
}

test('parseTarget accepts latest and date-times in the given zone (or with their own offset), rejects the rest', () => {
  const shanghai = parseTimeZone('Asia/Shanghai');
  const utc1020 = Date.UTC(2024, 4, 1, 2, 20, 30);
  assert.deepEqual(parseTarget('latest', shanghai), { kind: 'latest' });
  assert.deepEqual(parseTarget('2024-05-01 10:20:30', shanghai), { kind: 'time', at: new Date(utc1020), atMicros: utc1020 * 1000 });
  assert.deepEqual(parseTarget('2024-05-01T10:20:30.000001', shanghai), { kind: 'time', at: new Date(utc1020), atMicros: utc1020 * 1000 + 1 });
  assert.deepEqual(parseTarget('2024-05-01 02:20:30Z', shanghai), { kind: 'time', at: new Date(utc1020), atMicros: utc1020 * 1000 });
  for (const bad of ['yesterday', '2024-05-01', '2024-13-01 00:00:00', '2024-02-30 10:00:00', '2024-05-01 25:00:00']) {
    assert.throws(() => parseTarget(bad, shanghai), TimeError, bad);
  }
});

test('describeTarget and the refusals write times in the zone given, the target with its offset', () => {
  const shanghai = parseTimeZone('Asia/Shanghai');
  assert.equal(describeTarget(at('09:29:59'), shanghai), '2024-05-01 17:29:59 +08:00 (Asia/Shanghai)');
  refusal(
    () => planRestore({ fulls, binlogs: chain, target: at('09:29:59'), zone: shanghai }),
    'too-early',
    /target 2024-05-01 17:29:59 \+08:00 \(Asia\/Shanghai\) is before the oldest full backup: .* has recovery point 2024-05-01 17:30:00;/,
  );
});

test('picks the newest full at or before the target and the binlogs from its recovery point to the target', () => {
  const p = planRestore({ fulls, binlogs: chain, target: at('11:45:00') });
  assert.equal(p.full.objectKey, fulls[1]!.objectKey);
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000005']);
  assert.deepEqual(p.coveredUntil, t('12:00:00'));

  const q = planRestore({ fulls, binlogs: chain, target: at('11:29:59') });
  assert.equal(q.full.objectKey, fulls[0]!.objectKey, 'the 11:30 full is after the target');
  assert.deepEqual(q.binlogs.map((b) => b.file), ['mysql-bin.000003', 'mysql-bin.000004', 'mysql-bin.000005']);
});

test('a target exactly at an exact recovery point needs no binlog; a target at a binlog boundary includes the next file', () => {
  const anchoredFull = { ...fulls[1]!, binlogFile: 'mysql-bin.000099' };
  assert.deepEqual(planRestore({ fulls: [anchoredFull], binlogs: chain, target: at('11:30:00') }).binlogs, []);
  // Without the clone's binlog file (seed era, --from-bucket) the recorded end may be after the consistent point:
  // the binlog around it is replayed (what the clone holds is left out by GTID).
  assert.deepEqual(planRestore({ fulls, binlogs: chain, target: at('11:30:00') }).binlogs.map((b) => b.file), ['mysql-bin.000005']);
  const p = planRestore({ fulls, binlogs: chain, target: at('12:00:00') });
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000005', 'mysql-bin.000006']);
});

test('latest: the newest full and every archived binlog after it', () => {
  const p = planRestore({ fulls, binlogs: chain, target: { kind: 'latest' } });
  assert.equal(p.full.objectKey, fulls[1]!.objectKey);
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000005', 'mysql-bin.000006']);
  assert.deepEqual(p.coveredUntil, t('13:00:00'));
  const alone = planRestore({ fulls, binlogs: [], target: { kind: 'latest' } });
  assert.deepEqual(alone.binlogs, []);
  assert.deepEqual(alone.coveredUntil, t('11:30:00'));
});

test('input order does not matter; file numbers past 999999 sort numerically', () => {
  const big = [binlog(999999, '09:00:00', '10:00:00'), binlog(1000000, '10:00:00', '11:00:00')];
  const p = planRestore({ fulls: [full('09:30:00')], binlogs: [...big].reverse(), target: at('10:30:00') });
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.999999', 'mysql-bin.1000000']);
});

test('refuses a target before the oldest full backup', () => {
  refusal(() => planRestore({ fulls, binlogs: chain, target: at('09:29:59') }), 'too-early', /before the oldest full backup: bak_1_093000\.tar\.gz has recovery point 2024-05-01 09:30:00/);
});

test('refuses a target after the newest archived binlog', () => {
  refusal(() => planRestore({ fulls, binlogs: chain, target: at('13:00:01') }), 'too-late', /after the end of the newest archived binlog mysql-bin\.000006 \(2024-05-01 13:00:00\)/);
  refusal(() => planRestore({ fulls, binlogs: [], target: at('11:30:01') }), 'too-late', /no binlog is archived/);
});

test('refuses a missing binlog file in the chain', () => {
  const holed = chain.filter((b) => b.file !== 'mysql-bin.000004');
  refusal(() => planRestore({ fulls, binlogs: holed, target: at('11:29:00') }), 'gap', /between mysql-bin\.000003 and mysql-bin\.000005: 1 binlog file\(s\) between them are not archived/);
  refusal(() => planRestore({ fulls: [fulls[0]!], binlogs: holed, target: { kind: 'latest' } }), 'gap', /between mysql-bin\.000003 and mysql-bin\.000005/);
  // A hole outside the needed range does not matter for a time target.
  const p = planRestore({ fulls, binlogs: holed, target: at('12:30:00') });
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000005', 'mysql-bin.000006']);
});

test('refuses a time gap between consecutive binlogs and a chain starting after the recovery point', () => {
  const skewed = [chain[0]!, { ...chain[1]!, startTime: t('10:05:00') }];
  refusal(() => planRestore({ fulls: [fulls[0]!], binlogs: skewed, target: at('10:30:00') }), 'gap', /mysql-bin\.000003 ends at 2024-05-01 10:00:00 but mysql-bin\.000004 starts at 2024-05-01 10:05:00/);
  refusal(() => planRestore({ fulls: [fulls[0]!], binlogs: chain.slice(1), target: at('10:30:00') }), 'gap', /oldest archived binlog mysql-bin\.000004 starts at 2024-05-01 10:00:00, after the recovery point 2024-05-01 09:30:00/);
});

test('refuses when there is no full backup', () => {
  refusal(() => planRestore({ fulls: [], binlogs: chain, target: { kind: 'latest' } }), 'no-full', /no Completed full backup/);
});

test('candidatesFromRows keeps Completed, undeleted rows with objects, one per binlog file', () => {
  const base = { isDelete: 0, state: 'Completed', bucketName: 'b', backupBytes: 1, sha256: 's', compression: 'none', gtidSet: null } as const;
  const rows = [
    { ...base, id: 1, backupUuid: 'f1', backupType: 'full', endTime: t('09:30:00'), startTime: t('09:29:00'), objectKey: 'bak_1_x.tar.gz' },
    { ...base, id: 2, backupUuid: 'f2', backupType: 'full', endTime: t('10:30:00'), startTime: t('10:29:00'), objectKey: 'bak_1_y.tar.gz', state: 'Error' },
    { ...base, id: 3, backupUuid: 'f3', backupType: 'full', endTime: t('10:30:00'), startTime: t('10:29:00'), objectKey: 'bak_1_z.tar.gz', isDelete: 1 },
    { ...base, id: 4, backupUuid: 'b1', backupType: 'binlog', binlogFile: 'mysql-bin.000003', startTime: t('09:00:00'), endTime: t('10:00:00'), objectKey: 'log_1_mysql-bin.000003' },
    { ...base, id: 5, backupUuid: 'b2', backupType: 'binlog', binlogFile: 'mysql-bin.000003', startTime: t('09:00:00'), endTime: t('10:00:00'), objectKey: 'log_1_mysql-bin.000003.gz' },
  ] as unknown as BackupRow[];
  const c = candidatesFromRows(rows);
  assert.deepEqual(c.fulls.map((f) => f.objectKey), ['bak_1_x.tar.gz']);
  assert.deepEqual(c.binlogs.map((b) => b.objectKey), ['log_1_mysql-bin.000003']);
});

// The clone's consistent point is in mysql-bin.000004 (clone_status BINLOG_FILE); the log rotated to .000005 at
// 10:00:05, before the clone finished (END_TIME 10:00:08). By time alone the chain would start at .000005 and
// skip the transactions of .000004 after the consistent point.
const rotated = [binlog(3, '09:00:00', '10:00:00'), binlog(4, '10:00:00', '10:00:05'), binlog(5, '10:00:05', '11:00:00'), binlog(6, '11:00:00', '12:00:00')];
const anchoredFull = (file: string | null): FullCandidate => ({ ...full('10:00:08'), binlogFile: file, binlogPosition: file ? 4711 : null });

test('a full with the clone binlog file starts the chain at that file, even when the log rotated before END_TIME', () => {
  const byTime = planRestore({ fulls: [anchoredFull(null)], binlogs: rotated, target: at('10:30:00') });
  assert.deepEqual(byTime.binlogs.map((b) => b.file), ['mysql-bin.000005'], 'seed-era rows (no binlog file) keep the time rule');

  const p = planRestore({ fulls: [anchoredFull('mysql-bin.000004')], binlogs: rotated, target: at('10:30:00') });
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000004', 'mysql-bin.000005']);
  const latest = planRestore({ fulls: [anchoredFull('mysql-bin.000004')], binlogs: [...rotated].reverse(), target: { kind: 'latest' } });
  assert.deepEqual(latest.binlogs.map((b) => b.file), ['mysql-bin.000004', 'mysql-bin.000005', 'mysql-bin.000006']);
  // A target exactly at END_TIME replays from the consistent point too (those transactions are not in the clone).
  const atEnd = planRestore({ fulls: [anchoredFull('mysql-bin.000004')], binlogs: rotated, target: at('10:00:08') });
  assert.deepEqual(atEnd.binlogs.map((b) => b.file), ['mysql-bin.000004', 'mysql-bin.000005']);
});

test('the clone binlog file not archived is a gap, named in the refusal', () => {
  refusal(
    () => planRestore({ fulls: [anchoredFull('mysql-bin.000004')], binlogs: rotated.filter((b) => b.file !== 'mysql-bin.000004'), target: at('10:30:00') }),
    'gap',
    /mysql-bin\.000004, which holds the clone's consistent point \(position 4711\) of bak_1_100008\.tar\.gz, is not archived/,
  );
});

test('candidatesFromRows carries the clone binlog file of full rows', () => {
  const rows = [
    { id: 1, backupUuid: 'f1', backupType: 'full', state: 'Completed', isDelete: 0, objectKey: 'bak_1_x.tar.gz', endTime: t('10:00:08'), startTime: t('09:59:00'), binlogFile: 'mysql-bin.000004', binlogPosition: 4711 },
    { id: 2, backupUuid: 'f2', backupType: 'full', state: 'Completed', isDelete: 0, objectKey: 'bak_1_y.tar.gz', endTime: t('11:00:08'), startTime: t('10:59:00'), binlogFile: null, binlogPosition: null },
  ] as unknown as BackupRow[];
  const c = candidatesFromRows(rows);
  assert.deepEqual(c.fulls.map((f) => [f.binlogFile, f.binlogPosition]), [['mysql-bin.000004', 4711], [null, null]]);
  assert.deepEqual(c.binlogs, [], 'full rows with a binlog file are not binlog candidates');
});

test('a full whose restore test failed is skipped unless named with --backup', () => {
  const good = full('09:30:00');
  const bad = { ...full('11:30:00'), verifyFailed: true, name: 'bak_1_113000.tar.gz' };
  const p = planRestore({ fulls: [good, bad], binlogs: chain, target: { kind: 'latest' } });
  assert.equal(p.full.objectKey, good.objectKey, 'latest skips the failed newest full');
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000003', 'mysql-bin.000004', 'mysql-bin.000005', 'mysql-bin.000006']);
  const named = planRestore({ fulls: [good, bad], binlogs: chain, target: { kind: 'latest' }, backup: bad.objectKey });
  assert.equal(named.full.objectKey, bad.objectKey);
  refusal(() => planRestore({ fulls: [bad], binlogs: chain, target: { kind: 'latest' } }), 'no-full', /failed its restore test.*--backup/);
  refusal(() => planRestore({ fulls: [good], binlogs: chain, target: { kind: 'latest' }, backup: 'nope' }), 'no-full', /no Completed full backup named nope/);
});

test('a zstd full is named by its key, or by the key without .tar.zst; a row without compression gets it from the key', () => {
  const zst = { ...full('11:30:00', 'bak_1_20240501113000.tar.zst'), compression: 'zstd' };
  const byBase = planRestore({ fulls: [full('09:30:00'), zst], binlogs: chain, target: { kind: 'latest' }, backup: 'bak_1_20240501113000' });
  assert.equal(byBase.full.objectKey, 'bak_1_20240501113000.tar.zst');
  const row = { id: 1, backupUuid: 'z1', backupType: 'full', state: 'Completed', isDelete: 0, objectKey: 'bak_1_z.tar.zst', compression: null, endTime: t('10:00:08'), startTime: t('09:59:00') };
  assert.equal(candidatesFromRows([row as unknown as BackupRow]).fulls[0]!.compression, 'zstd');
});

test('seed-era rows: the object is found by backup_name and the chain starts before the clone began', () => {
  const row = (over: Partial<BackupRow>): BackupRow =>
    ({
      id: 1, backupUuid: 'u1', tbInstanceId: '1', state: 'Completed', startTime: t('09:55:00'), endTime: t('10:20:00'), backupType: 'full',
      backupSize: '1M', backupPath: '/d', backupName: 'bak_1_20240501095500', bucketName: 'b', createdAt: t('10:20:00'), updatedAt: t('10:20:00'),
      isDelete: 0, overdueDay: 7, info: null, backupBytes: null, sha256: null, objectKey: null, compression: null, workerHost: null, jobId: null,
      stageStartedAt: null, errorDetail: null, binlogFile: null, binlogPosition: null, gtidSet: null, verifiedAt: null, verifyState: null, ...over,
    }) as BackupRow;
  const { fulls: [seedFull] } = candidatesFromRows([row({})]);
  assert.equal(seedFull!.objectKey, 'bak_1_20240501095500.tar.gz');
  assert.equal(seedFull!.seedEra, true);
  assert.equal(seedFull!.sha256, null);
  assert.equal(candidatesFromRows([row({ backupName: 'bak_1_20240501095500.tar.gz' })]).fulls[0]!.objectKey, 'bak_1_20240501095500.tar.gz');
  assert.equal(candidatesFromRows([row({ backupName: 'something-else' })]).fulls.length, 0);
  // The clone ran 09:55-10:20 and the log rotated at 10:00: its consistent point may be in 000003.
  const p = planRestore({ fulls: [seedFull!], binlogs: chain, target: { kind: 'latest' } });
  assert.equal(p.binlogs[0]!.file, 'mysql-bin.000003');
});

test('time targets list the archived binlogs after the chain: a replica may have written earlier commits there', () => {
  const p = planRestore({ fulls, binlogs: chain, target: at('11:45:00') });
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000005']);
  assert.deepEqual(p.following?.map((b) => b.file), ['mysql-bin.000006']);
  const broken = planRestore({ fulls, binlogs: [chain[2]!, binlog(8, '13:00:00', null)], target: at('11:45:00') });
  assert.deepEqual(broken.following, [], 'only files that continue the chain');
  assert.equal(planRestore({ fulls, binlogs: chain, target: { kind: 'latest' } }).following?.length ?? 0, 0);
});

test('seed-era full: a binlog opened in the same second the clone started may be after it, so the chain starts earlier', () => {
  const seedFull: FullCandidate = { ...full('10:20:00'), sha256: null, seedEra: true, startTime: t('10:00:01') };
  // 000004 opened at 10:00:00 (truncated to the second), the clone recorded as 10:00:01 (possibly rounded up).
  const p = planRestore({ fulls: [seedFull], binlogs: chain, target: { kind: 'latest' } });
  assert.equal(p.binlogs[0]!.file, 'mysql-bin.000003');
  const clear = planRestore({ fulls: [{ ...seedFull, startTime: t('10:00:02') }], binlogs: chain, target: { kind: 'latest' } });
  assert.equal(clear.binlogs[0]!.file, 'mysql-bin.000004', 'two seconds after it, the file surely started before the clone');
});

// ---- streamed segments: a file held only as seg_ objects ----------------------------------------------------

const epoch = (hms: string) => t(hms).getTime() / 1000;
/** A segment of mysql-bin.<n> opened at `opened`, bytes [from, to), its last transaction committed at `lastCommit`. */
function segment(n: number, opened: string, from: number, to: number, lastCommit: string | null, extra: Partial<SegmentObject> = {}): SegmentObject {
  const file = `mysql-bin.${String(n).padStart(6, '0')}`;
  return {
    file,
    seriesStart: epoch(opened),
    objectKey: `seg_1_${file}.${epoch(opened)}_${from}-${to}`,
    from,
    to,
    storedBytes: to - from,
    sha256: 'c'.repeat(64),
    compression: 'none',
    encrypted: false,
    lastCommitTime: lastCommit ? t(lastCommit) : null,
    closesFile: false,
    ...extra,
  };
}
// mysql-bin.000007, opened at 13:00 when 000006 closed, streamed in three segments up to 13:05:30.
const streamed = [segment(7, '13:00:00', 0, 400, '13:01:00'), segment(7, '13:00:00', 400, 900, '13:03:00'), segment(7, '13:00:00', 900, 1500, '13:05:30')];

test('latest with segments after archived files: the streamed file ends the chain at its last segment\'s last commit', () => {
  const segmented = segmentedCandidates(streamed, chain);
  assert.deepEqual(segmented.warnings, []);
  const p = planRestore({ fulls, binlogs: [...chain, ...segmented.binlogs], target: { kind: 'latest' } });
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000005', 'mysql-bin.000006', 'mysql-bin.000007']);
  const last = p.binlogs[2]!;
  assert.deepEqual(last.segments?.map((s) => [s.from, s.to]), [[0, 400], [400, 900], [900, 1500]]);
  assert.equal(last.objectKey, streamed[0]!.objectKey, 'named by its first segment');
  assert.equal(last.bytes, 1500);
  assert.deepEqual(last.startTime, t('13:00:00'), 'the series start');
  assert.deepEqual(p.coveredUntil, t('13:05:30'));
  // Input order does not matter, and a range recorded twice counts once.
  const shuffled = segmentedCandidates([streamed[2]!, streamed[0]!, streamed[1]!, streamed[1]!], chain);
  assert.deepEqual(shuffled.binlogs[0]!.segments?.map((s) => s.to), [400, 900, 1500]);
});

test('segments after a hole are not used, with a warning; segments not from byte 0 are no candidate', () => {
  const holed = [streamed[0]!, streamed[1]!, segment(7, '13:00:00', 1000, 1500, '13:05:30')];
  const r = segmentedCandidates(holed, chain);
  assert.deepEqual(r.binlogs[0]!.segments?.map((s) => s.to), [400, 900]);
  assert.deepEqual(r.binlogs[0]!.endTime, t('13:03:00'), 'the last commit of the last segment before the hole');
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!.message, /1 streamed segment\(s\) of mysql-bin\.000007 are not used: they start at byte 1000, and bytes 900-1000 are in no segment/);
  const p = planRestore({ fulls, binlogs: [...chain, ...r.binlogs], target: { kind: 'latest' } });
  assert.deepEqual(p.coveredUntil, t('13:03:00'));
  const headless = segmentedCandidates([streamed[1]!, streamed[2]!], chain);
  assert.deepEqual(headless.binlogs, []);
  assert.match(headless.warnings[0]!.message, /do not start at byte 0 \(the first starts at byte 400\)/);
  // Two cuts of the same bytes (a retried upload): the longest chain from 0 wins.
  const branches = chainSegments([{ from: 0, to: 100 }, { from: 0, to: 50 }, { from: 50, to: 300 }, { from: 100, to: 200 }]);
  assert.deepEqual(branches.chain, [{ from: 0, to: 50 }, { from: 50, to: 300 }]);
  assert.deepEqual(branches.afterHole, []);
});

test('a log_ object wins over segments of the same file and series; segments of another series are kept', () => {
  const lingering = [segment(6, '12:00:00', 0, 700, '12:40:00'), segment(6, '12:00:00', 700, 900, '12:59:00', { closesFile: true })];
  assert.deepEqual(segmentedCandidates(lingering, chain).binlogs, [], '000006 is archived whole');
  const p = planRestore({ fulls, binlogs: [...chain, ...segmentedCandidates([...lingering, ...streamed], chain).binlogs], target: { kind: 'latest' } });
  assert.equal(p.binlogs[1]!.objectKey, 'log_1_mysql-bin.000006');
  assert.equal(p.binlogs[1]!.segments, undefined);
  // mysql-bin.000006 of a series opened after a reset (another first-event time) is another file.
  const otherSeries = segmentedCandidates([segment(6, '14:00:00', 0, 300, '14:01:00')], chain);
  assert.equal(otherSeries.binlogs.length, 1);
});

test('a streamed file that closes ends where the next file starts; one that does not, followed by another file, is a gap', () => {
  const closed = [segment(7, '13:00:00', 0, 400, '13:01:00'), segment(7, '13:00:00', 400, 500, '13:09:00', { closesFile: true })];
  const next = binlog(8, '13:10:00', '13:20:00');
  const r = segmentedCandidates(closed, [...chain, next]);
  assert.deepEqual(r.binlogs[0]!.endTime, t('13:10:00'));
  const p = planRestore({ fulls, binlogs: [...chain, next, ...r.binlogs], target: { kind: 'latest' } });
  assert.deepEqual(p.binlogs.map((b) => b.file).slice(-2), ['mysql-bin.000007', 'mysql-bin.000008']);
  const open = segmentedCandidates(streamed, [...chain, next]);
  refusal(
    () => planRestore({ fulls, binlogs: [...chain, next, ...open.binlogs], target: { kind: 'latest' } }),
    'gap',
    /the end of mysql-bin\.000007 is not in the bucket \(its streamed segments reach byte 1500 and do not close the file/,
  );
});

test('a time target inside the streamed window plans the streamed file; one after its last commit is too late', () => {
  const binlogs = [...chain, ...segmentedCandidates(streamed, chain).binlogs];
  const p = planRestore({ fulls, binlogs, target: at('13:02:00') });
  assert.deepEqual(p.binlogs.map((b) => b.file), ['mysql-bin.000005', 'mysql-bin.000006', 'mysql-bin.000007']);
  assert.deepEqual(planRestore({ fulls, binlogs, target: at('13:05:30') }).binlogs.at(-1)!.file, 'mysql-bin.000007');
  assert.deepEqual(planRestore({ fulls, binlogs, target: at('12:30:00') }).following?.map((b) => b.file), ['mysql-bin.000007']);
  refusal(
    () => planRestore({ fulls, binlogs, target: at('13:05:31') }),
    'too-late',
    /target 2024-05-01 13:05:31 \+00:00 \(UTC\) is after the last transaction in the bucket: mysql-bin\.000007 is there only as streamed segments, up to byte 1500 \(last commit 2024-05-01 13:05:30\)/,
  );
});
