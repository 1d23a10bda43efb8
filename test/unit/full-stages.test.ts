import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fullStageJobs } from '../../src/jobs/registry.ts';
import { BackupState, fullStages, stageOfState, stageTransitions } from '../../src/metadata/states.ts';

test('the stage of a running row is the stage that moves it on; finished rows have none', () => {
  const byState = Object.fromEntries(Object.values(BackupState).map((s) => [s, stageOfState(s)]));
  assert.deepEqual(byState, {
    Doing: 'clone',
    Done: 'tar',
    Tar: 'tar',
    Uploading: 'upload',
    Clearing: 'cleanup',
    Completed: undefined,
    Error: undefined,
    Expiration: undefined,
  });
});

test('every stage has its transitions and its job, under its own name, in chain order', () => {
  assert.deepEqual(Object.keys(stageTransitions), [...fullStages]);
  for (const stage of fullStages) assert.equal(fullStageJobs[stage].name, stage);
});
