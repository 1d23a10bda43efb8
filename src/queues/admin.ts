// Redis-side job management for `mcb jobs` and the server: find a job by id across the instance queues,
// describe it with its stage chain, retry it (re-arming the chain a failed stage took down with it).
import { createRequire } from 'node:module';
import { Job, type JobType, type Queue } from 'bullmq';
import type { Queues } from './index.ts';
import { isoOrNull } from '../time/zone.ts';
import { SetupError } from '../errors.ts';

export const listableStates = ['failed', 'active', 'waiting', 'delayed', 'completed', 'waiting-children', 'prioritized'] as const;
export type ListableState = (typeof listableStates)[number];

export class JobNotFoundError extends SetupError {}

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


export async function summarize(queueName: string, job: Job, state?: string): Promise<JobSummary> {
  return {
    queue: queueName,
    id: job.id ?? '',
    name: job.name,
    state: state ?? (await job.getState()),
    attemptsMade: job.attemptsMade,
    attempts: job.opts.attempts ?? 1,
    createdAt: new Date(job.timestamp).toISOString(),
    processedAt: isoOrNull(job.processedOn || null),
    finishedAt: isoOrNull(job.finishedOn || null),
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

// BullMQ's own script behind Job.retry (move a failed job back to wait, and into its parent's dependencies),
// run inside ours so that the retried stage and the stages re-armed above it change in one atomic step. Its key
// and argument layout is BullMQ's (retryFinishedJob in bullmq's redis-queue-backend): re-check it on a BullMQ
// upgrade; a renamed script or a changed key count stops every `mcb` command at load, not at the first retry.
const require = createRequire(import.meta.url);
const { reprocessJob } = require('bullmq/dist/cjs/scripts/reprocessJob-9.js') as { reprocessJob: { content: string; keys: number } };
const REPROCESS_KEYS = 9;
const REPROCESS_ARGS = 6;
if (reprocessJob.keys !== REPROCESS_KEYS) throw new Error(`bullmq's reprocessJob script takes ${reprocessJob.keys} keys, mcb expects ${REPROCESS_KEYS}`);

/**
 * Retries a failed stage and re-arms the failed stages above it (back to waiting-children), all or nothing, checked
 * before the first write: BullMQ's own retry leaves a parent failed by fail-parent-on-failure in `failed` (a
 * stranded chain), and re-arming parents one call at a time could leave them waiting for a child never retried.
 * KEYS[1..9] BullMQ's reprocessJob keys of the retried job; then per ancestor, nearest first: its job key and
 * its queue key. ARGV[1..6] reprocessJob's arguments; ARGV[7] the number of ancestors; ARGV[8..] their ids;
 * then now (ms). Returns {1, re-armed ancestor indexes...} or {code, key}: -1 job missing, -3 the retried job is
 * not failed, -4 the chain does not link up (a parent other than the one given), -5 an ancestor neither failed
 * nor waiting for its children.
 */
const retryChainScript = `
local function reprocessFailedJob(KEYS, ARGV)
${reprocessJob.content}
end
local rcall = redis.call
local n = tonumber(ARGV[${REPROCESS_ARGS + 1}])
local now = tonumber(ARGV[${REPROCESS_ARGS + 2} + n])
local ownKeys, ownArgs = {}, {}
for i = 1, ${REPROCESS_KEYS} do ownKeys[i] = KEYS[i] end
for i = 1, ${REPROCESS_ARGS} do ownArgs[i] = ARGV[i] end
local target = KEYS[1]
if rcall("EXISTS", target) == 0 then return {-1, target} end
if not rcall("ZSCORE", KEYS[3], ARGV[1]) then return {-3, target} end
local child = target
local failed = {}
for i = 1, n do
  local jobKey, queueKey, id = KEYS[${REPROCESS_KEYS} + 2 * i - 1], KEYS[${REPROCESS_KEYS} + 2 * i], ARGV[${REPROCESS_ARGS + 1} + i]
  if rcall("EXISTS", jobKey) == 0 then return {-1, jobKey} end
  if rcall("HGET", child, "parentKey") ~= jobKey then return {-4, child} end
  if rcall("ZSCORE", queueKey .. ":failed", id) then
    failed[i] = true
  elseif not rcall("ZSCORE", queueKey .. ":waiting-children", id) then
    return {-5, jobKey}
  end
  child = jobKey
end
local above = rcall("HGET", child, "parentKey")
if above and above ~= "" and rcall("EXISTS", above) == 1 then return {-4, child} end

local rearmed = {1}
for i = 1, n do
  if failed[i] then
    local jobKey, queueKey, id = KEYS[${REPROCESS_KEYS} + 2 * i - 1], KEYS[${REPROCESS_KEYS} + 2 * i], ARGV[${REPROCESS_ARGS + 1} + i]
    rcall("ZREM", queueKey .. ":failed", id)
    rcall("HDEL", jobKey, "finishedOn", "processedOn", "failedReason", "defa", "stacktrace", "atm", "ats")
    rcall("ZADD", queueKey .. ":waiting-children", now, id)
    local parentKey = rcall("HGET", jobKey, "parentKey")
    if parentKey and rcall("EXISTS", parentKey) == 1 then
      if rcall("ZREM", parentKey .. ":unsuccessful", jobKey) == 1 or rcall("HDEL", parentKey .. ":failed", jobKey) == 1 then
        rcall("SADD", parentKey .. ":dependencies", jobKey)
      end
    end
    rearmed[#rearmed + 1] = i
  end
end
local moved = reprocessFailedJob(ownKeys, ownArgs)
if moved ~= 1 then return redis.error_reply("reprocessJob returned " .. tostring(moved) .. " after the checks passed") end
return rearmed
`;

export interface RetryResult {
  retried: string;
  rearmed: string[];
}

/** A retry refused because the chain is not whole or not failed; nothing was changed. */
export class RetryRefusedError extends SetupError {}

/** The deepest failed job at or below `job`: the stage that really failed (its failure took the ones above down). */
async function deepestFailed(queues: Queues, job: Job): Promise<Job> {
  let target = job;
  for (let guard = 0; guard < 50; guard++) {
    let next: Job | undefined;
    for (const child of await childrenOf(queues, target)) {
      const c = await loadJob(queues, child.queue, child.id);
      if (c && (await c.getState()) === 'failed') next = c;
    }
    if (!next) return target;
    target = next;
  }
  return target;
}

/** The jobs above `job`, nearest first, by each job's parent link; a parent that is gone refuses the retry. */
async function ancestorsOf(queues: Queues, job: Job): Promise<Job[]> {
  const out: Job[] = [];
  let cur = job;
  for (let guard = 0; cur.parent?.id && guard < 50; guard++) {
    const q = cur.parent.queueKey.slice(queues.prefix.length + 1);
    const parent = await loadJob(queues, q, cur.parent.id);
    if (!parent) {
      throw new RetryRefusedError(
        `job ${cur.parent.id} (the stage after ${cur.name} ${cur.id}) is gone from ${q}: the chain cannot complete; nothing was retried, start a new backup instead`,
      );
    }
    out.push(parent);
    cur = parent;
  }
  return out;
}

function refusal(code: number, key: string, queues: Queues): RetryRefusedError {
  const what = splitJobKey(queues.prefix, key);
  const job = what ? `job ${what.id} in ${what.queue}` : key;
  const why: Record<number, string> = {
    [-1]: `${job} is gone: the chain cannot complete; start a new backup instead`,
    [-3]: `${job} is no longer failed (retried or removed meanwhile)`,
    [-4]: `${job} is not linked to the stages found above it (the chain changed meanwhile)`,
    [-5]: `${job} is neither failed nor waiting for the stage below it`,
  };
  return new RetryRefusedError(`${why[code] ?? `${job}: unexpected answer ${code}`}; nothing was retried`);
}

/**
 * Retries a failed job, exactly like BullMQ's Job.retry, and when it is a stage of a chain whose later stages
 * failed because of it, puts those back to wait for it, in one atomic step (retryChainScript). When the job
 * itself only failed because a child did, the failed stage below it is the one retried.
 */
export async function retryJob(queues: Queues, job: Job): Promise<RetryResult> {
  const state = await job.getState();
  if (state !== 'failed') throw new JobNotFoundError(`job ${job.id} in ${job.queueName} is ${state}, not failed: only failed jobs can be retried`);
  const target = await deepestFailed(queues, job);
  const ancestors = await ancestorsOf(queues, target);
  const queue = queues.queue(target.queueName);
  const keys = [
    queue.toKey(target.id!),
    queue.keys.events!,
    queue.toKey('failed'),
    queue.keys.wait!,
    queue.keys.meta!,
    queue.keys.active!,
    queue.keys.marker!,
    queue.keys.prioritized!,
    queue.keys.pc!,
    ...ancestors.flatMap((a) => [`${a.queueQualifiedName}:${a.id}`, a.queueQualifiedName]),
  ];
  const args = [target.id!, (target.opts.lifo ? 'R' : 'L') + 'PUSH', 'failedReason', 'failed', '0', '0', String(ancestors.length), ...ancestors.map((a) => a.id!), String(Date.now())];
  const reply = (await queues.connection.eval(retryChainScript, keys.length, ...keys, ...args)) as Array<number | string>;
  const [code, ...rest] = reply;
  if (Number(code) !== 1) throw refusal(Number(code), String(rest[0] ?? ''), queues);
  const rearmed = rest.map((i) => ancestors[Number(i) - 1]!).map((a) => `${a.name} ${a.id}`);
  return { retried: `${target.name} ${target.id}`, rearmed };
}

export interface RetryAllResult {
  retried: RetryResult[];
  /** Chains whose retry was refused (left as they were), with the reason. */
  refused: Array<{ queue: string; jobId: string; reason: string }>;
}

/**
 * Every failed job of the given queues retried through retryJob, each chain once (a chain's later stages are
 * re-armed by the retry of its failed stage). A refused chain is reported and skipped. `onRetried` sees each
 * retry as it happens.
 */
export async function retryAllFailed(queues: Queues, queueNames: string[], onRetried?: (queue: string, r: RetryResult) => void): Promise<RetryAllResult> {
  const out: RetryAllResult = { retried: [], refused: [] };
  for (const name of queueNames) {
    const failed = await queues.queue(name).getJobs(['failed'], 0, -1);
    for (const job of failed) {
      // An earlier retry in this loop may already have re-armed this job as part of a chain.
      if (!job || (await job.getState()) !== 'failed') continue;
      try {
        const r = await retryJob(queues, job);
        out.retried.push(r);
        onRetried?.(name, r);
      } catch (err) {
        if (!(err instanceof RetryRefusedError)) throw err;
        // The other failed stages of a refused chain are refused for the same reason: report the chain once.
        if (!out.refused.some((f) => f.queue === name && f.reason === err.message)) out.refused.push({ queue: name, jobId: job.id ?? '', reason: err.message });
      }
    }
  }
  return out;
}
