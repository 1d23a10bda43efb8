// Where a point-in-time replay stops across several binlog files, which GTIDs it must and must not leave in the
// restored server, and the chain checks (src/restore/replay.ts), on synthetic binlogs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GtidSet } from '../../src/binlog/index.ts';
import { BinlogChainGapError, checkReplayed, decideReplay, firstGtidMissingFromClone, previousGtidsOf } from '../../src/restore/replay.ts';
import { BinlogBuilder, UUID_A } from '../support/binlog-builder.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mcb-replay-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const T0 = 1_700_000_000;
/** A binlog whose transactions are UUID_A:from..to, committed one second apart from `t`, after PREVIOUS_GTIDS 1..from-1. */
async function binlog(name: string, from: number, to: number, t: number): Promise<string> {
  const b = new BinlogBuilder('crc32', t);
  b.previousGtids(from > 1 ? [[UUID_A, [[1, from - 1]]]] : []);
  for (let gno = from; gno <= to; gno++) b.transaction(UUID_A, gno, gno, t + (gno - from));
  b.rotate('next', { timestamp: t + 100 });
  const file = path.join(dir, name);
  await writeFile(file, b.build());
  return file;
}

const gtids = (text: string) => GtidSet.parse(text);

test('a time stop cuts the first file that passes it; later files are left out and their GTIDs excluded', async () => {
  const f1 = await binlog('b.000001', 1, 3, T0); // commits T0, T0+1, T0+2 (+123 µs)
  const f2 = await binlog('b.000002', 4, 6, T0 + 10); // T0+10 .. T0+12
  const f3 = await binlog('b.000003', 7, 8, T0 + 20);
  const r = await decideReplay([f1, f2, f3], { kind: 'time', atMicros: (T0 + 11) * 1e6 + 123 });
  assert.deepEqual(r.files, [f1, f2]);
  assert.ok(r.stopPosition && r.stopPosition > 0);
  assert.equal(r.last?.gtid, `${UUID_A}:5`);
  assert.equal(r.expected.toString(), `${UUID_A}:1-5`);
  assert.equal(r.excluded.toString(), `${UUID_A}:6-8`);
  assert.equal(r.reached, true);
});

test('a stop before the first transaction of a file drops that file; latest keeps everything', async () => {
  const f1 = await binlog('c.000001', 1, 2, T0);
  const f2 = await binlog('c.000002', 3, 4, T0 + 10);
  const r = await decideReplay([f1, f2], { kind: 'time', atMicros: (T0 + 5) * 1e6 });
  assert.deepEqual(r.files, [f1]);
  assert.equal(r.stopPosition, undefined, 'the first file is replayed whole');
  assert.equal(r.excluded.toString(), `${UUID_A}:3-4`);
  const all = await decideReplay([f1, f2], { kind: 'end' });
  assert.deepEqual(all.files, [f1, f2]);
  assert.equal(all.reached, false);
  assert.equal(all.expected.toString(), `${UUID_A}:1-4`);
});

test('a GTID stop: just before it, or just after it with include', async () => {
  const f1 = await binlog('d.000001', 1, 3, T0);
  const f2 = await binlog('d.000002', 4, 6, T0 + 10);
  const before = await decideReplay([f1, f2], { kind: 'gtid', gtids: `${UUID_A}:5`, include: false });
  assert.equal(before.expected.toString(), `${UUID_A}:1-4`);
  assert.equal(before.excluded.toString(), `${UUID_A}:5-6`);
  const through = await decideReplay([f1, f2], { kind: 'gtid', gtids: `${UUID_A}:5`, include: true });
  assert.equal(through.expected.toString(), `${UUID_A}:1-5`);
  assert.equal(through.excluded.toString(), `${UUID_A}:6`);
});

test('files that do not continue each other (another series, a missing file) are refused', async () => {
  const f1 = await binlog('e.000001', 1, 3, T0);
  const f3 = await binlog('e.000003', 7, 8, T0 + 20); // 4-6 were in a file that is not here
  await assert.rejects(decideReplay([f1, f3], { kind: 'end' }), (e: unknown) => {
    assert.ok(e instanceof BinlogChainGapError);
    assert.match((e as Error).message, new RegExp(`between e\\.000001 and e\\.000003: ${UUID_A}:4 was executed before the second began`));
    return true;
  });
});

test('the chain must reach the clone, and the proof names the first missing or extra GTID', async () => {
  const f = await binlog('f.000002', 4, 6, T0);
  assert.equal(firstGtidMissingFromClone(await previousGtidsOf(f), gtids(`${UUID_A}:1-5`)), undefined);
  assert.equal(firstGtidMissingFromClone(await previousGtidsOf(f), gtids(`${UUID_A}:1-2`)), `${UUID_A}:3`);
  const decision = { expected: gtids(`${UUID_A}:1-5`), excluded: gtids(`${UUID_A}:6-8`) };
  assert.deepEqual(checkReplayed(gtids(`${UUID_A}:1-5`), decision), {});
  assert.deepEqual(checkReplayed(gtids(`${UUID_A}:1-3`), decision), { missing: `${UUID_A}:4` });
  assert.deepEqual(checkReplayed(gtids(`${UUID_A}:1-7`), decision), { extra: `${UUID_A}:6` });
});
