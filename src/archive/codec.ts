// Compression behind one small interface, so zstd or encryption can be added as another codec.
import zlib from 'node:zlib';
import { PassThrough, type Transform } from 'node:stream';

export const codecNames = ['gzip', 'none'] as const;
export type CodecName = (typeof codecNames)[number];

export interface Codec {
  name: CodecName;
  /** What follows `.tar` (archives) or the file name (binlogs): '.gz' or ''. */
  extension: string;
  compress(level?: number): Transform;
  decompress(): Transform;
}

const codecs: Record<CodecName, Codec> = {
  gzip: {
    name: 'gzip',
    extension: '.gz',
    compress: (level = 6) => zlib.createGzip({ level }),
    decompress: () => zlib.createGunzip(),
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

/** The codec that produced an object, from its name (restore without metadata needs this). */
export function codecForObjectName(name: string): Codec {
  return name.endsWith('.gz') ? codecs.gzip : codecs.none;
}
