// One worker per instance takes jobs. The role is a metadata named lock held on a connection of its own, so it
// dies with the process that holds it; a second worker started with the same tb_instance_id (a second unit, a
// DBA's `mcb worker` beside the service) says who holds the role and stands by, taking over when that worker
// stops or dies. Refusing instead would make a supervisor that restarts the second worker log a refusal every
// few seconds, and leave no warm replacement.
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from '../log/index.ts';
import type { HeldLock, LockHolder } from '../metadata/locks.ts';
import type { MetadataStore } from '../metadata/index.ts';

/** Who holds the role, as the holder wrote it to Redis (the named lock itself cannot say). */
export interface RoleHolder {
  host: string;
  pid: number;
  since: string;
}

export interface WorkerRoleOptions {
  metadata: MetadataStore;
  redis: Redis | Cluster;
  prefix: string;
  instanceId: number;
  host: string;
  log: Logger;
  /** Stops a standby's wait (the process is shutting down). */
  signal?: AbortSignal;
}

export function workerRoleKey(prefix: string, instanceId: number): string {
  return `${prefix}:mcb:worker-role:${instanceId}`;
}

/** Something that takes jobs and can stop taking them for a while (a BullMQ Worker). */
export interface Pausable {
  pause(doNotWaitActive?: boolean): Promise<void>;
  resume(): void;
}

export class WorkerRole {
  /** Ends a standby wait that follows a lost role, when this worker closes. */
  private readonly closing = new AbortController();

  private constructor(
    private held: HeldRole,
    private readonly opts: WorkerRoleOptions,
  ) {}

  /** Takes the role, standing by (one log line naming the holder) for as long as another worker holds it. */
  static async take(opts: WorkerRoleOptions): Promise<WorkerRole> {
    return new WorkerRole(await acquireRole(opts, opts.signal), opts);
  }

  /**
   * The role is lost only when another worker took it while the metadata center was unreachable: stop taking
   * jobs (running stages finish, fenced by their own locks) and stand by until the role is free again.
   */
  supervise(worker: Pausable): void {
    const { log } = this.opts;
    const onLost = () => {
      if (this.closing.signal.aborted) return;
      log.error({ event: 'worker.role-lost' }, 'another worker took over this instance while the metadata center was unreachable: standing by');
      void worker
        .pause(true)
        .then(() => acquireRole(this.opts, this.closing.signal))
        .then((held) => {
          this.held = held;
          held.lock.lost.addEventListener('abort', onLost, { once: true });
          worker.resume();
        })
        .catch((err: Error) => {
          if (!this.closing.signal.aborted) log.error({ event: 'worker.role-lost', err: { message: err.message } }, 'could not take the worker role back');
        });
    };
    this.held.lock.lost.addEventListener('abort', onLost, { once: true });
  }

  async release(): Promise<void> {
    this.closing.abort();
    const key = workerRoleKey(this.opts.prefix, this.opts.instanceId);
    // Remove the record only if it is still ours (a standby may have taken over and written its own).
    await this.opts.redis
      .eval("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0", 1, key, JSON.stringify(this.held.record))
      .catch(() => undefined);
    await this.held.lock.release();
  }
}

interface HeldRole {
  lock: HeldLock;
  record: RoleHolder;
}

async function acquireRole(opts: WorkerRoleOptions, signal: AbortSignal | undefined): Promise<HeldRole> {
  const { metadata, instanceId, log } = opts;
  const key = workerRoleKey(opts.prefix, instanceId);
  let waitedSince: number | undefined;
  const lock = await metadata.acquireLock(metadata.lockName('worker', instanceId), {
    waitSeconds: Infinity,
    signal,
    onBusy: (holder) => {
      waitedSince = Date.now();
      void describeHolder(opts.redis, key, holder).then((who) =>
        log.warn({ event: 'worker.standby', holder: who }, `another worker of instance ${instanceId} is running (${who.text}): standing by until it stops`),
      );
    },
  });
  if (!lock) throw new Error(`the worker role of instance ${instanceId} could not be taken`); // unreachable: waits forever
  const record: RoleHolder = { host: opts.host, pid: process.pid, since: new Date().toISOString() };
  await opts.redis.set(key, JSON.stringify(record)).catch(() => undefined);
  if (waitedSince !== undefined) {
    log.info({ event: 'worker.takeover', standbyMs: Date.now() - waitedSince }, `the other worker of instance ${instanceId} stopped: this worker takes over`);
  }
  return { lock, record };
}

async function describeHolder(redis: Redis | Cluster, key: string, holder: LockHolder | undefined): Promise<Partial<RoleHolder> & { text: string; clientAddress?: string }> {
  const raw = await redis.get(key).catch(() => null);
  let record: RoleHolder | undefined;
  try {
    record = raw ? (JSON.parse(raw) as RoleHolder) : undefined;
  } catch {
    record = undefined;
  }
  const address = holder ? `metadata connection ${holder.connectionId} from ${holder.clientAddress}` : 'a metadata connection';
  if (!record) return { clientAddress: holder?.clientAddress, text: `${address}; its host and pid are not recorded` };
  return { ...record, clientAddress: holder?.clientAddress, text: `pid ${record.pid} on host ${record.host} since ${record.since}, ${address}` };
}
