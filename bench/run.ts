// npm run bench: figures, never pass/fail (docs/performance.md says what each one means).
//
// A private MySQL 9.7 filled by `sysbench oltp_read_write prepare` (MCB_BENCH_GB, default 2), a real CLONE of
// it, then the project's own steps, each in a child process so its peak RSS is its own, side by side with the
// CLI pipelines users compare us with: archive (every codec, every core and one), upload to the services' S3
// (a test server) and verification, restore (download + decompress + extract), binlog archiving, and the replay
// of a sysbench write load by each replay method. It ends with the targets as ratios of this run's figures.
//
// Env: MCB_BENCH_GB (2), MCB_BENCH_ONLY (comma list of clone,archive,upload,restore,binlog,replay,stream; default all),
// MCB_BENCH_STREAM_SECONDS (60) and MCB_BENCH_STREAM_INTERVAL (10) for the streamer under load (stream.ts),
// MCB_BENCH_BINLOG_MB (1024), MCB_BENCH_REPLAY_SECONDS (180), MCB_BENCH_DIR (where the work dir is made; default
// the OS temp dir; the work dir is removed at the end unless MCB_BENCH_KEEP=1), MCB_BENCH_CACHE (filled datadirs;
// default /var/cache/mcb/bench-data), MCB_BENCH_S3 (http[s]://ACCESS:SECRET@host:port; default the services' moto).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as Minio from 'minio';
import { directorySize } from '../src/archive/index.ts';
import type { CodecName } from '../src/naming.ts';
import type { OssConfig, VerifyMode } from '../src/config/index.ts';
import { DataNode } from '../src/mysql/data-node.ts';
import { ensureCommand, runNodeChild, runShell, type Measured } from './child.ts';
import { binlogsBetween, currentBinlog, gtidExecuted, readServicesEnv, rotateBinlog, runSysbench, shapeForGb, startBenchSource, sysbenchArgs, type BenchSource } from './source.ts';
import type { ReplayOnceArgs, ReplayOnceResult } from './replay-one.ts';
import { Report } from './report.ts';
import type { StoreArgs, StoreStep } from './store-one.ts';
import { sectionStream } from './stream.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.join(here, '..');
const script = (name: string) => path.join(here, name);

const sections = ['clone', 'archive', 'upload', 'restore', 'binlog', 'replay', 'stream'] as const;
type Section = (typeof sections)[number];

