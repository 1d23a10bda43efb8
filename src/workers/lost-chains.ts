// Re-arms the full-backup chains a Redis lost with its data (a restart without persistence, a failover to a
// replica behind, a FLUSHALL), whose rows would otherwise stay "running" for ever: at start and whenever the Redis
// connection comes back, each chain is added again from the stage its row's state allows (stages are safe to run
// twice). Lost data is told by the worker's marker key being gone; a chain missing from a Redis that kept its data
// was removed on purpose, and its row is left to the next full backup, which marks it "abandoned" (jobs/full.ts).
import type { Logger } from '../log/index.ts';
import { stageOfState, type BackupRow, type FullStage, type MetadataStore } from '../metadata/index.ts';
import type { Queues, RedisClient } from '../queues/index.ts';

export interface LostChainsOptions {
  instanceId: number;
  metadata: MetadataStore;
  queues: Queues;
  log: Logger;
  /** Wait between attempts when an audit fails (Redis or the metadata center still away). */
  retryMs?: number;
}

export interface Rearmed {
  backupUuid: string;
  backupName: string;
  state: string;
  from: FullStage;
}

/** The key whose absence says Redis lost its data since this instance's worker last looked. */
export function redisMarkerKey(prefix: string, instanceId: number): string {
  return `${prefix}:mcb:worker-marker:${instanceId}`;
}

export class LostChains {
  /** Backups with a stage running in this process, by uuid (a count: a binlog job may run beside a stage). */
  private readonly runningHere = new Map<string, number>();
  /** Backups whose chain Redis lost while their stage ran here: re-armed once that stage is over. */
  private readonly lostWhileRunning = new Set<string>();
  private running = 0;
  /** Bumped on every reconnect: a stage that saw one may have lost its job with the old Redis. */
  private reconnects = 0;
  private current: Promise<void> = Promise.resolve();
  private again = false;
  private auditing = false;
  private stopped = false;
  private retryTimer?: NodeJS.Timeout;

  constructor(private readonly opts: LostChainsOptions) {}

  /** Audits now and after every reconnect of `redis` (the worker's own connection for queue commands). */
  watch(redis: RedisClient): void {
    let wasReady = redis.status === 'ready';
    redis.on('ready', () => {
      if (wasReady) {
        this.reconnects++;
        void this.request();
      }
      wasReady = true;
    });
    void this.request();
  }

  /** How many job handlers run in this process now. */
  get activeJobs(): number {
    return this.running;
  }

  /** Runs a job's handler, remembering the backup it works on; afterwards, audits if Redis came back meanwhile. */
  async track<T>(backupUuid: string | undefined, fn: () => Promise<T>): Promise<T> {
    const reconnectsBefore = this.reconnects;
    this.running++;
    if (backupUuid) this.runningHere.set(backupUuid, (this.runningHere.get(backupUuid) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      this.running--;
      if (backupUuid) {
        const n = (this.runningHere.get(backupUuid) ?? 1) - 1;
        if (n > 0) this.runningHere.set(backupUuid, n);
        else this.runningHere.delete(backupUuid);
        // The audit skipped this backup while its stage ran here; the stage is over now, its job maybe gone.
        if (this.reconnects !== reconnectsBefore || this.lostWhileRunning.has(backupUuid)) void this.request();
      }
    }
  }

  /** Audits once more when the current audit is over (audits never overlap). */
  request(): Promise<void> {
    if (this.stopped) return this.current;
    if (this.auditing) {
      this.again = true;
      return this.current;
    }
    this.auditing = true;
    this.current = (async () => {
      do {
        this.again = false;
        try {
          await this.audit();
        } catch (err) {
          this.opts.log.warn({ event: 'chains.audit-failed', err: { message: (err as Error).message } }, 'could not check running backups for lost stage jobs; trying again');
          this.scheduleRetry();
        }
      } while (this.again && !this.stopped);
      this.auditing = false;
    })();
    return this.current;
  }

  /** No audit after this one (an audit under way ends with its commands failing once the connections close). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  private scheduleRetry(): void {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => void this.request(), this.opts.retryMs ?? 5000);
    this.retryTimer.unref();
  }

  /**
   * Every running full backup of the instance whose chain Redis lost with its data (the marker key was gone, and
   * no job of the chain is left) is re-armed. Under the full-backup lock, so a `full` job starting meanwhile
   * neither sees the row as abandoned nor starts a second backup beside the re-armed one.
   */
  async audit(): Promise<Rearmed[]> {
    const { metadata, queues, instanceId, log } = this.opts;
    const outcomes: Rearmed[] = [];
    await metadata.withLock(metadata.lockName('full', instanceId), async () => {
      const marker = redisMarkerKey(queues.prefix, instanceId);
      const lostData = (await queues.connection.set(marker, new Date().toISOString(), 'NX')) === 'OK';
      if (lostData) log.info({ event: 'chains.redis-empty', marker }, 'Redis holds none of this worker\'s keys (first start, or Redis lost its data): re-arming running backups it lost');
      for (const row of await metadata.runningFullBackups(instanceId)) {
        if (this.stopped) break;
        if (this.runningHere.has(row.backupUuid)) {
          if (lostData) this.lostWhileRunning.add(row.backupUuid);
          continue;
        }
        const lost = lostData || this.lostWhileRunning.has(row.backupUuid);
        this.lostWhileRunning.delete(row.backupUuid);
        const from = lost ? await this.rearm(row) : undefined;
        if (!from) continue;
        outcomes.push({ backupUuid: row.backupUuid, backupName: row.backupName, state: row.state, from });
        log.warn(
          { event: 'chain.rearmed', backupUuid: row.backupUuid, backupName: row.backupName, state: row.state, from },
          `backup ${row.backupName} (state ${row.state}) lost its stage jobs with Redis's data: chain re-armed from ${from}`,
        );
      }
    });
    return outcomes;
  }

  /** Adds the chain again from the row's stage, when Redis holds no job of it at all; returns that stage. */
  private async rearm(row: BackupRow): Promise<FullStage | undefined> {
    const payload = { instanceId: this.opts.instanceId, backupUuid: row.backupUuid };
    const from = stageOfState(row.state);
    if (!from) return undefined;
    const states = await this.opts.queues.fullChainStates(payload);
    if (Object.values(states).some((state) => state !== undefined)) return undefined;
    await this.opts.queues.addFullChain(payload, from);
    return from;
  }
}
