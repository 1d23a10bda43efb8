// Stage 1 `clone`: CLONE LOCAL DATA DIRECTORY into <backup_path>/bak_<id>_<ts>. State Doing → Done, with
// end_time = clone_status END_TIME (the recovery point), the clone's GTID set, and its consistent point in the
// source's binary log (BINLOG_FILE → binlog_file, BINLOG_POSITION → binlog_position): a point-in-time restore
// starts its binlog chain at that file (src/restore/plan.ts).
import { rm } from 'node:fs/promises';
import { BackupState } from '../metadata/index.ts';
import { defineFullStage, fullBackupFiles } from './full-files.ts';

export interface CloneResult {
  recoveryPoint: string;
  gtidExecuted: string;
  /** The clone's consistent point in the source's binary log; absent when binary logging is off. */
  binlogFile?: string;
  binlogPosition?: number;
}

export const cloneStage = defineFullStage<CloneResult>({
  name: 'clone',
  info: 'cloning',
  async run(row, { backupUuid }, ctx) {
    const { cloneDir } = fullBackupFiles(row);
    // A previous attempt may have died mid-clone; CLONE needs the directory not to exist.
    await rm(cloneDir, { recursive: true, force: true });

    const node = await ctx.connectDataNode();
    const monitor = await ctx.connectDataNode();
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
      await node.cloneLocal(cloneDir, ctx.signal);
      const status = await node.cloneStatus();
      if (!status || status.state !== 'Completed' || !status.endTime) {
        throw new Error(`clone_status after CLONE is ${status?.state ?? 'empty'}: ${status?.errorMessage ?? ''}`);
      }
      const binlog = status.binlogFile ? { binlogFile: status.binlogFile, binlogPosition: status.binlogPosition } : {};
      await ctx.metadata.transition(backupUuid, [BackupState.Doing], BackupState.Done, {
        endTime: status.endTime,
        gtidSet: status.gtidExecuted,
        ...binlog,
        info: `cloned; recovery point ${status.endTime.toISOString()}${status.binlogFile ? `, binlog ${status.binlogFile}:${status.binlogPosition}` : ''}`,
      });
      return { recoveryPoint: status.endTime.toISOString(), gtidExecuted: status.gtidExecuted, ...binlog };
    } catch (err) {
      await rm(cloneDir, { recursive: true, force: true });
      throw err;
    } finally {
      clearInterval(timer);
      await Promise.all([node.close(), monitor.close()]);
    }
  },
});
