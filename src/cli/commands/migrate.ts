import type { Command } from 'commander';
import { migrate } from '../../metadata/index.ts';
import type { Run } from '../context.ts';

export function registerMigrate(program: Command, run: Run): void {
  program
    .command('migrate')
    .description('create or upgrade the metadata center schema (idempotent; the seed tables plus our additive columns)')
    .action(() =>
      run(async (ctx) => {
        const result = await migrate(ctx.config.metadata);
        const db = `${ctx.config.metadata.host}:${ctx.config.metadata.port}/${ctx.config.metadata.database}`;
        for (const name of result.applied) console.log(`applied ${name}`);
        console.log(result.applied.length ? `schema of ${db} is up to date` : `schema of ${db} was already up to date`);
      }),
    );
}
