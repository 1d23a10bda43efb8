// A JobContext for calling handlers directly, without BullMQ.
import os from 'node:os';
import { requireMysqlLink, requireOss, type Config } from '../../src/config/index.ts';
import type { FullChainPayload, JobContext } from '../../src/jobs/types.ts';
import { createLogger } from '../../src/log/index.ts';
import type { MetadataStore } from '../../src/metadata/index.ts';
import { DataNode } from '../../src/mysql/data-node.ts';
import { MinioObjectStore, type ObjectStore } from '../../src/storage/index.ts';

export interface DirectContext extends JobContext {
  chains: FullChainPayload[];
  progressValues: unknown[];
}

export function directContext(config: Config, metadata: MetadataStore, opts: { jobId?: string; storage?: ObjectStore; now?: () => Date } = {}): DirectContext {
  const oss = requireOss(config);
  const chains: FullChainPayload[] = [];
  const progressValues: unknown[] = [];
  return {
    config,
    metadata,
    storage: opts.storage ?? new MinioObjectStore(oss, oss.bucket),
    connectDataNode: () => DataNode.connect(requireMysqlLink(config)),
    log: createLogger({ name: 'test' }).child({ test: true }),
    jobId: opts.jobId ?? `test-job-${Date.now()}`,
    workerHost: os.hostname(),
    signal: new AbortController().signal,
    progress: async (v) => {
      progressValues.push(v);
    },
    startFullChain: async (p) => {
      chains.push(p);
    },
    // Handler-level tests keep no jobs in Redis: a row they started counts as running (the worker-level test
    // in full-chain-worker.test.ts covers the real check).
    isFullChainAlive: async () => true,
    now: opts.now ?? (() => new Date()),
    chains,
    progressValues,
  };
}
