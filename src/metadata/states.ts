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

/** The full-backup chain, in the order its stages run. */
export const fullStages = ['clone', 'tar', 'upload', 'cleanup'] as const;
export type FullStage = (typeof fullStages)[number];

/**
 * The state each stage moves the row into when it starts, and the states it may start from: the previous
 * stage's end, its own state (a retry after a crash) and Error (a DBA retrying a failed job).
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

/**
 * The stage a running row is in, or resumes at: the first one that may start from its state (Done: the clone is
 * whole, so tar). Undefined for a row that is not running.
 */
export function stageOfState(state: BackupState): FullStage | undefined {
  if (!inProgressStates.includes(state)) return undefined;
  return fullStages.find((stage) => canEnterStage(stage, state));
}
