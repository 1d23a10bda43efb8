// The producer keeps one job scheduler per (instance, job type) in Redis, in step with tb_instance:
// instances with is_clone = 1 get schedules; disabled or removed ones lose them. Scheduler ids are
// deterministic, so two producers running at once cannot duplicate a schedule. A sync reads what Redis holds and
// writes only what differs: with hundreds of instances, an unchanged fleet costs reads only, and the delayed
// next job of an unchanged scheduler is left as it is.
// May import: queues, jobs, metadata, config, log, time.
import type { JobSchedulerJson, JobsOptions, Queue } from 'bullmq';
import { scheduledJobTypes, type Config, type ScheduledJobType } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import type { MetadataStore } from '../metadata/index.ts';
import { instanceIdOfQueue, instanceQueueName, stageJobOptions, type Queues, type RedisClient } from '../queues/index.ts';
import { cronTimeZone } from '../time/zone.ts';

export function schedulerId(type: ScheduledJobType, instanceId: number): string {
  return `${type}-instance-${instanceId}`;
}

/** What one sync did to the job schedulers. */
export interface SchedulerChanges {
  /** Upserted because Redis had no such scheduler. */
  created: number;
  /** Upserted because Redis held another pattern, time zone or job template, or its next job was gone. */
  updated: number;
  /** Already as wanted: not written. */
  unchanged: number;
  /** Removed: of an instance no longer scheduled, or not one the producer keeps. */
  removed: number;
}

export interface SyncResult {
  scheduled: number[];
  unscheduled: number[];
  schedulers: SchedulerChanges;
}

/** The `tz` of every job scheduler: [schedule] timezone, else the metadata time zone; never the producer's own TZ. */
export function scheduleTimeZone(config: Config, metadata: Pick<MetadataStore, 'timeZone'>): string {
  return cronTimeZone(config.schedule.timezone ?? metadata.timeZone);
}

/** Instance queues read and written at once: Redis round trips overlap, memory stays small. */
const QUEUES_AT_ONCE = 32;

interface WantedScheduler {
  id: string;
  pattern: string;
  tz: string;
  template: { name: string; data: { instanceId: number }; opts: JobsOptions };
}

export async function syncSchedules(config: Config, metadata: MetadataStore, queues: Queues, log: Logger): Promise<SyncResult> {
  const instances = await metadata.listInstances({ cloneOnly: true });
  const wanted = new Set(instances.map((i) => i.id));
  const jobOpts = stageJobOptions(config);
  const tz = scheduleTimeZone(config, metadata);
  const changes: SchedulerChanges = { created: 0, updated: 0, unchanged: 0, removed: 0 };

  if (instances.length) await queues.connection.sadd(queues.scheduledQueuesKey, ...instances.map((i) => instanceQueueName(i.id)));
  await forEachLimited(instances, QUEUES_AT_ONCE, async (instance) => {
    const want = scheduledJobTypes.map((type): WantedScheduler => ({
      id: schedulerId(type, instance.id),
      pattern: config.schedule[type],
      tz,
      template: { name: type, data: { instanceId: instance.id }, opts: jobOpts },
    }));
    addChanges(changes, await syncQueue(queues.forInstance(instance.id), want, queues.connection));
  });

  const unscheduled: number[] = [];
  const gone = (await queues.knownInstanceQueues()).filter((name) => !wanted.has(instanceIdOfQueue(name)!));
  await forEachLimited(gone, QUEUES_AT_ONCE, async (name) => {
    const id = instanceIdOfQueue(name)!;
    const queue = queues.queue(name);
    const schedulers = await queue.getJobSchedulers();
    for (const s of schedulers) await queue.removeJobScheduler(s.key);
    await queues.connection.srem(queues.scheduledQueuesKey, name);
    changes.removed += schedulers.length;
    if (schedulers.length) {
      unscheduled.push(id);
      log.info({ event: 'schedule.removed', instance: id }, `instance ${id} no longer has is_clone = 1: schedules removed`);
    }
  });
  unscheduled.sort((a, b) => a - b);
  const result = { scheduled: [...wanted], unscheduled, schedulers: changes };
  log.info(
    { event: 'schedule.synced', ...result, tz },
    `schedules in sync with tb_instance: ${wanted.size} instance(s); schedulers ${changes.created} created, ${changes.updated} updated, ${changes.unchanged} unchanged, ${changes.removed} removed`,
  );
  return result;
}

/** Brings one instance queue's schedulers to `want`: upserts what is missing or differs, removes the others. */
async function syncQueue(queue: Queue, want: WantedScheduler[], redis: RedisClient): Promise<SchedulerChanges> {
  const changes: SchedulerChanges = { created: 0, updated: 0, unchanged: 0, removed: 0 };
  const held = new Map((await queue.getJobSchedulers()).map((s) => [s.key, s]));
  for (const w of want) {
    const current = held.get(w.id);
    if (current && sameScheduler(current, w) && (await nextJobExists(queue, current, redis))) {
      changes.unchanged++;
      continue;
    }
    await queue.upsertJobScheduler(w.id, { pattern: w.pattern, tz: w.tz }, w.template);
    if (current) changes.updated++;
    else changes.created++;
  }
  const wantedIds = new Set(want.map((w) => w.id));
  for (const key of held.keys()) {
    if (wantedIds.has(key)) continue;
    await queue.removeJobScheduler(key);
    changes.removed++;
  }
  return changes;
}

/** Whether Redis holds the scheduler as `want` would write it (pattern, time zone, job name, data and options). */
export function sameScheduler(held: JobSchedulerJson, want: Pick<WantedScheduler, 'pattern' | 'tz' | 'template'>): boolean {
  return (
    held.pattern === want.pattern &&
    held.every === undefined &&
    held.tz === want.tz &&
    held.name === want.template.name &&
    canonicalJson(held.template?.data) === canonicalJson(want.template.data) &&
    canonicalJson(held.template?.opts) === canonicalJson(want.template.opts)
  );
}

/**
 * The scheduler's next job (`repeat:<id>:<next>`) is what makes it fire: one lost (the queue drained, a key
 * evicted under maxmemory) would leave the scheduler silent for good, so its absence makes it written again.
 */
async function nextJobExists(queue: Queue, scheduler: JobSchedulerJson, redis: RedisClient): Promise<boolean> {
  if (scheduler.next === undefined || scheduler.next === null || Number.isNaN(scheduler.next)) return false;
  return (await redis.exists(queue.toKey(`repeat:${scheduler.key}:${scheduler.next}`))) === 1;
}

/** JSON with object keys sorted, so values equal up to key order compare equal. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  ) ?? 'undefined';
}

function addChanges(total: SchedulerChanges, more: SchedulerChanges): void {
  total.created += more.created;
  total.updated += more.updated;
  total.unchanged += more.unchanged;
  total.removed += more.removed;
}

/** Runs fn over items, at most `limit` at a time; the first failure is thrown once the running ones end. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
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
