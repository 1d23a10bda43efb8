// `mcb status`: the 3 a.m. overview, one line per instance from the metadata center (plus schedules from Redis).
import type { Command } from 'commander';
import { RedisUnavailableError } from '../../queues/index.ts';
import { formatAge, instanceStatuses } from '../../ops/status.ts';
import { parseId, type CliContext } from '../context.ts';

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

export function registerStatus(program: Command, run: Run): void {
  program
    .command('status')
    .description('per instance: last Completed full and binlog backup with age (STALE past the [server] thresholds), running backups, next scheduled runs, failures in the last 24 h')
    .option('--instance <id>', 'only this tb_instance id')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
STALE: no Completed backup of that type, or the last one is older than [server] stale_full_hours (default 26)
or stale_binlog_minutes (default 60). The age counts from end_time (the clone's recovery point).
If Redis is down the metadata part is still printed, schedules show as unknown, and the exit code is 1.`,
    )
    .action((o) =>
      run(async (ctx) => {
        const instanceId = o.instance ? parseId(o.instance) : undefined;
        if (instanceId !== undefined) await ctx.instance(instanceId);
        const metadata = await ctx.metadata();
        let redisError: string | undefined;
        const queues = await ctx.queues().catch((err) => {
          if (!(err instanceof RedisUnavailableError)) throw err;
          redisError = err.message;
          return undefined;
        });
        const rows = await instanceStatuses(ctx.config, metadata, queues, { instanceId });
        if (o.json) {
          console.log(JSON.stringify({ redis: redisError ?? 'ok', instances: rows }, null, 2));
        } else {
          if (!rows.length) console.log('no instances in tb_instance (add one with `mcb instance add`)');
          for (const r of rows) {
            const last = (b: typeof r.lastFull, stale: boolean) =>
              `${b ? `${b.backupName} ${formatAge(b.ageSeconds)} ago, ${b.size}` : 'never'}${stale ? '  STALE' : ''}`;
            console.log(`instance ${r.id} ${r.instanceId} (${r.instanceName})${r.enabled ? '' : '  [backups disabled: is_clone = 0]'}`);
            console.log(`  last full    ${last(r.lastFull, r.fullStale)}`);
            console.log(`  last binlog  ${last(r.lastBinlog, r.binlogStale)}`);
            for (const x of r.running) console.log(`  running      ${x.backupType} ${x.backupName} ${x.state} since ${x.since ?? '?'}  ${x.info ?? ''}`);
            if (r.schedules === null) console.log('  next runs    unknown (Redis unreachable)');
            else if (!r.schedules.length) console.log('  next runs    none scheduled (is `mcb producer` running?)');
            else for (const s of r.schedules) console.log(`  next ${s.name.padEnd(7)} ${s.next ?? '?'}  (${s.pattern ?? ''})`);
            console.log(`  failures 24h ${r.failures24h}${r.lastFailure ? `  last: ${r.lastFailure.backupName} at ${r.lastFailure.at}: ${r.lastFailure.info ?? ''}` : ''}`);
          }
        }
        if (redisError) {
          console.error(`mcb: ${redisError}`);
          process.exitCode = 1;
        }
      }),
    );
}
