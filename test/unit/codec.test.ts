import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { createArchive, getCodec } from '../../src/archive/index.ts';
import { ParallelGzip } from '../../src/archive/parallel-gzip.ts';
import { compressedBound } from '../../src/jobs/free-space.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

/** Text-like bytes (compress about 2×) mixed with random ones, so blocks differ and compress unevenly. */
function sample(bytes: number, seed = 1): Buffer {
  const out = Buffer.alloc(bytes);
  let x = seed;
  for (let i = 0; i < bytes; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i % 4096 < 3072 ? 48 + ((x >>> 16) % 10) : (x >>> 24) & 0xff;
  }
  return out;
}

async function collect(source: Readable | Buffer[], through: Duplex): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(Array.isArray(source) ? Readable.from(source) : source, through, new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk);
      done();
    },
  }));
  return Buffer.concat(chunks);
}

/** The members of a gzip file whose members have no optional header fields (what zlib writes). */
function gzipMembers(gz: Buffer): Buffer[] {
  const members: Buffer[] = [];
  for (let at = 0; at < gz.length; ) {
    assert.deepEqual([...gz.subarray(at, at + 4)], [0x1f, 0x8b, 8, 0], `a plain gzip header at ${at}`);
    const { engine } = zlib.inflateRawSync(gz.subarray(at + 10), { info: true }) as unknown as { engine: { bytesWritten: number } };
    const end = at + 10 + engine.bytesWritten + 8;
    members.push(gz.subarray(at, end));
    at = end;
  }
  return members;
}

async function withStdin(cmd: string, args: string[], input: Buffer): Promise<Buffer> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const out: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin.end(input);
  assert.equal(await exited, 0, `${cmd} ${args.join(' ')} exits 0`);
  return Buffer.concat(out);
}

