// `mcb jobs …`: what is in the queues (Redis), and the levers a DBA pulls on it: retry, remove, pause, resume.
import type { Command } from 'commander';
import { findJob, jobChain, listableStates, listJobs, retryAllFailed, retryJob, summarize, type ListableState } from '../../queues/admin.ts';
import { instanceIdOfQueue, instanceQueueName } from '../../queues/index.ts';
import { parseId, printTable, UsageError, type CliContext, type Run } from '../context.ts';

function checkQueueName(name: string): string {
  if (instanceIdOfQueue(name) === undefined) throw new UsageError(`--queue must name an instance queue like mcb-instance-3, got "${name}"`);
  return name;
}

async function queueNames(ctx: CliContext, o: { queue?: string; instance?: string }): Promise<string[]> {
  if (o.queue && o.instance) throw new UsageError('give --queue or --instance, not both');
  if (o.queue) return [checkQueueName(o.queue)];
  if (o.instance) {
    const id = parseId(o.instance);
    await ctx.instance(id);
    return [instanceQueueName(id)];
  }
  return (await ctx.queues()).knownInstanceQueues();
}

export function registerJobs(program: Command, run: Run): void {
  const jobs = program
    .command('jobs')
    .description('jobs in the Redis queues (one queue per instance: mcb-instance-<id>): list, show, retry, remove, pause, resume')
    .addHelpText(
      'after',
      `
Job ids are unique per queue; without --queue every instance queue is searched.
Exit codes: 0 ok, 1 Redis or the metadata center unreachable, 2 bad usage, unknown job or instance.`,
    );

  jobs
    .command('list')
    .description('list jobs, newest first, with state, attempts and the reason of the last failure')
    .option('--state <state>', `only this state: ${listableStates.join(', ')} (default: all)`)
    .option('--queue <name>', 'only this queue (e.g. mcb-instance-3)')
    .option('--instance <id>', 'only the queue of this tb_instance id')
    .option('--limit <n>', 'at most this many jobs', '50')
    .option('--json', 'print JSON (one array of jobs)')
    .action((o) =>
      run(async (ctx) => {
        if (o.state && !(listableStates as readonly string[]).includes(o.state)) {
          throw new UsageError(`--state must be one of ${listableStates.join(', ')}, got "${o.state}"`);
        }
        const limit = parseId(o.limit, '--limit');
        const names = await queueNames(ctx, o);
        const queues = await ctx.queues();
        const rows = await listJobs(queues, { states: o.state ? [o.state as ListableState] : listableStates, queueNames: names, limit });
        if (o.json) {
          console.log(JSON.stringify(rows, null, 2));
          return;
        }
        if (!rows.length) {
          console.log(`no jobs${o.state ? ` in state ${o.state}` : ''} in ${names.join(', ') || 'any instance queue'}`);
          return;
        }
        printTable(
          rows.map((r) => ({ ...r, attempts: `${r.attemptsMade}/${r.attempts}`, failedReason: r.failedReason?.split('\n')[0]?.slice(0, 100) })),
          ['queue', 'id', 'name', 'state', 'attempts', 'createdAt', 'failedReason'],
        );
      }),
    );

  jobs
    .command('show')
    .argument('<id>', 'job id (see `mcb jobs list`)')
    .description('one job: payload, attempts, the last failure with its stack trace, progress, and its stage chain')
    .option('--queue <name>', 'the queue holding it (default: search every instance queue)')
    .option('--json', 'print JSON')
    .action((id: string, o) =>
      run(async (ctx) => {
        const queues = await ctx.queues();
        const { queue, job } = await findJob(queues, id, o.queue ? checkQueueName(o.queue) : undefined);
        const summary = await summarize(queue.name, job);
        const chain = await jobChain(queues, job);
        const detail = {
          ...summary,
          data: job.data,
          opts: { attempts: job.opts.attempts, backoff: job.opts.backoff, delay: job.opts.delay },
          returnvalue: job.returnvalue ?? null,
          stacktrace: job.stacktrace ?? [],
          parent: job.parent ? { queue: job.parent.queueKey.slice(queues.prefix.length + 1), id: job.parent.id } : null,
          chain,
        };
        if (o.json) {
          console.log(JSON.stringify(detail, null, 2));
          return;
        }
        const p = (k: string, v: unknown) => console.log(`${k.padEnd(12)} ${v ?? ''}`);
        p('queue', detail.queue);
        p('id', detail.id);
        p('name', detail.name);
        p('state', detail.state);
        p('attempts', `${detail.attemptsMade} made of ${detail.attempts}`);
        p('created', detail.createdAt);
        p('processed', detail.processedAt);
        p('finished', detail.finishedAt);
        p('progress', JSON.stringify(detail.progress));
        p('payload', JSON.stringify(detail.data));
        if (detail.returnvalue !== null) p('result', JSON.stringify(detail.returnvalue));
        if (detail.parent) p('parent', `${detail.parent.queue} ${detail.parent.id}`);
        if (chain.length) {
          console.log('chain        (runs top to bottom)');
          for (const l of chain) console.log(`  ${l.id === detail.id ? '>' : ' '} ${l.name.padEnd(8)} ${l.state.padEnd(17)} ${l.id}`);
        }
        if (detail.failedReason) {
          p('failed', detail.failedReason);
          const last = detail.stacktrace[detail.stacktrace.length - 1];
          if (last) console.log(`stack of the last failure:\n${last}`);
        }
      }),
    );

  jobs
    .command('retry')
    .argument('[id]', 'job id of a failed job')
    .description('run a failed job again; a failed stage of a full-backup chain resumes the chain from that stage')
    .option('--all-failed', 'retry every failed job (in --queue, or every instance queue)')
    .option('--queue <name>', 'the queue holding it (default: search every instance queue)')
    .addHelpText(
      'after',
      `
A stage retried after it gave up restarts from the metadata row (the stages accept the Error state), and the
stages after it, failed because of it, wait for it again, in one atomic step: a chain whose stages were
removed or changed meanwhile is refused (exit 2) and left as it was. Retrying one of those later stages
retries the stage that really failed. bull-board's Retry button does the same.`,
    )
    .action((id: string | undefined, o) =>
      run(async (ctx) => {
        if (!id === !o.allFailed) throw new UsageError('give a job id or --all-failed (not both)');
        const queues = await ctx.queues();
        if (id) {
          const { job } = await findJob(queues, id, o.queue ? checkQueueName(o.queue) : undefined);
          const r = await retryJob(queues, job);
          console.log(`retried ${r.retried}${r.rearmed.length ? `; waiting for it again: ${r.rearmed.join(', ')}` : ''}`);
          return;
        }
        const names = o.queue ? [checkQueueName(o.queue)] : await queues.knownInstanceQueues();
        const { retried, refused } = await retryAllFailed(queues, names, (name, r) =>
          console.log(`retried ${name} ${r.retried}${r.rearmed.length ? `; waiting for it again: ${r.rearmed.join(', ')}` : ''}`),
        );
        for (const f of refused) console.error(`mcb: not retried ${f.queue} ${f.jobId}: ${f.reason}`);
        console.log(`${retried.length} failed job(s) retried${refused.length ? `, ${refused.length} refused (left as they were)` : ''}`);
        if (refused.length) process.exitCode = 2;
      }),
    );

  jobs
    .command('remove')
    .argument('<id>', 'job id')
    .description('remove a job (and, for a chain, the stages that depend on it) from its queue')
    .option('--queue <name>', 'the queue holding it (default: search every instance queue)')
    .action((id: string, o) =>
      run(async (ctx) => {
        const queues = await ctx.queues();
        const { queue, job } = await findJob(queues, id, o.queue ? checkQueueName(o.queue) : undefined);
        const state = await job.getState();
        if (state === 'active') throw new UsageError(`job ${id} is running (active): stop its worker first, or wait for it`);
        await job.remove();
        console.log(`removed job ${id} (${job.name}, ${state}) from ${queue.name}`);
      }),
    );

  for (const action of ['pause', 'resume'] as const) {
    jobs
      .command(action)
      .description(
        action === 'pause'
          ? 'stop workers from taking new jobs from a queue (running jobs finish); schedules keep adding jobs'
          : 'let workers take jobs from a paused queue again',
      )
      .option('--queue <name>', 'the queue (e.g. mcb-instance-3)')
      .option('--instance <id>', 'the queue of this tb_instance id')
      .action((o) =>
        run(async (ctx) => {
          if (!o.queue && !o.instance) throw new UsageError(`give --queue NAME or --instance ID to ${action}`);
          const [name] = await queueNames(ctx, o);
          const queue = (await ctx.queues()).queue(name!);
          if (action === 'pause') await queue.pause();
          else await queue.resume();
          console.log(`${name} ${action === 'pause' ? 'paused' : 'resumed'}`);
        }),
      );
  }
}
