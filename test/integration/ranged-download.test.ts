// Parallel ranged downloads against the real S3 server (moto), some through the fault proxy
// (test/support/s3-fault-proxy.ts): bytes identical and in order, each range asked once; a range cut mid-body asked
// again from where it was cut; an object overwritten mid-download refused; an abort that stops at once; and a full
// backup's extraction fed by ranges, with corruption and a dead connection still told apart.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as Minio from 'minio';
import { extractFullVerified, RestoreCorruptError, RestoreFailedError } from '../../src/restore/run.ts';
import { MinioObjectStore, ObjectChangedError, type ObjectStore } from '../../src/storage/index.ts';
import { openRangedDownload, type RangedDownloadOptions } from '../../src/storage/ranged-download.ts';
import { servicesEnv } from '../support/env.ts';
import { startS3FaultProxy, type S3Call, type S3FaultProxy } from '../support/s3-fault-proxy.ts';
import { minioClient, randomId } from '../support/world.ts';

const RANGE = 64 * 1024;
const bucket = `mcb-test-ranged-${randomId()}`;
let minio: Minio.Client;
let proxy: S3FaultProxy;
let direct: ObjectStore;
let proxied: ObjectStore;
let scratch: string;

before(async () => {
  minio = minioClient();
  await minio.makeBucket(bucket);
  const s3 = servicesEnv().s3;
  proxy = await startS3FaultProxy(s3.endPoint, s3.port);
  const oss = { ...s3, partSizeBytes: 16 * 1024 * 1024 };
  direct = new MinioObjectStore(oss, bucket);
  proxied = new MinioObjectStore({ ...oss, endPoint: '127.0.0.1', port: proxy.port }, bucket);
  scratch = mkdtempSync(path.join(os.tmpdir(), 'mcb-ranged-'));
});
after(async () => {
  const names: string[] = [];
  for await (const o of minio.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string }>) if (o.name) names.push(o.name);
  if (names.length) await minio.removeObjects(bucket, names);
  await minio.removeBucket(bucket).catch(() => undefined);
  await proxy?.close();
  rmSync(scratch, { recursive: true, force: true });
});

async function put(key: string, data: Buffer): Promise<void> {
  await minio.putObject(bucket, key, data, data.length);
}

