// `mcb jobs …` and `mcb status` run as the real binary against real Redis, metadata center and S3, with a
// real worker failing real jobs; and the error paths scripts rely on (exit 2 usage/config, 1 service down).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../src/log/index.ts';
import { lastBinlogChecks } from '../../src/metadata/job-outcomes.ts';
import { instanceStatuses, statusProblems } from '../../src/ops/status.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startWorker, type RunningWorker } from '../../src/workers/index.ts';
import { runMcb } from '../support/spawn.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

let world: World;
let queues: Queues;
let worker: RunningWorker;

before(async () => {
  world = await createWorld();
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
  worker = await startWorker(world.config, { log: createLogger({ name: 'cli-ops-worker' }) });
});
after(async () => {
  await worker?.close();
  await queues?.close();
  await queues?.connection.quit();
  await world?.cleanup();
});

const mcb = (...args: string[]) => runMcb(['-f', world.configFile, ...args]);

async function json<T>(...args: string[]): Promise<T> {
  const r = await mcb(...args);
  assert.equal(r.code, 0, `mcb ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

async function waitForState(jobId: string, state: string, timeoutMs = 30_000): Promise<void> {
  const queue = queues.forInstance(world.replicaInstanceId);
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const job = await queue.getJob(jobId);
    last = job ? await job.getState() : 'missing';
    if (last === state) return;
    await sleep(100);
  }
  throw new Error(`job ${jobId} still ${last}, expected ${state}`);
}

interface JobJson {
  queue: string;
  id: string;
  name: string;
  state: string;
  attemptsMade: number;
  failedReason: string | null;
  stacktrace: string[];
  data: unknown;
  chain: Array<{ id: string; name: string; state: string }>;
}

test('jobs list / show / pause / retry / resume / remove on a job a real worker failed', async () => {
  const queueName = `mcb-instance-${world.replicaInstanceId}`;
  const jobId = `bad-payload-${randomId()}`;
  await queues.forInstance(world.replicaInstanceId).add('full', { instanceId: 'not-a-number' }, { jobId, attempts: 3 });
  await waitForState(jobId, 'failed');

  const failed = await json<JobJson[]>('jobs', 'list', '--state', 'failed', '--json');
  const listed = failed.find((j) => j.id === jobId);
  assert.ok(listed, `failed job listed: ${JSON.stringify(failed)}`);
  assert.equal(listed.queue, queueName);
  assert.equal(listed.name, 'full');
  assert.equal(listed.state, 'failed');
  assert.equal(listed.attemptsMade, 1, 'a payload error is permanent: one attempt, not three');
  assert.match(listed.failedReason!, /instanceId must be a positive integer/);

  const table = await mcb('jobs', 'list', '--state', 'failed');
  assert.equal(table.code, 0);
  assert.match(table.stdout, /^queue\s+id\s+name\s+state\s+attempts/m);
  assert.match(table.stdout, new RegExp(`${queueName}\\s+${jobId}\\s+full\\s+failed\\s+1/3`));

  // No --queue: found by searching every instance queue.
  const shown = await mcb('jobs', 'show', jobId);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /^state\s+failed$/m);
  assert.match(shown.stdout, /^payload\s+\{"instanceId":"not-a-number"\}$/m);
  assert.match(shown.stdout, /^failed\s+job payload: instanceId must be a positive integer/m);
  assert.match(shown.stdout, /stack of the last failure:\n.*Error: job payload: instanceId must be a positive integer\n\s+at /);
  const detail = await json<JobJson>('jobs', 'show', jobId, '--queue', queueName, '--json');
  assert.equal(detail.stacktrace.length, 1);
  assert.deepEqual(detail.data, { instanceId: 'not-a-number' });

  // Pause, so the retried job stays visible as waiting; resume, and the worker fails it again.
  assert.match((await mcb('jobs', 'pause', '--instance', String(world.replicaInstanceId))).stdout, new RegExp(`${queueName} paused`));
  assert.equal(await queues.forInstance(world.replicaInstanceId).isPaused(), true);
  const retried = await mcb('jobs', 'retry', jobId);
  assert.equal(retried.code, 0, retried.stderr);
  assert.match(retried.stdout, new RegExp(`retried full ${jobId}`));
  assert.equal((await json<JobJson>('jobs', 'show', jobId, '--json')).state, 'waiting');
  const again = await mcb('jobs', 'retry', jobId);
  assert.equal(again.code, 2, 'a waiting job cannot be retried');
  assert.match(again.stderr, /^mcb: job .* is waiting, not failed: only failed jobs can be retried\n$/);
  assert.match((await mcb('jobs', 'resume', '--queue', queueName)).stdout, new RegExp(`${queueName} resumed`));
  await waitForState(jobId, 'failed');
  assert.equal((await json<JobJson>('jobs', 'show', jobId, '--json')).attemptsMade, 2);

  const removed = await mcb('jobs', 'remove', jobId);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stdout, /removed job .* \(full, failed\)/);
  const gone = await mcb('jobs', 'show', jobId);
  assert.equal(gone.code, 2);
  assert.match(gone.stderr, new RegExp(`^mcb: no job with id "${jobId}" in any instance queue`));
});

test('retrying a failed full-backup chain puts the stages after the failed one back to wait for it', async () => {
  const backupUuid = randomUUID(); // no metadata row with this uuid
  await queues.addFullChain({ instanceId: world.replicaInstanceId, backupUuid });
  // clone fails (no metadata row, permanent); tar, upload and cleanup fail after it (fail-parent-on-failure).
  await waitForState(`${backupUuid}-cleanup`, 'failed');

  const shown = await json<JobJson>('jobs', 'show', `${backupUuid}-upload`, '--json');
  assert.deepEqual(
    shown.chain.map((l) => [l.name, l.state]),
    [['clone', 'failed'], ['tar', 'failed'], ['upload', 'failed'], ['cleanup', 'failed']],
  );
  const text = await mcb('jobs', 'show', `${backupUuid}-clone`);
  assert.match(text.stdout, /chain\s+\(runs top to bottom\)\n\s+> clone\s+failed\s+\S+-clone\n\s+tar/);
  assert.match(text.stdout, /has no metadata row/);

  await mcb('jobs', 'pause', '--instance', String(world.replicaInstanceId));
  // Retrying the root retries the stage that really failed and re-arms the ones after it.
  const r = await mcb('jobs', 'retry', `${backupUuid}-cleanup`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`retried clone ${backupUuid}-clone; waiting for it again: tar ${backupUuid}-tar, upload ${backupUuid}-upload, cleanup ${backupUuid}-cleanup`));
  const after = await json<JobJson>('jobs', 'show', `${backupUuid}-cleanup`, '--json');
  assert.deepEqual(
    after.chain.map((l) => [l.name, l.state]),
    [['clone', 'waiting'], ['tar', 'waiting-children'], ['upload', 'waiting-children'], ['cleanup', 'waiting-children']],
  );
  assert.equal(after.failedReason, null);

  // The real worker runs the chain again: clone fails again and takes the re-armed stages with it.
  await mcb('jobs', 'resume', '--instance', String(world.replicaInstanceId));
  await waitForState(`${backupUuid}-cleanup`, 'failed');
  const all = await mcb('jobs', 'retry', '--all-failed', '--queue', `mcb-instance-${world.replicaInstanceId}`);
  assert.equal(all.code, 0, all.stderr);
  assert.match(all.stdout, /^1 failed job\(s\) retried$/m, 'one chain, retried once through its failed stage');
});

test('status --json: last Completed full with its age, STALE thresholds, failures, schedules; status text', async () => {
  const now = Date.now();
  await world.metadata.createBackup({
    backupUuid: `status-ok-${randomId()}`, tbInstanceId: world.sourceInstanceId, state: 'Completed', backupType: 'full',
    startTime: new Date(now - 3600_000), endTime: new Date(now - 3000_000), backupName: 'bak_recent.tar.gz', backupSize: '1.5G', backupBytes: 1610612736,
  });
  await world.metadata.createBackup({
    backupUuid: `status-old-${randomId()}`, tbInstanceId: world.replicaInstanceId, state: 'Completed', backupType: 'full',
    startTime: new Date(now - 50 * 3600_000), endTime: new Date(now - 49 * 3600_000), backupName: 'bak_old.tar.gz', backupSize: '2G', backupBytes: 2147483648,
  });
  await world.metadata.createBackup({
    backupUuid: `status-err-${randomId()}`, tbInstanceId: world.replicaInstanceId, state: 'Error', backupType: 'full',
    startTime: new Date(now - 600_000), backupName: 'bak_failed.tar.gz', info: 'upload failed: <boom>',
  });
  // A schedule, as the producer would keep it.
  await queues.forInstance(world.sourceInstanceId).upsertJobScheduler('full-instance-test', { pattern: '0 2 * * *' }, { name: 'full', data: {} });

  type S = { redis: string; instances: Array<{ id: number; lastFull: { backupName: string; ageSeconds: number; bytes: number } | null; fullStale: boolean; binlogStale: boolean; failures24h: number; schedules: Array<{ name: string; next: string }> }> };
  const s = await json<S>('status', '--json');
  assert.equal(s.redis, 'ok');
  const source = s.instances.find((i) => i.id === world.sourceInstanceId)!;
  const replica = s.instances.find((i) => i.id === world.replicaInstanceId)!;
  assert.equal(source.lastFull?.backupName, 'bak_recent.tar.gz');
  assert.ok(Math.abs(source.lastFull!.ageSeconds - 3000) < 60, `age from end_time: ${source.lastFull!.ageSeconds}`);
  assert.equal(source.lastFull?.bytes, 1610612736);
  assert.equal(source.fullStale, false);
  assert.equal(source.binlogStale, true, 'no binlog backup at all is stale');
  assert.equal(source.schedules[0]?.name, 'full');
  assert.ok(Date.parse(source.schedules[0]!.next) > now);
  assert.equal(replica.lastFull?.backupName, 'bak_old.tar.gz');
  assert.equal(replica.fullStale, true, '49 h > stale_full_hours (26)');
  assert.equal(replica.failures24h, 1);

  const text = await mcb('status', '--instance', String(world.replicaInstanceId));
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /last full\s+bak_old\.tar\.gz 2d 1h ago, 2G\s+STALE/);
  assert.match(text.stdout, /failures 24h 1\s+last: bak_failed\.tar\.gz .*upload failed: <boom>/);
  assert.doesNotMatch(text.stdout, /bak_recent/);
});

test('status --json and text show a running full backup with its stage progress from the stage job in Redis', async () => {
  const backupUuid = randomUUID();
  await world.metadata.createBackup({
    backupUuid, tbInstanceId: world.replicaInstanceId, state: 'Tar', backupType: 'full', startTime: new Date(), backupName: 'bak_running.tar.gz',
  });
  // Delayed, so the worker of this file leaves it alone; it carries the progress the tar stage reports.
  const job = await queues.forInstance(world.replicaInstanceId).add('tar', { instanceId: world.replicaInstanceId, backupUuid }, { jobId: `${backupUuid}-tar`, delay: 3600_000 });
  await job.updateProgress({ stage: 'tar', fraction: 0.42 });

  type S = { instances: Array<{ id: number; running: Array<{ backupName: string; state: string; stage: string | null; progressPercent: number | null }> }> };
  const s = await json<S>('status', '--json', '--instance', String(world.replicaInstanceId));
  const running = s.instances[0]!.running.find((r) => r.backupName === 'bak_running.tar.gz');
  assert.ok(running, JSON.stringify(s.instances[0]!.running));
  assert.deepEqual([running.state, running.stage, running.progressPercent], ['Tar', 'tar', 42]);

  const text = await mcb('status', '--instance', String(world.replicaInstanceId));
  assert.match(text.stdout, /running\s+full bak_running\.tar\.gz Tar tar 42% since /);
});

test('status --check: exit 1 with one stderr line per STALE or failing enabled instance, 0 when all are fresh', async () => {
  const stale = await mcb('status', '--check');
  assert.equal(stale.code, 1, stale.stderr);
  const lines = stale.stderr.trim().split('\n');
  for (const l of lines) assert.match(l, /^mcb: instance \d+ \(.*\): /);
  assert.ok(lines.some((l) => new RegExp(`^mcb: instance ${world.replicaInstanceId} \\(.*\\): full backup STALE`).test(l)), stale.stderr);
  assert.match(stale.stdout, /^instance /m, 'the usual report is still printed');

  // A world where the only enabled instance has a fresh Completed full and binlog and no failures.
  const now = Date.now();
  await world.metadata.setCloneEnabled(world.replicaInstanceId, false);
  try {
    for (const backupType of ['full', 'binlog'] as const) {
      await world.metadata.createBackup({
        backupUuid: `check-${backupType}-${randomId()}`, tbInstanceId: world.sourceInstanceId, state: 'Completed', backupType,
        startTime: new Date(now - 120_000), endTime: new Date(now - 60_000), backupName: `bak_check_${backupType}`, backupSize: '1M', backupBytes: 1048576,
      });
    }
    const fresh = await mcb('status', '--check');
    assert.equal(fresh.code, 0, fresh.stderr);
    assert.equal(fresh.stderr, '');
    // Disabled instances are not checked, but --instance still narrows the check to one instance.
    const one = await mcb('status', '--check', '--json', '--instance', String(world.sourceInstanceId));
    assert.equal(one.code, 0, one.stderr);
    assert.equal((JSON.parse(one.stdout) as { instances: unknown[] }).instances.length, 1);
  } finally {
    await world.metadata.setCloneEnabled(world.replicaInstanceId, true);
  }
  const again = await mcb('status', '--check', '--instance', String(world.replicaInstanceId));
  assert.equal(again.code, 1);
});

test('error paths: exit 2 for unknown instance, bad config and usage; exit 1 with one line when Redis is down', async () => {
  for (const args of [['status', '--instance', '99999'], ['jobs', 'pause', '--instance', '99999'], ['jobs', 'list', '--instance', '99999']]) {
    const r = await mcb(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, 'mcb: unknown instance 99999: no such id in tb_instance (see `mcb instance list`)\n');
  }
  const usage = [
    [['jobs', 'list', '--state', 'bogus'], /--state must be one of failed, active/],
    [['jobs', 'retry'], /give a job id or --all-failed/],
    [['jobs', 'pause'], /give --queue NAME or --instance ID to pause/],
    [['jobs', 'show', 'x', '--queue', 'not-ours'], /--queue must name an instance queue/],
  ] as const;
  for (const [args, message] of usage) {
    const r = await mcb(...args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
  }

  const badConfig = path.join(world.dir, 'bad.ini');
  writeFileSync(badConfig, '[metadata-link]\nhost = 127.0.0.1\nuser = root\npassword =\n[redis]\nurl = redis://127.0.0.1:6379\nprefx = x\n');
  const bad = await runMcb(['-f', badConfig, 'jobs', 'list']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^mcb: \[redis\] prefx in .*bad\.ini line 7: unknown key/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);

  // A port nobody listens on: take a free one and close it.
  const port = await new Promise<number>((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
  const down = world.writeConfig({ sections: { redis: { url: `redis://127.0.0.1:${port}`, prefix: world.prefix } } });
  for (const args of [['jobs', 'list'], ['jobs', 'retry', '--all-failed']]) {
    const r = await runMcb(['-f', down, ...args]);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^mcb: Redis at redis://127\\.0\\.0\\.1:${port} is unreachable: .*\\n$`));
  }
  // status still reports the metadata center, then exits 1 naming Redis.
  const status = await runMcb(['-f', down, 'status', '--json']);
  assert.equal(status.code, 1);
  const body = JSON.parse(status.stdout) as { redis: string; instances: Array<{ id: number; schedules: unknown; running: Array<{ backupName: string; stage: string | null; progressPercent: number | null }> }> };
  assert.match(body.redis, /unreachable/);
  assert.equal(body.instances[0]?.schedules, null);
  // The running row of the progress test above is still listed, its progress unknown without Redis.
  const running = body.instances.find((i) => i.id === world.replicaInstanceId)?.running.find((r) => r.backupName === 'bak_running.tar.gz');
  assert.deepEqual([running?.stage, running?.progressPercent], ['tar', null]);
  assert.match(status.stderr, /^mcb: Redis at .* is unreachable/);
});

