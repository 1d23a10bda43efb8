// The achieved RPO in `mcb status` (text, JSON, --check), /metrics and the status page, over rows written to the
// real metadata center: streamer rows (mcb_binlog_streams) fresh, old and in a gap, and for an instance that does
// not stream, its archived binlogs and last binlog check.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import { saveStreamStatus } from '../../src/metadata/binlog-segments.ts';
import { recordBinlogCheck } from '../../src/metadata/job-outcomes.ts';
import { instanceStatuses, statusProblems } from '../../src/ops/status.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { runMcb } from '../support/spawn.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

let world: World;
/** A config with binlog_stream on and max_rpo_seconds = 70. */
let streamingFile: string;
let streaming: Config;
let server: RunningServer;
/** Instances: streaming fresh, reconnecting for ten minutes, in a gap, streaming on but without a streamer row. */
let fresh: number;
let behind: number;
let gapped: number;
let rowless: number;

const MINUTE = 60_000;
const ago = (ms: number) => new Date(Date.now() - ms);

async function addInstance(tag: string): Promise<number> {
  const name = `rpo-${tag}-${randomId()}`;
  return world.metadata.addInstance({ instanceId: `10.0.0.7:${name}`, instanceName: name, stringLink: '10.0.0.7', dbPort: 3306, isClone: true });
}

async function addArchivedBinlog(instanceId: number, end: Date): Promise<void> {
  await world.metadata.createBackup({
    backupUuid: `rpo-${randomId()}`, tbInstanceId: instanceId, state: 'Completed', backupType: 'binlog',
    startTime: new Date(end.getTime() - 30 * MINUTE), endTime: end, backupName: `log_${instanceId}_mysql-bin.000003`, binlogFile: 'mysql-bin.000003',
  });
}

before(async () => {
  world = await createWorld({ bucket: false });
  streamingFile = world.writeConfig({ backupConf: { binlog_stream: 'on', max_rpo_seconds: '70' } });
  streaming = loadConfig(streamingFile);
  [fresh, behind, gapped, rowless] = [await addInstance('fresh'), await addInstance('behind'), await addInstance('gap'), await addInstance('rowless')];
  const now = new Date();
  await saveStreamStatus(world.metadata, fresh, { state: 'streaming', workerHost: 'w1', binlogFile: 'mysql-bin.000004', seriesStart: 1700000000, position: 4711, coveredAt: ago(4000) }, now);
  await saveStreamStatus(world.metadata, behind, { state: 'reconnecting', workerHost: 'w1', coveredAt: ago(10 * MINUTE), lastError: 'connect ECONNREFUSED <b>127.0.0.1:3306</b>' }, now);
  await saveStreamStatus(world.metadata, gapped, { state: 'gap', workerHost: 'w1', coveredAt: ago(5000), lastError: 'mysql-bin.000002 was purged before it was streamed' }, now);
  // Archived binlogs older than the streamer's coverage do not change its figure; the row-less one has only those.
  for (const id of [fresh, rowless]) await addArchivedBinlog(id, ago(20 * MINUTE));
  server = await startServer(streaming, { log: createLogger({ name: 'rpo-server', quiet: true }), listen: { host: '127.0.0.1', port: 0 }, metadata: world.metadata, queueRefreshMs: 3_600_000 });
});
after(async () => {
  await server?.close();
  await world?.cleanup();
});

interface RpoJson {
  seconds: number | null;
  source: string | null;
  thresholdSeconds: number;
  exceeded: boolean;
  gap: boolean;
  stream: { state: string; lastError: string | null; position: number | null } | null;
}

