// One run of mysqlbinlog and what it has brought: per spooled file, how much of it is in the bucket. Each interval
// `uploadNew` cuts every file at its last complete transaction and uploads what is new as one segment (several when
// more than MAX_SEGMENT_BYTES arrived), files in order: a file's successor waits until the file's closing segment
// is stored, so the uploaded bytes are always a prefix of the stream.
import { compareBinlogFiles, readBinlogHead, scanCompleteTransactions, type BinlogFileHead, type SegmentScan } from '../binlog/index.ts';
import type { Logger } from '../log/index.ts';
import { lastBinlogSegment, markSegmentClosesFile } from '../metadata/binlog-segments.ts';
import type { BinlogPosition } from '../mysql/data-node.ts';
import { errorMessage } from '../errors.ts';
import type { RunningMysqlbinlog } from './mysqlbinlog-process.ts';
import { newestReached, stallCount, type Observation, type StreamedFile } from './position.ts';
import type { ResumePoint } from './resume.ts';
import { uploadSegment, type SegmentTarget } from './segment-upload.ts';

/** The most bytes one segment holds (a bigger transaction is one segment of its own). */
export const MAX_SEGMENT_BYTES = 256 * 1024 * 1024;

interface SessionFile extends StreamedFile {
  head?: BinlogFileHead;
}

/** The newest segment stored: the stream's position. */
export interface UploadedPosition {
  file: string;
  seriesStart: number;
  position: number;
  lastCommitTime: Date | null;
}

export class StreamSession {
  private readonly files = new Map<string, SessionFile>();
  /** The server's positions not reached yet, oldest first (a few: a newer one reached makes them moot). */
  private observations: Observation[] = [];
  /** The server's position one interval ago: mysqlbinlog should have all of it by now. */
  private previousObservation: BinlogPosition | undefined;
  /** Intervals in a row in which mysqlbinlog lacked what the server had written an interval before. */
  stalls = 0;
  /** A segment whose row may or may not have been written (the insert failed): checked before the next upload. */
  private unsureFrom: { file: string; from: number } | undefined;
  private seriesChecked = false;
  readonly startedAt = Date.now();

  constructor(
    readonly start: ResumePoint,
    readonly process: RunningMysqlbinlog,
    private readonly target: SegmentTarget,
    private readonly serverUuid: string | null,
    private readonly log: Logger,
  ) {}

  /**
   * Records where the server stood at `at` (SHOW BINARY LOG STATUS), then looks at the spool: how much of each file
   * mysqlbinlog has written, and whether it still lacks what the server had written an interval ago (a stall).
   */
  async observe(at: Date, position: BinlogPosition | undefined): Promise<void> {
    if (position) this.observations = [...this.observations, { at, position }].slice(-8);
    const { spool } = this.target;
    const receivedBefore = this.receivedTotal();
    for (const name of await spool.binlogs()) {
      const f = this.fileState(name);
      if (!f.closed) f.received = await spool.size(name);
    }
    const progressed = this.receivedTotal() > receivedBefore;
    this.stalls = stallCount(this.stalls, this.previousObservation, [...this.files.values()], this.process.alive(), progressed);
    this.previousObservation = position;
  }

  private receivedTotal(): number {
    let n = 0;
    for (const f of this.files.values()) n += f.received;
    return n;
  }

  /** The newest observed instant the bucket has reached; observations it reached are dropped. */
  coveredAt(): Date | undefined {
    const i = newestReached(this.observations, [...this.files.values()]);
    if (i < 0) return undefined;
    const at = this.observations[i]!.at;
    this.observations = this.observations.slice(i + 1);
    return at;
  }

  /**
   * Uploads what is new in the spool (as observe() last saw it). Returns a reason when the file this run re-reads is of another series than
   * its segments (the binlogs were reset): the stream must then start over. Throws when an upload fails.
   */
  async uploadNew(onSegment: (p: UploadedPosition) => void, now: () => Date, signal?: AbortSignal): Promise<string | undefined> {
    const { spool } = this.target;
    for (const f of this.files.values()) {
      if (f.closed) continue;
      const name = f.name;
      const path = spool.pathOf(name);
      f.head ??= await readBinlogHead(path);
      if (!f.head) return undefined; // its FORMAT_DESCRIPTION is not complete yet
      const otherSeries = this.checkSeries(f.head, name);
      if (otherSeries) return otherSeries;
      await this.settleUnsureRow(f);
      // Up to what observe() saw, not what arrived since: one segment per interval, not one per upload's duration.
      for (;;) {
        const observed = f.received - f.uploadedEnd;
        if (observed <= 0) break;
        const scan = await scanCompleteTransactions(path, f.uploadedEnd, f.head, { maxBytes: Math.min(MAX_SEGMENT_BYTES, observed) });
        if (scan.end <= f.uploadedEnd) break;
        await this.uploadOne(f, f.head, scan, onSegment, now, signal);
        if (f.closed) break;
      }
      if (!f.closed && !(await this.endedWithoutRotate(f))) return undefined;
      await spool.remove(path);
    }
    return undefined;
  }

