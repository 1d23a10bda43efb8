// One archive run in its own process, so its peak RSS is its own. Prints one JSON line.
import { createArchive, getCodec } from '../src/archive/index.ts';
import type { CodecName } from '../src/naming.ts';
import { parseKeyHex } from '../src/crypto/index.ts';
import { childArgs, measureAndPrint } from './child.ts';

interface Args {
  sourceDir: string;
  outFile: string;
  codec: CodecName;
  level?: number;
  /** Compression threads (every core when absent). */
  threads?: number;
  /** Encrypts after compressing with this key (64 hex characters). */
  encryptionKeyHex?: string;
}

const args = childArgs<Args>();
await measureAndPrint(async () => ({
  ...(await createArchive({ sourceDir: args.sourceDir, outFile: args.outFile, codec: getCodec(args.codec), level: args.level, threads: args.threads, encryptWith: args.encryptionKeyHex ? parseKeyHex(args.encryptionKeyHex, 'bench key') : undefined })),
}));
