import type { Command } from 'commander';
import { parseId, printTable, UsageError, type Run } from '../context.ts';

export function registerBackups(program: Command, run: Run): void {
  const backups = program.command('backups').description('backups recorded in the metadata center');
  backups
    .command('list')
    .description('list backup rows, newest first')
    .option('--instance <id>', 'only this tb_instance id')
    .option('--type <type>', 'full or binlog')
    .option('--limit <n>', 'at most this many rows', '50')
    .option('--json', 'print JSON')
    .action((o) =>
      run(async (ctx) => {
        if (o.type && !['full', 'binlog'].includes(o.type)) throw new UsageError(`--type must be full or binlog, got "${o.type}"`);
        const instanceId = o.instance ? parseId(o.instance) : undefined;
        if (instanceId !== undefined) await ctx.instance(instanceId);
        const metadata = await ctx.metadata();
        const rows = await metadata.listBackups({ instanceId, type: o.type, limit: parseId(o.limit, '--limit') });
        if (o.json) {
          console.log(JSON.stringify(rows, null, 2));
          return;
        }
        printTable(rows as unknown as Array<Record<string, unknown>>, [
          'id', 'tbInstanceId', 'backupType', 'state', 'startTime', 'endTime', 'backupSize', 'backupName', 'info',
        ], metadata.timeZone);
      }),
    );
}
