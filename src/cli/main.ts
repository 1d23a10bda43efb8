// mcb: the command line. Exit codes: 0 ok, 1 a job or backup failed (or a service is down), 2 bad usage or config.
// One file per command group in commands/: each parses its options and calls the folder that does the work, so
// nothing below cli knows about the command line. It is the top of the layering and may use any folder.
// May import: server, producer, workers, ops, queues, jobs, restore, metadata, storage, mysql, retention, archive, config, binlog, crypto, fs, time, log, streams.
import { Command, CommanderError } from 'commander';
import { errorMessage, SetupError } from '../errors.ts';
import { registerBackups } from './commands/backups.ts';
import { registerDaemons } from './commands/daemons.ts';
import { registerEnqueue } from './commands/enqueue.ts';
import { registerEnqueueBinlog } from './commands/enqueue-binlog.ts';
import { registerEnqueueExpire } from './commands/enqueue-expire.ts';
import { registerEnqueueVerify } from './commands/enqueue-verify.ts';
import { registerInstance } from './commands/instance.ts';
import { registerJobs } from './commands/jobs.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerRestore } from './commands/restore.ts';
import { registerServer } from './commands/server.ts';
import { registerStatus } from './commands/status.ts';
import { registerStorage } from './commands/storage.ts';
import { CliContext } from './context.ts';

const program = new Command();
program
  .name('mcb')
  .description('mysql-clone-backup: CLONE-based MySQL backups into S3-compatible storage, tracked in a metadata center')
  .option('-f, --config <file>', 'config file in the clone.ini layout', process.env.MCB_CONFIG ?? 'clone.ini')
  .option('--debug', 'debug logs, and stack traces on errors')
  .showHelpAfterError()
  .exitOverride();

async function run(fn: (ctx: CliContext) => Promise<void>): Promise<void> {
  const ctx = new CliContext(program.opts());
  try {
    await fn(ctx);
  } finally {
    await ctx.close();
  }
}

registerMigrate(program, run);
registerInstance(program, run);
registerDaemons(program, run);
const enqueue = registerEnqueue(program, run);
registerEnqueueBinlog(enqueue, run);
registerEnqueueExpire(enqueue, run);
registerEnqueueVerify(enqueue, run);
registerBackups(program, run);
registerJobs(program, run);
registerStatus(program, run);
registerServer(program, run);
registerRestore(program, run);
registerStorage(program, run);

function exitCodeOf(err: unknown): number {
  return err instanceof SetupError ? 2 : 1;
}

/** The seed's crontab lines say `-f=/path/clone.ini`; commander would read that value as "=/path". */
function seedStyleArgs(argv: string[]): string[] {
  return argv.flatMap((a) => (a.startsWith('-f=') ? ['-f', a.slice(3)] : [a]));
}

try {
  await program.parseAsync(seedStyleArgs(process.argv));
} catch (err) {
  if (err instanceof CommanderError) {
    // commander has printed its message; help and version are not errors.
    process.exit(err.exitCode === 0 ? 0 : 2);
  }
  const debug = program.opts().debug;
  console.error(`mcb: ${debug ? ((err as Error).stack ?? String(err)) : errorMessage(err)}`);
  process.exit(exitCodeOf(err));
}
process.exit(process.exitCode ?? 0);
