// The producer keeps one job scheduler per (instance, job type) in Redis, in step with tb_instance:
// instances with is_clone = 1 get schedules; disabled or removed ones lose them. Scheduler ids are
// deterministic and upserted, so two producers running at once cannot duplicate a schedule.
import type { Config } from '../config/index.ts';
import { scheduledJobTypes, type ScheduledJobType } from '../jobs/registry.ts';
import type { Logger } from '../log/index.ts';
import type { MetadataStore } from '../metadata/index.ts';
import { instanceIdOfQueue, instanceQueueName, stageJobOptions, type Queues } from '../queues/index.ts';
import { cronTimeZone } from '../time/zone.ts';

export function schedulerId(type: ScheduledJobType, instanceId: number): string {
  return `${type}-instance-${instanceId}`;
}

export interface SyncResult {
  scheduled: number[];
  unscheduled: number[];
}

/** The `tz` of every job scheduler: [schedule] timezone, else the metadata time zone; never the producer's own TZ. */
export function scheduleTimeZone(config: Config, metadata: Pick<MetadataStore, 'timeZone'>): string {
  return cronTimeZone(config.schedule.timezone ?? metadata.timeZone);
}

export async function syncSchedules(config: Config, metadata: MetadataStore, queues: Queues, log: Logger): Promise<SyncResult> {
  const instances = await metadata.listInstances({ cloneOnly: true });
  const wanted = new Set(instances.map((i) => i.id));
  const jobOpts = stageJobOptions(config);
  const tz = scheduleTimeZone(config, metadata);

  for (const instance of instances) {
    const queue = queues.forInstance(instance.id);
    await queues.connection.sadd(queues.scheduledQueuesKey, queue.name);
    for (const type of scheduledJobTypes) {
      await queue.upsertJobScheduler(
        schedulerId(type, instance.id),
        { pattern: config.schedule[type], tz },
        { name: type, data: { instanceId: instance.id }, opts: jobOpts },
      );
    }
  }

  const unscheduled: number[] = [];
  for (const name of await queues.knownInstanceQueues()) {
    const id = instanceIdOfQueue(name)!;
    if (wanted.has(id)) continue;
    const queue = queues.queue(name);
    const schedulers = await queue.getJobSchedulers();
    for (const s of schedulers) await queue.removeJobScheduler(s.key);
    await queues.connection.srem(queues.scheduledQueuesKey, name);
    if (schedulers.length) {
      unscheduled.push(id);
      log.info({ event: 'schedule.removed', instance: id }, `instance ${id} no longer has is_clone = 1: schedules removed`);
    }
  }
  const result = { scheduled: [...wanted], unscheduled };
  log.info({ event: 'schedule.synced', ...result, tz, queues: [...wanted].map(instanceQueueName) }, 'schedules in sync with tb_instance');
  return result;
}

export interface RunningProducer {
  close(timeoutMs?: number): Promise<void>;
  /** Resolves after the next completed sync (tests). */
  synced(): Promise<SyncResult>;
}

/**
 * Syncs now and then every sync_interval_seconds; a failed sync (Redis or the metadata center away) is logged and
 * tried again next time. When the Redis connection comes back after an outage it syncs at once: a Redis that
 * restarted without its data has lost every schedule.
 */
export function runProducer(config: Config, metadata: MetadataStore, queues: Queues, log: Logger): RunningProducer {
  let stopped = false;
  let waiters: Array<(r: SyncResult) => void> = [];
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> = Promise.resolve();
  let syncing = false;
  let again = false;

  const tick = async () => {
    syncing = true;
    do {
      again = false;
      try {
        const result = await syncSchedules(config, metadata, queues, log);
        const w = waiters;
        waiters = [];
        w.forEach((fn) => fn(result));
      } catch (err) {
        log.error({ event: 'schedule.sync-failed', err: { message: (err as Error).message } }, 'schedule sync failed; retrying next interval');
      }
    } while (again && !stopped);
    syncing = false;
    if (!stopped) timer = setTimeout(syncNow, config.schedule.syncIntervalSeconds * 1000);
  };
  function syncNow(): void {
    if (stopped) return;
    if (syncing) {
      again = true;
      return;
    }
    clearTimeout(timer);
    current = tick();
  }

  let wasReady = queues.connection.status === 'ready';
  const onReady = () => {
    if (wasReady) {
      log.info({ event: 'schedule.resync', reason: 'redis-reconnected' }, 'Redis is back: syncing schedules now');
      syncNow();
    }
    wasReady = true;
  };
  queues.connection.on('ready', onReady);
  syncNow();

  return {
    /** Stops syncing; a sync under way gets `timeoutMs` to end (it may be waiting for Redis or the metadata center). */
    async close(timeoutMs = 5000) {
      stopped = true;
      clearTimeout(timer);
      queues.connection.off('ready', onReady);
      let cap: NodeJS.Timeout | undefined;
      await Promise.race([current, new Promise((resolve) => (cap = setTimeout(resolve, timeoutMs)))]);
      clearTimeout(cap);
    },
    synced: () => new Promise((resolve) => waiters.push(resolve)),
  };
}
