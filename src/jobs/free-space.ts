// Disk space in backup_path. Before the clone and before the tar a stage checks that what it is about to write fits,
// and refuses with the numbers (needed, free) when it does not: retrying cannot make room, so the refusal is
// permanent and burns no attempts. A disk that fills up anyway (something else writing to it, an archive larger
// than its estimate) fails the stage permanently too, after the backup's files are removed (ranOutOfSpace).
import { lstat, readdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import type { CodecName } from '../naming.ts';
import { GZIP_BLOCK_BYTES } from '../archive/parallel-gzip.ts';
import type { BackupRow } from '../metadata/index.ts';
import { lastArchiveRatio, type ArchiveRatio } from '../metadata/archive-ratio.ts';
import type { CloneSizeEstimate, DataNode } from '../mysql/data-node.ts';
import { humanBytes } from '../naming.ts';
import { PermanentJobError, type JobContext } from './types.ts';

const TAR_BLOCK = 512;
/** A header, and a PAX extended header (header + one block) when a name or a field does not fit the header. */
const TAR_ENTRY_OVERHEAD = 3 * TAR_BLOCK;
/** The end-of-archive blocks, and a record's worth of padding to be safe. */
const TAR_END = 20 * TAR_BLOCK;
const FS_BLOCK = 4096;
const MARGIN_FRACTION = 0.02;
const MARGIN_BYTES = 16 * 1024 * 1024;
/** Files and directories a clone adds to the tablespaces (#clone, #innodb_redo, ib_buffer_pool, schema folders…). */
const CLONE_EXTRA_ENTRIES = 64;
/** The last ratio is taken with this much on top: data can compress worse than it did last time. */
const RATIO_SAFETY = 1.25;

/** Sizes of a directory tree, as tar will see it. */
export interface TreeSize {
  files: number;
  directories: number;
  /** Sum of the files' sizes, each rounded up to tar's 512-byte blocks. */
  paddedBytes: number;
}

export class NoSpaceError extends PermanentJobError {}

function roundUp(bytes: number, unit: number): number {
  return Math.ceil(bytes / unit) * unit;
}

/** An upper bound of the tar of a tree. */
export function tarBound(tree: TreeSize): number {
  return tree.paddedBytes + (tree.files + tree.directories) * TAR_ENTRY_OVERHEAD + TAR_END;
}

/**
 * An upper bound of `bytes` once compressed. gzip: zlib's deflateBound, plus a member's header and trailer for each
 * block compressed on its own (src/archive/parallel-gzip.ts). zstd: ZSTD_compressBound, plus the frame's header and
 * checksum.
 */
export function compressedBound(bytes: number, codec: CodecName): number {
  if (codec === 'none') return bytes;
  if (codec === 'zstd') return bytes + Math.floor(bytes / 256) + (128 * 1024) / 2048 + 32;
  const members = Math.ceil(bytes / GZIP_BLOCK_BYTES) + 1;
  return bytes + Math.floor(bytes / 4096) + Math.floor(bytes / 16384) + Math.floor(bytes / 33554432) + members * (13 + 18);
}

export function withMargin(bytes: number): number {
  return Math.ceil(bytes * (1 + MARGIN_FRACTION)) + MARGIN_BYTES;
}

/** An archive's expected size and what it was worked out from. */
export interface ArchiveEstimate {
  bytes: number;
  /** `ratio`: the last backup's ratio with the safety factor; `worst-case`: the codec's bound. */
  basis: 'ratio' | 'worst-case';
  /** Why, in words: `bak_3_20260101020000.tar.gz compressed to 41.2 %, + 25 %`, or why the worst case. */
  how: string;
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)} %`;
}

/**
 * The archive of a tar of `tarBytes` (an upper bound of it): `last`'s ratio (the last Completed full with this
 * codec) with the safety factor, else the worst case. Never more than the worst case.
 */
export function archiveEstimate(tarBytes: number, codec: CodecName, last?: ArchiveRatio): ArchiveEstimate {
  const worst = compressedBound(tarBytes, codec);
  if (codec === 'none') return { bytes: worst, basis: 'worst-case', how: 'worst case: no compression' };
  if (!last) return { bytes: worst, basis: 'worst-case', how: `worst case: no earlier Completed ${codec} full of this instance records its ratio` };
  const safety = `+ ${Math.round((RATIO_SAFETY - 1) * 100)} %`;
  const fromRatio = Math.ceil(tarBytes * last.ratio * RATIO_SAFETY);
  if (fromRatio >= worst) return { bytes: worst, basis: 'worst-case', how: `worst case: ${last.backupName} compressed to ${percent(last.ratio)}, ${safety} would exceed it` };
  return { bytes: fromRatio, basis: 'ratio', how: `${last.backupName} compressed to ${percent(last.ratio)}, ${safety}` };
}

export interface CloneNeed {
  clone: number;
  archive: number;
  /** How the archive was estimated. */
  archiveEstimate: ArchiveEstimate;
  /** Clone and archive together, with the margin. */
  total: number;
}

/**
 * What a full backup needs in backup_path from the server's figures: its clone (tablespaces, plus redo bounded by
 * the redo capacity as MySQL's own clone check reserves, plus a block per file), then its archive beside it until
 * cleanup, estimated from `last` when there is one, plus a margin for data written meanwhile and the filesystem.
 */
export function cloneNeed(estimate: CloneSizeEstimate, codec: CodecName, last?: ArchiveRatio): CloneNeed {
  const entries = estimate.files + CLONE_EXTRA_ENTRIES;
  const cloneBytes = estimate.dataBytes + estimate.redoBytes;
  const clone = cloneBytes + entries * FS_BLOCK;
  const archived = archiveEstimate(tarBound({ files: entries, directories: entries, paddedBytes: roundUp(cloneBytes, TAR_BLOCK) + entries * TAR_BLOCK }), codec, last);
  return { clone, archive: archived.bytes, archiveEstimate: archived, total: withMargin(clone + archived.bytes) };
}

/** What the archive of a clone directory needs, with the margin. */
export function archiveNeed(tree: TreeSize, codec: CodecName, last?: ArchiveRatio): number {
  return withMargin(archiveEstimate(tarBound(tree), codec, last).bytes);
}

/** `needs 1.2G, 300.0M free (1288490188 > 314572800 bytes)` */
export function describeShortage(needed: number, free: number): string {
  return `needs ${humanBytes(needed)}, ${humanBytes(free)} free (${needed} > ${free} bytes)`;
}

/** Bytes an unprivileged writer may still use on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}

export async function treeSize(dir: string): Promise<TreeSize> {
  const size: TreeSize = { files: 0, directories: 1, paddedBytes: 0 };
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      const sub = await treeSize(full);
      size.files += sub.files;
      size.directories += sub.directories;
      size.paddedBytes += sub.paddedBytes;
    } else {
      size.files++;
      if (entry.isFile()) size.paddedBytes += roundUp((await lstat(full)).size, TAR_BLOCK);
    }
  }
  return size;
}

/**
 * Refuses the clone when backup_path cannot hold the clone and its archive (estimated from `last`, an earlier
 * backup's ratio, when given). Without figures from the server (no PROCESS privilege and no earlier clone), it
 * returns a note for the log: MySQL's own clone space check, and the check before the tar, remain.
 */
export async function assertCloneFits(opts: {
  backupPath: string;
  backupName: string;
  codec: CodecName;
  estimate: CloneSizeEstimate | undefined;
  last?: ArchiveRatio;
}): Promise<{ needed: number; free: number; archiveEstimate: ArchiveEstimate['basis'] } | { unknown: string }> {
  if (!opts.estimate) {
    return { unknown: 'no clone size estimate (GRANT PROCESS ON *.* to the backup user to read tablespace sizes): the clone is not checked for space before it starts' };
  }
  const need = cloneNeed(opts.estimate, opts.codec, opts.last);
  const free = await freeBytes(opts.backupPath);
  if (need.total > free) {
    const archive = need.archiveEstimate;
    throw new NoSpaceError(
      `not enough space in backup_path ${opts.backupPath} for ${opts.backupName}: ${describeShortage(need.total, free)}; clone about ${humanBytes(need.clone)}` +
        ` (tablespaces ${humanBytes(opts.estimate.dataBytes)} from ${opts.estimate.source} + redo capacity ${humanBytes(opts.estimate.redoBytes)}),` +
        ` archive ${archive.basis === 'ratio' ? 'about' : 'up to'} ${humanBytes(need.archive)} (${archive.how}), margin ${humanBytes(need.total - need.clone - need.archive)}`,
    );
  }
  return { needed: need.total, free, archiveEstimate: need.archiveEstimate.basis };
}

/**
 * Refuses the archive when backup_path cannot hold it; `reclaimable` is what the write frees first (an old partial
 * archive); `last` is an earlier backup's ratio to estimate the archive from.
 */
export async function assertArchiveFits(opts: {
  backupPath: string;
  cloneDir: string;
  archiveName: string;
  codec: CodecName;
  reclaimable: number;
  last?: ArchiveRatio;
}): Promise<{ needed: number; free: number; archiveEstimate: ArchiveEstimate['basis'] }> {
  const tree = await treeSize(opts.cloneDir);
  const archive = archiveEstimate(tarBound(tree), opts.codec, opts.last);
  const needed = withMargin(archive.bytes);
  const free = (await freeBytes(opts.backupPath)) + opts.reclaimable;
  if (needed > free) {
    const clone = `the clone's ${humanBytes(tree.paddedBytes)} in ${tree.files} files as tar`;
    const estimate =
      archive.basis === 'ratio'
        ? `the archive is estimated at ${humanBytes(archive.bytes)}: ${clone}, ${archive.how}`
        : `the archive is at most ${clone}${opts.codec === 'none' ? '' : ` plus ${opts.codec}'s overhead on incompressible data`} (${archive.how})`;
    throw new NoSpaceError(`not enough space in backup_path ${opts.backupPath} for ${opts.archiveName}: ${describeShortage(needed, free)}; ${estimate}, plus the margin`);
  }
  return { needed, free, archiveEstimate: archive.basis };
}

