// `mcb server` in-process on a free port, over a real backup (made by the stage handlers against the real
// replica, S3 and metadata center) and real Redis queues: /metrics parsed, the JSON API, the status page,
// auth on /queues and on mutating requests, the refusal to listen publicly without credentials.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import type { RowDataPacket } from 'mysql2/promise';
import type { BackupRow, MetadataStore } from '../../src/metadata/index.ts';
import { pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { retryJob } from '../../src/queues/admin.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { startWorker } from '../../src/workers/index.ts';
import { makeCompletedFullBackup } from '../support/backup.ts';
import { runMcb, startMcb } from '../support/spawn.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

const USER = 'dba';
const PASSWORD = `pw-${randomId()}`;
const TOKEN = `tok-${randomId()}`;

let world: World;
let config: Config;
let queues: Queues;
let server: RunningServer;
let backup: BackupRow;

before(async () => {
  world = await createWorld();
  config = loadConfig(world.writeConfig({ sections: { server: { user: USER, password: PASSWORD, token: TOKEN } } }));
  backup = await makeCompletedFullBackup(world);
  await world.metadata.createBackup({
    backupUuid: `err-${randomId()}`, tbInstanceId: world.replicaInstanceId, state: 'Error', backupType: 'full',
    startTime: new Date(), backupName: 'bak_broken.tar.gz', info: 'upload failed: <script>alert(1)</script>',
  });
  const redis = redisConnection(config, 'client');
  await pingRedis(redis, config.redis.url);
  queues = new Queues(config, redis);
  await queues.forInstance(world.replicaInstanceId).add('full', { instanceId: world.replicaInstanceId }, { jobId: 'waiting-one', delay: 3600_000 });
  server = await startServer(config, { log: createLogger({ name: 'test-server' }), listen: { host: '127.0.0.1', port: 0 } });
});
after(async () => {
  await server?.close();
  await queues?.close();
  await queues?.connection.quit();
  await world?.cleanup();
});

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
/** The read-only routes need credentials too when they are configured ([server] public_read is off). */
const reader = { headers: { authorization: `Bearer ${TOKEN}` } };

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small parser of the Prometheus text format: every sample line, and the families declared by TYPE. */
function parseMetrics(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const t = /^# TYPE (\w+) (\w+)$/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    if (line.startsWith('#')) continue;
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of m[2]?.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g) ?? []) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

