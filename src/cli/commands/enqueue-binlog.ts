// `mcb enqueue binlog --instance ID [--wait]`: archive the closed binlogs of one instance now, through the same
// queue and node-local worker as the schedule.
import type { Command } from 'commander';
import type { BinlogResult } from '../../jobs/binlog.ts';
import { parseId, type Run } from '../context.ts';
import { enqueueOnInstance, JobFailedError, waitForInstanceJob, withWaitOptions } from '../wait.ts';

export function registerEnqueueBinlog(enqueue: Command, run: Run): void {
  withWaitOptions(
    enqueue
      .command('binlog')
      .description('archive the closed binary logs of one instance now (with the RPO flush, unless binlog_stream is on)')
      .requiredOption('--instance <id>', 'tb_instance id'),
    'wait for the job; print what was archived; exit 0 on success, 1 on failure',
  )
    .action((o) =>
      run(async (ctx) => {
        const instanceId = parseId(o.instance);
        const instance = await ctx.instance(instanceId, { mustBeEnabled: true });
        // One attempt: a failed batch is retried by the next scheduled run, and --wait reports the failure now.
        const { queue, jobId } = await enqueueOnInstance(ctx, {
          type: 'binlog',
          queueInstance: instanceId,
          data: { instanceId },
          jobIdPart: String(instanceId),
          attempts: 1,
          describe: `binlog archiving of instance ${instanceId} (${instance.instanceId})`,
        });
        if (!o.wait) return;
        const done = await waitForInstanceJob(queue, jobId, instanceId, o.timeout);
        if (done.state === 'failed') throw new JobFailedError(`binlog archiving of instance ${instanceId} failed: ${done.failedReason}`);
        printResult(done.returnvalue as BinlogResult);
      }),
    );
}

function printResult(r: BinlogResult): void {
  if (r.busy) {
    console.log('another binlog run of this instance was in progress; nothing done');
    return;
  }
  if (r.flushed) console.log('FLUSH BINARY LOGS issued (the active binlog was older than max_rpo_minutes)');
  if (r.gap) console.log(`GAP (${r.gap.reason}): point-in-time chain broken from ${r.gap.from ?? 'unknown'} to ${r.gap.to}${r.gap.missing.length ? `; missing ${r.gap.missing.join(', ')}` : ''}`);
  for (const a of r.archived) console.log(`archived ${a.file} → ${a.objectKey}  ${a.bytes} bytes  sha256 ${a.sha256}  ${a.startTime} .. ${a.endTime}`);
  console.log(`${r.archived.length} archived, ${r.skipped} already archived, ${r.active} left open (active)`);
}
