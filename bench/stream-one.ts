// The binlog streamer alone in a child process, as the worker runs it, until the parent creates the stop file:
// its own CPU time and that of the mysqlbinlog it runs (read from /proc before it is stopped), and its peak RSS.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig, requireOss } from '../src/config/index.ts';
import { createLogger } from '../src/log/index.ts';
import { MetadataStore } from '../src/metadata/index.ts';
import { MinioObjectStore } from '../src/storage/index.ts';
import { startBinlogStreamer } from '../src/streamer/index.ts';
import { childArgs, measureAndPrint } from './child.ts';

export interface StreamOnceArgs {
  configFile: string;
  instanceId: number;
  stopFile: string;
}

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) of this process's direct children, from /proc: mysqlbinlog. */
function childrenCpuSeconds(): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) !== process.pid) continue;
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone meanwhile
    }
  }
  return ticks / TICKS_PER_SECOND;
}

const args = childArgs<StreamOnceArgs>();
await measureAndPrint(async () => {
  const config = loadConfig(args.configFile);
  const log = createLogger({ quiet: true, name: 'bench-stream' });
  const metadata = await MetadataStore.connect(config.metadata, { log });
  const oss = requireOss(config);
  const storage = new MinioObjectStore(oss, oss.bucket);
  const cpuStart = process.cpuUsage();
  const streamer = startBinlogStreamer({ config, metadata, storage, instanceId: args.instanceId, workerHost: os.hostname(), log });
  let mysqlbinlogCpuSeconds = 0;
  while (!existsSync(args.stopFile)) {
    mysqlbinlogCpuSeconds = Math.max(mysqlbinlogCpuSeconds, childrenCpuSeconds());
    await sleep(500);
  }
  mysqlbinlogCpuSeconds = Math.max(mysqlbinlogCpuSeconds, childrenCpuSeconds());
  await streamer.stop();
  const cpu = process.cpuUsage(cpuStart);
  await metadata.close();
  return { nodeCpuSeconds: (cpu.user + cpu.system) / 1e6, mysqlbinlogCpuSeconds };
});
