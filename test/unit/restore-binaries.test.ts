// Which server binaries a restore or restore test runs: flags, then MCB_SID_ROOT / MCB_MYSQLD, then [restore],
// then PATH, with mysqlbinlog/mysql defaulting to the ones beside mysqld; the `mysqld --version` probe the verify
// job uses to skip hosts without a usable MySQL; and the check of all three before a restore (fake programs
// printing MySQL and MariaDB version lines).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RestoreConfig } from '../../src/config/index.ts';
import { mysqldFromPath } from '../../src/mysql/mysqld.ts';
import { checkRestoreTools, probeMysqld, resolveRestoreBinaries, RestoreToolError } from '../../src/restore/binaries.ts';
import { binariesFromPath } from '../../src/restore/run.ts';

const none: RestoreConfig = { user: 'root', password: '', downloadConcurrency: 4, replayMethod: 'applier' };
const last = (cmd: string[]) => cmd[cmd.length - 1];

test('nothing configured: mysqld, mysqlbinlog and mysql from PATH, marked default', () => {
  const r = resolveRestoreBinaries(none, {}, {});
  assert.equal(r.from, 'default');
  assert.deepEqual(r.binaries.mysqld.command, ['mysqld']);
  assert.deepEqual(r.binaries.mysqlbinlog.command, ['mysqlbinlog']);
});

test('[restore] is used when neither flags nor env name a server', () => {
  const r = resolveRestoreBinaries({ ...none, mysqld: '/opt/m/mysqld', mysqlbinlog: '/opt/m/mysqlbinlog', mysql: '/opt/m/mysql' }, {}, {});
  assert.equal(r.from, 'config');
  assert.deepEqual(r.binaries.mysqld.command, ['/opt/m/mysqld']);
  assert.deepEqual(r.binaries.mysqlbinlog.command, ['/opt/m/mysqlbinlog']);
  assert.deepEqual(r.binaries.mysql.command, ['/opt/m/mysql']);
  const sid = resolveRestoreBinaries({ ...none, sidRoot: '/sid' }, {}, {});
  assert.equal(sid.from, 'config');
  assert.equal(last(sid.binaries.mysqld.command), '/sid/usr/sbin/mysqld');
  assert.equal(last(sid.binaries.mysqlbinlog.command), '/sid/usr/bin/mysqlbinlog');
});

test('env overrides [restore], flags override both', () => {
  const config = { ...none, mysqld: '/opt/m/mysqld' };
  const env = resolveRestoreBinaries(config, {}, { MCB_SID_ROOT: '/sid' });
  assert.equal(env.from, 'env');
  assert.equal(last(env.binaries.mysqld.command), '/sid/usr/sbin/mysqld');
  assert.equal(resolveRestoreBinaries(config, {}, { MCB_MYSQLD: '/env/mysqld' }).binaries.mysqld.command[0], '/env/mysqld');
  const flags = resolveRestoreBinaries(config, { mysqld: '/flag/mysqld', mysqlbinlog: '/flag/mysqlbinlog' }, { MCB_SID_ROOT: '/sid' });
  assert.equal(flags.from, 'flags');
  assert.deepEqual(flags.binaries.mysqld.command, ['/flag/mysqld']);
  assert.deepEqual(flags.binaries.mysqlbinlog.command, ['/flag/mysqlbinlog']);
});

test('probeMysqld: a missing binary, MariaDB and an old MySQL are unusable; MySQL 8.0.17+ is usable', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-probe-'));
  const fake = (name: string, line: string) => {
    const file = path.join(dir, name);
    writeFileSync(file, `#!/bin/sh\necho '${line}'\n`);
    chmodSync(file, 0o755);
    return mysqldFromPath(file);
  };
  const missing = await probeMysqld(mysqldFromPath(path.join(dir, 'nope')));
  assert.equal(missing.ok, false);
  assert.match(!missing.ok ? missing.reason : '', /cannot run .*nope: ENOENT/);
  const maria = await probeMysqld(fake('maria', '/usr/sbin/mysqld  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64'));
  assert.match(!maria.ok ? maria.reason : '', /is MariaDB 10\.11\.19-MariaDB.*needs MySQL 8\.0\.17 or later/);
  const old = await probeMysqld(fake('old', '/usr/sbin/mysqld  Ver 8.0.16 for Linux on x86_64'));
  assert.match(!old.ok ? old.reason : '', /is MySQL 8\.0\.16; a CLONE datadir needs 8\.0\.17/);
  const good = await probeMysqld(fake('good', '/usr/sbin/mysqld  Ver 9.7.4-2 for Linux on x86_64 ((Debian))'));
  assert.deepEqual(good, { ok: true, version: '9.7.4-2' });
});

