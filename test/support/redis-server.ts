// A private redis-server (and Redis Sentinels) on spare ports, for tests that stop, restart or fail over Redis
// for real without touching the shared one. Binaries: redis-server and redis-cli on PATH (Debian's redis-server).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A TCP port nothing listens on right now (the kernel's pick). */
export function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Runs redis-cli against a port; returns its trimmed stdout (throws on a non-zero exit). */
export function redisCli(port: number, ...args: string[]): string {
  const r = spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`redis-cli -p ${port} ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout.trim();
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

function startProcess(args: string[]): ChildProcess {
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function waitForPing(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      let data = '';
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.on('data', (d) => {
        data += d;
        if (data.includes('\r\n')) {
          socket.destroy();
          resolve(data.startsWith('+PONG'));
        }
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis on port ${port} did not answer PING within ${timeoutMs} ms`);
    await sleep(50);
  }
}

async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export interface RedisServer {
  port: number;
  url: string;
  dir: string;
  /** Whether it writes an append-only file (data survives a restart) or keeps nothing on disk. */
  appendonly: boolean;
  running(): boolean;
  /** Stops the server like a crash or a host reboot: SIGKILL by default, nothing saved that AOF did not already hold. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port, directory and settings. */
  start(): Promise<void>;
  cli(...args: string[]): string;
  /** Stops it for good and removes its directory. */
  destroy(): Promise<void>;
}

export interface RedisServerOptions {
  appendonly?: boolean;
  port?: number;
  /** Start as a replica of this primary. */
  replicaOf?: { host: string; port: number };
  /** Start as a node of a Redis Cluster (joined by startRedisCluster). */
  cluster?: boolean;
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const port = opts.port ?? (await sparePort());
  const dir = mkdtempSync(path.join(os.tmpdir(), `mcb-redis-${port}-`));
  const appendonly = opts.appendonly ?? false;
  const args = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--dir', dir,
    '--save', '',
    '--appendonly', appendonly ? 'yes' : 'no',
    '--appendfsync', 'always',
    '--protected-mode', 'no',
    '--daemonize', 'no',
    '--logfile', path.join(dir, 'redis.log'),
    ...(opts.replicaOf ? ['--replicaof', opts.replicaOf.host, String(opts.replicaOf.port)] : []),
    ...(opts.cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', path.join(dir, 'nodes.conf'), '--cluster-node-timeout', '2000'] : []),
  ];
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    appendonly,
    running: () => !!child && child.exitCode === null && child.signalCode === null,
    async stop(signal = 'SIGKILL') {
      await stopProcess(child, signal);
    },
    async start() {
      if (server.running()) return;
      child = startProcess(args);
      await waitForPing(port);
    },
    cli: (...a) => redisCli(port, ...a),
    async destroy() {
      await stopProcess(child, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

export interface SentinelSet {
  masterName: string;
  ports: number[];
  /** `h:p,h:p,h:p`, as [redis] sentinels takes it. */
  addresses: string;
  /** The primary the sentinels name now. */
  currentPrimaryPort(): number;
  /** Waits until the sentinels name a primary other than `oldPort`, and that primary accepts writes. */
  waitForNewPrimary(oldPort: number, timeoutMs?: number): Promise<number>;
  destroy(): Promise<void>;
}

/** Three (by default) sentinels watching `primaryPort` with short timeouts: a dead primary is replaced in about 2 s. */
export async function startSentinels(primaryPort: number, opts: { count?: number; masterName?: string } = {}): Promise<SentinelSet> {
  const masterName = opts.masterName ?? 'mymaster';
  const children: ChildProcess[] = [];
  const dirs: string[] = [];
  const ports: number[] = [];
  for (let i = 0; i < (opts.count ?? 3); i++) {
    const port = await sparePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), `mcb-sentinel-${port}-`));
    const conf = path.join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'protected-mode no',
        `dir ${dir}`,
        `logfile ${path.join(dir, 'sentinel.log')}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    children.push(startProcess([conf, '--sentinel']));
    dirs.push(dir);
    ports.push(port);
  }
  for (const port of ports) await waitForPing(port);
  const currentPrimaryPort = () => {
    const out = redisCli(ports[0]!, 'SENTINEL', 'get-master-addr-by-name', masterName).split('\n');
    return Number(out[1]);
  };
  return {
    masterName,
    ports,
    addresses: ports.map((p) => `127.0.0.1:${p}`).join(','),
    currentPrimaryPort,
    async waitForNewPrimary(oldPort, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const agreed = ports.map((p) => {
          try {
            return Number(redisCli(p, 'SENTINEL', 'get-master-addr-by-name', masterName).split('\n')[1]);
          } catch {
            return 0;
          }
        });
        const port = agreed[0]!;
        if (port && port !== oldPort && agreed.every((p) => p === port)) {
          try {
            if (redisCli(port, 'ROLE').split('\n')[0] === 'master') return port;
          } catch {
            // not answering yet
          }
        }
        await sleep(100);
      }
      throw new Error(`sentinels did not promote a new primary (other than port ${oldPort}) within ${timeoutMs} ms`);
    },
    async destroy() {
      await Promise.all(children.map((c) => stopProcess(c, 'SIGKILL')));
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

export interface RedisCluster {
  nodes: RedisServer[];
  /** `h:p,h:p,h:p`, as [redis] cluster_nodes takes it. */
  addresses: string;
  destroy(): Promise<void>;
}

/** A Redis Cluster of `size` primaries (no replicas) on spare ports, slots spread by `redis-cli --cluster create`. */
export async function startRedisCluster(size = 3): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  for (let i = 0; i < size; i++) nodes.push(await startRedisServer({ cluster: true }));
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'], { encoding: 'utf8', timeout: 30_000 });
  const destroy = async () => {
    await Promise.all(nodes.map((n) => n.destroy()));
  };
  if (created.status !== 0) {
    await destroy();
    throw new Error(`redis-cli --cluster create failed: ${created.stderr || created.stdout}`);
  }
  const deadline = Date.now() + 20_000;
  while (!nodes.every((n) => n.cli('CLUSTER', 'INFO').includes('cluster_state:ok'))) {
    if (Date.now() > deadline) {
      await destroy();
      throw new Error('the Redis Cluster did not reach cluster_state:ok within 20 s');
    }
    await sleep(100);
  }
  return { nodes, addresses: addresses.join(','), destroy };
}
