// `mcb enqueue expire [--instance ID] [--dry-run] [--wait]`: on instance ID's queue for that instance; without
// --instance, on [backup-conf] tb_instance_id's queue for every instance in that worker's bucket; with neither (a
// metadata-center-only config, like the seed's cleaner's) here, in this process, for every instance in this
// config's bucket, --wait implied. docs/expiry.md, "When and where it runs".
import os from 'node:os';
import type { Command } from 'commander';
import { requireOss } from '../../config/index.ts';
import { expireJob } from '../../jobs/expire.ts';
import { ExpireFailedError, summarise, type ExpireResult } from '../../jobs/expire/report.ts';
import type { JobContext } from '../../jobs/types.ts';
import { MinioObjectStore } from '../../storage/index.ts';
import { parseId, type CliContext, type Run } from '../context.ts';
import { enqueueOnInstance, JobFailedError, waitForInstanceJob, withWaitOptions } from '../wait.ts';

export function registerEnqueueExpire(enqueue: Command, run: Run): void {
  withWaitOptions(
    enqueue
      .command('expire')
      .description('delete expired backups now (the daily expire job); see docs/expiry.md')
      .option('--instance <id>', 'only this tb_instance id (default: every instance with rows in the bucket)')
      .option('--dry-run', 'change nothing: print what would be deleted and why'),
    'wait for the job and print its result; exit 0 ok, 1 failed',
  )
    .action((o) =>
      run(async (ctx) => {
        const dryRun = Boolean(o.dryRun);
        const instanceId = o.instance !== undefined ? parseId(o.instance) : undefined;
        if (instanceId !== undefined) await ctx.instance(instanceId);
        const payload = { ...(instanceId !== undefined ? { instanceId } : {}), ...(dryRun ? { dryRun } : {}) };
        const queueInstance = instanceId ?? ctx.config.backup.tbInstanceId;

        if (queueInstance === undefined) {
          console.log('no --instance and no [backup-conf] tb_instance_id: running expire here for every instance in the bucket');
          const result = await runHere(ctx, payload);
          printResult(result);
          return;
        }

        const what = instanceId !== undefined ? `instance ${instanceId}` : 'every instance in the bucket';
        const { queue, jobId } = await enqueueOnInstance(ctx, {
          type: 'expire',
          queueInstance,
          data: payload,
          jobIdPart: `${instanceId ?? 'all'}${dryRun ? '-dry' : ''}`,
          ...(dryRun ? { attempts: 1 } : {}),
          describe: `${dryRun ? 'dry-run ' : ''}expire of ${what}`,
        });
        if (!o.wait) return;
        const done = await waitForInstanceJob(queue, jobId, queueInstance, o.timeout);
        if (done.state === 'failed') {
          const job = await queue.getJob(jobId);
          const partial = (job?.progress as { result?: ExpireResult } | undefined)?.result;
          if (partial) printResult(partial);
          throw new JobFailedError(`expire failed: ${done.failedReason}`);
        }
        printResult(done.returnvalue as ExpireResult);
      }),
    );
}

async function runHere(ctx: CliContext, payload: { instanceId?: number; dryRun?: boolean }): Promise<ExpireResult> {
  const oss = requireOss(ctx.config);
  const abort = new AbortController();
  const jobCtx: JobContext = {
    config: ctx.config,
    metadata: await ctx.metadata(),
    storage: new MinioObjectStore(oss, oss.bucket),
    connectDataNode: () => Promise.reject(new Error('expire does not connect to a data node')),
    log: ctx.log,
    jobId: `expire-cli-${Date.now()}`,
    workerHost: os.hostname(),
    signal: abort.signal,
    progress: async () => undefined,
    startFullChain: () => Promise.reject(new Error('expire does not start backups')),
    isFullChainAlive: () => Promise.reject(new Error('expire does not look at backup chains')),
    now: () => new Date(),
  };
  try {
    return await expireJob.handle(expireJob.parse(payload), jobCtx);
  } catch (err) {
    if (err instanceof ExpireFailedError) {
      printResult(err.result);
      throw new JobFailedError(err.message);
    }
    throw err;
  }
}

/** One line per decision in a dry run; otherwise what changed, what failed and the orphans. */
export function printResult(result: ExpireResult): void {
  for (const inst of result.instances) {
    const p = inst.policy;
    console.log(
      `instance ${inst.instanceId}: full ${p.fullDays} d, binlog ${p.binlogDays} d, min_full_backups ${p.minFullBackups}` +
        `, keep_binlogs_for_oldest_full ${p.keepBinlogsForOldestFull ? 'on' : 'off'} (from ${inst.policySource})` +
        (result.dryRun ? '' : `; overdue_day updated on ${inst.overdueUpdated} row(s)`),
    );
    if (inst.error) console.log(`  error: ${inst.error}`);
    const shown = result.dryRun ? inst.decisions : inst.decisions.filter((d) => d.outcome !== 'kept');
    for (const d of shown) {
      const action = d.outcome === 'would-delete' ? 'DELETE' : d.outcome === 'kept' ? 'keep' : d.outcome;
      console.log(`  #${d.id}  ${d.name}  ${action}  ${d.reason}${d.overdueDay !== null ? ` [overdue_day ${d.overdueDay}]` : ''}${d.error ? `: ${d.error}` : ''}`);
    }
    for (const o of inst.orphans) console.log(`  orphan ${o.key} (${o.size} bytes, not deleted): ${o.reason}`);
  }
  for (const o of result.orphans) console.log(`orphan ${o.key} (${o.size} bytes, not deleted): ${o.reason}`);
  console.log(summarise(result));
}
