// One archive run in its own process, so its peak RSS is its own. Prints one JSON line.
import { createArchive, getCodec, type CodecName } from '../src/archive/index.ts';

const [sourceDir, outFile, codecName = 'gzip'] = process.argv.slice(2);
const started = process.hrtime.bigint();
const result = await createArchive({ sourceDir: sourceDir!, outFile: outFile!, codec: getCodec(codecName as CodecName), level: 6 });
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
console.log(JSON.stringify({ ...result, seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