test('--help explains every new command', async () => {
  for (const args of [['jobs', '--help'], ['jobs', 'list', '--help'], ['jobs', 'show', '--help'], ['jobs', 'retry', '--help'], ['jobs', 'remove', '--help'], ['jobs', 'pause', '--help'], ['status', '--help'], ['server', '--help']]) {
    const r = await runMcb(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: mcb /m);
  }
  assert.match((await runMcb(['jobs', 'retry', '--help'])).stdout, /resumes the chain\s+from that stage/);
  assert.match((await runMcb(['status', '--help'])).stdout, /STALE: no Completed backup/);
  assert.match((await runMcb(['server', '--help'])).stdout, /refuses to start on a non-loopback address/);
});

test('status: binlog staleness of an idle server counts from the last successful binlog run, not from its last rotation', async () => {
  const queue = queues.forInstance(world.replicaInstanceId);
  const runBinlog = async (): Promise<{ archived: unknown[] }> => {
    const job = await queue.add('binlog', { instanceId: world.replicaInstanceId }, { jobId: `binlog-${randomId()}`, attempts: 1 });
    await waitForState(job.id!, 'completed', 120_000);
    return (await queue.getJob(job.id!))!.returnvalue as { archived: unknown[] };
  };
  const check = async () => (await lastBinlogChecks(world.metadata, world.replicaInstanceId)).get(String(world.replicaInstanceId))?.getTime();
  const ageRows = (sql: string) => world.metadata.pool.query(sql, [world.replicaInstanceId]);

  await runBinlog(); // the real worker archives every closed binlog of the replica
  // The server then stays idle for three hours: no rotation, so its newest binlog row's end_time is that old; and
  // the last check is as old as that too.
  await ageRows("UPDATE full_backup_metadata SET start_time = start_time - INTERVAL 3 HOUR, end_time = end_time - INTERVAL 3 HOUR WHERE tb_instance_id = ? AND backup_type = 'binlog'");
  await ageRows("UPDATE mcb_job_outcomes SET last_success_at = last_success_at - INTERVAL 3 HOUR WHERE tb_instance_id = ? AND job_type = 'binlog'");
  const [idle] = await instanceStatuses(world.config, world.metadata, undefined, { instanceId: world.replicaInstanceId });
  assert.equal(idle!.binlogStale, true, 'no successful run for three hours is STALE');
  assert.ok(statusProblems([idle!]).some((p) => /binlog backup STALE/.test(p)));

  // The scheduled run comes: nothing (or little) new to archive, and the check is fresh again.
  const second = await runBinlog();
  assert.ok(Date.now() - (await check())! < 600_000, `check recorded by a run that archived ${second.archived.length} file(s)`);
  type S = { instances: Array<{ binlogStale: boolean; lastBinlog: { ageSeconds: number } | null; lastBinlogCheck: { ageSeconds: number } | null }> };
  const s = await json<S>('status', '--json', '--instance', String(world.replicaInstanceId));
  const r = s.instances[0]!;
  assert.equal(r.binlogStale, false, JSON.stringify(r));
  assert.ok(r.lastBinlogCheck!.ageSeconds < 600, JSON.stringify(r.lastBinlogCheck));
  if (!second.archived.length) assert.ok(r.lastBinlog!.ageSeconds > 3 * 3600 - 600, 'the last rotation is still three hours old');
});
