// `mcb server`: one port with bull-board at /queues (behind auth), the status page at /, JSON at /api/*,
// Prometheus metrics at /metrics and /healthz. Reads the metadata center for backups and Redis for queues.
// With credentials configured every route but /healthz needs them ([server] public_read = on opens the read-only
// ones); /queues and mutating requests always do, and mutating requests only from the server's own pages.
// May import: ops, queues, metadata, config, log, time.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Config } from '../config/index.ts';
import type { Logger } from '../log/index.ts';
import { MetadataStore } from '../metadata/index.ts';
import { failureCounts } from '../metadata/job-outcomes.ts';
import { backupCounts } from '../metadata/status-queries.ts';
import { instanceStatuses } from '../ops/status.ts';
import { dropRedis, instanceQueueName, logRedisOutages, pingRedis, Queues, redisConnection } from '../queues/index.ts';
import { assertSafeListen, hasCredentials, requireAuth, requireReadAuth, sameOriginOnly } from './auth.ts';
import { boardRetryRouter } from './board-retry.ts';
import { renderMetrics } from './metrics.ts';
import { renderStatusPage } from './page.ts';

export interface ServerOptions {
  log: Logger;
  /** Overrides [server] listen (tests use port 0). */
  listen?: { host: string; port: number };
  /** How often the bull-board queue list is refreshed from Redis and tb_instance. */
  queueRefreshMs?: number;
  pageRefreshSeconds?: number;
  /** A metadata store to read instead of connecting one; the server leaves it open when it closes. */
  metadata?: MetadataStore;
}

export interface RunningServer {
  url: string;
  server: Server;
  refreshQueues(): Promise<string[]>;
  close(): Promise<void>;
}