test('mcb status: the achieved RPO per instance with its source, the stream state, OVER and GAP; --check names them', async () => {
  const json = await runMcb(['-f', streamingFile, 'status', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const rpo = new Map((JSON.parse(json.stdout) as { instances: Array<{ id: number; rpo: RpoJson }> }).instances.map((i) => [i.id, i.rpo]));
  const f = rpo.get(fresh)!;
  assert.deepEqual([f.source, f.exceeded, f.gap, f.thresholdSeconds, f.stream?.state, f.stream?.position], ['stream', false, false, 70, 'streaming', 4711]);
  assert.ok(f.seconds! >= 4 && f.seconds! < 30, `fresh RPO ${f.seconds}`);
  const b = rpo.get(behind)!;
  assert.deepEqual([b.source, b.exceeded, b.gap, b.stream?.state], ['stream', true, false, 'reconnecting']);
  assert.ok(Math.abs(b.seconds! - 600) < 30, `behind RPO ${b.seconds}`);
  assert.deepEqual([rpo.get(gapped)!.gap, rpo.get(gapped)!.exceeded], [true, false]);
  // Streaming on, no streamer row: only the archived binlogs count (the binlog job does not rotate while streaming).
  const r = rpo.get(rowless)!;
  assert.deepEqual([r.source, r.exceeded, r.stream], ['binlog job', true, null]);
  assert.ok(Math.abs(r.seconds! - 1200) < 30, `row-less RPO ${r.seconds}`);

  const text = await runMcb(['-f', streamingFile, 'status']);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`instance ${fresh} [^\\n]*\\n(?:.*\\n)*?  RPO          \\d+s \\(stream\\)  stream streaming\\n`));
  assert.match(text.stdout, /RPO {10}10m \(stream\) {2}OVER 70s {2}stream reconnecting: connect ECONNREFUSED <b>127\.0\.0\.1:3306<\/b>\n/);
  assert.match(text.stdout, /RPO {10}\d+s \(stream\) {2}GAP {2}stream gap: mysql-bin\.000002 was purged/);
  assert.match(text.stdout, /RPO {10}20m \(binlog job\) {2}OVER 70s\n/);

  const check = await runMcb(['-f', streamingFile, 'status', '--check']);
  assert.equal(check.code, 1);
  const lines = check.stderr.trim().split('\n');
  const about = (id: number) => lines.filter((l) => l.startsWith(`mcb: instance ${id} `) && /RPO|GAP/.test(l));
  assert.deepEqual(about(fresh), [], check.stderr);
  assert.deepEqual(about(behind).map((l) => l.replace(/^mcb: instance \d+ \(.*?\): /, '')), ['achieved RPO 10m (stream) over max_rpo_seconds 70; stream reconnecting: connect ECONNREFUSED <b>127.0.0.1:3306</b>']);
  assert.match(about(gapped).join('\n'), /binlog stream GAP: mysql-bin\.000002 was purged before it was streamed/);
  assert.match(about(rowless).join('\n'), /achieved RPO 20m \(binlog job\) over max_rpo_seconds 70; no binlog stream row/);
});

test('streaming off: the RPO comes from the binlog job (archived end, or last check less max_rpo_minutes) and never alerts', async () => {
  const id = await addInstance('job');
  await addArchivedBinlog(id, ago(3 * 3600_000)); // an idle server: its last rotation is hours old
  await saveStreamStatus(world.metadata, id, { state: 'stopped', coveredAt: ago(4 * 3600_000), lastError: null }, new Date());
  await recordBinlogCheck(world.metadata, id, ago(2 * MINUTE));

  const [off] = await instanceStatuses(world.config, world.metadata, undefined, { instanceId: id });
  assert.equal(world.config.backup.binlogStream, false);
  // The last check (2 min ago) proved no transaction older than max_rpo_minutes (5) was left in the active binlog.
  assert.equal(off!.rpo.source, 'binlog job');
  assert.ok(Math.abs(off!.rpo.seconds! - 7 * 60) <= 5, `RPO ${off!.rpo.seconds}`);
  assert.equal(off!.rpo.thresholdSeconds, 5 * 60 + 60, 'the default: max_rpo_minutes + a minute');
  assert.equal(off!.rpo.stream?.state, 'stopped', 'the old streamer row is still shown');
  assert.deepEqual([off!.rpo.exceeded, off!.rpo.gap], [false, false], 'with streaming off the binlog STALE check is the alert');
  assert.ok(!statusProblems([off!]).some((p) => /RPO|GAP/.test(p)), statusProblems([off!]).join('\n'));

  // The same rows with streaming on: the job does not rotate then, so only the archived end counts.
  const [on] = await instanceStatuses(streaming, world.metadata, undefined, { instanceId: id });
  assert.equal(on!.rpo.source, 'binlog job');
  assert.ok(Math.abs(on!.rpo.seconds! - 3 * 3600) <= 5, `RPO ${on!.rpo.seconds}`);
  assert.equal(on!.rpo.exceeded, true);
  assert.ok(statusProblems([on!]).some((p) => /achieved RPO 3h 0m \(binlog job\) over max_rpo_seconds 70; stream stopped$/.test(p)), statusProblems([on!]).join('\n'));

  // A streamer that covered more than the job proved wins: the later instant is the figure.
  await saveStreamStatus(world.metadata, id, { state: 'streaming', coveredAt: ago(3000) }, new Date());
  const [streamed] = await instanceStatuses(world.config, world.metadata, undefined, { instanceId: id });
  assert.equal(streamed!.rpo.source, 'stream');
  assert.ok(streamed!.rpo.seconds! < 30);
});

