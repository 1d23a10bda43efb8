import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backupUuidFor, binlogObjectName, binlogSegmentObjectName, binlogSegmentObjectPrefix, compactTimestamp, compressionOfObjectName, fullBackupBaseOf, fullBackupObjectName, humanBytes, parseObjectName, seedFullObjectName } from '../../src/naming.ts';
import { objectKeyOf } from '../../src/metadata/expiry-queries.ts';
import { fullBackupFiles } from '../../src/jobs/full-files.ts';
import { splitStatements, loadMigrations } from '../../src/metadata/migrate.ts';
import { parseTimeZone, UTC } from '../../src/time/zone.ts';

test("object names follow the seed: bak_<id>_<YYYYmmddHHMMSS>.tar.gz and log_<id>_<binlog>", () => {
  const at = new Date('2023-10-26T02:25:57Z');
  const shanghai = parseTimeZone('Asia/Shanghai');
  assert.equal(compactTimestamp(at, shanghai), '20231026102557', 'in the metadata time zone, whatever the process TZ');
  assert.equal(compactTimestamp(at, UTC), '20231026022557');
  assert.equal(fullBackupObjectName(106, at, shanghai, '.gz'), 'bak_106_20231026102557.tar.gz');
  assert.equal(fullBackupObjectName(106, at, shanghai, ''), 'bak_106_20231026102557.tar');
  assert.equal(binlogObjectName(106, 'mysql-bin.000012'), 'log_106_mysql-bin.000012');
  assert.equal(fullBackupObjectName(106, at, shanghai, '.zst'), 'bak_106_20231026102557.tar.zst');
  assert.equal(binlogObjectName(106, 'mysql-bin.000012', '.zst'), 'log_106_mysql-bin.000012.zst');
  assert.deepEqual(parseObjectName('bak_106_20231026102557.tar.gz'), { type: 'full', instanceId: 106, timestamp: '20231026102557', compression: 'gzip', encrypted: false });
  assert.deepEqual(parseObjectName('bak_106_20231026102557.tar.zst'), { type: 'full', instanceId: 106, timestamp: '20231026102557', compression: 'zstd', encrypted: false });
  assert.deepEqual(parseObjectName('bak_106_20231026102557.tar'), { type: 'full', instanceId: 106, timestamp: '20231026102557', compression: 'none', encrypted: false });
  assert.deepEqual(parseObjectName('log_106_mysql-bin.000012'), { type: 'binlog', instanceId: 106, binlogFile: 'mysql-bin.000012', compression: 'none', encrypted: false });
  assert.deepEqual(parseObjectName('log_7_binlog.000003.gz'), { type: 'binlog', instanceId: 7, binlogFile: 'binlog.000003', compression: 'gzip', encrypted: false });
  assert.deepEqual(parseObjectName('log_7_binlog.000003.1764600000.zst'), { type: 'binlog', instanceId: 7, binlogFile: 'binlog.000003.1764600000', compression: 'zstd', encrypted: false });
  assert.deepEqual(parseObjectName('bak_106_20231026102557.tar.gz.enc'), { type: 'full', instanceId: 106, timestamp: '20231026102557', compression: 'gzip', encrypted: true });
  assert.deepEqual(parseObjectName('log_7_binlog.000003.enc'), { type: 'binlog', instanceId: 7, binlogFile: 'binlog.000003', compression: 'none', encrypted: true });
  assert.deepEqual(parseObjectName('log_7_binlog.000003.1764600000.zst.enc'), { type: 'binlog', instanceId: 7, binlogFile: 'binlog.000003.1764600000', compression: 'zstd', encrypted: true });
  assert.equal(fullBackupBaseOf('bak_106_20231026102557.tar.zst.enc'), 'bak_106_20231026102557');
  assert.equal(compressionOfObjectName('bak_106_20231026102557.tar.gz.enc'), 'gzip');
  assert.equal(parseObjectName('bak_106_20231026102557.tar.bz2'), undefined);
  assert.equal(parseObjectName('random.txt'), undefined);
  assert.equal(compressionOfObjectName('bak_1_20231026102557.tar.zst'), 'zstd');
  assert.equal(compressionOfObjectName('log_1_mysql-bin.000001.gz'), 'gzip');
  assert.equal(compressionOfObjectName('log_1_mysql-bin.000001'), 'none');
  assert.equal(fullBackupBaseOf('bak_1_20231026102557.tar.zst'), 'bak_1_20231026102557');
  assert.equal(fullBackupBaseOf('bak_1_20231026102557.tar.gz'), 'bak_1_20231026102557');
});

