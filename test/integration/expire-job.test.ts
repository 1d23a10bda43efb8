// The `expire` job against the real metadata center and S3 server, with a clock the test controls (ctx.now):
// rows are inserted directly with the start/end times a test needs, objects put in the world's bucket.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { RowDataPacket } from 'mysql2/promise';
import { loadConfig } from '../../src/config/index.ts';
import { expireJob } from '../../src/jobs/expire.ts';
import { ExpireFailedError, type ExpireResult } from '../../src/jobs/expire/report.ts';
import { scheduledJobTypes } from '../../src/config/index.ts';
import { jobRegistry } from '../../src/jobs/registry.ts';
import { setInstanceRetention } from '../../src/metadata/expiry-queries.ts';
import type { BackupState } from '../../src/metadata/index.ts';
import { backupUuidFor, binlogObjectName, fullBackupObjectName } from '../../src/naming.ts';
import { directContext } from '../support/context.ts';
import { servicesEnv } from '../support/env.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { createWorld, randomId, type World } from '../support/world.ts';
import { runMcb } from '../support/spawn.ts';
import { createLogger } from '../../src/log/index.ts';
import { MinioObjectStore, type ObjectStore } from '../../src/storage/index.ts';
import { startWorker } from '../../src/workers/index.ts';

const HOUR = 3600_000;
const DAY = 24 * HOUR;
/** Day 0 of every scenario, 02:00 local time (whole seconds: datetime columns have no fraction). */
const T0 = new Date(2025, 2, 1, 2, 0, 0).getTime();
const at = (days: number, hours = 0) => new Date(T0 + days * DAY + hours * HOUR);

let world: World;
let proxy: TcpProxy | undefined;
before(async () => {
  world = await createWorld();
});
after(async () => {
  await proxy?.close();
  await world?.cleanup();
});

async function newInstance(): Promise<{ id: number; name: string }> {
  const name = `expire-${randomId()}`;
  const id = await world.metadata.addInstance({ instanceId: `10.0.0.1:${name}`, instanceName: name, stringLink: '10.0.0.1', dbPort: 3306, isClone: true });
  return { id, name };
}

interface Seeded {
  uuid: string;
  key: string;
  type: 'full' | 'binlog';
  label: string;
}

async function addRow(
  instanceId: number,
  type: 'full' | 'binlog',
  start: Date,
  end: Date,
  opts: { state?: BackupState; label?: string; object?: boolean; overdueDay?: number } = {},
): Promise<Seeded> {
  const label = opts.label ?? `${type}@${start.toISOString()}`;
  const key =
    type === 'full' ? fullBackupObjectName(instanceId, start, world.metadata.timeZone, '.gz') : binlogObjectName(instanceId, `mysql-bin.${String(start.getTime() / HOUR).padStart(8, '0')}`);
  const uuid = backupUuidFor(`expire-test:${instanceId}:${label}:${randomId()}`);
  await world.metadata.createBackup({
    backupUuid: uuid,
    tbInstanceId: instanceId,
    state: opts.state ?? 'Completed',
    backupType: type,
    startTime: start,
    endTime: end,
    backupPath: '/data/clone_bak',
    backupName: key,
    bucketName: world.bucket,
    objectKey: key,
    backupSize: '1K',
    overdueDay: opts.overdueDay ?? 7,
    info: 'test row',
  });
  if (opts.object !== false) await world.minio.putObject(world.bucket, key, Buffer.from(`${label}\n`));
  return { uuid, key, type, label };
}

async function exists(key: string): Promise<boolean> {
  try {
    await world.minio.statObject(world.bucket, key);
    return true;
  } catch (err) {
    if ((err as { code?: string }).code === 'NotFound' || (err as { code?: string }).code === 'NoSuchKey') return false;
    throw err;
  }
}

async function row(s: Seeded) {
  return (await world.metadata.getBackup(s.uuid))!;
}

/** state / is_delete / overdue_day / updated_at of every row of an instance, for "nothing changed" checks. */
async function snapshot(instanceId: number): Promise<string> {
  const [rows] = await world.metadata.pool.query<RowDataPacket[]>(
    'SELECT id, state, is_delete, overdue_day, updated_at, info FROM full_backup_metadata WHERE tb_instance_id = ? ORDER BY id',
    [String(instanceId)],
  );
  return JSON.stringify(rows);
}

