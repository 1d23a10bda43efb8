// Part sizes of multipart uploads: within S3's limits (10,000 parts of 5 MiB to 5 GiB, objects up to 5 TiB) for
// every object size, with part_size_mb as the preferred size; and the cutting of a stream into those parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { splitIntoParts } from '../../src/storage/multipart.ts';
import { partSizeFor, partSizeOfUnknownLength, PartSizeError, S3_LIMITS, unknownSizeCapacity } from '../../src/storage/part-size.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const s3 = (minPartMiB: number) => ({ minPartBytes: minPartMiB * MiB, maxParts: S3_LIMITS.maxParts });

function assertFits(size: number, part: number, limits: { minPartBytes: number; maxParts: number }): void {
  assert.ok(part >= limits.minPartBytes, `${part} is below the preferred ${limits.minPartBytes}`);
  assert.ok(part <= S3_LIMITS.maxPartBytes, `${part} is above 5 GiB`);
  assert.equal(part % MiB, 0, `${part} is a whole number of MiB`);
  assert.ok(Math.ceil(size / part) <= limits.maxParts, `${size} bytes in parts of ${part} need ${Math.ceil(size / part)} parts`);
}

test('the preferred part size is kept while the object fits in 10,000 of them', () => {
  assert.equal(partSizeFor(0, s3(16)), 16 * MiB);
  assert.equal(partSizeFor(1, s3(16)), 16 * MiB);
  assert.equal(partSizeFor(10_000 * 16 * MiB, s3(16)), 16 * MiB, 'exactly 10,000 parts');
  assert.equal(partSizeFor(100 * GiB, s3(16)), 16 * MiB);
});

test('a larger object gets the smallest whole-MiB part size that fits 10,000 parts', () => {
  assert.equal(partSizeFor(10_000 * 16 * MiB + 1, s3(16)), 17 * MiB, 'one byte more than 10,000 preferred parts');
  const tb = 1e12; // the 1 TB datadir of the report: 16 MiB parts would need 59,605 parts
  assert.ok(Math.ceil(tb / (16 * MiB)) > 10_000);
  assert.equal(partSizeFor(tb, s3(16)), 96 * MiB);
  assertFits(tb, partSizeFor(tb, s3(16)), s3(16));
  assert.equal(partSizeFor(5 * TiB, s3(16)), 525 * MiB, 'S3 largest object');
  assertFits(5 * TiB, partSizeFor(5 * TiB, s3(16)), s3(16));
});

test('every size up to 5 TiB fits, for the smallest and a large preferred part size and for a lower part limit', () => {
  const sizes = [5 * MiB, 156 * GiB, 157 * GiB, 1 * TiB, 3 * TiB + 12345, 5 * TiB - 1, 5 * TiB];
  for (let i = 0; i < 200; i++) sizes.push(Math.floor(Math.random() * 5 * TiB));
  for (const limits of [s3(5), s3(16), s3(5120), { minPartBytes: 5 * MiB, maxParts: 2000 }]) {
    for (const size of sizes) assertFits(size, partSizeFor(size, limits), limits);
  }
});

test('objects the store cannot take are refused with the reason', () => {
  assert.throws(() => partSizeFor(5 * TiB + 1, s3(16)), (err: unknown) => err instanceof PartSizeError && /larger than S3's limit .* \(5 TiB\)/.test(err.message));
  assert.throws(() => partSizeFor(5 * GiB * 4 + 1, { minPartBytes: 5 * MiB, maxParts: 4 }), /needs more than 4 parts of 5 GiB/);
  assert.throws(() => partSizeFor(-1, s3(16)), PartSizeError);
  assert.throws(() => partSizeFor(1, { minPartBytes: 4 * MiB, maxParts: 10_000 }), /between 5 MiB and 5 GiB/);
  assert.throws(() => partSizeFor(1, { minPartBytes: 16 * MiB, maxParts: 10_001 }), /between 1 and 10000/);
});

test('a stream of unknown length starts at the preferred size and still fits 5 TiB in 10,000 parts', () => {
  for (const limits of [s3(5), s3(16), s3(64)]) {
    assert.equal(partSizeOfUnknownLength(1, limits), limits.minPartBytes);
    assert.equal(partSizeOfUnknownLength(625, limits), limits.minPartBytes, 'the first sixteenth of the parts at the preferred size');
    let previous = 0;
    for (let n = 1; n <= limits.maxParts; n++) {
      const part = partSizeOfUnknownLength(n, limits);
      assert.ok(part >= previous && part <= S3_LIMITS.maxPartBytes && part % MiB === 0, `part ${n}: ${part}`);
      previous = part;
    }
    assert.ok(unknownSizeCapacity(limits) >= 5 * TiB, `capacity ${unknownSizeCapacity(limits)}`);
  }
});

test('a stream is cut into parts of the planned sizes, the last one marked, without reading a part ahead', async () => {
  const chunks = (sizes: number[]) => Readable.from(sizes.map((n, i) => Buffer.alloc(n, i % 256)));
  const cut = async (sizes: number[], sizeOf: (n: number) => number) => {
    const out: Array<[number, boolean]> = [];
    for await (const p of splitIntoParts(chunks(sizes), sizeOf)) out.push([p.data.length, p.last]);
    return out;
  };
  assert.deepEqual(await cut([], () => 10), [[0, true]], 'an empty stream is one empty part');
  assert.deepEqual(await cut([3, 3], () => 10), [[6, true]]);
  assert.deepEqual(await cut([10], () => 10), [[10, true]], 'exactly one part');
  assert.deepEqual(await cut([5, 5, 5, 5], () => 10), [[10, false], [10, true]], 'parts ending on chunk boundaries');
  assert.deepEqual(await cut([7, 7, 7], () => 10), [[10, false], [10, false], [1, true]]);
  assert.deepEqual(await cut([25], (n) => n * 5), [[5, false], [10, false], [10, true]], 'growing part sizes');

  const data = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
  const parts: Buffer[] = [];
  for await (const p of splitIntoParts(Readable.from([data.subarray(0, 333), data.subarray(333, 700), data.subarray(700)]), () => 128)) parts.push(p.data);
  assert.deepEqual(Buffer.concat(parts), data, 'the bytes and their order are kept');
});
