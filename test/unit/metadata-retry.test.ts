// Which metadata errors are retried and for how long (src/metadata/retry.ts); the real outage is in
// test/faults/metadata-outage.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isConnectionError, MetadataUnavailableError, retryDelayMs, withConnectionRetry } from '../../src/metadata/retry.ts';

const coded = (code: string) => Object.assign(new Error(code), { code });

test('connection-level errors are retried, SQL errors are not', () => {
  for (const code of ['ECONNREFUSED', 'PROTOCOL_CONNECTION_LOST', 'ETIMEDOUT', 'ER_SERVER_SHUTDOWN', 'ECONNRESET', 'ER_CON_COUNT_ERROR']) {
    assert.ok(isConnectionError(coded(code)), code);
  }
  for (const code of ['ER_DUP_ENTRY', 'ER_PARSE_ERROR', 'ER_LOCK_WAIT_TIMEOUT', 'ER_ACCESS_DENIED_ERROR', 'ER_NO_SUCH_TABLE']) {
    assert.ok(!isConnectionError(coded(code)), code);
  }
  assert.ok(!isConnectionError(new Error('no code')));
  assert.ok(!isConnectionError(undefined));
});

test('the backoff doubles from 250 ms up to 5 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map(retryDelayMs), [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
});

test('an operation retries through connection errors and returns once the server answers', async () => {
  let calls = 0;
  const events: string[] = [];
  const result = await withConnectionRetry(
    async () => {
      calls++;
      if (calls < 3) throw coded('ECONNREFUSED');
      return 'row';
    },
    { retrySeconds: 10, where: 'u@h:1/db', onRetry: ({ code }) => events.push(`retry ${code}`), onRecovered: ({ retries }) => events.push(`recovered after ${retries}`) },
  );
  assert.equal(result, 'row');
  assert.equal(calls, 3);
  assert.deepEqual(events, ['retry ECONNREFUSED', 'recovered after 2'], 'one line when it starts, one when it ends');
});

test('an SQL error fails at once; retry_seconds = 0 turns retries off', async () => {
  let calls = 0;
  await assert.rejects(
    withConnectionRetry(async () => {
      calls++;
      throw coded('ER_DUP_ENTRY');
    }, { retrySeconds: 10, where: 'x' }),
    /ER_DUP_ENTRY/,
  );
  assert.equal(calls, 1);
  await assert.rejects(withConnectionRetry(async () => Promise.reject(coded('ECONNREFUSED')), { retrySeconds: 0, where: 'x' }), /ECONNREFUSED/);
});

test('it gives up after retry_seconds with a message naming the server and the setting', async () => {
  const started = Date.now();
  await assert.rejects(withConnectionRetry(async () => Promise.reject(coded('ECONNREFUSED')), { retrySeconds: 1, where: 'mcb@10.0.0.5:3306/op' }), (err: Error) => {
    assert.ok(err instanceof MetadataUnavailableError);
    assert.match(err.message, /^metadata center mcb@10\.0\.0\.5:3306\/op is unreachable \(ECONNREFUSED\); gave up after \d+ s \(\[metadata-link\] retry_seconds = 1\)$/);
    return true;
  });
  assert.ok(Date.now() - started <= 1500, 'it does not sleep past the limit');
});

test('aborting the signal (the store closing, the worker handing the stage back) stops the retries at once', async () => {
  const controller = new AbortController();
  const pending = withConnectionRetry(async () => Promise.reject(coded('PROTOCOL_CONNECTION_LOST')), { retrySeconds: 300, where: 'x', signal: controller.signal });
  setTimeout(() => controller.abort(), 50);
  const started = Date.now();
  await assert.rejects(pending, /stopped retrying: shutting down/);
  assert.ok(Date.now() - started < 2000);
});
