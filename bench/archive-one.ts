// One archive run in its own process, so its peak RSS is its own. Prints one JSON line.
import { createArchive, getCodec, type CodecName } from '../src/archive/index.ts';
import { childArgs, measureAndPrint } from './child.ts';

interface Args {
  sourceDir: string;
  outFile: string;
  codec: CodecName;
  level?: number;
  /** Compression threads (every core when absent). */
  threads?: number;
}

const args = childArgs<Args>();
await measureAndPrint(async () => ({
  ...(await createArchive({ sourceDir: args.sourceDir, outFile: args.outFile, codec: getCodec(args.codec), level: args.level, threads: args.threads })),
}));
