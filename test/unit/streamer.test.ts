// The binlog streamer's pure parts: where a stream resumes, when the bucket covers what the server showed, when
// mysqlbinlog counts as stalled, the reconnect backoff, the server id, and mysqlbinlog's command line (the password
// only in its environment).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mysqlbinlogCommand } from '../../src/streamer/mysqlbinlog-process.ts';
import { compareBinlogFiles, nextBinlogFile } from '../../src/binlog/index.ts';
import { newestReached, reachedObserved, spoolBehind, stallCount, type StreamedFile } from '../../src/streamer/position.ts';
import { firstStreamFile, isMissingFileError, reconnectBackoffMs, resumePoint, streamServerId } from '../../src/streamer/resume.ts';

const seg = (binlogFile: string, endPos: number, closesFile = false) => ({ binlogFile, seriesStart: 1_700_000_000, endPos, closesFile });
const file = (name: string, uploadedEnd: number, received = uploadedEnd, closed = false): StreamedFile => ({ name, uploadedEnd, received, closed });

test('resume: nothing recorded starts at the active binlog, never at the server\'s first', () => {
  assert.deepEqual(resumePoint(undefined, false, 'mysql-bin.000042'), { kind: 'from-start', file: 'mysql-bin.000042', reason: 'no segment recorded: the active binlog' });
});

test('resume: a file its segments do not close, not archived whole, is read again and uploaded from the last end', () => {
  assert.deepEqual(resumePoint(seg('mysql-bin.000007', 9334), false, 'mysql-bin.000009'), { kind: 'restream', file: 'mysql-bin.000007', seriesStart: 1_700_000_000, skipTo: 9334 });
});

test('resume: after a file closed by its last segment, or archived whole, the next file from its start', () => {
  const closed = resumePoint(seg('mysql-bin.000007', 9334, true), false, 'mysql-bin.000009');
  assert.equal(closed.kind, 'from-start');
  assert.equal(closed.file, 'mysql-bin.000008');
  const archived = resumePoint(seg('mysql-bin.000007', 9334), true, 'mysql-bin.000009');
  assert.equal(archived.file, 'mysql-bin.000008');
  assert.match(archived.kind === 'from-start' ? archived.reason : '', /archived whole/);
});

test('next binlog name keeps the base and the padding, and grows past it', () => {
  assert.equal(nextBinlogFile('mysql-bin.000041'), 'mysql-bin.000042');
  assert.equal(nextBinlogFile('binlog.999999'), 'binlog.1000000');
  assert.throws(() => nextBinlogFile('nonumber'), /not a binlog file name/);
});

test('binlog files order by number within a base', () => {
  assert.ok(compareBinlogFiles('mysql-bin.000010', 'mysql-bin.000009') > 0);
  assert.ok(compareBinlogFiles('mysql-bin.999999', 'mysql-bin.1000000') < 0);
  assert.equal(compareBinlogFiles('mysql-bin.000003', 'mysql-bin.000003'), 0);
});

test('covered: the observed file uploaded up to the observed position, or closed; never a file this run did not stream', () => {
  const files = [file('mysql-bin.000005', 9000, 9000, true), file('mysql-bin.000006', 1200)];
  assert.ok(reachedObserved(files, { file: 'mysql-bin.000006', position: 1200 }));
  assert.ok(!reachedObserved(files, { file: 'mysql-bin.000006', position: 1201 }));
  assert.ok(reachedObserved(files, { file: 'mysql-bin.000005', position: 8000 }), 'a later file streamed: the observed one is whole in the bucket');
  assert.ok(!reachedObserved(files, { file: 'mysql-bin.000007', position: 4 }));
  assert.ok(!reachedObserved(files, { file: 'mysql-bin.000001', position: 157 }), 'binlogs reset: a name before the run is not covered');
  assert.ok(!reachedObserved([file('mysql-bin.000005', 500, 9000)], { file: 'mysql-bin.000005', position: 8000 }), 'received is not uploaded');
});

test('covered_at is the newest observation reached', () => {
  const at = (s: number) => new Date(s * 1000);
  const obs = [
    { at: at(1), position: { file: 'b.000001', position: 100 } },
    { at: at(2), position: { file: 'b.000001', position: 200 } },
    { at: at(3), position: { file: 'b.000001', position: 300 } },
  ];
  assert.equal(newestReached(obs, [file('b.000001', 250)]), 1);
  assert.equal(newestReached(obs, [file('b.000001', 50)]), -1);
  assert.equal(newestReached(obs, [file('b.000001', 300)]), 2);
});

