import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, parseConfig, redactConfig, requireOss } from '../../src/config/index.ts';

// The seed's own clone.ini example, verbatim (deployment guide §5).
const seedCloneIni = `[mysql-link]
# clone 数据库的连接信息
host = 127.0.0.1
port = 3306
user = backup_clone
password = xxxxxxx
charset = utf8

[metadata-link]
# 元数据中心库的连接信息
host = 172.16.104.7
port = 3306
user = op_user
password = xxxxxxx
database = op_service_db
charset = utf8


[backup-conf]
# clone 文件目录
backup_path = /data/clone_bak
# Binlog mysql-bin.index 文件目录
bin_index_path = /data/mysql_80/logs/mysql-bin.index
# 元数据 tb_instance 实例 ID
tb_instance_id = 106
# Bucket 名称
bucket_name = local
# 备份保留天数
full_storage_days = 7
# binlog 备份保留天数
binlog_storage_days = 7
# 是否为集群
is_cluster = on
# 是否开启 Debug
debug = off
`;

const ossSection = `
[redis]
url = redis://127.0.0.1:6379

[oss]
endpoint = 127.0.0.1:9000
access_key = minioadmin
secret_key = minio-secret
secure = off
`;

test('the seed clone.ini parses unchanged, with defaults for what it lacks', () => {
  const c = parseConfig(seedCloneIni, '/etc/clone.ini', {});
  assert.deepEqual(c.mysql, { host: '127.0.0.1', port: 3306, user: 'backup_clone', password: 'xxxxxxx', charset: 'utf8' });
  assert.equal(c.metadata.host, '172.16.104.7');
  assert.equal(c.metadata.database, 'op_service_db');
  assert.equal(c.backup.backupPath, '/data/clone_bak');
  assert.equal(c.backup.binIndexPath, '/data/mysql_80/logs/mysql-bin.index');
  assert.equal(c.backup.tbInstanceId, 106);
  assert.equal(c.backup.bucketName, 'local');
  assert.equal(c.backup.fullStorageDays, 7);
  assert.equal(c.backup.binlogStorageDays, 7);
  assert.equal(c.backup.isCluster, true);
  assert.equal(c.backup.debug, false);
  assert.equal(c.backup.compression, 'gzip');
  assert.equal(c.redis.url, 'redis://127.0.0.1:6379');
  assert.equal(c.schedule.full, '0 2 * * *');
  assert.equal(c.oss, undefined);
});

test('[oss] endpoint host:port, secure and bucket from bucket_name', () => {
  const c = parseConfig(seedCloneIni + ossSection, 'x.ini', {});
  const oss = requireOss(c);
  assert.equal(oss.endPoint, '127.0.0.1');
  assert.equal(oss.port, 9000);
  assert.equal(oss.useSSL, false);
  assert.equal(oss.bucket, 'local');
  assert.equal(oss.partSizeBytes, 16 * 1024 * 1024);
  const secure = parseConfig(seedCloneIni + ossSection.replace('secure = off', 'secure = on').replace(':9000', ''), 'x.ini', {});
  assert.equal(secure.oss!.port, 443);
});

test('uploads: 4 parts in flight and no rate limit by default, verify = parts; each key checked', () => {
  const defaults = parseConfig(seedCloneIni + ossSection, 'x.ini', {});
  assert.equal(defaults.oss!.uploadConcurrency, 4);
  assert.equal(defaults.oss!.maxUploadMbPerS, 0);
  assert.equal(defaults.backup.verify, 'parts');
  const set = parseConfig(seedCloneIni.replace('[backup-conf]', '[backup-conf]\nverify = download') + ossSection + 'upload_concurrency = 8\nmax_upload_mb_per_s = 50\n', 'x.ini', {});
  assert.equal(set.oss!.uploadConcurrency, 8);
  assert.equal(set.oss!.maxUploadMbPerS, 50);
  assert.equal(set.backup.verify, 'download');
  assert.equal(parseConfig(seedCloneIni.replace('[backup-conf]', '[backup-conf]\nverify = size'), 'x.ini', {}).backup.verify, 'size');
  assert.match(configError(seedCloneIni + ossSection + 'upload_concurrency = 0\n').message, /\[oss\] upload_concurrency .*must be between 1 and 64, got 0/);
  assert.match(configError(seedCloneIni + ossSection + 'max_upload_mb_per_s = -1\n').message, /\[oss\] max_upload_mb_per_s .*must be between 0 and 100000/);
  assert.match(configError(seedCloneIni.replace('[backup-conf]', '[backup-conf]\nverify = etag')).message, /\[backup-conf\] verify .*must be one of parts, download, size, got "etag"/);
});