async function expire(now: Date, payload: { instanceId?: number; dryRun?: boolean }, config = world.config): Promise<ExpireResult> {
  const ctx = directContext(config, world.metadata, { now: () => now, jobId: `expire-test-${randomId()}` });
  return expireJob.handle(expireJob.parse(payload), ctx);
}

/** Fulls at the given days (02:00, recovery point 10 min later) and 12-hour binlogs from day 0 to `binlogDays`. */
async function seedChain(instanceId: number, fullDays: number[], binlogUntilDay: number) {
  const fulls = new Map<number, Seeded>();
  for (const d of fullDays) fulls.set(d, await addRow(instanceId, 'full', at(d), new Date(at(d).getTime() + 10 * 60_000), { label: `full-d${d}` }));
  const binlogs: Seeded[] = [];
  for (let k = 0; k < binlogUntilDay * 2; k++) {
    // binlog k spans [day0 00:00 + 12h*k, +12h): the first starts 2 h before the first full.
    const start = at(0, -2 + 12 * k);
    binlogs.push(await addRow(instanceId, 'binlog', start, new Date(start.getTime() + 12 * HOUR), { label: `binlog-${k}` }));
  }
  return { fulls, binlogs };
}

test('expire is registered with the worker and scheduled by the producer', () => {
  assert.equal(jobRegistry.expire, expireJob);
  assert.ok((scheduledJobTypes as readonly string[]).includes('expire'));
  assert.equal(world.config.schedule.expire, '30 9 * * *');
  assert.deepEqual(expireJob.parse({}), {});
  assert.deepEqual(expireJob.parse({ instanceId: 3, dryRun: true }), { instanceId: 3, dryRun: true });
  assert.throws(() => expireJob.parse({ instanceId: 'x' }), /instanceId/);
});

