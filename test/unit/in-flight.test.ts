// The scheduler of parallel part uploads (src/storage/in-flight.ts): results in the items' order whatever order the
// steps finish in, at most N steps in flight, at most N + 1 items alive (the memory bound of an upload), and on a
// failure or an abort nothing new started, nothing left running. Plus the length check of the part splitter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { runInFlight } from '../../src/storage/in-flight.ts';
import { splitIntoParts } from '../../src/storage/multipart.ts';

/** Items 0..n-1 that count how many exist and have not been released by their step ("buffers alive"). */
function countedItems(n: number) {
  const state = { taken: 0, alive: 0, maxAlive: 0, closed: false };
  async function* items() {
    try {
      for (let i = 0; i < n; i++) {
        await sleep(1); // the part being read and filled
        state.taken++;
        state.alive++;
        state.maxAlive = Math.max(state.maxAlive, state.alive);
        yield i;
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, items: items() };
}

test('results come back in the items\' order although later steps finish first', async () => {
  const finished: number[] = [];
  const results = await runInFlight(
    Readable.from([0, 1, 2, 3, 4, 5]),
    async (item) => {
      await sleep((6 - item) * 5); // the first item finishes last
      finished.push(item);
      return `etag-${item}`;
    },
    { concurrency: 6 },
  );
  assert.deepEqual(results, ['etag-0', 'etag-1', 'etag-2', 'etag-3', 'etag-4', 'etag-5']);
  assert.notDeepEqual(finished, [0, 1, 2, 3, 4, 5], 'the steps did finish out of order');
});

test('at most N steps in flight, N reached, and at most N + 1 items alive (N in flight, one filled and waiting)', async () => {
  for (const concurrency of [1, 3]) {
    const { state, items } = countedItems(12);
    let inFlight = 0;
    let maxInFlight = 0;
    const results = await runInFlight(
      items,
      async (item) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await sleep(20 + (item % 3) * 10);
        inFlight--;
        state.alive--; // the part's buffer is released once it is sent
        return item;
      },
      { concurrency },
    );
    assert.deepEqual(results, [...Array(12).keys()]);
    assert.equal(maxInFlight, concurrency, `concurrency ${concurrency}: in flight`);
    assert.ok(state.maxAlive <= concurrency + 1, `concurrency ${concurrency}: ${state.maxAlive} items alive at once`);
    assert.ok(state.maxAlive >= concurrency, 'the items are read ahead while others are sent');
  }
});

test('a failing step: no further item taken or started, the others\' signal aborted and waited for, the first error thrown', async () => {
  const { state, items } = countedItems(20);
  const started: number[] = [];
  const settled: number[] = [];
  const sawAbort: number[] = [];
  const run = runInFlight(
    items,
    async (item, _index, signal) => {
      started.push(item);
      try {
        if (item === 3) throw new Error('part 4 refused');
        // Item 0 ends at once and frees the slot item 3 takes; items 1 and 2 would run for 5 s.
        if (item > 0) await sleep(5000, undefined, { signal }).catch(() => sawAbort.push(item));
        await sleep(10); // still settling after the abort: the run must wait for it
      } finally {
        settled.push(item);
      }
    },
    { concurrency: 3 },
  );
  const t0 = performance.now();
  await assert.rejects(run, /part 4 refused/);
  assert.ok(performance.now() - t0 < 2000, 'the running steps were cut short, not waited out');
  assert.deepEqual(started, [0, 1, 2, 3], 'nothing started after the failure');
  assert.deepEqual([...settled].sort(), [...started].sort(), 'every started step settled before the run ended');
  assert.deepEqual(sawAbort.sort(), [1, 2], 'the steps still running saw their signal aborted');
  assert.ok(state.taken <= 5, `the sequence was not read on (${state.taken} taken)`);
  assert.ok(state.closed, 'the sequence was closed');
});

test('the sequence failing (a source error) ends the run with its error once the running steps settled', async () => {
  async function* failing() {
    yield 0;
    yield 1;
    throw new Error('read error on the archive');
  }
  const settled: number[] = [];
  await assert.rejects(
    runInFlight(
      failing(),
      async (item) => {
        await sleep(20);
        settled.push(item);
      },
      { concurrency: 4 },
    ),
    /read error on the archive/,
  );
  assert.deepEqual(settled.sort(), [0, 1]);
});

test('an abort from outside ends the run promptly, even while the source is stalled', async () => {
  const controller = new AbortController();
  async function* stalled() {
    yield 0;
    await new Promise(() => undefined); // a source that never delivers again
  }
  const t0 = performance.now();
  setTimeout(() => controller.abort(new Error('worker shutting down')), 50);
  await assert.rejects(runInFlight(stalled(), async () => 'ok', { concurrency: 2, signal: controller.signal }), /worker shutting down/);
  assert.ok(performance.now() - t0 < 1000, 'returned without waiting for the source');
  await assert.rejects(runInFlight(Readable.from([1]), async () => 'ok', { concurrency: 2, signal: AbortSignal.abort(new Error('already aborted')) }), /already aborted/);
  await assert.rejects(runInFlight(Readable.from([1]), async () => 'ok', { concurrency: 0 }), /concurrency must be/);
});

test('the part splitter with an announced length: buffers no larger than what is left; a longer or shorter stream fails', async () => {
  const cut = async (sizes: number[], partBytes: number, announced: number) => {
    const out: Array<{ bytes: number; buffer: number; last: boolean }> = [];
    const source = Readable.from(sizes.map((n) => Buffer.alloc(n, 1)));
    for await (const p of splitIntoParts(source, () => partBytes, announced)) out.push({ bytes: p.data.length, buffer: p.data.buffer.byteLength, last: p.last });
    return out;
  };
  // Sizes above Node's pooled allocations (4 KiB), so each buffer is the part's own.
  assert.deepEqual(await cut([7000, 7000, 7000], 8192, 21000), [
    { bytes: 8192, buffer: 8192, last: false },
    { bytes: 8192, buffer: 8192, last: false },
    { bytes: 4616, buffer: 4616, last: true },
  ]);
  assert.deepEqual((await cut([], 8192, 0)).map((p) => [p.bytes, p.last]), [[0, true]], 'an empty stream is one empty part');
  await assert.rejects(cut([7, 7, 7], 10, 20), /the stream is longer than the 20 bytes announced/);
  await assert.rejects(cut([7, 7], 10, 20), /the stream has 14 bytes, 20 were announced/);
});
