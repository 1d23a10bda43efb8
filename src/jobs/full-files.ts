// Where a full backup's local files live: <backup_path>/bak_<id>_<ts>/ (the clone) and
// <backup_path>/bak_<id>_<ts>.tar.gz (the archive). Derived from the metadata row, so any stage can find
// them after a restart.
import { access } from 'node:fs/promises';
import path from 'node:path';
import { fullBackupBaseOf } from '../naming.ts';
import { requireBackupKey, type Config } from '../config/index.ts';
import { checkDeletable, OutsideRootError, removeFile, removeTree, type DeletionRoots } from '../fs/contained-rm.ts';
import { stageTransitions, type BackupRow, type BackupState, type FullStage } from '../metadata/index.ts';
import { PermanentJobError, type FullChainPayload, type JobContext, type JobDefinition } from './types.ts';

export interface FullBackupFiles {
  cloneDir: string;
  archiveFile: string;
}

export function fullBackupFiles(row: Pick<BackupRow, 'backupPath' | 'backupName'>): FullBackupFiles {
  const base = fullBackupBaseOf(row.backupName);
  return { cloneDir: path.join(row.backupPath, base), archiveFile: path.join(row.backupPath, row.backupName) };
}

/** This worker's backup_path: the only place where a full backup's local files are written and removed. */
export function backupRoot(config: Config): DeletionRoots {
  return { backup_path: requireBackupKey(config, 'backupPath', 'backup_path') };
}

/**
 * The row's files, when they lie inside this worker's backup_path: a row's backup_path and backup_name are data
 * (a row edited to backup_path = '/' must not make a stage clone into, or remove, /var). Refused permanently.
 */
export async function containedBackupFiles(row: Pick<BackupRow, 'backupPath' | 'backupName'>, config: Config): Promise<FullBackupFiles> {
  const files = fullBackupFiles(row);
  const within = backupRoot(config);
  try {
    await checkDeletable(files.cloneDir, { within });
    await checkDeletable(files.archiveFile, { within });
  } catch (err) {
    if (err instanceof OutsideRootError) throw new PermanentJobError(`backup ${row.backupName}: ${err.message}`);
    throw err;
  }
  return files;
}

export async function removeFullBackupFiles(files: FullBackupFiles, config: Config): Promise<void> {
  const within = backupRoot(config);
  await removeTree(files.cloneDir, { within });
  await removeFile(files.archiveFile, { within });
}

export async function loadFullBackupRow(ctx: JobContext, backupUuid: string): Promise<BackupRow> {
  const row = await ctx.metadata.getBackup(backupUuid);
  if (!row) throw new PermanentJobError(`backup ${backupUuid} has no metadata row`);
  if (row.backupType !== 'full') throw new PermanentJobError(`backup ${backupUuid} is a ${row.backupType} backup, not full`);
  return row;
}

export function parseChainPayload(data: unknown): { instanceId: number; backupUuid: string } {
  const d = data as Record<string, unknown> | null;
  const instanceId = d?.instanceId;
  const backupUuid = d?.backupUuid;
  if (typeof instanceId !== 'number' || !Number.isSafeInteger(instanceId) || instanceId <= 0) {
    throw new PermanentJobError('job payload: instanceId must be a positive integer');
  }
  if (typeof backupUuid !== 'string' || !/^[0-9a-f-]{36}$/.test(backupUuid)) throw new PermanentJobError('job payload: backupUuid must be a uuid');
  return { instanceId, backupUuid };
}

/**
 * After a stage's last attempt: each stage has already removed its own partial output (a half clone, a half
 * archive, a bad object), so what is left is whole: the clone, or the verified archive. They are kept so that
 * `mcb jobs retry` can resume the chain after, say, a storage outage longer than the retries; the next full
 * backup of the instance removes them (sweepFailedBackupFiles), so at most one failed backup holds disk.
 */
export async function keepFilesForRetry(payload: { backupUuid: string }, ctx: JobContext): Promise<void> {
  const row = await ctx.metadata.getBackup(payload.backupUuid);
  if (!row || row.state !== 'Error') return;
  const kept = [];
  const files = fullBackupFiles(row);
  for (const f of [files.cloneDir, files.archiveFile]) if (await exists(f)) kept.push(f);
  if (!kept.length) return;
  await ctx.metadata.update(row.backupUuid, {
    info: `${row.info ?? ''} [kept ${kept.join(', ')} for \`mcb jobs retry\`; the next full backup removes them]`,
  });
}

