// The RPO bound: an active binlog holding transactions is rotated once it opened more than max_rpo_minutes ago,
// so the file that closes is archived by this same run. A streamed instance needs no rotation: the streamer keeps
// the active binlog in the bucket.
import type { DataNode } from '../../mysql/data-node.ts';
import type { JobContext } from '../types.ts';
import type { BinlogHead } from './chain.ts';
import { hasTransactions, type IndexEntry } from './index-file.ts';

/** The index, after FLUSH BINARY LOGS when the active binlog holds transactions older than max_rpo_minutes. */
export async function flushForRpo(
  node: DataNode,
  readIndex: () => Promise<IndexEntry[]>,
  head: (e: IndexEntry) => Promise<BinlogHead>,
  ctx: JobContext,
): Promise<{ entries: IndexEntry[]; flushed: boolean }> {
  const entries = await readIndex();
  if (ctx.config.backup.binlogStream) return { entries, flushed: false };
  const active = entries[entries.length - 1]!;
  const maxAgeSeconds = ctx.config.backup.maxRpoMinutes * 60;
  const ageSeconds = ctx.now().getTime() / 1000 - (await head(active)).start;
  if (ageSeconds < maxAgeSeconds || !(await hasTransactions(active.path))) return { entries, flushed: false };
  ctx.log.info({ active: active.name, ageSeconds: Math.round(ageSeconds), maxRpoMinutes: ctx.config.backup.maxRpoMinutes }, 'RPO bound: FLUSH BINARY LOGS');
  await node.flushBinaryLogs();
  return { entries: await readIndex(), flushed: true };
}
