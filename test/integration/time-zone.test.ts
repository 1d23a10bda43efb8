// One time zone for every process (docs/architecture.md, "Time zones"): a worker in TZ=Asia/Shanghai and DBAs
// in TZ=UTC and TZ=Asia/Shanghai see the same backup at the same instant, and the metadata center holds the
// same DATETIME text whichever process wrote it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import mysql from 'mysql2/promise';
import { loadConfig } from '../../src/config/index.ts';
import { MetadataStore } from '../../src/metadata/index.ts';
import { parseObjectName } from '../../src/naming.ts';
import { formatInZone, parseCompact, parseTimeZone } from '../../src/time/zone.ts';
import { repoRoot } from '../support/env.ts';
import { runMcb, startMcb, type Daemon } from '../support/spawn.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

let world: World;
let worker: Daemon;

before(async () => {
  world = await createWorld();
  worker = startMcb(['-f', world.configFile, 'worker'], path.join(world.dir, 'worker.log'), { TZ: 'Asia/Shanghai' });
});
after(async () => {
  await worker?.stop();
  await world?.cleanup();
});

interface ProbeRow {
  zone: string;
  startTime: string | null;
  endTime: string | null;
  stageStartedAt: string | null;
}

const probeSource = (src: (p: string) => string) => `
import { loadConfig } from ${JSON.stringify(src('config/index.ts'))};
import { MetadataStore } from ${JSON.stringify(src('metadata/index.ts'))};
const [ini, uuid, instanceId, at] = process.argv.slice(2);
const metadata = await MetadataStore.connect(loadConfig(ini).metadata);
try {
  if (at) {
    await metadata.createBackup({ backupUuid: uuid, tbInstanceId: Number(instanceId), state: 'Error', backupType: 'binlog',
      startTime: new Date(at), endTime: new Date(at), info: 'time zone probe' });
  }
  const row = await metadata.getBackup(uuid);
  const iso = (d) => (d ? d.toISOString() : null);
  console.log(JSON.stringify({ zone: metadata.timeZone.name, startTime: iso(row.startTime), endTime: iso(row.endTime), stageStartedAt: iso(row.stageStartedAt) }));
} finally {
  await metadata.close();
}
`;

/** Writes (when `at` is given) and reads back a backup row through MetadataStore in a process with this TZ. */
async function probe(tz: string, ini: string, uuid: string, at?: Date): Promise<ProbeRow> {
  const file = path.join(world.dir, 'zone-probe.mts');
  writeFileSync(file, probeSource((p) => path.join(repoRoot, 'src', p)));
  const args = ['--import', 'tsx', file, ini, uuid, String(world.sourceInstanceId), ...(at ? [at.toISOString()] : [])];
  const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: repoRoot, env: { ...process.env, TZ: tz, MCB_LOG_LEVEL: 'warn' } });
  return JSON.parse(stdout) as ProbeRow;
}

/** The DATETIME columns as the metadata center stores them (text, no conversion by any client). */
async function storedText(uuid: string): Promise<{ start: string; end: string }> {
  const m = world.config.metadata;
  const conn = await mysql.createConnection({ host: m.host, port: m.port, user: m.user, password: m.password, database: m.database });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>(
      'SELECT CAST(start_time AS CHAR) AS start, CAST(end_time AS CHAR) AS end FROM full_backup_metadata WHERE backup_uuid = ?',
      [uuid],
    );
    return { start: String(rows[0]!.start), end: String(rows[0]!.end) };
  } finally {
    await conn.end();
  }
}

test('a full backup by a TZ=Asia/Shanghai worker: DBAs in TZ=UTC and TZ=Asia/Shanghai get the same plan and the same instants', async () => {
  const id = String(world.replicaInstanceId);
  const enqueued = await runMcb(['-f', world.configFile, 'enqueue', 'full', '--instance', id, '--wait', '--timeout', '300'], {
    env: { TZ: 'Asia/Shanghai' },
    timeoutMs: 330_000,
  });
  assert.equal(enqueued.code, 0, `${enqueued.stdout}\n${enqueued.stderr}`);
  const zone = world.metadata.timeZone;
  const [row] = await world.metadata.listBackups({ instanceId: world.replicaInstanceId, type: 'full', states: ['Completed'] });
  assert.ok(row?.endTime && row.startTime, 'a Completed full row');
  const ageSeconds = (Date.now() - row.endTime.getTime()) / 1000;
  assert.ok(ageSeconds >= 0 && ageSeconds < 600, `the recovery point is minutes old, not hours off: ${row.endTime.toISOString()}`);
  // The object name's timestamp is the row's start, in the metadata time zone (not the worker's Asia/Shanghai).
  const name = parseObjectName(row.backupName);
  assert.equal(name?.type, 'full');
  assert.equal(parseCompact(name!.type === 'full' ? name!.timestamp : '', zone).toISOString(), row.startTime.toISOString());

  const plan = (tz: string, at: string) =>
    runMcb(['-f', world.configFile, 'restore', 'plan', '--instance', id, '--at', at, '--json'], { env: { TZ: tz } });
  const utc = await plan('UTC', 'latest');
  const shanghai = await plan('Asia/Shanghai', 'latest');
  assert.equal(utc.code, 0, utc.stderr);
  assert.equal(shanghai.code, 0, shanghai.stderr);
  assert.equal(shanghai.stdout, utc.stdout, 'the same plan, byte for byte');
  const parsed = JSON.parse(utc.stdout) as { timeZone: string; full: { objectKey: string; recoveryPoint: string } };
  assert.equal(parsed.timeZone, zone.name);
  assert.equal(parsed.full.objectKey, row.objectKey);
  assert.equal(parsed.full.recoveryPoint, formatInZone(row.endTime, zone));

  // --at is read in the metadata time zone: the printed recovery point, typed back from a TZ=Asia/Shanghai host,
  // is that very instant (it used to be read 8 hours off and refused).
  const atRecovery = await plan('Asia/Shanghai', parsed.full.recoveryPoint);
  assert.equal(atRecovery.code, 0, atRecovery.stderr);
  assert.equal((JSON.parse(atRecovery.stdout) as { full: { objectKey: string } }).full.objectKey, row.objectKey);

  // The row read back by processes in either zone is the same instant.
  const inUtc = await probe('UTC', world.configFile, row.backupUuid);
  const inShanghai = await probe('Asia/Shanghai', world.configFile, row.backupUuid);
  assert.equal(inUtc.endTime, row.endTime.toISOString());
  assert.deepEqual(inShanghai, inUtc);
});