export async function startServer(config: Config, opts: ServerOptions): Promise<RunningServer> {
  const listen = opts.listen ?? config.server.listen;
  const serverConfig = { ...config.server, listen };
  assertSafeListen(serverConfig, config.file);
  const log = opts.log.child({ component: 'server' });

  // A page or API request must not hang for retry_seconds: it fails after a short wait and the next refresh works.
  const ownMetadata = !opts.metadata;
  const metadata = opts.metadata ?? (await MetadataStore.connect(config.metadata, { log, retrySeconds: Math.min(5, config.metadata.retrySeconds ?? 5) }));
  log.info({ event: 'metadata.time-zone', timeZone: metadata.timeZone.name, source: metadata.timeZoneInfo.source }, `metadata time zone ${metadata.timeZone.name}`);
  // A long-running reader: reconnects for as long as Redis is away, but a request fails fast while it is.
  const redis = redisConnection(config, 'daemon');
  logRedisOutages(redis, log, 'server');
  try {
    await pingRedis(redis, config.redis.url);
  } catch (err) {
    log.warn({ event: 'server.redis-down', err: { message: (err as Error).message } }, 'Redis unreachable at start; queue views will fail until it answers');
  }
  const queues = new Queues(config, redis);

  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath('/queues');
  const board = createBullBoard({ queues: [], serverAdapter, options: { uiConfig: { boardTitle: 'mcb queues' } } });
  let boardQueues: string[] = [];
  const refreshQueues = async (): Promise<string[]> => {
    const names = new Set<string>(await queues.knownInstanceQueues());
    for (const i of await metadata.listInstances()) names.add(instanceQueueName(i.id));
    const sorted = [...names].sort();
    if (sorted.join() !== boardQueues.join()) {
      board.replaceQueues(sorted.map((n) => new BullMQAdapter(queues.queue(n))));
      boardQueues = sorted;
      log.info({ event: 'server.queues', queues: sorted }, `bull-board shows ${sorted.length} queue(s)`);
    }
    return sorted;
  };
  await refreshQueues().catch((err) => log.warn({ err: { message: (err as Error).message } }, 'could not list queues'));
  const refreshTimer = setInterval(() => {
    refreshQueues().catch((err) => log.warn({ err: { message: (err as Error).message } }, 'could not refresh the queue list'));
  }, opts.queueRefreshMs ?? 30_000);
  refreshTimer.unref();

  /** Statuses with Redis parts when it answers; the metadata center is required. */
  const statuses = async () => {
    try {
      await redis.ping();
      return { statuses: await instanceStatuses(config, metadata, queues), redisError: undefined };
    } catch (err) {
      return { statuses: await instanceStatuses(config, metadata, undefined), redisError: `unreachable: ${(err as Error).message}` };
    }
  };

  const app = express();
  app.disable('x-powered-by');
  const auth = requireAuth(serverConfig);
  const readAuth = requireReadAuth(serverConfig);
  const sameOrigin = sameOriginOnly(log);
  const mutating = (req: Request) => !['GET', 'HEAD', 'OPTIONS'].includes(req.method);
  // Anything that changes state, whatever its path: only from this server's own pages, and with credentials.
  app.use((req: Request, res: Response, next: NextFunction) => (mutating(req) ? sameOrigin(req, res, next) : next()));
  app.use((req: Request, res: Response, next: NextFunction) => (mutating(req) ? auth(req, res, next) : next()));
  // Reads: every route but the probes' /healthz, so a route added later is not open by mistake.
  app.use((req: Request, res: Response, next: NextFunction) => (req.path === '/healthz' ? next() : readAuth(req, res, next)));

  app.get('/healthz', async (_req, res) => {
    const checks: Record<string, string> = {};
    await metadata.ping().then(() => (checks.metadata = 'ok'), (err: Error) => (checks.metadata = err.message));
    await redis.ping().then(() => (checks.redis = 'ok'), (err: Error) => (checks.redis = err.message));
    const ok = Object.values(checks).every((v) => v === 'ok');
    res.status(ok ? 200 : 503).json({ ok, ...checks });
  });

  app.get('/', async (_req, res) => {
    const { statuses: rows, redisError } = await statuses();
    const backups = await metadata.listBackups({ limit: 50 });
    res.type('html').send(
      renderStatusPage({
        statuses: rows,
        backups,
        generatedAt: new Date(),
        refreshSeconds: opts.pageRefreshSeconds ?? 30,
        redisError,
        thresholds: { fullHours: config.server.staleFullHours, binlogMinutes: config.server.staleBinlogMinutes },
        timeZone: metadata.timeZone,
      }),
    );
  });

  app.get('/api/instances', async (_req, res) => {
    const { statuses: rows, redisError } = await statuses();
    res.json({ redis: redisError ?? 'ok', instances: rows });
  });

  app.get('/api/backups', async (req, res) => {
    const q = req.query as Record<string, string | undefined>;
    const bad = (msg: string) => res.status(400).json({ error: msg });
    if (q.type !== undefined && q.type !== 'full' && q.type !== 'binlog') return bad('type must be full or binlog');
    if (q.instance !== undefined && !/^\d+$/.test(q.instance)) return bad('instance must be a tb_instance id');
    if (q.limit !== undefined && !/^\d+$/.test(q.limit)) return bad('limit must be a whole number');
    const rows = await metadata.listBackups({
      instanceId: q.instance === undefined ? undefined : Number(q.instance),
      type: q.type as 'full' | 'binlog' | undefined,
      limit: Math.min(Number(q.limit ?? 100), 1000),
    });
    // Possibly open to read (no credentials, or public_read), so the full error (stack traces, paths) stays out:
    // `info` has the reason; the rest is in `mcb jobs show` and the metadata center.
    res.json(rows.map(({ errorDetail: _omitted, ...row }) => row));
  });

  app.get('/metrics', async (_req, res) => {
    const { statuses: rows } = await statuses();
    const counts = await backupCounts(metadata);
    const failures = await failureCounts(metadata);
    const queueCounts = rows.filter((s) => s.queueCounts).map((s) => ({ queue: s.queue, counts: s.queueCounts! }));
    res.type('text/plain; version=0.0.4; charset=utf-8').send(renderMetrics({ statuses: rows, counts, failures, queueCounts }));
  });

  // The Retry buttons resume a failed backup chain like `mcb jobs retry` (board-retry.ts), before bull-board's own.
  app.use('/queues', auth, boardRetryRouter(queues, log), serverAdapter.getRouter());

  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    log.error({ event: 'server.error', err: { message: err.message } }, 'request failed');
    if (!res.headersSent) res.status(500).type('text/plain').send(`internal error: ${err.message}\n`);
  });

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(listen.port, listen.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}`;
  const authMode = [config.server.user ? 'basic' : '', config.server.token ? 'bearer' : ''].filter(Boolean).join('+') || 'none';
  const reads = hasCredentials(serverConfig) && !serverConfig.publicRead ? 'authenticated' : 'open';
  log.info(
    { event: 'server.listening', url, auth: authMode, reads },
    `mcb server on ${url} (auth: ${authMode}; reads ${reads}${hasCredentials(serverConfig) ? '' : '; /queues and changes refuse everyone'})`,
  );

  return {
    url,
    server,
    refreshQueues,
    async close() {
      clearInterval(refreshTimer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await queues.close();
      dropRedis(redis);
      if (ownMetadata) await metadata.close();
    },
  };
}
