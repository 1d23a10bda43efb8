// Redis-side job management for `mcb jobs` and the server: find a job by id across the instance queues,
// describe it with its stage chain, retry it (re-arming the chain a failed stage took down with it).
import { Job, type JobType, type Queue } from 'bullmq';
import type { Queues } from './index.ts';

export const listableStates = ['failed', 'active', 'waiting', 'delayed', 'completed', 'waiting-children', 'prioritized'] as const;
export type ListableState = (typeof listableStates)[number];

export class JobNotFoundError extends Error {
  readonly exitCode = 2;
}

export interface FoundJob {
  queue: Queue;
  job: Job;
}

/**
 * Job ids are unique per queue only: with `queueName` look there, otherwise in every instance queue.
 * Two queues holding the same id is reported, not guessed at.
 */
export async function findJob(queues: Queues, id: string, queueName?: string): Promise<FoundJob> {
  const names = queueName ? [queueName] : await queues.knownInstanceQueues();
  const found: FoundJob[] = [];
  for (const name of names) {
    const queue = queues.queue(name);
    const job = await queue.getJob(id);
    if (job) found.push({ queue, job });
  }
  if (!found.length) {
    throw new JobNotFoundError(`no job with id "${id}" in ${queueName ? `queue ${queueName}` : `any instance queue (${names.join(', ') || 'none found'})`}`);
  }
  if (found.length > 1) {
    throw new JobNotFoundError(`job id "${id}" exists in several queues (${found.map((f) => f.queue.name).join(', ')}): pass --queue`);
  }
  return found[0]!;
}

