// The status page and bull-board as a DBA sees them: Debian's headless Chromium driven by playwright-core,
// after a real backup (stage handlers against the real replica, S3 and metadata center).
// Needs `apt-get install -y chromium` (/usr/bin/chromium); skipped, saying so, only when it is absent.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger } from '../../src/log/index.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import { startServer, type RunningServer } from '../../src/server/index.ts';
import { makeCompletedFullBackup } from '../support/backup.ts';
import { createWorld, randomId, type World } from '../support/world.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent: install Debian's chromium (apt-get install -y chromium) to run the browser test`;
const USER = 'dba';
const PASSWORD = `pw-${randomId()}`;

let world: World;
let server: RunningServer;
let backup: BackupRow;
const profiles: string[] = [];

/** A fresh Chromium profile per context, with the flags this machine's closed network needs. */
async function browser(httpCredentials?: { username: string; password: string }): Promise<BrowserContext> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mcb-chromium-'));
  profiles.push(dir);
  return chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    httpCredentials,
  });
}

before(async () => {
  if (skip) return;
  world = await createWorld();
  // public_read: the status page opens without credentials while /queues asks for them.
  const config = loadConfig(world.writeConfig({ sections: { server: { user: USER, password: PASSWORD, public_read: 'on' } } }));
  backup = await makeCompletedFullBackup(world);
  server = await startServer(config, { log: createLogger({ name: 'browser-test-server' }), listen: { host: '127.0.0.1', port: 0 } });
});
after(async () => {
  await server?.close();
  await world?.cleanup();
  for (const dir of profiles) rmSync(dir, { recursive: true, force: true });
});

test('the status page lists the backup just made as Completed; /queues is 401 without credentials', { skip }, async () => {
  const context = await browser();
  try {
    const page = await context.newPage();
    const res = await page.goto(`${server.url}/`);
    assert.equal(res?.status(), 200);
    assert.equal(await page.title(), 'mcb backup status');
    const row = page.locator('#backups tbody tr', { hasText: backup.backupName });
    assert.equal(await row.count(), 1);
    assert.equal((await row.locator('td.state').textContent())?.trim(), 'Completed');
    const instance = page.locator('#instances tbody tr', { hasText: backup.backupName });
    assert.match((await instance.textContent()) ?? '', new RegExp(`ago · ${backup.backupSize}`));
    assert.equal(await page.locator('meta[http-equiv="refresh"]').getAttribute('content'), '30');

    // Chromium answers a Basic challenge it has no credentials for by failing the navigation
    // (net::ERR_INVALID_AUTH_CREDENTIALS); the response it got is the server's 401.
    const denied = page.waitForResponse((r) => r.url() === `${server.url}/queues`);
    await page.goto(`${server.url}/queues`).catch((err: Error) => assert.match(err.message, /ERR_INVALID_AUTH_CREDENTIALS/));
    const response = await denied;
    assert.equal(response.status(), 401);
    assert.match((await response.headerValue('www-authenticate')) ?? '', /^Basic realm="mcb"/);
  } finally {
    await context.close();
  }
});

test('/queues with credentials shows the bull-board UI with the instance queues', { skip }, async () => {
  const context = await browser({ username: USER, password: PASSWORD });
  try {
    const page = await context.newPage();
    const res = await page.goto(`${server.url}/queues`);
    assert.equal(res?.status(), 200);
    // bull-board is a client-side app: wait for it to render the queue list from its API.
    const queueName = `mcb-instance-${world.replicaInstanceId}`;
    await page.getByText(queueName).first().waitFor({ timeout: 30_000 });
    assert.ok((await page.getByText(`mcb-instance-${world.sourceInstanceId}`).count()) > 0);
    assert.match(await page.title(), /mcb queues/);
  } finally {
    await context.close();
  }
});
