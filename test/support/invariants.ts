// The invariants every fault test ends with (docs/reliability.md): whatever failed, the metadata center, the
// bucket and backup_path agree, and nothing is left where a restore or a DBA would trust it by mistake.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { fullBackupFiles } from '../../src/jobs/full-files.ts';
import type { BackupRow } from '../../src/metadata/index.ts';
import type { World } from './world.ts';

export interface InvariantOptions {
  /** Rows allowed to be in a running state (a test that checks mid-way); by default none. */
  allowRunning?: string[];
  /** Expected number of Completed full rows, when the test knows it. */
  completed?: number;
}

/**
 * - at most one Completed row per backup name and per object key;
 * - every Completed row's object exists, its size and sha256 equal the row's (downloaded and hashed);
 * - every full-backup object in the bucket belongs to a Completed row (no half-written or abandoned object
 *   where a restore would find it), and no multipart upload is left unfinished;
 * - backup_path holds nothing of a Completed, Expiration or abandoned backup; an Error row keeps its files only
 *   when its info says so (kept for `mcb jobs retry`), and nothing in backup_path belongs to no row;
 * - every row is final (or listed in allowRunning), an Error row says why in info, a Completed row has its
 *   object key, size, sha256 and recovery point.
 */
export async function assertBackupInvariants(world: World, opts: InvariantOptions = {}): Promise<BackupRow[]> {
  const rows = (await world.metadata.listBackups({ type: 'full', limit: 1000 })).filter((r) => r.bucketName === world.bucket || r.objectKey === null);
  const completed = rows.filter((r) => r.state === 'Completed');
  if (opts.completed !== undefined) assert.equal(completed.length, opts.completed, `Completed rows: ${describeRows(rows)}`);

  assertUnique(completed.map((r) => r.backupName), 'backup_name among Completed rows');
  assertUnique(completed.map((r) => r.objectKey ?? ''), 'object_key among Completed rows');

  for (const r of rows) {
    if (['Doing', 'Done', 'Tar', 'Uploading', 'Clearing'].includes(r.state)) {
      assert.ok(opts.allowRunning?.includes(r.backupUuid), `row ${r.backupName} is left in running state ${r.state}: ${r.info}`);
    }
    if (r.state === 'Error') assert.ok(r.info && r.info.trim().length > 0, `Error row ${r.backupName} has no info`);
    if (r.state === 'Completed') {
      assert.ok(r.objectKey && r.sha256 && r.backupBytes !== null && r.endTime, `Completed row ${r.backupName} lacks object key, sha256, size or recovery point`);
      const stored = await objectDigest(world, r.objectKey!);
      assert.ok(stored, `Completed row ${r.backupName}: object ${r.objectKey} is not in bucket ${world.bucket}`);
      assert.equal(stored!.bytes, r.backupBytes, `Completed row ${r.backupName}: object size differs from the row`);
      assert.equal(stored!.sha256, r.sha256, `Completed row ${r.backupName}: object sha256 differs from the row`);
    }
  }

  const completedKeys = new Set(completed.map((r) => r.objectKey));
  for await (const o of world.minio.listObjectsV2(world.bucket, 'bak_', true) as AsyncIterable<{ name?: string }>) {
    if (!o.name) continue;
    const owner = rows.find((r) => r.backupName === o.name);
    const running = owner && opts.allowRunning?.includes(owner.backupUuid);
    assert.ok(completedKeys.has(o.name) || running, `object ${o.name} is in the bucket but its row is ${owner ? owner.state : 'missing'}`);
  }
  // The listing query itself: listIncompleteUploads also lists each upload's parts, which moto answers in a form
  // the minio client cannot parse.
  const page = await world.minio.listIncompleteUploadsQuery(world.bucket, '', '', '', '');
  assert.deepEqual(page.uploads.map((u) => u.key), [], 'unfinished multipart uploads are left in the bucket');

  const known = new Set<string>();
  for (const r of rows) {
    const files = fullBackupFiles(r);
    const names = [files.cloneDir, files.archiveFile].map((f) => f.slice(r.backupPath.length + 1));
    names.forEach((n) => known.add(n));
    const present = [files.cloneDir, files.archiveFile].filter((f) => existsSync(f));
    if (!present.length) continue;
    const keptForRetry = r.state === 'Error' && /kept .* for `mcb jobs retry`/.test(r.info ?? '');
    const running = opts.allowRunning?.includes(r.backupUuid);
    assert.ok(keptForRetry || running, `backup_path still holds ${present.join(', ')} of ${r.state} backup ${r.backupName}`);
  }
  if (existsSync(world.backupPath)) {
    const strays = readdirSync(world.backupPath).filter((n) => !known.has(n));
    assert.deepEqual(strays, [], `backup_path holds files of no backup row`);
  }
  return rows;
}

async function objectDigest(world: World, key: string): Promise<{ bytes: number; sha256: string } | undefined> {
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of (await world.minio.getObject(world.bucket, key)) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    return { bytes, sha256: hash.digest('hex') };
  } catch (err) {
    if (['NoSuchKey', 'NotFound'].includes((err as { code?: string }).code ?? '')) return undefined;
    throw err;
  }
}

function assertUnique(values: string[], what: string): void {
  const seen = new Set<string>();
  for (const v of values) {
    assert.ok(!seen.has(v), `duplicate ${what}: ${v}`);
    seen.add(v);
  }
}

function describeRows(rows: BackupRow[]): string {
  return rows.map((r) => `${r.backupName}=${r.state}`).join(', ');
}
