// Compression behind one small interface. Every codec writes what its CLI reads: gzip (`gunzip`, `tar -xz`; several
// members, compressed on every core), zstd (`zstd -d`, `tar -I zstd`; one frame, zstd's own threads), none.
import os from 'node:os';
import zlib from 'node:zlib';
import { PassThrough, type Duplex } from 'node:stream';
import { compressionOfObjectName, type CodecName } from '../naming.ts';
import { ParallelGzip } from './parallel-gzip.ts';
import { ZstdDecompress, zstdCompressStream } from './zstd.ts';

export interface LevelRange {
  min: number;
  max: number;
  default: number;
}

export interface CompressOptions {
  /** Within the codec's `levels`; its default when absent. */
  level?: number;
  /** Compression threads; default: every core (os.availableParallelism()). */
  threads?: number;
}

export interface Codec {
  name: CodecName;
  /** What follows `.tar` (archives) or the file name (binlogs): '.gz', '.zst' or ''. */
  extension: string;
  /** Accepted compression levels; undefined when the codec has none. */
  levels?: LevelRange;
  compress(opts?: CompressOptions): Duplex;
  decompress(): Duplex;
}

function threadsOf(opts: CompressOptions): number {
  return opts.threads ?? os.availableParallelism();
}

const codecs: Record<CodecName, Codec> = {
  gzip: {
    name: 'gzip',
    extension: '.gz',
    levels: { min: 1, max: 9, default: 6 },
    compress: (opts = {}) => new ParallelGzip({ level: opts.level ?? 6, threads: threadsOf(opts) }),
    // zlib reads every member of a multi-member file (ours, pigz's, the seed's single member).
    decompress: () => zlib.createGunzip(),
  },
  zstd: {
    name: 'zstd',
    extension: '.zst',
    levels: { min: 1, max: 19, default: 3 },
    compress: (opts = {}) => zstdCompressStream({ level: opts.level ?? 3, threads: threadsOf(opts) }),
    decompress: () => new ZstdDecompress(),
  },
  none: {
    name: 'none',
    extension: '',
    compress: () => new PassThrough(),
    decompress: () => new PassThrough(),
  },
};

export function getCodec(name: CodecName): Codec {
  return codecs[name];
}

/** Why `level` is not a level of `codec` (undefined when it is, or when the codec takes none). */
export function levelProblem(codec: CodecName, level: number): string | undefined {
  const range = codecs[codec].levels;
  if (!range || (level >= range.min && level <= range.max)) return undefined;
  return `${level} is not a ${codec} level (${range.min}-${range.max}, default ${range.default})`;
}

/** The codec of an object or file, from its name's extension (restore without metadata needs this). */
export function codecForObjectName(name: string): Codec {
  return codecs[compressionOfObjectName(name)];
}
