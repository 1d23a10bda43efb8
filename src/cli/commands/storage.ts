import { createWriteStream, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { decodersFor } from '../../archive/index.ts';
import { requireOss, ConfigError } from '../../config/index.ts';
import { DecryptionError } from '../../crypto/index.ts';
import { isEncryptedObjectName } from '../../naming.ts';
import { MinioObjectStore } from '../../storage/index.ts';
import { printTable, type Run } from '../context.ts';

export function registerStorage(program: Command, run: Run): void {
  const storage = program.command('storage').description('the object storage of [oss] and bucket_name');
  storage
    .command('ls')
    .description('list objects in the bucket (with the sha256 recorded on upload)')
    .option('--prefix <prefix>', 'only keys starting with this, e.g. bak_106_ or log_106_', '')
    .option('--json', 'print JSON')
    .action((o) =>
      run(async (ctx) => {
        const oss = requireOss(ctx.config);
        const zone = o.json ? undefined : await ctx.timeZoneOrHost((w) => console.error(`warning: ${w}`));
        const store = new MinioObjectStore(oss, oss.bucket);
        await store.checkBucket();
        const rows: Array<Record<string, unknown>> = [];
        for await (const item of store.list(o.prefix)) {
          const info = await store.stat(item.key);
          rows.push({ key: item.key, size: item.size, lastModified: item.lastModified, sha256: info?.metadata['mcb-sha256'] ?? '', keyId: info?.metadata['mcb-key-id'] ?? '' });
        }
        if (o.json) console.log(JSON.stringify(rows, null, 2));
        else {
          console.log(`${store.location}:`);
          printTable(rows, ['key', 'size', 'lastModified', 'sha256', 'keyId'], zone);
        }
      }),
    );
  storage
    .command('get')
    .description('download an object to a file, decrypting an encrypted one (.enc) with the [encryption] keys')
    .argument('<key>', 'the object key, e.g. bak_106_20261201020000.tar.gz.enc')
    .requiredOption('--out <file>', 'where to write it (must not exist)')
    .option('--decompress', 'also decompress (.gz, .zst): write the plain tar or binlog')
    .action((key: string, o) =>
      run(async (ctx) => {
        const oss = requireOss(ctx.config);
        const store = new MinioObjectStore(oss, oss.bucket);
        const out = path.resolve(o.out);
        if (existsSync(out)) throw new ConfigError(`--out ${out} exists; name a new file`);
        const partial = `${out}.part`;
        const decoders = decodersFor(key, ctx.config.encryption);
        // Without --decompress only the decryption runs: the file is what an unencrypted backup's object would be.
        const chosen = o.decompress ? decoders : isEncryptedObjectName(key) ? decoders.slice(0, 1) : [];
        const info = await store.stat(key);
        if (!info) throw new ConfigError(`${key} is not in ${store.location}`);
        try {
          await pipeline(await store.getStream(key), ...(chosen as [Duplex]), createWriteStream(partial, { flags: 'wx', mode: 0o600 }));
          await rename(partial, out);
        } catch (err) {
          await rm(partial, { force: true });
          if (err instanceof DecryptionError) throw new Error(`${err.message}; nothing was written to ${out}`);
          throw err;
        }
        console.log(`${key} → ${out}${isEncryptedObjectName(key) ? ` (decrypted with key ${info.metadata['mcb-key-id'] ?? 'from its header'})` : ''}`);
      }),
    );
}
