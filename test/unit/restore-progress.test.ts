// The progress lines of a restore's download: share, rate, elapsed, time left; the closing totals; nothing
// periodic for a download shorter than the interval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatDone, formatDuration, formatProgress, reportProgress } from '../../src/restore/progress.ts';

test('a progress line: share of the object, MB/s, elapsed and time left', () => {
  assert.equal(
    formatProgress('downloading and extracting bak_1_x.tar.gz', { bytes: 250_000_000, total: 1_000_000_000, elapsedMs: 5000 }),
    'downloading and extracting bak_1_x.tar.gz: 25.0% of 1000.0 MB, 50.0 MB/s, 5 s elapsed, about 15 s left',
  );
  assert.equal(formatProgress('x', { bytes: 0, total: 10, elapsedMs: 5000 }), 'x: 0.0% of 0.0 MB, 0.0 MB/s, 5 s elapsed');
  assert.equal(formatDone('x', { bytes: 1_000_000_000, total: 1_000_000_000, elapsedMs: 12_500 }), 'x: 1000.0 MB in 12.5 s (80.0 MB/s)');
  assert.deepEqual([formatDuration(59.4), formatDuration(61), formatDuration(3725)], ['59 s', '1 min 01 s', '1 h 02 min']);
});

test('lines come every interval while running, and one closing line only when completed', async () => {
  const lines: string[] = [];
  let bytes = 0;
  const r = reportProgress('x', 100, () => bytes, (l) => lines.push(l), 30);
  while (lines.length < 2) {
    bytes += 10;
    await sleep(10);
  }
  r.stop(true);
  assert.match(lines[0]!, /^x: \d+\.\d% of 0\.0 MB/);
  assert.match(lines.at(-1)!, /^x: 0\.0 MB in \d+\.\d s/);
  const quiet: string[] = [];
  reportProgress('y', 100, () => 0, (l) => quiet.push(l), 10_000).stop(false);
  assert.deepEqual(quiet, []);
});
