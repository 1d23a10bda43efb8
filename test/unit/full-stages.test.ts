import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fullStageJobs } from '../../src/jobs/registry.ts';
import { BackupState, canEnterStage, finalStates, fullStages, inProgressStates, stageOfState, stageTransitions } from '../../src/metadata/states.ts';

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

test('state transitions: each stage enters its seed state from the previous one, itself or Error', () => {
  assert.deepEqual(
    Object.fromEntries(Object.entries(stageTransitions).map(([k, v]) => [k, v.enter])),
    { clone: 'Doing', tar: 'Tar', upload: 'Uploading', cleanup: 'Clearing' },
  );
  assert.ok(canEnterStage('tar', 'Done'));
  assert.ok(canEnterStage('tar', 'Tar'));
  assert.ok(!canEnterStage('tar', 'Doing'));
  assert.ok(!canEnterStage('upload', 'Done'));
  assert.ok(!canEnterStage('cleanup', 'Tar'));
  assert.ok(!canEnterStage('clone', 'Completed'));
  assert.ok(!canEnterStage('cleanup', 'Expiration'));
  assert.deepEqual([...inProgressStates, ...finalStates].sort(), ['Clearing', 'Completed', 'Doing', 'Done', 'Error', 'Expiration', 'Tar', 'Uploading']);
});
