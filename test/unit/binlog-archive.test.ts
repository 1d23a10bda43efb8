// The pure parts of binlog archiving outside the plan: object names that never collide, and the preconditions of
// point-in-time restore.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pitrPreconditionFailures } from '../../src/jobs/binlog/preconditions.ts';
import type { BinlogSettings } from '../../src/mysql/data-node.ts';
import { binlogFileOfObject, binlogObjectNameCandidates, parseObjectName } from '../../src/naming.ts';

test('object names: the seed\'s name first, then .<start>, then .<start ms + n>; all read back as the binlog\'s file name', () => {
  const names = [...binlogObjectNameCandidates(3, 'mysql-bin.000012', 1764600000, '')];
  assert.deepEqual(names.slice(0, 3), ['log_3_mysql-bin.000012', 'log_3_mysql-bin.000012.1764600000', 'log_3_mysql-bin.000012.1764600000001']);
  assert.equal(new Set(names).size, names.length, 'all different');
  const gz = [...binlogObjectNameCandidates(3, 'mysql-bin.000012', 1764600000, '.gz')];
  assert.equal(gz[1], 'log_3_mysql-bin.000012.1764600000.gz');
  for (const name of [...names, ...gz]) {
    const parsed = parseObjectName(name);
    assert.equal(parsed?.type, 'binlog', name);
    if (parsed?.type !== 'binlog') continue;
    assert.equal(parsed.instanceId, 3);
    assert.equal(parsed.compression, name.endsWith('.gz') ? 'gzip' : 'none');
    assert.equal(binlogFileOfObject(parsed.binlogFile), 'mysql-bin.000012', name);
  }
});

const good: BinlogSettings = { logBin: true, binlogFormat: 'ROW', gtidMode: 'ON', logReplicaUpdates: true, replicaChannels: 0 };

test('preconditions: a ROW, GTID server passes; each unmet condition is named with what to set', () => {
  assert.deepEqual(pitrPreconditionFailures(good), []);
  assert.deepEqual(pitrPreconditionFailures({ ...good, binlogFormat: null }), [], 'a server without binlog_format logs rows only');
  const mixed = pitrPreconditionFailures({ ...good, binlogFormat: 'MIXED' });
  assert.deepEqual(mixed.map((f) => f.condition), ['binlog_format']);
  assert.equal(mixed[0]!.message, 'binlog_format is MIXED: point-in-time restore needs ROW; SET PERSIST binlog_format = ROW');
  const both = pitrPreconditionFailures({ ...good, binlogFormat: 'statement', gtidMode: 'OFF_PERMISSIVE' });
  assert.deepEqual(both.map((f) => f.condition), ['binlog_format', 'gtid_mode']);
  assert.match(both[1]!.message, /^gtid_mode is OFF_PERMISSIVE: point-in-time restore needs ON; SET PERSIST enforce_gtid_consistency = ON/);
  assert.deepEqual(pitrPreconditionFailures({ ...good, logBin: false }).map((f) => f.condition), ['log_bin']);
});

test('preconditions: a replica must log what it replicates (log_replica_updates); a source need not', () => {
  assert.deepEqual(pitrPreconditionFailures({ ...good, logReplicaUpdates: false }), []);
  const replica = pitrPreconditionFailures({ ...good, logReplicaUpdates: false, replicaChannels: 1 });
  assert.deepEqual(replica.map((f) => f.condition), ['log_replica_updates']);
  assert.match(replica[0]!.message, /replica with log_replica_updates = OFF/);
  assert.deepEqual(pitrPreconditionFailures({ ...good, replicaChannels: 1 }), []);
});
