import type { Command } from 'commander';
import { parseId, printTable, UsageError, type Run } from '../context.ts';

export function registerInstance(program: Command, run: Run): void {
  const instance = program.command('instance').description('manage tb_instance, the list of MySQL instances to back up');

  instance
    .command('add')
    .description('register an instance (is_clone = 1 unless --disabled) and print its id for [backup-conf] tb_instance_id')
    .requiredOption('--host <host>', 'address the instance is reached at (string_link)')
    .option('--port <port>', 'MySQL port (db_port)', '3306')
    .option('--name <name>', 'instance_name (defaults to host:port)')
    .option('--system <system>', 'system_name')
    .option('--owner <owner>', 'owner_name')
    .option('--service-line <line>', 'service_line')
    .option('--disabled', 'register with is_clone = 0')
    .action((o) =>
      run(async (ctx) => {
        if (!/^[A-Za-z0-9.\-:\[\]]{1,50}$/.test(o.host)) throw new UsageError(`--host "${o.host}" is not a host name or address`);
        const port = parseId(o.port, '--port');
        if (port > 65535) throw new UsageError(`--port ${port} is out of range`);
        const metadata = await ctx.metadata();
        const instanceId = `${o.host}:${port}`;
        const id = await metadata.addInstance({
          instanceId,
          instanceName: o.name ?? instanceId,
          stringLink: o.host,
          dbPort: port,
          systemName: o.system,
          ownerName: o.owner,
          serviceLine: o.serviceLine,
          isClone: !o.disabled,
        }).catch((err: { code?: string; message: string }) => {
          if (err.code === 'ER_DUP_ENTRY') throw new UsageError(`instance ${instanceId} named "${o.name ?? instanceId}" is already registered`);
          throw err;
        });
        console.log(id);
      }),
    );

  instance
    .command('list')
    .description('list registered instances')
    .option('--json', 'print JSON')
    .action((o) =>
      run(async (ctx) => {
        const rows = await (await ctx.metadata()).listInstances();
        if (o.json) console.log(JSON.stringify(rows, null, 2));
        else printTable(rows as unknown as Array<Record<string, unknown>>, ['id', 'instanceId', 'instanceName', 'stringLink', 'dbPort', 'isClone']);
      }),
    );

  for (const [name, value] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    instance
      .command(`${name} <id>`)
      .description(`${name} backups of an instance (is_clone = ${value ? 1 : 0}); the producer picks it up on its next sync`)
      .action((id: string) =>
        run(async (ctx) => {
          const instanceId = parseId(id);
          await ctx.instance(instanceId);
          await (await ctx.metadata()).setCloneEnabled(instanceId, value);
          console.log(`instance ${instanceId}: is_clone = ${value ? 1 : 0}`);
        }),
      );
  }

  instance
    .command('remove <id>')
    .description('remove an instance from tb_instance (its backup rows and objects are kept)')
    .action((id: string) =>
      run(async (ctx) => {
        const instanceId = parseId(id);
        await ctx.instance(instanceId);
        await (await ctx.metadata()).removeInstance(instanceId);
        console.log(`instance ${instanceId} removed`);
      }),
    );
}
