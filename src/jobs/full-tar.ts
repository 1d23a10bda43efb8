// Stage 2 `tar`: archive the clone into <backup_path>/<backup_name> with the configured codec (gzip by
// default, so the seed's `tar -xzf` restore still works). State → Tar; records size and sha256.
import { rm } from 'node:fs/promises';
import { createArchive, getCodec, type CodecName } from '../archive/index.ts';
import { humanBytes } from '../naming.ts';
import { defineFullStage, fullBackupFiles } from './full-files.ts';
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
    const files = fullBackupFiles(row);
    const codec = getCodec((row.compression ?? 'gzip') as CodecName);
    if (!codec) throw new PermanentJobError(`unknown compression ${row.compression}`);
    try {
      const result = await createArchive({
        sourceDir: files.cloneDir,
        outFile: files.archiveFile,
        codec,
        level: ctx.config.backup.compressionLevel,
        signal: ctx.signal,
        onProgress: (fraction) => void ctx.progress({ stage: 'tar', fraction }).catch(() => undefined),
      });
      await ctx.metadata.update(backupUuid, {
        backupBytes: result.bytes,
        backupSize: humanBytes(result.bytes),
        sha256: result.sha256,
        info: `archived ${humanBytes(result.sourceBytes)} into ${humanBytes(result.bytes)}`,
      });
      return result;
    } catch (err) {
      await rm(files.archiveFile, { force: true });
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new PermanentJobError(`clone directory ${files.cloneDir} is missing; the clone stage must run again`);
      }
      throw err;
    }
  },
});