test('a chain of fulls and binlogs: the right objects kept, the rest deleted; reruns the same day delete nothing; dashboards still make sense', async () => {
  const inst = await newInstance();
  // Binlogs kept 2 days for this instance only (mcb_instance_retention); fulls 7 days from the config.
  await setInstanceRetention(world.metadata, inst.id, { binlogStorageDays: 2 });
  const { fulls, binlogs } = await seedChain(inst.id, [0, 3, 6, 9], 10);
  // Non-final and failed rows, all old enough to have expired: never touched.
  const doing = await addRow(inst.id, 'full', at(1, 5), at(1, 5), { state: 'Doing', label: 'doing', object: false });
  const uploading = await addRow(inst.id, 'binlog', at(0, 1), at(0, 2), { state: 'Uploading', label: 'uploading' });
  const errored = await addRow(inst.id, 'full', at(2, 5), at(2, 5), { state: 'Error', label: 'error' });
  // An object of this instance nobody recorded.
  const orphanKey = `bak_${inst.id}_20200101000000.tar.gz`;
  await world.minio.putObject(world.bucket, orphanKey, Buffer.from('orphan'));

  const now = at(10, 7.5); // day 10, 09:30
  const untouched = { doing: await row(doing), uploading: await row(uploading), errored: await row(errored) };
  const result = await expire(now, { instanceId: inst.id });

  // Fulls expire 7 days after they started: d0 and d3 (expired d10 02:00) go, d6 and d9 stay.
  // Binlogs expire after 2 days: those started up to d8 09:30 are expired (k <= 16); the ones reaching
  // past the recovery point of the oldest kept full (d6 02:10) are still needed: k = 12 ([d6 00:00, d6 12:00))
  // onward. So k = 0..11 go.
  const expectDeleted = new Set([fulls.get(0)!, fulls.get(3)!, ...binlogs.slice(0, 12)]);
  const inst0 = result.instances[0]!;
  assert.equal(result.instances.length, 1);
  assert.equal(inst0.policySource, 'mcb_instance_retention');
  assert.deepEqual([inst0.policy.fullDays, inst0.policy.binlogDays, inst0.policy.minFullBackups], [7, 2, 1]);
  assert.equal(result.deleted, expectDeleted.size);
  assert.equal(result.failed, 0);

  for (const s of [...fulls.values(), ...binlogs]) {
    const r = await row(s);
    if (expectDeleted.has(s)) {
      assert.equal(await exists(s.key), false, `${s.label} object deleted`);
      assert.equal(r.state, 'Expiration', `${s.label} row expired`);
      assert.equal(r.isDelete, 1);
      assert.equal(r.overdueDay, 0);
    } else {
      assert.equal(await exists(s.key), true, `${s.label} object kept`);
      assert.equal(r.state, 'Completed', `${s.label} row kept`);
      assert.equal(r.isDelete, 0);
    }
  }
  // overdue_day = whole days left; an expired row kept by a rule shows 1, never 0.
  const overdue = async (s: Seeded) => (await row(s)).overdueDay;
  assert.equal(await overdue(fulls.get(6)!), 3); // expires d13 02:00: 2 d 16.5 h left
  assert.equal(await overdue(fulls.get(9)!), 6);
  for (let k = 12; k <= 16; k++) assert.equal(await overdue(binlogs[k]!), 1, `binlog-${k} kept for roll-forward shows 1`);
  assert.equal(await overdue(binlogs[17]!), 1); // started d8 12:00, expires d10 12:00
  assert.equal(await overdue(binlogs[18]!), 1); // expires d11 00:00
  assert.equal(await overdue(binlogs[19]!), 2); // expires d11 12:00
  const reasonOf = (s: Seeded) => inst0.decisions.find((d) => d.backupUuid === s.uuid)!.reason;
  assert.match(reasonOf(binlogs[13]!), /needed to roll forward from full backup/);
  assert.match(reasonOf(fulls.get(0)!), /^expired:/);

  // Non-final and Error rows: untouched, objects too.
  assert.deepEqual(await row(doing), untouched.doing);
  assert.deepEqual(await row(uploading), untouched.uploading);
  assert.deepEqual(await row(errored), untouched.errored);
  assert.equal(await exists(uploading.key), true);
  assert.equal(await exists(errored.key), true);

  // The orphan is reported, not deleted; objects that have rows are not orphans.
  assert.deepEqual(inst0.orphans.map((o) => o.key), [orphanKey]);
  assert.match(inst0.orphans[0]!.reason, /no metadata row/);
  assert.equal(await exists(orphanKey), true);

  // Several more runs the same day: nothing more deleted, no row changes (not even updated_at).
  const snap = await snapshot(inst.id);
  for (const when of [now, new Date(now.getTime() + 5 * 60_000), new Date(now.getTime() + 0.4 * HOUR), now]) {
    const again = await expire(when, { instanceId: inst.id });
    assert.equal(again.deleted, 0);
    assert.equal(again.instances[0]!.overdueUpdated, 0);
    assert.equal(again.orphanCount, 1);
  }
  assert.equal(await snapshot(inst.id), snap);

  // The seed's dashboard SQL (example/BackupDashboard.json) still reads sensibly.
  const [byState] = await world.metadata.pool.query<RowDataPacket[]>(
    `select fm.state as state, count(*) as n from full_backup_metadata as fm
       JOIN tb_instance as tb on fm.tb_instance_id = tb.id where tb.instance_name = ? GROUP BY fm.state ORDER BY fm.state`,
    [inst.name],
  );
  assert.deepEqual(
    byState.map((r) => [r.state, Number(r.n)]),
    [['Completed', 2 + 8], ['Doing', 1], ['Error', 1], ['Expiration', 2 + 12], ['Uploading', 1]],
  );
  const [fullTable] = await world.metadata.pool.query<RowDataPacket[]>(
    `select fm.backup_name, fm.state, fm.overdue_day from full_backup_metadata as fm
       JOIN tb_instance as tb on fm.tb_instance_id = tb.id
      where backup_type = 'full' and fm.is_delete = 0 and tb.instance_name = ? and fm.state = 'Completed' order by fm.start_time desc`,
    [inst.name],
  );
  assert.deepEqual(fullTable.map((r) => [r.backup_name, Number(r.overdue_day)]), [[fulls.get(9)!.key, 6], [fulls.get(6)!.key, 3]]);
  // Every backup the "not deleted" tables list really is in the bucket.
  const [listed] = await world.metadata.pool.query<RowDataPacket[]>(
    `select fm.backup_name from full_backup_metadata as fm JOIN tb_instance as tb on fm.tb_instance_id = tb.id
      where fm.state = 'Completed' and fm.is_delete = 0 and tb.instance_name = ?`,
    [inst.name],
  );
  for (const r of listed) assert.equal(await exists(r.backup_name), true, `${r.backup_name} listed as kept and present`);
  // What the seed's cleaner would pick (overdue_day = 0 among Completed) is empty: no kept row looks expired.
  const [seedPick] = await world.metadata.pool.query<RowDataPacket[]>(
    `select id from full_backup_metadata where state = 'Completed' and is_delete = 0 and overdue_day = 0 and tb_instance_id = ?`,
    [String(inst.id)],
  );
  assert.equal(seedPick.length, 0);
});

