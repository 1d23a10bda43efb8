// The node-local worker: one per database instance (like the seed's per-node clone.ini), consuming only
// that instance's queue. It turns BullMQ jobs into handler calls, marks the metadata row Error when a
// stage has used its last attempt, and shuts down without leaving a job stuck active. One worker per instance
// takes jobs while others stand by (standby.ts), and it re-arms chains a Redis restart lost (lost-chains.ts). With
// binlog_stream on, the worker holding the role also streams the active binlog into the bucket (streamer).
// May import: ops, queues, jobs, streamer, metadata, storage, mysql, config, log.
import os from 'node:os';
import { UnrecoverableError, WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { ConfigError, requireBackupKey, requireMysqlLink, requireOss, type Config } from '../config/index.ts';
import { jobRegistry } from '../jobs/registry.ts';
import { PermanentJobError, type JobContext } from '../jobs/types.ts';
import type { Logger } from '../log/index.ts';
import { MetadataStore } from '../metadata/index.ts';
import { DataNode } from '../mysql/data-node.ts';
import { countJobFailure } from '../ops/outcomes.ts';
import { closeRedis, dropRedis, instanceQueueName, logRedisOutages, pingRedis, Queues, redisConnection } from '../queues/index.ts';
import { MinioObjectStore, type ObjectStore } from '../storage/index.ts';
import { startBinlogStreamer, type BinlogStreamer } from '../streamer/index.ts';
import { LostChains } from './lost-chains.ts';
import { WorkerRole, type Pausable } from './standby.ts';

export interface WorkerOptions {
  log: Logger;
  /** Overrides for tests. */
  storage?: ObjectStore;
  now?: () => Date;
  /** Ends a standby's wait for the worker role (the process is stopping before it took over). */
  signal?: AbortSignal;
  concurrency?: number;
}

export interface RunningWorker {
  instanceId: number;
  queueName: string;
  worker: Worker;
  /** Finishes the current stages, or hands them back to the queue after the grace period. */
  close(): Promise<void>;
}

export async function startWorker(config: Config, opts: WorkerOptions): Promise<RunningWorker> {
  const instanceId = requireBackupKey(config, 'tbInstanceId', 'tb_instance_id');
  requireBackupKey(config, 'backupPath', 'backup_path');
  const mysqlLink = requireMysqlLink(config);
  const oss = requireOss(config);
  const log = opts.log.child({ instance: instanceId });

  const metadata = await MetadataStore.connect(config.metadata, { log });
  const cleanup: Array<() => Promise<unknown>> = [() => metadata.close()];
  log.info({ event: 'metadata.time-zone', timeZone: metadata.timeZone.name, source: metadata.timeZoneInfo.source }, `metadata time zone ${metadata.timeZone.name}`);
  try {
    const instance = await metadata.getInstance(instanceId);
    if (!instance) throw new ConfigError(`[backup-conf] tb_instance_id = ${instanceId} in ${config.file}: no such id in tb_instance`);
    const storage = opts.storage ?? new MinioObjectStore(oss, oss.bucket);
    await storage.checkBucket();

    // Reconnects for as long as Redis is away; start-up still fails at once when it does not answer now.
    const client = redisConnection(config, 'daemon');
    cleanup.push(() => closeRedis(client));
    await pingRedis(client, config.redis.url);
    logRedisOutages(client, log, 'worker');
    const queues = new Queues(config, client);
    cleanup.push(() => queues.close());

    const workerHost = os.hostname();
    const queueName = instanceQueueName(instanceId);
    // One worker per instance takes jobs; a second one stands by here until the first stops (standby.ts).
    const role = await WorkerRole.take({ metadata, redis: client, prefix: config.redis.prefix, instanceId, host: workerHost, log, signal: opts.signal });
    cleanup.push(() => role.release());
    let shuttingDown = false;
    // Only the worker holding the role streams: a second stream would take the first one's server id.
    const streamer: BinlogStreamer | undefined = config.backup.binlogStream
      ? startBinlogStreamer({ config, metadata, storage, instanceId, workerHost, log, now: opts.now })
      : undefined;
    if (streamer) cleanup.push(() => streamer.stop());

    const contextFor = (job: Job, jobLog: Logger, signal?: AbortSignal): JobContext => ({
      config,
      metadata,
      storage,
      connectDataNode: () => DataNode.connect(mysqlLink),
      log: jobLog,
      jobId: job.id ?? '',
      workerHost,
      signal: signal ?? new AbortController().signal,
      progress: (value) => job.updateProgress(value),
      startFullChain: (p) => queues.addFullChain(p),
      isFullChainAlive: (p) => queues.isFullChainAlive(p),
      now: opts.now ?? (() => new Date()),
    });

    const processor = async (job: Job, token?: string, signal?: AbortSignal): Promise<unknown> => {
      const def = jobRegistry[job.name];
      const jobLog = log.child({ jobId: job.id, stage: job.name });
      if (!def) throw new UnrecoverableError(`unknown job type "${job.name}"`);
      const attempt = job.attemptsMade + 1;
      const started = Date.now();
      jobLog.info({ event: 'stage.start', attempt }, `${job.name} started`);
      let payload: unknown;
      const ctx = contextFor(job, jobLog, signal);
      try {
        payload = def.parse(job.data);
        const result = await def.handle(payload, ctx);
        jobLog.info({ event: 'stage.done', durationMs: Date.now() - started, result }, `${job.name} done`);
        return result;
      } catch (err) {
        const error = err as Error;
        const durationMs = Date.now() - started;
        if (shuttingDown && signal?.aborted && token) {
          // Hand the stage back: it restarts from metadata on the next worker, without spending an attempt.
          if (client.status === 'ready') {
            jobLog.warn({ event: 'stage.handed-back', durationMs }, `${job.name} interrupted by shutdown, returned to the queue`);
            await job.moveToWait(token);
          } else {
            // Waiting for Redis here would hold the shutdown for as long as Redis is away.
            jobLog.warn({ event: 'stage.handed-back', durationMs, redis: 'unreachable' }, `${job.name} interrupted by shutdown; Redis is unreachable, so it returns to the queue when its job lock expires`);
          }
          throw new WaitingError();
        }
        const permanent = err instanceof PermanentJobError || err instanceof UnrecoverableError;
        const final = permanent || attempt >= (job.opts.attempts ?? 1);
        jobLog.error({ event: 'stage.failed', durationMs, attempt, final, err: { message: error.message } }, `${job.name} failed`);
        if (final && payload !== undefined) await recordFinalFailure(def, payload, ctx, job.name, error, jobLog);
        if (permanent) throw new UnrecoverableError(error.message);
        throw err;
      }
    };

    // BullMQ does not close a connection it was handed, so it is ours to quit after worker.close().
    const workerRedis = redisConnection(config, 'worker');
    cleanup.push(async () => dropRedis(workerRedis));
    // Finds backups whose stage jobs a Redis restart lost, and re-arms their chains (lost-chains.ts).
    const lostChains = new LostChains({ instanceId, metadata, queues, log });
    const chainUuidOf = (job: Job) => (typeof job.data?.backupUuid === 'string' ? (job.data.backupUuid as string) : undefined);
    const worker = new Worker(queueName, (job, token, signal) => lostChains.track(chainUuidOf(job), () => processor(job, token, signal)), {
      connection: workerRedis as ConnectionOptions,
      prefix: config.redis.prefix,
      // A binlog job may run beside a full-backup stage; two full backups never run together (metadata lock).
      concurrency: opts.concurrency ?? 2,
      // BullMQ renews the lock while a stage runs; when it expires (a dead worker), the next stalled check
      // puts the stage back in the queue: [backup-conf] stage_lock_seconds, checked as often as it lasts.
      lockDuration: config.backup.stageLockSeconds * 1000,
      stalledInterval: config.backup.stageLockSeconds * 1000,
    });
    role.supervise(streamer ? alsoPausing(worker, streamer) : worker);
    worker.on('error', (err) => {
      // While Redis is away BullMQ reports every failed reconnect; logRedisOutages says it once.
      if (client.status !== 'ready' && isRedisConnectionError(err)) return;
      log.error({ err: { message: err.message } }, 'worker error');
    });
    // BullMQ fails a job that stalled too often (a worker killed mid-stage, twice) without calling the
    // processor, so the metadata row is marked here; markError leaves rows that are already final alone.
    worker.on('failed', (job, err) => {
      const def = job && jobRegistry[job.name];
      if (!job || !def || !/stalled/i.test(err.message)) return;
      const jobLog = log.child({ jobId: job.id, stage: job.name });
      jobLog.error({ event: 'stage.failed', final: true, err: { message: err.message } }, `${job.name} failed: ${err.message}`);
      let payload: unknown;
      try {
        payload = def.parse(job.data);
      } catch {
        return;
      }
      void recordFinalFailure(def, payload, contextFor(job, jobLog), job.name, err, jobLog);
    });
    await worker.waitUntilReady();
    log.info({ event: 'worker.ready', queue: queueName, host: workerHost }, `worker for instance ${instanceId} ready on ${queueName}`);
    lostChains.watch(client);

    return {
      instanceId,
      queueName,
      worker,
      async close() {
        shuttingDown = true;
        lostChains.stop();
        // Stopped beside the jobs' grace period, not after it: its last upload must not wait for running stages.
        const streamerStopped = streamer?.stop();
        const graceSeconds = config.backup.shutdownGraceSeconds;
        // Without Redis nothing can be handed back or recorded, so once no job runs here there is nothing to
        // wait for (worker.close() itself would wait for Redis for ever).
        const idleWithoutRedis = () => client.status !== 'ready' && lostChains.activeJobs === 0;
        const closing = worker.close().then(
          () => true,
          (err: Error) => (log.warn({ event: 'worker.close-failed', err: { message: err.message } }, 'worker close failed'), true),
        );
        try {
          let closed = await settledWithin(closing, graceSeconds * 1000, idleWithoutRedis);
          if (!closed && lostChains.activeJobs > 0) {
            log.warn({ event: 'worker.cancel', graceSeconds }, 'grace period over: handing running stages back');
            worker.cancelAllJobs('worker shutting down');
            metadata.stopRetrying(); // a stage waiting for an unreachable metadata center is handed back too
            closed = await settledWithin(closing, handBackSeconds * 1000, idleWithoutRedis);
          }
          if (!closed) {
            const why = client.status === 'ready' ? 'the worker did not close in time' : 'Redis is unreachable';
            log.warn({ event: 'worker.force-close', redis: client.status }, `${why}: stopping without waiting for Redis; a stage that was running returns to the queue when its job lock expires`);
            dropRedis(client);
            dropRedis(workerRedis);
            // Stops BullMQ's own reconnecting; its promise waits for an 'end' a connection that never came back won't emit.
            void worker.disconnect().catch(() => undefined);
          }
        } finally {
          await streamerStopped;
          // Each step is bounded: one that needs Redis (or the metadata center) must not hold the exit for ever.
          const stepMs = client.status === 'ready' ? 10_000 : 500;
          for (const fn of cleanup.reverse()) await settledWithin(fn().catch(() => undefined), stepMs, () => false);
          log.info({ event: 'worker.stopped' }, 'worker stopped');
        }
      },
    };
  } catch (err) {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
    throw err;
  }
}

/** The worker and the streamer, paused and resumed together when the role is lost and taken back. */
function alsoPausing(worker: Pausable, streamer: BinlogStreamer): Pausable {
  return {
    pause: async (doNotWaitActive) => {
      await Promise.all([worker.pause(doNotWaitActive), streamer.pause()]);
    },
    resume: () => {
      worker.resume();
      streamer.resume();
    },
  };
}

function isRedisConnectionError(err: Error): boolean {
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|EPIPE|Connection is closed|sentinels are unreachable|Failed to refresh slots/i.test(err.message);
}

/** How long aborted stages get to hand themselves back after the grace period. */
const handBackSeconds = 10;

/** Whether `promise` settles within `ms`; false as soon as `giveUp()` holds (checked every 100 ms) or at `ms`. */
async function settledWithin(promise: Promise<unknown>, ms: number, giveUp: () => boolean): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  const deadline = Date.now() + ms;
  while (!settled && !giveUp() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, Math.min(100, Math.max(1, deadline - Date.now()))));
  await Promise.resolve();
  return settled;
}

async function recordFinalFailure(
  def: (typeof jobRegistry)[string],
  payload: unknown,
  ctx: JobContext,
  stage: string,
  error: Error,
  log: Logger,
): Promise<void> {
  await countJobFailure(ctx, stage); // mcb_backup_failures_total: once per job that failed for good
  try {
    const uuid = def?.backupUuidOf?.(payload);
    if (uuid) await ctx.metadata.markError(uuid, `${stage} failed: ${error.message}`, error.stack);
    await def?.onFinalFailure?.(payload, ctx, error);
  } catch (cleanupErr) {
    log.error({ err: { message: (cleanupErr as Error).message } }, 'could not record the failure');
  }
}
