// The verify job's one classification of what went wrong: a finding about the backup (recorded as verify_state
// 'failed') or an error of the job (the row untouched). The log lines are what MySQL 9.7.4 printed for each case
// (an unknown option, a datadir of a newer version, a corrupt page, a truncated ibdata1, no redo log).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyVerifyError, startFailureCause, type VerifyOutcome } from '../../src/jobs/verify.ts';
import { PermanentJobError } from '../../src/jobs/types.ts';
import { errorLinesOf, MysqldStartError, type MysqldStartFailure } from '../../src/mysql/mysqld.ts';
import { RestoreCorruptError, RestoreFailedError } from '../../src/restore/run.ts';
import { RestoreServerSetupError } from '../../src/restore/server.ts';

const running = new AbortController().signal;

/** Lines every start logs, whatever happens next: a warning about a loose option must not decide anything. */
const START = `2026-12-01T16:00:46.040486Z 0 [Warning] [MY-010068] [Server] CA certificate ca.pem is self signed.
2026-12-01T16:00:46.047106Z 0 [Warning] [MY-000067] [Server] unknown variable 'loose-group-replication-start-on-boot=OFF'.
2026-12-01T16:00:44.561785Z 1 [System] [MY-013576] [InnoDB] InnoDB initialization has started.
`;

const LOGS = {
  unknownVariable: `2026-12-01T16:00:46.047127Z 0 [ERROR] [MY-000067] [Server] unknown variable 'no-such-option-xyz=1'.
2026-12-01T16:00:46.047492Z 0 [ERROR] [MY-010119] [Server] Aborting`,
  unknownOption: `2026-12-01T16:00:50.293866Z 0 [ERROR] [MY-000068] [Server] unknown option '--no-such-option-xyz'.
2026-12-01T16:00:50.294226Z 0 [ERROR] [MY-010119] [Server] Aborting`,
  downgrade: `2026-12-01T16:01:49.741044Z 1 [ERROR] [MY-014061] [InnoDB] Invalid MySQL server downgrade: Cannot downgrade from 90900 to 90704. Downgrade is only permitted between patch releases.
mysqld: Can't open file: 'mysql.ibd' (errno: 0 - )
2026-12-01T16:01:50.233729Z 1 [ERROR] [MY-010334] [Server] Failed to initialize DD Storage Engine
2026-12-01T16:01:50.236852Z 0 [ERROR] [MY-010020] [Server] Data Dictionary initialization failed.
2026-12-01T16:01:50.236903Z 0 [ERROR] [MY-010119] [Server] Aborting`,
  corruptPage: `${`2026-12-01T16:02:07.247908Z 1 [ERROR] [MY-011906] [InnoDB] Database page corruption on disk or a failed file read of page [page id: space=4294967294, page number=4]. You may have to recover from a backup.
 len 16384; hex f26dd7d500000004ffffffffffffffff
InnoDB: End of page dump
`.repeat(50)}2026-12-01T16:02:18.188565Z 1 [ERROR] [MY-011899] [InnoDB] [FATAL] Unable to read page [page id: space=4294967294, page number=4] into the buffer pool after 100 attempts. The most probable cause of this error may be that the table has been corrupted.
2026-12-01T16:02:18.188636Z 1 [ERROR] [MY-013183] [InnoDB] Assertion failure: buf0buf.cc:4142:ib::fatal triggered thread 140109932394176
2026-12-01T16:02:18Z UTC - mysqld got signal 6 ;
 #9 0x7f6de904195d <unknown>`,
  truncatedIbdata: `2026-12-01T16:02:21.545262Z 1 [ERROR] [MY-012263] [InnoDB] The Auto-extending innodb_system data file './ibdata1' is of a different size 0 pages (rounded down to MB) than specified in the .cnf file: initial 768 pages, max 0 (relevant if non-zero) pages!
2026-12-01T16:02:21.545356Z 1 [ERROR] [MY-012930] [InnoDB] Plugin initialization aborted with error Generic error.
2026-12-01T16:02:22.042396Z 1 [ERROR] [MY-010334] [Server] Failed to initialize DD Storage Engine
2026-12-01T16:02:22.043493Z 0 [ERROR] [MY-010020] [Server] Data Dictionary initialization failed.`,
  noRedo: `2026-12-01T16:02:25.842520Z 1 [ERROR] [MY-013862] [InnoDB] Neither found #innodb_redo subdirectory, nor ib_logfile* files in ./
2026-12-01T16:02:25.842696Z 1 [ERROR] [MY-012930] [InnoDB] Plugin initialization aborted with error Generic error.
2026-12-01T16:02:25.989217Z 1 [ERROR] [MY-010334] [Server] Failed to initialize DD Storage Engine`,
  diskFull: `2026-12-01T16:02:25.842520Z 1 [ERROR] [MY-012592] [InnoDB] Operating system error number 28 in a file operation.
2026-12-01T16:02:25.842600Z 1 [ERROR] [MY-012596] [InnoDB] Error number 28 means 'No space left on device'
2026-12-01T16:02:25.842696Z 1 [ERROR] [MY-012930] [InnoDB] Plugin initialization aborted with error Generic error.`,
  loader: `/usr/sbin/mysqld: error while loading shared libraries: libprotobuf-lite.so.32: cannot open shared object file: No such file or directory`,
};