async function download(store: ObjectStore, key: string, opts: Partial<RangedDownloadOptions> = {}): Promise<Buffer> {
  const { stream } = await openRangedDownload(store, key, { concurrency: 3, rangeBytes: RANGE, retryDelaysMs: [100, 100, 100], ...opts });
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

const gets = (key: string) => (c: S3Call) => c.method === 'GET' && c.key === key;
/** The first and last byte a GET asked for. */
const rangeOf = (c: S3Call) => (/^bytes=(\d+)-(\d+)$/.exec(c.range ?? '') ?? []).slice(1).map(Number);

test('an object of 3.5 ranges comes back byte-identical with 3 in flight, each range asked once; a small one is one plain GET', async () => {
  const data = randomBytes(Math.floor(3.5 * RANGE));
  await put('three-and-a-half', data);
  proxy.calls = [];
  assert.ok((await download(proxied, 'three-and-a-half')).equals(data));
  const ranges = proxy.calls.filter(gets('three-and-a-half')).map((c) => c.range);
  assert.deepEqual(ranges.sort(), ['bytes=0-65535', 'bytes=131072-196607', 'bytes=196608-229375', 'bytes=65536-131071']);

  const small = randomBytes(RANGE);
  await put('one-range', small);
  await put('empty', Buffer.alloc(0));
  proxy.calls = [];
  assert.ok((await download(proxied, 'one-range')).equals(small));
  assert.equal((await download(proxied, 'empty')).length, 0);
  assert.deepEqual(
    proxy.calls.filter((c) => c.method === 'GET' && c.key).map((c) => [c.key, c.range]),
    [
      ['one-range', undefined],
      ['empty', undefined],
    ],
  );
});

test('a range cut mid-body is asked again for the rest of it, and the bytes are still identical; so is a single streamed GET', async () => {
  const data = randomBytes(Math.floor(3.5 * RANGE));
  await put('cut-range', data);
  proxy.calls = [];
  const isSecond = (c: S3Call) => gets('cut-range')(c) && rangeOf(c)[1] === 2 * RANGE - 1;
  let cuts = 0;
  proxy.fault = (c) => (isSecond(c) && ++cuts <= 2 ? 'cut' : undefined);
  try {
    assert.ok((await download(proxied, 'cut-range')).equals(data));
  } finally {
    proxy.fault = () => undefined;
  }
  const starts = proxy.calls.filter(isSecond).map((c) => rangeOf(c)[0]!);
  assert.equal(starts.length, 3, 'the second range was cut twice, then asked a third time');
  assert.equal(starts[0], RANGE);
  assert.ok(starts[1]! >= starts[0]! && starts[2]! >= starts[1]!, `each retry asks for the rest of the range, from where it was cut (${starts.join(', ')})`);

  // With concurrency 1 the object is one GET streamed as it comes, resumed the same way.
  proxy.calls = [];
  let streamedCuts = 0;
  proxy.fault = (c) => (gets('cut-range')(c) && ++streamedCuts === 1 ? 'cut' : undefined);
  try {
    assert.ok((await download(proxied, 'cut-range', { concurrency: 1 })).equals(data));
  } finally {
    proxy.fault = () => undefined;
  }
  const streamed = proxy.calls.filter(gets('cut-range'));
  assert.equal(streamed.length, 2, 'one GET, cut, then one for the rest');
  assert.equal(streamed[0]!.range, undefined);
  assert.ok(streamed[1]!.range === undefined || rangeOf(streamed[1]!)[1] === data.length - 1, streamed[1]!.range);
});

test('a range cut on every try fails the download naming the range and the tries', async () => {
  await put('dead-range', randomBytes(2 * RANGE));
  proxy.fault = (c) => (gets('dead-range')(c) && rangeOf(c)[1] === 2 * RANGE - 1 ? 'cut' : undefined);
  try {
    await assert.rejects(download(proxied, 'dead-range', { retryDelaysMs: [50, 50] }), /^Error: download of dead-range from http:\S+ failed \(bytes 65536-131071, 3 tries\): /);
  } finally {
    proxy.fault = () => undefined;
  }
});

test('an object overwritten during the download is refused: nothing of two versions is handed on', async () => {
  await put('overwritten', randomBytes(10 * RANGE));
  const { stream } = await openRangedDownload(direct, 'overwritten', { concurrency: 2, rangeBytes: RANGE });
  const it = stream[Symbol.asyncIterator]();
  assert.equal(((await it.next()).value as Buffer).length, RANGE);
  await put('overwritten', randomBytes(10 * RANGE));
  await assert.rejects(
    (async () => {
      while (!(await it.next()).done);
    })(),
    (err: Error) => err instanceof ObjectChangedError && /^overwritten in http:\S+ was overwritten during the download/.test(err.message),
  );
});

test('an abort stops the download at once: the stream fails with the reason and no range is asked after it', async () => {
  await put('aborted', randomBytes(20 * RANGE));
  proxy.calls = [];
  const abort = new AbortController();
  const { stream } = await openRangedDownload(proxied, 'aborted', { concurrency: 2, rangeBytes: RANGE, signal: abort.signal });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  const started = Date.now();
  abort.abort(new Error('stop now'));
  await assert.rejects(it.next(), /stop now/);
  assert.ok(Date.now() - started < 500, `stopped in ${Date.now() - started} ms`);
  assert.ok(stream.destroyed);
  await new Promise((resolve) => setTimeout(resolve, 200)); // nothing may start later
  // The first range, and the two started ahead of the consumer when it was handed on; not one more.
  const asked = proxy.calls.filter(gets('aborted')).length;
  assert.ok(asked <= 3, `${asked} ranges asked`);
});

/** A tar.gz of a small fake datadir (top folder `data`, as the archive stage writes) and its sha256. */
function fakeFullBackup(): { archive: Buffer; sha256: string; files: Map<string, Buffer> } {
  const src = path.join(scratch, 'src');
  mkdirSync(path.join(src, 'data', 'db'), { recursive: true });
  const files = new Map<string, Buffer>([
    ['mysql.ibd', randomBytes(200_000)],
    ['db/t.ibd', randomBytes(300_000)],
  ]);
  for (const [name, data] of files) writeFileSync(path.join(src, 'data', name), data);
  const archive = execFileSync('tar', ['-czf', '-', '-C', src, 'data'], { maxBuffer: 64 * 1024 * 1024 });
  rmSync(src, { recursive: true });
  return { archive, sha256: createHash('sha256').update(archive).digest('hex'), files };
}

test('a full backup is extracted from ranges with a closing progress line; a corrupt range is corruption, a dead one is not', async () => {
  const { archive, sha256, files } = fakeFullBackup();
  const key = 'bak_1_20250101000000.tar.gz';
  await put(key, archive);
  assert.ok(archive.length > 3 * 16 * 1024, 'the archive spans several ranges');
  const opts = { concurrency: 3, rangeBytes: 16 * 1024, retryDelaysMs: [50, 50] };

  const lines: string[] = [];
  const datadir = path.join(scratch, 'restored');
  await extractFullVerified(proxied, key, sha256, datadir, { ...opts, expectedBytes: archive.length, log: (l) => lines.push(l) });
  for (const [name, data] of files) assert.ok(readFileSync(path.join(datadir, name)).equals(data), name);
  assert.equal(lines.length, 1, lines.join('\n'));
  assert.match(lines[0]!, new RegExp(`^downloading and extracting ${key}: \\d+\\.\\d MB in \\d+\\.\\d s \\(\\d+\\.\\d MB/s\\)$`));

  proxy.fault = (c) => (gets(key)(c) && c.range?.startsWith('bytes=16384-') ? 'corrupt' : undefined);
  try {
    await assert.rejects(extractFullVerified(proxied, key, sha256, path.join(scratch, 'corrupt'), opts), (err: Error) => err instanceof RestoreCorruptError && /sha256 is [0-9a-f]{64}, the archive recorded/.test(err.message));
  } finally {
    proxy.fault = () => undefined;
  }

  proxy.fault = (c) => (gets(key)(c) && rangeOf(c)[1] === 3 * 16 * 1024 - 1 ? 'cut' : undefined);
  try {
    await assert.rejects(
      extractFullVerified(proxied, key, sha256, path.join(scratch, 'cut'), opts),
      (err: Error) => err instanceof RestoreFailedError && !(err instanceof RestoreCorruptError) && /^download of \S+ from http:\S+ failed \(bytes 32768-49151, 3 tries\)/.test(err.message),
    );
  } finally {
    proxy.fault = () => undefined;
  }
});
