// Archiving one closed binlog: row Uploading → every event's checksum → a free object name → upload and verify →
// Completed. A failure leaves the row Error; the next run retries it.
import path from 'node:path';
import { encodingSuffix } from '../../archive/index.ts';
import { errorMessage } from '../../errors.ts';
import type { BackupRow } from '../../metadata/index.ts';
import { binlogObjectName, humanBytes } from '../../naming.ts';
import type { BinlogHead } from './chain.ts';
import type { IndexEntry } from './index-file.ts';
import { chooseBinlogObjectKey } from './object-key.ts';
import type { BinlogRun } from './run.ts';
import { binlogCompressOptions, confirmStoredBinlog, discardEncoded, encodedDigest, uploadBinlog, verifyBinlogChecksums, type EncodedDigest } from './upload.ts';

export interface ArchivedBinlogInfo {
  file: string;
  objectKey: string;
  bytes: number;
  sha256: string;
  startTime: string;
  endTime: string;
}

/** `row` is the binlog's row: its uuid, and the row an earlier attempt left (Uploading or Error) if any. */
export async function archiveBinlogFile(
  run: BinlogRun,
  entry: IndexEntry,
  h: BinlogHead,
  row: { backupUuid: string; existing: BackupRow | undefined },
): Promise<ArchivedBinlogInfo> {
  const { instanceId, serverUuid, codec, ctx } = run;
  const { backupUuid, existing } = row;
  const name = entry.name;
  const key = ctx.config.encryption.current;
  const suffix = encodingSuffix({ codec, key });
  const next = run.entries[run.entries.indexOf(entry) + 1]!; // never undefined: the active binlog is last and never archived
  const fields = {
    startTime: new Date(h.start * 1000),
    endTime: new Date((await run.head(next)).start * 1000),
    binlogFile: name,
    gtidSet: h.previousGtids,
    serverUuid,
    backupPath: path.dirname(entry.path),
    backupName: binlogObjectName(instanceId, name, suffix),
    bucketName: ctx.storage.bucket,
    compression: codec.name,
    encryptionKeyId: key?.id ?? null,
    overdueDay: ctx.config.backup.binlogStorageDays,
    workerHost: ctx.workerHost,
    jobId: ctx.jobId,
  };
  if (!existing) {
    await ctx.metadata.createBackup({ backupUuid, tbInstanceId: instanceId, state: 'Uploading', backupType: 'binlog', ...fields, info: 'uploading' });
  } else {
    await ctx.metadata.transition(backupUuid, ['Uploading', 'Error'], 'Uploading', { ...fields, info: `uploading (retry after: ${existing.info ?? existing.state})` });
  }
  let expected: EncodedDigest | undefined;
  try {
    await verifyBinlogChecksums(entry.path, name);
    expected = await encodedDigest(entry.path, { codec, key, options: binlogCompressOptions(ctx), scratchDir: ctx.config.backup.backupPath });
    const choice = await chooseBinlogObjectKey(ctx.storage, ctx.metadata, {
      instanceId,
      backupUuid,
      file: name,
      startSeconds: h.start,
      extension: suffix,
      bytes: expected.bytes,
      sha256: expected.sha256,
    });
    if (choice.key !== fields.backupName) await ctx.metadata.update(backupUuid, { backupName: choice.key });
    const put = choice.alreadyStored
      ? await confirmStoredBinlog(choice.key, expected, ctx)
      : await uploadBinlog(entry.path, choice.key, expected, codec, { instanceId, backupUuid, name }, ctx);
    await ctx.metadata.transition(backupUuid, ['Uploading'], 'Completed', {
      backupBytes: put.bytes,
      backupSize: humanBytes(put.bytes),
      sha256: put.sha256,
      objectKey: choice.key,
      info: `archived and verified (${ctx.config.backup.verify}); ${put.sourceBytes} bytes of binlog${choice.alreadyStored ? ', stored by an earlier attempt' : ''}`,
    });
    ctx.log.info({ binlog: name, objectKey: choice.key, bytes: put.bytes }, 'binlog archived');
    return { file: name, objectKey: choice.key, bytes: put.bytes, sha256: put.sha256, startTime: fields.startTime.toISOString(), endTime: fields.endTime.toISOString() };
  } catch (err) {
    const reason = `archiving ${name} failed: ${errorMessage(err)}`;
    await ctx.metadata.markError(backupUuid, reason, (err as Error).stack);
    throw new Error(reason, { cause: err });
  } finally {
    await discardEncoded(expected);
  }
}
