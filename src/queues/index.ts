// Queue names, job options and the full-backup flow, in one place. Every instance has its own queue, served
// only by the worker on that instance's host; that is how node-local routing works. Also the Redis connections by
// role (single server, Sentinel, Cluster; sentinel-switch.ts) and job admin with the atomic chain retry (admin.ts).
// May import: jobs, metadata, config, log, time.
import { FlowProducer, Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config } from '../config/index.ts';
import { fullStages, type FullStage } from '../metadata/states.ts';
import type { FullChainPayload } from '../jobs/types.ts';
import type { Logger } from '../log/index.ts';
import { followSentinelSwitches, stopFollowingSentinelSwitches } from './sentinel-switch.ts';

export class RedisUnavailableError extends Error {}

/** A connection to Redis: one server, the primary Sentinel names, or a Cluster. */
export type RedisClient = Redis | Cluster;

const liveStates = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'paused'];

/** Whether a job in this BullMQ state will still run (or runs now). */
function isLiveJobState(state: string | undefined): boolean {
  return state !== undefined && liveStates.includes(state);
}

export function instanceQueueName(instanceId: number): string {
  return `mcb-instance-${instanceId}`;
}

export function instanceIdOfQueue(name: string): number | undefined {
  const m = /^mcb-instance-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

/**
 * How a connection lives through a Redis outage. `worker`: the BullMQ Worker's blocking connection reconnects
 * forever and its commands wait (maxRetriesPerRequest: null, as BullMQ requires). `daemon`: other connections of
 * long-running processes reconnect forever, but a command fails after one failed reconnect, so the caller logs and
 * tries later. `client` (the CLI) gives up after a few attempts, so a dead Redis is reported at once.
 */
export type ConnectionRole = 'worker' | 'daemon' | 'client';

/** Reconnect delays of a daemon: quick at first, then every 5 s, never giving up. */
const reconnectForever = (times: number) => Math.min(times * 200, 5000);
const giveUpSoon = (times: number) => (times > 2 ? null : 200);

export function redisConnection(config: Config, role: ConnectionRole): RedisClient {
  const r = config.redis;
  const retry = role === 'client' ? giveUpSoon : reconnectForever;
  const common: RedisOptions = {
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: role === 'worker' ? null : 1,
    ...(r.password !== undefined ? { password: r.password } : {}),
    // After a failover the old primary is a replica that refuses writes (READONLY) and unblocks blocked clients
    // (UNBLOCKED): reconnect, to the primary Sentinel names now, and resend.
    reconnectOnError: (err) => (/^(READONLY|UNBLOCKED)/.test(err.message) ? 2 : false),
  };
  let redis: RedisClient;
  if (r.clusterNodes) {
    const { lazyConnect: _lazy, ...nodeOptions } = common;
    const options: ClusterOptions = { lazyConnect: true, clusterRetryStrategy: retry, redisOptions: nodeOptions };
    redis = new Cluster(r.clusterNodes, options);
  } else if (r.sentinels) {
    redis = new Redis({
      ...common,
      sentinels: r.sentinels,
      name: r.sentinelMaster,
      ...(r.sentinelPassword !== undefined ? { sentinelPassword: r.sentinelPassword } : {}),
      sentinelRetryStrategy: retry,
      retryStrategy: retry,
    });
    // Not ioredis's failoverDetector: see sentinel-switch.ts.
    if (role !== 'client') followSentinelSwitches(redis, r, reconnectForever);
  } else {
    redis = new Redis(r.url, { ...common, retryStrategy: retry });
  }
  redis.on('error', () => undefined); // reported through pingRedis, command failures and logRedisOutages
  if (role !== 'client') reviveOnEnd(redis);
  return redis;
}

/** Connections being closed on purpose (closeRedis, dropRedis): the only ones a daemon lets end. */
const closing = new WeakSet<RedisClient>();

/**
 * A daemon's connection must never stay ended: should ioredis end one on a path its retry strategy does not cover
 * (its failoverDetector did, during a Sentinel failover), start it again, unless we are closing it.
 */
function reviveOnEnd(redis: RedisClient): void {
  redis.on('end', () => {
    if (closing.has(redis)) return;
    setTimeout(() => {
      if (!closing.has(redis) && redis.status === 'end') redis.connect().catch(() => undefined);
    }, 1000).unref();
  });
}

/** Drops a connection at once (pending commands fail or are abandoned), for good. */
export function dropRedis(redis: RedisClient): void {
  closing.add(redis);
  if (redis instanceof Redis) stopFollowingSentinelSwitches(redis);
  redis.disconnect();
}

export async function pingRedis(redis: RedisClient, url: string): Promise<void> {
  const safeUrl = url.replace(/\/\/([^@/]*)@/, '//***@');
  try {
    if (redis.status === 'wait') await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new RedisUnavailableError(`Redis at ${safeUrl} is unreachable: ${(err as Error).message}`);
  }
}

/** One warning when a daemon's connection loses Redis and one line when it is back, instead of silence. */
export function logRedisOutages(redis: RedisClient, log: Logger, what: string): void {
  let down = false;
  let since = 0;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    since = Date.now();
    log.warn({ event: 'redis.unreachable', connection: what, err: { message: err.message } }, `Redis unreachable (${what}): reconnecting`);
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info({ event: 'redis.reconnected', connection: what, durationMs: Date.now() - since }, `Redis reachable again (${what})`);
  });
}