/** ENOSPC or EDQUOT from Node, or MySQL saying the same of a file it wrote (errno 28 or 122) or refusing a clone for space. */
export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' && (/No space left on device|Disk quota exceeded|errno:? (28|122)\b/i.test(message) || mysqlRefusedForSpace.test(message));
}

/** MySQL's own check at the start of a CLONE (ER_CLONE_DISK_SPACE), when ours had no figures or the disk shrank since. */
const mysqlRefusedForSpace = /Clone estimated database size .* is not enough/i;

/** The permanent error for a disk that filled up mid-way, with what is free now. */
export async function ranOutOfSpace(backupPath: string, doing: string, err: unknown, cleanedUp: string): Promise<NoSpaceError> {
  const free = await freeBytes(backupPath).then((n) => `${humanBytes(n)} free now`, () => 'free space unknown');
  const message = (err as Error).message;
  if (mysqlRefusedForSpace.test(message)) return new NoSpaceError(`MySQL refused to clone into backup_path ${backupPath} for lack of space: ${message}; ${cleanedUp}; ${free}`);
  return new NoSpaceError(`backup_path ${backupPath} ran out of space while ${doing}: ${message}; ${cleanedUp}; ${free}`);
}

/** What the checks read of a backup row. */
type SpaceRow = Pick<BackupRow, 'backupPath' | 'backupName' | 'compression' | 'tbInstanceId'>;

