// The free-space estimates (src/jobs/free-space.ts) are upper bounds: checked against real archives of real trees.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createArchive, getCodec } from '../../src/archive/index.ts';
import {
  archiveNeed,
  cloneNeed,
  compressedBound,
  describeShortage,
  isNoSpace,
  tarBound,
  treeSize,
  withMargin,
} from '../../src/jobs/free-space.ts';

const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-free-space-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A clone-like tree: empty, odd-sized and random files, a nested folder and a name longer than tar's 100 bytes. */
function makeTree(root: string): void {
  mkdirSync(path.join(root, 'sys', 'deeper'), { recursive: true });
  writeFileSync(path.join(root, 'empty'), '');
  writeFileSync(path.join(root, 'ibdata1'), Buffer.alloc(1024 * 1024));
  writeFileSync(path.join(root, 'random.ibd'), randomBytes(300_001));
  writeFileSync(path.join(root, 'sys', 'deeper', `${'t'.repeat(150)}.ibd`), randomBytes(513));
  writeFileSync(path.join(root, 'sys', 'one-byte'), 'x');
}

test('the tar bound holds for a real archive, uncompressed and gzip, and stays close to it', async () => {
  const source = path.join(dir, 'bak_1_20260101000000');
  makeTree(source);
  const tree = await treeSize(source);
  assert.deepEqual({ files: tree.files, directories: tree.directories }, { files: 5, directories: 3 });
  assert.equal(tree.paddedBytes, 0 + 1024 * 1024 + 300_032 + 1024 + 512);
  for (const name of ['none', 'gzip'] as const) {
    const out = path.join(dir, `archive.${name}`);
    const result = await createArchive({ sourceDir: source, outFile: out, codec: getCodec(name), level: 1 });
    const bound = compressedBound(tarBound(tree), name);
    assert.ok(result.bytes <= bound, `${name}: archive ${result.bytes} bytes is within the bound ${bound}`);
    assert.equal(statSync(out).size, result.bytes);
    if (name === 'none') assert.ok(bound - result.bytes < 32 * 1024, `the bound is tight for tar: ${bound - result.bytes} bytes over`);
    assert.ok(archiveNeed(tree, name) >= withMargin(result.bytes), 'the need adds the margin on top');
  }
});

test('gzip never exceeds its bound, even on incompressible data', async () => {
  const { gzipSync } = await import('node:zlib');
  for (const size of [0, 1, 4095, 65_536, 1_000_003]) {
    const data = randomBytes(size);
    assert.ok(gzipSync(data, { level: 9 }).length <= compressedBound(size, 'gzip'), `${size} random bytes`);
  }
  assert.equal(compressedBound(12345, 'none'), 12345);
});

test('the margin is 2 % plus 16 MiB', () => {
  assert.equal(withMargin(0), 16 * 1024 * 1024);
  assert.equal(withMargin(100 * 1024 * 1024), 102 * 1024 * 1024 + 16 * 1024 * 1024);
});

test('a clone needs its tablespaces, the redo capacity and room for its archive beside it', () => {
  const GiB = 1024 ** 3;
  const need = cloneNeed({ dataBytes: 10 * GiB, files: 1000, redoBytes: GiB, source: 'information_schema' }, 'gzip');
  assert.ok(need.clone >= 11 * GiB && need.clone < 11 * GiB + 8 * 1024 * 1024, `clone ${need.clone}`);
  assert.ok(need.archive >= need.clone - 8 * 1024 * 1024 && need.archive < 11.01 * GiB, `archive ${need.archive}`);
  assert.equal(need.total, withMargin(need.clone + need.archive));
  const none = cloneNeed({ dataBytes: 10 * GiB, files: 1000, redoBytes: GiB, source: 'information_schema' }, 'none');
  assert.ok(none.archive < need.archive, 'no compression, no deflate overhead');
});

test('the shortage names both numbers, human and exact', () => {
  assert.equal(describeShortage(3 * 1024 ** 3, 1024 ** 3), 'needs 3.0G, 1.0G free (3221225472 > 1073741824 bytes)');
});

test('ENOSPC is recognized from Node and from MySQL', () => {
  assert.ok(isNoSpace(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' })));
  assert.ok(isNoSpace(Object.assign(new Error('EDQUOT'), { code: 'EDQUOT' })));
  assert.ok(isNoSpace(new Error("CLONE LOCAL DATA DIRECTORY '/x' failed on h:1: Can't create file '/x/ibdata1' (errno: 28 - No space left on device)")));
  assert.ok(isNoSpace(new Error('Error writing file ./x (OS errno 28 - No space left on device)')));
  assert.ok(isNoSpace(new Error('Clone estimated database size is 170.12 MiB. Available space 39.99 MiB is not enough.')));
  assert.ok(!isNoSpace(new Error("Can't create file '/x/ibdata1' (errno: 13 - Permission denied)")));
  assert.ok(!isNoSpace(Object.assign(new Error('EACCES'), { code: 'EACCES' })));
});
