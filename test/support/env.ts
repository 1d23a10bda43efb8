// Reads the local services that scripts/services.sh started (see docs/architecture.md).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export interface MysqlEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  rootUser: string;
  rootPassword: string;
  datadir: string;
  binlogIndex: string;
}

export interface ServicesEnv {
  redisUrl: string;
  metadata: { host: string; port: number; user: string; password: string; flavor: 'mariadb' | 'mysql' };
  source: MysqlEndpoint;
  replica: MysqlEndpoint;
  s3: { endPoint: string; port: number; useSSL: boolean; accessKey: string; secretKey: string; bucket: string };
  sidRoot: string;
  mysqld: string[];
  mysqldBaseArgs: string[];
  mysqlClient: string[];
  mysqlbinlog: string[];
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let cached: ServicesEnv | undefined;

export function servicesEnv(): ServicesEnv {
  if (cached) return cached;
  const dir = process.env.MCB_SERVICES_DIR ?? path.join(repoRoot, '.services');
  const file = path.join(dir, 'env.json');
  try {
    cached = JSON.parse(readFileSync(file, 'utf8')) as ServicesEnv;
  } catch (err) {
    throw new Error(`local services are not running (${file} unreadable: ${(err as Error).message}); run: bash scripts/services.sh up`);
  }
  return cached;
}
