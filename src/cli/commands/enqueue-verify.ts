// `mcb enqueue verify --instance ID [--backup UUID] [--wait]`: the weekly restore test (the `verify` job), now,
// on the instance's queue: its node-local worker restores the newest Completed full backup into a scratch
// directory, starts mysqld on it, runs CHECK TABLE on a sample and records verify_state / verified_at.
// With --wait: exit 0 when the backup verified ok; 1 when it failed verification, the job failed, or the worker
// skipped it (no usable mysqld on its host: nothing was verified).
import type { Command } from 'commander';
import type { VerifyResult } from '../../jobs/verify.ts';
import { parseId, type Run } from '../context.ts';
import { enqueueOnInstance, JobFailedError, waitForInstanceJob, withWaitOptions } from '../wait.ts';

export function registerEnqueueVerify(enqueue: Command, run: Run): void {
  withWaitOptions(
    enqueue
      .command('verify')
      .description('restore-test the newest full backup of one instance now (the weekly verify job)')
      .requiredOption('--instance <id>', 'tb_instance id')
      .option('--backup <uuid>', 'test this Completed full backup instead of the newest one'),
    'wait for the job; print the result; exit 0 when verified ok, 1 otherwise',
  )
    .action((o) =>
      run(async (ctx) => {
        const instanceId = parseId(o.instance);
        const instance = await ctx.instance(instanceId); // a disabled instance's backups can still be tested
        // One attempt: a verification that fails is a result, and a job that fails is reported now by --wait.
        const { queue, jobId } = await enqueueOnInstance(ctx, {
          type: 'verify',
          queueInstance: instanceId,
          data: { instanceId, ...(o.backup ? { backupUuid: String(o.backup) } : {}) },
          jobIdPart: String(instanceId),
          attempts: 1,
          describe: `restore test of instance ${instanceId} (${instance.instanceId})`,
        });
        if (!o.wait) return;
        const done = await waitForInstanceJob(queue, jobId, instanceId, o.timeout);
        if (done.state === 'failed') throw new JobFailedError(`restore test of instance ${instanceId} failed: ${done.failedReason}`);
        const r = done.returnvalue as VerifyResult;
        if (r.state === 'skipped') throw new JobFailedError(`restore test of instance ${instanceId} skipped by the worker: ${r.reason}`);
        console.log(`backup:  ${r.backupUuid}  ${r.objectKey}`);
        console.log(`tables:  ${r.tablesChecked.length} checked (${r.tablesChecked.slice(0, 5).join(', ')}${r.tablesChecked.length > 5 ? ', …' : ''})${r.mysqldVersion ? ` with mysqld ${r.mysqldVersion}` : ''}`);
        if (r.state === 'failed') throw new JobFailedError(`backup ${r.objectKey} FAILED verification: ${r.reason}`);
        console.log('state:   ok (verify_state = ok, verified_at recorded)');
      }),
    );
}