/** Removes the local files of this instance's failed full backups (called when a new full backup starts). */
export async function sweepFailedBackupFiles(ctx: JobContext, instanceId: number): Promise<string[]> {
  const removed: string[] = [];
  for (const row of await ctx.metadata.listBackups({ instanceId, type: 'full', states: ['Error'], limit: 50 })) {
    const files = fullBackupFiles(row);
    if (!(await exists(files.cloneDir)) && !(await exists(files.archiveFile))) continue;
    try {
      await removeFullBackupFiles(files, ctx.config);
    } catch (err) {
      // One bad row must not stop every later full backup: it is named and left alone.
      if (!(err instanceof OutsideRootError)) throw err;
      ctx.log.warn({ event: 'full.sweep-refused', backupUuid: row.backupUuid }, `files of failed backup ${row.backupName} not removed: ${err.message}`);
      continue;
    }
    removed.push(row.backupName);
  }
  return removed;
}

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

/**
 * A stage of the full-backup chain: parses the chain payload, takes the backup's fence (withBackupFence), loads
 * the row, checks `precondition`, moves the row into the stage's state (compare-and-set, see stageTransitions),
 * then runs `run`. On the last failed attempt the worker marks the row Error and the whole local files are kept
 * for a retry (keepFilesForRetry).
 */
export function defineFullStage<R>(def: {
  name: FullStage;
  /** What `info` says while the stage runs. */
  info: string;
  /**
   * The state the stage leaves the row in when it ends, and its result read back from the row: an attempt that
   * finds the row there was re-delivered after an earlier attempt had finished (a worker killed before BullMQ
   * heard of it) and does nothing.
   */
  finished?: { state: BackupState; result(row: BackupRow): R };
  precondition?(row: BackupRow): void;
  run(row: BackupRow, payload: FullChainPayload, ctx: JobContext): Promise<R>;
}): JobDefinition<FullChainPayload, R> {
  return {
    name: def.name,
    parse: parseChainPayload,
    backupUuidOf: (p) => p.backupUuid,
    onFinalFailure: keepFilesForRetry,
    async handle(payload, ctx) {
      await loadFullBackupRow(ctx, payload.backupUuid);
      return withBackupFence(ctx, payload.backupUuid, def.name, async (fenced) => {
        const row = await loadFullBackupRow(ctx, payload.backupUuid);
        if (def.finished && row.state === def.finished.state) {
          ctx.log.info({ event: 'stage.already-finished', backupUuid: row.backupUuid, state: row.state }, `${def.name} of ${row.backupName} was finished by an earlier attempt`);
          return def.finished.result(row);
        }
        def.precondition?.(row);
        const t = stageTransitions[def.name];
        const entered = await ctx.metadata.transition(payload.backupUuid, t.from, t.enter, {
          workerHost: ctx.workerHost,
          jobId: ctx.jobId,
          info: def.info,
        });
        return def.run(entered, payload, fenced);
      });
    },
  };
}

/**
 * Runs one stage attempt while holding the backup's fence: a metadata named lock per backup, held on a
 * connection of its own for the whole attempt. BullMQ may hand a stage to a second worker while the first still
 * runs it (its job lock expired: a blocked event loop, a Redis outage); the second attempt waits here until the
 * first ends, or its process dies and the lock with its connection. `fn` gets a context whose signal also aborts
 * if the fence was lost to another attempt while the metadata center was unreachable.
 */
export async function withBackupFence<T>(ctx: JobContext, backupUuid: string, stage: string, fn: (fenced: JobContext) => Promise<T>): Promise<T> {
  const fence = await ctx.metadata.acquireLock(ctx.metadata.lockName('backup', backupUuid), {
    waitSeconds: Infinity,
    signal: ctx.signal,
    onBusy: (holder) => {
      const by = holder ? `metadata connection ${holder.connectionId} from ${holder.clientAddress}` : 'another connection';
      ctx.log.warn({ event: 'stage.fenced', backupUuid, holder }, `another attempt is working on backup ${backupUuid} (${by}): ${stage} waits for it to end`);
    },
  });
  if (!fence) throw new Error(`the fence of backup ${backupUuid} could not be taken`); // unreachable: waits forever
  try {
    return await fn({ ...ctx, signal: AbortSignal.any([ctx.signal, fence.lost]) });
  } finally {
    await fence.release();
  }
}
