// Following a job from the CLI (`enqueue … --wait`): polls Redis and the metadata row and prints changes.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Queue } from 'bullmq';
import type { Command } from 'commander';
import { fullStages, stageOfState, type FullStage, type MetadataStore } from '../metadata/index.ts';
import { progressFraction, progressPercent } from '../ops/status.ts';
import { fullStageJobId, stageJobOptions } from '../queues/index.ts';
import { formatLocalTime } from '../time/zone.ts';
import type { CliContext } from './context.ts';

/** A job that ran and failed, or a backup that ended in Error: exit code 1. */
export class JobFailedError extends Error {}

export interface FinishedJob {
  state: 'completed' | 'failed';
  returnvalue: unknown;
  failedReason?: string;
}

// Polled: QueueEvents needs a connection that waits forever for Redis (the CLI's fails fast), and waitUntilFinished hangs on a removed job.
export async function waitForJob(queue: Queue, jobId: string, opts: { timeoutMs?: number; onWaiting?: () => void } = {}): Promise<FinishedJob> {
  const started = Date.now();
  let warned = false;
  for (;;) {
    // The state first, then the job: a job read before it finished would hold no return value yet.
    const state = await queue.getJobState(jobId);
    if (state === 'completed' || state === 'failed') {
      const job = await queue.getJob(jobId);
      if (!job) throw new JobFailedError(`job ${jobId} disappeared from queue ${queue.name}`);
      if (state === 'completed') return { state, returnvalue: job.returnvalue };
      return { state, returnvalue: undefined, failedReason: job.failedReason };
    }
    if (state === 'unknown') throw new JobFailedError(`job ${jobId} disappeared from queue ${queue.name}`);
    if (!warned && state === 'waiting' && Date.now() - started > 10_000) {
      warned = true;
      opts.onWaiting?.();
    }
    if (opts.timeoutMs && Date.now() - started > opts.timeoutMs) throw new JobFailedError(`gave up waiting for job ${jobId} after ${opts.timeoutMs / 1000} s (state ${state})`);
    await sleep(300);
  }
}

/** Prints each state the backup row passes through, and stage progress, until Completed or Error. Polls: the row is not in Redis. */
export async function followBackup(
  metadata: MetadataStore,
  queue: Queue,
  backupUuid: string,
  opts: { timeoutMs?: number } = {},
): Promise<void> {
  const started = Date.now();
  let lastState = '';
  let lastProgress = '';
  const reported = new Set<FullStage>();
  const lastStage = fullStages.at(-1)!;
  // Each finished stage once, with its duration, from the stage jobs: a fast stage can start and end
  // between two polls of the row.
  const reportFinishedStages = async () => {
    for (const stage of fullStages) {
      if (reported.has(stage)) continue;
      const job = await queue.getJob(fullStageJobId({ backupUuid }, stage));
      if (!job?.finishedOn || job.failedReason) continue;
      reported.add(stage);
      const seconds = job.processedOn ? ((job.finishedOn - job.processedOn) / 1000).toFixed(1) : '?';
      console.log(`${formatLocalTime(new Date(job.finishedOn), metadata.timeZone)}  ${''.padEnd(10)} ${stage} done in ${seconds} s`);
    }
  };
  for (;;) {
    const row = await metadata.getBackup(backupUuid);
    if (!row) throw new JobFailedError(`backup ${backupUuid} has no metadata row`);
    await reportFinishedStages();
    if (row.state !== lastState) {
      lastState = row.state;
      console.log(`${formatLocalTime(new Date(), metadata.timeZone)}  ${row.state.padEnd(10)} ${row.info ?? ''}`);
    }
    if (row.state === 'Completed') {
      // The last stage's job completes just after it marks the row.
      for (let i = 0; i < 20 && !reported.has(lastStage); i++) {
        await sleep(100);
        await reportFinishedStages();
      }
      console.log(`backup ${row.backupName}: ${row.backupSize} (${row.backupBytes} bytes), sha256 ${row.sha256}, in ${row.bucketName}/${row.objectKey}`);
      return;
    }
    if (row.state === 'Error') throw new JobFailedError(`backup ${row.backupName} failed: ${row.info}`);
    const stage = stageOfState(row.state);
    if (stage) {
      const job = await queue.getJob(fullStageJobId({ backupUuid }, stage));
      const fraction = progressFraction(job?.progress);
      if (fraction !== undefined) {
        const text = `${stage} ${progressPercent(fraction)}%`;
        if (text !== lastProgress) {
          lastProgress = text;
          console.log(`${formatLocalTime(new Date(), metadata.timeZone)}  ${''.padEnd(10)} ${text}`);
        }
      }
    }
    if (opts.timeoutMs && Date.now() - started > opts.timeoutMs) throw new JobFailedError(`gave up waiting after ${opts.timeoutMs / 1000} s; backup is in state ${row.state}`);
    await sleep(500);
  }
}

/** Puts an ad-hoc job on an instance's queue (the queue its node-local worker serves) and says so. */
export async function enqueueOnInstance(
  ctx: CliContext,
  opts: { type: string; queueInstance: number; data: object; jobIdPart: string; attempts?: number; describe: string },
): Promise<{ queue: Queue; jobId: string }> {
  const queue = (await ctx.queues()).forInstance(opts.queueInstance);
  const jobId = `${opts.type}-adhoc-${opts.jobIdPart}-${Date.now()}`;
  await queue.add(opts.type, opts.data, { ...stageJobOptions(ctx.config), ...(opts.attempts ? { attempts: opts.attempts } : {}), jobId });
  console.log(`enqueued ${opts.describe} as job ${jobId} on ${queue.name}`);
  return { queue, jobId };
}

/** waitForJob with the hint a DBA needs when no worker picks the job up; `timeout` in seconds (0 = never). */
export function waitForInstanceJob(queue: Queue, jobId: string, queueInstance: number, timeout: string | number): Promise<FinishedJob> {
  return waitForJob(queue, jobId, {
    timeoutMs: Number(timeout) * 1000 || undefined,
    onWaiting: () => console.log(`still waiting: is \`mcb worker\` running for instance ${queueInstance} (queue ${queue.name})?`),
  });
}

/** The `--wait` and `--timeout` options every `enqueue <type>` takes; `waitHelp` says what --wait prints. */
export function withWaitOptions(command: Command, waitHelp: string): Command {
  return command.option('--wait', waitHelp).option('--timeout <seconds>', 'with --wait: give up after this long (0 = never)', '0');
}
