// Uploads against the real S3 server of the services (moto), through the fault proxy that records every request
// (test/support/s3-fault-proxy.ts): parts in flight at once and the exact bytes stored; every part carrying its
// Content-MD5; a part body damaged on its way refused and sent again (moto does not check Content-MD5 itself: the
// ETag it answers with, the MD5 of what it stored, is compared), or, always damaged, an upload failed with
// nothing left behind; and the upload rate limit. Files (putFile) go the same way with no part held in memory:
// each part is a range of the file, read again from the file when it is sent again.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import type * as Minio from 'minio';
import type { OssConfig } from '../../src/config/index.ts';
import { MinioObjectStore } from '../../src/storage/index.ts';
import { servicesEnv } from '../support/env.ts';
import { startS3FaultProxy, type S3Call, type S3FaultProxy } from '../support/s3-fault-proxy.ts';
import { minioClient, randomId } from '../support/world.ts';

const MiB = 1024 * 1024;
const bucket = `mcb-test-pu-${randomId()}`;
let proxy: S3FaultProxy;
let minio: Minio.Client;
const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-test-pu-'));

before(async () => {
  const s3 = servicesEnv().s3;
  minio = minioClient();
  await minio.makeBucket(bucket);
  proxy = await startS3FaultProxy(s3.endPoint, s3.port);
});
after(async () => {
  await proxy?.close();
  for await (const o of minio.listObjectsV2(bucket, '', true) as AsyncIterable<{ name: string }>) await minio.removeObject(bucket, o.name);
  await minio.removeBucket(bucket).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

function store(over: Partial<OssConfig> = {}): MinioObjectStore {
  const s3 = servicesEnv().s3;
  const config: OssConfig = { endPoint: s3.endPoint, port: proxy.port, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, partSizeBytes: 5 * MiB, ...over };
  return new MinioObjectStore(config, bucket);
}

/** `data` as a stream of 64 KiB chunks, as a file read gives it. */
function chunked(data: Buffer): Readable {
  return Readable.from((function* () {
    for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
  })());
}

async function stored(key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await minio.getObject(bucket, key)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function unfinishedUploads(key: string): Promise<number> {
  const page = await minio.listIncompleteUploadsQuery(bucket, key, '', '', '');
  return page.uploads.filter((u) => u.key === key).length;
}

const partPuts = (key: string) => proxy.calls.filter((c: S3Call) => c.key === key && c.method === 'PUT' && c.query.has('partNumber'));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('base64');

/** The most requests in flight at one moment. */
function maxOverlap(calls: S3Call[]): number {
  const edges = calls.flatMap((c) => [[c.startedAt, 1] as const, [c.endedAt ?? Infinity, -1] as const]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let max = 0;
  for (const [, d] of edges) max = Math.max(max, (now += d));
  return max;
}

test('concurrency 3, 5 MiB parts: a 40 MB stream is stored byte for byte, 3 parts in flight, 4 part buffers at most, each part with its Content-MD5', async () => {
  const data = randomBytes(40 * MiB + 12_345);
  const key = 'parallel.bin';
  proxy.calls = [];
  // Part buffers are counted where they are made (measuring memory would count the garbage of the proxy's reads).
  const allocate = Buffer.allocUnsafeSlow;
  let partBuffers = 0;
  Buffer.allocUnsafeSlow = (size: number) => {
    if (size >= MiB) partBuffers++;
    return allocate(size);
  };
  let put;
  try {
    put = await store({ uploadConcurrency: 3 }).putStream(key, chunked(data), { size: data.length, metadata: { 'mcb-sha256': sha256(data) } });
  } finally {
    Buffer.allocUnsafeSlow = allocate;
  }
  assert.deepEqual(put, { bytes: data.length, sha256: sha256(data) });
  assert.ok(partBuffers <= 4, `eight full parts went up in ${partBuffers} buffers: at most 3 in flight and 1 being filled, each filled again once sent`);
  assert.ok((await stored(key)).equals(data), 'the stored object is the bytes sent');

  const parts = partPuts(key);
  assert.deepEqual(parts.map((c) => Number(c.query.get('partNumber'))).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(maxOverlap(parts), 3, 'three parts in flight at once, never more');
  for (const c of parts) {
    const n = Number(c.query.get('partNumber'));
    assert.equal(c.contentMd5, md5(data.subarray((n - 1) * 5 * MiB, n * 5 * MiB)), `part ${n} carries the MD5 of its bytes`);
  }
});

/** Runs `upload` of `key` with its part 2 damaged on the way the first time only; it must be sent again. */
async function withPart2DamagedOnce(key: string, upload: () => Promise<unknown>): Promise<void> {
  proxy.calls = [];
  let damaged = 0;
  proxy.fault = (c) => (c.key === key && c.query.get('partNumber') === '2' && damaged++ === 0 ? 'damage' : undefined);
  try {
    await upload();
  } finally {
    proxy.fault = () => undefined;
  }
  assert.equal(damaged, 2, 'part 2 was damaged once, then sent again');
}

test('a part body damaged on its way is refused and sent again: the object is exact; a small object (one PUT) too', async () => {
  const data = randomBytes(12 * MiB);
  const key = 'damaged-once.bin';
  await withPart2DamagedOnce(key, () => store({ uploadConcurrency: 2 }).putStream(key, chunked(data), { size: data.length }));
  assert.deepEqual(partPuts(key).map((c) => Number(c.query.get('partNumber'))).sort(), [1, 2, 2, 3]);
  assert.ok((await stored(key)).equals(data), 'the stored object is the bytes sent');

  const small = randomBytes(100_000);
  let smallPuts = 0;
  proxy.fault = (c) => (c.key === 'damaged-small.bin' && c.method === 'PUT' && smallPuts++ === 0 ? 'damage' : undefined);
  try {
    await store().putStream('damaged-small.bin', chunked(small), { size: small.length });
  } finally {
    proxy.fault = () => undefined;
  }
  assert.equal(smallPuts, 2, 'the one PUT was sent again');
  assert.ok((await stored('damaged-small.bin')).equals(small));
});

test('a part damaged on every try: the upload fails after a few tries, and neither an object nor an unfinished upload is left', async () => {
  const data = randomBytes(11 * MiB);
  const key = 'damaged-always.bin';
  proxy.calls = [];
  proxy.fault = (c) => (c.key === key && c.query.get('partNumber') === '3' ? 'damage' : undefined);
  try {
    await assert.rejects(
      store({ uploadConcurrency: 4 }).putStream(key, chunked(data), { size: data.length }),
      /upload of damaged-always\.bin to \S+ failed: BadDigest: part 3 of damaged-always\.bin: stored with MD5 [0-9a-f]{32}, [0-9a-f]{32} was sent \(damaged in transit\) \(after 4 tries\)/,
    );
  } finally {
    proxy.fault = () => undefined;
  }
  assert.equal(partPuts(key).filter((c) => c.query.get('partNumber') === '3').length, 4);
  assert.equal(await minio.statObject(bucket, key).catch(() => undefined), undefined, 'no object');
  assert.equal(await unfinishedUploads(key), 0, 'the upload was aborted');
});

test('max_upload_mb_per_s: 12 MiB at 4 MiB/s are read in 3 s within 10 %, and sent within that plus what an unthrottled upload takes', async () => {
  // Parts leave when full: the last ones, and the completion of the upload, come after the throttle let the last
  // byte through. What they cost under the machine's present load is bounded by an unthrottled upload of the same size.
  const data = randomBytes(12 * MiB);
  const t = performance.now();
  await store({ uploadConcurrency: 4 }).putStream('unthrottled.bin', chunked(data), { size: data.length });
  const unthrottled = (performance.now() - t) / 1000;

  const source = chunked(data);
  let paced = 0;
  source.on('end', () => (paced = (performance.now() - t0) / 1000));
  const t0 = performance.now();
  await store({ uploadConcurrency: 4, maxUploadMbPerS: 4 }).putStream('throttled.bin', source, { size: data.length });
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(paced >= 2.7 && paced <= 3.3, `the stream was read in ${paced.toFixed(2)} s`);
  assert.ok(seconds >= 2.7 && seconds <= 3.3 + unthrottled, `the upload took ${seconds.toFixed(2)} s (unthrottled ${unthrottled.toFixed(2)} s)`);
  assert.ok((await stored('throttled.bin')).equals(data));
});

/** `data` written to a file of the test's directory. */
function fileOf(name: string, data: Buffer): string {
  const file = path.join(dir, name);
  writeFileSync(file, data);
  return file;
}

test('putFile, concurrency 3, 5 MiB parts: a 30 MB file is stored byte for byte, 3 parts in flight, each part with its Content-MD5', async () => {
  const data = randomBytes(30 * MiB + 4321);
  const key = 'file-parallel.bin';
  proxy.calls = [];
  const progress: number[] = [];
  const put = await store({ uploadConcurrency: 3 }).putFile(key, fileOf(key, data), { size: data.length, metadata: { 'mcb-sha256': sha256(data) }, progress: (n) => progress.push(n) });
  assert.deepEqual(put, { bytes: data.length, sha256: sha256(data) });
  assert.ok((await stored(key)).equals(data), 'the stored object is the file');
  assert.equal((await minio.statObject(bucket, key)).metaData['mcb-sha256'], sha256(data));

  const parts = partPuts(key);
  assert.deepEqual(parts.map((c) => Number(c.query.get('partNumber'))).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(maxOverlap(parts), 3, 'three parts in flight at once, never more');
  for (const c of parts) {
    const n = Number(c.query.get('partNumber'));
    const part = data.subarray((n - 1) * 5 * MiB, n * 5 * MiB);
    assert.equal(c.bytes, part.length, `part ${n} is sent with its length`);
    assert.equal(c.contentMd5, md5(part), `part ${n} carries the MD5 of its bytes`);
  }
  assert.equal(progress.length, 7);
  assert.equal(progress.at(-1), data.length, 'progress reaches the whole file');

  await assert.rejects(store().putFile('file-wrong-size.bin', fileOf('wrong-size.bin', data.subarray(0, 1000)), { size: 999 }), /is 1000 bytes, 999 were expected/);
  const empty = await store().putFile('file-empty.bin', fileOf('empty.bin', Buffer.alloc(0)));
  assert.deepEqual(empty, { bytes: 0, sha256: sha256(Buffer.alloc(0)) });
  assert.equal((await minio.statObject(bucket, 'file-empty.bin')).size, 0);
});

test('putFile: a part damaged on its way is read again from the file and sent again; the object is exact', async () => {
  const data = randomBytes(12 * MiB);
  const key = 'file-damaged-once.bin';
  await withPart2DamagedOnce(key, () => store({ uploadConcurrency: 2 }).putFile(key, fileOf(key, data)));
  assert.deepEqual(partPuts(key).map((c) => Number(c.query.get('partNumber'))).sort(), [1, 2, 2, 3]);
  assert.ok((await stored(key)).equals(data), 'the stored object is the file');
});

test('putFile with 32 MiB parts: the memory held during the upload stays far below one part (no part is buffered)', async () => {
  // Memory held, not garbage awaiting collection: collected before each sample (putStream holds a whole part, 32 MiB
  // here, between samples: 36 MiB measured so). Straight to the S3 server: the proxy's own buffers would count.
  // Larger parts would show the same, but moto takes a 64 MiB part several times slower than two of 32.
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const s3 = servicesEnv().s3;
  const direct = new MinioObjectStore({ endPoint: s3.endPoint, port: s3.port, useSSL: false, accessKey: s3.accessKey, secretKey: s3.secretKey, partSizeBytes: 32 * MiB, uploadConcurrency: 2 }, bucket);
  const file = path.join(dir, 'big.bin');
  const block = Buffer.alloc(MiB);
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  for (let i = 0; i < 33; i++) {
    block.fill(i);
    hash.update(block);
    writeSync(fd, block);
  }
  closeSync(fd);

  gc();
  const before = process.memoryUsage().arrayBuffers;
  let peak = before;
  const sampler = setInterval(() => {
    gc();
    peak = Math.max(peak, process.memoryUsage().arrayBuffers);
  }, 100);
  let put;
  try {
    put = await direct.putFile('file-big.bin', file);
  } finally {
    clearInterval(sampler);
  }
  assert.deepEqual(put, { bytes: 33 * MiB, sha256: hash.digest('hex') });
  assert.equal((await minio.statObject(bucket, 'file-big.bin')).size, 33 * MiB);
  const held = (peak - before) / MiB;
  assert.ok(held < 16, `${held.toFixed(1)} MiB of buffers were held during the upload of 32 MiB parts`);
});

test('putFile with max_upload_mb_per_s: 6 MiB in 2 parts in flight at 4 MiB/s take 1.5 s within 10 %, plus what an unthrottled upload takes', async () => {
  const data = randomBytes(6 * MiB);
  const file = fileOf('throttled-file.bin', data);
  const t = performance.now();
  await store({ uploadConcurrency: 2 }).putFile('file-unthrottled.bin', file);
  const unthrottled = (performance.now() - t) / 1000;
  const t0 = performance.now();
  await store({ uploadConcurrency: 2, maxUploadMbPerS: 4 }).putFile('file-throttled.bin', file);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(seconds >= 1.35 && seconds <= 1.65 + unthrottled, `the upload took ${seconds.toFixed(2)} s (unthrottled ${unthrottled.toFixed(2)} s)`);
  assert.ok((await stored('file-throttled.bin')).equals(data));
});
