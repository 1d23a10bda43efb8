// An object larger than max_parts × the preferred part size. The store here enforces a part limit the way S3 does
// at 10,000 (an HTTP proxy in front of the real S3 server refuses higher part numbers with S3's own error); a small
// limit (2) stands for S3's, so that a small archive needs more parts than allowed at the preferred 5 MiB. A fixed
// part size is refused by that store; the upload stage computes the part size per upload and stays within it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { loadConfig, requireOss } from '../../src/config/index.ts';
import { cleanupStage } from '../../src/jobs/full-cleanup.ts';
import { uploadStage } from '../../src/jobs/full-upload.ts';
import { fullBackupObjectName } from '../../src/naming.ts';
import { MinioObjectStore } from '../../src/storage/index.ts';
import { directContext } from '../support/context.ts';
import { servicesEnv } from '../support/env.ts';
import { assertBackupInvariants } from '../support/invariants.ts';
import { startS3FaultProxy, type S3Call, type S3FaultProxy } from '../support/s3-fault-proxy.ts';
import { createWorld, type World } from '../support/world.ts';

const MiB = 1024 * 1024;
const PART_LIMIT = 2;

let world: World;
let proxy: S3FaultProxy;

before(async () => {
  world = await createWorld();
  const s3 = servicesEnv().s3;
  proxy = await startS3FaultProxy(s3.endPoint, s3.port);
  proxy.maxParts = PART_LIMIT;
});
after(async () => {
  await proxy?.close();
  await world?.cleanup();
});

const partsOf = (key: string) => proxy.calls.filter((c: S3Call) => c.key === key && c.method === 'PUT' && c.query.has('partNumber'));

async function unfinishedUploads(key: string): Promise<number> {
  const page = await world.minio.listIncompleteUploadsQuery(world.bucket, key, '', '', '');
  return page.uploads.filter((u) => u.key === key).length;
}

test('the store refuses a part above its limit: an upload in fixed 5 MiB parts fails and leaves nothing behind', async () => {
  const oss = requireOss(loadConfig(world.writeConfig({ s3Port: proxy.port, sections: { oss: ossSection({ part_size_mb: '5' }) } })));
  // What the worker did before part sizes were computed: the configured part size whatever the object's size.
  const fixed = new MinioObjectStore({ ...oss, maxParts: 10_000 }, world.bucket);
  const key = 'bak_fixed_part_size.tar.gz';
  const data = randomBytes(12 * MiB);
  await assert.rejects(fixed.putStream(key, Readable.from([data]), { size: data.length }), /InvalidArgument.*Part number must be an integer between 1 and 2/);
  assert.deepEqual(
    partsOf(key)
      .map((c) => Number(c.query.get('partNumber')))
      .sort(),
    [1, 2, 3],
  );
  assert.equal(await world.minio.statObject(world.bucket, key).catch(() => undefined), undefined, 'no object');
  assert.equal(await unfinishedUploads(key), 0, 'the refused upload was aborted');
  await assertBackupInvariants(world, { completed: 0 });
});

test('the upload stage sizes parts per upload: an archive of more than max_parts × part_size_mb is stored within max_parts parts and completes', async () => {
  const config = loadConfig(world.writeConfig({ s3Port: proxy.port, sections: { oss: ossSection({ part_size_mb: '5', max_parts: String(PART_LIMIT) }) } }));
  const row = await archiveReadyForUpload(12 * MiB);
  const ctx = directContext(config, world.metadata);
  const payload = { instanceId: world.replicaInstanceId, backupUuid: row.backupUuid };
  await uploadStage.handle(payload, ctx);
  const parts = partsOf(row.backupName);
  assert.deepEqual(
    parts.map((c) => [Number(c.query.get('partNumber')), c.bytes]).sort((a, b) => a[0]! - b[0]!),
    [
      [1, 6 * MiB],
      [2, 6 * MiB],
    ],
    'two parts of 6 MiB instead of three of the preferred 5 MiB',
  );
  assert.ok(parts.every((c) => c.contentMd5), 'each part carries its Content-MD5 (verify = parts, the default)');
  assert.equal(proxy.calls.filter((c) => c.key === row.backupName && c.method === 'GET').length, 0, 'the default verification reads nothing back');
  assert.match((await world.metadata.getBackup(row.backupUuid))!.info ?? '', /uploaded and verified \(parts\)/);
  await cleanupStage.handle(payload, ctx);
  const done = (await world.metadata.getBackup(row.backupUuid))!;
  assert.equal(done.state, 'Completed', done.info ?? '');
  await assertBackupInvariants(world, { completed: 1 });
});

function ossSection(extra: Record<string, string>): Record<string, string> {
  const s3 = servicesEnv().s3;
  return { endpoint: `${s3.endPoint}:${proxy.port}`, access_key: s3.accessKey, secret_key: s3.secretKey, secure: 'off', ...extra };
}

/**
 * A row as the tar stage leaves it, with an archive of `bytes` random bytes: only the upload and cleanup stages are
 * under test here, and the real clone's archive is too small to need more than one part.
 */
async function archiveReadyForUpload(bytes: number) {
  const now = new Date();
  const backupName = fullBackupObjectName(world.replicaInstanceId, now, world.metadata.timeZone, '.gz');
  const data = randomBytes(bytes);
  writeFileSync(path.join(world.backupPath, backupName), data);
  return world.metadata.createBackup({
    backupUuid: randomUUID(),
    tbInstanceId: world.replicaInstanceId,
    state: 'Tar',
    backupType: 'full',
    startTime: now,
    endTime: now,
    backupPath: world.backupPath,
    backupName,
    bucketName: world.bucket,
    backupBytes: bytes,
    backupSize: `${bytes / MiB} MiB`,
    sha256: createHash('sha256').update(data).digest('hex'),
    compression: 'gzip',
    info: 'archived',
  });
}
