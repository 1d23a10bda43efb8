// Where a full backup's local files live: <backup_path>/bak_<id>_<ts>/ (the clone) and
// <backup_path>/bak_<id>_<ts>.tar.gz (the archive). Derived from the metadata row, so any stage can find
// them after a restart.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { BackupRow } from '../metadata/index.ts';
import { PermanentJobError, type JobContext } from './types.ts';

export interface FullBackupFiles {
  cloneDir: string;
  archiveFile: string;
}

export function fullBackupFiles(row: Pick<BackupRow, 'backupPath' | 'backupName'>): FullBackupFiles {
  const base = row.backupName.replace(/\.tar(\.[a-z0-9]+)?$/, '');
  return { cloneDir: path.join(row.backupPath, base), archiveFile: path.join(row.backupPath, row.backupName) };
}

export async function removeFullBackupFiles(files: FullBackupFiles): Promise<void> {
  await rm(files.cloneDir, { recursive: true, force: true });
  await rm(files.archiveFile, { force: true });
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

/** Common final-failure handling for every stage of the chain: nothing half-done stays on the disk. */
export async function removeFilesAfterFailure(payload: { backupUuid: string }, ctx: JobContext): Promise<void> {
  const row = await ctx.metadata.getBackup(payload.backupUuid);
  if (row) await removeFullBackupFiles(fullBackupFiles(row));
}
