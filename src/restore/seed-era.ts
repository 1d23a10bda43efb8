// Backups written by the seed's Python script: rows without a checksum or object key, binlog rows whose
// start_time/end_time are when the script ran, not when the binlog was written. Before planning, their facts
// are read from the bucket: the full archive must exist (its size is taken from the store), and each binlog's
// real span comes from its own header (the next file's start ends it).
import { nextBinlogFile, parseBinlogFileName } from '../binlog/index.ts';
import type { ObjectStore } from '../storage/index.ts';
import { binlogStartOfObject } from './bucket.ts';
import type { BinlogCandidate, FullCandidate } from './plan.ts';

/** Seed binlog rows carry no sha256; ours always do. */
export function isSeedEraBinlog(b: BinlogCandidate): boolean {
  return !b.sha256;
}

/**
 * Replaces the times of seed-era binlog candidates by the ones in the objects, and drops seed-era fulls whose
 * archive is not in the bucket (with a warning). Returns the warnings to print.
 */
export async function resolveSeedEraCandidates(
  fulls: FullCandidate[],
  binlogs: BinlogCandidate[],
  storeFor: (bucket: string | undefined) => ObjectStore,
): Promise<{ fulls: FullCandidate[]; binlogs: BinlogCandidate[]; warnings: string[] }> {
  const warnings: string[] = [];
  const keptFulls: FullCandidate[] = [];
  for (const f of fulls) {
    if (!f.seedEra) {
      keptFulls.push(f);
      continue;
    }
    const stat = await storeFor(f.bucket).stat(f.objectKey);
    if (!stat) {
      warnings.push(`seed-era full backup ${f.objectKey} (backup_name ${f.name ?? '?'}) is not in bucket ${f.bucket ?? '?'}: not a restore candidate`);
      continue;
    }
    keptFulls.push({ ...f, bytes: stat.size });
  }
  if (!binlogs.some(isSeedEraBinlog)) return { fulls: keptFulls, binlogs, warnings };

  const resolved: BinlogCandidate[] = [];
  for (const b of binlogs) {
    if (!isSeedEraBinlog(b)) {
      resolved.push(b);
      continue;
    }
    try {
      resolved.push({ ...b, startTime: await binlogStartOfObject(storeFor(b.bucket), b.objectKey), endTime: null });
    } catch (err) {
      warnings.push(`seed-era binlog ${b.objectKey} cannot be read (${(err as Error).message}): left out of the plan`);
    }
  }
  // The same binlog recorded by the seed and again by an earlier mcb: once its real start is known, one candidate,
  // the one with a checksum.
  const unique = new Map<string, BinlogCandidate>();
  for (const b of resolved) {
    const key = `${b.file}@${b.startTime.getTime()}`;
    const seen = unique.get(key);
    if (!seen || (!seen.sha256 && b.sha256)) unique.set(key, b);
  }
  const deduplicated = [...unique.values()];
  // A seed-era binlog ends where the next file of its series starts.
  const byName = new Map(deduplicated.map((b) => [b.file, b]));
  for (const b of deduplicated) {
    if (b.endTime || !isSeedEraBinlog(b)) continue;
    if (!parseBinlogFileName(b.file)) continue;
    const next = byName.get(nextBinlogFile(b.file));
    if (next && next.startTime.getTime() >= b.startTime.getTime()) b.endTime = next.startTime;
  }
  return { fulls: keptFulls, binlogs: deduplicated, warnings };
}
