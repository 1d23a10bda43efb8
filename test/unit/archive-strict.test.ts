// Tar extraction is strict: a damaged header fails it instead of the entry being skipped (which would leave a
// datadir missing a file), an entry that would leave the destination is refused, and a file-system error keeps its
// code for the restore's "local disk" verdict. Archives made by createArchive, on a real temporary directory.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { createArchive, decodersFor, extractArchive, getCodec } from '../../src/archive/index.ts';

let dir: string;
let archive: string;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-strict-tar-'));
  const source = path.join(dir, 'bak_1_20260101000000');
  mkdirSync(source);
  writeFileSync(path.join(source, 'mysql.ibd'), 'dictionary\n'.repeat(200));
  writeFileSync(path.join(source, 'ibdata1'), 'system\n'.repeat(200));
  archive = path.join(dir, 'bak_1_20260101000000.tar.gz');
  await createArchive({ sourceDir: source, outFile: archive, codec: getCodec('gzip') });
});
after(() => rmSync(dir, { recursive: true, force: true }));

function extract(gzipped: Buffer, destDir: string): Promise<void> {
  return extractArchive(Readable.from([gzipped]), { decoders: decodersFor('bak_1_20260101000000.tar.gz', undefined), destDir, strip: 1 });
}

test('createArchive writes the archive readable by its owner only (0600)', () => {
  assert.equal(statSync(archive).mode & 0o777, 0o600);
});

test('an archive whose members are fine extracts whole', async () => {
  const dest = path.join(dir, 'good');
  await extract(readFileSync(archive), dest);
  assert.deepEqual(readdirSync(dest).sort(), ['ibdata1', 'mysql.ibd']);
});

test("a corrupted header (the second entry's checksum) fails the extraction, naming the bad header", async () => {
  const tarBytes = Buffer.from(zlib.gunzipSync(readFileSync(archive)));
  // Block 0 is the folder's header, block 1 the first file's; its checksum field is bytes 148-155.
  assert.match(tarBytes.subarray(512, 612).toString('latin1'), /^bak_1_20260101000000\//);
  tarBytes[512 + 148] = tarBytes[512 + 148] === 0x31 ? 0x32 : 0x31;
  await assert.rejects(extract(zlib.gzipSync(tarBytes), path.join(dir, 'bad-header')), (err: Error & { tarCode?: string; header?: unknown }) => {
    assert.match(err.message, /^TAR_ENTRY_INVALID: checksum failure$/);
    assert.equal(err.tarCode, 'TAR_ENTRY_INVALID');
    assert.ok(err.header, 'the error carries the header');
    return true;
  });
});

test('an entry that would leave the destination fails the extraction and writes nothing outside', async () => {
  const header = Buffer.alloc(512);
  new tar.Header({ path: '../escaped.txt', mode: 0o644, size: 5, type: 'File', mtime: new Date(), uid: 0, gid: 0 }).encode(header, 0);
  const data = Buffer.alloc(512);
  data.write('evil\n');
  const dest = path.join(dir, 'escape', 'inner');
  const unstripped = extractArchive(Readable.from([zlib.gzipSync(Buffer.concat([header, data, Buffer.alloc(1024)]))]), {
    decoders: decodersFor('x.tar.gz', undefined),
    destDir: dest,
  });
  await assert.rejects(unstripped, /TAR_ENTRY_ERROR: path contains '\.\.'/);
  assert.ok(!existsSync(path.join(dir, 'escape', 'escaped.txt')));
});

test('a file-system error while writing an entry still fails with its code and syscall', async () => {
  // A non-empty directory where the archive has a file: tar's rmdir of it fails (ENOTEMPTY), even for root.
  const dest = path.join(dir, 'fs-error');
  mkdirSync(path.join(dest, 'mysql.ibd', 'occupied'), { recursive: true });
  await assert.rejects(extract(readFileSync(archive), dest), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ENOTEMPTY');
    assert.equal(err.syscall, 'rmdir');
    return true;
  });
});
