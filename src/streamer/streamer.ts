// The streamer's loop: start mysqlbinlog where the bucket ends (resume.ts), every interval observe the server, upload
// what is new (session.ts) and save the state; restart mysqlbinlog after it exits (server restart, network cut,
// another stream with our server id), after a stall, or at the active binlog after a gap.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config, MysqlLinkConfig } from '../config/index.ts';
import { compareBinlogFiles, nextBinlogFile } from '../binlog/index.ts';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log/index.ts';
import { completedBinlogStarts, listBinlogRows } from '../metadata/binlog-queries.ts';
import { lastBinlogSegment, saveStreamStatus, type StreamState } from '../metadata/binlog-segments.ts';
import type { MetadataStore } from '../metadata/index.ts';
import { DataNode, type BinlogPosition } from '../mysql/data-node.ts';
import type { MysqldBinary } from '../mysql/mysqld.ts';
import type { ObjectStore } from '../storage/index.ts';
import { sameWallSecond } from '../time/zone.ts';
import { startMysqlbinlog, type ProcessExit } from './mysqlbinlog-process.ts';
import { firstStreamFile, isMissingFileError, reconnectBackoffMs, resumePoint, type ResumePoint } from './resume.ts';
import { StreamSession, type UploadedPosition } from './session.ts';
import type { Spool } from './spool.ts';

/** What startBinlogStreamer is given. */
export interface StreamerOptions {
  config: Config;
  metadata: MetadataStore;
  storage: ObjectStore;
  instanceId: number;
  workerHost: string;
  log: Logger;
  now?: () => Date;
}

/** That, and what the streamer derives from it once. */
export interface StreamerDeps extends Required<StreamerOptions> {
  link: MysqlLinkConfig;
  mysqlbinlog: MysqldBinary;
  serverId: number;
  setpriv?: string;
  spool: Spool;
}

/** How a run of mysqlbinlog ended. */
type RunEnd = { kind: 'stopped' } | { kind: 'exited'; exit: ProcessExit } | { kind: 'stalled' } | { kind: 'other-series'; reason: string };

/** Intervals in a row mysqlbinlog may lack what the server wrote before it is restarted. */
const STALL_INTERVALS = 3;
/** A run that lasted this long was healthy: the next restart waits 1 s again. */
const HEALTHY_RUN_MS = 30_000;
/** What stopping gives the last upload. */
const FINAL_UPLOAD_MS = 5000;

export class Streamer {
  private node: DataNode | undefined;
  private observeFailing = false;
  private uploaded: UploadedPosition | undefined;
  /** Why the stream has a hole, for the rest of this process's life (state `gap`). */
  private gap: string | undefined;
  private uploadError: string | undefined;
  private lastCovered = 0;
  private stopping = false;

  constructor(private readonly d: StreamerDeps) {}

  /** Streams until `signal` aborts; then one last upload and state `stopped`. */
  async run(signal: AbortSignal): Promise<void> {
    this.stopping = false;
    let backoffMs: number | undefined;
    let restartAt: string | undefined;
    while (!signal.aborted) {
      let session: StreamSession;
      try {
        session = await this.open(restartAt);
      } catch (err) {
        backoffMs = reconnectBackoffMs(backoffMs);
        await this.fault('reconnecting', `cannot start the stream: ${errorMessage(err)}`, backoffMs);
        await sleep(backoffMs, undefined, { signal }).catch(() => undefined);
        continue;
      }
      restartAt = undefined;
      const end = await this.follow(session, signal);
      await session.process.stop();
      if (end.kind === 'stopped') break;
      if (Date.now() - session.startedAt >= HEALTHY_RUN_MS) backoffMs = undefined;
      backoffMs = reconnectBackoffMs(backoffMs);
      if (end.kind === 'other-series' || (end.kind === 'exited' && isMissingFileError(end.exit.lastError))) {
        this.gap = end.kind === 'other-series' ? end.reason : `${session.start.file} was purged from the server before it was streamed (${end.exit.lastError}); streaming resumes at the active binlog`;
        restartAt = this.gap;
        await this.fault('gap', this.gap, backoffMs);
      } else if (end.kind === 'stalled') {
        await this.fault('reconnecting', `mysqlbinlog received nothing for ${STALL_INTERVALS} intervals while the server wrote on: restarted`, backoffMs);
      } else {
        await this.fault('reconnecting', `mysqlbinlog exited: ${end.exit.lastError}`, backoffMs);
      }
      await sleep(backoffMs, undefined, { signal }).catch(() => undefined);
    }
    await this.save('stopped', undefined).catch((err) => this.d.log.warn({ event: 'stream.status-failed', err: { message: errorMessage(err) } }, 'could not save the stream state'));
    await this.node?.close();
    this.node = undefined;
    this.d.log.info({ event: 'stream.stopped', ...this.uploaded }, 'binlog stream stopped');
  }

