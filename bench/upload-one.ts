// Upload of one incompressible file to the S3 server of the test services (.services/env.json) with different
// numbers of parts in flight, by putFile (parts sent as ranges of the file, as the worker uploads an archive) and
// putStream (parts buffered), each run in a process of its own (store-one.ts) so its peak RSS is its own.
// Figures, never pass/fail; on a shared machine they are noisy.
//
//   node --import tsx bench/upload-one.ts [size MiB = 1024] [parts in flight = 1,4] [part size MiB = 16] [--via=file,stream]
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Minio from 'minio';
import type { OssConfig } from '../src/config/index.ts';
import { servicesEnv } from '../test/support/env.ts';
import { runNodeChild } from './child.ts';
import type { StoreArgs, UploadVia } from './store-one.ts';

const MiB = 1024 * 1024;
const viaFlag = process.argv.find((a) => a.startsWith('--via='));
const vias = (viaFlag?.slice('--via='.length) ?? 'file,stream').split(',') as UploadVia[];
for (const v of vias) if (v !== 'file' && v !== 'stream') throw new Error(`--via takes file and/or stream, got ${v}`);
const positional = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const sizeMiB = Number(positional[0] ?? 1024);
const concurrencies = (positional[1] ?? '1,4').split(',').map(Number);
const partSizeMiB = Number(positional[2] ?? 16);

const s3 = servicesEnv().s3;
const oss: OssConfig = { endPoint: s3.endPoint, port: s3.port, useSSL: s3.useSSL, accessKey: s3.accessKey, secretKey: s3.secretKey, partSizeBytes: partSizeMiB * MiB };
const bucket = `mcb-bench-upload-${process.pid}`;
const minio = new Minio.Client({ endPoint: s3.endPoint, port: s3.port, useSSL: s3.useSSL, accessKey: s3.accessKey, secretKey: s3.secretKey });
const file = path.join(os.tmpdir(), `mcb-bench-upload-${process.pid}.bin`);

/** `sizeMiB` of random bytes (compressed archives are incompressible too); returns their sha256. */
function writeRandomFile(): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let left = sizeMiB * MiB; left > 0; left -= 16 * MiB) {
      const chunk = randomBytes(Math.min(16 * MiB, left));
      hash.update(chunk);
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

const sha256 = writeRandomFile();
await minio.makeBucket(bucket);
const rows: Array<{ via: UploadVia; concurrency: number; seconds: number; mbPerS: number; maxRssMiB?: number }> = [];
try {
  for (const via of vias) {
    for (const concurrency of concurrencies) {
      const key = `upload-${via}-${concurrency}.bin`;
      const args: StoreArgs = { oss: { ...oss, uploadConcurrency: concurrency }, bucket, step: { op: 'upload', file, key, sha256, via } };
      const m = await runNodeChild(path.join(path.dirname(fileURLToPath(import.meta.url)), 'store-one.ts'), args);
      rows.push({ via, concurrency, seconds: m.seconds, mbPerS: (sizeMiB * MiB) / 1e6 / m.seconds, maxRssMiB: m.maxRssMiB });
      await minio.removeObject(bucket, key);
    }
  }
} finally {
  await minio.removeBucket(bucket).catch(() => undefined);
  rmSync(file, { force: true });
}

console.log(`upload of ${sizeMiB} MiB to ${oss.useSSL ? 'https' : 'http'}://${oss.endPoint}:${oss.port} in ${partSizeMiB} MiB parts`);
console.log('via | parts in flight | seconds | MB/s | peak RSS MiB');
for (const r of rows) console.log(`${r.via} | ${r.concurrency} | ${r.seconds.toFixed(1)} | ${r.mbPerS.toFixed(1)} | ${r.maxRssMiB?.toFixed(0) ?? '?'}`);
console.log(JSON.stringify({ sizeMiB, partSizeMiB, rows }));
