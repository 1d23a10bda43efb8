// MySQL's own mysqlbinlog following the server: `--read-from-remote-server --raw --stop-never` writes every event
// into `<spool>/<binlog name>` as it arrives, the file as the server has it, and follows rotations. The password
// goes in MYSQL_PWD, never in argv (which `ps` shows). Under `setpriv --pdeathsig KILL` when the host has it, so a
// worker killed with -9 does not leave it running (and holding the server's dump thread).
import { spawn } from 'node:child_process';
import { childEnvironment, type MysqlLinkConfig } from '../config/index.ts';
import type { MysqldBinary } from '../mysql/mysqld.ts';

export interface MysqlbinlogOptions {
  binary: MysqldBinary;
  link: MysqlLinkConfig;
  /** The server id the dump connection announces. */
  serverId: number;
  spoolDir: string;
  /** The binlog to start from (at its beginning). */
  firstFile: string;
  /** `setpriv` on this host, when there is one. */
  setpriv?: string;
}

export interface SpawnCommand {
  file: string;
  args: string[];
  env: NodeJS.ProcessEnv;
}

/** The command line and environment (pure: the password is only in the environment). */
export function mysqlbinlogCommand(o: MysqlbinlogOptions, env: NodeJS.ProcessEnv = process.env): SpawnCommand {
  const [program, ...prefix] = o.binary.command;
  const args = [
    ...prefix,
    ...o.binary.baseArgs,
    '--read-from-remote-server',
    '--raw',
    '--stop-never',
    `--connection-server-id=${o.serverId}`,
    `--host=${o.link.host}`,
    `--port=${o.link.port}`,
    `--user=${o.link.user}`,
    // caching_sha2_password without TLS needs the server's RSA key; with TLS (the default when the server offers it) unused.
    '--get-server-public-key',
    `--result-file=${o.spoolDir.replace(/\/*$/, '/')}`,
    o.firstFile,
  ];
  const childEnv = { ...childEnvironment(env), MYSQL_PWD: o.link.password };
  if (!o.setpriv) return { file: program!, args, env: childEnv };
  return { file: o.setpriv, args: ['--pdeathsig', 'KILL', '--', program!, ...args], env: childEnv };
}

export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last line mysqlbinlog wrote to stderr (its error), or why it could not run. */
  lastError: string;
}

export interface RunningMysqlbinlog {
  readonly pid: number | undefined;
  readonly exited: Promise<ProcessExit>;
  alive(): boolean;
  /** SIGTERM, then SIGKILL when it is still there after `graceMs`. */
  stop(graceMs?: number): Promise<ProcessExit>;
}

const STDERR_KEEP = 4096;

export function startMysqlbinlog(o: MysqlbinlogOptions): RunningMysqlbinlog {
  const cmd = mysqlbinlogCommand(o);
  const child = spawn(cmd.file, cmd.args, { stdio: ['ignore', 'ignore', 'pipe'], env: cmd.env });
  let stderr = '';
  let running = true;
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-STDERR_KEEP)));
  const exited = new Promise<ProcessExit>((resolve) => {
    child.on('error', (err) => {
      running = false;
      resolve({ code: null, signal: null, lastError: `cannot run ${cmd.file}: ${(err as NodeJS.ErrnoException).code ?? err.message}` });
    });
    child.on('close', (code, signal) => {
      running = false;
      const line = stderr.trim().split('\n').at(-1)?.trim() ?? '';
      resolve({ code, signal, lastError: line || `mysqlbinlog exited with ${signal ?? code}` });
    });
  });
  return {
    pid: child.pid,
    exited,
    alive: () => running,
    async stop(graceMs = 2000) {
      if (!running) return exited;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