test('/metrics: mcb_binlog_rpo_seconds, mcb_binlog_rpo_threshold_seconds and mcb_binlog_stream_up per instance', async () => {
  const res = await fetch(`${server.url}/metrics`);
  assert.equal(res.status, 200);
  const text = await res.text();
  for (const name of ['mcb_binlog_rpo_seconds', 'mcb_binlog_rpo_threshold_seconds', 'mcb_binlog_stream_up']) {
    assert.match(text, new RegExp(`^# HELP ${name} .+\\n# TYPE ${name} gauge$`, 'm'));
  }
  const value = (name: string, id: number) => {
    const m = new RegExp(`^${name}\\{instance="${id}"\\} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  assert.ok(value('mcb_binlog_rpo_seconds', fresh)! < 30);
  assert.ok(Math.abs(value('mcb_binlog_rpo_seconds', behind)! - 600) < 30);
  assert.ok(Math.abs(value('mcb_binlog_rpo_seconds', rowless)! - 1200) < 30);
  assert.equal(value('mcb_binlog_rpo_seconds', world.sourceInstanceId), undefined, 'no binlog, no stream: unknown, left out');
  assert.equal(value('mcb_binlog_rpo_threshold_seconds', fresh), 70);
  assert.equal(value('mcb_binlog_rpo_threshold_seconds', world.sourceInstanceId), 70);
  assert.deepEqual([fresh, behind, gapped].map((id) => value('mcb_binlog_stream_up', id)), [1, 0, 0]);
  assert.equal(value('mcb_binlog_stream_up', rowless), undefined, 'only instances with a streamer row');
});

test('status page: an RPO column with the source, OVER and GAP in the alert style, the stream error escaped', async () => {
  const html = await (await fetch(`${server.url}/`)).text();
  assert.match(html, /<th>last binlog<\/th><th>RPO<\/th>/);
  const row = (id: number) => new RegExp(`<tr>\\s*<td>${id}</td>[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';
  assert.match(row(fresh), /<td class="ok">\d+s \(stream\)<br><small>stream streaming<\/small><\/td>/);
  assert.match(row(behind), /<td class="stale">10m \(stream\) <b>OVER 70 s<\/b><br><small>stream reconnecting: connect ECONNREFUSED &lt;b&gt;127\.0\.0\.1:3306&lt;\/b&gt;<\/small><\/td>/);
  assert.match(row(gapped), /<td class="stale">\d+s \(stream\) <b>GAP<\/b><br><small>stream gap: mysql-bin\.000002 was purged/);
  assert.match(row(rowless), /<td class="stale">20m \(binlog job\) <b>OVER 70 s<\/b><\/td>/);
  assert.match(row(world.sourceInstanceId), /<td class="">unknown<\/td>/);
});