test('local files derive from the row: clone dir and archive side by side', () => {
  assert.deepEqual(fullBackupFiles({ backupPath: '/data/clone_bak', backupName: 'bak_106_20231026102557.tar.gz' }), {
    cloneDir: '/data/clone_bak/bak_106_20231026102557',
    archiveFile: '/data/clone_bak/bak_106_20231026102557.tar.gz',
  });
});

test('backup uuids are deterministic per job and shaped like uuids', () => {
  const a = backupUuidFor('full:1:job-1');
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(a.length, 36);
  assert.equal(backupUuidFor('full:1:job-1'), a);
  assert.notEqual(backupUuidFor('full:1:job-2'), a);
});

test('human sizes fit the seed varchar(10) backup_size', () => {
  assert.equal(humanBytes(0), '0B');
  assert.equal(humanBytes(1023), '1023B');
  assert.equal(humanBytes(1536), '1.5K');
  assert.equal(humanBytes(50 * 1024 ** 3), '50.0G');
  assert.equal(humanBytes(999 * 1024 ** 5), '999P');
  for (const n of [0, 1, 1e3, 1e6, 1e9, 1e12, 1e15, 9e18]) assert.ok(humanBytes(n).length <= 10);
});

test('migrations are numbered and split into single statements', () => {
  const migrations = loadMigrations();
  assert.deepEqual(migrations.map((m) => m.version), [...migrations.map((m) => m.version)].sort((a, b) => a - b));
  assert.equal(migrations[0]!.statements.length, 2);
  assert.deepEqual(splitStatements('-- c\nSELECT 1;\nSELECT 2;\n'), ['SELECT 1', 'SELECT 2']);
});

test('seedFullObjectName: the archive a seed-era full row names, in either form the seed wrote', () => {
  assert.equal(seedFullObjectName('bak_106_20231026102557'), 'bak_106_20231026102557.tar.gz');
  assert.equal(seedFullObjectName('bak_106_20231026102557.tar.gz'), 'bak_106_20231026102557.tar.gz');
  assert.equal(seedFullObjectName(' bak_106_20231026102557.tar '), 'bak_106_20231026102557.tar');
  for (const other of ['', null, undefined, 'log_106_mysql-bin.000001', 'bak_106_2023.tar.gz', '../bak_1_20231026102557']) {
    assert.equal(seedFullObjectName(other), undefined, String(other));
  }
  assert.equal(objectKeyOf({ objectKey: null, backupName: 'bak_106_20231026102557', backupType: 'full' }), 'bak_106_20231026102557.tar.gz');
  assert.equal(objectKeyOf({ objectKey: null, backupName: 'log_106_mysql-bin.000001', backupType: 'binlog' }), 'log_106_mysql-bin.000001');
  assert.equal(objectKeyOf({ objectKey: 'k', backupName: 'bak_106_20231026102557', backupType: 'full' }), 'k');
});

test('segment objects: seg_<id>_<file>.<series start>_<from>-<to>, parsed back, never taken for a log_ binlog', () => {
  const key = binlogSegmentObjectName(7, 'mysql-bin.000042', 1765000000, 0, 15234, '.zst.enc');
  assert.equal(key, 'seg_7_mysql-bin.000042.1765000000_0-15234.zst.enc');
  assert.ok(key.startsWith(binlogSegmentObjectPrefix(7, 'mysql-bin.000042', 1765000000)));
  assert.deepEqual(parseObjectName(key), { type: 'segment', instanceId: 7, binlogFile: 'mysql-bin.000042', seriesStart: 1765000000, from: 0, to: 15234, compression: 'zstd', encrypted: true });
  assert.deepEqual(parseObjectName('seg_7_host-bin.000003.1765000000_15234-99999'), {
    type: 'segment', instanceId: 7, binlogFile: 'host-bin.000003', seriesStart: 1765000000, from: 15234, to: 99999, compression: 'none', encrypted: false,
  });
  assert.equal(parseObjectName('seg_7_mysql-bin.000042_0-1'), undefined, 'no series start');
});