/** Quits a connection politely when Redis answers, else drops it at once (a quit would wait for Redis). */
export async function closeRedis(redis: RedisClient, timeoutMs = 2000): Promise<void> {
  closing.add(redis);
  if (redis instanceof Redis) stopFollowingSentinelSwitches(redis);
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([redis.quit().then(() => undefined, () => undefined), timeout]);
  clearTimeout(timer);
  redis.disconnect();
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

/** The id of a stage job of a backup's chain: one per backup and stage. */
export function fullStageJobId(payload: Pick<FullChainPayload, 'backupUuid'>, stage: FullStage): string {
  return `${payload.backupUuid}-${stage}`;
}

export class Queues {
  private readonly queues = new Map<string, Queue>();
  private flow?: FlowProducer;

  constructor(
    readonly config: Config,
    readonly connection: RedisClient,
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
    // SCAN reads one server: on a Cluster, every primary (the hash-tagged prefix puts our keys on one of them).
    const servers = this.connection instanceof Cluster ? this.connection.nodes('master') : [this.connection];
    for (const server of servers) {
      let cursor = '0';
      do {
        const [next, keys] = await server.scan(cursor, 'MATCH', `${this.prefix}:mcb-instance-*:meta`, 'COUNT', 500);
        cursor = next;
        for (const k of keys) names.add(k.slice(this.prefix.length + 1, -':meta'.length));
      } while (cursor !== '0');
    }
    for (const s of await this.connection.smembers(this.scheduledQueuesKey)) names.add(s);
    return [...names].filter((n) => instanceIdOfQueue(n) !== undefined).sort();
  }

  /**
   * clone → tar → upload → cleanup as one atomic flow (the last stage is the root, the first the deepest
   * leaf). Job ids derive from the backup uuid, so adding the same chain twice adds nothing. `from` starts the
   * chain at a later stage (a chain Redis lost, re-armed from the stage the metadata row is in).
   */
  async addFullChain(payload: FullChainPayload, from: FullStage = fullStages[0]): Promise<void> {
    this.flow ??= new FlowProducer({ connection: this.connection as ConnectionOptions, prefix: this.prefix });
    const queueName = instanceQueueName(payload.instanceId);
    const opts = (stage: FullStage): JobsOptions => ({
      ...stageJobOptions(this.config),
      jobId: fullStageJobId(payload, stage),
      // A stage that has given up fails the stages after it, instead of leaving them waiting forever.
      failParentOnFailure: true,
    });
    type FlowNode = Parameters<FlowProducer['add']>[0];
    let node: FlowNode | undefined;
    for (const stage of fullStages.slice(fullStages.indexOf(from))) {
      node = { name: stage, queueName, data: payload, opts: opts(stage), ...(node ? { children: [node] } : {}) };
    }
    await this.flow.add(node!);
  }

  async isFullChainAlive(payload: FullChainPayload): Promise<boolean> {
    return Object.values(await this.fullChainStates(payload)).some(isLiveJobState);
  }

  /** The BullMQ state of each stage job of a backup's chain; undefined where Redis holds no such job. */
  async fullChainStates(payload: FullChainPayload): Promise<Record<FullStage, string | undefined>> {
    const queue = this.forInstance(payload.instanceId);
    const states = {} as Record<FullStage, string | undefined>;
    for (const stage of fullStages) {
      const job = await queue.getJob(fullStageJobId(payload, stage));
      states[stage] = job ? await job.getState() : undefined;
    }
    return states;
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.flow?.close();
  }
}
