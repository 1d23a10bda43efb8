// The achieved RPO of an instance: the age of the last instant at which the bucket held every transaction the
// server had written by then. Known from the binlog streamer's row (mcb_binlog_streams.covered_at) or, for an
// instance that does not stream, from the binlog job (every closed binlog archived). Pure: status.ts reads the rows.
import type { BackupConfig } from '../config/index.ts';
import type { BinlogStreamStatus, StreamState } from '../metadata/binlog-segments.ts';

export type RpoSource = 'stream' | 'binlog job';

/** The streamer's row of an instance, as status shows it. */
export interface StreamView {
  state: StreamState;
  binlogFile: string | null;
  position: number | null;
  lastError: string | null;
  workerHost: string | null;
  updatedAt: string;
  updatedAgeSeconds: number;
}

export interface AchievedRpo {
  /** Whole seconds since `coveredAt`; null when nothing tells how far the bucket is complete. */
  seconds: number | null;
  /** The last instant the bucket is known to hold every transaction the server had written by then. */
  coveredAt: string | null;
  /** What `coveredAt` comes from: the streamer's row, or the binlog job's archived binlogs and last check. */
  source: RpoSource | null;
  /** [backup-conf] max_rpo_seconds of the config this status was made with. */
  thresholdSeconds: number;
  /** Over the threshold while binlog_stream is on (with it off, the binlog STALE check is the alert). */
  exceeded: boolean;
  /** The streamer's row says 'gap' (binlogs purged before they were streamed) while binlog_stream is on. */
  gap: boolean;
  /** null for an instance that never streamed. */
  stream: StreamView | null;
}

export interface RpoFacts {
  stream: BinlogStreamStatus | undefined;
  /** The end of the newest Completed binlog backup (when its file closed). */
  lastArchivedEnd: Date | null;
  /** The last binlog run that left every closed binlog archived. */
  lastCheck: Date | null;
  now: Date;
}

/** Whole seconds from `at` to `now`, never negative (a clock running ahead). */
export function ageSeconds(at: Date, now: Date): number {
  return Math.max(0, Math.round((now.getTime() - at.getTime()) / 1000));
}

function later(a: Date | null, b: Date | null): Date | null {
  if (!a || !b) return a ?? b;
  return b.getTime() > a.getTime() ? b : a;
}

/**
 * How far the binlog job proves the bucket complete. Every closed binlog is archived, so at least to the newest
 * one's end. While the job rotates for max_rpo_minutes (binlog_stream off), a successful run at t also proves it
 * to t − max_rpo_minutes: an active binlog holding older transactions would have been rotated and archived by that
 * run (give or take the run's own duration). With streaming on the job does not rotate, so only the first holds.
 */
export function binlogJobCoveredAt(backup: Pick<BackupConfig, 'binlogStream' | 'maxRpoMinutes'>, lastArchivedEnd: Date | null, lastCheck: Date | null): Date | null {
  if (backup.binlogStream || !lastCheck) return lastArchivedEnd;
  const rotationBound = new Date(lastCheck.getTime() - backup.maxRpoMinutes * 60_000);
  return later(lastArchivedEnd, rotationBound);
}

function streamView(s: BinlogStreamStatus, now: Date): StreamView {
  return {
    state: s.state,
    binlogFile: s.binlogFile,
    position: s.position,
    lastError: s.lastError,
    workerHost: s.workerHost,
    updatedAt: s.updatedAt.toISOString(),
    updatedAgeSeconds: ageSeconds(s.updatedAt, now),
  };
}

/** Both sources are lower bounds of how far the bucket is complete: the later one is the achieved RPO. */
export function achievedRpo(backup: Pick<BackupConfig, 'binlogStream' | 'maxRpoMinutes' | 'maxRpoSeconds'>, facts: RpoFacts): AchievedRpo {
  const streamed = facts.stream?.coveredAt ?? null;
  const archived = binlogJobCoveredAt(backup, facts.lastArchivedEnd, facts.lastCheck);
  const coveredAt = later(streamed, archived);
  const source: RpoSource | null = !coveredAt ? null : coveredAt === streamed ? 'stream' : 'binlog job';
  const seconds = coveredAt ? ageSeconds(coveredAt, facts.now) : null;
  return {
    seconds,
    coveredAt: coveredAt?.toISOString() ?? null,
    source,
    thresholdSeconds: backup.maxRpoSeconds,
    exceeded: backup.binlogStream && seconds !== null && seconds > backup.maxRpoSeconds,
    gap: backup.binlogStream && facts.stream?.state === 'gap',
    stream: facts.stream ? streamView(facts.stream, facts.now) : null,
  };
}