function selectedSections(): Set<Section> {
  const raw = process.env.MCB_BENCH_ONLY?.trim();
  if (!raw) return new Set(sections);
  const wanted = raw.split(',').map((s) => s.trim());
  for (const s of wanted) if (!(sections as readonly string[]).includes(s)) throw new Error(`MCB_BENCH_ONLY: unknown section ${s} (known: ${sections.join(', ')})`);
  return new Set(wanted as Section[]);
}

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, not ${raw}`);
  return n;
}

const only = selectedSections();
const gb = positiveNumber('MCB_BENCH_GB', 2);
const binlogMb = positiveNumber('MCB_BENCH_BINLOG_MB', 1024);
const replaySeconds = positiveNumber('MCB_BENCH_REPLAY_SECONDS', 180);
const streamSeconds = positiveNumber('MCB_BENCH_STREAM_SECONDS', 60);
const streamInterval = positiveNumber('MCB_BENCH_STREAM_INTERVAL', 10);
const cacheDir = process.env.MCB_BENCH_CACHE ?? path.join(process.env.MCB_CACHE_DIR ?? '/var/cache/mcb', 'bench-data');
const keep = process.env.MCB_BENCH_KEEP === '1';
const cores = os.availableParallelism();
/** compression_level's default; zstd's recommended level. */
const GZIP_LEVEL = 6;
const ZSTD_LEVEL = 3;
/** [backup-conf] verify's default, and the modes timed ('size' does what 'parts' does after the upload). */
const DEFAULT_VERIFY: VerifyMode = 'parts';
const VERIFY_MODES: VerifyMode[] = ['parts', 'download'];
/** The uploads the restore section reads back. */
const RESTORED = ['upload-mcb-gzip', 'upload-mcb-zstd', 'upload-mcb-zstd-enc'];
/** The bench's own encryption key, made per run and never printed. */
const benchKeyHex = randomBytes(32).toString('hex');
/** [oss] upload_concurrency's default. */
const UPLOAD_CONCURRENCY = 4;

const services = readServicesEnv(repoRoot);
/** MCB_BENCH_S3=http[s]://ACCESS:SECRET@host:port: another S3 server than the services' moto. */
const benchS3 = process.env.MCB_BENCH_S3 ? new URL(process.env.MCB_BENCH_S3) : undefined;
const isMoto = benchS3 === undefined;
const oss: OssConfig = benchS3
  ? {
      endPoint: benchS3.hostname,
      port: Number(benchS3.port || (benchS3.protocol === 'https:' ? 443 : 80)),
      useSSL: benchS3.protocol === 'https:',
      accessKey: decodeURIComponent(benchS3.username),
      secretKey: decodeURIComponent(benchS3.password),
      partSizeBytes: 16 * 1024 * 1024,
    }
  : {
      endPoint: services.s3.endPoint,
      port: services.s3.port,
      useSSL: services.s3.useSSL,
      accessKey: services.s3.accessKey,
      secretKey: services.s3.secretKey,
      partSizeBytes: 16 * 1024 * 1024,
    };
const bucket = `mcb-bench-${process.pid}`;
const s3Name = isMoto
  ? `moto on ${oss.endPoint}:${oss.port} (the services' S3: a test server on this host, not a throughput reference)`
  : `the S3 server at ${oss.useSSL ? 'https' : 'http'}://${oss.endPoint}:${oss.port} (MCB_BENCH_S3)`;

const workParent = process.env.MCB_BENCH_DIR ? path.resolve(process.env.MCB_BENCH_DIR) : os.tmpdir();
mkdirSync(workParent, { recursive: true });
const workDir = mkdtempSync(path.join(workParent, 'mcb-bench-'));
// The restore's temporary mysqld runs as the mysql account, which must reach the datadirs under it.
chmodSync(workDir, 0o755);

const report = new Report();
const loadAverage = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
const loadAtStart = loadAverage();
const log = (line: string) => console.log(`  · ${line}`);
const started = Date.now();

/** Everything removed at the end (and on Ctrl-C). */
let source: BenchSource | undefined;
let minio: Minio.Client | undefined;
async function cleanUp(): Promise<void> {
  await source?.stop().catch(() => undefined);
  source = undefined;
  if (minio) {
    const client = minio;
    minio = undefined;
    try {
      const keys: string[] = [];
      for await (const o of client.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string }>) if (o.name) keys.push(o.name);
      if (keys.length) await client.removeObjects(bucket, keys);
      await client.removeBucket(bucket);
    } catch (err) {
      console.log(`could not remove the bench bucket ${bucket}: ${(err as Error).message}`);
    }
  }
  if (!keep) rmSync(workDir, { recursive: true, force: true });
}
process.once('SIGINT', () => {
  console.log('\ninterrupted: stopping the bench server and removing the work dir');
  void cleanUp().finally(() => process.exit(130));
});

const cloneDir = path.join(workDir, 'backup', 'bak_1_bench');
const archiveDir = path.join(workDir, 'archives');

interface ArchiveRow {
  id: string;
  label: string;
  /** Later sections that read the file (upload, restore): made for them even when the archive section is not selected. */
  usedBy: Section[];
  file: string;
  mcb?: { codec: CodecName; level: number; threads?: number; encryptionKeyHex?: string };
  /** A shell pipeline, and the compressor it needs besides tar. */
  cli?: { command: string; tool: string };
}

