// Deletes confined to their roots (src/fs/contained-rm.ts), local file names from object keys (src/fs/safe-name.ts)
// and the warning for a readable clone.ini holding secrets (src/config/file-mode.ts), on a real temporary directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkDeletable, OutsideRootError, removeFile, removeTree } from '../../src/fs/contained-rm.ts';
import { localFileName } from '../../src/fs/safe-name.ts';
import { readableKeyFileWarnings, readableSecretsWarning } from '../../src/config/file-mode.ts';

let dir: string;
let backup: string;
let outside: string;
const within = () => ({ backup_path: backup });

/** backup_path with one clone dir in it, a sibling with a name that starts like it, and a victim outside. */
before(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-contained-'));
  backup = path.join(dir, 'backup');
  outside = path.join(dir, 'victim');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function freshTree(): void {
  for (const d of [backup, outside, `${backup}2`]) rmSync(d, { recursive: true, force: true });
  mkdirSync(path.join(backup, 'bak_1_20260101000000', 'mysql'), { recursive: true });
  writeFileSync(path.join(backup, 'bak_1_20260101000000', 'mysql.ibd'), 'x');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'keep'), 'precious');
  mkdirSync(`${backup}2`);
  writeFileSync(path.join(`${backup}2`, 'keep'), 'precious');
}

async function refused(p: string, pattern: RegExp, opts: { allowRoot?: boolean } = {}): Promise<void> {
  await assert.rejects(removeTree(p, { within: within(), ...opts }), (err: Error) => {
    assert.ok(err instanceof OutsideRootError, err.message);
    assert.match(err.message, pattern);
    return true;
  });
}

test('a tree inside backup_path is removed; one that does not exist is no error', async () => {
  freshTree();
  await removeTree(path.join(backup, 'bak_1_20260101000000'), { within: within() });
  assert.ok(!existsSync(path.join(backup, 'bak_1_20260101000000')));
  assert.ok(existsSync(backup));
  await removeTree(path.join(backup, 'never-made', 'deeper'), { within: within() });
});

test('.. that climbs out of backup_path is refused, naming the path and the root', async () => {
  freshTree();
  await refused(`${backup}/bak_1_20260101000000/../../victim`, new RegExp(`^refusing to delete ${escape(outside)}: outside backup_path ${escape(backup)}$`));
  await refused(`${backup}/..`, new RegExp(`outside backup_path ${escape(backup)}$`));
  assert.ok(existsSync(path.join(outside, 'keep')));
  await refused('/var', /^refusing to delete \/var: outside backup_path /);
});

test('a symbolic link in the parent path cannot redirect the delete outside', async () => {
  freshTree();
  symlinkSync(outside, path.join(backup, 'link'));
  await refused(path.join(backup, 'link', 'keep'), new RegExp(`\\(${escape(path.join(outside, 'keep'))}\\): outside backup_path`));
  assert.ok(existsSync(path.join(outside, 'keep')));
  // The link itself lies inside: removing it removes the link, not what it points to.
  await removeTree(path.join(backup, 'link'), { within: within() });
  assert.ok(!existsSync(path.join(backup, 'link')));
  assert.ok(existsSync(path.join(outside, 'keep')));
});

test('trailing slashes change nothing; the root itself is refused unless allowed', async () => {
  freshTree();
  await removeTree(`${backup}/bak_1_20260101000000/`, { within: within() });
  assert.ok(!existsSync(path.join(backup, 'bak_1_20260101000000')));
  await refused(`${backup}/`, new RegExp(`^refusing to delete ${escape(backup)}: it is backup_path itself$`));
  await refused(`${backup}//.`, /it is backup_path itself/);
  assert.ok(existsSync(backup));
  await removeTree(backup, { within: { 'the restore work dir': `${backup}/` }, allowRoot: true });
  assert.ok(!existsSync(backup));
});

test('a sibling whose name starts like the root (/data/backup2 vs /data/backup) is outside', async () => {
  freshTree();
  await refused(path.join(`${backup}2`, 'keep'), /outside backup_path/);
  await assert.rejects(removeFile(path.join(`${backup}2`, 'keep'), { within: within() }), OutsideRootError);
  assert.ok(existsSync(path.join(`${backup}2`, 'keep')));
});