test('skipping days catches up; running many times a day does not shorten retention', async () => {
  // Two identical instances: one expired every day (and several times a day), one only twice.
  const daily = await newInstance();
  const skipping = await newInstance();
  const fullDays = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const a = await seedChain(daily.id, fullDays, 10);
  const b = await seedChain(skipping.id, fullDays, 10);

  // Day 5: nothing is 7 days old yet, however often it runs (the seed would have halved retention).
  for (let i = 0; i < 6; i++) {
    const r = await expire(at(5, 7.5 + i), { instanceId: daily.id });
    assert.equal(r.deleted, 0, `run ${i} on day 5 deletes nothing`);
  }
  assert.equal((await expire(at(5, 7.5), { instanceId: skipping.id })).deleted, 0);

  for (let d = 6; d <= 12; d++) await expire(at(d, 7.5), { instanceId: daily.id });
  // The skipping instance's next run is on day 12: it catches up in one go.
  const caughtUp = await expire(at(12, 7.5), { instanceId: skipping.id });
  // Fulls started up to d5 09:30 are expired: d0..d5. Binlogs started up to then: k = 0..10, all ending
  // before the oldest kept full (d6), so none is needed.
  assert.equal(caughtUp.deleted, 6 + 11);

  const states = async (chain: typeof a) =>
    Promise.all([...chain.fulls.values(), ...chain.binlogs].map(async (s) => {
      const r = await row(s);
      return `${s.label}:${r.state}:${r.isDelete}:${r.overdueDay}:${await exists(s.key)}`;
    }));
  assert.deepEqual(await states(b), await states(a), 'skipping days ends where running daily does');
  for (const d of [0, 5]) assert.equal((await row(b.fulls.get(d)!)).state, 'Expiration');
  for (const d of [6, 9]) assert.equal((await row(b.fulls.get(d)!)).state, 'Completed');
  assert.equal((await row(b.fulls.get(6)!)).overdueDay, 1); // expires d13 02:00
});

test('the newest full backup survives however old it is, with the binlogs it needs', async () => {
  const inst = await newInstance();
  const { fulls, binlogs } = await seedChain(inst.id, [0, 1], 3);
  const result = await expire(at(30, 7.5), { instanceId: inst.id });
  // Full d1 is the newest Completed full: kept (min_full_backups = 1); d0 goes. Binlogs reaching past d1's
  // recovery point (d1 02:10) are kept: k = 2 ([d1 00:00, d1 12:00)) onward; k = 0, 1 go.
  assert.equal(result.deleted, 1 + 2);
  const newest = await row(fulls.get(1)!);
  assert.equal(newest.state, 'Completed');
  assert.equal(newest.overdueDay, 1);
  assert.equal(await exists(fulls.get(1)!.key), true);
  assert.match(result.instances[0]!.decisions.find((d) => d.backupUuid === fulls.get(1)!.uuid)!.reason, /newest completed full backup \(min_full_backups=1\)/);
  assert.equal((await row(fulls.get(0)!)).state, 'Expiration');
  for (const [k, s] of binlogs.entries()) {
    assert.equal((await row(s)).state, k < 2 ? 'Expiration' : 'Completed', `binlog-${k}`);
    assert.equal(await exists(s.key), k >= 2);
  }
  // An in-progress newer full does not count as the newest Completed one.
  await addRow(inst.id, 'full', at(29), at(29), { state: 'Uploading', label: 'newer-uploading' });
  assert.equal((await expire(at(31, 7.5), { instanceId: inst.id })).deleted, 0);
  assert.equal((await row(fulls.get(1)!)).state, 'Completed');
});

