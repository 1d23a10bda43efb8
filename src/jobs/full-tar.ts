// Stage `tar`: archive the clone into <backup_path>/<backup_name> with the row's codec (gzip by default, so the
// seed's `tar -xzf` restore still works), after checking it fits; state → Tar; records size and sha256.
import { access, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { createArchive, getCodec } from '../archive/index.ts';
import type { CodecName } from '../naming.ts';
import { removeTree } from '../fs/contained-rm.ts';
import { humanBytes } from '../naming.ts';
import { backupRoot, containedBackupFiles } from './full-files.ts';
import { defineFullStage } from './stage.ts';
import { checkArchiveSpace, isNoSpace, NoSpaceError, ranOutOfSpace } from './free-space.ts';
import { PermanentJobError } from './types.ts';

export interface TarResult {
  bytes: number;
  sha256: string;
  sourceBytes: number;
}

export const tarStage = defineFullStage<TarResult>({
  name: 'tar',
  info: 'archiving',
  async run(row, { backupUuid }, ctx) {
    const files = await containedBackupFiles(row, ctx.config);
    const codec = getCodec((row.compression ?? 'gzip') as CodecName);
    if (!codec) throw new PermanentJobError(`unknown compression ${row.compression}`);
    const encryptWith = row.encryptionKeyId ? ctx.config.encryption.find(row.encryptionKeyId) : undefined;
    if (row.encryptionKeyId && !encryptWith) {
      throw new PermanentJobError(`backup ${row.backupName} is to be encrypted with key ${row.encryptionKeyId}, which is no longer configured (${ctx.config.encryption.describe()}); the next full backup uses the current key`);
    }
    // A previous attempt's partial archive is overwritten, so its space counts as free.
    const reclaimable = await stat(files.archiveFile).then(
      (s) => s.size,
      () => 0,
    );
    await assertFinishedClone(files.cloneDir);
    try {
      await checkArchiveSpace(row, { cloneDir: files.cloneDir, codec: codec.name, reclaimable }, ctx);
      const result = await createArchive({
        sourceDir: files.cloneDir,
        outFile: files.archiveFile,
        codec,
        encryptWith,
        level: ctx.config.backup.compressionLevel,
        threads: ctx.config.backup.compressionThreads,
        readMbPerSecond: ctx.config.backup.maxReadMbPerS,
        signal: ctx.signal,
        onProgress: (fraction) => void ctx.progress({ stage: 'tar', fraction }).catch(() => undefined),
      });
      await ctx.metadata.update(backupUuid, {
        backupBytes: result.bytes,
        sourceBytes: result.sourceBytes,
        backupSize: humanBytes(result.bytes),
        sha256: result.sha256,
        info: `archived ${humanBytes(result.sourceBytes)} into ${humanBytes(result.bytes)}`,
      });
      return result;
    } catch (err) {
      await rm(files.archiveFile, { force: true });
      if (err instanceof NoSpaceError) throw err;
      if (isNoSpace(err)) {
        // The disk is full: the clone is given back too, rather than kept for a retry on a disk that has no room.
        await removeTree(files.cloneDir, { within: backupRoot(ctx.config) });
        throw await ranOutOfSpace(row.backupPath, 'archiving', err, 'the partial archive and the clone were removed to free the disk; the next full backup starts over');
      }
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new PermanentJobError(`clone directory ${files.cloneDir} is missing; the clone stage must run again`);
      }
      throw err;
    }
  },
});

/**
 * The row says the clone finished, but a chain re-armed after a Redis loss, or a DBA's hand in backup_path, may
 * meet an empty or partial directory: archiving it would complete a backup of nothing. Every finished clone has
 * the data dictionary tablespace.
 */
async function assertFinishedClone(cloneDir: string): Promise<void> {
  const dictionary = path.join(cloneDir, 'mysql.ibd');
  const found = await access(dictionary).then(
    () => true,
    () => false,
  );
  if (!found) throw new PermanentJobError(`clone directory ${cloneDir} is missing or is not a finished clone (no mysql.ibd); the clone stage must run again`);
}