/** A fake program printing `line` for --version. */
function fakeProgram(file: string, line: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `#!/bin/sh\necho '${line}'\n`);
  chmodSync(file, 0o755);
  return file;
}

const MYSQLD_97 = 'mysqld  Ver 9.7.4-2 for Linux on x86_64 ((Debian))';
const MYSQLBINLOG_97 = 'mysqlbinlog  Ver 9.7.4-2 for Linux on x86_64 ((Debian))';
const MYSQL_97 = 'mysql  Ver 9.7.4-2 for Linux on x86_64 ((Debian))';
const MARIADB_MYSQL = 'mysql  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64) using  EditLine wrapper';
const MARIADB_BINLOG = 'mysqlbinlog Ver 3.5 for debian-linux-gnu at x86_64';

test('mysqlbinlog and mysql default to the ones beside mysqld (same directory, or ../bin of sbin/mysqld), before PATH', (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-beside-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // An installation like /usr/local/mysql: sbin/mysqld, bin/mysqlbinlog, bin/mysql.
  const mysqld = fakeProgram(path.join(dir, 'inst/sbin/mysqld'), MYSQLD_97);
  fakeProgram(path.join(dir, 'inst/bin/mysqlbinlog'), MYSQLBINLOG_97);
  fakeProgram(path.join(dir, 'inst/bin/mysql'), MYSQL_97);
  const flags = resolveRestoreBinaries(none, { mysqld }, {});
  assert.deepEqual(flags.binaries.mysqlbinlog.command, [path.join(dir, 'inst/bin/mysqlbinlog')]);
  assert.deepEqual(flags.binaries.mysql.command, [path.join(dir, 'inst/bin/mysql')]);
  // Named ones win over the ones beside mysqld.
  const named = resolveRestoreBinaries({ ...none, mysqld, mysql: '/opt/other/mysql' }, {}, {});
  assert.deepEqual(named.binaries.mysql.command, ['/opt/other/mysql']);
  assert.deepEqual(named.binaries.mysqlbinlog.command, [path.join(dir, 'inst/bin/mysqlbinlog')]);
  // The same directory comes first.
  const flat = fakeProgram(path.join(dir, 'flat/mysqld'), MYSQLD_97);
  fakeProgram(path.join(dir, 'flat/mysqlbinlog'), MYSQLBINLOG_97);
  assert.deepEqual(resolveRestoreBinaries(none, {}, { MCB_MYSQLD: flat }).binaries.mysqlbinlog.command, [path.join(dir, 'flat/mysqlbinlog')]);
  assert.deepEqual(resolveRestoreBinaries(none, {}, { MCB_MYSQLD: flat }).binaries.mysql.command, ['mysql'], 'none beside it: PATH');
  // Nothing configured: the mysqld found on PATH, and the tools beside it rather than the first ones on PATH.
  fakeProgram(path.join(dir, 'maria/bin/mysqlbinlog'), MARIADB_BINLOG);
  const fromPath = resolveRestoreBinaries(none, {}, { PATH: `${path.join(dir, 'maria/bin')}:${path.join(dir, 'inst/sbin')}` });
  assert.equal(fromPath.from, 'default');
  assert.deepEqual(fromPath.binaries.mysqld.command, ['mysqld']);
  assert.deepEqual(fromPath.binaries.mysqlbinlog.command, [path.join(dir, 'inst/bin/mysqlbinlog')]);
});

