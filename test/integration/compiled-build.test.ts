// The production build as a user installs it: `npm pack` (which runs `npm run build`) into a tarball, unpacked
// beside the production dependencies only (no tsx, no TypeScript), then plain `node bin/mcb.js` against the real
// metadata center and object storage, and the compiled compression codecs (worker threads, native zstd).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import * as tar from 'tar';
import { repoRoot, servicesEnv } from '../support/env.ts';
import { createWorld, type World } from '../support/world.ts';

const run = promisify(execFile);

interface PackResult {
  filename: string;
  files: Array<{ path: string }>;
}

let world: World;
let dir: string;
let packed: PackResult;
/** The unpacked package: what `npm install` puts in node_modules/mysql-clone-backup. */
let pkg: string;

/** The environment of a plain `node`: nothing that would preload tsx. */
function plainEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MCB_LOG_LEVEL: 'warn' };
  delete env.NODE_OPTIONS;
  return env;
}

async function compiledMcb(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(pkg, 'bin', 'mcb.js'), ...args], { cwd: dir, env: plainEnv(), timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(err) };
  }
}

/**
 * The top-level packages an `npm ci --omit=dev` installs, from package-lock.json, less the devOptional ones
 * (typescript: our dev dependency, which npm installs too as an optional peer of a dependency; the build must not
 * need it at run time).
 */
function productionPackages(): string[] {
  const lock = JSON.parse(readFileSync(path.join(repoRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; devOptional?: boolean }> };
  return Object.entries(lock.packages)
    .filter(([key, meta]) => key.startsWith('node_modules/') && !key.slice('node_modules/'.length).includes('/node_modules/') && !meta.dev && !meta.devOptional)
    .map(([key]) => key.slice('node_modules/'.length));
}

/** A node_modules beside the package with links to the production dependencies of the checkout, and nothing else. */
function linkProductionDependencies(nodeModules: string): string[] {
  const installed = new Set(readdirSync(path.join(repoRoot, 'node_modules')).flatMap((n) => (n.startsWith('@') ? readdirSync(path.join(repoRoot, 'node_modules', n)).map((s) => `${n}/${s}`) : [n])));
  const linked = productionPackages().filter((name) => installed.has(name));
  for (const name of linked) {
    mkdirSync(path.dirname(path.join(nodeModules, name)), { recursive: true });
    symlinkSync(path.join(repoRoot, 'node_modules', name), path.join(nodeModules, name), 'dir');
  }
  return linked;
}

before(async () => {
  world = await createWorld();
  dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-compiled-'));
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: repoRoot, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
  packed = (JSON.parse(stdout) as PackResult[])[0]!;
  const app = path.join(dir, 'app');
  mkdirSync(app);
  await tar.x({ file: path.join(dir, packed.filename), cwd: app });
  pkg = path.join(app, 'package');
  const linked = linkProductionDependencies(path.join(app, 'node_modules'));
  assert.ok(linked.includes('mysql2') && !linked.includes('tsx') && !linked.includes('typescript'), `production dependencies: ${linked.join(', ')}`);
});

after(async () => {
  await world?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('npm pack holds the compiled build, the migrations and the systemd units, and nothing of the tests or sources', () => {
  const files = packed.files.map((f) => f.path);
  for (const f of ['bin/mcb.js', 'dist/cli/main.js', 'dist/metadata/migrate.js', 'sql/001_seed_schema.sql', 'deploy/systemd/mcb-worker@.service', 'README.md', 'package.json']) {
    assert.ok(files.includes(f), `${f} in the package`);
  }
  const unwanted = files.filter((f) => /^(test|bench|src|scripts|node_modules|\.services|\.ci)\//.test(f) || f.endsWith('.ts') || f.startsWith('tsconfig'));
  assert.deepEqual(unwanted, []);
});

test('the unpacked package runs with plain node and no tsx: --help, migrate, instance list, storage ls', async () => {
  const noTsx = await run(process.execPath, ['--input-type=module', '-e', "import('tsx').then(() => process.exit(3), () => process.exit(0))"], { cwd: pkg, env: plainEnv() }).then(
    () => 0,
    (e: { code?: number }) => e.code,
  );
  assert.equal(noTsx, 0, 'tsx must not be importable from the unpacked package');

  const help = await compiledMcb('--help');
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /Usage: mcb/);
  assert.match(help.stdout, /worker/);

  // A database of its own: migrate from the package reads every sql/ migration next to dist/.
  const database = `${world.database}_dist`;
  const meta = servicesEnv().metadata;
  const migrateConfig = world.writeConfig({
    sections: { 'metadata-link': { host: meta.host, port: String(meta.port), user: meta.user, password: meta.password, database, charset: 'utf8mb4' } },
  });
  try {
    const migrated = await compiledMcb('-f', migrateConfig, 'migrate');
    assert.equal(migrated.code, 0, migrated.stderr);
    const lastMigration = readdirSync(path.join(repoRoot, 'sql')).filter((f) => f.endsWith('.sql')).sort().at(-1)!;
    assert.match(migrated.stdout, /applied 001_seed_schema\.sql/);
    assert.match(migrated.stdout, new RegExp(`applied ${lastMigration.replace('.', '\\.')}`));
  } finally {
    const conn = await mysql.createConnection({ host: meta.host, port: meta.port, user: meta.user, password: meta.password });
    await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await conn.end();
  }

  const instances = await compiledMcb('-f', world.configFile, 'instance', 'list', '--json');
  assert.equal(instances.code, 0, instances.stderr);
  const ids = (JSON.parse(instances.stdout) as Array<{ id: number }>).map((r) => r.id).sort((a, b) => a - b);
  assert.deepEqual(ids, [world.sourceInstanceId, world.replicaInstanceId].sort((a, b) => a - b));

  const key = `bak_${world.replicaInstanceId}_20250101020000.tar.gz`;
  await world.minio.putObject(world.bucket, key, Buffer.from('not a real archive'), 18, { 'mcb-sha256': 'ab'.repeat(32) });
  const listed = await compiledMcb('-f', world.configFile, 'storage', 'ls', '--json');
  assert.equal(listed.code, 0, listed.stderr);
  assert.deepEqual(
    (JSON.parse(listed.stdout) as Array<{ key: string; sha256: string }>).map((o) => [o.key, o.sha256]),
    [[key, 'ab'.repeat(32)]],
  );
});

test("the package's gzip (worker threads) and zstd (native addon) round-trip data", async () => {
  const script = `
    import { pipeline } from 'node:stream/promises';
    import { Readable, Writable } from 'node:stream';
    import { getCodec } from './dist/archive/codec.js';
    const input = Buffer.alloc(3 * 1024 * 1024 + 7, 'mysql-clone-backup ');
    for (const name of ['gzip', 'zstd']) {
      const codec = getCodec(name);
      const out = [];
      await pipeline(Readable.from([input]), codec.compress({ threads: 2 }), codec.decompress(), new Writable({ write(c, _e, cb) { out.push(c); cb(); } }));
      if (!Buffer.concat(out).equals(input)) throw new Error(name + ' round trip differs');
      console.log(name + ' ok');
    }`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: pkg, env: plainEnv(), timeout: 60_000 });
  assert.equal(stdout.trim(), 'gzip ok\nzstd ok');
});
