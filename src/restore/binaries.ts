// Which mysqld / mysqlbinlog / mysql a restore (`mcb restore run`) or a restore test (the `verify` job) runs: the
// first of flags, environment, [restore] and PATH that names a server wins, with its own mysqlbinlog and mysql
// (beside it before PATH: the `mysql` on PATH is often MariaDB's, which fails mid-replay against MySQL 9); within
// the flags or the environment a sid root wins over a mysqld path. docs/restore.md, "Which binaries". probeMysqld
// lets the verify job tell "no usable server here" (skip) from a failed restore; checkRestoreTools checks all three
// before a restore downloads anything.
import { spawn } from 'node:child_process';
import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { childEnvironment, type RestoreConfig } from '../config/index.ts';
import type { MysqldBinary } from '../mysql/mysqld.ts';
import { binariesFromPath, binariesFromSidRoot, type RestoreBinaries } from './run.ts';
import { SetupError } from '../errors.ts';

export interface BinaryChoice {
  sidRoot?: string;
  mysqld?: string;
  mysqlbinlog?: string;
  mysql?: string;
}

export interface ResolvedBinaries {
  binaries: RestoreBinaries;
  /** Where the choice came from: `default` means nobody configured anything (mysqld on PATH). */
  from: 'flags' | 'env' | 'config' | 'default';
  /** For messages: `sid root /x` or `mysqld /usr/sbin/mysqld`, and where that was set. */
  description: string;
}

export function resolveRestoreBinaries(config: RestoreConfig, flags: BinaryChoice = {}, env: NodeJS.ProcessEnv = process.env): ResolvedBinaries {
  const layers: Array<[ResolvedBinaries['from'], BinaryChoice, string]> = [
    ['flags', flags, '--sid-root/--mysqld'],
    ['env', { sidRoot: env.MCB_SID_ROOT || undefined, mysqld: env.MCB_MYSQLD || undefined }, 'MCB_SID_ROOT/MCB_MYSQLD'],
    ['config', config, '[restore] sid_root/mysqld'],
  ];
  for (const [from, c, where] of layers) {
    if (c.sidRoot) return { binaries: binariesFromSidRoot(c.sidRoot), from, description: `sid root ${c.sidRoot} (${where})` };
    if (c.mysqld) {
      // mysqlbinlog/mysql: this layer's, else the flags' (the CLI may name them alone), else the config's, else
      // the ones beside this mysqld, else PATH.
      const mysqlbinlog = c.mysqlbinlog ?? flags.mysqlbinlog ?? config.mysqlbinlog ?? besideMysqld(c.mysqld, 'mysqlbinlog', env);
      const mysql = c.mysql ?? flags.mysql ?? config.mysql ?? besideMysqld(c.mysqld, 'mysql', env);
      return { binaries: binariesFromPath(c.mysqld, { mysqlbinlog, mysql }), from, description: `mysqld ${c.mysqld} (${where})` };
    }
  }
  return {
    binaries: binariesFromPath('mysqld', {
      mysqlbinlog: flags.mysqlbinlog ?? config.mysqlbinlog ?? besideMysqld('mysqld', 'mysqlbinlog', env),
      mysql: flags.mysql ?? config.mysql ?? besideMysqld('mysqld', 'mysql', env),
    }),
    from: 'default',
    description: 'mysqld on PATH (nothing configured: no --mysqld/--sid-root, MCB_SID_ROOT/MCB_MYSQLD or [restore])',
  };
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Where a program name resolves: a path as given, a bare name through `env.PATH` (undefined when not found). */
export function whichProgram(program: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (program.includes('/')) return isExecutableFile(program) ? program : undefined;
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const file = path.join(dir, program);
    if (isExecutableFile(file)) return file;
  }
  return undefined;
}

/** `tool` in the directory of `mysqld`, or in ../bin when that is an sbin directory; undefined when neither exists. */
export function besideMysqld(mysqld: string, tool: 'mysqlbinlog' | 'mysql', env: NodeJS.ProcessEnv = process.env): string | undefined {
  const found = whichProgram(mysqld, env);
  if (!found) return undefined;
  const dir = path.dirname(path.resolve(found));
  const candidates = [path.join(dir, tool), ...(path.basename(dir) === 'sbin' ? [path.join(dir, '..', 'bin', tool)] : [])];
  const hit = candidates.find(isExecutableFile);
  return hit ? path.normalize(hit) : undefined;
}

export type MysqldProbe = { ok: true; version: string } | { ok: false; reason: string };

/** CLONE datadirs need MySQL 8.0.17 or later; MariaDB's mysqld cannot open them. */
const MIN_VERSION = [8, 0, 17];

type Triple = [number, number, number];

function olderThan(v: Triple, than: readonly number[]): boolean {
  for (let i = 0; i < 3; i++) if (v[i]! !== than[i]!) return v[i]! < than[i]!;
  return false;
}

/** The program itself, not a loader in front of it. */
function programOf(bin: MysqldBinary): string {
  return bin.command[bin.command.length - 1]!;
}

type VersionOutput = { ok: true; line: string } | { ok: false; reason: string };

