// Archiving one closed binlog the way the binlog job does (src/jobs/binlog/upload.ts): every event's checksum
// checked, the stored bytes' digest computed in a first pass, then the upload and its verification. In its own
// process; prints one JSON line with the seconds of each phase.
import { getCodec } from '../src/archive/index.ts';
import type { CodecName } from '../src/naming.ts';
import type { Config, OssConfig } from '../src/config/index.ts';
import type { JobContext } from '../src/jobs/types.ts';
import { discardEncoded, encodedDigest, uploadBinlog, verifyBinlogChecksums } from '../src/jobs/binlog/upload.ts';
import { MinioObjectStore } from '../src/storage/index.ts';
import { parseKeyHex } from '../src/crypto/index.ts';
import { childArgs, measureAndPrint } from './child.ts';

interface Args {
  oss: OssConfig;
  bucket: string;
  file: string;
  key: string;
  codec: CodecName;
  level: number;
  threads: number;
  verify: string;
  /** Encrypts after compressing with this key (64 hex characters). */
  encryptionKeyHex?: string;
}

const args = childArgs<Args>();
const storage = new MinioObjectStore(args.oss, args.bucket);
const codec = getCodec(args.codec);
// Only what uploadBinlog reads of a job context.
const ctx = { storage, config: { backup: { compressionLevel: args.level, compressionThreads: args.threads, verify: args.verify } } as unknown as Config } as unknown as JobContext;

const since = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e9;
await measureAndPrint(async () => {
  let t = process.hrtime.bigint();
  await verifyBinlogChecksums(args.file, args.key);
  const checksumSeconds = since(t);
  t = process.hrtime.bigint();
  const digest = await encodedDigest(args.file, { codec, options: { level: args.level, threads: args.threads }, key: args.encryptionKeyHex ? parseKeyHex(args.encryptionKeyHex, 'bench key') : undefined });
  const digestSeconds = since(t);
  t = process.hrtime.bigint();
  const stored = await uploadBinlog(args.file, args.key, digest, codec, { instanceId: 1, backupUuid: 'bench', name: args.key }, ctx).finally(() => discardEncoded(digest));
  const uploadSeconds = since(t);
  return { ...stored, checksumSeconds, digestSeconds, uploadSeconds };
});
