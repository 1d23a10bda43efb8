// Who may read and who may change things over HTTP: `mcb server` in-process on free ports against the real metadata
// center and Redis queues, with credentials configured, with them and [server] public_read = on, and without any.
// Mutating requests from another origin's page (CSRF with Basic credentials a browser remembers) are refused.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import { instanceQueueName, pingRedis, Queues, redisConnection } from '../../src/queues/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

const USER = 'dba';
const PASSWORD = `pw-${randomId()}`;
const TOKEN = `tok-${randomId()}`;
const log = createLogger({ name: 'server-security', quiet: true });

let world: World;
let queues: Queues;
/** Credentials configured, reads closed (the default). */
let closed: RunningServer;
/** Credentials configured, public_read = on. */
let publicRead: RunningServer;
/** No credentials configured. */
let open: RunningServer;

const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const readRoutes = ['/', '/api/instances', '/api/backups', '/metrics'];

async function serve(server: Record<string, string>): Promise<RunningServer> {
  const config: Config = loadConfig(world.writeConfig({ sections: { server } }));
  return startServer(config, { log, listen: { host: '127.0.0.1', port: 0 }, queueRefreshMs: 3_600_000 });
}

before(async () => {
  world = await createWorld();
  const redis = redisConnection(world.config, 'client');
  await pingRedis(redis, world.config.redis.url);
  queues = new Queues(world.config, redis);
  closed = await serve({ user: USER, password: PASSWORD, token: TOKEN });
  publicRead = await serve({ user: USER, password: PASSWORD, token: TOKEN, public_read: 'on' });
  open = await serve({});
});
after(async () => {
  for (const s of [closed, publicRead, open]) await s?.close();
  await queues?.close();
  await queues?.connection.quit();
  await world?.cleanup();
});

async function statusOf(url: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url, init);
  await res.arrayBuffer();
  return res.status;
}

test('with credentials configured, the status page, /api/* and /metrics answer 401 without them and 200 with Basic or Bearer; /healthz stays open', async () => {
  for (const route of readRoutes) {
    const res = await fetch(`${closed.url}${route}`);
    assert.equal(res.status, 401, route);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Basic realm="mcb"/, route);
    assert.match(await res.text(), /^authentication required: HTTP Basic/, route);
    assert.equal(await statusOf(`${closed.url}${route}`, { headers: { authorization: 'Bearer wrong' } }), 401, `${route} with a wrong token`);
    assert.equal(await statusOf(`${closed.url}${route}`, { headers: { authorization: basic } }), 200, `${route} with Basic`);
    assert.equal(await statusOf(`${closed.url}${route}`, { headers: { authorization: `Bearer ${TOKEN}` } }), 200, `${route} with Bearer`);
  }
  const body = (await (await fetch(`${closed.url}/api/instances`, { headers: { authorization: basic } })).json()) as { instances: Array<{ id: number }> };
  assert.ok(body.instances.some((i) => i.id === world.replicaInstanceId));
  assert.equal(await statusOf(`${closed.url}/healthz`), 200, 'probes need no credentials');
  assert.equal(await statusOf(`${closed.url}/no-such-route`), 401, 'a route nobody declared is closed too');
});

test('public_read = on opens the read-only routes without credentials; /queues and changes still need them', async () => {
  for (const route of readRoutes) assert.equal(await statusOf(`${publicRead.url}${route}`), 200, route);
  assert.equal(await statusOf(`${publicRead.url}/queues`), 401);
  assert.equal(await statusOf(`${publicRead.url}/queues/api/queues?activeQueue=&status=latest&page=1`), 401, "bull-board's own API shows job data");
  assert.equal(await statusOf(`${publicRead.url}/queues`, { headers: { authorization: basic } }), 200);
  const promote = `/queues/api/queues/${instanceQueueName(world.replicaInstanceId)}/no-such-job/promote`;
  assert.equal(await statusOf(`${publicRead.url}${promote}`, { method: 'PUT' }), 401);
});

test('without credentials configured the reads stay open and changes are refused with 401', async () => {
  for (const route of readRoutes) assert.equal(await statusOf(`${open.url}${route}`), 200, route);
  const res = await fetch(`${open.url}/queues/api/queues/${instanceQueueName(world.replicaInstanceId)}/no-such-job/retry`, { method: 'PUT' });
  assert.equal(res.status, 401);
  assert.match(await res.text(), /none are configured: set \[server\] user\/password or token/);
  assert.equal(await statusOf(`${open.url}/queues`), 401);
});

