// The seed's state names, written to full_backup_metadata.state. Dashboards filter on these exact strings.
export const BackupState = {
  Doing: 'Doing', // clone running
  Done: 'Done', // clone finished
  Tar: 'Tar', // archiving
  Uploading: 'Uploading',
  Clearing: 'Clearing', // removing local files
  Completed: 'Completed',
  Error: 'Error',
  Expiration: 'Expiration', // deleted from storage by expiry
} as const;
export type BackupState = (typeof BackupState)[keyof typeof BackupState];

export const inProgressStates: readonly BackupState[] = ['Doing', 'Done', 'Tar', 'Uploading', 'Clearing'];
export const finalStates: readonly BackupState[] = ['Completed', 'Error', 'Expiration'];

export type FullStage = 'clone' | 'tar' | 'upload' | 'cleanup';

/**
 * The state each full-backup stage moves the row into when it starts, and the states it may start from.
 * A stage may start from its own state (a retry after a crash) and from Error (a DBA retrying a failed job).
 */
export const stageTransitions: Record<FullStage, { enter: BackupState; from: readonly BackupState[] }> = {
  clone: { enter: 'Doing', from: ['Doing', 'Error'] },
  tar: { enter: 'Tar', from: ['Done', 'Tar', 'Error'] },
  upload: { enter: 'Uploading', from: ['Tar', 'Uploading', 'Error'] },
  cleanup: { enter: 'Clearing', from: ['Uploading', 'Clearing', 'Error'] },
};

export function canEnterStage(stage: FullStage, current: BackupState): boolean {
  return stageTransitions[stage].from.includes(current);
}
