import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Throttle, throttle } from '../../src/streams/throttle.ts';

function source(totalBytes: number, chunkBytes: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= totalBytes) return void this.push(null);
      const n = Math.min(chunkBytes, totalBytes - sent);
      sent += n;
      this.push(Buffer.alloc(n, 7));
    },
  });
}

function counter(): Writable & { bytes: number } {
  const w = new Writable({
    write(chunk: Buffer, _enc, done) {
      w.bytes += chunk.length;
      done();
    },
  }) as Writable & { bytes: number };
  w.bytes = 0;
  return w;
}

test('throttle: 3 s of data at 4 MiB/s takes 3 s within 10 %, in real time, bytes unchanged', async () => {
  const rate = 4 * 1024 * 1024;
  const sink = counter();
  const started = performance.now();
  await pipeline(source(3 * rate, 1024 * 1024), new Throttle(rate), sink);
  const seconds = (performance.now() - started) / 1000;
  assert.equal(sink.bytes, 3 * rate);
  assert.ok(seconds >= 2.7 && seconds <= 3.3, `took ${seconds.toFixed(2)} s`);
});

test('throttle: a rate below one slice per second still paces (no burst)', async () => {
  const rate = 32 * 1024; // half a 64 KiB slice per second
  const sink = counter();
  const started = performance.now();
  await pipeline(source(64 * 1024, 64 * 1024), new Throttle(rate), sink);
  const seconds = (performance.now() - started) / 1000;
  assert.equal(sink.bytes, 64 * 1024);
  assert.ok(seconds >= 1.8 && seconds <= 2.2, `took ${seconds.toFixed(2)} s`);
});

test('throttle: unset or 0 is a pass-through; a negative rate is refused', async () => {
  assert.ok(!(throttle(undefined) instanceof Throttle));
  assert.ok(!(throttle(0) instanceof Throttle));
  assert.ok(throttle(1) instanceof Throttle);
  assert.throws(() => new Throttle(-1), /positive rate/);
});
