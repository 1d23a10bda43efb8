// Binlog files held in the bucket only as the streamer's segment objects (seg_<id>_<file>.<series start>_<from>-<to>,
// docs/binlog-streaming.md) as restore candidates. A file's segments count from byte 0 as long as each starts where
// the previous one ended; what follows a hole is left out, with a warning. A file archived whole (a log_ object of
// the same file and series) wins: its segments may linger until the binlog job removes them. Pure, no I/O: the
// segments come from metadata rows (segmentsOfRows) or from object names (bucket.ts).
import { parseBinlogFileName } from '../binlog/index.ts';
import { binlogFileKey, seriesStartOf, type BinlogSegment } from '../metadata/binlog-segments.ts';
import type { BinlogCandidate, SegmentRef } from './plan.ts';

/** A segment with the file and series it belongs to. */
export interface SegmentObject extends SegmentRef {
  file: string;
  /** Epoch seconds of the file's FORMAT_DESCRIPTION event. */
  seriesStart: number;
}

/** Something about a file's segments the plan should say (a hole, no first segment). */
export interface SegmentWarning {
  file: string;
  seriesStart: number;
  message: string;
}

export function segmentsOfRows(rows: BinlogSegment[]): SegmentObject[] {
  return rows.map((r) => ({
    file: r.binlogFile,
    seriesStart: r.seriesStart,
    objectKey: r.objectKey,
    bucket: r.bucketName,
    from: r.startPos,
    to: r.endPos,
    storedBytes: r.storedBytes,
    sha256: r.sha256,
    compression: r.compression,
    encrypted: r.objectKey.endsWith('.enc'),
    encryptionKeyId: r.encryptionKeyId,
    lastCommitTime: r.lastCommitTime,
    closesFile: r.closesFile,
  }));
}

/**
 * The longest run of segments from byte 0 in which each starts where the previous one ended, and the segments
 * after its end (beyond a hole). The same range twice, or two cuts of the same bytes, count once.
 */
export function chainSegments<T extends { from: number; to: number }>(segments: readonly T[]): { chain: T[]; afterHole: T[] } {
  const sorted = [...segments].sort((a, b) => a.from - b.from || a.to - b.to);
  // Every position reachable from 0, with the segment that reaches it: sorted by start, a segment's start is final
  // when it is reached (whatever ends there starts before it).
  const reachedBy = new Map<number, { segment: T; length: number } | null>([[0, null]]);
  for (const s of sorted) {
    if (!reachedBy.has(s.from) || s.to <= s.from) continue;
    const length = (reachedBy.get(s.from)?.length ?? 0) + 1;
    const known = reachedBy.get(s.to);
    if (known === undefined || (known && known.length > length)) reachedBy.set(s.to, { segment: s, length });
  }
  let end = 0;
  for (const pos of reachedBy.keys()) end = Math.max(end, pos);
  const chain: T[] = [];
  for (let at = reachedBy.get(end); at; at = reachedBy.get(at.segment.from)) chain.push(at.segment);
  chain.reverse();
  return { chain, afterHole: sorted.filter((s) => s.from >= end) };
}

function groupByFile(segments: readonly SegmentObject[]): SegmentObject[][] {
  const groups = new Map<string, SegmentObject[]>();
  for (const s of segments) {
    const k = binlogFileKey(s.file, s.seriesStart);
    const group = groups.get(k);
    if (group) group.push(s);
    else groups.set(k, [s]);
  }
  return [...groups.values()];
}

/** The file that follows `b` in its series (the next number, opened at or after it), among `all`. */
function nextFileOf(b: BinlogCandidate, all: readonly BinlogCandidate[]): BinlogCandidate | undefined {
  const me = parseBinlogFileName(b.file);
  if (!me) return undefined;
  return all
    .filter((o) => {
      const n = parseBinlogFileName(o.file);
      return n && n.base === me.base && n.seq === me.seq + 1 && o.startTime.getTime() >= b.startTime.getTime();
    })
    .sort((x, y) => x.startTime.getTime() - y.startTime.getTime())[0];
}

/** The commit time of the newest transaction in a chain of segments, when the rows say. */
function lastCommitOf(chain: readonly SegmentRef[]): Date | null {
  for (let i = chain.length - 1; i >= 0; i--) if (chain[i]!.lastCommitTime) return chain[i]!.lastCommitTime!;
  return null;
}

function segmentRef(s: SegmentObject): SegmentRef {
  const { file: _file, seriesStart: _series, ...ref } = s;
  return ref;
}

/**
 * Candidates for the files that `archived` lacks (by file and series) and the bucket holds as segments from byte 0.
 * A file starts at its series start. It ends where the next file starts when its last segment closes it (or when
 * that is unknown, from names alone: the restore's GTID check catches a missing tail), else at the last commit in
 * its segments (null when unknown: --from-bucket reads it from the bytes).
 */
export function segmentedCandidates(segments: readonly SegmentObject[], archived: readonly BinlogCandidate[]): { binlogs: BinlogCandidate[]; warnings: SegmentWarning[] } {
  const archivedFiles = new Set(archived.map((b) => binlogFileKey(b.file, seriesStartOf(b.startTime))));
  const warnings: SegmentWarning[] = [];
  const binlogs: BinlogCandidate[] = [];
  for (const group of groupByFile(segments)) {
    const { file, seriesStart } = group[0]!;
    if (archivedFiles.has(binlogFileKey(file, seriesStart))) continue;
    const { chain, afterHole } = chainSegments(group);
    if (!chain.length) {
      const first = Math.min(...group.map((s) => s.from));
      warnings.push({ file, seriesStart, message: `the streamed segments of ${file} do not start at byte 0 (the first starts at byte ${first}): they are not used` });
      continue;
    }
    const end = chain[chain.length - 1]!.to;
    if (afterHole.length) {
      warnings.push({
        file,
        seriesStart,
        message: `${afterHole.length} streamed segment(s) of ${file} are not used: they start at byte ${afterHole[0]!.from}, and bytes ${end}-${afterHole[0]!.from} are in no segment (the restore reaches byte ${end} of ${file})`,
      });
    }
    const refs = chain.map(segmentRef);
    binlogs.push({
      file,
      objectKey: refs[0]!.objectKey,
      bucket: refs[0]!.bucket,
      startTime: new Date(seriesStart * 1000),
      endTime: null,
      compression: refs[0]!.compression,
      bytes: refs.every((r) => r.storedBytes !== null) ? refs.reduce((n, r) => n + r.storedBytes!, 0) : null,
      sha256: null,
      segments: refs,
    });
  }
  const all = [...archived, ...binlogs];
  for (const b of binlogs) {
    const last = b.segments![b.segments!.length - 1]!;
    const next = last.closesFile !== false ? nextFileOf(b, all) : undefined;
    b.endTime = next ? next.startTime : lastCommitOf(b.segments!);
  }
  return { binlogs, warnings };
}

/** One line per segmented file: `mysql-bin.000042 bytes 0-81234 in 12 segments (40960 bytes stored), last commit …`. */
export function describeSegments(b: BinlogCandidate, formatTime: (d: Date) => string): string | undefined {
  const s = b.segments;
  if (!s?.length) return undefined;
  const last = lastCommitOf(s) ?? b.endTime;
  const closes = s[s.length - 1]!.closesFile ? ', closes the file' : '';
  return `${b.file} bytes 0-${s[s.length - 1]!.to} in ${s.length} streamed segment(s) (${b.bytes ?? '?'} bytes stored${closes}), last commit ${last ? formatTime(last) : '?'}`;
}
