// Where a full backup's local files live: <backup_path>/bak_<id>_<ts>/ (the clone) and
// <backup_path>/bak_<id>_<ts>.tar.gz (the archive). Derived from the metadata row, so any stage can find
// them after a restart.
import { access } from 'node:fs/promises';
import path from 'node:path';
import { fullBackupBaseOf } from '../naming.ts';
import { requireBackupKey, type Config } from '../config/index.ts';
import { checkDeletable, OutsideRootError, removeFile, removeTree, type DeletionRoots } from '../fs/contained-rm.ts';
import type { BackupRow } from '../metadata/index.ts';
import { PermanentJobError, type JobContext } from './types.ts';

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

/** Which of the row's local files (clone, archive) are there. */
export async function existingBackupFiles(row: Pick<BackupRow, 'backupPath' | 'backupName'>): Promise<string[]> {
  const files = fullBackupFiles(row);
  const found = [];
  for (const f of [files.cloneDir, files.archiveFile]) if (await exists(f)) found.push(f);
  return found;
}

/** Removes the local files of this instance's failed full backups (called when a new full backup starts). */
export async function sweepFailedBackupFiles(ctx: JobContext, instanceId: number): Promise<string[]> {
  const removed: string[] = [];
  for (const row of await ctx.metadata.listBackups({ instanceId, type: 'full', states: ['Error'], limit: 50 })) {
    if (!(await existingBackupFiles(row)).length) continue;
    try {
      await removeFullBackupFiles(fullBackupFiles(row), ctx.config);
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
