// The node-local worker: one per database instance (like the seed's per-node clone.ini), consuming only
// that instance's queue. It turns BullMQ jobs into handler calls, marks the metadata row Error when a
// stage has used its last attempt, and shuts down without leaving a job stuck active.
import os from 'node:os';
import { UnrecoverableError, WaitingError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { ConfigError, requireBackupKey, requireMysqlLink, requireOss, type Config } from '../config/index.ts';
import { jobRegistry } from '../jobs/registry.ts';
import { PermanentJobError, type JobContext } from '../jobs/types.ts';
import type { Logger } from '../log/index.ts';
import { MetadataStore } from '../metadata/index.ts';
import { DataNode } from '../mysql/data-node.ts';
import { instanceQueueName, pingRedis, Queues, redisConnection } from '../queues/index.ts';
import { MinioObjectStore, type ObjectStore } from '../storage/index.ts';

export interface WorkerOptions {
  log: Logger;
  /** Overrides for tests. */
  storage?: ObjectStore;
  now?: () => Date;
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

  const metadata = await MetadataStore.connect(config.metadata);
  const cleanup: Array<() => Promise<unknown>> = [() => metadata.close()];
  log.info({ event: 'metadata.time-zone', timeZone: metadata.timeZone.name, source: metadata.timeZoneInfo.source }, `metadata time zone ${metadata.timeZone.name}`);
  try {
    const instance = await metadata.getInstance(instanceId);
    if (!instance) throw new ConfigError(`[backup-conf] tb_instance_id = ${instanceId} in ${config.file}: no such id in tb_instance`);
    const storage = opts.storage ?? new MinioObjectStore(oss, oss.bucket);
    await storage.checkBucket();

    const client = redisConnection(config, 'client');
    cleanup.push(() => client.quit());
    await pingRedis(client, config.redis.url);
    const queues = new Queues(config, client);
    cleanup.push(() => queues.close());

    const workerHost = os.hostname();
    const queueName = instanceQueueName(instanceId);
    let shuttingDown = false;

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
          jobLog.warn({ event: 'stage.handed-back', durationMs }, `${job.name} interrupted by shutdown, returned to the queue`);
          await job.moveToWait(token);
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
    cleanup.push(async () => workerRedis.disconnect());
    const worker = new Worker(queueName, processor, {
      connection: workerRedis as ConnectionOptions,
      prefix: config.redis.prefix,
      // A binlog job may run beside a full-backup stage; two full backups never run together (metadata lock).
      concurrency: opts.concurrency ?? 2,
      // BullMQ renews the lock while a stage runs; 60 s rides out a busy event loop during a big tar.
      lockDuration: 60_000,
    });
    worker.on('error', (err) => log.error({ err: { message: err.message } }, 'worker error'));
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

    return {
      instanceId,
      queueName,
      worker,
      async close() {
        shuttingDown = true;
        const grace = config.backup.shutdownGraceSeconds * 1000;
        const timer = setTimeout(() => {
          log.warn({ event: 'worker.cancel', graceSeconds: config.backup.shutdownGraceSeconds }, 'grace period over: handing running stages back');
          worker.cancelAllJobs('worker shutting down');
        }, grace);
        try {
          await worker.close();
        } finally {
          clearTimeout(timer);
          for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
          log.info({ event: 'worker.stopped' }, 'worker stopped');
        }
      },
    };
  } catch (err) {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
    throw err;
  }
}

async function recordFinalFailure(
  def: (typeof jobRegistry)[string],
  payload: unknown,
  ctx: JobContext,
  stage: string,
  error: Error,
  log: Logger,
): Promise<void> {
  try {
    const uuid = def?.backupUuidOf?.(payload);
    if (uuid) await ctx.metadata.markError(uuid, `${stage} failed: ${error.message}`, error.stack);
    await def?.onFinalFailure?.(payload, ctx, error);
  } catch (cleanupErr) {
    log.error({ err: { message: (cleanupErr as Error).message } }, 'could not record the failure');
  }
}