function startError(failure: MysqldStartFailure, log = ''): MysqldStartError {
  return new MysqldStartError(`mysqld on socket /s (datadir /d) ${failure}`, failure, errorLinesOf(START + log));
}

function assertJobError(outcome: VerifyOutcome, permanent: boolean, message?: RegExp): Error {
  assert.ok('jobError' in outcome, `a job error, not a finding: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.jobError instanceof PermanentJobError, permanent, `${permanent ? '' : 'not '}permanent: ${outcome.jobError.message}`);
  if (message) assert.match(outcome.jobError.message, message);
  return outcome.jobError;
}

function assertFinding(outcome: VerifyOutcome, message: RegExp): void {
  assert.ok('finding' in outcome, `a finding: ${JSON.stringify(outcome)}`);
  assert.match(outcome.finding, message);
}

test('errorLinesOf: [ERROR] lines only, each message once', () => {
  const lines = errorLinesOf(START + LOGS.corruptPage);
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.ok(lines.every((l) => l.includes('[ERROR]')));
  assert.match(lines[0]!, /Database page corruption/);
});

test('an aborted job (worker shutdown) is a job error whatever failed, even what would be a finding', () => {
  const ac = new AbortController();
  ac.abort(new Error('worker shutting down'));
  const aborted = startError('aborted');
  assert.equal(assertJobError(classifyVerifyError(aborted, ac.signal), false), aborted, 'rethrown as it is');
  assertJobError(classifyVerifyError(startError('exited', LOGS.noRedo), ac.signal), false);
  assertJobError(classifyVerifyError(new RestoreCorruptError('extracting x failed: unexpected end of file'), ac.signal), false);
  assertJobError(classifyVerifyError(new RestoreFailedError('extracting x was interrupted: worker shutting down'), ac.signal), false);
});

test('a start that times out, was stopped, or could not run the binary is a job error (retried), not a finding', () => {
  for (const failure of ['timeout', 'aborted', 'spawn'] as const) {
    const err = startError(failure, LOGS.noRedo); // even with InnoDB errors in the log so far
    assert.equal(assertJobError(classifyVerifyError(err, running), false), err);
  }
});

test('mysqld rejecting an option or the datadir version: a permanent job error naming the line', () => {
  assertJobError(classifyVerifyError(startError('exited', LOGS.unknownVariable), running), true, /rejects an option.*unknown variable 'no-such-option-xyz=1'/);
  assertJobError(classifyVerifyError(startError('exited', LOGS.unknownOption), running), true, /rejects an option.*unknown option '--no-such-option-xyz'/);
  // InnoDB reports the downgrade, then the data dictionary fails: the version decides, not the data.
  assertJobError(classifyVerifyError(startError('exited', LOGS.downgrade), running), true, /cannot open a datadir of the backup's version.*Cannot downgrade from 90900 to 90704/);
  assert.equal(startFailureCause(errorLinesOf(LOGS.downgrade))?.cause, 'version');
});

test('mysqld refusing the data (corrupt page, ibdata1 of the wrong size, no redo log): a finding', () => {
  assertFinding(classifyVerifyError(startError('exited', LOGS.corruptPage), running), /^mysqld does not start on the restored datadir: \[ERROR\] \[MY-011906\] \[InnoDB\] Database page corruption/);
  assertFinding(classifyVerifyError(startError('exited', LOGS.truncatedIbdata), running), /innodb_system data file '.\/ibdata1' is of a different size/);
  assertFinding(classifyVerifyError(startError('exited', LOGS.noRedo), running), /Neither found #innodb_redo subdirectory/);
});

test('an exit for a reason of the host, or none logged, is a job error (retried)', () => {
  assertJobError(classifyVerifyError(startError('exited', LOGS.diskFull), running), false);
  assertJobError(classifyVerifyError(startError('exited', LOGS.loader), running), false);
  assertJobError(classifyVerifyError(startError('exited'), running), false);
});

test('the other errors of a restore test: corrupt archive a finding, setup permanent, storage retried', () => {
  assertFinding(classifyVerifyError(new RestoreCorruptError('k: sha256 is a, the archive recorded b; the object is corrupt'), running), /the object is corrupt/);
  assertJobError(classifyVerifyError(new RestoreServerSetupError('the temporary mysqld runs as the mysql user, which cannot reach /x'), running), true, /^verify: the temporary mysqld/);
  assertJobError(classifyVerifyError(new RestoreFailedError('downloading k failed: ECONNRESET'), running), false);
});