/** Runs `<program> --version` (bounded) and returns its first line. */
function versionLine(bin: MysqldBinary, timeoutMs: number): Promise<VersionOutput> {
  const [file, ...prefix] = bin.command;
  const name = programOf(bin);
  return new Promise((resolve) => {
    let out = '';
    const child = spawn(file!, [...prefix, ...bin.baseArgs, '--version'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnvironment() });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: `cannot run ${name}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = (out.trim().split('\n')[0] ?? '').slice(0, 300);
      if (code !== 0) return resolve({ ok: false, reason: `${name} --version exited with ${signal ?? code}: ${line}` });
      resolve({ ok: true, line });
    });
  });
}

/** `Ver 9.7.4-2 for Linux`, `Ver 14.14 Distrib 5.7.44,` (old clients: the Distrib is the server version). */
function parseVersion(line: string): { version: string; triple: Triple } | undefined {
  const m = /\bDistrib\s+(\d+)\.(\d+)\.(\d+)([^\s,]*)/.exec(line) ?? /\bVer\s+(\d+)\.(\d+)\.(\d+)(\S*)/.exec(line);
  if (!m) return undefined;
  return { version: `${m[1]}.${m[2]}.${m[3]}${m[4]}`, triple: [Number(m[1]), Number(m[2]), Number(m[3])] };
}

/** MariaDB says so in its `--version`, except its mysqlbinlog (`Ver 3.5`), a link to mariadb-binlog. */
function isMariaDb(bin: MysqldBinary, line: string, env: NodeJS.ProcessEnv): boolean {
  if (/mariadb/i.test(line)) return true;
  const found = whichProgram(programOf(bin), env);
  try {
    return found !== undefined && /mariadb/i.test(path.basename(realpathSync(found)));
  } catch {
    return false;
  }
}

/** Runs `mysqld --version` (10 s at most) and checks that it is a MySQL server able to open a CLONE datadir. */
export async function probeMysqld(bin: MysqldBinary, timeoutMs = 10_000): Promise<MysqldProbe> {
  const name = programOf(bin);
  const out = await versionLine(bin, timeoutMs);
  if (!out.ok) return out;
  const parsed = parseVersion(out.line);
  if (!parsed) return { ok: false, reason: `${name} --version printed no version: ${out.line}` };
  const { version, triple } = parsed;
  if (/mariadb/i.test(out.line)) return { ok: false, reason: `${name} is MariaDB ${version}; a MySQL CLONE datadir needs MySQL ${MIN_VERSION.join('.')} or later` };
  if (olderThan(triple, MIN_VERSION)) return { ok: false, reason: `${name} is MySQL ${version}; a CLONE datadir needs ${MIN_VERSION.join('.')} or later` };
  return { ok: true, version };
}

/** The restore cannot run with these programs (MariaDB's, older than the server, missing): exit code 2, a setup error. */
export class RestoreToolError extends SetupError {
  override readonly name = 'RestoreToolError';
}

export interface ToolVersions {
  mysqld: string;
  mysqlbinlog: string;
  mysql: string;
}

const HOW_TO_CHOOSE = 'name MySQL\'s with --mysqlbinlog/--mysql, [restore] mysqlbinlog/mysql, or use --sid-root';

/** mysqlbinlog or mysql: MySQL's (not MariaDB's), and at least the server's version. */
async function checkClient(bin: MysqldBinary, tool: 'mysqlbinlog' | 'mysql', server: { version: string; triple: Triple }, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  const name = programOf(bin);
  const shown = name.includes('/') ? name : `${name} (${whichProgram(name, env) ?? 'not found'} on PATH)`;
  const out = await versionLine(bin, timeoutMs);
  if (!out.ok) throw new RestoreToolError(`${tool}: ${out.reason}; ${HOW_TO_CHOOSE}`);
  if (isMariaDb(bin, out.line, env)) {
    throw new RestoreToolError(`${tool} ${shown} is MariaDB's ("${out.line}"); replaying into MySQL ${server.version} needs MySQL's ${tool} ${server.version} or later: ${HOW_TO_CHOOSE}`);
  }
  const parsed = parseVersion(out.line);
  if (!parsed) throw new RestoreToolError(`${tool} ${shown} is not a MySQL 8.0+ ${tool} (its --version says "${out.line}"): ${HOW_TO_CHOOSE}`);
  if (olderThan(parsed.triple, server.triple)) {
    throw new RestoreToolError(`${tool} ${shown} is MySQL ${parsed.version}, older than the server (mysqld ${server.version}): ${HOW_TO_CHOOSE}`);
  }
  return parsed.version;
}

/**
 * Before a restore downloads anything: mysqld is a MySQL server able to open a CLONE datadir, and mysqlbinlog and
 * mysql are MySQL's, at least the server's version (an older or MariaDB client fails mid-replay on newer events
 * and syntax). Throws RestoreToolError with one line naming the program and its version.
 */
export async function checkRestoreTools(binaries: RestoreBinaries, env: NodeJS.ProcessEnv = process.env, timeoutMs = 10_000): Promise<ToolVersions> {
  const probe = await probeMysqld(binaries.mysqld, timeoutMs);
  if (!probe.ok) throw new RestoreToolError(`mysqld: ${probe.reason}`);
  const server = parseVersion(`Ver ${probe.version}`)!;
  // One after the other: with both wrong, the error names the same one every time.
  const mysqlbinlog = await checkClient(binaries.mysqlbinlog, 'mysqlbinlog', server, env, timeoutMs);
  const mysql = await checkClient(binaries.mysql, 'mysql', server, env, timeoutMs);
  return { mysqld: probe.version, mysqlbinlog, mysql };
}
