// Fault: a backup stage that gave up is retried from bull-board's Retry button. The button must resume the chain
// exactly like `mcb jobs retry` (the stages after the failed one wait for it again), and a retry of a chain that
// cannot complete (a stage removed meanwhile) must change nothing, from the CLI as from the button.
// Real worker, real S3 outage (TCP proxy), real server over HTTP with credentials.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { instanceQueueName, pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { startWorker, type RunningWorker } from '../../src/workers/index.ts';
import { servicesEnv } from '../support/env.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { runMcb } from '../support/spawn.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

const USER = 'dba';
const PASSWORD = `pw-${randomId()}`;
const log = createLogger({ name: 'board-retry' });

let world: World;
let proxy: TcpProxy;
let config: Config;
let configFile: string;
let queues: Queues;
let worker: RunningWorker;
let server: RunningServer;

before(async () => {
  world = await createWorld();
  const s3 = servicesEnv().s3;
  proxy = await startTcpProxy(s3.endPoint, s3.port);
  // One attempt per stage: the first failure is final, as after a long outage.
  configFile = world.writeConfig({ s3Port: proxy.port, backupConf: { stage_attempts: '1' }, sections: { server: { user: USER, password: PASSWORD } } });
  config = loadConfig(configFile);
  const redis = redisConnection(config, 'client');
  await pingRedis(redis, config.redis.url);
  queues = new Queues(config, redis);
  worker = await startWorker(config, { log });
  server = await startServer(config, { log, listen: { host: '127.0.0.1', port: 0 } });
});
after(async () => {
  proxy?.up();
  await server?.close();
  await worker?.close();
  await queues?.close();
  await queues?.connection.quit();
  await proxy?.close();
  await world?.cleanup();
});

const queueName = () => instanceQueueName(world.replicaInstanceId);
const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

