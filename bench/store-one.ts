// One storage step against the S3 server in its own process (peak RSS its own): an upload of a file, a
// verification of a stored object, or a restore (download + decompress + extract) of a full backup's object; and
// the restore's ceiling without a store (decompress + extract of the local archive file). Prints one JSON line.
import { createReadStream, statSync } from 'node:fs';
import { decodersFor, extractArchive } from '../src/archive/index.ts';
import type { OssConfig, VerifyMode } from '../src/config/index.ts';
import { extractFullVerified } from '../src/restore/run.ts';
import { Keyring, parseKeyHex } from '../src/crypto/index.ts';
import { MinioObjectStore, verifyStoredObject } from '../src/storage/index.ts';
import { HashingCounter } from '../src/streams/index.ts';
import { childArgs, measureAndPrint } from './child.ts';

export type StoreStep =
  | { op: 'upload'; file: string; key: string; sha256: string; concurrency?: number; partChecksums?: boolean; via?: UploadVia }
  | { op: 'verify'; key: string; bytes: number; sha256: string; mode: VerifyMode }
  | { op: 'restore'; key: string; bytes: number; sha256: string; destDir: string; concurrency?: number; keyHex?: string }
  | { op: 'restore-one-stream'; key: string; bytes: number; sha256: string; destDir: string }
  | { op: 'extract-file'; file: string; destDir: string };

/** putFile (default, as the upload stage sends an archive: parts read as ranges of the file) or putStream (parts buffered). */
export type UploadVia = 'file' | 'stream';

export interface StoreArgs {
  oss: OssConfig;
  bucket: string;
  step: StoreStep;
}

const { oss, bucket, step } = childArgs<StoreArgs>();
const store = new MinioObjectStore({ ...oss, ...(step.op === 'upload' && step.concurrency ? { uploadConcurrency: step.concurrency } : {}) }, bucket);

await measureAndPrint(async () => {
  switch (step.op) {
    case 'upload': {
      const size = statSync(step.file).size;
      const opts = { size, metadata: { 'mcb-sha256': step.sha256 }, partChecksums: step.partChecksums };
      const put = step.via === 'stream' ? await store.putStream(step.key, createReadStream(step.file), opts) : await store.putFile(step.key, step.file, opts);
      if (put.sha256 !== step.sha256) throw new Error(`uploaded sha256 ${put.sha256}, the archive's is ${step.sha256}`);
      return { bytes: put.bytes };
    }
    case 'verify':
      await verifyStoredObject(store, step.key, { bytes: step.bytes, sha256: step.sha256 }, step.mode);
      return {};
    case 'restore':
      await extractFullVerified(store, step.key, step.sha256, step.destDir, { expectedBytes: step.bytes, concurrency: step.concurrency, keyring: step.keyHex ? new Keyring(parseKeyHex(step.keyHex, 'bench key')) : undefined });
      return {};
    case 'restore-one-stream': {
      // The restore as it was before parallel downloads: one GET stream → decompress → tar, in one pipeline.
      const counted = new HashingCounter();
      const source = await store.getStream(step.key);
      source.on('error', (err) => counted.destroy(err));
      source.pipe(counted);
      await extractArchive(counted, { decoders: decodersFor(step.key, undefined), destDir: step.destDir, strip: 1 });
      if (counted.digest() !== step.sha256) throw new Error(`${step.key} read back with another sha256`);
      return {};
    }
    case 'extract-file':
      await extractArchive(createReadStream(step.file), { decoders: decodersFor(step.file, undefined), destDir: step.destDir, strip: 1 });
      return {};
  }
});