test('compression: level checked per codec (gzip 1-9, zstd 1-19, else the codec default), threads and read limit', () => {
  const conf = (lines: string) => seedCloneIni.replace('[backup-conf]', `[backup-conf]\n${lines}`);
  const defaults = parseConfig(seedCloneIni, 'x.ini', {});
  assert.equal(defaults.backup.compressionLevel, undefined, "each codec's default");
  assert.equal(defaults.backup.compressionThreads, os.availableParallelism());
  assert.equal(defaults.backup.maxReadMbPerS, 0);
  const zstd = parseConfig(conf('compression = zstd\nbinlog_compression = zstd\ncompression_level = 19\ncompression_threads = 3\nmax_read_mb_per_s = 200'), 'x.ini', {});
  assert.equal(zstd.backup.compression, 'zstd');
  assert.equal(zstd.backup.binlogCompression, 'zstd');
  assert.equal(zstd.backup.compressionLevel, 19);
  assert.equal(zstd.backup.compressionThreads, 3);
  assert.equal(zstd.backup.maxReadMbPerS, 200);
  assert.equal(parseConfig(conf('compression_level = 9'), 'x.ini', {}).backup.compressionLevel, 9);
  assert.match(configError(conf('compression_level = 12')).message, /\[backup-conf\] compression_level .*12 is not a gzip level \(1-9, default 6\), and compression = gzip/);
  assert.match(
    configError(conf('compression = zstd\nbinlog_compression = gzip\ncompression_level = 12')).message,
    /12 is not a gzip level \(1-9, default 6\), and binlog_compression = gzip/,
  );
  assert.equal(parseConfig(conf('compression = zstd\ncompression_level = 12'), 'x.ini', {}).backup.compressionLevel, 12, 'binlogs uncompressed: no gzip to suit');
  assert.match(configError(conf('compression = zstd\ncompression_level = 20')).message, /compression_level .*20 is not a zstd level \(1-19, default 3\), and compression = zstd/);
  assert.match(configError(conf('compression = none\ncompression_level = 0')).message, /compression_level .*must be between 1 and 19 \(gzip 1-9, zstd 1-19\), got 0/);
  assert.match(configError(conf('compression = lz4')).message, /compression .*must be one of gzip, zstd, none, got "lz4"/);
  assert.match(configError(conf('compression_threads = 0')).message, /compression_threads .*must be between 1 and 1024, got 0/);
  assert.match(configError(conf('max_read_mb_per_s = -5')).message, /max_read_mb_per_s .*must be between 0 and 100000/);
});

test('environment variables override secrets', () => {
  const c = parseConfig(seedCloneIni + ossSection, 'x.ini', {
    MCB_MYSQL_PASSWORD: 'from-env-1',
    MCB_METADATA_PASSWORD: 'from-env-2',
    MCB_OSS_SECRET_KEY: 'from-env-3',
    MCB_REDIS_URL: 'redis://10.0.0.1:6380',
  });
  assert.equal(c.mysql!.password, 'from-env-1');
  assert.equal(c.metadata.password, 'from-env-2');
  assert.equal(c.oss!.secretKey, 'from-env-3');
  assert.equal(c.redis.url, 'redis://10.0.0.1:6380');
});

