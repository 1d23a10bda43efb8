// The frame every full-backup stage runs in: payload check, the backup's fence, the row's compare-and-set move into
// the stage's state, and what is kept when the last attempt fails.
import { stageTransitions, type BackupRow, type BackupState, type FullStage } from '../metadata/index.ts';
import { existingBackupFiles } from './full-files.ts';
import { PermanentJobError, type FullChainPayload, type JobContext, type JobDefinition } from './types.ts';

/**
 * A stage of the full-backup chain: takes the backup's fence, loads the row, checks `precondition`, moves the row
 * into the stage's state (stageTransitions), then runs `run`.
 */
export function defineFullStage<R>(def: {
  name: FullStage;
  /** What `info` says while the stage runs. */
  info: string;
  /**
   * The state the stage leaves the row in, and its result read back from the row: an attempt finding the row
   * there was re-delivered after an earlier one finished (a worker killed before BullMQ heard of it).
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
 * Runs one stage attempt holding the backup's fence, a metadata named lock on a connection of its own. BullMQ may
 * hand a stage to a second worker while the first still runs it (its job lock expired); the second waits here
 * until the first ends or dies. `fn`'s signal also aborts if the fence is lost during a metadata outage.
 */
async function withBackupFence<T>(ctx: JobContext, backupUuid: string, stage: string, fn: (fenced: JobContext) => Promise<T>): Promise<T> {
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

function parseChainPayload(data: unknown): FullChainPayload {
  const d = data as Record<string, unknown> | null;
  const instanceId = d?.instanceId;
  const backupUuid = d?.backupUuid;
  if (typeof instanceId !== 'number' || !Number.isSafeInteger(instanceId) || instanceId <= 0) {
    throw new PermanentJobError('job payload: instanceId must be a positive integer');
  }
  if (typeof backupUuid !== 'string' || !/^[0-9a-f-]{36}$/.test(backupUuid)) throw new PermanentJobError('job payload: backupUuid must be a uuid');
  return { instanceId, backupUuid };
}

async function loadFullBackupRow(ctx: JobContext, backupUuid: string): Promise<BackupRow> {
  const row = await ctx.metadata.getBackup(backupUuid);
  if (!row) throw new PermanentJobError(`backup ${backupUuid} has no metadata row`);
  if (row.backupType !== 'full') throw new PermanentJobError(`backup ${backupUuid} is a ${row.backupType} backup, not full`);
  return row;
}

/**
 * After a stage's last attempt each stage has removed its own partial output, so what is left (the clone, the
 * verified archive) is whole: kept for `mcb jobs retry` after, say, a long storage outage. The next full backup of
 * the instance removes them (sweepFailedBackupFiles), so at most one failed backup holds disk.
 */
async function keepFilesForRetry(payload: { backupUuid: string }, ctx: JobContext): Promise<void> {
  const row = await ctx.metadata.getBackup(payload.backupUuid);
  if (!row || row.state !== 'Error') return;
  const kept = await existingBackupFiles(row);
  if (!kept.length) return;
  await ctx.metadata.update(row.backupUuid, {
    info: `${row.info ?? ''} [kept ${kept.join(', ')} for \`mcb jobs retry\`; the next full backup removes them]`,
  });
}