test('a cross-origin change is refused with 403 even with valid credentials and leaves the job as it was; same-origin and curl-like requests go through', async () => {
  const queue = queues.forInstance(world.replicaInstanceId);
  const base = `${closed.url}/queues/api/queues/${instanceQueueName(world.replicaInstanceId)}`;
  const self = closed.url; // http://127.0.0.1:<port>: the origin of the server's own pages
  const port = new URL(closed.url).port;
  const put = (path: string, headers: Record<string, string>) => fetch(`${base}${path}`, { method: 'PUT', headers: { authorization: basic, ...headers } });

  await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId: 'csrf-target', delay: 3_600_000 });
  const crossOrigin: Array<[string, Record<string, string>]> = [
    ['another site', { origin: 'http://evil.example' }],
    ['the same server under another name', { origin: `http://localhost:${port}` }],
    ['another port', { origin: 'http://127.0.0.1:1' }],
    ['an opaque origin', { origin: 'null' }],
    ['Sec-Fetch-Site without Origin', { 'sec-fetch-site': 'cross-site' }],
    ['a sibling site', { 'sec-fetch-site': 'same-site' }],
    ['a Referer of another origin without Origin', { referer: 'http://evil.example/page' }],
  ];
  for (const [what, headers] of crossOrigin) {
    const res = await put('/csrf-target/promote', headers);
    assert.equal(res.status, 403, what);
    assert.match(await res.text(), /^cross-origin request refused \(.*\): requests that change something are accepted only from this server's own pages\n$/, what);
  }
  assert.equal(await (await queue.getJob('csrf-target'))!.getState(), 'delayed', 'nothing was promoted');

  // The Retry button's route is held to the same rule before anything looks at the job.
  const retry = await put('/no-such-job/retry', { origin: 'http://evil.example' });
  assert.equal(retry.status, 403);
  await retry.arrayBuffer();
  const sameOriginRetry = await put('/no-such-job/retry', { origin: self, 'sec-fetch-site': 'same-origin', referer: `${self}/queues/` });
  assert.notEqual(sameOriginRetry.status, 403, 'a same-origin retry reaches bull-board');
  assert.equal(sameOriginRetry.status, 404, await sameOriginRetry.text());
  assert.equal(await statusOf(`${closed.url}/api/backups`, { method: 'POST', headers: { authorization: basic, origin: 'http://evil.example' } }), 403, 'our own routes too');
  assert.equal(await statusOf(`${closed.url}/api/backups`, { method: 'POST', headers: { origin: 'http://evil.example' } }), 403, 'refused before the credentials are even looked at');

  // A job added from bull-board (POST): a cross-site form could send this one without any script.
  const add = (id: string, headers: Record<string, string>) =>
    statusOf(`${base}/add`, { method: 'POST', headers: { authorization: basic, 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: 'full', data: {}, options: { jobId: id, delay: 3_600_000 } }) });
  assert.equal(await add('csrf-added', { origin: 'http://evil.example' }), 403);
  assert.equal(await queue.getJob('csrf-added'), undefined, 'no job added cross-origin');
  assert.equal(await add('board-added', { origin: self, 'sec-fetch-site': 'same-origin' }), 200);
  assert.equal(await (await queue.getJob('board-added'))?.getState(), 'delayed', 'added from the same origin');

  // What bull-board's UI sends from its own page: promoted.
  assert.equal(await statusOf(`${base}/csrf-target/promote`, { method: 'PUT', headers: { authorization: basic, origin: self, 'sec-fetch-site': 'same-origin', referer: `${self}/queues/queue/x` } }), 204);
  assert.equal(await (await queue.getJob('csrf-target'))!.getState(), 'waiting');

  // curl with credentials says nothing about an origin: let through. A reverse proxy that rewrites Host passes the
  // browser's in X-Forwarded-Host.
  await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId: 'curl-target', delay: 3_600_000 });
  assert.equal(await statusOf(`${base}/curl-target/promote`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` } }), 204);
  await queue.add('full', { instanceId: world.replicaInstanceId }, { jobId: 'proxied-target', delay: 3_600_000 });
  const proxied = { authorization: basic, origin: 'https://mcb.example.com', 'x-forwarded-host': 'mcb.example.com' };
  assert.equal(await statusOf(`${base}/proxied-target/promote`, { method: 'PUT', headers: proxied }), 204);
  for (const id of ['curl-target', 'proxied-target']) assert.equal(await (await queue.getJob(id))!.getState(), 'waiting', id);
});
