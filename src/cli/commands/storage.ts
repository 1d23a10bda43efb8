import type { Command } from 'commander';
import { requireOss } from '../../config/index.ts';
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
          rows.push({ key: item.key, size: item.size, lastModified: item.lastModified, sha256: info?.metadata['mcb-sha256'] ?? '' });
        }
        if (o.json) console.log(JSON.stringify(rows, null, 2));
        else {
          console.log(`${store.location}:`);
          printTable(rows, ['key', 'size', 'lastModified', 'sha256'], zone);
        }
      }),
    );
}