test('a dry run reports exactly what would be deleted and why, and changes nothing', async () => {
  const inst = await newInstance();
  const { fulls, binlogs } = await seedChain(inst.id, [0, 8], 9);
  const snap = await snapshot(inst.id);
  const result = await expire(at(9, 7.5), { instanceId: inst.id, dryRun: true });
  assert.equal(result.dryRun, true);
  assert.equal(result.deleted, 0);
  // Full d0 expired (d7 02:00) and is not the newest; binlogs started up to d2 09:30 (k = 0..4) are
  // expired and end before d8, so not needed.
  const would = result.instances[0]!.decisions.filter((d) => d.outcome === 'would-delete');
  assert.deepEqual(would.map((d) => d.backupUuid).sort(), [fulls.get(0)!, ...binlogs.slice(0, 5)].map((s) => s.uuid).sort());
  for (const d of would) {
    assert.equal(d.action, 'delete');
    assert.match(d.reason, /^expired: completed (full|binlog) backup started .*, retention 7 d$/);
    assert.equal(d.overdueDay, 0);
  }
  assert.equal(result.wouldDelete, would.length);
  const keptFull = result.instances[0]!.decisions.find((d) => d.backupUuid === fulls.get(8)!.uuid)!;
  assert.equal(keptFull.outcome, 'kept');
  assert.equal(keptFull.overdueDay, 6); // expires d15 02:00: 5 d 16.5 h left
  assert.equal(await snapshot(inst.id), snap, 'no row changed');
  for (const s of [...fulls.values(), ...binlogs]) assert.equal(await exists(s.key), true, `${s.label} still stored`);

  // The real run then does what the dry run said.
  const real = await expire(at(9, 7.5), { instanceId: inst.id });
  assert.deepEqual(
    real.instances[0]!.decisions.filter((d) => d.outcome === 'deleted').map((d) => d.backupUuid).sort(),
    would.map((d) => d.backupUuid).sort(),
  );
});

test('S3 down: the deletes fail, rows stay Completed, the job fails; the next run (S3 up) deletes them', async () => {
  const s3 = servicesEnv().s3;
  proxy = await startTcpProxy(s3.endPoint, s3.port);
  const config = loadConfig(world.writeConfig({ s3Port: proxy.port }));
  const inst = await newInstance();
  const { fulls, binlogs } = await seedChain(inst.id, [0, 8], 9);
  const doomed = [fulls.get(0)!, ...binlogs.slice(0, 5)];
  const original = await Promise.all(doomed.map(row));

  proxy.down();
  let failure: ExpireFailedError | undefined;
  await assert.rejects(
    expire(at(9, 7.5), { instanceId: inst.id }, config),
    (err: unknown) => {
      assert.ok(err instanceof ExpireFailedError, String(err));
      failure = err;
      return true;
    },
  );
  assert.equal(failure!.result.failed, doomed.length);
  assert.equal(failure!.result.deleted, 0);
  assert.match(failure!.message, /6 failed/);
  for (const [i, s] of doomed.entries()) {
    assert.deepEqual(await row(s), original[i], `${s.label} left exactly as it was`);
    assert.equal(await exists(s.key), true);
  }
  // Kept rows still got their overdue_day (the metadata center was up).
  assert.equal((await row(fulls.get(8)!)).overdueDay, 6);

  proxy.up();
  const retry = await expire(at(9, 8), { instanceId: inst.id }, config);
  assert.equal(retry.deleted, doomed.length);
  assert.equal(retry.failed, 0);
  for (const s of doomed) {
    const r = await row(s);
    assert.equal(r.state, 'Expiration');
    assert.equal(r.isDelete, 1);
    assert.equal(await exists(s.key), false);
  }
});

test('without an instance id: every instance with rows in the bucket, and orphans of unknown instances reported', async () => {
  const inst = await newInstance();
  const { fulls } = await seedChain(inst.id, [0, 8], 0);
  const strangerKey = `log_987654_mysql-bin.000042`;
  await world.minio.putObject(world.bucket, strangerKey, Buffer.from('x'));
  const dry = await expire(at(9, 7.5), { dryRun: true });
  const mine = dry.instances.find((i) => i.instanceId === inst.id)!;
  assert.ok(mine, 'the instance is found from its rows in the bucket');
  assert.deepEqual(mine.decisions.filter((d) => d.outcome === 'would-delete').map((d) => d.backupUuid), [fulls.get(0)!.uuid]);
  assert.ok(dry.orphans.some((o) => o.key === strangerKey && o.instanceId === 987654));
  assert.equal(await exists(strangerKey), true);
  assert.equal(await exists(fulls.get(0)!.key), true);
});