test('rows written at the same instant by TZ=Asia/Shanghai and TZ=UTC processes hold the same DATETIME text', async () => {
  const at = new Date('2026-12-01T07:04:05Z');
  const fromShanghai = `tz-sh-${randomId()}`;
  const fromUtc = `tz-utc-${randomId()}`;
  await probe('Asia/Shanghai', world.configFile, fromShanghai, at);
  await probe('UTC', world.configFile, fromUtc, at);
  const expected = formatInZone(at, world.metadata.timeZone);
  assert.deepEqual(await storedText(fromShanghai), { start: expected, end: expected });
  assert.deepEqual(await storedText(fromUtc), { start: expected, end: expected });
  assert.equal((await world.metadata.getBackup(fromShanghai))!.startTime!.toISOString(), at.toISOString());
});

test('[metadata-link] time_zone: DATETIMEs are written in that zone, and the server NOW() agrees with them', async () => {
  const m = world.config.metadata;
  const ini = world.writeConfig({
    sections: {
      'metadata-link': { host: m.host, port: String(m.port), user: m.user, password: m.password, database: m.database, charset: m.charset, time_zone: 'Asia/Shanghai' },
    },
  });
  const at = new Date('2026-12-01T07:04:05Z');
  const uuid = `tz-conf-${randomId()}`;
  const before = Date.now();
  const row = await probe('UTC', ini, uuid, at);
  assert.equal(row.zone, 'Asia/Shanghai');
  assert.equal(row.startTime, at.toISOString());
  assert.deepEqual(await storedText(uuid), { start: '2026-12-01 15:04:05', end: '2026-12-01 15:04:05' });
  // stage_started_at comes from the server's NOW(), in the session zone set to match.
  const stage = Date.parse(row.stageStartedAt!);
  assert.ok(Math.abs(stage - before) < 60_000, `stage_started_at ${row.stageStartedAt} is now, not hours off`);
  assert.deepEqual(parseTimeZone(row.zone), parseTimeZone('Asia/Shanghai'));
});

/** Whether the metadata server has time zone tables (SET time_zone = 'Europe/Berlin' works). */
async function hasTimeZoneTables(): Promise<boolean> {
  const m = world.config.metadata;
  const conn = await mysql.createConnection({ host: m.host, port: m.port, user: m.user, password: m.password, database: m.database });
  try {
    const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM mysql.time_zone_name');
    return Number(rows[0]!.n) > 0;
  } finally {
    await conn.end();
  }
}

test('[metadata-link] time_zone with DST: the session zone is its name with time zone tables; without them, the server must keep its offsets', async () => {
  const m = world.config.metadata;
  const ini = world.writeConfig({
    sections: {
      'metadata-link': { host: m.host, port: String(m.port), user: m.user, password: m.password, database: m.database, charset: m.charset, time_zone: 'Europe/Berlin' },
    },
  });
  const link = loadConfig(ini).metadata;
  if (await hasTimeZoneTables()) {
    const store = await MetadataStore.connect(link);
    await store.close();
    assert.equal(store.timeZoneInfo.sessionTimeZone, 'Europe/Berlin');
    return;
  }
  // A fixed session offset would make NOW() drift an hour from Europe/Berlin after a DST change.
  const serverZone = world.metadata.timeZone;
  if (serverZone.name === 'Europe/Berlin') return; // the server's own zone keeps the offsets: accepted without a SET
  await assert.rejects(MetadataStore.connect(link), (err: Error) => {
    assert.match(err.message, /Europe\/Berlin observes daylight saving time, and the metadata server has no time zone tables/);
    assert.match(err.message, /mysql_tzinfo_to_sql/);
    assert.doesNotMatch(err.message, /\n/, 'one line');
    return true;
  });
});
