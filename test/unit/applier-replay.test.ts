// The pure parts of the relay-log replay (src/restore/applier-replay.ts): which servers can use it, which logged
// statements make it fall back (events), and the relay log names the binlogs get in the restored datadir.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applierUnavailableForVersion, isEventDdl, relayLogNames } from '../../src/restore/applier-replay.ts';

test('the applier needs MySQL 8.0.27 or later; older servers are named in the fallback reason', () => {
  for (const v of ['8.0.27', '8.0.40-log', '8.4.3', '9.7.4-2', '10.0.0']) assert.equal(applierUnavailableForVersion(v), undefined, v);
  assert.equal(applierUnavailableForVersion('8.0.26'), 'mysqld 8.0.26 is older than 8.0.27');
  assert.equal(applierUnavailableForVersion('5.7.44-log'), 'mysqld 5.7.44-log is older than 8.0.27');
  assert.match(applierUnavailableForVersion('unknown')!, /is not a MySQL version/);
});

test('relay log names: the replay channel of the restore relay log, numbered from 1, with their index', () => {
  assert.deepEqual(relayLogNames(3), {
    files: ['mcb-restore-relay-mcb_replay.000001', 'mcb-restore-relay-mcb_replay.000002', 'mcb-restore-relay-mcb_replay.000003'],
    index: 'mcb-restore-relay-mcb_replay.index',
  });
});

test('event DDL (the applier would store the event REPLICA_SIDE_DISABLED) is recognised as the server logs it', () => {
  for (const q of [
    'CREATE DEFINER=`root`@`localhost` EVENT `d`.`tick` ON SCHEDULE EVERY 1 SECOND DO INSERT INTO d.t VALUES (1)',
    "CREATE DEFINER='app user'@'%' EVENT IF NOT EXISTS e ON SCHEDULE AT NOW() DO DELETE FROM t",
    'create definer = current_user() event e on schedule every 1 day do select 1',
    'ALTER DEFINER=`root`@`localhost` EVENT `d`.`tick` DISABLE',
    'ALTER EVENT e ENABLE',
    '  CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1',
  ]) assert.equal(isEventDdl(q), true, q);
  for (const q of [
    'CREATE TABLE event (id int)',
    'CREATE TABLE events_log (id int)',
    'DROP EVENT e',
    'CREATE DEFINER=`root`@`localhost` PROCEDURE p() BEGIN CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1; END',
    'INSERT INTO t VALUES (\'CREATE EVENT\')',
    'BEGIN',
  ]) assert.equal(isEventDdl(q), false, q);
});
