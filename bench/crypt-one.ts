// Encryption alone, in its own process: the zstd archive file read through EncryptStream, and the encrypted copy
// read through DecryptStream, each minus the time of reading the same file with nothing after it. Prints one JSON
// line: encryption's share of the archive stage is then a figure of its own, not the difference of two noisy
// archive runs. The sha256 and the file write beside it are the archive stage's with or without encryption.
import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { Writable, type Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DecryptStream, EncryptStream, Keyring, parseKeyHex } from '../src/crypto/index.ts';
import { childArgs, measureAndPrint } from './child.ts';

interface Args {
  file: string;
  keyHex: string;
}

const args = childArgs<Args>();
const key = parseKeyHex(args.keyHex, 'bench key');
const sealed = `${args.file}.crypt-bench.enc`;

/** Seconds to read `file` through `transforms` into nothing. */
async function readThrough(file: string, ...transforms: Duplex[]): Promise<number> {
  const t = process.hrtime.bigint();
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), ...(transforms as [Duplex]), new Writable({ write: (_c, _e, done) => done() }));
  return Number(process.hrtime.bigint() - t) / 1e9;
}

await measureAndPrint(async () => {
  try {
    await pipeline(createReadStream(args.file), new EncryptStream(key), createWriteStream(sealed));
    // Best of two of each, the reads first so the page cache holds both files.
    const best = async (f: () => Promise<number>) => Math.min(await f(), await f());
    const readPlain = await best(() => readThrough(args.file));
    const readSealed = await best(() => readThrough(sealed));
    const encrypt = await best(() => readThrough(args.file, new EncryptStream(key)));
    const decrypt = await best(() => readThrough(sealed, new DecryptStream(new Keyring(key), { label: sealed })));
    return { encryptSeconds: Math.max(0, encrypt - readPlain), decryptSeconds: Math.max(0, decrypt - readSealed), readSeconds: readPlain };
  } finally {
    rmSync(sealed, { force: true });
  }
});