function archiveRows(): ArchiveRow[] {
  const out = (name: string) => path.join(archiveDir, name);
  const tar = (flags: string, file: string, tool: string) => ({
    command: `tar ${flags} ${JSON.stringify(out(file))} -C ${JSON.stringify(path.dirname(cloneDir))} ${path.basename(cloneDir)}`,
    tool,
  });
  return [
    { id: 'mcb-gzip', label: `mcb gzip-${GZIP_LEVEL}, ${cores} threads`, usedBy: ['upload', 'restore'], file: out('mcb.tar.gz'), mcb: { codec: 'gzip', level: GZIP_LEVEL, threads: cores } },
    { id: 'mcb-gzip-1', label: `mcb gzip-${GZIP_LEVEL}, 1 thread`, usedBy: [], file: out('mcb-1.tar.gz'), mcb: { codec: 'gzip', level: GZIP_LEVEL, threads: 1 } },
    { id: 'mcb-zstd', label: `mcb zstd-${ZSTD_LEVEL}, ${cores} threads`, usedBy: ['upload', 'restore'], file: out('mcb.tar.zst'), mcb: { codec: 'zstd', level: ZSTD_LEVEL, threads: cores } },
    { id: 'mcb-gzip-enc', label: `mcb gzip-${GZIP_LEVEL} + AES-256-GCM, ${cores} threads`, usedBy: [], file: out('mcb-enc.tar.gz.enc'), mcb: { codec: 'gzip', level: GZIP_LEVEL, threads: cores, encryptionKeyHex: benchKeyHex } },
    { id: 'mcb-zstd-enc', label: `mcb zstd-${ZSTD_LEVEL} + AES-256-GCM, ${cores} threads`, usedBy: ['upload', 'restore'], file: out('mcb-enc.tar.zst.enc'), mcb: { codec: 'zstd', level: ZSTD_LEVEL, threads: cores, encryptionKeyHex: benchKeyHex } },
    { id: 'mcb-none', label: 'mcb none (tar only)', usedBy: ['upload'], file: out('mcb.tar'), mcb: { codec: 'none', level: GZIP_LEVEL } },
    { id: 'tar-czf', label: 'tar -czf (the seed)', usedBy: [], file: out('cli.tar.gz'), cli: tar('-czf', 'cli.tar.gz', 'gzip') },
    { id: 'tar-pigz', label: 'tar -I pigz', usedBy: [], file: out('cli-pigz.tar.gz'), cli: tar('-I pigz -cf', 'cli-pigz.tar.gz', 'pigz') },
    { id: 'tar-zstd', label: `tar -I 'zstd -T0 -${ZSTD_LEVEL}'`, usedBy: ['upload'], file: out('cli.tar.zst'), cli: tar(`-I 'zstd -T0 -${ZSTD_LEVEL}' -cf`, 'cli.tar.zst', 'zstd') },
  ];
}

interface ArchiveMade {
  row: ArchiveRow;
  bytes: number;
  sha256: string;
}

async function sectionClone(): Promise<{ seconds: number; sourceBytes: number }> {
  report.section("CLONE (the source: a private mysqld of the services' MySQL 9.7, clone plugin loaded)");
  const node = await DataNode.connect({ host: '127.0.0.1', port: source!.port, user: 'root', password: '', charset: 'utf8mb4' });
  mkdirSync(path.dirname(cloneDir), { recursive: true });
  const t0 = process.hrtime.bigint();
  try {
    await node.cloneLocal(cloneDir);
  } finally {
    await node.close();
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const sourceBytes = await directorySize(cloneDir);
  report.row('clone', 'CLONE LOCAL DATA DIRECTORY', { seconds }, { sourceBytes, notes: `${mb(sourceBytes)} MB cloned` });
  return { seconds, sourceBytes };
}

async function sectionArchive(sourceBytes: number, all: boolean): Promise<Map<string, ArchiveMade>> {
  report.section(`ARCHIVE of the clone (${mb(sourceBytes)} MB), each in its own process`);
  mkdirSync(archiveDir, { recursive: true });
  const made = new Map<string, ArchiveMade>();
  for (const row of archiveRows()) {
    const needed = row.usedBy.some((s) => only.has(s));
    if (!all && !needed) continue;
    let m: Measured;
    if (row.cli) {
      if (!(await ensureCommand(row.cli.tool, row.cli.tool, log))) {
        report.skip(row.label, `${row.cli.tool} is not installed (apt-get install -y ${row.cli.tool})`);
        continue;
      }
      m = await runShell(row.cli.command);
      m.bytes = statSync(row.file).size;
      if (needed) m.sha256 = sha256Of(row.file);
    } else {
      m = await runNodeChild(script('archive-one.ts'), { sourceDir: cloneDir, outFile: row.file, ...row.mcb });
    }
    report.row(row.id, row.label, m, { sourceBytes, bytes: Number(m.bytes), worker: !row.cli });
    made.set(row.id, { row, bytes: Number(m.bytes), sha256: String(m.sha256) });
    if (row.id === 'mcb-zstd') await measureEncryptionAlone(row.file, sourceBytes);
    if (!needed) rmSync(row.file, { force: true });
  }
  return made;
}

/** AES-256-GCM alone over the zstd archive, each direction: its share of the archive stage, without that stage's noise. */
async function measureEncryptionAlone(file: string, sourceBytes: number): Promise<void> {
  const m = await runNodeChild(script('crypt-one.ts'), { file, keyHex: benchKeyHex });
  const bytes = statSync(file).size;
  for (const direction of ['encrypt', 'decrypt'] as const) {
    const seconds = Number(m[`${direction}Seconds`]);
    const label = `AES-256-GCM ${direction}ion alone, zstd archive`;
    report.row(`${direction}-alone`, label, { seconds, maxRssMiB: m.maxRssMiB }, { sourceBytes, bytes, objectRate: true, worker: true, notes: 'the file read time subtracted' });
  }
}

function sha256Of(file: string): string {
  return execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0]!;
}

