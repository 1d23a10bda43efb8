// What one binlog run knows about the server it reads: shared by the steps of the run.
import type { Codec } from '../../archive/index.ts';
import type { JobContext } from '../types.ts';
import type { BinlogHead } from './chain.ts';
import type { IndexEntry } from './index-file.ts';

export interface BinlogRun {
  instanceId: number;
  serverUuid: string;
  /** The index up to and including the active binlog. */
  entries: IndexEntry[];
  /** Each file's head, read at most once per run. */
  head: (e: IndexEntry) => Promise<BinlogHead>;
  codec: Codec;
  ctx: JobContext;
}

export function entryNamed(run: Pick<BinlogRun, 'entries'>, name: string): IndexEntry {
  const entry = run.entries.find((e) => e.name === name);
  if (!entry) throw new Error(`${name} is not in the binlog index`);
  return entry;
}