  /** Starts mysqlbinlog where the bucket ends (or at the active binlog, after a gap). */
  private async open(restartAt: string | undefined): Promise<StreamSession> {
    const { config, instanceId, log, spool } = this.d;
    const { active, serverUuid } = await this.serverNow();
    const start: ResumePoint = restartAt ? { kind: 'from-start', file: active.file, reason: 'the active binlog, after a gap' } : await this.resumeFrom(active.file);
    await spool.clear();
    const process = startMysqlbinlog({ binary: this.d.mysqlbinlog, link: this.d.link, serverId: this.d.serverId, spoolDir: spool.dir, firstFile: start.file, setpriv: this.d.setpriv });
    log.info(
      { event: 'stream.start', file: start.file, skipTo: start.kind === 'restream' ? start.skipTo : 0, pid: process.pid, serverId: this.d.serverId },
      start.kind === 'restream' ? `streaming ${start.file} again from the server, uploading from byte ${start.skipTo}` : `streaming from ${start.file}: ${start.reason}`,
    );
    const target = { config, storage: this.d.storage, metadata: this.d.metadata, instanceId, spool };
    return new StreamSession(start, process, target, serverUuid, log);
  }

  private async resumeFrom(activeFile: string): Promise<ResumePoint> {
    const { metadata, instanceId } = this.d;
    const last = await lastBinlogSegment(metadata, instanceId);
    if (!last) {
      const archived = new Set((await listBinlogRows(metadata, instanceId)).filter((r) => r.state === 'Completed').map((r) => r.binlogFile));
      const serverFiles = (await (await this.dataNode()).binaryLogs()).map((b) => b.name);
      const file = firstStreamFile(serverFiles, archived, activeFile);
      return { kind: 'from-start', file, reason: file === activeFile ? 'no segment recorded: the active binlog' : 'no segment recorded: the first file not archived whole' };
    }
    const archivedSince = async (file: string, seriesStart: number, sameSeriesOnly: boolean) => {
      const starts = await completedBinlogStarts(metadata, instanceId, file);
      const at = new Date(seriesStart * 1000);
      return starts.some((s) => sameWallSecond(s, at, metadata.timeZone) || (!sameSeriesOnly && s.getTime() > at.getTime()));
    };
    const archivedWhole = last !== undefined && !last.closesFile && (await archivedSince(last.binlogFile, last.seriesStart, true));
    let start = resumePoint(last, archivedWhole, activeFile);
    // Closed files the binlog job archived while no stream ran are in the bucket already: skip them.
    while (last && start.kind === 'from-start' && compareBinlogFiles(start.file, activeFile) < 0 && (await archivedSince(start.file, last.seriesStart, false))) {
      start = { kind: 'from-start', file: nextBinlogFile(start.file), reason: `the first file after ${last.binlogFile} not archived whole` };
    }
    return start;
  }

  /** Every interval: observe, upload, save; until mysqlbinlog ends, stalls or `signal` aborts. */
  private async follow(session: StreamSession, signal: AbortSignal): Promise<RunEnd> {
    const intervalMs = this.d.config.backup.binlogStreamIntervalSeconds * 1000;
    let exit: ProcessExit | undefined;
    void session.process.exited.then((e) => (exit = e));
    for (;;) {
      await Promise.race([sleep(intervalMs, undefined, { signal }).catch(() => undefined), session.process.exited]);
      if (signal.aborted) {
        await session.process.stop();
        await this.tickWithin(session, FINAL_UPLOAD_MS);
        this.stopping = true; // a last tick that outlived its time must not save `streaming` over `stopped`
        return { kind: 'stopped' };
      }
      const otherSeries = await this.tick(session);
      if (otherSeries) return { kind: 'other-series', reason: otherSeries };
      if (exit) return { kind: 'exited', exit };
      if (session.stalls >= STALL_INTERVALS) return { kind: 'stalled' };
    }
  }

