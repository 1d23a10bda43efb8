// Archives and compression. A datadir becomes a streaming archive: tar → read throttle → codec → (hash, count) →
// file, memory flat at any datadir size. Owns the codecs (gzip on every core, zstd, none) and how stored bytes
// relate to the plaintext (encoding.ts: compressed, then encrypted when a key is given). Knows nothing of object
// storage: its callers upload the file.
// May import: crypto, streams.
import { createWriteStream } from 'node:fs';
import { readdir, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';
import { HashingCounter, throttle } from '../streams/index.ts';
import type { EncryptionKey } from '../crypto/index.ts';
import { type Codec, type CompressOptions, getCodec, codecForObjectName, levelProblem } from './codec.ts';
import { decodersFor, encoders, encodingSuffix, type Encoding } from './encoding.ts';

export { type Codec, type CompressOptions, getCodec, codecForObjectName, levelProblem };
export { decodersFor, encoders, encodingSuffix, type Encoding };

export interface ArchiveResult {
  bytes: number;
  sha256: string;
  sourceBytes: number;
}

/** Total size of regular files under dir (for progress). */
export async function directorySize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += await directorySize(full);
    else if (entry.isFile()) total += (await lstat(full)).size;
  }
  return total;
}

class ProgressCounter extends Transform {
  bytes = 0;
  constructor(private readonly onBytes: (n: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.onBytes(this.bytes);
    done(null, chunk);
  }
}

export interface CreateArchiveOptions {
  /** The directory to archive; it becomes the archive's single top-level folder. */
  sourceDir: string;
  outFile: string;
  codec: Codec;
  /** Encrypts the compressed archive with this key (src/crypto); absent: not encrypted. */
  encryptWith?: EncryptionKey;
  /** The codec's default when absent. */
  level?: number;
  /** Compression threads; default: every core. */
  threads?: number;
  /** Limit on reading the source directory, in MiB/s (0 or absent: none). */
  readMbPerSecond?: number;
  signal?: AbortSignal;
  /** Called with the fraction (0..1) of source bytes archived, at most a few times a second. */
  onProgress?: (fraction: number) => void;
}

/**
 * Writes `<outFile>` = tar of sourceDir (top-level folder named after it) compressed with `codec`, and
 * returns the archive's size and sha256, computed while writing so the file is never read twice.
 */
export async function createArchive(opts: CreateArchiveOptions): Promise<ArchiveResult> {
  const sourceBytes = await directorySize(opts.sourceDir);
  let lastReport = 0;
  const progress = new ProgressCounter((n) => {
    const now = Date.now();
    if (opts.onProgress && now - lastReport > 500) {
      lastReport = now;
      opts.onProgress(sourceBytes === 0 ? 1 : Math.min(1, n / sourceBytes));
    }
  });
  // node-tar reads up to 16 MiB per file chunk by default; 1 MiB keeps peak memory flat (npm run bench).
  const pack = tar.create({ cwd: path.dirname(opts.sourceDir), portable: false, maxReadSize: 1024 * 1024 }, [path.basename(opts.sourceDir)]) as unknown as Readable;
  const counter = new HashingCounter();
  // tar reads the files as fast as its output is taken, so the throttle on its output paces the disk reads.
  const encode = encoders({ codec: opts.codec, key: opts.encryptWith }, { level: opts.level, threads: opts.threads });
  await pipeline(pack, throttle(opts.readMbPerSecond), progress, ...(encode as [Duplex]), counter, createWriteStream(opts.outFile, { mode: 0o600 }), {
    signal: opts.signal,
  });
  opts.onProgress?.(1);
  return { bytes: counter.bytes, sha256: counter.digest(), sourceBytes };
}

export interface ExtractOptions {
  /** From stored bytes to the tar stream: decodersFor(the object's name, keyring). */
  decoders: Duplex[];
  destDir: string;
  /** Leading path components to drop (1 = put the archive's top-level folder's contents in destDir). */
  strip?: number;
  signal?: AbortSignal;
}

/**
 * Extracts a (compressed) tar stream into destDir. A file-system error while writing an entry (ENOSPC, EIO,
 * EACCES…), which tar only reports as a warning and skips, fails the extraction with that error (its `code` and
 * `syscall` kept): an incomplete datadir must not pass for a restored one.
 */
export async function extractArchive(source: Readable, opts: ExtractOptions): Promise<void> {
  await mkdir(opts.destDir, { recursive: true });
  let fsError: Error | undefined;
  const extractor = tar.extract({
    cwd: opts.destDir,
    strip: opts.strip ?? 0,
    // A bad header, a truncated archive or an entry that would leave destDir fails the extraction, not skipped.
    strict: true,
    onwarn: (_code: string, _message: string, data: unknown) => {
      if (data instanceof Error && typeof (data as NodeJS.ErrnoException).syscall === 'string') fsError ??= data;
    },
  }) as unknown as NodeJS.WritableStream;
  await pipeline(source, ...(opts.decoders as [Duplex]), extractor, { signal: opts.signal });
  if (fsError) throw fsError;
}