test('gzip: several members compressed on threads, read back whole by gunzip, zlib and tar -xzf', async () => {
  const data = sample(3 * 1024 * 1024 + 12345);
  const gz = await collect([data.subarray(0, 100), data.subarray(100)], getCodec('gzip').compress({ threads: 2 }));
  const members = gzipMembers(gz);
  assert.equal(members.length, 4, 'one member per MiB of input');
  assert.ok((await withStdin('gunzip', ['-c'], gz)).equals(data), 'gunzip reads every member');
  assert.ok((await collect([gz], getCodec('gzip').decompress())).equals(data), 'zlib reads every member');

  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcb-codec-'));
  try {
    const source = path.join(dir, 'bak_1_20260101000000');
    await mkdir(path.join(source, 'db'), { recursive: true });
    await writeFile(path.join(source, 'db', 't1.ibd'), data);
    await writeFile(path.join(source, 'ibdata1'), sample(1024 * 1024, 7));
    await writeFile(path.join(source, 'empty'), '');
    const outFile = path.join(dir, 'bak_1_20260101000000.tar.gz');
    const result = await createArchive({ sourceDir: source, outFile, codec: getCodec('gzip'), threads: 2 });
    const archive = await readFile(outFile);
    assert.equal(result.bytes, archive.length);
    assert.ok(gzipMembers(archive).length > 1, 'the archive has several members');
    await mkdir(path.join(dir, 'x'));
    await run('tar', ['-xzf', outFile, '-C', path.join(dir, 'x')]);
    for (const file of ['db/t1.ibd', 'ibdata1', 'empty']) {
      assert.ok((await readFile(path.join(dir, 'x', 'bak_1_20260101000000', file))).equals(await readFile(path.join(source, file))), file);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('gzip: members in input order across many blocks, the same bytes whatever the threads and chunking', async () => {
  const block = 4096;
  const data = sample(300 * block + 77, 3);
  const chunks: Buffer[] = [];
  for (let at = 0, n = 1; at < data.length; at += n, n = (n * 7 + 1000) % 20000) chunks.push(data.subarray(at, at + n));
  const many = await collect(chunks, new ParallelGzip({ level: 6, threads: 3, blockBytes: block }));
  const one = await collect([data], new ParallelGzip({ level: 6, threads: 1, blockBytes: block }));
  assert.ok(many.equals(one), 'deterministic: the binlog job hashes a first pass and uploads a second');
  const members = gzipMembers(many);
  assert.equal(members.length, 301);
  members.forEach((m, i) => assert.ok(zlib.gunzipSync(m).equals(data.subarray(i * block, (i + 1) * block)), `member ${i} holds block ${i}`));
  assert.ok(zlib.gunzipSync(await collect([], new ParallelGzip({ level: 6, threads: 2 }))).length === 0, 'empty input: one empty member');
});

test('zstd: our output is read by zstd -d, the zstd CLI output by our decompressor; one frame, deterministic', async () => {
  const data = sample(3 * 1024 * 1024, 5);
  const ours = await collect([data.subarray(0, 999), data.subarray(999)], getCodec('zstd').compress({ threads: 2, level: 3 }));
  assert.ok((await withStdin('zstd', ['-d', '-c'], ours)).equals(data), 'zstd -d reads ours');
  assert.ok(ours.length < data.length * 0.7, `compressed: ${ours.length} of ${data.length}`);
  assert.ok((await collect([data], getCodec('zstd').compress({ threads: 1, level: 3 }))).equals(ours), 'the same bytes on 1 thread');
  const theirs = await withStdin('zstd', ['-9', '-T2', '-c'], data);
  assert.ok((await collect([theirs.subarray(0, 5), theirs.subarray(5)], getCodec('zstd').decompress())).equals(data), 'ours reads zstd -9');
  await assert.rejects(collect([ours.subarray(0, ours.length - 10)], getCodec('zstd').decompress()), /truncated/);
  await assert.rejects(collect([], getCodec('zstd').decompress()), /truncated/);
});

test('zstd decompression keeps to backpressure: 256 MiB of zeros are not inflated into memory', async () => {
  const zeros = await collect([Buffer.alloc(16 * 1024 * 1024)], getCodec('zstd').compress({ threads: 1 }));
  const frames = Buffer.concat(Array.from({ length: 16 }, () => zeros));
  const decompress = getCodec('zstd').decompress();
  decompress.write(frames);
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(decompress.readableLength <= 1024 * 1024, `buffered ${decompress.readableLength} bytes with nobody reading`);
  decompress.end();
  let total = 0;
  for await (const chunk of decompress) total += (chunk as Buffer).length;
  assert.equal(total, 256 * 1024 * 1024);
});

test('free-space bounds hold on incompressible data, for every codec', async () => {
  for (const size of [0, 1, 100_000, 1024 * 1024 + 3]) {
    const data = randomBytes(size);
    for (const name of ['gzip', 'zstd'] as const) {
      const out = await collect([data], getCodec(name).compress({ threads: 2 }));
      assert.ok(out.length <= compressedBound(size, name), `${name}: ${out.length} > bound ${compressedBound(size, name)} for ${size} random bytes`);
    }
  }
});

test('createArchive: max_read_mb_per_s paces the reads of the source (3 MiB at 6 MiB/s: at least half a second)', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mcb-codec-'));
  try {
    const source = path.join(dir, 'bak_1_20260101000000');
    await mkdir(source);
    await writeFile(path.join(source, 'ibdata1'), sample(3 * 1024 * 1024, 9));
    const started = performance.now();
    const result = await createArchive({ sourceDir: source, outFile: path.join(dir, 'a.tar'), codec: getCodec('none'), readMbPerSecond: 6 });
    const seconds = (performance.now() - started) / 1000;
    assert.ok(seconds >= 0.45, `took ${seconds.toFixed(2)} s`);
    assert.ok(result.bytes > 3 * 1024 * 1024);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an aborted compression leaves no thread behind: the process exits on its own', async () => {
  const script = `
    import { Readable, Writable } from 'node:stream';
    import { pipeline } from 'node:stream/promises';
    import { getCodec } from './src/archive/codec.ts';
    const endless = () => new Readable({ read() { this.push(Buffer.alloc(256 * 1024, 'x')); } });
    for (const name of ['gzip', 'zstd']) {
      const ac = new AbortController();
      // Aborted at the first output, while the threads hold blocks in flight.
      const sink = new Writable({ write(_c, _e, done) { ac.abort(); done(); } });
      await pipeline(endless(), getCodec(name).compress({ threads: 2 }), sink, { signal: ac.signal }).then(
        () => { throw new Error('not aborted'); },
        (err) => { if (err.name !== 'AbortError') throw err; },
      );
      console.log(name + ' aborted');
    }
  `;
  const started = Date.now();
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: root, timeout: 30_000 });
  assert.equal(stdout, 'gzip aborted\nzstd aborted\n');
  assert.ok(Date.now() - started < 30_000);
});
