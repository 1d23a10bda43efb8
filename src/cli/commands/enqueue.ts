import type { Command } from 'commander';
import { parseId, type Run } from '../context.ts';
import { enqueueOnInstance, followBackup, JobFailedError, waitForInstanceJob, withWaitOptions } from '../wait.ts';

/** Registers `enqueue` and `enqueue full`; returns the `enqueue` command so other job types add theirs. */
export function registerEnqueue(program: Command, run: Run): Command {
  const enqueue = program.command('enqueue').description('run a job now, through the same queues and workers as the schedules');

  withWaitOptions(
    enqueue
      .command('full')
      .description('an ad-hoc full backup (clone → tar → upload → cleanup) of one instance')
      .requiredOption('--instance <id>', 'tb_instance id'),
    'print progress per stage; exit 0 on Completed, 1 on Error',
  )
    .action((o) =>
      run(async (ctx) => {
        const instanceId = parseId(o.instance);
        const instance = await ctx.instance(instanceId, { mustBeEnabled: true });
        const { queue, jobId } = await enqueueOnInstance(ctx, {
          type: 'full',
          queueInstance: instanceId,
          data: { instanceId },
          jobIdPart: String(instanceId),
          describe: `full backup of instance ${instanceId} (${instance.instanceId})`,
        });
        if (!o.wait) return;
        const timeoutMs = Number(o.timeout) * 1000 || undefined;
        const done = await waitForInstanceJob(queue, jobId, instanceId, o.timeout);
        if (done.state === 'failed') throw new JobFailedError(`full backup of instance ${instanceId} did not start: ${done.failedReason}`);
        const result = done.returnvalue as { started: boolean; backupUuid?: string; reason?: string };
        if (!result.started) {
          console.log(result.reason);
          return;
        }
        await followBackup(await ctx.metadata(), queue, result.backupUuid!, { timeoutMs });
      }),
    );
  return enqueue;
}
