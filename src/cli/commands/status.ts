// `mcb status`: the 3 a.m. overview, one line per instance from the metadata center (plus schedules and stage
// progress from Redis); `--check` turns it into a monitoring probe (exit 1 on STALE, recent failures, or an RPO
// alert of a streaming setup).
import type { Command } from 'commander';
import { RedisUnavailableError } from '../../queues/index.ts';
import type { AchievedRpo } from '../../ops/rpo.ts';
import { formatAge, instanceStatuses, rpoFigure, statusProblems } from '../../ops/status.ts';
import { formatLocalTime } from '../../time/zone.ts';
import { parseId, type Run } from '../context.ts';

export function registerStatus(program: Command, run: Run): void {
  program
    .command('status')
    .description('per instance: last Completed full and binlog backup with age (STALE past the [server] thresholds), achieved RPO, running backups, next scheduled runs, failures in the last 24 h')
    .option('--instance <id>', 'only this tb_instance id')
    .option('--json', 'print JSON')
    .option('--check', 'for monitoring: exit 1 when an enabled instance is STALE, had failures in the last 24 h, or (binlog_stream on) has an RPO over max_rpo_seconds or a stream gap (one line per problem on stderr)')
    .addHelpText(
      'after',
      `
STALE: no Completed backup of that type, or the last one is older than [server] stale_full_hours (default 26)
or stale_binlog_minutes (default 60). The age counts from end_time (the clone's recovery point).
If Redis is down the metadata part is still printed, schedules show as unknown, and the exit code is 1.
Running full backups show their stage's progress (e.g. "tar 42%") when Redis answers.
RPO: the achieved RPO, how long ago the bucket last held every transaction the server had written: from the
binlog streamer ("(stream)") or else the binlog job ("(binlog job)": the newest archived binlog's end, or with
binlog_stream off its last successful run less max_rpo_minutes if later). With binlog_stream on, OVER past [backup-conf]
max_rpo_seconds and GAP when the streamer lost binlogs; the streamer's state follows, with its error.
--check: the usual output, then one "mcb: instance …" line on stderr per problem of an enabled instance
(is_clone = 1): full or binlog STALE, Error rows in the last 24 h, with binlog_stream on an RPO OVER or a GAP;
exit 1 if there is any, else 0.
  problems=$(mcb status --check 2>&1 >/dev/null) || alert "$problems"`,
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
          // The JSON keeps ISO-8601 UTC instants; the text is in the metadata time zone.
          const time = (iso: string | null | undefined) => formatLocalTime(iso ? new Date(iso) : null, metadata.timeZone) || '?';
          if (!rows.length) console.log('no instances in tb_instance (add one with `mcb instance add`)');
          for (const r of rows) {
            const last = (b: typeof r.lastFull, stale: boolean) =>
              `${b ? `${b.backupName} ${formatAge(b.ageSeconds)} ago, ${b.size}` : 'never'}${stale ? '  STALE' : ''}`;
            console.log(`instance ${r.id} ${r.instanceId} (${r.instanceName})${r.enabled ? '' : '  [backups disabled: is_clone = 0]'}`);
            console.log(`  last full    ${last(r.lastFull, r.fullStale)}`);
            console.log(`  last binlog  ${last(r.lastBinlog, r.binlogStale)}`);
            console.log(`  RPO          ${rpoLine(r.rpo)}`);
            for (const x of r.running) {
              const progress = x.progressPercent === null ? '' : ` ${x.stage} ${x.progressPercent}%`;
              console.log(`  running      ${x.backupType} ${x.backupName} ${x.state}${progress} since ${time(x.since)}  ${x.info ?? ''}`);
            }
            if (r.schedules === null) console.log('  next runs    unknown (Redis unreachable)');
            else if (!r.schedules.length) console.log('  next runs    none scheduled (is `mcb producer` running?)');
            else for (const s of r.schedules) console.log(`  next ${s.name.padEnd(7)} ${time(s.next)}  (${s.pattern ?? ''})`);
            for (const v of r.verifyFailures) console.log(`  VERIFY FAILED ${v.backupName}${v.verifiedAt ? ` at ${v.verifiedAt}` : ''}: ${v.reason ?? ''} (not used for restores)`);
            console.log(`  failures 24h ${r.failures24h}${r.lastFailure ? `  last: ${r.lastFailure.backupName} at ${time(r.lastFailure.at)}: ${r.lastFailure.info ?? ''}` : ''}`);
          }
        }
        if (redisError) {
          console.error(`mcb: ${redisError}`);
          process.exitCode = 1;
        }
        if (o.check) {
          const problems = statusProblems(rows);
          for (const p of problems) console.error(`mcb: ${p}`);
          if (problems.length) process.exitCode = 1;
        }
      }),
    );
}

/** "4s (stream)  stream streaming", "9m (binlog job)  OVER 70s  stream reconnecting: <error>". */
function rpoLine(r: AchievedRpo): string {
  const flags = `${r.exceeded ? `  OVER ${r.thresholdSeconds}s` : ''}${r.gap ? '  GAP' : ''}`;
  const stream = r.stream ? `  stream ${r.stream.state}${r.stream.state !== 'streaming' && r.stream.lastError ? `: ${r.stream.lastError.replace(/\s+/g, ' ')}` : ''}` : '';
  return `${rpoFigure(r)}${flags}${stream}`;
}
