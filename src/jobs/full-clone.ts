// Stage `clone`: CLONE LOCAL DATA DIRECTORY into <backup_path>/bak_<id>_<ts>; Doing → Done. Records the recovery
// point and the binlog the clone's consistent point lies in, where a point-in-time restore starts replaying.
import { chmod } from 'node:fs/promises';
import { removeTree } from '../fs/contained-rm.ts';
import { BackupState } from '../metadata/index.ts';
import type { DataNode } from '../mysql/data-node.ts';
import { backupRoot, containedBackupFiles } from './full-files.ts';
import { defineFullStage } from './stage.ts';
import { checkCloneSpace, isNoSpace, ranOutOfSpace } from './free-space.ts';
import type { JobContext } from './types.ts';

export interface CloneResult {
  recoveryPoint: string;
  gtidExecuted: string;
  /** The clone's consistent point in the source's binary log; absent when binary logging is off. */
  binlogFile?: string;
  binlogPosition?: number;
}

/** How long a killed CLONE of a dead attempt may take to abort inside mysqld. */
const ORPHAN_CLONE_STOP_SECONDS = 120;

export const cloneStage = defineFullStage<CloneResult>({
  name: 'clone',
  info: 'cloning',
  finished: {
    state: BackupState.Done,
    result: (row) => ({
      recoveryPoint: row.endTime?.toISOString() ?? '',
      gtidExecuted: row.gtidSet ?? '',
      ...(row.binlogFile ? { binlogFile: row.binlogFile, binlogPosition: row.binlogPosition ?? 0 } : {}),
    }),
  },
  async run(row, { backupUuid }, ctx) {
    const { cloneDir } = await containedBackupFiles(row, ctx.config);
    const within = backupRoot(ctx.config);
    const node = await ctx.connectDataNode();
    let monitor: DataNode;
    try {
      await stopOrphanClone(node, cloneDir, ctx);
      // A previous attempt may have died mid-clone; CLONE needs the directory not to exist.
      await removeTree(cloneDir, { within });
      await checkCloneSpace(node, row, ctx);
      monitor = await ctx.connectDataNode();
    } catch (err) {
      await node.close();
      throw err;
    }
    const timer = setInterval(() => {
      monitor
        .cloneProgress()
        .then((stages) => {
          const estimate = stages.reduce((s, x) => s + x.estimate, 0);
          const data = stages.reduce((s, x) => s + x.data, 0);
          const current = stages.find((s) => s.state === 'In Progress')?.stage ?? '';
          return ctx.progress({ stage: 'clone', fraction: estimate ? Math.min(1, data / estimate) : 0, cloneStage: current });
        })
        .catch(() => undefined);
    }, 2000);
    try {
      // A LOCAL clone leaves clone_status BINLOG_FILE empty (only remote clones fill it). The binlog that is
      // active when the clone starts is at or before the clone's consistent point, so replay anchored there
      // misses nothing (GTIDs already in the clone are skipped).
      const before = (await node.binaryLogs().catch(() => [])).at(-1);
      await node.cloneLocal(cloneDir, ctx.signal);
      const status = await node.cloneStatus();
      if (!status || status.state !== 'Completed' || !status.endTime) {
        throw new Error(`clone_status after CLONE is ${status?.state ?? 'empty'}: ${status?.errorMessage ?? ''}`);
      }
      await makeClonePrivate(cloneDir, ctx);
      const binlog = status.binlogFile
        ? { binlogFile: status.binlogFile, binlogPosition: status.binlogPosition }
        : before
          ? { binlogFile: before.name, binlogPosition: before.size }
          : {};
      await ctx.metadata.transition(backupUuid, [BackupState.Doing], BackupState.Done, {
        endTime: status.endTime,
        gtidSet: status.gtidExecuted || null,
        ...binlog,
        info: `cloned; recovery point ${status.endTime.toISOString()}${binlog.binlogFile ? `, binlog ${binlog.binlogFile}:${binlog.binlogPosition}` : ''}`,
      });
      return { recoveryPoint: status.endTime.toISOString(), gtidExecuted: status.gtidExecuted, ...binlog };
    } catch (err) {
      await removeTree(cloneDir, { within });
      if (isNoSpace(err)) throw await ranOutOfSpace(row.backupPath, 'cloning', err, 'the partial clone was removed');
      throw err;
    } finally {
      clearInterval(timer);
      await Promise.all([node.close(), monitor.close()]);
    }
  },
});

/**
 * A worker killed mid-clone leaves its CLONE running inside mysqld, writing into the clone directory: it is
 * killed, and gone, before this attempt removes the directory and clones again. The backup's fence guarantees
 * no live attempt owns it.
 */
async function stopOrphanClone(node: DataNode, cloneDir: string, ctx: JobContext): Promise<void> {
  const killed = await node.stopCloneInto(cloneDir, ORPHAN_CLONE_STOP_SECONDS);
  if (killed !== undefined) {
    ctx.log.warn({ event: 'clone.orphan-killed', cloneDir, processlistId: killed }, `killed the CLONE into ${cloneDir} left running by a dead attempt (connection ${killed})`);
  }
}

/**
 * The clone holds every row and password hash of the instance; mysqld creates it readable by its group. Only its
 * owner (and root) may read it. A worker that is neither (it reads the clone as a member of mysqld's group) cannot
 * change the mode, and must keep its group access: it is told so once per backup.
 */
async function makeClonePrivate(cloneDir: string, ctx: JobContext): Promise<void> {
  try {
    await chmod(cloneDir, 0o700);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
    ctx.log.warn({ event: 'clone.mode-kept', cloneDir }, `cannot make ${cloneDir} private (mode 0700): this worker does not own it; it keeps the mode mysqld gave it`);
  }
}