async function removeObject(key: string): Promise<void> {
  await minio!.removeObject(bucket, key);
}

function storeChild(step: StoreStep): Promise<Measured> {
  const args: StoreArgs = { oss, bucket, step };
  return runNodeChild(script('store-one.ts'), args);
}

interface Uploaded {
  key: string;
  bytes: number;
  sha256: string;
}

/** all: every upload row and the verification; otherwise only the objects the restore section reads. */
async function sectionUpload(archives: Map<string, ArchiveMade>, sourceBytes: number, all: boolean): Promise<Map<string, Uploaded>> {
  report.section(`UPLOAD to ${s3Name}`);
  const uploaded = new Map<string, Uploaded>();
  const main = archives.get('mcb-zstd') ?? archives.get('mcb-gzip')!;
  const keyOf = (a: ArchiveMade, suffix = '') => `bak_1_${a.row.id}${suffix}.${path.basename(a.row.file).split('.').slice(1).join('.')}`;
  // The main archive at 1 part in flight, then at the default with and without each part's Content-MD5 (what
  // verify = parts costs during the upload); the other objects (restored next) as the worker sends them; the CLI's
  // archive as a plain upload, for the whole-backup comparison.
  const plan: Array<{ a: ArchiveMade; concurrency: number; partChecksums: boolean; key: string; id: string }> = [
    { a: main, concurrency: 1, partChecksums: true, key: keyOf(main, '-c1'), id: `upload-${main.row.id}-c1` },
    { a: main, concurrency: UPLOAD_CONCURRENCY, partChecksums: false, key: keyOf(main, '-nomd5'), id: `upload-${main.row.id}-nomd5` },
    { a: main, concurrency: UPLOAD_CONCURRENCY, partChecksums: true, key: keyOf(main), id: `upload-${main.row.id}` },
  ];
  for (const id of ['mcb-gzip', 'mcb-zstd', 'mcb-zstd-enc', 'mcb-none']) {
    const a = archives.get(id);
    if (a && a !== main) plan.push({ a, concurrency: UPLOAD_CONCURRENCY, partChecksums: true, key: keyOf(a), id: `upload-${id}` });
  }
  const cli = archives.get('tar-zstd');
  if (cli) plan.push({ a: cli, concurrency: UPLOAD_CONCURRENCY, partChecksums: false, key: keyOf(cli), id: 'upload-tar-zstd' });
  const mainKey = keyOf(main);
  for (const p of all ? plan : plan.filter((x) => RESTORED.includes(x.id))) {
    const m = await storeChild({ op: 'upload', file: p.a.row.file, key: p.key, sha256: p.a.sha256, concurrency: p.concurrency, partChecksums: p.partChecksums });
    const what = p.a.row.cli ? `${p.a.row.label} output` : `${p.a.row.label.replace(/, \d+ threads?/, '')} object`;
    const label = `${what}, ${p.concurrency} in flight${p.partChecksums ? '' : ', no part MD5'}`;
    report.row(p.id, label, m, { sourceBytes, bytes: p.a.bytes, objectRate: true, worker: !p.a.row.cli });
    uploaded.set(p.id, { key: p.key, bytes: p.a.bytes, sha256: p.a.sha256 });
    // Only the objects restored next (and the main one, verified next) are kept: moto holds them all.
    if (p.key !== mainKey && !RESTORED.includes(p.id)) await removeObject(p.key);
  }
  for (const mode of all ? VERIFY_MODES : []) {
    const m = await storeChild({ op: 'verify', key: mainKey, bytes: main.bytes, sha256: main.sha256, mode });
    const notes = mode === 'parts' ? 'after the upload: size and sha256 metadata; its other cost is the part MD5s (the rows above)' : 'reads the whole object back';
    report.row(`verify-${mode}`, `verify = ${mode}${mode === DEFAULT_VERIFY ? ' (the default)' : ''}`, m, { sourceBytes, bytes: main.bytes, objectRate: mode === 'download', worker: true, notes });
  }
  return uploaded;
}

