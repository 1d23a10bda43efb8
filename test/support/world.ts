// A private corner of the shared test services for one test: its own metadata database, Redis prefix,
// bucket and backup directory, a clone.ini pointing at them, and a cleanup that removes all of it.
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as Minio from 'minio';
import mysql from 'mysql2/promise';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config/index.ts';
import { MetadataStore, migrate } from '../../src/metadata/index.ts';
import { servicesEnv, type MysqlEndpoint } from './env.ts';

export interface World {
  id: string;
  dir: string;
  configFile: string;
  config: Config;
  metadata: MetadataStore;
  database: string;
  prefix: string;
  bucket: string;
  backupPath: string;
  sourceInstanceId: number;
  replicaInstanceId: number;
  minio: Minio.Client;
  /** Writes a clone.ini for one node (source or replica) with overrides, returns its path. */
  writeConfig(opts?: WorldConfigOptions): string;
  cleanup(): Promise<void>;
}

export interface WorldConfigOptions {
  node?: 'source' | 'replica';
  instanceId?: number;
  file?: string;
  backupConf?: Record<string, string>;
  sections?: Record<string, Record<string, string>>;
  s3Port?: number;
  metadataPassword?: string;
  bucket?: string;
}

export function randomId(): string {
  return randomBytes(4).toString('hex');
}

export function minioClient(): Minio.Client {
  const s3 = servicesEnv().s3;
  return new Minio.Client({ endPoint: s3.endPoint, port: s3.port, useSSL: s3.useSSL, accessKey: s3.accessKey, secretKey: s3.secretKey });
}

export async function rootConnection(node: MysqlEndpoint): Promise<mysql.Connection> {
  return mysql.createConnection({ host: node.host, port: node.port, user: node.rootUser, password: node.rootPassword, multipleStatements: true });
}

/**
 * opts.metadataOn = 'mysql' puts the metadata center on the MySQL 9.7 source instead of the configured one
 * (MariaDB on these machines), for tests that must hold on both kinds users run. opts.metadata puts it on a server
 * the test runs itself (test/support/private-mariadb.ts), for tests that stop it.
 */
export async function createWorld(
  opts: { bucket?: boolean; metadataOn?: 'default' | 'mysql'; metadata?: { host: string; port: number; user: string; password: string } } = {},
): Promise<World> {
  const env = servicesEnv();
  const id = randomId();
  const dir = mkdtempSync(path.join(os.tmpdir(), `mcb-test-${id}-`));
  chmodSync(dir, 0o711); // restores run their temporary mysqld as the mysql user, which must reach datadirs in here
  const database = `mcb_test_${id}`;
  const prefix = `mcbtest${id}`;
  const bucket = `mcb-test-${id}`;
  const backupPath = path.join(dir, 'clone_bak');
  mkdirSync(backupPath);

  const minio = minioClient();
  if (opts.bucket !== false) await minio.makeBucket(bucket);

  const meta =
    opts.metadata ??
    (opts.metadataOn === 'mysql'
      ? { host: env.source.host, port: env.source.port, user: env.source.rootUser, password: env.source.rootPassword }
      : env.metadata);
  await migrate({ host: meta.host, port: meta.port, user: meta.user, password: meta.password, database, charset: 'utf8mb4' });
  const metadata = await MetadataStore.connect({ host: meta.host, port: meta.port, user: meta.user, password: meta.password, database, charset: 'utf8mb4' });
  const sourceInstanceId = await metadata.addInstance({
    instanceId: `${env.source.host}:${env.source.port}`,
    instanceName: `source-${id}`,
    stringLink: env.source.host,
    dbPort: env.source.port,
    isClone: true,
  });
  const replicaInstanceId = await metadata.addInstance({
    instanceId: `${env.replica.host}:${env.replica.port}`,
    instanceName: `replica-${id}`,
    stringLink: env.replica.host,
    dbPort: env.replica.port,
    isClone: true,
  });

  const writeConfig = (o: WorldConfigOptions = {}): string => {
    const node = env[o.node ?? 'replica'];
    const instanceId = o.instanceId ?? (o.node === 'source' ? sourceInstanceId : replicaInstanceId);
    const sections: Record<string, Record<string, string>> = {
      'mysql-link': { host: node.host, port: String(node.port), user: node.user, password: node.password, charset: 'utf8mb4' },
      'metadata-link': {
        host: meta.host,
        port: String(meta.port),
        user: meta.user,
        password: o.metadataPassword ?? meta.password,
        database,
        charset: 'utf8mb4',
      },
      'backup-conf': {
        backup_path: backupPath,
        bin_index_path: node.binlogIndex,
        tb_instance_id: String(instanceId),
        bucket_name: o.bucket ?? bucket,
        full_storage_days: '7',
        binlog_storage_days: '7',
        is_cluster: 'on',
        debug: 'off',
        stage_attempts: '3',
        stage_backoff_ms: '200',
        shutdown_grace_seconds: '5',
        ...o.backupConf,
      },
      redis: { url: env.redisUrl, prefix },
      oss: {
        endpoint: `${env.s3.endPoint}:${o.s3Port ?? env.s3.port}`,
        access_key: env.s3.accessKey,
        secret_key: env.s3.secretKey,
        secure: env.s3.useSSL ? 'on' : 'off',
      },
      ...o.sections,
    };
    const text = Object.entries(sections)
      .map(([name, keys]) => `[${name}]\n${Object.entries(keys).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`)
      .join('\n');
    const file = o.file ?? path.join(dir, `clone-${o.node ?? 'replica'}-${randomId()}.ini`);
    writeFileSync(file, text, { mode: 0o600 }); // it holds passwords: mcb warns about a config others can read
    return file;
  };

  const configFile = writeConfig({ file: path.join(dir, 'clone.ini') });
  const world: World = {
    id,
    dir,
    configFile,
    config: loadConfig(configFile),
    metadata,
    database,
    prefix,
    bucket,
    backupPath,
    sourceInstanceId,
    replicaInstanceId,
    minio,
    writeConfig,
    async cleanup() {
      await metadata.close().catch(() => undefined);
      const conn = await mysql.createConnection({ host: meta.host, port: meta.port, user: meta.user, password: meta.password });
      await conn.query(`DROP DATABASE IF EXISTS \`${database}\``);
      await conn.end();
      const redis = new Redis(env.redisUrl);
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await redis.del(...keys);
      } while (cursor !== '0');
      await redis.quit();
      if (await minio.bucketExists(bucket).catch(() => false)) {
        const names: string[] = [];
        for await (const o of minio.listObjectsV2(bucket, '', true) as AsyncIterable<{ name?: string }>) if (o.name) names.push(o.name);
        if (names.length) await minio.removeObjects(bucket, names);
        await minio.removeBucket(bucket).catch(() => undefined);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return world;
}
