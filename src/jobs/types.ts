// What every job handler gets. Handlers are plain async functions of (payload, ctx): no BullMQ in sight, so
// they can be called directly in tests.
import { requireBackupKey, type Config } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import type { InstanceRow, MetadataStore } from '../metadata/index.ts';
import type { DataNode } from '../mysql/data-node.ts';
import type { ObjectStore } from '../storage/index.ts';

export interface FullChainPayload {
  instanceId: number;
  backupUuid: string;
}

export interface JobContext {
  config: Config;
  metadata: MetadataStore;
  storage: ObjectStore;
  /** A fresh connection to this node's MySQL; the caller closes it. */
  connectDataNode(): Promise<DataNode>;
  log: Logger;
  jobId: string;
  workerHost: string;
  signal: AbortSignal;
  progress(value: number | Record<string, unknown>): Promise<void>;
  /** Enqueues clone → tar → upload → cleanup for a backup row that exists (idempotent). */
  startFullChain(payload: FullChainPayload): Promise<void>;
  /** Whether any stage job of that backup is still waiting, delayed, active or waiting for its children. */
  isFullChainAlive(payload: FullChainPayload): Promise<boolean>;
  now(): Date;
}

/** A failure that retrying cannot fix (bad payload, unknown instance, plugin missing): no more attempts. */
export class PermanentJobError extends Error {}

export interface JobDefinition<P, R> {
  name: string;
  parse(data: unknown): P;
  handle(payload: P, ctx: JobContext): Promise<R>;
  /** After the last attempt failed: remove what the job left behind. The worker has already marked Error. */
  onFinalFailure?(payload: P, ctx: JobContext, error: Error): Promise<void>;
  /** The metadata row a job of this type moves, if any (the worker marks it Error on final failure). */
  backupUuidOf?(payload: P): string | undefined;
}

export function defineJob<P, R>(def: JobDefinition<P, R>): JobDefinition<P, R> {
  return def;
}

export function requireInt(data: unknown, key: string): number {
  const v = (data as Record<string, unknown> | null)?.[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new PermanentJobError(`job payload: ${key} must be a positive integer`);
  return v;
}

export function requireString(data: unknown, key: string): string {
  const v = (data as Record<string, unknown> | null)?.[key];
  if (typeof v !== 'string' || v === '') throw new PermanentJobError(`job payload: ${key} must be a non-empty string`);
  return v;
}

/**
 * The instance a full or binlog job is for, when it is this worker's own ([backup-conf] tb_instance_id), exists
 * and has backups enabled (is_clone). `work` says what this worker does for its instance, for the message.
 */
export async function requireOwnEnabledInstance(ctx: JobContext, instanceId: number, work: string): Promise<InstanceRow> {
  const ownId = requireBackupKey(ctx.config, 'tbInstanceId', 'tb_instance_id');
  if (ownId !== instanceId) throw new PermanentJobError(`this worker ${work} instance ${ownId} ([backup-conf] tb_instance_id), not ${instanceId}`);
  const instance = await ctx.metadata.getInstance(instanceId);
  if (!instance) throw new PermanentJobError(`instance ${instanceId} does not exist in tb_instance`);
  if (!instance.isClone) throw new PermanentJobError(`instance ${instanceId} (${instance.instanceId}) has is_clone = 0: backups are disabled`);
  return instance;
}