/** The codec a row's archive is written with (the seed's rows have none recorded: gzip). */
function codecOf(row: Pick<BackupRow, 'compression'>): CodecName {
  return (row.compression ?? 'gzip') as CodecName;
}

/** The instance's last archive ratio with the row's codec, for the estimates. */
function lastRatio(row: Pick<BackupRow, 'tbInstanceId' | 'compression'>, ctx: Pick<JobContext, 'metadata'>): Promise<ArchiveRatio | undefined> {
  return lastArchiveRatio(ctx.metadata, Number(row.tbInstanceId), codecOf(row));
}

/** The check before a clone: the server's figures against backup_path's free space, one log line either way. */
export async function checkCloneSpace(node: DataNode, row: SpaceRow, ctx: JobContext): Promise<void> {
  const estimate = await node.cloneSizeEstimate();
  const result = await assertCloneFits({ backupPath: row.backupPath, backupName: row.backupName, codec: codecOf(row), estimate, last: await lastRatio(row, ctx) });
  if ('unknown' in result) ctx.log.warn({ event: 'free-space.unknown', backupPath: row.backupPath }, result.unknown);
  else ctx.log.info({ event: 'free-space.ok', ...result }, `backup_path has room for the clone and its archive (archive estimate: ${result.archiveEstimate})`);
}

/** The check before the tar: the clone on disk against backup_path's free space, one log line when it fits. */
export async function checkArchiveSpace(row: SpaceRow, opts: { cloneDir: string; codec: CodecName; reclaimable: number }, ctx: JobContext): Promise<void> {
  const space = await assertArchiveFits({ backupPath: row.backupPath, archiveName: row.backupName, ...opts, last: await lastRatio(row, ctx) });
  ctx.log.info({ event: 'free-space.ok', ...space }, `backup_path has room for the archive (estimate: ${space.archiveEstimate})`);
}
