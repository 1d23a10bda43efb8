// `mcb producer` and `mcb worker`: long-running processes that stop cleanly on SIGTERM/SIGINT.
import type { Command } from 'commander';
import type { Run } from '../context.ts';
import { runProducer, syncSchedules } from '../../producer/index.ts';
import { startWorker } from '../../workers/index.ts';

function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => () => resolve(sig);
    process.once('SIGTERM', on('SIGTERM'));
    process.once('SIGINT', on('SIGINT'));
  });
}

export function registerDaemons(program: Command, run: Run): void {
  program
    .command('producer')
    .description('keep repeatable full/binlog/expire/verify jobs in Redis for every instance with is_clone = 1')
    .option('--once', 'sync the schedules once and exit')
    .action((o) =>
      run(async (ctx) => {
        ctx.daemon = !o.once;
        const metadata = await ctx.metadata();
        ctx.log.info({ event: 'metadata.time-zone', timeZone: metadata.timeZone.name, source: metadata.timeZoneInfo.source }, `metadata time zone ${metadata.timeZone.name}`);
        const queues = await ctx.queues();
        if (o.once) {
          const r = await syncSchedules(ctx.config, metadata, queues, ctx.log);
          console.log(`scheduled instances: ${r.scheduled.join(', ') || 'none'}; unscheduled: ${r.unscheduled.join(', ') || 'none'}`);
          return;
        }
        const producer = runProducer(ctx.config, metadata, queues, ctx.log);
        const sig = await untilSignal();
        ctx.log.info({ event: 'producer.stopping', signal: sig }, 'producer stopping');
        // Nothing to hand back: a sync under way (maybe waiting for Redis) gets the grace period, a second signal none.
        process.once(sig as NodeJS.Signals, () => process.exit(0));
        await producer.close(ctx.config.backup.shutdownGraceSeconds * 1000);
      }),
    );

  program
    .command('worker')
    .description("run this node's worker: takes the jobs of [backup-conf] tb_instance_id only")
    .option('--concurrency <n>', 'jobs at once (a binlog job can run beside a full-backup stage)', '2')
    .action((o) =>
      run(async (ctx) => {
        ctx.daemon = true;
        const worker = await startWorker(ctx.config, { log: ctx.log, concurrency: Number(o.concurrency) });
        const sig = await untilSignal();
        ctx.log.info({ event: 'worker.stopping', signal: sig }, 'worker stopping: finishing or handing back running stages');
        // A second signal means "now": hand everything back at once.
        process.once(sig as NodeJS.Signals, () => worker.worker.cancelAllJobs('second signal'));
        await worker.close();
      }),
    );
}