async function sectionRestore(uploaded: Map<string, Uploaded>, archives: Map<string, ArchiveMade>, sourceBytes: number): Promise<void> {
  report.section(`RESTORE (download + decompress + extract) from ${s3Name}`);
  // moto reads the whole object for every range request: against it the restore rows use download_concurrency = 1
  // (one GET, resumed after a cut), as a DBA on moto would; against a real S3 server the default, 4 ranges.
  const downloadConcurrency = isMoto ? 1 : 4;
  if (isMoto) log('moto reads the whole object for every range request: the mcb restore rows use download_concurrency = 1 against it');
  const dest = path.join(workDir, 'restore');
  type Row = { id: string; label: string; step: (destDir: string) => StoreStep | undefined; bytes?: number };
  const fromStore = (up: string, op: 'restore' | 'restore-one-stream') => (destDir: string): StoreStep | undefined => {
    const u = uploaded.get(up);
    return u && (op === 'restore' ? { op, key: u.key, bytes: u.bytes, sha256: u.sha256, destDir, concurrency: downloadConcurrency, keyHex: benchKeyHex } : { op, key: u.key, bytes: u.bytes, sha256: u.sha256, destDir });
  };
  const fromFile = (id: string) => (destDir: string): StoreStep | undefined => {
    const a = archives.get(id);
    return a && { op: 'extract-file', file: a.row.file, destDir };
  };
  const rows: Row[] = [
    { id: 'restore-gzip-before', label: 'gzip, one GET stream (as before)', step: fromStore('upload-mcb-gzip', 'restore-one-stream') },
    { id: 'restore-gzip', label: `gzip, mcb restore (download_concurrency ${downloadConcurrency})`, step: fromStore('upload-mcb-gzip', 'restore') },
    { id: 'restore-gzip-file', label: 'gzip, from the local file (no S3)', step: fromFile('mcb-gzip') },
    { id: 'restore-zstd-before', label: 'zstd, one GET stream', step: fromStore('upload-mcb-zstd', 'restore-one-stream') },
    { id: 'restore-zstd', label: `zstd, mcb restore (download_concurrency ${downloadConcurrency})`, step: fromStore('upload-mcb-zstd', 'restore') },
    { id: 'restore-zstd-file', label: 'zstd, from the local file (no S3)', step: fromFile('mcb-zstd') },
    { id: 'restore-zstd-enc', label: `zstd + AES-256-GCM, mcb restore (download_concurrency ${downloadConcurrency})`, step: fromStore('upload-mcb-zstd-enc', 'restore') },
  ];
  for (const r of rows) {
    const step = r.step(dest);
    if (!step) continue;
    rmSync(dest, { recursive: true, force: true });
    const m = await storeChild(step);
    if (!existsSync(path.join(dest, 'mysql.ibd'))) throw new Error(`${r.label}: the restored directory holds no mysql.ibd`);
    const bytes = step.op === 'extract-file' ? statSync(step.file).size : 'bytes' in step ? step.bytes : undefined;
    report.row(r.id, r.label, m, { sourceBytes, bytes, worker: true });
  }
  rmSync(dest, { recursive: true, force: true });
}

/** Big INSERT … SELECTs of sysbench rows until the current binlog holds `targetBytes`; returns that closed file. */
async function makeBigBinlog(targetBytes: number): Promise<{ file: string; bytes: number }> {
  const conn = source!.conn;
  await conn.query('CREATE TABLE IF NOT EXISTS bench.binlog_fill (id BIGINT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL)');
  await rotateBinlog(conn);
  const file = await currentBinlog(conn);
  const { tables, rowsPerTable } = source!.shape;
  const chunk = Math.min(20_000, rowsPerTable);
  // The server rotates at max_binlog_size (at most 1 GiB): a target at or above it is reached when the file closes.
  for (let i = 0; ; i++) {
    const [status] = await conn.query<import('mysql2/promise').RowDataPacket[]>('SHOW BINARY LOG STATUS');
    if (String(status[0]!.File) !== file || Number(status[0]!.Position) >= targetBytes) break;
    const table = `sbtest.sbtest${(i % tables) + 1}`;
    const from = (Math.floor(i / tables) * chunk) % rowsPerTable;
    await conn.query(`INSERT INTO bench.binlog_fill (k, c, pad) SELECT k, c, pad FROM ${table} WHERE id > ? AND id <= ?`, [from, from + chunk]);
  }
  if ((await currentBinlog(conn)) === file) await rotateBinlog(conn);
  return { file: path.join(source!.datadir, file), bytes: statSync(path.join(source!.datadir, file)).size };
}

