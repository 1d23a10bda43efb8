// Which mysqld / mysqlbinlog / mysql a restore (`mcb restore run`) or a restore test (the `verify` job) runs.
//
// Precedence, whole layers (the first layer that names a server wins, with its own mysqlbinlog/mysql):
//   1. flags:  --sid-root DIR | --mysqld PATH [--mysqlbinlog PATH] [--mysql PATH]   (restore CLI only)
//   2. env:    MCB_SID_ROOT | MCB_MYSQLD
//   3. config: [restore] sid_root | mysqld [mysqlbinlog] [mysql]
//   4. default: mysqld, mysqlbinlog, mysql on PATH
// Within the flags or the environment, a sid root wins over a mysqld path (as before [restore] existed).
// probeMysqld runs `mysqld --version` so the verify job can tell "this host has no usable server" (skip) from a
// restore that failed (a result).
import { spawn } from 'node:child_process';
import type { RestoreConfig } from '../config/index.ts';
import type { MysqldBinary } from '../mysql/mysqld.ts';
import { binariesFromPath, binariesFromSidRoot, type RestoreBinaries } from './run.ts';

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
      // mysqlbinlog/mysql: this layer's, else the flags' (the CLI may name them alone), else the config's, else PATH.
      const mysqlbinlog = c.mysqlbinlog ?? flags.mysqlbinlog ?? config.mysqlbinlog;
      const mysql = c.mysql ?? flags.mysql ?? config.mysql;
      return { binaries: binariesFromPath(c.mysqld, { mysqlbinlog, mysql }), from, description: `mysqld ${c.mysqld} (${where})` };
    }
  }
  return {
    binaries: binariesFromPath('mysqld', { mysqlbinlog: flags.mysqlbinlog ?? config.mysqlbinlog, mysql: flags.mysql ?? config.mysql }),
    from: 'default',
    description: 'mysqld on PATH (nothing configured: no --mysqld/--sid-root, MCB_SID_ROOT/MCB_MYSQLD or [restore])',
  };
}

export type MysqldProbe = { ok: true; version: string } | { ok: false; reason: string };

/** CLONE datadirs need MySQL 8.0.17 or later; MariaDB's mysqld cannot open them. */
const MIN_VERSION = [8, 0, 17];

/** Runs `mysqld --version` (10 s at most) and checks that it is a MySQL server able to open a CLONE datadir. */
export function probeMysqld(bin: MysqldBinary, timeoutMs = 10_000): Promise<MysqldProbe> {
  const [file, ...prefix] = bin.command;
  const name = bin.command[bin.command.length - 1]; // the mysqld itself, not a loader in front of it
  return new Promise((resolve) => {
    let out = '';
    const child = spawn(file!, [...prefix, ...bin.baseArgs, '--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ ok: false, reason: `cannot run ${name}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const text = out.trim().split('\n')[0] ?? '';
      if (code !== 0) return resolve({ ok: false, reason: `${name} --version exited with ${signal ?? code}: ${text.slice(0, 300)}` });
      const m = /Ver\s+(\d+)\.(\d+)\.(\d+)(\S*)/.exec(text);
      if (!m) return resolve({ ok: false, reason: `${name} --version printed no version: ${text.slice(0, 300)}` });
      const version = `${m[1]}.${m[2]}.${m[3]}${m[4]}`;
      if (/mariadb/i.test(text)) return resolve({ ok: false, reason: `${name} is MariaDB ${version}; a MySQL CLONE datadir needs MySQL ${MIN_VERSION.join('.')} or later` });
      const v = [Number(m[1]), Number(m[2]), Number(m[3])];
      const older = v[0]! !== MIN_VERSION[0]! ? v[0]! < MIN_VERSION[0]! : v[1]! !== MIN_VERSION[1]! ? v[1]! < MIN_VERSION[1]! : v[2]! < MIN_VERSION[2]!;
      if (older) return resolve({ ok: false, reason: `${name} is MySQL ${version}; a CLONE datadir needs ${MIN_VERSION.join('.')} or later` });
      resolve({ ok: true, version });
    });
  });
}