/** What bull-board's UI sends when its Retry button is clicked (PUT, with the browser's credentials). */
function clickRetry(jobId: string, authorization?: string): Promise<Response> {
  return fetch(`${server.url}/queues/api/queues/${encodeURIComponent(queueName())}/${encodeURIComponent(jobId)}/retry`, {
    method: 'PUT',
    headers: authorization ? { authorization } : {},
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined) return v;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function stateOf(jobId: string): Promise<string> {
  const job = await queues.queue(queueName()).getJob(jobId);
  return job ? job.getState() : 'missing';
}

async function chainStates(uuid: string, stages = ['clone', 'tar', 'upload', 'cleanup']): Promise<string[]> {
  return Promise.all(stages.map((s) => stateOf(`${uuid}-${s}`)));
}

/** Every Redis key of the chain's jobs and of the queue's job sets, dumped: "nothing changed" compares these. */
async function chainSnapshot(uuid: string): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  const q = `${config.redis.prefix}:${queueName()}`;
  const keys = new Set<string>(['wait', 'failed', 'waiting-children', 'prioritized', 'marker'].map((k) => `${q}:${k}`));
  let cursor = '0';
  do {
    const [next, found] = await queues.connection.scan(cursor, 'MATCH', `${q}:${uuid}-*`, 'COUNT', 1000);
    cursor = next;
    found.forEach((k) => keys.add(k));
  } while (cursor !== '0');
  for (const k of [...keys].sort()) out[k] = (await queues.connection.dumpBuffer(k))?.toString('base64') ?? null;
  return out;
}

test("bull-board's Retry on a failed upload stage resumes the chain to Completed, like `mcb jobs retry`", async () => {
  proxy.down(); // S3 unreachable: clone and tar run, upload gives up at once (one attempt)
  const startId = `full-${randomId()}`;
  await queues.queue(queueName()).add('full', { instanceId: world.replicaInstanceId }, { jobId: startId, attempts: 1 });
  const uuid = await until('the full job to start a chain', async () => {
    const job = await queues.queue(queueName()).getJob(startId);
    if (job?.failedReason) throw new Error(`start job failed: ${job.failedReason}`);
    return (job?.returnvalue as { backupUuid?: string } | undefined)?.backupUuid;
  });
  const failedRow = await until('the row to end in Error', async () => {
    const row = await world.metadata.getBackup(uuid);
    return row && ['Error', 'Completed'].includes(row.state) ? row : undefined;
  }, 120_000);
  assert.equal(failedRow.state, 'Error', failedRow.info ?? '');
  assert.match(failedRow.info ?? '', /^upload failed: /);
  await until('the stages after upload to fail with it', async () => ((await stateOf(`${uuid}-cleanup`)) === 'failed' ? true : undefined));
  assert.deepEqual(await chainStates(uuid), ['completed', 'completed', 'failed', 'failed']);
  assert.ok((await readdir(world.backupPath)).includes(failedRow.backupName), 'the verified archive is kept for a retry');

  proxy.up();
  // Without credentials the button does nothing.
  const anonymous = await clickRetry(`${uuid}-upload`);
  assert.equal(anonymous.status, 401);
  assert.deepEqual(await chainStates(uuid), ['completed', 'completed', 'failed', 'failed']);

  const clicked = await clickRetry(`${uuid}-upload`, basic);
  assert.equal(clicked.status, 204, await clicked.text());
  const done: BackupRow = await until('the retried chain to reach Completed', async () => {
    const row = await world.metadata.getBackup(uuid);
    if (row?.state === 'Error' && (await stateOf(`${uuid}-cleanup`)) === 'failed') throw new Error(`retry failed again: ${row.info}`);
    return row?.state === 'Completed' ? row : undefined;
  }, 120_000);
  assert.equal(done.backupUuid, uuid);
  await until('cleanup to complete', async () => ((await stateOf(`${uuid}-cleanup`)) === 'completed' ? true : undefined));
  assert.deepEqual(await chainStates(uuid), ['completed', 'completed', 'completed', 'completed']);

  // A completed stage is not run again on its own: the button answers why, in the form bull-board shows.
  const again = await clickRetry(`${uuid}-clone`, basic);
  assert.equal(again.status, 400);
  const body = (await again.json()) as { error: string; message: string };
  assert.match(body.error, /not offered for a completed backup stage/);
  assert.match(body.message, /mcb enqueue full/);
  const all = await fetch(`${server.url}/queues/api/queues/${queueName()}/retry/completed`, { method: 'PUT', headers: { authorization: basic } });
  assert.equal(all.status, 400);
  assert.deepEqual(await chainStates(uuid), ['completed', 'completed', 'completed', 'completed']);

  await assertBackupInvariants(world, { completed: 1 });
});

test('a retry of a chain whose later stage was removed is refused and changes nothing (CLI and button)', async () => {
  const backupUuid = randomUUID(); // no metadata row: clone fails permanently and takes the chain down
  await queues.addFullChain({ instanceId: world.replicaInstanceId, backupUuid });
  await until('the chain to fail', async () => ((await stateOf(`${backupUuid}-cleanup`)) === 'failed' ? true : undefined));
  // The last stage is removed on its own (as a DBA's `jobs remove --keep-children` or a trimmed failed set would):
  // the stages below can no longer lead anywhere.
  const cleanup = (await queues.queue(queueName()).getJob(`${backupUuid}-cleanup`))!;
  await cleanup.remove({ removeChildren: false });
  assert.deepEqual(await chainStates(backupUuid, ['clone', 'tar', 'upload']), ['failed', 'failed', 'failed']);
  const before = await chainSnapshot(backupUuid);

  const cli = await runMcb(['-f', configFile, 'jobs', 'retry', `${backupUuid}-tar`]);
  assert.equal(cli.code, 2, cli.stdout + cli.stderr);
  assert.match(cli.stderr, new RegExp(`^mcb: job ${backupUuid}-cleanup .*is gone .*nothing was retried`, 'm'));
  assert.deepEqual(await chainSnapshot(backupUuid), before, 'a refused retry leaves every key of the chain as it was');

  const clicked = await clickRetry(`${backupUuid}-upload`, basic);
  assert.equal(clicked.status, 409);
  assert.match(((await clicked.json()) as { message: string }).message, /is gone.*nothing was retried/);
  assert.deepEqual(await chainSnapshot(backupUuid), before);

  // "Retry all" on the failed tab (`mcb jobs retry --all-failed` runs the same retryAllFailed): the chain is
  // reported once as refused, and still nothing changes.
  const all = await fetch(`${server.url}/queues/api/queues/${queueName()}/retry/failed`, { method: 'PUT', headers: { authorization: basic } });
  assert.equal(all.status, 200);
  const summary = (await all.json()) as { retried: number; skipped: number; refused: Array<{ reason: string }> };
  assert.equal(summary.retried, 0);
  assert.equal(summary.skipped, 1, JSON.stringify(summary));
  assert.match(summary.refused[0]!.reason, /is gone/);
  assert.deepEqual(await chainSnapshot(backupUuid), before);

  await assertBackupInvariants(world, { completed: 1 });
});
