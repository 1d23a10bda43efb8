// The achieved RPO from the streamer's row and the binlog job's facts (src/ops/rpo.ts), without a database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BinlogStreamStatus } from '../../src/metadata/binlog-segments.ts';
import { achievedRpo, binlogJobCoveredAt } from '../../src/ops/rpo.ts';

const now = new Date('2025-06-01T12:00:00Z');
const ago = (s: number) => new Date(now.getTime() - s * 1000);
const off = { binlogStream: false, maxRpoMinutes: 5, maxRpoSeconds: 360 };
const on = { binlogStream: true, maxRpoMinutes: 5, maxRpoSeconds: 70 };

function row(state: BinlogStreamStatus['state'], coveredAt: Date | null, lastError: string | null = null): BinlogStreamStatus {
  return { instanceId: 1, workerHost: 'w', state, binlogFile: 'mysql-bin.000001', seriesStart: 1, position: 100, coveredAt, lastCommitTime: null, lastError, updatedAt: ago(1) };
}

test('binlog job: the archived end, or with streaming off the last check less max_rpo_minutes when later', () => {
  assert.equal(binlogJobCoveredAt(off, ago(3600), ago(60))?.getTime(), ago(360).getTime());
  assert.equal(binlogJobCoveredAt(off, ago(100), ago(60))?.getTime(), ago(100).getTime(), 'a rotation after the bound');
  assert.equal(binlogJobCoveredAt(on, ago(3600), ago(60))?.getTime(), ago(3600).getTime(), 'no rotation while streaming');
  assert.equal(binlogJobCoveredAt(off, null, ago(60))?.getTime(), ago(360).getTime());
  assert.equal(binlogJobCoveredAt({ binlogStream: false, maxRpoMinutes: 0 }, ago(3600), ago(60))?.getTime(), ago(60).getTime(), 'max_rpo_minutes 0 rotates every run');
  assert.equal(binlogJobCoveredAt(off, null, null), null);
});

test('achieved RPO: the later source wins, alerts only with streaming on', () => {
  const streamed = achievedRpo(on, { stream: row('streaming', ago(4)), lastArchivedEnd: ago(600), lastCheck: null, now });
  assert.deepEqual([streamed.seconds, streamed.source, streamed.exceeded, streamed.gap, streamed.stream?.state], [4, 'stream', false, false, 'streaming']);

  const stale = achievedRpo(on, { stream: row('stopped', ago(7200)), lastArchivedEnd: ago(600), lastCheck: ago(10), now });
  assert.deepEqual([stale.seconds, stale.source, stale.exceeded], [600, 'binlog job', true]);

  const gap = achievedRpo(on, { stream: row('gap', ago(5), 'purged'), lastArchivedEnd: null, lastCheck: null, now });
  assert.deepEqual([gap.gap, gap.exceeded, gap.stream?.lastError], [true, false, 'purged']);

  const quiet = achievedRpo(off, { stream: row('gap', ago(7200)), lastArchivedEnd: ago(7200), lastCheck: ago(30), now });
  assert.deepEqual([quiet.seconds, quiet.source, quiet.exceeded, quiet.gap], [330, 'binlog job', false, false]);

  const unknown = achievedRpo(on, { stream: row('reconnecting', null), lastArchivedEnd: null, lastCheck: null, now });
  assert.deepEqual([unknown.seconds, unknown.coveredAt, unknown.source, unknown.exceeded], [null, null, null, false]);

  const future = achievedRpo(on, { stream: row('streaming', new Date(now.getTime() + 5000)), lastArchivedEnd: null, lastCheck: null, now });
  assert.equal(future.seconds, 0, 'a clock ahead of ours is no negative RPO');
});
