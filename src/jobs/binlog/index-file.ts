// The server's binlog index on disk, and what the binlog job reads of each file before archiving it.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { readEvents } from '../../binlog/index.ts';
import { errorMessage } from '../../errors.ts';
import type { DataNode } from '../../mysql/data-node.ts';
import { PermanentJobError, type JobContext } from '../types.ts';
import type { BinlogHead } from './chain.ts';

export interface IndexEntry {
  name: string;
  path: string;
}

/** Reads the index (bin_index_path, else @@log_bin_index) up to the server's active binlog, each time it is called. */
export async function binlogIndexReader(ctx: JobContext, node: DataNode): Promise<() => Promise<IndexEntry[]>> {
  const indexPath = await resolveIndexPath(ctx, node);
  const basenameDir = path.dirname((await node.variable('log_bin_basename')) ?? indexPath);
  return () => readIndexUpToActive(node, indexPath, basenameDir);
}

async function resolveIndexPath(ctx: JobContext, node: DataNode): Promise<string> {
  if (ctx.config.backup.binIndexPath) return ctx.config.backup.binIndexPath;
  const index = await node.variable('log_bin_index');
  if (!index) throw new PermanentJobError(`${node.where} reports no @@log_bin_index; set [backup-conf] bin_index_path`);
  return index;
}

/** The index as the server sees it, cut after the server's active binlog, which is the last entry. */
async function readIndexUpToActive(node: DataNode, indexPath: string, basenameDir: string): Promise<IndexEntry[]> {
  for (let attempt = 1; ; attempt++) {
    // SHOW BINARY LOGS first: a rotation in between only adds lines after the active one we know of.
    const logs = await node.binaryLogs();
    const serverActive = logs.at(-1)?.name;
    if (!serverActive) throw new PermanentJobError(`${node.where} lists no binary logs (SHOW BINARY LOGS is empty): is log_bin on?`);
    const entries = await readIndex(indexPath, basenameDir);
    const pos = entries.findIndex((e) => e.name === serverActive);
    if (pos >= 0) return entries.slice(0, pos + 1);
    if (attempt >= 2) {
      throw new PermanentJobError(
        `binlog index ${indexPath} does not list ${serverActive}, the active binlog of ${node.where}: is bin_index_path the index of this server?`,
      );
    }
  }
}

async function readIndex(indexPath: string, basenameDir: string): Promise<IndexEntry[]> {
  let text: string;
  try {
    text = await readFile(indexPath, 'utf8');
  } catch (err) {
    throw new PermanentJobError(`cannot read binlog index ${indexPath}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)} (the binlog job must run on the database host)`);
  }
  const entries: IndexEntry[] = [];
  for (const line of text.split('\n')) {
    const raw = line.trim();
    if (!raw) continue;
    let file = path.isAbsolute(raw) ? raw : path.resolve(path.dirname(indexPath), raw);
    // Relative entries are relative to the server's datadir; the index usually sits there, else next to the basename.
    if (!path.isAbsolute(raw) && !existsSync(file)) file = path.join(basenameDir, path.basename(raw));
    entries.push({ name: path.basename(raw), path: file });
  }
  if (!entries.length) throw new PermanentJobError(`binlog index ${indexPath} is empty`);
  return entries;
}

/** The FORMAT_DESCRIPTION timestamp and PREVIOUS_GTIDS set: the first two events. */
export async function readBinlogHead(file: string): Promise<BinlogHead> {
  let start: number | undefined;
  let previousGtids = '';
  for await (const ev of readEvents(file, { allowTruncatedTail: true })) {
    if (ev.kind === 'format_description') {
      start = ev.header.timestamp;
      continue;
    }
    if (ev.kind === 'previous_gtids') previousGtids = ev.gtidSet;
    break;
  }
  if (start === undefined) throw new Error(`${file}: no FORMAT_DESCRIPTION event`);
  return { start, previousGtids };
}

/** Whether the binlog holds anything beyond its header events (a flush of an empty binlog gains nothing). */
export async function hasTransactions(file: string): Promise<boolean> {
  for await (const ev of readEvents(file, { allowTruncatedTail: true, verifyChecksums: false })) {
    if (ev.kind === 'format_description' || ev.kind === 'previous_gtids') continue;
    return true;
  }
  return false;
}

/** Reads each file's head at most once per run. */
export function headCache(): (e: IndexEntry) => Promise<BinlogHead> {
  const heads = new Map<string, BinlogHead>();
  return async (e) => {
    let h = heads.get(e.path);
    if (!h) heads.set(e.path, (h = await readBinlogHead(e.path)));
    return h;
  };
}
