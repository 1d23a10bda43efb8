// zstd through zstd-napi (the reference C library, statically built). Compression is one frame made by zstd's own
// threads (`nbWorkers`, like `zstd -T#`), with the content checksum the CLI writes too; the output depends on the
// level and on whether threads are used at all, never on their number or on how the input was chunked.
// Decompression is streaming and honours backpressure: a run of zeros can expand a few bytes into gigabytes.
import { createRequire } from 'node:module';
import { Transform, type TransformCallback } from 'node:stream';
import type * as Binding from 'zstd-napi/binding.js';
import type * as Zstd from 'zstd-napi';

interface ZstdLibrary {
  binding: typeof Binding;
  zstd: typeof Zstd;
}

let library: ZstdLibrary | undefined;

/** Loaded on first use: a host that never uses zstd never loads the native module. */
function zstdLibrary(): ZstdLibrary {
  if (!library) {
    const require = createRequire(import.meta.url);
    library = { binding: require('zstd-napi/binding') as typeof Binding, zstd: require('zstd-napi') as typeof Zstd };
  }
  return library;
}

export interface ZstdCompressOptions {
  level: number;
  threads: number;
}

export function zstdCompressStream(opts: ZstdCompressOptions): Transform {
  // nbWorkers ≥ 1 even on one core: the output is then the same whatever the thread count (0 would differ).
  // zstd accepts at most 200 (ZSTDMT_NBWORKERS_MAX).
  const nbWorkers = Math.min(200, Math.max(1, Math.floor(opts.threads)));
  return new (zstdLibrary().zstd.CompressStream)({ compressionLevel: opts.level, nbWorkers, checksumFlag: true });
}

export class ZstdDecompress extends Transform {
  private readonly dctx: Binding.DCtx;
  private readonly outBytes: number;
  private input: Buffer | undefined;
  private inputDone: TransformCallback | undefined;
  private inFrame = false;
  private sawInput = false;
  private pumping = false;

  constructor() {
    super();
    const { binding } = zstdLibrary();
    this.dctx = new binding.DCtx();
    this.outBytes = binding.dStreamOutSize();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (chunk.length > 0) this.sawInput = true;
    this.input = chunk;
    this.inputDone = done;
    this.pump();
  }

  override _read(size: number): void {
    this.pump();
    super._read(size);
  }

  override _flush(done: TransformCallback): void {
    if (!this.sawInput || this.inFrame) done(new Error('unexpected end of file: the zstd stream is truncated'));
    else done();
  }

  /** Decompresses the pending input, one output buffer at a time, stopping while the reader is full. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.input && !this.destroyed) {
        const out = Buffer.allocUnsafe(this.outBytes);
        const [remaining, produced, consumed] = this.dctx.decompressStream(out, this.input);
        this.input = this.input.subarray(consumed);
        const wantsMore = produced > 0 ? this.push(out.subarray(0, produced)) : true;
        if (this.input.length === 0 && (produced < out.length || remaining === 0)) {
          this.inFrame = remaining !== 0;
          this.finishInput();
        } else if (!wantsMore) {
          return;
        }
      }
    } catch (err) {
      this.finishInput(err as Error);
    } finally {
      this.pumping = false;
    }
  }

  private finishInput(err?: Error): void {
    const done = this.inputDone;
    this.input = undefined;
    this.inputDone = undefined;
    done?.(err);
  }
}