async function sectionBinlog(): Promise<void> {
  report.section(`BINLOG ARCHIVING of one binlog (checksums checked, digest pass, upload to ${s3Name}, verify = ${DEFAULT_VERIFY})`);
  const t0 = Date.now();
  const binlog = await makeBigBinlog(binlogMb * 1024 * 1024);
  log(`wrote a ${mb(binlog.bytes)} MB binlog (${path.basename(binlog.file)}) with INSERT … SELECT of sysbench rows in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  for (const [codec, encrypted] of [['gzip', false], ['zstd', false], ['zstd', true], ['none', false]] as const) {
    const level = codec === 'gzip' ? GZIP_LEVEL : ZSTD_LEVEL;
    const id = `binlog-${codec}${encrypted ? '-enc' : ''}`;
    const m = await runNodeChild(script('binlog-one.ts'), {
      oss,
      bucket,
      file: binlog.file,
      key: `log_1_${path.basename(binlog.file)}-${id}`,
      codec,
      level,
      threads: cores,
      verify: DEFAULT_VERIFY,
      ...(encrypted ? { encryptionKeyHex: benchKeyHex } : {}),
    });
    // Encrypted, the digest pass compresses into a local file and encrypts that into the file the upload sends.
    const phases = `checksums ${fmt(Number(m.checksumSeconds))} s, digest pass ${fmt(Number(m.digestSeconds))} s, upload+verify ${fmt(Number(m.uploadSeconds))} s`;
    report.row(id, `binlog ${codec}${codec === 'none' ? '' : `-${level}`}${encrypted ? ' + AES-256-GCM' : ''}`, m, { sourceBytes: binlog.bytes, bytes: Number(m.bytes), worker: true, notes: phases });
  }
  rmSync(binlog.file, { force: true });
}

async function sectionReplay(): Promise<void> {
  report.section(`REPLAY of a ${replaySeconds} s sysbench oltp_write_only load onto a clone taken before it`);
  const conn = source!.conn;
  const base = path.join(workDir, 'replay', 'base');
  mkdirSync(path.dirname(base), { recursive: true });
  const node = await DataNode.connect({ host: '127.0.0.1', port: source!.port, user: 'root', password: '', charset: 'utf8mb4' });
  try {
    await node.cloneLocal(base);
  } finally {
    await node.close();
  }
  const cloneGtids = await gtidExecuted(conn);
  await rotateBinlog(conn);
  const first = await currentBinlog(conn);
  const out = await runSysbench(sysbenchArgs('oltp_write_only', source!.socket, source!.shape, ['--threads=4', `--time=${replaySeconds}`, '--report-interval=0', 'run']), log);
  const tps = /transactions:\s+(\d+)\s+\(([\d.]+) per sec/.exec(out);
  const last = await rotateBinlog(conn);
  const files = (await binlogsBetween(conn, first, last)).map((b) => ({ path: path.join(source!.datadir, b.name), bytes: b.size }));
  const binlogBytes = files.reduce((s, f) => s + f.bytes, 0);
  const expected = await gtidExecuted(conn);
  log(`load: ${tps ? `${tps[1]} transactions (${tps[2]}/s on the source)` : 'done'}, ${files.length} binlog(s), ${mb(binlogBytes)} MB`);
  const checksumTables = Array.from({ length: source!.shape.tables }, (_, i) => `sbtest.sbtest${i + 1}`);
  let firstChecksums: string | undefined;
  for (const method of ['mysqlbinlog', 'applier'] as const) {
    const dir = path.join(workDir, 'replay', method);
    const datadir = path.join(dir, 'data');
    mkdirSync(dir, { recursive: true });
    execFileSync('cp', ['-a', '--reflink=auto', base, datadir]);
    const args: ReplayOnceArgs = { sidRoot: services.sidRoot, method, datadir, workDir: dir, binlogs: files.map((f) => f.path), cloneGtids, checksumTables };
    const r = (await runNodeChild(script('replay-one.ts'), args)) as unknown as ReplayOnceResult;
    firstChecksums ??= r.checksums;
    const notes = [
      r.method === method ? '' : `ran ${r.method}: ${r.log.join(' ')}`,
      tps ? `${(Number(tps[1]) / r.seconds).toFixed(0)} tx/s` : '',
      r.gtidExecuted === expected ? "gtid_executed = the source's" : `gtid_executed DIFFERS from the source's: ${r.gtidExecuted} vs ${expected}`,
      r.checksums === firstChecksums ? (method === 'mysqlbinlog' ? '' : 'same table checksums') : 'table checksums DIFFER from mysqlbinlog | mysql',
    ];
    report.row(`replay-${method}`, method === 'applier' ? "the server's applier (relay logs)" : 'mysqlbinlog | mysql', { seconds: r.seconds }, { sourceBytes: binlogBytes, notes: notes.filter(Boolean).join('; ') });
    rmSync(dir, { recursive: true, force: true });
  }
  rmSync(base, { recursive: true, force: true });
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
const fmt = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));

