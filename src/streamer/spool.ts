// The local spool: `<backup_path>/.mcb-binlog-stream/` (0700), where mysqlbinlog writes the binlogs it receives and
// the streamer encodes a segment before its upload. Cleared whenever mysqlbinlog starts: it writes each file from
// the file's beginning again. Deletes stay inside backup_path (fs/contained-rm.ts).
import { mkdir, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { compareBinlogFiles, parseBinlogFileName } from '../binlog/index.ts';
import { removeFile, removeTree } from '../fs/contained-rm.ts';

export const SPOOL_DIR_NAME = '.mcb-binlog-stream';

export class Spool {
  readonly dir: string;

  constructor(private readonly backupPath: string) {
    this.dir = path.join(backupPath, SPOOL_DIR_NAME);
  }

  private get within() {
    return { within: { backup_path: this.backupPath } };
  }

  /** Empties the spool (creating it when absent). */
  async clear(): Promise<void> {
    await removeTree(this.dir, this.within);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
  }

  pathOf(name: string): string {
    return path.join(this.dir, name);
  }

  /** The binlogs in the spool, oldest first (scratch files of uploads are not binlog names). */
  async binlogs(): Promise<string[]> {
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? [] : Promise.reject(err)));
    return names.filter((n) => !n.startsWith('.') && parseBinlogFileName(n) !== undefined).sort(compareBinlogFiles);
  }

  async size(name: string): Promise<number> {
    return (await stat(this.pathOf(name))).size;
  }

  /** A scratch file for an encoded segment (a dot name: never taken for a binlog). */
  scratchFile(label: string): string {
    return path.join(this.dir, `.upload-${label}`);
  }

  async remove(file: string): Promise<void> {
    await removeFile(file, this.within);
  }
}