export interface JobSummary {
  queue: string;
  id: string;
  name: string;
  state: string;
  attemptsMade: number;
  attempts: number;
  createdAt: string;
  processedAt: string | null;
  finishedAt: string | null;
  progress: unknown;
  failedReason: string | null;
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

export async function summarize(queueName: string, job: Job, state?: string): Promise<JobSummary> {
  return {
    queue: queueName,
    id: job.id ?? '',
    name: job.name,
    state: state ?? (await job.getState()),
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    createdAt: new Date(job.timestamp).toISOString(),
    processedAt: iso(job.processedOn),
    finishedAt: iso(job.finishedOn),
    progress: job.progress,
    failedReason: job.failedReason || null,
  };
}

/** Jobs in the given states across queues, newest first, at most `limit`. */
export async function listJobs(queues: Queues, opts: { states: readonly ListableState[]; queueNames: string[]; limit: number }): Promise<JobSummary[]> {
  const out: Array<JobSummary & { ts: number }> = [];
  for (const name of opts.queueNames) {
    const queue = queues.queue(name);
    for (const state of opts.states) {
      const jobs = await queue.getJobs([state as JobType], 0, opts.limit - 1, false);
      for (const job of jobs) if (job) out.push({ ...(await summarize(name, job, state)), ts: job.timestamp });
    }
  }
  out.sort((a, b) => b.ts - a.ts);
  return out.slice(0, opts.limit).map(({ ts: _ts, ...rest }) => rest);
}

export interface ChainLink {
  queue: string;
  id: string;
  name: string;
  state: string;
}

function splitJobKey(prefix: string, key: string): { queue: string; id: string } | undefined {
  if (!key.startsWith(`${prefix}:`)) return undefined;
  const rest = key.slice(prefix.length + 1);
  const i = rest.indexOf(':');
  return i < 0 ? undefined : { queue: rest.slice(0, i), id: rest.slice(i + 1) };
}

async function loadJob(queues: Queues, queue: string, id: string): Promise<Job | undefined> {
  return (await Job.fromId(queues.queue(queue), id)) ?? undefined;
}

async function childrenOf(queues: Queues, job: Job): Promise<Array<{ queue: string; id: string }>> {
  const deps = await job.getDependencies();
  const keys = [
    ...Object.keys(deps.processed ?? {}),
    ...(deps.unprocessed ?? []),
    ...(deps.failed ?? []),
    ...Object.keys(deps.ignored ?? {}),
  ];
  // Children that failed a fail-parent-on-failure parent sit in its "unsuccessful" set.
  const unsuccessful = await queues.connection.zrange(`${job.queueQualifiedName}:${job.id}:unsuccessful`, 0, -1);
  keys.push(...unsuccessful);
  return [...new Set(keys)].map((k) => splitJobKey(queues.prefix, k)).filter((x): x is { queue: string; id: string } => !!x);
}

/**
 * The flow this job belongs to, in the order the stages run: the deepest child first, the root last.
 * Our chains are linear (clone → tar → upload → cleanup); a node with several children lists them all.
 */
export async function jobChain(queues: Queues, start: Job): Promise<ChainLink[]> {
  let root = start;
  for (let guard = 0; root.parent?.id && guard < 50; guard++) {
    const q = root.parent.queueKey.slice(queues.prefix.length + 1);
    const parent = await loadJob(queues, q, root.parent.id!);
    if (!parent) break;
    root = parent;
  }
  const links: ChainLink[] = [];
  const visit = async (job: Job, depth: number): Promise<void> => {
    if (depth > 50) return;
    for (const child of await childrenOf(queues, job)) {
      const c = await loadJob(queues, child.queue, child.id);
      if (c) await visit(c, depth + 1);
      else links.push({ queue: child.queue, id: child.id, name: '?', state: 'removed' });
    }
    links.push({ queue: job.queueName, id: job.id ?? '', name: job.name, state: await job.getState() });
  };
  await visit(root, 0);
  return links.length > 1 ? links : [];
}

// Puts failed ancestors back into waiting-children, so that the retried stage's success releases them.
// BullMQ's own retry moves the child back into its parent's dependencies but leaves a parent that was
// failed by fail-parent-on-failure in `failed` (see moveChildBackToParentDependencies.lua), which would
// strand the chain. KEYS[1] job key, KEYS[2] its queue key; ARGV[1] job id, ARGV[2] now (ms).
const rearmParentScript = `
local jobKey, queueKey, jobId = KEYS[1], KEYS[2], ARGV[1]
if redis.call("ZREM", queueKey .. ":failed", jobId) == 0 then return 0 end
redis.call("HDEL", jobKey, "finishedOn", "processedOn", "failedReason", "defa", "stacktrace", "atm", "ats")
redis.call("ZADD", queueKey .. ":waiting-children", tonumber(ARGV[2]), jobId)
local parentKey = redis.call("HGET", jobKey, "parentKey")
if parentKey and redis.call("EXISTS", parentKey) == 1 then
  if redis.call("ZREM", parentKey .. ":unsuccessful", jobKey) == 1 or redis.call("HDEL", parentKey .. ":failed", jobKey) == 1 then
    redis.call("SADD", parentKey .. ":dependencies", jobKey)
  end
end
return 1
`;

export interface RetryResult {
  retried: string;
  rearmed: string[];
}

/**
 * Retries a failed job. When it is a stage of a chain whose later stages failed because of it, those are
 * put back to wait for it; when the job itself only failed because a child did, the failed stage below
 * it is the one retried.
 */
export async function retryJob(queues: Queues, job: Job): Promise<RetryResult> {
  const state = await job.getState();
  if (state !== 'failed') throw new JobNotFoundError(`job ${job.id} in ${job.queueName} is ${state}, not failed: only failed jobs can be retried`);
  // Find the deepest failed job below: that is the stage that really failed.
  let target = job;
  for (let guard = 0; guard < 50; guard++) {
    let next: Job | undefined;
    for (const child of await childrenOf(queues, target)) {
      const c = await loadJob(queues, child.queue, child.id);
      if (c && (await c.getState()) === 'failed') next = c;
    }
    if (!next) break;
    target = next;
  }
  // Re-arm failed ancestors, top-down order does not matter: none can run until the target completes.
  const rearmed: string[] = [];
  let cur: Job = target;
  for (let guard = 0; cur.parent?.id && guard < 50; guard++) {
    const q = cur.parent.queueKey.slice(queues.prefix.length + 1);
    const parent = await loadJob(queues, q, cur.parent.id!);
    if (!parent) break;
    const moved = await queues.connection.eval(rearmParentScript, 2, `${parent.queueQualifiedName}:${parent.id}`, parent.queueQualifiedName, parent.id!, String(Date.now()));
    if (Number(moved) === 1) rearmed.push(`${parent.name} ${parent.id}`);
    cur = parent;
  }
  await target.retry('failed');
  return { retried: `${target.name} ${target.id}`, rearmed };
}