  /** Observe the server, upload what is new, save the state (covered_at when the bucket reached the observation). */
  private async tick(session: StreamSession, signal?: AbortSignal): Promise<string | undefined> {
    const at = this.d.now();
    let otherSeries: string | undefined;
    try {
      await session.observe(at, await this.observe());
      otherSeries = await session.uploadNew((p) => (this.uploaded = p), this.d.now, signal);
      this.uploadError = undefined;
    } catch (err) {
      const message = errorMessage(err);
      if (this.uploadError !== message) this.d.log.warn({ event: 'stream.upload-failed', err: { message } }, `segment upload failed (kept in the spool, tried again next interval): ${message}`);
      this.uploadError = message;
    }
    const covered = this.uploadError ? undefined : session.coveredAt();
    await this.save(this.gap ? 'gap' : 'streaming', covered).catch((err) =>
      this.d.log.warn({ event: 'stream.status-failed', err: { message: errorMessage(err) } }, 'could not save the stream state'),
    );
    return otherSeries;
  }

  /** The last upload when stopping: bounded, so a worker stopping with the bucket unreachable still stops. */
  private async tickWithin(session: StreamSession, ms: number): Promise<void> {
    const signal = AbortSignal.timeout(ms);
    await Promise.race([this.tick(session, signal).catch(() => undefined), sleep(ms + 500)]);
  }

  private async save(state: StreamState, coveredAt: Date | undefined): Promise<void> {
    if (this.stopping && state !== 'stopped') return;
    const covered = coveredAt && coveredAt.getTime() > this.lastCovered ? coveredAt : undefined;
    await saveStreamStatus(
      this.d.metadata,
      this.d.instanceId,
      {
        state,
        workerHost: this.d.workerHost,
        binlogFile: this.uploaded?.file,
        seriesStart: this.uploaded?.seriesStart,
        position: this.uploaded?.position,
        lastCommitTime: this.uploaded?.lastCommitTime ?? undefined,
        coveredAt: covered,
        lastError: this.gap ?? this.uploadError ?? null,
      },
      this.d.now(),
    );
    if (covered) this.lastCovered = covered.getTime();
  }

  private async fault(state: StreamState, message: string, retryInMs: number): Promise<void> {
    this.d.log.warn({ event: state === 'gap' ? 'stream.gap' : 'stream.reconnecting', retryInMs, err: { message } }, `binlog stream: ${message}`);
    await saveStreamStatus(this.d.metadata, this.d.instanceId, { state, workerHost: this.d.workerHost, lastError: message }, this.d.now()).catch(() => undefined);
  }

  /** The server's active binlog and its uuid, on a new connection when the last one failed. */
  private async serverNow(): Promise<{ active: BinlogPosition; serverUuid: string }> {
    try {
      const node = await this.dataNode();
      const active = await node.binaryLogStatus();
      if (!active) throw new Error(`binary logging is off on ${node.where}`);
      return { active, serverUuid: await node.serverUuid() };
    } catch (err) {
      await this.node?.close();
      this.node = undefined;
      throw err;
    }
  }

  private async dataNode(): Promise<DataNode> {
    this.node ??= await DataNode.connect(this.d.link);
    return this.node;
  }

  /** SHOW BINARY LOG STATUS now; undefined (and a new connection next time) when the server does not answer. */
  private async observe(): Promise<BinlogPosition | undefined> {
    try {
      const position = await (await this.dataNode()).binaryLogStatus();
      this.observeFailing = false;
      return position;
    } catch (err) {
      if (!this.observeFailing) this.d.log.warn({ event: 'stream.observe-failed', err: { message: errorMessage(err) } }, `cannot read the server's binlog position: ${errorMessage(err)}`);
      this.observeFailing = true;
      await this.node?.close();
      this.node = undefined;
      return undefined;
    }
  }
}
