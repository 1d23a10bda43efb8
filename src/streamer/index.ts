// The binlog streamer ([backup-conf] binlog_stream, docs/binlog-streaming.md): in the worker that holds the role,
// MySQL's own mysqlbinlog follows the server over the replication protocol into a local spool
// (mysqlbinlog-process.ts, spool.ts); every binlog_stream_interval_seconds the new complete transactions go to the
// bucket as one segment object with a row (session.ts, segment-upload.ts) and the stream's state, with covered_at,
// the instant the bucket is known complete to, is saved (streamer.ts). It resumes where the bucket ends (resume.ts).
// May import: restore, metadata, storage, mysql, binlog, archive, config, fs, time, log, streams.
import { requireMysqlLink } from '../config/index.ts';
import { resolveRestoreBinaries, whichProgram } from '../restore/binaries.ts';
import { streamServerId } from './resume.ts';
import { Spool } from './spool.ts';
import { Streamer, type StreamerOptions } from './streamer.ts';

export { SPOOL_DIR_NAME } from './spool.ts';
export { streamServerId } from './resume.ts';

export type { StreamerOptions };

export interface BinlogStreamer {
  /** Stops mysqlbinlog, uploads what it brought (a few seconds at most), saves state `stopped`. */
  stop(): Promise<void>;
  /** Stops streaming for a while (another worker took the role); resume() starts again where the bucket ends. */
  pause(): Promise<void>;
  resume(): void;
}

/** How long stop() waits for the loop (mysqlbinlog's exit, the last upload, the state). */
const STOP_WAIT_MS = 10_000;

/** Starts streaming; errors (server, storage, metadata) are retried inside and shown in the stream's state. */
export function startBinlogStreamer(o: StreamerOptions): BinlogStreamer {
  const { config } = o;
  if (!config.backup.backupPath) throw new Error('binlog_stream needs [backup-conf] backup_path (the spool is kept there)');
  const log = o.log.child({ component: 'binlog-stream' });
  const streamer = new Streamer({
    config,
    metadata: o.metadata,
    storage: o.storage,
    instanceId: o.instanceId,
    workerHost: o.workerHost,
    log,
    link: requireMysqlLink(config),
    mysqlbinlog: resolveRestoreBinaries(config.restore).binaries.mysqlbinlog,
    serverId: streamServerId(config.backup.binlogStreamServerId, o.instanceId),
    setpriv: whichProgram('setpriv'),
    spool: new Spool(config.backup.backupPath),
    now: o.now ?? (() => new Date()),
  });
  let controller: AbortController | undefined;
  let running: Promise<void> | undefined;
  // A run that outlived stop()'s wait (a metadata center that does not answer) ends before the next one starts.
  let previous: Promise<void> = Promise.resolve();
  const start = () => {
    if (running) return;
    const c = (controller = new AbortController());
    running = previous = previous
      .then(() => (c.signal.aborted ? undefined : streamer.run(c.signal)))
      .catch((err: Error) => log.error({ event: 'stream.failed', err: { message: err.message } }, `binlog stream failed: ${err.message}`));
  };
  const stop = async () => {
    if (!running) return;
    controller?.abort();
    const done = running;
    running = undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  };
  start();
  return { stop, pause: stop, resume: start };
}