test('a delete that does not take (stat still finds the object) leaves the row Completed; an absent object is just recorded', async () => {
  const inst = await newInstance();
  const { fulls, binlogs } = await seedChain(inst.id, [0, 8], 0);
  const gone = await addRow(inst.id, 'binlog', at(0, 3), at(0, 4), { label: 'already-gone', object: false });
  const real = new MinioObjectStore({ ...world.config.oss!, bucket: world.bucket } as never, world.bucket);
  // A store whose remove silently does nothing: only the stat afterwards can tell.
  const liar: ObjectStore = Object.assign(Object.create(real) as ObjectStore, { remove: async () => undefined });
  const ctx = directContext(world.config, world.metadata, { now: () => at(9, 7.5), storage: liar });
  await assert.rejects(expireJob.handle({ instanceId: inst.id }, ctx), (err: unknown) => {
    assert.ok(err instanceof ExpireFailedError);
    const d = err.result.instances[0]!.decisions.find((x) => x.backupUuid === fulls.get(0)!.uuid)!;
    assert.equal(d.outcome, 'delete-failed');
    assert.match(d.error!, /still in .* after delete/);
    return true;
  });
  assert.equal((await row(fulls.get(0)!)).state, 'Completed');
  assert.equal((await row(fulls.get(0)!)).isDelete, 0);
  assert.equal(await exists(fulls.get(0)!.key), true);
  // The row whose object was already absent is expired: stat says NotFound, which is what deletion must reach.
  assert.equal((await row(gone)).state, 'Expiration');
  void binlogs;

  // A real run deletes it; an object put back under an expired row's name is reported, not deleted.
  const ok = await expire(at(9, 7.5), { instanceId: inst.id });
  assert.equal(ok.deleted, 1);
  await world.minio.putObject(world.bucket, fulls.get(0)!.key, Buffer.from('back'));
  const again = await expire(at(9, 8), { instanceId: inst.id });
  assert.equal(again.deleted, 0);
  assert.deepEqual(again.instances[0]!.orphans.map((o) => o.key), [fulls.get(0)!.key]);
  assert.match(again.instances[0]!.orphans[0]!.reason, /says it was deleted/);
  assert.equal(await exists(fulls.get(0)!.key), true);
});

test('mcb enqueue expire --instance ID --dry-run --wait, then without --dry-run, through a real worker', async () => {
  const inst = await newInstance();
  const { fulls } = await seedChain(inst.id, [0, 8], 0);
  const configFile = world.writeConfig({ instanceId: inst.id });
  // The worker's clock is day 9: the old full is expired, the newer one is not.
  const worker = await startWorker(loadConfig(configFile), { log: createLogger({ name: 'expire-worker' }), now: () => at(9, 7.5) });
  try {
    const dry = await runMcb(['-f', configFile, 'enqueue', 'expire', '--instance', String(inst.id), '--dry-run', '--wait'], { env: { MCB_LOG_LEVEL: 'warn' } });
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`#\\d+  ${fulls.get(0)!.key}  DELETE  expired: completed full backup`));
    assert.match(dry.stdout, new RegExp(`#\\d+  ${fulls.get(8)!.key}  keep  kept: within retention`));
    assert.match(dry.stdout, /1 would be deleted, 0 failed/);
    assert.equal(await exists(fulls.get(0)!.key), true);
    assert.equal((await row(fulls.get(0)!)).state, 'Completed');

    const run = await runMcb(['-f', configFile, 'enqueue', 'expire', '--instance', String(inst.id), '--wait'], { env: { MCB_LOG_LEVEL: 'warn' } });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, new RegExp(`${fulls.get(0)!.key}  deleted  expired:`));
    assert.match(run.stdout, /1 deleted, 0 failed/);
    assert.equal(await exists(fulls.get(0)!.key), false);
    assert.equal((await row(fulls.get(0)!)).state, 'Expiration');

    const bad = await runMcb(['-f', configFile, 'enqueue', 'expire', '--instance', '99999999'], { env: { MCB_LOG_LEVEL: 'warn' } });
    assert.equal(bad.code, 2);

    // A metadata-center-only config (no tb_instance_id, like the seed cleaner's): runs in the CLI process.
    const centerFile = configFile.replace(/\.ini$/, '-center.ini');
    writeFileSync(centerFile, readFileSync(configFile, 'utf8').replace(/^tb_instance_id = .*$/m, ''));
    const here = await runMcb(['-f', centerFile, 'enqueue', 'expire', '--dry-run'], { env: { MCB_LOG_LEVEL: 'warn' } });
    assert.equal(here.code, 0, here.stderr);
    assert.match(here.stdout, /running expire here for every instance in the bucket/);
    assert.match(here.stdout, new RegExp(`instance ${inst.id}: full 7 d, binlog 7 d, min_full_backups 1`));
    assert.match(here.stdout, /\(dry run\) in bucket/);
  } finally {
    await worker.close();
  }
});