  /**
   * A file that ends without a ROTATE or STOP event (the server crashed in it) is done once mysqlbinlog went on to a
   * later file and every complete transaction of it is uploaded: the server sent all of it before the next one. Its
   * last segment is then marked as closing it, so that restores chain on to the next file; an incomplete transaction
   * the crash left at its end is never uploaded (the server rolled it back).
   */
  private async endedWithoutRotate(f: SessionFile): Promise<boolean> {
    const later = [...this.files.values()].some((o) => compareBinlogFiles(o.name, f.name) > 0 && o.received > 0);
    if (!later || !f.head) return false;
    const scan = await scanCompleteTransactions(this.target.spool.pathOf(f.name), f.uploadedEnd, f.head);
    if (scan.end > f.uploadedEnd) return false;
    const marked = await markSegmentClosesFile(this.target.metadata, this.target.instanceId, f.name, f.head.seriesStart, f.uploadedEnd);
    if (!marked) return false;
    f.closed = true;
    this.log.warn({ event: 'stream.file-ended', file: f.name, at: f.uploadedEnd }, `${f.name} ended at byte ${f.uploadedEnd} without a ROTATE or STOP event (the server did not shut down cleanly): its last segment closes it`);
    return true;
  }

  private fileState(name: string): SessionFile {
    let f = this.files.get(name);
    if (!f) {
      const skipTo = this.start.kind === 'restream' && this.start.file === name ? this.start.skipTo : 0;
      f = { name, uploadedEnd: skipTo, closed: false, received: 0 };
      this.files.set(name, f);
    }
    return f;
  }

  private checkSeries(head: BinlogFileHead, name: string): string | undefined {
    const s = this.start;
    if (this.seriesChecked || s.kind !== 'restream' || s.file !== name) return undefined;
    this.seriesChecked = true;
    if (head.seriesStart === s.seriesStart) return undefined;
    return (
      `${name} on the server is not the file its segments are of (its first event at ${new Date(head.seriesStart * 1000).toISOString()}, ` +
      `theirs at ${new Date(s.seriesStart * 1000).toISOString()}: the binlogs were reset); what the old ${name} held after byte ${s.skipTo} was not streamed`
    );
  }

  private async uploadOne(f: SessionFile, head: BinlogFileHead, scan: SegmentScan, onSegment: (p: UploadedPosition) => void, now: () => Date, signal?: AbortSignal): Promise<void> {
    const from = f.uploadedEnd;
    const started = Date.now();
    let stored;
    try {
      stored = await uploadSegment(this.target, { file: f.name, head, from, scan, serverUuid: this.serverUuid }, now(), signal);
    } catch (err) {
      this.unsureFrom = { file: f.name, from };
      throw err;
    }
    this.unsureFrom = undefined;
    f.uploadedEnd = scan.end;
    f.closed = scan.closesFile;
    this.log.info(
      { event: 'stream.segment', file: f.name, from, to: scan.end, bytes: stored.storedBytes, transactions: scan.transactions, ms: Date.now() - started },
      `segment ${f.name} [${from}, ${scan.end}) stored`,
    );
    onSegment({ file: f.name, seriesStart: head.seriesStart, position: scan.end, lastCommitTime: stored.lastCommitTime });
  }

  /**
   * A failed upload may have failed after its row was written (an answer lost): then the row is there, and the next
   * segment must start where that row ends, or the rows would not chain.
   */
  private async settleUnsureRow(f: SessionFile): Promise<void> {
    const unsure = this.unsureFrom;
    if (!unsure || unsure.file !== f.name || unsure.from !== f.uploadedEnd) return;
    try {
      const last = await lastBinlogSegment(this.target.metadata, this.target.instanceId);
      if (last && last.binlogFile === f.name && last.seriesStart === f.head?.seriesStart && last.startPos === unsure.from) {
        f.uploadedEnd = last.endPos;
        f.closed = last.closesFile;
      }
      this.unsureFrom = undefined;
    } catch (err) {
      throw new Error(`could not check the segment rows before uploading again: ${errorMessage(err)}`, { cause: err });
    }
  }
}
