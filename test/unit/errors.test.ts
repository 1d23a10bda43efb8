import assert from 'node:assert/strict';
import { test } from 'node:test';
import { abortError, abortReason, errorMessage } from '../../src/errors.ts';

test('abortReason: an Error reason gives its message, a string itself, nothing "aborted"', () => {
  const withError = new AbortController();
  withError.abort(new Error('worker shutting down'));
  assert.equal(abortReason(withError.signal), 'worker shutting down');
  const withString = new AbortController();
  withString.abort('timed out');
  assert.equal(abortReason(withString.signal), 'timed out');
  const plain = new AbortController();
  plain.abort(undefined);
  // AbortController.abort() without a reason gives a DOMException (an Error) named AbortError.
  assert.match(abortReason(plain.signal), /abort/i);
});

test('abortError: the reason itself when it is an Error, else an Error with its words', () => {
  const reason = new Error('stop');
  const c = new AbortController();
  c.abort(reason);
  assert.equal(abortError(c.signal), reason);
  const s = new AbortController();
  s.abort('cut');
  assert.equal(abortError(s.signal).message, 'cut');
});

test('errorMessage: Errors, error-like objects and anything else', () => {
  assert.equal(errorMessage(new TypeError('bad')), 'bad');
  assert.equal(errorMessage({ message: 'from a driver' }), 'from a driver');
  assert.equal(errorMessage('plain'), 'plain');
  assert.equal(errorMessage(null), 'null');
});