test('checkRestoreTools: MySQL clients at least the server version pass; MariaDB, older and unknown ones are one-line errors, exit code 2', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-tools-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = (name: string, line: string) => fakeProgram(path.join(dir, name), line);
  let n = 0;
  const tools = (mysqld: string, mysqlbinlog: string, mysql: string) => {
    const sub = `set${++n}`;
    return binariesFromPath(f(`${sub}/mysqld`, mysqld), { mysqlbinlog: f(`${sub}/mysqlbinlog`, mysqlbinlog), mysql: f(`${sub}/mysql`, mysql) });
  };
  const rejects = async (promise: Promise<unknown>, re: RegExp) =>
    assert.rejects(promise, (e: unknown) => {
      assert.ok(e instanceof RestoreToolError, String(e));
      assert.equal(e.exitCode, 2);
      assert.doesNotMatch(e.message, /\n/, 'one line');
      assert.match(e.message, re);
      return true;
    });

  assert.deepEqual(await checkRestoreTools(tools(MYSQLD_97, MYSQLBINLOG_97, MYSQL_97), {}), { mysqld: '9.7.4-2', mysqlbinlog: '9.7.4-2', mysql: '9.7.4-2' });
  const newer = await checkRestoreTools(tools(MYSQLD_97, 'mysqlbinlog  Ver 9.8.0 for Linux on x86_64', 'mysql  Ver 10.0.1 for Linux on x86_64'), {});
  assert.deepEqual(newer, { mysqld: '9.7.4-2', mysqlbinlog: '9.8.0', mysql: '10.0.1' });

  await rejects(checkRestoreTools(tools(MYSQLD_97, MYSQLBINLOG_97, MARIADB_MYSQL), {}), /^mysql \S+\/set\d+\/mysql is MariaDB's \("mysql  Ver 15\.1 Distrib 10\.11\.19-MariaDB.*needs MySQL's mysql 9\.7\.4-2 or later/);
  await rejects(checkRestoreTools(tools(MYSQLD_97, 'mysqlbinlog  Ver 8.0.36 for Linux on x86_64', MYSQL_97), {}), /^mysqlbinlog \S+ is MySQL 8\.0\.36, older than the server \(mysqld 9\.7\.4-2\)/);
  await rejects(checkRestoreTools(tools(MYSQLD_97, MYSQLBINLOG_97, 'mysql  Ver 9.7.3 for Linux on x86_64'), {}), /^mysql \S+ is MySQL 9\.7\.3, older than the server/);
  // MariaDB's mysqlbinlog does not say MariaDB: "Ver 3.5" is no MySQL version.
  await rejects(checkRestoreTools(tools(MYSQLD_97, MARIADB_BINLOG, MYSQL_97), {}), /^mysqlbinlog \S+ is not a MySQL 8\.0\+ mysqlbinlog \(its --version says "mysqlbinlog Ver 3\.5/);
  // …but it is a link to mariadb-binlog, and a bare name is looked up on PATH and shown with its path.
  const pathDir = path.join(dir, 'path');
  fakeProgram(path.join(pathDir, 'mariadb-binlog'), MARIADB_BINLOG);
  symlinkSync('mariadb-binlog', path.join(pathDir, 'mysqlbinlog'));
  const onPath = binariesFromPath(f('mysqld-97', MYSQLD_97), { mysql: f('mysql-97', MYSQL_97) });
  await rejects(checkRestoreTools(onPath, { PATH: pathDir }), new RegExp(`^mysqlbinlog mysqlbinlog \\(${pathDir}/mysqlbinlog on PATH\\) is MariaDB's`));
  await rejects(checkRestoreTools(binariesFromPath(path.join(dir, 'missing')), {}), /^mysqld: cannot run \S+missing: ENOENT/);
  await rejects(checkRestoreTools(tools('mysqld  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64', MYSQLBINLOG_97, MYSQL_97), {}), /^mysqld: \S+ is MariaDB 10\.11\.19/);
  await rejects(checkRestoreTools(binariesFromPath(f('mysqld-ok', MYSQLD_97), { mysqlbinlog: path.join(dir, 'no-binlog'), mysql: f('mysql-ok', MYSQL_97) }), {}), /^mysqlbinlog: cannot run \S+no-binlog: ENOENT/);
});
