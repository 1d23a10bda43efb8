// The RPO bound: an active binlog holding transactions is rotated once it opened more than max_rpo_minutes ago,
// so the file that closes is archived by this same run. A streamed instance needs no rotation while the streamer
// keeps the active binlog in the bucket; when its covered_at is older than the bound (the stream is broken), the
// rotation is the safety net again.
import { streamStatuses } from '../../metadata/binlog-segments.ts';
import type { DataNode } from '../../mysql/data-node.ts';
import type { JobContext } from '../types.ts';
import type { BinlogHead } from './chain.ts';
import { hasTransactions, type IndexEntry } from './index-file.ts';

/** The index, after FLUSH BINARY LOGS when the active binlog holds transactions older than max_rpo_minutes. */
export async function flushForRpo(
  instanceId: number,
  node: DataNode,
  readIndex: () => Promise<IndexEntry[]>,
  head: (e: IndexEntry) => Promise<BinlogHead>,
  ctx: JobContext,
): Promise<{ entries: IndexEntry[]; flushed: boolean }> {
  const entries = await readIndex();
  const maxAgeSeconds = ctx.config.backup.maxRpoMinutes * 60;
  if (ctx.config.backup.binlogStream) {
    const coveredAt = (await streamStatuses(ctx.metadata, instanceId)).get(instanceId)?.coveredAt;
    const streamAgeSeconds = coveredAt ? (ctx.now().getTime() - coveredAt.getTime()) / 1000 : Infinity;
    if (streamAgeSeconds < maxAgeSeconds) return { entries, flushed: false };
    ctx.log.warn({ coveredAt: coveredAt?.toISOString() ?? null, maxRpoMinutes: ctx.config.backup.maxRpoMinutes }, 'the binlog stream is behind the RPO bound: rotating as without streaming');
  }
  const active = entries[entries.length - 1]!;
  const ageSeconds = ctx.now().getTime() / 1000 - (await head(active)).start;
  if (ageSeconds < maxAgeSeconds || !(await hasTransactions(active.path))) return { entries, flushed: false };
  ctx.log.info({ active: active.name, ageSeconds: Math.round(ageSeconds), maxRpoMinutes: ctx.config.backup.maxRpoMinutes }, 'RPO bound: FLUSH BINARY LOGS');
  await node.flushBinaryLogs();
  return { entries: await readIndex(), flushed: true };
}
