// Which server binaries a restore or restore test runs: flags, then MCB_SID_ROOT / MCB_MYSQLD, then [restore],
// then PATH; and the `mysqld --version` probe the verify job uses to skip hosts without a usable MySQL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RestoreConfig } from '../../src/config/index.ts';
import { mysqldFromPath } from '../../src/mysql/mysqld.ts';
import { probeMysqld, resolveRestoreBinaries } from '../../src/restore/binaries.ts';

const none: RestoreConfig = { user: 'root', password: '' };
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
