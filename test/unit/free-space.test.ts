// The free-space estimates (src/jobs/free-space.ts) are upper bounds: checked against real archives of real trees.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createArchive, getCodec } from '../../src/archive/index.ts';
import {
  archiveEstimate,
  archiveNeed,
  assertArchiveFits,
  assertCloneFits,
  cloneNeed,
  compressedBound,
  describeShortage,
  freeBytes,
  isNoSpace,
  NoSpaceError,
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

const GiB = 1024 ** 3;
const lastGzip = { ratio: 0.4, backupName: 'bak_7_20260101020000.tar.gz', codec: 'gzip' };

test('the archive is estimated from the last ratio of the same codec plus 25 %, never above the worst case', () => {
  const tar = 10 * GiB;
  assert.deepEqual(archiveEstimate(tar, 'gzip'), {
    bytes: compressedBound(tar, 'gzip'),
    basis: 'worst-case',
    how: 'worst case: no earlier Completed gzip full of this instance records its ratio',
  });
  assert.deepEqual(archiveEstimate(tar, 'gzip', lastGzip), { bytes: 5 * GiB, basis: 'ratio', how: 'bak_7_20260101020000.tar.gz compressed to 40.0 %, + 25 %' });
  const incompressible = archiveEstimate(tar, 'gzip', { ...lastGzip, ratio: 0.999 });
  assert.equal(incompressible.bytes, compressedBound(tar, 'gzip'), 'capped at the worst case');
  assert.equal(incompressible.basis, 'worst-case');
  assert.match(incompressible.how, /^worst case: bak_7_20260101020000\.tar\.gz compressed to 99\.9 %, \+ 25 % would exceed it$/);
  assert.deepEqual(archiveEstimate(tar, 'none', { ...lastGzip, codec: 'none', ratio: 1 }), { bytes: tar, basis: 'worst-case', how: 'worst case: no compression' });
});

test('with a ratio, a clone still needs its whole size but less room for its archive', () => {
  const estimate = { dataBytes: 10 * GiB, files: 1000, redoBytes: GiB, source: 'information_schema' as const };
  const worst = cloneNeed(estimate, 'gzip');
  const ratio = cloneNeed(estimate, 'gzip', lastGzip);
  assert.equal(worst.archiveEstimate.basis, 'worst-case');
  assert.equal(ratio.archiveEstimate.basis, 'ratio');
  assert.equal(ratio.clone, worst.clone);
  assert.ok(Math.abs(ratio.archive - worst.archive / 2) < 8 * 1024 * 1024, `half the worst case at 40 % + 25 %: ${ratio.archive} vs ${worst.archive}`);
  assert.equal(ratio.total, withMargin(ratio.clone + ratio.archive));
});

test('the refusal before a clone has both numbers and says how the archive was estimated', async () => {
  const huge = { dataBytes: 1024 ** 5, files: 10, redoBytes: GiB, source: 'information_schema' as const };
  const cases = [
    { last: undefined, archive: /, archive up to \S+ \(worst case: no earlier Completed gzip full of this instance records its ratio\), margin \S+$/ },
    { last: lastGzip, archive: /, archive about \S+ \(bak_7_20260101020000\.tar\.gz compressed to 40\.0 %, \+ 25 %\), margin \S+$/ },
  ];
  for (const { last, archive } of cases) {
    await assert.rejects(assertCloneFits({ backupPath: dir, backupName: 'bak_7_20260102020000.tar.gz', codec: 'gzip', estimate: huge, last }), (err: Error) => {
      assert.ok(err instanceof NoSpaceError, err.message);
      const m = /^not enough space in backup_path \S+ for bak_7_20260102020000\.tar\.gz: needs \S+, \S+ free \((\d+) > (\d+) bytes\); clone about /.exec(err.message);
      assert.ok(m, err.message);
      assert.equal(Number(m[1]), cloneNeed(huge, 'gzip', last).total);
      assert.match(err.message, archive);
      return true;
    });
  }
});

test('the ratio of a real archive, + 25 %, covers archiving the same tree again; the refusal before the tar names it', async () => {
  const source = path.join(dir, 'bak_2_20260101000000');
  mkdirSync(source);
  writeFileSync(path.join(source, 'ibdata1'), Buffer.alloc(4 * 1024 * 1024, 'row data, row data; '));
  writeFileSync(path.join(source, 'random.ibd'), randomBytes(512 * 1024));
  const first = await createArchive({ sourceDir: source, outFile: path.join(dir, 'first.tar.gz'), codec: getCodec('gzip'), level: 1 });
  const last = { ratio: first.bytes / first.sourceBytes, backupName: 'bak_2_20260101000000.tar.gz', codec: 'gzip' };
  const tree = await treeSize(source);
  const estimate = archiveEstimate(tarBound(tree), 'gzip', last);
  assert.equal(estimate.basis, 'ratio');
  assert.ok(estimate.bytes < compressedBound(tarBound(tree), 'gzip') / 2, `far below the worst case: ${estimate.bytes}`);
  const again = await createArchive({ sourceDir: source, outFile: path.join(dir, 'again.tar.gz'), codec: getCodec('gzip'), level: 1 });
  assert.ok(again.bytes <= estimate.bytes, `${again.bytes} <= ${estimate.bytes}`);
  assert.ok(archiveNeed(tree, 'gzip', last) >= withMargin(again.bytes));

  // A sparse file so large that even its archive at that ratio is twice what the filesystem has free.
  truncateSync(path.join(source, 'ibdata1'), Math.ceil((2 * (await freeBytes(dir))) / last.ratio));
  await assert.rejects(assertArchiveFits({ backupPath: dir, cloneDir: source, archiveName: 'bak_2_20260102000000.tar.gz', codec: 'gzip', reclaimable: 0, last }), (err: Error) => {
    assert.ok(err instanceof NoSpaceError, err.message);
    assert.match(
      err.message,
      /^not enough space in backup_path \S+ for bak_2_20260102000000\.tar\.gz: needs \S+, \S+ free \(\d+ > \d+ bytes\); the archive is estimated at \S+: the clone's \S+ in 2 files as tar, bak_2_20260101000000\.tar\.gz compressed to \d+\.\d %, \+ 25 %, plus the margin$/,
    );
    return true;
  });
  await assert.rejects(assertArchiveFits({ backupPath: dir, cloneDir: source, archiveName: 'bak_2_20260102000000.tar.gz', codec: 'gzip', reclaimable: 0 }), (err: Error) => {
    assert.match(err.message, /; the archive is at most the clone's \S+ in 2 files as tar plus gzip's overhead on incompressible data \(worst case: no earlier Completed gzip full of this instance records its ratio\), plus the margin$/);
    return true;
  });
});