test('a root that is itself a symbolic link is followed; the file-system root is never a root', async () => {
  freshTree();
  const alias = path.join(dir, 'backup-alias');
  rmSync(alias, { force: true });
  symlinkSync(backup, alias);
  assert.equal(await checkDeletable(path.join(backup, 'bak_1_20260101000000'), { within: { backup_path: alias } }), path.join(backup, 'bak_1_20260101000000'));
  await assert.rejects(removeTree(path.join(outside, 'keep'), { within: { backup_path: '/' } }), /^OutsideRootError: refusing to delete \S+\/keep: backup_path is the file-system root \/$/);
  await assert.rejects(removeTree(path.join(outside, 'keep'), { within: { scratch_path: path.join(dir, 's'), 'the temp dir': path.join(dir, 't') } }), /outside scratch_path .*\/s or the temp dir .*\/t$/);
  assert.ok(existsSync(path.join(outside, 'keep')));
});

test('removeFile removes a file inside and refuses one outside', async () => {
  freshTree();
  await removeFile(path.join(backup, 'bak_1_20260101000000', 'mysql.ibd'), { within: within() });
  assert.ok(!existsSync(path.join(backup, 'bak_1_20260101000000', 'mysql.ibd')));
  await assert.rejects(removeFile(path.join(backup, '..', 'victim', 'keep'), { within: within() }), /outside backup_path/);
  assert.ok(existsSync(path.join(outside, 'keep')));
});

test('a name from an object key is one plain file name, or a clear error naming the key', () => {
  assert.equal(localFileName('mysql-bin.000042', 'log_1_mysql-bin.000042.gz'), 'mysql-bin.000042');
  const cases: Array<[string, RegExp]> = [
    ['../../etc/cron.d/x.000001', /contains a path separator/],
    ['a\\b.000001', /contains a path separator/],
    ['..', /contains '\.\.'/],
    ['x..000001', /contains '\.\.'/],
    ['.', /is '\.'/],
    ['', /is empty/],
    ['bin\0.000001', /contains a NUL byte/],
  ];
  for (const [name, problem] of cases) {
    const key = `log_7_${name}`;
    assert.throws(() => localFileName(name, key), (err: Error) => {
      assert.ok(err.message.startsWith(`object ${JSON.stringify(key)}: the file name ${JSON.stringify(name)} `), err.message);
      assert.match(err.message, problem);
      assert.match(err.message, /refusing to use it as a local file name$/);
      return true;
    });
  }
});

test('a config file with secrets warns when its group or others can read it, not at 0600 or without secrets', () => {
  const file = path.join(dir, 'clone.ini');
  writeFileSync(file, '[mysql-link]\nhost = h\nuser = u\npassword = p4ss\n\n[oss]\naccess_key = ak\nsecret_key = sk\n');
  chmodSync(file, 0o644);
  assert.equal(
    readableSecretsWarning(file),
    `${file} is readable by others (mode 0644) and holds secrets ([mysql-link] password, [oss] access_key, [oss] secret_key): chmod 600 ${file}`,
  );
  chmodSync(file, 0o640);
  assert.match(readableSecretsWarning(file)!, /is readable by its group \(mode 0640\)/);
  chmodSync(file, 0o600);
  assert.equal(readableSecretsWarning(file), undefined);
  writeFileSync(file, '[mysql-link]\nhost = h\nuser = u\npassword =\n');
  chmodSync(file, 0o644);
  assert.equal(readableSecretsWarning(file), undefined, 'an empty password is no secret (the env supplies it)');
});

test('an encryption key file that its group or others can read gets a warning; one at 0600 none', () => {
  const current = path.join(dir, 'current.key');
  const old = path.join(dir, 'old.key');
  writeFileSync(current, 'aa'.repeat(32));
  writeFileSync(old, 'bb'.repeat(32));
  chmodSync(current, 0o644);
  chmodSync(old, 0o600);
  const file = path.join(dir, 'enc.ini');
  writeFileSync(file, `[encryption]\nkey_file = ${current}\nkey_files = ${old}\n`, { mode: 0o600 });
  assert.deepEqual(readableKeyFileWarnings(file), [`encryption key file ${current} can be read or written by others (mode 0644): chmod 600 ${current}`]);
  chmodSync(current, 0o600);
  chmodSync(old, 0o640);
  assert.deepEqual(readableKeyFileWarnings(file), [`encryption key file ${old} can be read or written by its group (mode 0640): chmod 600 ${old}`]);
  chmodSync(old, 0o600);
  assert.deepEqual(readableKeyFileWarnings(file), []);
});

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
