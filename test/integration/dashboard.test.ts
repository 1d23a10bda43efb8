// dashboards/mcb-backups.json: every panel's SQL (Grafana macros expanded as Grafana would) runs on the real
// metadata center (MariaDB or MySQL) and returns the rows the panel is about.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2/promise';
import { repoRoot } from '../support/env.ts';
import { createWorld, randomId, type World } from '../support/world.ts';


interface Panel {
  title: string;
  targets: Array<{ rawSql: string; format: string }>;
}

function expand(sql: string, instances: number[]): string {
  return sql
    .replace(/\$__timeFilter\((\w+)\)/g, '($1 BETWEEN NOW() - INTERVAL 7 DAY AND NOW() + INTERVAL 1 DAY)')
    .replace(/\$\{instance:sqlstring\}/g, instances.map((i) => `'${i}'`).join(','));
}

// MySQL 8+ (what the seed's users run) and MariaDB differ in default collations: both must work.
for (const metadataOn of ['default', 'mysql'] as const) {
test(`every dashboard query runs on the metadata center (${metadataOn === 'mysql' ? 'MySQL 9.7' : 'the configured one'}) and sees the rows`, async () => {
  const world: World = await createWorld({ bucket: false, metadataOn });
  try {
  const dash = JSON.parse(readFileSync(path.join(repoRoot, 'dashboards', 'mcb-backups.json'), 'utf8')) as {
    panels: Panel[];
    templating: { list: Array<{ name: string; query: string }> };
  };
  const r = world.replicaInstanceId;
  const now = Date.now();
  await world.metadata.createBackup({ backupUuid: `d-${randomId()}`, tbInstanceId: r, state: 'Completed', backupType: 'full', startTime: new Date(now - 7200_000), endTime: new Date(now - 3600_000), backupName: 'bak_a.tar.gz', backupBytes: 1000 });
  await world.metadata.createBackup({ backupUuid: `d-${randomId()}`, tbInstanceId: r, state: 'Error', backupType: 'full', startTime: new Date(now - 600_000), backupName: 'bak_b.tar.gz', info: 'tar failed' });
  await world.metadata.createBackup({ backupUuid: `d-${randomId()}`, tbInstanceId: r, state: 'Completed', backupType: 'binlog', startTime: new Date(now - 1800_000), endTime: new Date(now - 1200_000), backupName: 'mysql-bin.000001', binlogFile: 'mysql-bin.000001' });
  await world.metadata.createBackup({ backupUuid: `d-${randomId()}`, tbInstanceId: r, state: 'Completed', backupType: 'binlog', startTime: new Date(now - 900_000), endTime: new Date(now - 300_000), backupName: 'mysql-bin.000002', binlogFile: 'mysql-bin.000002' });

  const instanceVar = dash.templating.list.find((v) => v.name === 'instance')!;
  const [vars] = await world.metadata.pool.query<RowDataPacket[]>(instanceVar.query);
  assert.deepEqual(vars.map((v) => v.__value), [String(world.sourceInstanceId), String(r)]);

  const results = new Map<string, RowDataPacket[]>();
  for (const panel of dash.panels) {
    for (const t of panel.targets) {
      const [rows] = await world.metadata.pool.query<RowDataPacket[]>(expand(t.rawSql, [world.sourceInstanceId, r]));
      results.set(panel.title, rows);
    }
  }
  assert.equal(dash.panels.length, 6);
  const states = results.get('Backups by state (time range)')!;
  assert.deepEqual(states.map((s) => [s.metric, Number(s.value)]), [['Completed', 3], ['Error', 1]]);
  const ages = results.get('Last Completed backup age per instance')!;
  const replica = ages.find((a) => Number(a.instance) === r)!;
  assert.ok(Math.abs(Number(replica.full_age_hours) - 1) < 0.1, `full age ${replica.full_age_hours}`);
  assert.ok(Math.abs(Number(replica.binlog_age_minutes) - 5) <= 1, `binlog age ${replica.binlog_age_minutes}`);
  assert.equal(Number(replica.failures_24h), 1);
  assert.equal(ages.find((a) => Number(a.instance) === world.sourceInstanceId)!.last_full, null);
  assert.deepEqual(results.get('Full backup size over time')!.map((s) => Number(s.value)), [1000]);
  assert.equal(results.get('Backup duration over time')!.length, 3);
  const chain = results.get('Binlog chain')!;
  assert.deepEqual(chain.map((c) => c.binlog_file), ['mysql-bin.000002', 'mysql-bin.000001']);
  assert.equal(Number(chain[0]!.gap_seconds), 300, 'the 5 minutes between file 1 ending and file 2 starting');
  assert.deepEqual(results.get('Failures and running backups')!.map((f) => f.info), ['tar failed']);
  } finally {
    await world.cleanup();
  }
});
}