function configError(text: string): ConfigError {
  try {
    parseConfig(text, '/etc/mcb/clone.ini', {});
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.equal(err.exitCode, 2);
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('a misspelt key is named with its section, file and line', () => {
  const err = configError(seedCloneIni.replace('full_storage_days = 7', 'full_storge_days = 7'));
  assert.match(err.message, /\[backup-conf\] full_storge_days in \/etc\/mcb\/clone\.ini line \d+: unknown key/);
});

test('a missing required key is named', () => {
  const err = configError(seedCloneIni.replace('user = op_user\n', ''));
  assert.match(err.message, /\[metadata-link\] user in \/etc\/mcb\/clone\.ini: is required and missing/);
});

test('bad values are named with what was expected', () => {
  assert.match(configError(seedCloneIni.replace('port = 3306', 'port = 33o6')).message, /\[mysql-link\] port .*whole number, got "33o6"/);
  assert.match(configError(seedCloneIni.replace('is_cluster = on', 'is_cluster = maybe')).message, /is_cluster .*on or off/);
  assert.match(configError(seedCloneIni.replace('bucket_name = local', 'bucket_name = Local_Bucket')).message, /bucket_name .*not a valid S3 bucket name/);
  assert.match(configError(seedCloneIni.replace('backup_path = /data/clone_bak', 'backup_path = data')).message, /backup_path .*absolute/);
  assert.match(configError(seedCloneIni + '\n[schedule]\nfull = every day\n').message, /\[schedule\] full .*cron/);
  assert.match(configError(seedCloneIni + '\n[bogus]\nx = 1\n').message, /unknown section \[bogus\]/);
  assert.match(configError(seedCloneIni.replace('[backup-conf]', 'not a line\n[backup-conf]')).message, /line \d+: expected "key = value"/);
  assert.match(configError(seedCloneIni.replace('[metadata-link]', '[metadata-links]')).message, /unknown section \[metadata-links\]/);
});

test('missing or unreadable file gives a ConfigError naming it', () => {
  assert.throws(() => loadConfig('/nonexistent/clone.ini'), (e: unknown) => e instanceof ConfigError && /\/nonexistent\/clone\.ini.*ENOENT/.test(e.message));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-config-'));
  const file = path.join(dir, 'clone.ini');
  writeFileSync(file, seedCloneIni);
  assert.equal(loadConfig(file).backup.tbInstanceId, 106);
});

test('redacted config hides every secret', () => {
  const c = parseConfig(seedCloneIni + ossSection, 'x.ini', {});
  const text = JSON.stringify(redactConfig(c));
  assert.ok(!text.includes('xxxxxxx'));
  assert.ok(!text.includes('minio-secret'));
  assert.ok(!text.includes('minioadmin'));
});

test('[schedule] verify defaults to weekly and is checked like the other cron keys', () => {
  const c = parseConfig(seedCloneIni, '/etc/clone.ini', {});
  assert.equal(c.schedule.verify, '0 4 * * 0');
  assert.equal(parseConfig(seedCloneIni + '\n[schedule]\nverify = 30 3 * * 6\n', 'x.ini', {}).schedule.verify, '30 3 * * 6');
  assert.match(configError(seedCloneIni + '\n[schedule]\nverify = weekly\n').message, /\[schedule\] verify .*cron pattern with 5 or 6 fields, got "weekly"/);
});

test('[restore] is optional: root with no password, no binaries named (PATH is used)', () => {
  const c = parseConfig(seedCloneIni, '/etc/clone.ini', {});
  assert.deepEqual(c.restore, { sidRoot: undefined, mysqld: undefined, mysqlbinlog: undefined, mysql: undefined, scratchPath: undefined, user: 'root', password: '', downloadConcurrency: 4, replayMethod: 'applier' });
});

test('[restore] keys are read, MCB_RESTORE_PASSWORD overrides the password, and the password is redacted', () => {
  const withMysqld = `${seedCloneIni}
[restore]
mysqld = /opt/mysql/bin/mysqld
mysqlbinlog = /opt/mysql/bin/mysqlbinlog
mysql = mysql
scratch_path = /data/verify
user = restore_check
password = restore-secret
download_concurrency = 8
replay_method = mysqlbinlog
`;
  const c = parseConfig(withMysqld, 'x.ini', {});
  assert.deepEqual(c.restore, {
    sidRoot: undefined,
    mysqld: '/opt/mysql/bin/mysqld',
    mysqlbinlog: '/opt/mysql/bin/mysqlbinlog',
    mysql: 'mysql',
    scratchPath: '/data/verify',
    user: 'restore_check',
    password: 'restore-secret',
    downloadConcurrency: 8,
    replayMethod: 'mysqlbinlog',
  });
  assert.equal(parseConfig(withMysqld, 'x.ini', { MCB_RESTORE_PASSWORD: 'from-env' }).restore.password, 'from-env');
  assert.ok(!JSON.stringify(redactConfig(c)).includes('restore-secret'));
  const sid = parseConfig(`${seedCloneIni}\n[restore]\nsid_root = /var/cache/mcb/sid-root\n`, 'x.ini', {});
  assert.equal(sid.restore.sidRoot, '/var/cache/mcb/sid-root');
  assert.equal(sid.restore.mysqld, undefined);
  // The binary keys are the file's only: MCB_SID_ROOT / MCB_MYSQLD are applied later, by the restore code, over them.
  assert.equal(parseConfig(seedCloneIni, 'x.ini', { MCB_SID_ROOT: '/elsewhere' }).restore.sidRoot, undefined);
});

test('[restore] rejects unknown keys, relative paths and contradictory binaries', () => {
  const bad = (section: string) => configError(`${seedCloneIni}\n[restore]\n${section}\n`).message;
  assert.match(bad('mysqld_path = /usr/sbin/mysqld'), /\[restore\] mysqld_path in \/etc\/mcb\/clone\.ini line \d+: unknown key \(known keys: .*mysqld.*sid_root/);
  assert.match(bad('sid_root = sid-root'), /\[restore\] sid_root .*must be an absolute path, got "sid-root"/);
  assert.match(bad('scratch_path = tmp/verify'), /\[restore\] scratch_path .*must be an absolute path/);
  assert.match(bad('download_concurrency = 0'), /\[restore\] download_concurrency .*must be between 1 and 64, got 0/);
  assert.match(bad('replay_method = relay'), /\[restore\] replay_method .*must be one of applier, mysqlbinlog, got "relay"/);
  assert.match(bad('mysqld = bin/mysqld'), /\[restore\] mysqld .*absolute path or a program name on PATH, got "bin\/mysqld"/);
  assert.match(bad('sid_root = /sid\nmysqld = /usr/sbin/mysqld'), /\[restore\] mysqld .*give sid_root or mysqld, not both/);
  assert.match(bad('sid_root = /sid\nmysqlbinlog = /usr/bin/mysqlbinlog'), /\[restore\] mysqlbinlog .*sid_root provides mysqlbinlog and mysql/);
  assert.match(configError(`${seedCloneIni}\n[restores]\nuser = x\n`).message, /unknown section \[restores\] .*known sections: .*restore/);
});

test('a bad Redis URL is reported without its password', () => {
  const err = configError(seedCloneIni + '\n[redis]\nurl = http://:topsecret@127.0.0.1:1/0\n');
  assert.match(err.message, /\[redis\] url .*must start with redis:\/\//);
  assert.ok(!err.message.includes('topsecret'));
});

test('[metadata-link] time_zone and [schedule] timezone: an IANA name or ±HH:MM, checked at load time', () => {
  const withZone = (metadataZone: string, scheduleZone?: string) =>
    seedCloneIni.replace('database = op_service_db\n', `database = op_service_db\ntime_zone = ${metadataZone}\n`) +
    (scheduleZone === undefined ? '' : `\n[schedule]\ntimezone = ${scheduleZone}\n`);
  assert.equal(parseConfig(seedCloneIni, 'x.ini', {}).metadata.timeZone, undefined, "absent: the metadata server's zone, found at connect");
  assert.deepEqual(parseConfig(withZone('Asia/Shanghai'), 'x.ini', {}).metadata.timeZone, { kind: 'iana', name: 'Asia/Shanghai' });
  assert.deepEqual(parseConfig(withZone('+08:00', 'Europe/Berlin'), 'x.ini', {}).metadata.timeZone, { kind: 'offset', name: '+08:00', offsetSeconds: 28800 });
  assert.deepEqual(parseConfig(withZone('UTC', 'Europe/Berlin'), 'x.ini', {}).schedule.timezone, { kind: 'iana', name: 'Europe/Berlin' });
  assert.match(configError(withZone('Asia/Shangai')).message, /\[metadata-link\] time_zone in \/etc\/mcb\/clone\.ini line \d+: unknown time zone "Asia\/Shangai"/);
  assert.match(configError(withZone('CST')).message, /\[metadata-link\] time_zone in .* line \d+: "CST" is an abbreviation/);
  assert.match(configError(withZone('+25:00')).message, /\[metadata-link\] time_zone .*out of range/);
  assert.match(configError(withZone('UTC', 'Mars/Base')).message, /\[schedule\] timezone in \/etc\/mcb\/clone\.ini line \d+: unknown time zone "Mars\/Base"/);
});

test('[redis] sentinels: the primary named by sentinel_master, found through the sentinels (port 26379 by default)', () => {
  const c = parseConfig(
    `${seedCloneIni}\n[redis]\nsentinels = 10.0.0.1:26380, 10.0.0.2,[fd00::3]:26381\nsentinel_master = mymaster\nsentinel_password = s3nt\n`,
    'x.ini',
    { MCB_REDIS_PASSWORD: 'from-env' },
  );
  assert.deepEqual(c.redis.sentinels, [
    { host: '10.0.0.1', port: 26380 },
    { host: '10.0.0.2', port: 26379 },
    { host: 'fd00::3', port: 26381 },
  ]);
  assert.equal(c.redis.sentinelMaster, 'mymaster');
  assert.equal(c.redis.sentinelPassword, 's3nt');
  assert.equal(c.redis.password, 'from-env');
  assert.equal(c.redis.prefix, 'mcb');
  assert.equal(c.redis.url, 'redis+sentinel://10.0.0.1:26380,10.0.0.2:26379,[fd00::3]:26381/mymaster', 'printable, without secrets');
  const shown = JSON.stringify(redactConfig(c));
  assert.ok(!shown.includes('s3nt') && !shown.includes('from-env'), shown);
});

test('[redis] sentinels: master name required, one way of reaching Redis only, nodes checked', () => {
  const redis = (body: string) => configError(`${seedCloneIni}\n[redis]\n${body}\n`).message;
  assert.match(redis('sentinels = 10.0.0.1:26379'), /\[redis\] sentinel_master in \/etc\/mcb\/clone\.ini: is required with sentinels/);
  assert.match(redis('url = redis://10.0.0.1:6379\nsentinels = 10.0.0.1:26379\nsentinel_master = m'), /\[redis\] sentinels in .* line \d+: give one of url .*, sentinels or cluster_nodes, not url and sentinels/);
  assert.match(redis('sentinel_master = mymaster'), /\[redis\] sentinel_master .*: is only used with sentinels/);
  assert.match(redis('sentinels = 10.0.0.1:99999\nsentinel_master = m'), /\[redis\] sentinels .*port 99999 is out of range/);
  assert.match(redis('sentinels = 10.0.0.1:26379,,10.0.0.2\nsentinel_master = m'), /\[redis\] sentinels .*must be host:port\[,host:port\.\.\.\], got ""/);
  assert.match(redis('url = redis://:pw@10.0.0.1:6379\npassword = other'), /\[redis\] password .*the url already holds credentials/);
});

test('[redis] cluster_nodes: the prefix must be a hash tag, {mcb} by default', () => {
  const cluster = (extra = '') => `${seedCloneIni}\n[redis]\ncluster_nodes = 10.0.0.1:7000,10.0.0.2:7001,10.0.0.3\n${extra}`;
  const c = parseConfig(cluster(), 'x.ini', {});
  assert.deepEqual(c.redis.clusterNodes, [
    { host: '10.0.0.1', port: 7000 },
    { host: '10.0.0.2', port: 7001 },
    { host: '10.0.0.3', port: 6379 },
  ]);
  assert.equal(c.redis.prefix, '{mcb}');
  assert.equal(c.redis.url, 'redis+cluster://10.0.0.1:7000,10.0.0.2:7001,10.0.0.3:6379');
  assert.equal(parseConfig(cluster('prefix = {backups}\n'), 'x.ini', {}).redis.prefix, '{backups}');
  assert.equal(parseConfig(cluster('prefix = mcb{prod}\n'), 'x.ini', {}).redis.prefix, 'mcb{prod}');
  const err = configError(cluster('prefix = mcb\n'));
  assert.match(err.message, /\[redis\] prefix in \/etc\/mcb\/clone\.ini line \d+: must hold a hash tag in braces with cluster_nodes, e\.g\. \{mcb\} .*got "mcb"/);
  assert.match(configError(cluster('prefix = {}\n')).message, /must hold a hash tag/);
  assert.match(configError(cluster('sentinel_master = m\n')).message, /\[redis\] sentinel_master .*only used with sentinels/);
  // A single server keeps the plain default prefix; braces are allowed there too.
  assert.equal(parseConfig(seedCloneIni, 'x.ini', {}).redis.prefix, 'mcb');
  assert.equal(parseConfig(`${seedCloneIni}\n[redis]\nprefix = {mcb}\n`, 'x.ini', {}).redis.prefix, '{mcb}');
});

test('[encryption]: off by default; key_file or MCB_ENCRYPTION_KEY encrypts, key_files only decrypt; keys never printed', () => {
  assert.equal(parseConfig(seedCloneIni, 'x.ini', {}).encryption.current, undefined, 'seed users see no change');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-enc-config-'));
  const current = path.join(dir, 'current.key');
  const old = path.join(dir, 'old.key');
  writeFileSync(current, `${'1a'.repeat(32)}\n`, { mode: 0o600 });
  writeFileSync(old, '2b'.repeat(32), { mode: 0o600 });
  const c = parseConfig(`${seedCloneIni}\n[encryption]\nkey_file = ${current}\nkey_files = ${old}\n`, 'x.ini', {});
  assert.ok(c.encryption.current);
  assert.equal(c.encryption.ids.length, 2);
  const printed = JSON.stringify(redactConfig(c));
  assert.ok(!printed.includes('1a1a1a') && !printed.includes('2b2b2b') && printed.includes(c.encryption.current.id), printed);

  const fromEnv = parseConfig(seedCloneIni, 'x.ini', { MCB_ENCRYPTION_KEY: '3c'.repeat(32) });
  assert.ok(fromEnv.encryption.current);
  assert.throws(() => parseConfig(seedCloneIni, 'x.ini', { MCB_ENCRYPTION_KEY: 'secret-but-short' }), (e: Error) => e instanceof ConfigError && /^MCB_ENCRYPTION_KEY must hold a 256-bit key as 64 hex characters/.test(e.message) && !e.message.includes('secret-but-short'));
  assert.throws(() => parseConfig(`${seedCloneIni}\n[encryption]\nkey_file = ${path.join(dir, 'absent.key')}\n`, 'x.ini', {}), /\[encryption\] key_file in x\.ini line \d+: cannot read key file .*absent\.key: ENOENT/);
  assert.throws(() => parseConfig(`${seedCloneIni}\n[encryption]\nkey_file = relative.key\n`, 'x.ini', {}), /key_file .*must be an absolute path/);
  assert.throws(() => parseConfig(`${seedCloneIni}\n[encryption]\nkey_files = ${old}\n`, 'x.ini', {}), /key_files .*needs key_file \(or MCB_ENCRYPTION_KEY\)/);
  assert.throws(() => parseConfig(`${seedCloneIni}\n[encryption]\nkey = 1\n`, 'x.ini', {}), /\[encryption\] key in x\.ini line \d+: unknown key/);
});

test('programs we start get our environment without any secret (mysqld may run as another account)', async () => {
  const { childEnvironment, secretEnvNames } = await import('../../src/config/index.ts');
  const env: NodeJS.ProcessEnv = { PATH: '/usr/bin', LD_LIBRARY_PATH: '/x', MCB_SID_ROOT: '/sid' };
  for (const name of secretEnvNames) env[name] = 'secret';
  const child = childEnvironment(env);
  assert.deepEqual(child, { PATH: '/usr/bin', LD_LIBRARY_PATH: '/x', MCB_SID_ROOT: '/sid' });
  assert.ok(secretEnvNames.includes('MCB_ENCRYPTION_KEY') && secretEnvNames.includes('MCB_OSS_SECRET_KEY'));
  // Every secret the config reads from the environment is in the list.
  const source = (await import('node:fs')).readFileSync(new URL('../../src/config/index.ts', import.meta.url), 'utf8');
  const read = new Set([...source.matchAll(/'(MCB_[A-Z_]*(?:PASSWORD|KEY|TOKEN|URL))'/g)].map((m) => m[1]!));
  for (const name of read) assert.ok((secretEnvNames as readonly string[]).includes(name), `${name} is missing from secretEnvNames`);
});

test('binlog streaming: off by default; interval and RPO threshold checked, the threshold following the setup', () => {
  const conf = (lines: string) => seedCloneIni.replace('[backup-conf]', `[backup-conf]\n${lines}`);
  const defaults = parseConfig(seedCloneIni, 'x.ini', {});
  assert.equal(defaults.backup.binlogStream, false);
  assert.equal(defaults.backup.binlogStreamIntervalSeconds, 10);
  assert.equal(defaults.backup.maxRpoSeconds, 5 * 60 + 60, 'not streaming: max_rpo_minutes and a minute');
  const streaming = parseConfig(conf('binlog_stream = on\nbinlog_stream_interval_seconds = 3'), 'x.ini', {});
  assert.equal(streaming.backup.binlogStream, true);
  assert.equal(streaming.backup.binlogStreamIntervalSeconds, 3);
  assert.equal(streaming.backup.maxRpoSeconds, 63, 'streaming: the interval and a minute');
  assert.equal(parseConfig(conf('binlog_stream = on\nmax_rpo_seconds = 30'), 'x.ini', {}).backup.maxRpoSeconds, 30);
  assert.match(configError(conf('binlog_stream_interval_seconds = 0')).message, /binlog_stream_interval_seconds .*must be between 1 and 3600, got 0/);
  assert.match(configError(conf('binlog_stream = maybe')).message, /\[backup-conf\] binlog_stream/);
  assert.match(configError(conf('max_rpo_seconds = 0')).message, /max_rpo_seconds .*must be between 1/);
});
