// npm run bench: figures, never pass/fail. Archives synthetic datadirs of two sizes with our streaming
// pipeline and with the seed's `tar -czf`, and (when the local services are up) times the upload to S3
// separately, naming the server. Sizes: MCB_BENCH_MB (default "64,512").
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, statSync, existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MinioObjectStore } from '../src/storage/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const sizes = (process.env.MCB_BENCH_MB ?? '64,512').split(',').map(Number);

/** A datadir-like tree: 16 KiB pages, half random (incompressible), half mostly zeros, like InnoDB files. */
function makeDatadir(dir: string, mb: number): void {
  mkdirSync(path.join(dir, 'db1'), { recursive: true });
  const files = Math.max(1, Math.round(mb / 64));
  const perFile = Math.round((mb * 1024 * 1024) / files);
  const page = 16 * 1024;
  for (let f = 0; f < files; f++) {
    const fd = openSync(path.join(dir, 'db1', `t${f}.ibd`), 'w');
    for (let written = 0, i = 0; written < perFile; written += page, i++) {
      const buf = i % 2 === 0 ? randomBytes(page) : Buffer.alloc(page, i % 7);
      writeSync(fd, buf);
    }
    closeSync(fd);
  }
}

function row(cells: Array<string | number>): string {
  return cells.map((c, i) => String(c).padEnd(i === 0 ? 34 : 14)).join('');
}

const work = mkdtempSync(path.join(os.tmpdir(), 'mcb-bench-'));
console.log(`mcb bench on ${os.cpus().length} cores, node ${process.version}; work dir ${work}\n`);
console.log(row(['run', 'source MiB', 'seconds', 'MiB/s', 'ratio', 'peak RSS MiB']));
const archives: string[] = [];
try {
  for (const mb of sizes) {
    const src = path.join(work, `bak_1_${mb}mb`);
    makeDatadir(src, mb);
    const ours = path.join(work, `ours-${mb}.tar.gz`);
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, 'archive-one.ts'), src, ours, 'gzip'], { encoding: 'utf8' });
    if (child.status !== 0) throw new Error(child.stderr);
    const r = JSON.parse(child.stdout.trim().split('\n').pop()!);
    console.log(row([`mcb createArchive gzip-6 (${mb} MiB)`, mb, r.seconds.toFixed(2), (mb / r.seconds).toFixed(1), (r.sourceBytes / r.bytes).toFixed(2), r.maxRssMiB.toFixed(0)]));
    archives.push(ours);

    const seed = path.join(work, `seed-${mb}.tar.gz`);
    const t0 = process.hrtime.bigint();
    execFileSync('tar', ['-czf', seed, '-C', work, path.basename(src)]);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(row([`seed tar -czf (${mb} MiB)`, mb, s.toFixed(2), (mb / s).toFixed(1), ((mb * 1024 * 1024) / statSync(seed).size).toFixed(2), '-']));
    rmSync(seed);
    rmSync(src, { recursive: true });
  }

  const envFile = path.join(here, '..', '.services', 'env.json');
  if (existsSync(envFile)) {
    const env = JSON.parse((await import('node:fs')).readFileSync(envFile, 'utf8'));
    const store = new MinioObjectStore(
      { endPoint: env.s3.endPoint, port: env.s3.port, useSSL: false, accessKey: env.s3.accessKey, secretKey: env.s3.secretKey, partSizeBytes: 16 * 1024 * 1024 },
      env.s3.bucket,
    );
    const file = archives[0]!;
    const size = statSync(file).size;
    const t0 = process.hrtime.bigint();
    await store.putStream(`bench-${Date.now()}.tar.gz`, createReadStream(file), { size });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    console.log(`\nupload of ${(size / 1048576).toFixed(0)} MiB to moto (${store.location}, a test server, not a throughput reference): ${s.toFixed(2)} s, ${(size / 1048576 / s).toFixed(1)} MiB/s`);
  } else {
    console.log('\n(upload not timed: local services are not up; run scripts/services.sh up)');
  }
  console.log('\npeak RSS should not grow with the source size: the archive streams with bounded buffers.');
} finally {
  rmSync(work, { recursive: true, force: true });
}