test('stall: counted only while mysqlbinlog is alive and lacks what the server had an interval ago', () => {
  const behind = { file: 'b.000002', position: 500 };
  assert.ok(spoolBehind([file('b.000002', 0, 400)], behind));
  assert.ok(!spoolBehind([file('b.000002', 0, 500)], behind));
  assert.ok(spoolBehind([file('b.000001', 0, 900)], behind), 'the observed file not in the spool yet');
  assert.ok(spoolBehind([], behind));
  assert.ok(!spoolBehind([file('b.000002', 0, 100, true), file('b.000003', 0, 10)], behind), 'a closed file is whole');
  assert.equal(stallCount(2, behind, [file('b.000002', 0, 400)], true, false), 3);
  assert.equal(stallCount(2, behind, [file('b.000002', 0, 400)], false, false), 0, 'a dead mysqlbinlog is restarted for having exited');
  assert.equal(stallCount(2, behind, [file('b.000002', 0, 600)], true, false), 0);
  assert.equal(stallCount(2, undefined, [file('b.000002', 0, 400)], true, false), 0, 'no earlier observation (the server did not answer)');
  assert.equal(stallCount(2, behind, [file('b.000002', 0, 400)], true, true), 0, 'still receiving (a catch-up from the start of a file) is no stall');
});

test('reconnect backoff: 1 s doubling up to 30 s', () => {
  const waits: number[] = [];
  let ms: number | undefined;
  for (let i = 0; i < 8; i++) waits.push((ms = reconnectBackoffMs(ms)));
  assert.deepEqual(waits, [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

test('server id: configured, else 4294967295 - 1000 - tb_instance_id, always a valid id', () => {
  assert.equal(streamServerId(77, 5), 77);
  assert.equal(streamServerId(undefined, 5), 4294966290);
  assert.notEqual(streamServerId(undefined, 5), streamServerId(undefined, 6));
  const huge = streamServerId(undefined, Number.MAX_SAFE_INTEGER);
  assert.ok(huge >= 1 && huge <= 4294967295);
});

test("mysqlbinlog's purged-file error is told from others", () => {
  assert.ok(isMissingFileError('ERROR: Got error reading packet from server: Could not find first log file name in binary log index file'));
  assert.ok(!isMissingFileError('ERROR: Got error reading packet from server: Lost connection to MySQL server during query'));
});

test('mysqlbinlog command: raw, stop-never, our server id, the spool, the password only in MYSQL_PWD; under setpriv when there is one', () => {
  const o = {
    binary: { command: ['/lib/ld.so', '--library-path', '/x', '/sid/usr/bin/mysqlbinlog'], baseArgs: ['--no-defaults', '--character-sets-dir=/c'] },
    link: { host: 'db1', port: 3307, user: 'backup_clone', password: 's3cret', charset: 'utf8mb4' },
    serverId: 4294966290,
    spoolDir: '/data/backup/.mcb-binlog-stream',
    firstFile: 'mysql-bin.000042',
  };
  const plain = mysqlbinlogCommand(o, { PATH: '/bin', MCB_MYSQL_PASSWORD: 'other' });
  assert.equal(plain.file, '/lib/ld.so');
  assert.deepEqual(plain.args.slice(0, 5), ['--library-path', '/x', '/sid/usr/bin/mysqlbinlog', '--no-defaults', '--character-sets-dir=/c']);
  for (const a of ['--read-from-remote-server', '--raw', '--stop-never', '--connection-server-id=4294966290', '--host=db1', '--port=3307', '--user=backup_clone', '--result-file=/data/backup/.mcb-binlog-stream/']) {
    assert.ok(plain.args.includes(a), a);
  }
  assert.equal(plain.args.at(-1), 'mysql-bin.000042');
  assert.ok(!plain.args.some((a) => a.includes('s3cret')), 'no password in argv');
  assert.equal(plain.env.MYSQL_PWD, 's3cret');
  assert.equal(plain.env.MCB_MYSQL_PASSWORD, undefined, "mcb's own secrets are not passed on");
  const guarded = mysqlbinlogCommand({ ...o, setpriv: '/usr/bin/setpriv' }, {});
  assert.equal(guarded.file, '/usr/bin/setpriv');
  assert.deepEqual(guarded.args.slice(0, 4), ['--pdeathsig', 'KILL', '--', '/lib/ld.so']);
});

test('a first stream starts at the oldest file after the newest one archived whole; with nothing archived, at the active one', () => {
  const files = ['b.000001', 'b.000002', 'b.000003', 'b.000004'];
  assert.equal(firstStreamFile(files, new Set(), 'b.000004'), 'b.000004');
  assert.equal(firstStreamFile(files, new Set(['b.000001']), 'b.000004'), 'b.000002', 'closed files not archived yet are streamed too');
  assert.equal(firstStreamFile(files, new Set(['b.000001', 'b.000002', 'b.000003']), 'b.000004'), 'b.000004');
  assert.equal(firstStreamFile(files.slice(2), new Set(['a.000009']), 'b.000004'), 'b.000003', 'archived files purged since: from the oldest the server has');
});