try {
  const shape = shapeForGb(gb);
  console.log(`mcb bench: ${cores} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, node ${process.version}; ${os.cpus()[0]?.model ?? ''}; load average ${loadAtStart}`);
  console.log(`data: sysbench oltp tables, ${shape.tables} × ${shape.rowsPerTable} rows (MCB_BENCH_GB=${gb}); sections: ${[...only].join(', ')}`);
  console.log(`work dir ${workDir}${keep ? ' (kept)' : ''}; S3: ${s3Name}, bucket ${bucket}`);
  console.log('MB = 10^6 bytes; MB/s are of the source data (the datadir, or the binlog) unless the notes say otherwise\n');

  const idle = await runNodeChild(script('idle-one.ts'), {});
  console.log(`peak RSS of an idle child (node + tsx + the modules loaded): ${idle.maxRssMiB?.toFixed(0)} MiB, the floor under every RSS figure\n`);
  if (!(await ensureCommand('sysbench', 'sysbench', log))) throw new Error('sysbench is missing: apt-get install -y sysbench');
  source = await startBenchSource({ sidRoot: services.sidRoot, cacheDir, workDir, shape, log });
  const needUpload = only.has('upload') || only.has('restore');
  const needArchive = only.has('archive') || needUpload;
  const needClone = only.has('clone') || needArchive;
  if (needUpload || only.has('binlog') || only.has('stream')) {
    minio = new Minio.Client({ endPoint: oss.endPoint, port: oss.port, useSSL: oss.useSSL, accessKey: oss.accessKey, secretKey: oss.secretKey });
    await minio.makeBucket(bucket);
  }
  let clone: { seconds: number; sourceBytes: number } | undefined;
  let archives: Map<string, ArchiveMade> | undefined;
  let uploads: Map<string, Uploaded> | undefined;
  if (needClone) clone = await sectionClone();
  if (needArchive) archives = await sectionArchive(clone!.sourceBytes, only.has('archive'));
  if (needUpload) uploads = await sectionUpload(archives!, clone!.sourceBytes, only.has('upload'));
  if (only.has('restore')) await sectionRestore(uploads!, archives!, clone!.sourceBytes);
  if (clone && only.has('upload')) report.whole(clone.seconds, DEFAULT_VERIFY);
  if (only.has('replay')) await sectionReplay();
  if (only.has('binlog')) await sectionBinlog();
  if (only.has('stream')) {
    await sectionStream({ source: source!, workDir, oss, bucket, metadata: services.metadata, redisUrl: services.redisUrl, sidRoot: services.sidRoot, seconds: streamSeconds, intervalSeconds: streamInterval, report, log, script });
  }
  report.targets({ restoreNote: isMoto && only.has('restore') ? 'against moto with download_concurrency = 1' : undefined });
  console.log(`\nbench run time ${((Date.now() - started) / 1000).toFixed(0)} s; load average now ${loadAverage()} (at the start ${loadAtStart})`);
} finally {
  await cleanUp();
}
