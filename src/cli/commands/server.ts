// `mcb server`: the HTTP server (bull-board, status page, metrics) until SIGTERM/SIGINT.
import type { Command } from 'commander';
import type { Run } from '../context.ts';
import { startServer } from '../../server/index.ts';

export function registerServer(program: Command, run: Run): void {
  program
    .command('server')
    .description('HTTP server on [server] listen: status page at /, bull-board at /queues, /api/instances, /api/backups, /metrics, /healthz')
    .option('--listen <host:port>', 'override [server] listen')
    .addHelpText(
      'after',
      `
Auth: /queues (it can retry, remove and pause jobs) and every non-GET request need HTTP Basic
([server] user/password, or MCB_SERVER_USER/MCB_SERVER_PASSWORD) or "Authorization: Bearer <token>"
([server] token or MCB_SERVER_TOKEN). The server refuses to start on a non-loopback address without them (exit 2).
With them configured, /, /api/* and /metrics need them too, unless [server] public_read = on; /healthz is open.
Non-GET requests from another origin's page (Origin, Sec-Fetch-Site or Referer) are refused (403).`,
    )
    .action((o) =>
      run(async (ctx) => {
        ctx.daemon = true;
        let listen = ctx.config.server.listen;
        if (o.listen) {
          const m = /^(.+):(\d+)$/.exec(o.listen);
          if (!m || Number(m[2]) > 65535) throw new (await import('../context.ts')).UsageError(`--listen must be host:port, got "${o.listen}"`);
          listen = { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
        }
        const server = await startServer(ctx.config, { log: ctx.log, listen });
        const sig = await new Promise<string>((resolve) => {
          process.once('SIGTERM', () => resolve('SIGTERM'));
          process.once('SIGINT', () => resolve('SIGINT'));
        });
        ctx.log.info({ event: 'server.stopping', signal: sig }, 'server stopping');
        await server.close();
      }),
    );
}