function sample(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

test('/metrics carries the backup just made, failures and queue depths, in valid Prometheus text', async () => {
  const res = await fetch(`${server.url}/metrics`, reader);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
  const { samples, types } = parseMetrics(await res.text());
  for (const s of samples) assert.ok(types.has(s.name), `${s.name} has a TYPE line`);
  const replica = { instance: String(world.replicaInstanceId), type: 'full' };
  const recoveryPoint = (backup.endTime ?? backup.updatedAt).getTime() / 1000;
  assert.equal(sample(samples, 'mcb_last_success_timestamp_seconds', replica), recoveryPoint);
  assert.equal(sample(samples, 'mcb_last_backup_bytes', replica), backup.backupBytes);
  assert.ok(backup.backupBytes! > 0);
  const duration = sample(samples, 'mcb_last_backup_duration_seconds', replica)!;
  assert.ok(duration >= 0 && duration < 3600, `duration ${duration}`);
  // The Error row of before() was written directly, not by a job failing: the counter counts failed jobs (see the
  // counter test at the end of this file), the row shows in mcb_backups.
  assert.equal(sample(samples, 'mcb_backup_failures_total', replica), 0);
  assert.equal(sample(samples, 'mcb_backups', { ...replica, state: 'Error' }), 1);
  assert.equal(types.get('mcb_backup_failures_total'), 'counter');
  assert.equal(sample(samples, 'mcb_backup_failures_total', { instance: String(world.sourceInstanceId), type: 'full' }), 0);
  assert.equal(sample(samples, 'mcb_backups', { ...replica, state: 'Completed' }), 1);
  assert.equal(sample(samples, 'mcb_backup_stale', replica), 0);
  assert.equal(sample(samples, 'mcb_backup_stale', { instance: String(world.sourceInstanceId), type: 'full' }), 1);
  assert.equal(sample(samples, 'mcb_queue_jobs', { queue: `mcb-instance-${world.replicaInstanceId}`, state: 'delayed' }), 1);
  assert.equal(sample(samples, 'mcb_last_success_timestamp_seconds', { instance: String(world.sourceInstanceId), type: 'full' }), undefined);
});

test('/api/backups and /api/instances return the backup as JSON; bad filters are 400', async () => {
  const rows = (await (await fetch(`${server.url}/api/backups?instance=${world.replicaInstanceId}&type=full`, reader)).json()) as Array<Record<string, unknown>>;
  const row = rows.find((r) => r.backupUuid === backup.backupUuid);
  assert.ok(row, JSON.stringify(rows));
  assert.equal(row.state, 'Completed');
  assert.equal(row.backupName, backup.backupName);
  assert.equal(row.sha256, backup.sha256);
  assert.equal(rows.length, 2, 'the Completed and the Error row');
  assert.ok(rows.every((r) => !('errorDetail' in r)), 'the open API leaves out full error details (stacks)');
  assert.ok(rows.some((r) => r.state === 'Error' && typeof r.info === 'string'), 'the short reason is there');
  assert.equal((await fetch(`${server.url}/api/backups?type=bogus`, reader)).status, 400);
  assert.equal((await fetch(`${server.url}/api/backups?instance=x`, reader)).status, 400);

  const body = (await (await fetch(`${server.url}/api/instances`, reader)).json()) as { redis: string; instances: Array<{ id: number; lastFull: { backupName: string } | null; failures24h: number }> };
  assert.equal(body.redis, 'ok');
  const replica = body.instances.find((i) => i.id === world.replicaInstanceId)!;
  assert.equal(replica.lastFull?.backupName, backup.backupName);
  assert.equal(replica.failures24h, 1);

  const health = await fetch(`${server.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { ok: true, metadata: 'ok', redis: 'ok' });
});

test('status page: instances, the backup as Completed, the Error row highlighted and escaped, auto-refresh', async () => {
  const res = await fetch(`${server.url}/`, reader);
  assert.equal(res.status, 200);
  const html = await res.text();
  assert.match(html, /<meta http-equiv="refresh" content="30">/);
  assert.match(html, new RegExp(`<td class="state">Completed</td>[\\s\\S]*?<td>${backup.backupName.replace(/\./g, '\\.')}</td>`));
  assert.match(html, /<tr class="state-Error error">/);
  assert.ok(html.includes('upload failed: &lt;script&gt;alert(1)&lt;/script&gt;'), 'info escaped');
  assert.ok(!html.includes('<script>'), 'no script tag gets through');
  assert.match(html, /STALE/, 'the source has no full backup: stale');
});

test('/queues (bull-board) needs credentials: 401 without or wrong, 200 with Basic or Bearer; mutating requests too', async () => {
  const none = await fetch(`${server.url}/queues`);
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate')!, /^Basic realm="mcb"/);
  assert.equal((await fetch(`${server.url}/queues`, { headers: { authorization: basic(USER, 'wrong') } })).status, 401);
  assert.equal((await fetch(`${server.url}/queues`, { headers: { authorization: 'Bearer wrong' } })).status, 401);
  const ok = await fetch(`${server.url}/queues`, { headers: { authorization: basic(USER, PASSWORD) } });
  assert.equal(ok.status, 200);
  assert.match(await ok.text(), /<div id="root">|bull-board|mcb queues/i);

  const api = await fetch(`${server.url}/queues/api/queues?activeQueue=&status=latest&page=1`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(api.status, 200);
  const names = ((await api.json()) as { queues: Array<{ name: string }> }).queues.map((q) => q.name);
  assert.ok(names.includes(`mcb-instance-${world.replicaInstanceId}`), names.join());
  assert.ok(names.includes(`mcb-instance-${world.sourceInstanceId}`), 'instances without jobs yet are listed from tb_instance');

  // bull-board's retry/remove endpoints are PUT/DELETE: refused without credentials.
  const job = `/queues/api/queues/mcb-instance-${world.replicaInstanceId}/waiting-one/promote`;
  assert.equal((await fetch(`${server.url}${job}`, { method: 'PUT' })).status, 401);
  assert.equal((await fetch(`${server.url}/api/backups`, { method: 'POST' })).status, 401);
  assert.equal(await (await queues.forInstance(world.replicaInstanceId).getJob('waiting-one'))!.getState(), 'delayed');
  assert.equal((await fetch(`${server.url}${job}`, { method: 'PUT', headers: { authorization: basic(USER, PASSWORD) } })).status, 204);
  assert.equal(await (await queues.forInstance(world.replicaInstanceId).getJob('waiting-one'))!.getState(), 'waiting');
});

test('refuses a non-loopback listen address without credentials (exit 2), starts with them, never logs secrets', async () => {
  const open = loadConfig(world.writeConfig({ sections: { server: { listen: '0.0.0.0:0' } } }));
  await assert.rejects(startServer(open, { log: createLogger({ name: 'test-server' }) }), (err: Error) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /\[server\] listen = 0\.0\.0\.0:0 .* is not a loopback address: set \[server\] user and password/);
    return true;
  });
  const noCreds = world.writeConfig();
  const refused = await runMcb(['-f', noCreds, 'server', '--listen', '0.0.0.0:0']);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^mcb: \[server\] listen = 0\.0\.0\.0:0 in .* is not a loopback address/);
  assert.equal(refused.stderr.trim().split('\n').length, 1);

  // The real binary, public address, credentials from the environment: starts, serves, logs no secret.
  const logFile = path.join(world.dir, 'server.log');
  const daemon = startMcb(['-f', noCreds, 'server', '--listen', '0.0.0.0:0'], logFile, { MCB_SERVER_USER: USER, MCB_SERVER_PASSWORD: PASSWORD, MCB_SERVER_TOKEN: TOKEN });
  try {
    let url: string | undefined;
    for (let i = 0; i < 200 && !url; i++) {
      await sleep(100);
      url = /mcb server on (http:\/\/\S+?) \(auth/.exec(readFileSync(logFile, 'utf8'))?.[1];
    }
    assert.ok(url, readFileSync(logFile, 'utf8'));
    const port = new URL(url).port;
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/queues`)).status, 401);
    assert.equal((await fetch(`http://127.0.0.1:${port}/queues`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  } finally {
    assert.equal(await daemon.stop(), 0);
  }
  const log = readFileSync(logFile, 'utf8');
  assert.match(log, /auth: basic\+bearer/);
  assert.ok(!log.includes(PASSWORD) && !log.includes(TOKEN), 'no secret in the log');
});

test('a running full backup shows its stage progress (from the stage job in Redis) on the page and in /api/instances', async () => {
  const backupUuid = randomUUID();
  // On the source instance, so the replica's rows the tests above count stay as they are.
  await world.metadata.createBackup({
    backupUuid, tbInstanceId: world.sourceInstanceId, state: 'Tar', backupType: 'full', startTime: new Date(), backupName: 'bak_running.tar.gz',
  });
  // Delayed: a stage job nobody runs, carrying the progress the tar stage reports.
  const job = await queues.forInstance(world.sourceInstanceId).add('tar', { instanceId: world.sourceInstanceId, backupUuid }, { jobId: `${backupUuid}-tar`, delay: 3600_000 });
  await job.updateProgress({ stage: 'tar', fraction: 0.42 });

  const body = (await (await fetch(`${server.url}/api/instances`, reader)).json()) as { instances: Array<{ id: number; running: Array<{ backupName: string; state: string; stage: string | null; progressPercent: number | null }> }> };
  const source = body.instances.find((i) => i.id === world.sourceInstanceId)!;
  const running = source.running.find((r) => r.backupName === 'bak_running.tar.gz');
  assert.ok(running, JSON.stringify(source.running));
  assert.equal(running.state, 'Tar');
  assert.equal(running.stage, 'tar');
  assert.equal(running.progressPercent, 42);

  const html = await (await fetch(`${server.url}/`, reader)).text();
  assert.match(html, /full Tar <span class="progress">tar 42%<\/span>/);
});

test('mcb_backup_failures_total counts each job that failed for good and never goes down when Error rows are retried or expired', async () => {
  const replica = { instance: String(world.replicaInstanceId), type: 'full' };
  const scrape = async () => parseMetrics(await (await fetch(`${server.url}/metrics`, reader)).text()).samples;
  const failures = async () => sample(await scrape(), 'mcb_backup_failures_total', replica)!;
  const queue = queues.forInstance(world.replicaInstanceId);
  const failedFor = async (jobId: string) => {
    for (let i = 0; i < 300 && (await (await queue.getJob(jobId))?.getState()) !== 'failed'; i++) await sleep(100);
    assert.equal(await (await queue.getJob(jobId))?.getState(), 'failed', jobId);
  };
  const start = await failures();
  assert.equal(sample(await scrape(), 'mcb_backup_failures_total', { ...replica, type: 'verify' }), 0, 'every type is exposed from zero');

  const worker = await startWorker(config, { log: createLogger({ name: 'test-worker' }) });
  try {
    // A real worker fails a chain for good: its clone has no metadata row (a permanent error); the stages after it
    // fail with it, and the chain counts once.
    const backupUuid = randomUUID();
    await queues.addFullChain({ instanceId: world.replicaInstanceId, backupUuid });
    await failedFor(`${backupUuid}-cleanup`);
    assert.equal(await failures(), start + 1);

    // The Error row of before() is expired: the rows in Error go down, the counter does not.
    const errorsBefore = sample(await scrape(), 'mcb_backups', { ...replica, state: 'Error' })!;
    await world.metadata.pool.query("UPDATE full_backup_metadata SET state = 'Expiration' WHERE backup_name = 'bak_broken.tar.gz'");
    const after = await scrape();
    assert.equal(sample(after, 'mcb_backups', { ...replica, state: 'Error' }) ?? 0, errorsBefore - 1);
    assert.equal(sample(after, 'mcb_backup_failures_total', replica), start + 1);

    // Retried, the chain fails again for good: one more failure, nothing taken back.
    await retryJob(queues, (await queue.getJob(`${backupUuid}-cleanup`))!);
    await failedFor(`${backupUuid}-cleanup`);
    assert.equal(await failures(), start + 2);
  } finally {
    await worker.close();
  }
});

/** The store with every query (and connection taken) of its pool counted. */
function countingStore(store: MetadataStore): { store: MetadataStore; queries: () => number } {
  let n = 0;
  const counted = new Set(['query', 'execute', 'getConnection']);
  const pool = new Proxy(store.pool, {
    get(target, prop) {
      const value = Reflect.get(target, prop) as unknown;
      if (typeof value !== 'function') return value;
      const fn = value as (...args: unknown[]) => unknown;
      return counted.has(String(prop)) ? (...args: unknown[]) => (n++, fn.apply(target, args)) : fn.bind(target);
    },
  });
  return { store: Object.create(store, { pool: { value: pool } }) as MetadataStore, queries: () => n };
}

/** `count` instances, each with an older Completed full, a newer one whose restore test failed, a Completed binlog, an Error row and a running full. */
async function addInstancesWithRows(count: number, tag: string): Promise<number[]> {
  const rows = Array.from({ length: count }, (_, i) => [`10.7.0.${i}:3306`, `${tag}-${i}`, `10.7.0.${i}`, 3306, 1]);
  await world.metadata.pool.query('INSERT INTO tb_instance (instance_id, instance_name, string_link, db_port, is_clone) VALUES ?', [rows]);
  const [found] = await world.metadata.pool.query<RowDataPacket[]>('SELECT id FROM tb_instance WHERE instance_name LIKE ? ORDER BY id', [`${tag}-%`]);
  const ids = found.map((r) => Number(r.id));
  const now = Date.now();
  const at = (minutesAgo: number) => new Date(now - minutesAgo * 60_000);
  const backups = ids.flatMap((id) => [
    [randomUUID(), String(id), 'Completed', 'full', `bak_${id}_ok.tar.gz`, at(120), at(110), null, 1000 + id],
    [randomUUID(), String(id), 'Completed', 'full', `bak_${id}_failed-verify.tar.gz`, at(60), at(50), 'failed', 2000 + id],
    [randomUUID(), String(id), 'Completed', 'binlog', `log_${id}_mysql-bin.000007`, at(40), at(30), null, 10],
    [randomUUID(), String(id), 'Error', 'full', `bak_${id}_error.tar.gz`, at(20), null, null, null],
    [randomUUID(), String(id), 'Tar', 'full', `bak_${id}_running.tar.gz`, at(5), null, null, null],
  ]);
  await world.metadata.pool.query(
    `INSERT INTO full_backup_metadata (backup_uuid, tb_instance_id, state, backup_type, backup_name, start_time, end_time, verify_state, backup_bytes, backup_path, bucket_name)
     VALUES ${backups.map(() => "(?, ?, ?, ?, ?, ?, ?, ?, ?, '/tmp', 'local')").join(', ')}`,
    backups.flat(),
  );
  return ids;
}

test('the status page, /api/instances and /metrics run as many SQL queries with 60 instances as with 3', async (t) => {
  const counting = countingStore(world.metadata);
  const counted = await startServer(config, { log: createLogger({ name: 'test-server', quiet: true }), listen: { host: '127.0.0.1', port: 0 }, metadata: counting.store, queueRefreshMs: 3_600_000 });
  const tag = `fleet-${world.id}`;
  try {
    const queriesOf = async (route: string) => {
      const before = counting.queries();
      const res = await fetch(`${counted.url}${route}`, reader);
      assert.equal(res.status, 200, route);
      await res.text();
      return counting.queries() - before;
    };
    const measure = async () => ({ page: await queriesOf('/'), api: await queriesOf('/api/instances'), metrics: await queriesOf('/metrics') });
    await addInstancesWithRows(1, `${tag}-a`);
    assert.equal((await world.metadata.listInstances()).length, 3);
    const three = await measure();
    assert.ok(three.page > 0 && three.api > 0 && three.metrics > 0, `the counter sees the queries: ${JSON.stringify(three)}`);
    const ids = await addInstancesWithRows(57, `${tag}-b`);
    assert.equal((await world.metadata.listInstances()).length, 60);
    const sixty = await measure();
    assert.deepEqual(sixty, three, 'the same number of queries');
    t.diagnostic(`SQL queries per request, 3 and 60 instances alike: page ${sixty.page}, /api/instances ${sixty.api}, /metrics ${sixty.metrics}`);

    // Each instance gets its own rows from the set queries.
    type Api = { instances: Array<{ id: number; lastFull: { backupName: string } | null; lastBinlog: { backupName: string } | null; running: Array<{ backupName: string; stage: string | null }>; failures24h: number; lastFailure: { backupName: string } | null; verifyFailures: Array<{ backupName: string }> }> };
    const body = (await (await fetch(`${counted.url}/api/instances`, reader)).json()) as Api;
    for (const id of [ids[0]!, ids.at(-1)!]) {
      const s = body.instances.find((i) => i.id === id)!;
      assert.equal(s.lastFull?.backupName, `bak_${id}_ok.tar.gz`, 'the newest full whose restore test did not fail');
      assert.deepEqual(s.verifyFailures.map((v) => v.backupName), [`bak_${id}_failed-verify.tar.gz`]);
      assert.equal(s.lastBinlog?.backupName, `log_${id}_mysql-bin.000007`);
      assert.deepEqual(s.running.map((r) => [r.backupName, r.stage]), [[`bak_${id}_running.tar.gz`, 'tar']]);
      assert.equal(s.failures24h, 1);
      assert.equal(s.lastFailure?.backupName, `bak_${id}_error.tar.gz`);
    }
    const metrics = parseMetrics(await (await fetch(`${counted.url}/metrics`, reader)).text()).samples;
    assert.equal(sample(metrics, 'mcb_last_backup_bytes', { instance: String(ids[3]), type: 'full' }), 1000 + ids[3]!);
    assert.equal(sample(metrics, 'mcb_backup_verify_failed', { instance: String(ids[3]) }), 1);
  } finally {
    await counted.close();
    const [ids] = await world.metadata.pool.query<RowDataPacket[]>('SELECT id FROM tb_instance WHERE instance_name LIKE ?', [`${tag}-%`]);
    if (ids.length) {
      const list = ids.map((r) => String(r.id));
      await world.metadata.pool.query('DELETE FROM full_backup_metadata WHERE tb_instance_id IN (?)', [list]);
      await world.metadata.pool.query('DELETE FROM tb_instance WHERE id IN (?)', [list]);
    }
  }
});
