// parseBinlogFileName / binlogFileName: the one reading of `<base>.<number>` that the job, retention and restore share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { binlogFileName, parseBinlogFileName } from '../../src/binlog/index.ts';

test('parse: base, sequence number and digit width', () => {
  assert.deepEqual(parseBinlogFileName('mysql-bin.000042'), { base: 'mysql-bin', seq: 42, digits: 6 });
  assert.deepEqual(parseBinlogFileName('binlog.1000000'), { base: 'binlog', seq: 1000000, digits: 7 });
  // The last dot separates the number: a reset-suffixed object name reads as base `mysql-bin.000042`.
  assert.deepEqual(parseBinlogFileName('mysql-bin.000042.1764600000'), { base: 'mysql-bin.000042', seq: 1764600000, digits: 10 });
  assert.deepEqual(parseBinlogFileName('host.a.000001'), { base: 'host.a', seq: 1, digits: 6 });
  for (const bad of ['mysql-bin.index', 'mysql-bin', 'mysql-bin.', 'mysql-bin.00004a', '']) assert.equal(parseBinlogFileName(bad), undefined, bad);
});

test('format: zero-padded to the width, wider when the number needs it; parse reads it back', () => {
  assert.equal(binlogFileName('mysql-bin', 43, 6), 'mysql-bin.000043');
  assert.equal(binlogFileName('binlog', 1000000, 6), 'binlog.1000000');
  for (const name of ['mysql-bin.000042', 'binlog.1000000', 'x.7']) {
    const p = parseBinlogFileName(name)!;
    assert.equal(binlogFileName(p.base, p.seq, p.digits), name);
  }
});
