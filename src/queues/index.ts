// Queue names, job options and the full-backup flow, in one place. Every instance has its own queue, served
// only by the worker on that instance's host; that is how node-local routing works.
import { FlowProducer, Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config/index.ts';
import type { FullChainPayload } from '../jobs/types.ts';

export class RedisUnavailableError extends Error {}

const fullStages = ['clone', 'tar', 'upload', 'cleanup'] as const;
const liveStates = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused'];

export function instanceQueueName(instanceId: number): string {
  return `mcb-instance-${instanceId}`;
}

export function instanceIdOfQueue(name: string): number | undefined {
  const m = /^mcb-instance-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * Workers block on Redis and must ride out restarts (maxRetriesPerRequest: null, as BullMQ requires);
 * the CLI and producer start-up fail fast so a dead Redis is reported, not waited for.
 */
export function redisConnection(config: Config, mode: 'worker' | 'client'): Redis {
  const opts: RedisOptions =
    mode === 'worker'
      ? { maxRetriesPerRequest: null }
      : { maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: (times) => (times > 2 ? null : 200) };
  const redis = new Redis(config.redis.url, { ...opts, lazyConnect: true });
  redis.on('error', () => undefined); // reported through pingRedis / command failures
  return redis;
}

export async function pingRedis(redis: Redis, url: string): Promise<void> {
  const safeUrl = url.replace(/\/\/([^@/]*)@/, '//***@');
  try {
    if (redis.status === 'wait') await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new RedisUnavailableError(`Redis at ${safeUrl} is unreachable: ${(err as Error).message}`);
  }
}

/** Retries for every stage; each number's reason is in config.ts (stage_attempts, stage_backoff_ms). */
export function stageJobOptions(config: Config): JobsOptions {
  return {
    attempts: config.backup.stageAttempts,
    backoff: { type: 'exponential', delay: config.backup.stageBackoffMs },
    // Keep history for bull-board and `mcb jobs`: a week of successes, a month of failures.
    removeOnComplete: { age: 7 * 24 * 3600, count: 1000 },
    removeOnFail: { age: 30 * 24 * 3600 },
  };
}

export class Queues {
  private readonly queues = new Map<string, Queue>();
  private flow?: FlowProducer;

  constructor(
    readonly config: Config,
    readonly connection: Redis,
  ) {}

  get prefix(): string {
    return this.config.redis.prefix;
  }

  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection as ConnectionOptions, prefix: this.prefix });
      q.on('error', () => undefined);
      this.queues.set(name, q);
    }
    return q;
  }

  /** Redis set of the instance queues the producer has put schedules on (so it can find them to remove). */
  get scheduledQueuesKey(): string {
    return `${this.prefix}:mcb:scheduled-queues`;
  }

  forInstance(instanceId: number): Queue {
    return this.queue(instanceQueueName(instanceId));
  }

  /** Every instance queue that exists in Redis under our prefix. */
  async knownInstanceQueues(): Promise<string[]> {
    const names = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await this.connection.scan(cursor, 'MATCH', `${this.prefix}:mcb-instance-*:meta`, 'COUNT', 500);
      cursor = next;
      for (const k of keys) names.add(k.slice(this.prefix.length + 1, -':meta'.length));
    } while (cursor !== '0');
    for (const s of await this.connection.smembers(this.scheduledQueuesKey)) names.add(s);
    return [...names].filter((n) => instanceIdOfQueue(n) !== undefined).sort();
  }

  /**
   * clone → tar → upload → cleanup as one atomic flow (the last stage is the root, the first the deepest
   * leaf). Job ids derive from the backup uuid, so adding the same chain twice adds nothing.
   */
  async addFullChain(payload: FullChainPayload): Promise<void> {
    this.flow ??= new FlowProducer({ connection: this.connection as ConnectionOptions, prefix: this.prefix });
    const queueName = instanceQueueName(payload.instanceId);
    const opts = (stage: string): JobsOptions => ({
      ...stageJobOptions(this.config),
      jobId: `${payload.backupUuid}-${stage}`,
      // A stage that has given up fails the stages after it, instead of leaving them waiting forever.
      failParentOnFailure: true,
    });
    const node = (stage: string, child?: object) => ({
      name: stage,
      queueName,
      data: payload,
      opts: opts(stage),
      ...(child ? { children: [child] } : {}),
    });
    await this.flow.add(node('cleanup', node('upload', node('tar', node('clone')))) as Parameters<FlowProducer['add']>[0]);
  }

  async isFullChainAlive(payload: FullChainPayload): Promise<boolean> {
    const queue = this.forInstance(payload.instanceId);
    for (const stage of fullStages) {
      const job = await queue.getJob(`${payload.backupUuid}-${stage}`);
      if (job && liveStates.includes(await job.getState())) return true;
    }
    return false;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.flow?.close();
  }
}
